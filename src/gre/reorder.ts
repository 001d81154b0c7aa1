import { seqDiff } from './serial.ts';

/** A data packet waiting for the sequence numbers before it. */
export interface HeldPacket {
  seq: number;
  /** A private copy: the receive buffer it came from is reused by the socket layer. */
  payload: Uint8Array;
  /** Clock time it arrived, for the reorder timeout. */
  arrivedAt: number;
}

/**
 * The small reorder buffer of one GRE channel: packets that arrived ahead of the next expected
 * sequence number, kept sorted by sequence number. All entries lie within 2^31 after the next
 * expected number, so their pairwise serial order is well defined. Bounded by the channel.
 */
export class ReorderBuffer {
  private readonly held: HeldPacket[] = [];

  get size(): number {
    return this.held.length;
  }

  /** The lowest held sequence number's packet, if any. */
  first(): HeldPacket | undefined {
    return this.held[0];
  }

  /** Insert in sequence order; false (nothing stored) if that sequence number is already held. */
  insert(packet: HeldPacket): boolean {
    let i = this.held.length;
    while (i > 0) {
      const d = seqDiff(packet.seq, this.held[i - 1]!.seq);
      if (d === 0) return false;
      if (d > 0) break;
      i--;
    }
    this.held.splice(i, 0, packet);
    return true;
  }

  /** Remove and return the lowest held packet. */
  shift(): HeldPacket | undefined {
    return this.held.shift();
  }

  /** Index of the highest-sequence packet that arrived at or before `time`, or -1. */
  lastArrivedBy(time: number): number {
    for (let i = this.held.length - 1; i >= 0; i--) {
      if (this.held[i]!.arrivedAt <= time) return i;
    }
    return -1;
  }

  /** Earliest arrival time among held packets (Infinity when empty). */
  oldestArrival(): number {
    let t = Number.POSITIVE_INFINITY;
    for (const p of this.held) if (p.arrivedAt < t) t = p.arrivedAt;
    return t;
  }

  clear(): void {
    this.held.length = 0;
  }
}
