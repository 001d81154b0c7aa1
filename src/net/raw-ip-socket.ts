import type { Logger } from '../util/log.ts';
import { NativeDevice } from './batch-port.ts';

export interface RawIpSocketOptions {
  /** IP protocol number (17 for UDP). */
  protocol: number;
  /** The interface whose received packets are copied to us (SO_BINDTODEVICE). */
  ifname: string;
  /** Classic BPF program the kernel runs before queueing a packet (see bpf.ts). */
  filter?: Uint8Array;
  /** Packets per recvmmsg. @default 32 */
  batchSize?: number;
  /** Largest IP packet received whole; a longer one is counted as truncated. @default 2048 */
  slotSize?: number;
  /** Kernel receive buffer in bytes. @default 256 KiB */
  socketBufferBytes?: number;
  log?: Logger;
}

/**
 * A receive-only raw IPv4 socket: the kernel hands it a copy of every packet of one IP protocol
 * that the host receives on one interface (after reassembly), IPv4 header included. The normal
 * delivery to the host's own sockets goes on as before. Needs root or CAP_NET_RAW.
 *
 * `onPacket(packet, src, dst)` hands out views into the batch's receive buffer, valid only until
 * the callback returns; packet starts at the IPv4 header.
 */
export class RawIpSocket extends NativeDevice {
  readonly ifname: string;

  /** Throws an Error with `code` (ENODEV for an unknown interface, EPERM without privileges). */
  constructor(opts: RawIpSocketOptions) {
    super(
      `raw IP packet on ${opts.ifname}`,
      { batchSize: 32, slotSize: 2048, ...opts },
      (addon, slots, slotSize) =>
        addon.openRawIp(
          opts.protocol,
          opts.ifname,
          slots,
          slotSize,
          opts.socketBufferBytes ?? 256 << 10,
          opts.filter,
        ),
    );
    this.ifname = opts.ifname;
  }
}
