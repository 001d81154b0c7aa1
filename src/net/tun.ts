import { DropCounter } from '../util/counters.ts';
import type { Logger } from '../util/log.ts';
import { nullLogger } from '../util/log.ts';
import { BatchPort } from './batch-port.ts';
import type { TunDevice } from './interfaces.ts';
import { loadNative } from './native.ts';

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
export class TunInterface implements TunDevice {
  /** The kernel's name for the device (e.g. "poptop0"). */
  readonly name: string;
  readonly drops: DropCounter;
  private readonly port: BatchPort;

  /** Opens the device; throws an Error with `code` (e.g. "EPERM", "EBUSY") if the kernel refuses. */
  constructor(opts: TunInterfaceOptions = {}) {
    const addon = loadNative();
    const slots = opts.batchSize ?? 64;
    const slotSize = opts.slotSize ?? 4096;
    this.drops = new DropCounter(opts.log ?? nullLogger, 'TUN packet');
    const port = addon.openTun(opts.name ?? 'poptop%d', slots, slotSize);
    this.port = new BatchPort(addon, port, slots, slotSize, this.drops);
    this.name = port.name;
  }

  write(packet: Uint8Array): void {
    this.port.send(packet, 0);
  }

  /** Writes several packets with one call into the addon (one write(2) each: TUN has no batch). */
  writeBatch(packets: readonly Uint8Array[]): void {
    this.port.sendBatch(packets, () => 0);
  }

  onPacket(cb: (packet: Uint8Array) => void): void {
    this.port.onPacket(cb);
  }

  /** Let the process exit while this device is open (`ref()` undoes it). */
  unref(): void {
    this.port.setRef(false);
  }

  ref(): void {
    this.port.setRef(true);
  }

  close(): void {
    this.port.close();
  }
}
