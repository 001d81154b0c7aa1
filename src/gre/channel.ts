import type { Clock, TimerHandle } from '../util/clock.ts';
import { DropCounter } from '../util/counters.ts';
import type { Logger } from '../util/log.ts';
import { extend } from '../util/objects.ts';
import type { GreChannelDropReason, GreChannelOptions, GreChannelStats } from './channel-options.ts';
import { encodeGreHeader, GRE_HEADER_LENGTH_MAX, type GreHeader, greHeaderLength } from './codec.ts';
import { ReorderBuffer } from './reorder.ts';
import { seqAdd, seqCount, seqDiff } from './serial.ts';

/**
 * One call's enhanced-GRE data channel (RFC 2637 §4: header §4.1, sliding window §4.2,
 * out-of-sequence packets §4.3): sequence numbers out, in-order delivery in, acknowledgments
 * both ways and the peer's receive window. Transport-free and clock-injected; one object per call, three timers at most (ack, reorder, window stall).
 *
 * ```
 *  send(frame) ──> window open? ──yes──> seq=next, A=last in-order rx if pending ──> sendPacket
 *                     │no                        ▲
 *                     └──> bounded queue ── ack progress / stall timeout
 *                          full → onAccepting(false) ... room again → onAccepting(true)
 *  receive(pkt) ──> seq: beyond ±maxSeqJump → drop (far ahead/behind), unless a run resyncs
 *                   ack? → window ──> seq: < expected → drop (duplicate-or-late)
 *                                          = expected → deliver, drain held
 *                                          > expected → hold (≤ reorderWindow, ≤ reorderTimeoutMs)
 * ```
 */

export type { GreChannelDropReason, GreChannelOptions, GreChannelStats };

export class GreChannel {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly peerCallId: number;
  private readonly peerRecvWindow: number;
  private readonly sendPacketFn: (packet: Uint8Array) => void;
  private readonly deliverFn: (payload: Uint8Array) => void;
  private readonly ackDelayMs: number;
  private readonly ackAtOnce: number;
  private readonly reorderWindow: number;
  private readonly reorderTimeoutMs: number;
  private readonly maxQueue: number;
  private readonly onAccepting: ((accepting: boolean) => void) | undefined;
  /** `accepting` as last reported to onAccepting. */
  private reportedAccepting = true;
  private readonly windowStallMs: number;
  private readonly maxSeqJump: number;
  private readonly resyncAfter: number;
  private readonly resyncQuietMs: number;
  private readonly dropCounter: DropCounter<GreChannelDropReason>;

  // transmit side
  private nextSeq: number;
  private peerAcked: number;
  private readonly queue: Uint8Array[] = [];
  private stallSince = 0;
  private stallTimer: TimerHandle | undefined;
  // receive side
  private rxSynced = false;
  private expected = 0;
  private rxUnacked = 0;
  /** When the oldest packet not yet acknowledged arrived (valid while rxUnacked > 0). */
  private firstUnackedAt = 0;
  /**
   * Armed for the oldest unacknowledged packet. A piggy-backed ack leaves it armed rather than
   * cancelling it: when it fires it sends an ack-only packet only if one is still owed, re-arming
   * for the rest of the delay when a newer packet is the one owed. So a flow of data both ways
   * arms one timer per ackDelayMs, not one per packet received (a timer costs objects to collect).
   */
  private ackTimer: TimerHandle | undefined;
  private readonly held = new ReorderBuffer();
  private reorderTimer: TimerHandle | undefined;
  /** When a packet within the window (in order, held, or late) last arrived. */
  private lastPlausibleAt = 0;
  /** Consecutive far packets that continue one another, and the last of them. */
  private farRun = 0;
  private farLast = 0;
  private closed = false;

  private readonly counts = {
    txPackets: 0,
    txBytes: 0,
    acksSent: 0,
    ackOnlySent: 0,
    rxPackets: 0,
    rxBytes: 0,
    delivered: 0,
    reordered: 0,
    rxLost: 0,
    resyncs: 0,
    windowStalls: 0,
  };

