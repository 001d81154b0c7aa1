import type { CallIdRange } from '../pptp/call-ids.ts';
import type { Logger } from '../util/log.ts';
import type { IPv4 } from '../wire/ip.ts';
import { NativeDevice } from './batch-port.ts';
import { greCallIdFilter } from './bpf.ts';
import type { GrePort } from './interfaces.ts';

export interface RawGreSocketOptions {
  /** Bind to this local address (only GRE sent to it is received). @default 0 (any) */
  localAddress?: IPv4;
  /** Packets per recvmmsg/sendmmsg call. @default 64 */
  batchSize?: number;
  /** Largest GRE packet (without IP header) + IP header that can be received or batch-sent. @default 4096 */
  slotSize?: number;
  /** Kernel receive and send buffer size in bytes (absorbs bursts between event-loop turns). @default 4 MiB */
  socketBufferBytes?: number;
  /**
   * Receive only the GRE packets whose call id is in this range (a worker's share, kept by a kernel
   * filter: net/bpf.ts); undefined: all.
   */
  callIds?: CallIdRange;
  log?: Logger;
}

/**
 * GRE (IP protocol 47) over a raw IPv4 socket: the kernel adds the IP header on send and the
 * addon strips it on receive. Needs root or CAP_NET_RAW.
 *
 * `onPacket` hands out views into one receive buffer shared by a whole batch (recvmmsg): a
 * view is valid only until the callback returns. Send failures (buffer full, unreachable) are
 * counted in `drops`, never thrown.
 */
export class RawGreSocket extends NativeDevice implements GrePort {
  /** Opens the socket; throws an Error with `code` (e.g. "EPERM") if the kernel refuses. */
  constructor(opts: RawGreSocketOptions = {}) {
    super('GRE packet', opts, (addon, slots, slotSize) =>
      addon.openGre(
        opts.localAddress ?? 0,
        slots,
        slotSize,
        opts.socketBufferBytes ?? 4 << 20,
        opts.callIds ? greCallIdFilter(opts.callIds.first, opts.callIds.last) : undefined,
      ),
    );
  }

  /** Staged without a copy; this turn's packets leave with one sendmmsg (see BatchPort). */
  send(packet: Uint8Array, to: IPv4): void {
    this.port.send(packet, to);
  }
}
