import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';

/** Options, statistics and drop reasons of GreChannel (channel.ts). */

export type GreChannelDropReason =
  | 'closed'
  | 'duplicate-or-late'
  | 'sequence number far ahead'
  | 'sequence number far behind'
  | 'duplicate'
  | 'unsequenced-payload'
  | 'ack-unsent'
  | 'tx-queue-full'
  | 'payload-too-large'
  | 'send-error'
  | 'deliver-error';

export interface GreChannelOptions {
  clock: Clock;
  log: Logger;
  /** The peer's call id: the low half of the key in every packet we send. */
  peerCallId: number;
  /**
   * The peer's Packet Recv Window Size from its Outgoing-Call-Request/-Reply: the most data
   * packets we may have sent and not yet seen acknowledged. 0 (nonsensical) is treated as 1.
   */
  peerRecvWindow: number;
  /** A complete GRE packet for the raw socket; must be consumed (sent or copied) during the call. */
  sendPacket(packet: Uint8Array): void;
  /** An in-order PPP frame for the PPP layer; a view valid only during the call. */
  deliver(payload: Uint8Array): void;
  /**
   * @default 20. If no data packet carries a pending acknowledgment within this delay, an
   * ack-only packet goes out. Short because the peer's window stalls while our ack waits; the
   * piggy-back chance (reverse PPP traffic, e.g. TCP acks) usually comes within a millisecond.
   */
  ackDelayMs?: number;
  /**
   * @default 64. The receive window we advertised to the peer. Once half of it is received and
   * unacknowledged, an ack-only packet goes out at once, so a peer that honours the window
   * never waits for `ackDelayMs` in a one-way bulk transfer.
   */
  recvWindow?: number;
  /** @default 16. Most out-of-order packets held while waiting for a gap to fill. */
  reorderWindow?: number;
  /**
   * @default 50. A gap not filled within this time is skipped (counted as lost). Reordering on
   * real paths is sub-millisecond to a few tens of ms; 50 ms stays well below TCP's minimum
   * retransmission timeout (200 ms), so a real loss inside the tunnel costs the inner TCP a
   * fast retransmit, not a timeout, while most reordering is still repaired.
   */
  reorderTimeoutMs?: number;
  /** @default 64. Frames queued while the peer's window is full; beyond it they are dropped. */
  maxQueue?: number;
  /**
   * Called when `accepting` changes: false once the queue is full (a frame sent now would be
   * dropped), true once acknowledgements have made room again, the queue down to half of
   * maxQueue (so a peer acknowledging one packet at a time does not toggle it per packet). A sender with a source of its
   * own (the client's TUN device) stops reading it meanwhile, so the excess waits or is dropped
   * in the kernel instead of being read only to be dropped here.
   */
  onAccepting?(accepting: boolean): void;
  /**
   * @default 1000. Interop: some peers acknowledge lazily, or never (implementations that ignore
   * the window altogether). If the window stays full with no ack progress for this long, it is
   * reopened (everything in flight is deemed acknowledged) and `windowStalls` counts it, rather
   * than stalling the call forever. RFC 2637 §4.4's adaptive ack time-out is not implemented.
   */
  windowStallMs?: number;
  /**
   * @default max(1024, 2 × recvWindow). A data packet more than this many sequence numbers
   * ahead of (or behind) the next expected one is not believed: it is dropped and counted
   * ('sequence number far ahead' / 'far behind'), never held, so one forged or stray packet
   * cannot move the receive sequence. A peer that honours our window is never more than
   * `recvWindow` ahead (RFC 2637 §4.2, §4.4); one that ignores it is ahead by its loss burst,
   * and 1024 packets (1.4 MB of full frames) is already an outage, not a burst. Beyond it,
   * the resynchronisation below takes over.
   */
  maxSeqJump?: number;
  /**
   * @default 3. A genuine jump beyond `maxSeqJump` (a long outage, a peer that restarted its
   * numbering): once this many consecutive far packets continue one another (each at most
   * `maxSeqJump` after the previous) and no packet within the window arrived for
   * `resyncQuietMs`, the channel resynchronises on them (counted in `resyncs`, logged).
   */
  resyncAfter?: number;
  /** @default 1000. See `resyncAfter`: the old sequence must have been silent this long. */
  resyncQuietMs?: number;
  /** @default 0 (the first datagram's number, RFC 2890 §2.2). Our first sequence number. */
  initialSeq?: number;
}

export interface GreChannelStats {
  /** Data packets / payload bytes sent (ack-only packets excluded). */
  txPackets: number;
  txBytes: number;
  /** Packets carrying an acknowledgment (piggy-backed or ack-only), and ack-only packets. */
  acksSent: number;
  ackOnlySent: number;
  /** Packets / payload bytes received (every packet handed to `receive`). */
  rxPackets: number;
  rxBytes: number;
  /** Frames delivered in order; of those, how many waited in the reorder buffer. */
  delivered: number;
  reordered: number;
  /** Sequence numbers skipped as lost (gap timeout or reorder-buffer overflow). */
  rxLost: number;
  /** Times the receive sequence was resynchronised on a far jump (see `resyncAfter`). */
  resyncs: number;
  /** Times the window was reopened without an ack (see `windowStallMs`). */
  windowStalls: number;
  /** Data packets sent and not yet acknowledged, and frames waiting for the window. */
  inFlight: number;
  queued: number;
  drops: Record<string, number>;
}