  constructor(opts: GreChannelOptions) {
    this.clock = opts.clock;
    this.log = opts.log;
    this.peerCallId = opts.peerCallId;
    this.peerRecvWindow = Math.max(1, opts.peerRecvWindow);
    this.sendPacketFn = opts.sendPacket;
    this.deliverFn = opts.deliver;
    this.ackDelayMs = opts.ackDelayMs ?? 20;
    const recvWindow = opts.recvWindow ?? 64;
    this.ackAtOnce = Math.max(1, Math.floor(recvWindow / 2));
    this.maxSeqJump = Math.min(0x40000000, Math.max(1, opts.maxSeqJump ?? Math.max(1024, 2 * recvWindow)));
    this.resyncAfter = Math.max(1, opts.resyncAfter ?? 3);
    this.resyncQuietMs = Math.max(0, opts.resyncQuietMs ?? 1000);
    this.reorderWindow = Math.max(0, opts.reorderWindow ?? 16);
    this.reorderTimeoutMs = opts.reorderTimeoutMs ?? 50;
    this.maxQueue = Math.max(0, opts.maxQueue ?? 64);
    this.onAccepting = opts.onAccepting;
    this.windowStallMs = opts.windowStallMs ?? 1000;
    this.nextSeq = (opts.initialSeq ?? 0) >>> 0;
    this.peerAcked = seqAdd(this.nextSeq, -1);
    this.dropCounter = new DropCounter<GreChannelDropReason>(opts.log, 'GRE packet');
  }

  get stats(): GreChannelStats {
    return extend(this.counts, {
      inFlight: this.inFlight(),
      queued: this.queue.length,
      drops: this.dropCounter.snapshot(),
    });
  }

  /** GRE packets received so far (stats without building the whole object). */
  get received(): number {
    return this.counts.rxPackets;
  }

  /** The drop counts alone, by reason. */
  dropSnapshot(): Record<string, number> {
    return this.dropCounter.snapshot();
  }

  /** Whether a frame sent now would be taken (sent or queued) rather than dropped. */
  get accepting(): boolean {
    return !this.closed && (this.windowOpen() || this.queue.length < this.maxQueue);
  }

  /**
   * Send one PPP frame; with `headroom` ≥ GRE_HEADER_LENGTH_MAX free bytes before it in its buffer
   * the header is written there (no copy), otherwise the frame is copied (send).
   */
  sendFrame(frame: Uint8Array, headroom = 0): void {
    if (headroom < GRE_HEADER_LENGTH_MAX) {
      this.send(frame);
      return;
    }
    // The header goes in the headroom: transmit makes the one view that is sent.
    this.sendFrom(frame, 0, frame.length, true);
  }

  /** Send one PPP frame (copied; the caller may reuse `payload` at once). */
  send(payload: Uint8Array): void {
    this.sendFrom(payload, 0, payload.length, false);
  }

  /**
   * Zero-copy send: the frame is `buf[offset, offset + length)` and the GRE_HEADER_LENGTH_MAX
   * bytes before `offset` are scratch the header is written into; `sendPacket` then gets a view
   * of `buf`. Throws RangeError if that headroom is missing (a programming error).
   */
  sendWithHeadroom(buf: Uint8Array, offset: number, length: number): void {
    if (offset < GRE_HEADER_LENGTH_MAX || offset + length > buf.length) {
      throw new RangeError(`GRE send needs ${GRE_HEADER_LENGTH_MAX} bytes of headroom before ${offset}`);
    }
    this.sendFrom(buf, offset, length, true);
  }

  /**
   * `src[offset, offset + length)` out now if the window is open (`inPlace`: the header into the
   * headroom before it), else queued as a copy; refused (counted) when the queue is full.
   */
  private sendFrom(src: Uint8Array, offset: number, length: number, inPlace: boolean): void {
    if (!this.acceptForSend(length)) return;
    if (this.windowOpen()) this.transmit(src, offset, length, inPlace);
    else this.enqueue(src.slice(offset, offset + length));
    if (this.onAccepting !== undefined && this.reportedAccepting && !this.accepting) this.reportAccepting();
  }

