import type { IPv4 } from '../wire/ip.ts';

/**
 * The kernel seen from the protocol layers: narrow interfaces, each with an in-memory fake
 * (net/memory.ts) so a server and a client can run against each other without root.
 */

/** Raw IP protocol 47: sends and receives GRE packets (GRE header onward, no IP header). */
export interface GrePort {
  send(packet: Uint8Array, to: IPv4): void;
  /** Several packets at once (batched syscall where the implementation has one). */
  sendBatch?(packets: readonly Uint8Array[], to: readonly IPv4[]): void;
  /** Called for every GRE packet received; `packet` is only valid during the call. */
  onPacket(cb: (packet: Uint8Array, from: IPv4, to: IPv4) => void): void;
  close(): void;
}

/** A TUN device (IFF_TUN | IFF_NO_PI): whole IP packets in and out. */
export interface TunDevice {
  readonly name: string;
  /** Write one IP packet to the kernel. */
  write(packet: Uint8Array): void;
  /** Called for every IP packet the kernel routes to the device; only valid during the call. */
  onPacket(cb: (packet: Uint8Array) => void): void;
  close(): void;
}
