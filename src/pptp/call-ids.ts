/**
 * Call IDs for the whole process. Our Call ID is the Key of every GRE packet the peer sends us for the
 * call (RFC 2637 §4.1), and one GRE socket receives for all control connections, so an ID must be
 * unique across ALL connections of the process, not just within one. IDs are random (harder to guess
 * for an off-path injector), never 0, never handed out twice while in use.
 */
import { randomInt } from 'node:crypto';

/** Random tries before falling back to a scan (which only matters when nearly all IDs are in use). */
const RANDOM_TRIES = 16;
const ID_SPACE = 0xffff; // IDs 1..65535

/** The call ids a process may hand out: all of them, or a worker's share (server/workers). */
export interface CallIdRange {
  readonly first: number;
  readonly last: number;
}

export const ALL_CALL_IDS: CallIdRange = { first: 1, last: ID_SPACE };

export class CallIdAllocator {
  private readonly inUse = new Set<number>();
  private readonly random: () => number;
  readonly range: CallIdRange;
  private readonly span: number;

  /**
   * @param random returns an integer in [0, 65535]; default node:crypto randomInt.
   * @param range the ids to hand out (1 ≤ first ≤ last ≤ 65535); default all.
   */
  constructor(random: () => number = () => randomInt(0, 0x10000), range: CallIdRange = ALL_CALL_IDS) {
    if (!(range.first >= 1 && range.first <= range.last && range.last <= ID_SPACE))
      throw new RangeError(`call id range ${range.first}-${range.last} is not within 1-${ID_SPACE}`);
    this.random = random;
    this.range = range;
    this.span = range.last - range.first + 1;
  }

  /** A fresh ID in the range, or null when all of them are in use (answer No-Resource). */
  allocate(): number | null {
    const { span } = this;
    if (this.inUse.size >= span) return null;
    const first = this.range.first;
    for (let i = 0; i < RANDOM_TRIES; i++) {
      const id = first + ((this.random() & 0xffff) % span);
      if (!this.inUse.has(id)) return this.take(id);
    }
    const start = (this.random() & 0xffff) % span;
    for (let i = 0; i < span; i++) {
      const id = first + ((start + i) % span);
      if (!this.inUse.has(id)) return this.take(id);
    }
    return null;
  }

  /** Give an ID back; releasing one that is not in use does nothing. */
  release(id: number): void {
    this.inUse.delete(id);
  }

  has(id: number): boolean {
    return this.inUse.has(id);
  }

  get size(): number {
    return this.inUse.size;
  }

  private take(id: number): number {
    this.inUse.add(id);
    return id;
  }
}