  /**
   * One packet for this call, already decoded (`header`, with `packet` starting at the GRE
   * header) and demultiplexed by call id. Never throws: bad input is dropped and counted.
   */
  receive(packet: Uint8Array, header: GreHeader): void {
    if (this.closed) {
      this.drop('closed');
      return;
    }
    this.counts.rxPackets++;
    this.counts.rxBytes += header.payloadLength;
    const seq = header.seq;
    if (seq === undefined) {
      if (header.ack !== undefined) this.receiveAck(header.ack);
      // RFC 2637 §4.1: S is clear only on ack-only packets, which carry no payload.
      if (header.payloadLength > 0) this.drop('unsequenced-payload');
      return;
    }
    if (!this.rxSynced) {
      // Interop: take the first data packet's number as the start rather than assume 0, so a
      // peer that starts elsewhere (or whose first packets were lost) is not held up.
      this.rxSynced = true;
      this.expected = seq;
      this.lastPlausibleAt = this.clock.now();
    }
    const start = header.headerLength;
    let d = seqDiff(seq, this.expected);
    if (d > this.maxSeqJump || d < -this.maxSeqJump) {
      // Not believed: neither its payload nor its ack (which could open our window) is used.
      if (!this.farPacketResyncs(seq, d)) return;
      d = 0;
    } else {
      this.farRun = 0;
      this.lastPlausibleAt = this.clock.now();
    }
    if (header.ack !== undefined) this.receiveAck(header.ack);
    if (d < 0) {
      this.drop('duplicate-or-late', () => `seq ${seq}, expected ${this.expected}`);
    } else if (d === 0) {
      this.deliverNext(packet.subarray(start, start + header.payloadLength), false);
      this.drainHeld();
    } else {
      this.hold(seq, packet.slice(start, start + header.payloadLength));
    }
    this.scheduleAck();
  }

  /** Stop: cancel timers, forget queued and held packets; later calls are dropped as 'closed'. */
  close(): void {
    this.closed = true;
    this.ackTimer?.cancel();
    this.reorderTimer?.cancel();
    this.stallTimer?.cancel();
    this.ackTimer = this.reorderTimer = this.stallTimer = undefined;
    this.queue.length = 0;
    this.held.clear();
  }

  // --- transmit side --------------------------------------------------------------------------

  private acceptForSend(length: number): boolean {
    if (this.closed) this.drop('closed');
    else if (length > 0xffff) this.drop('payload-too-large', `${length} bytes`);
    else return true;
    return false;
  }

  private inFlight(): number {
    return seqCount(seqAdd(this.nextSeq, -1), this.peerAcked);
  }

  private windowOpen(): boolean {
    return this.queue.length === 0 && this.inFlight() < this.peerRecvWindow;
  }

  private enqueue(copy: Uint8Array): void {
    if (this.queue.length >= this.maxQueue) {
      this.drop('tx-queue-full');
      return;
    }
    if (this.queue.length === 0) this.stallSince = this.clock.now();
    this.queue.push(copy);
    if (!this.stallTimer) this.armStallTimer(this.windowStallMs);
  }

  /**
   * Tells onAccepting when `accepting` has changed since it last heard (never throws). Once full,
   * room is reported only when the queue is down to half: a peer that acknowledges one packet at a
   * time cannot make the listener switch (a system call or two each) at every packet.
   */
  private reportAccepting(): void {
    if (!this.onAccepting) return;
    const accepting = this.reportedAccepting
      ? this.accepting
      : this.accepting && this.queue.length <= this.maxQueue >> 1;
    if (accepting === this.reportedAccepting) return;
    this.reportedAccepting = accepting;
    try {
      this.onAccepting(accepting);
    } catch (e) {
      this.drop('send-error', () => `onAccepting(${accepting}): ${String(e)}`);
    }
  }

