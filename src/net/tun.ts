import type { Logger } from '../util/log.ts';
import { NativeDevice } from './batch-port.ts';
import type { TunDevice } from './interfaces.ts';
import { loadNative } from './native.ts';

export interface TunInterfaceOptions {
  /** Requested interface name; a "%d" lets the kernel pick a number. @default 'poptop%d' */
  name?: string;
  /**
   * Adopt this descriptor instead of opening a device: a queue of a shared multi-queue device
   * (net/tun-queues.ts), inherited from the process that opened it. `name` is then ignored.
   */
  fd?: number;
  /** Reads per readiness event before handing a batch to JS. @default 64 */
  batchSize?: number;
  /** Read buffer per packet: must exceed headroom + the device MTU (a full slot counts as truncated). @default 4096 */
  slotSize?: number;
  /** Bytes left free before each packet read (see TunDevice.headroom). @default 0 */
  headroom?: number;
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
  readonly headroom: number;

  /** Opens the device; throws an Error with `code` (e.g. "EPERM", "EBUSY") if the kernel refuses. */
  constructor(opts: TunInterfaceOptions = {}) {
    super('TUN packet', opts, (addon, slots, slotSize) =>
      addon.openTun(opts.fd ?? opts.name ?? 'poptop%d', slots, slotSize, opts.headroom ?? 0),
    );
    this.name = this.native.name;
    this.headroom = opts.headroom ?? 0;
  }

  /**
   * Attaches an eBPF program the kernel runs on each packet routed to the device, dropping those it
   * returns 0 for (TUNSETFILTEREBPF; -1 removes it). 0 or an errno; EBADF once closed.
   */
  setFilter(progFd: number): number {
    return loadNative().tunSetFilter(this.native.handle, progFd);
  }

  /** Staged without a copy; this turn's packets are written together (see BatchPort). */
  write(packet: Uint8Array): void {
    this.port.send(packet, 0);
  }
}
