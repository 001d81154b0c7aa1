import type { IPv4 } from '../wire/ip.ts';

/**
 * The kernel seen from the protocol layers: narrow interfaces, each with an in-memory fake
 * (net/memory.ts) so a server and a client can run against each other without root.
 */

/** Raw IP protocol 47: sends and receives GRE packets (GRE header onward, no IP header). */
export interface GrePort {
  /**
   * Send one packet. The bytes are used as they are (no copy) and may go out a little later, in
   * one batch with the others of this turn: the caller must not change them until its callback's
   * microtasks have run.
   */
  send(packet: Uint8Array, to: IPv4): void;
  /** Called for every GRE packet received; `packet` is only valid during the call. */
  onPacket(cb: (packet: Uint8Array, from: IPv4, to: IPv4) => void): void;
  close(): void;
}

/** A TUN device (IFF_TUN | IFF_NO_PI): whole IP packets in and out. */
export interface TunDevice {
  readonly name: string;
  /**
   * Bytes before each packet handed to onPacket (in the same buffer) that the receiver may
   * overwrite: room to write GRE + PPP + MPPE headers in front of the packet and send it in place.
   */
  readonly headroom: number;
  /** Write one IP packet to the kernel (as GrePort.send: no copy, may be batched with this turn's). */
  write(packet: Uint8Array): void;
  /** Called for every IP packet the kernel routes to the device; only valid during the call. */
  onPacket(cb: (packet: Uint8Array) => void): void;
  close(): void;
}

/**
 * Destination addresses whose packets the kernel drops before the TUN device queues them for us
 * (net/tun-filter.ts; net/memory.ts has the fake): the server lists a session's address while its
 * GRE send queue is full, so a flood towards that client costs no reads and delays no other
 * session's packets.
 */
export interface TunDropList {
  /** Drop what is routed to `address` from now on; false if the kernel did not take it. */
  add(address: IPv4): boolean;
  /** Stop dropping for `address`; returns how many packets were dropped for it meanwhile. */
  remove(address: IPv4): number;
  close(): void;
}