  /** Send `src[offset, offset+length)` as the next data packet, with the ack if one is pending. */
  private transmit(src: Uint8Array, offset: number, length: number, inPlace: boolean): void {
    const seq = this.nextSeq;
    this.nextSeq = seqAdd(seq, 1);
    const ack = this.takePendingAck();
    const headerLength = greHeaderLength(true, ack !== undefined);
    let packet: Uint8Array;
    if (inPlace) {
      // From the buffer, not a subarray of `src`: the header may lie before `src` begins.
      packet = new Uint8Array(src.buffer, src.byteOffset + offset - headerLength, headerLength + length);
    } else {
      packet = new Uint8Array(headerLength + length);
      packet.set(src.subarray(offset, offset + length), headerLength);
    }
    encodeGreHeader(packet, 0, { callId: this.peerCallId, payloadLength: length, seq, ack });
    this.counts.txPackets++;
    this.counts.txBytes += length;
    this.output(packet);
  }

  private flushQueue(): void {
    while (this.queue.length > 0 && this.inFlight() < this.peerRecvWindow) {
      const frame = this.queue.shift()!;
      this.transmit(frame, 0, frame.length, false);
    }
    if (this.queue.length === 0) {
      this.stallTimer?.cancel();
      this.stallTimer = undefined;
    }
    if (!this.reportedAccepting) this.reportAccepting();
  }

  /** RFC 2637 §4.1–4.2: the ack is the highest number the peer received from us; it opens the window. */
  private receiveAck(ack: number): void {
    const lastSent = seqAdd(this.nextSeq, -1);
    if (seqDiff(ack, lastSent) > 0) {
      this.drop('ack-unsent', () => `ack ${ack}, last sent ${lastSent}`);
      return;
    }
    if (seqDiff(ack, this.peerAcked) <= 0) return; // repeated or overtaken by a later ack
    this.peerAcked = ack;
    this.stallSince = this.clock.now();
    this.flushQueue();
  }

  private armStallTimer(ms: number): void {
    this.stallTimer = this.clock.setTimer(ms, () => this.onWindowStallExpired());
  }

  private onWindowStallExpired(): void {
    this.stallTimer = undefined;
    if (this.closed || this.queue.length === 0) return;
    const idle = this.clock.now() - this.stallSince;
    if (idle < this.windowStallMs) {
      this.armStallTimer(this.windowStallMs - idle);
      return;
    }
    const n = ++this.counts.windowStalls;
    if (n === 1 || n % 100 === 0) {
      this.log.warn(`GRE peer window full for ${idle} ms without an ack; reopening it (${n} times so far)`);
    }
    this.peerAcked = seqAdd(this.nextSeq, -1);
    this.stallSince = this.clock.now();
    this.flushQueue();
    if (this.queue.length > 0 && !this.stallTimer) this.armStallTimer(this.windowStallMs);
  }

  // --- receive side ---------------------------------------------------------------------------

  /**
   * A data packet further than maxSeqJump from the expected number: dropped, unless it is the
   * resyncAfter-th of a run of far packets continuing one another while the old sequence has
   * been silent for resyncQuietMs; then the receive sequence restarts at it (true).
   */
  private farPacketResyncs(seq: number, d: number): boolean {
    const step = seqDiff(seq, this.farLast);
    this.farRun = this.farRun > 0 && step > 0 && step <= this.maxSeqJump ? this.farRun + 1 : 1;
    this.farLast = seq;
    const quietFor = this.clock.now() - this.lastPlausibleAt;
    if (this.farRun < this.resyncAfter || quietFor < this.resyncQuietMs) {
      const where = d > 0 ? 'far ahead' : 'far behind';
      this.drop(
        `sequence number ${where}`,
        () => `seq ${seq}, expected ${this.expected}: more than ${this.maxSeqJump} away; forged or stray`,
      );
      return false;
    }
    const n = ++this.counts.resyncs;
    if (n === 1 || n % 100 === 0) {
      this.log.warn(
        `GRE receive sequence resynchronised from ${this.expected} to ${seq}: ${this.farRun} consecutive packets there and nothing near ${this.expected} for ${quietFor} ms (${n} times so far)`,
      );
    }
    this.farRun = 0;
    this.held.clear();
    this.reorderTimer?.cancel();
    this.reorderTimer = undefined;
    this.expected = seq;
    this.lastPlausibleAt = this.clock.now();
    return true;
  }

