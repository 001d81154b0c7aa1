import type { Logger } from '../util/log.ts';
import { NativeDevice } from './batch-port.ts';
import type { TunDevice } from './interfaces.ts';

export interface TunInterfaceOptions {
  /** Requested interface name; a "%d" lets the kernel pick a number. @default 'poptop%d' */
  name?: string;
  /** Reads per readiness event before handing a batch to JS. @default 64 */
  batchSize?: number;
  /** Read buffer per packet: must exceed the device MTU (a full slot counts as truncated). @default 4096 */
  slotSize?: number;
  log?: Logger;
}

/**
 * A TUN device (IFF_TUN | IFF_NO_PI): whole IPv4/IPv6 packets in and out, no header. Needs root
 * or CAP_NET_ADMIN. The device exists while it is open and vanishes on close (unless made
 * persistent elsewhere); bring it up and address it with net/iproute.ts.
 *
 * `onPacket` hands out views into one receive buffer shared by a batch of reads: a view is
 * valid only until the callback returns.
 */
export class TunInterface extends NativeDevice implements TunDevice {
  /** The kernel's name for the device (e.g. "poptop0"). */
  readonly name: string;

  /** Opens the device; throws an Error with `code` (e.g. "EPERM", "EBUSY") if the kernel refuses. */
  constructor(opts: TunInterfaceOptions = {}) {
    super('TUN packet', opts, (addon, slots, slotSize) =>
      addon.openTun(opts.name ?? 'poptop%d', slots, slotSize),
    );
    this.name = this.native.name;
  }

  write(packet: Uint8Array): void {
    this.port.send(packet, 0);
  }

  /** Writes several packets with one call into the addon (one write(2) each: TUN has no batch). */
  writeBatch(packets: readonly Uint8Array[]): void {
    this.port.sendBatch(packets, () => 0);
  }
}
