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

export class CallIdAllocator {
  private readonly inUse = new Set<number>();
  private readonly random: () => number;

  /** @param random returns an integer in [0, 65535]; default node:crypto randomInt. */
  constructor(random: () => number = () => randomInt(0, 0x10000)) {
    this.random = random;
  }

  /** A fresh ID in 1..65535, or null when all 65535 are in use (answer No-Resource). */
  allocate(): number | null {
    if (this.inUse.size >= ID_SPACE) return null;
    for (let i = 0; i < RANDOM_TRIES; i++) {
      const id = this.random() & 0xffff;
      if (id !== 0 && !this.inUse.has(id)) return this.take(id);
    }
    const start = this.random() & 0xffff;
    for (let i = 0; i < ID_SPACE + 1; i++) {
      const id = (start + i) & 0xffff;
      if (id !== 0 && !this.inUse.has(id)) return this.take(id);
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