  private deliverNext(payload: Uint8Array, wasHeld: boolean): void {
    this.expected = seqAdd(this.expected, 1);
    if (this.rxUnacked++ === 0) this.firstUnackedAt = this.clock.now();
    this.counts.delivered++;
    if (wasHeld) this.counts.reordered++;
    try {
      this.deliverFn(payload);
    } catch (e) {
      this.drop('deliver-error', String(e));
    }
  }

  /** Deliver held packets while they continue the sequence. */
  private drainHeld(): void {
    for (let p = this.held.first(); p && p.seq === this.expected; p = this.held.first()) {
      this.held.shift();
      this.deliverNext(p.payload, true);
    }
    if (this.held.size === 0 && this.reorderTimer) {
      this.reorderTimer.cancel();
      this.reorderTimer = undefined;
    }
  }

  /** Give up on the gap before the lowest held packet: count it lost, deliver from there on. */
  private skipGap(): void {
    const p = this.held.shift();
    if (!p) return;
    this.counts.rxLost += seqCount(p.seq, this.expected);
    this.expected = p.seq;
    this.deliverNext(p.payload, true);
  }

  private hold(seq: number, copy: Uint8Array): void {
    if (!this.held.insert({ seq, payload: copy, arrivedAt: this.clock.now() })) {
      this.drop('duplicate', () => `seq ${seq} already held`);
      return;
    }
    while (this.held.size > this.reorderWindow) {
      this.skipGap();
      this.drainHeld();
    }
    if (this.held.size > 0 && !this.reorderTimer) this.armReorderTimer(this.reorderTimeoutMs);
  }

  private armReorderTimer(ms: number): void {
    this.reorderTimer = this.clock.setTimer(ms, () => this.onReorderExpired());
  }

  private onReorderExpired(): void {
    this.reorderTimer = undefined;
    if (this.closed) return;
    const now = this.clock.now();
    // Every packet held at or below the newest timed-out one is released, gaps skipped.
    for (let i = this.held.lastArrivedBy(now - this.reorderTimeoutMs); i >= 0; i--) this.skipGap();
    this.drainHeld();
    if (this.held.size > 0 && !this.reorderTimer) {
      this.armReorderTimer(Math.max(0, this.held.oldestArrival() + this.reorderTimeoutMs - now));
    }
    this.scheduleAck();
  }

  // --- acknowledgments ------------------------------------------------------------------------

  /** The ack to piggy-back (highest in-order sequence number received), if one is pending. */
  private takePendingAck(): number | undefined {
    if (this.rxUnacked === 0) return undefined;
    this.rxUnacked = 0;
    this.counts.acksSent++;
    return seqAdd(this.expected, -1);
  }

  private scheduleAck(): void {
    if (this.rxUnacked === 0 || this.closed) return;
    if (this.rxUnacked >= this.ackAtOnce) this.sendAckOnly();
    else if (!this.ackTimer) this.armAckTimer(this.ackDelayMs);
  }

  private armAckTimer(ms: number): void {
    this.ackTimer = this.clock.setTimer(ms, () => this.onAckExpired());
  }

  private onAckExpired(): void {
    this.ackTimer = undefined;
    if (this.closed || this.rxUnacked === 0) return;
    const owedFor = this.clock.now() - this.firstUnackedAt;
    if (owedFor < this.ackDelayMs) this.armAckTimer(this.ackDelayMs - owedFor);
    else this.sendAckOnly();
  }

  /** An ack-only packet (RFC 2637 §4.1): S clear, A set, payload length 0. */
  private sendAckOnly(): void {
    const ack = this.takePendingAck();
    if (ack === undefined) return;
    const packet = new Uint8Array(greHeaderLength(false, true));
    encodeGreHeader(packet, 0, { callId: this.peerCallId, payloadLength: 0, ack });
    this.counts.ackOnlySent++;
    this.output(packet);
  }

  private output(packet: Uint8Array): void {
    try {
      this.sendPacketFn(packet);
    } catch (e) {
      this.drop('send-error', String(e));
    }
  }

  private drop(reason: GreChannelDropReason, detail?: string | (() => string)): void {
    this.dropCounter.drop(reason, detail);
  }
}
