/**
 * Memory given back once most sessions have ended.
 *
 * V8 collects its old generation when that generation grows, not when it holds garbage. After a
 * mass disconnect the server allocates almost nothing, so the ended sessions' objects (about
 * 25 KB each) stay in the heap, and the process keeps its RSS, for as long as it runs quietly:
 * 10,000 sessions ended left 380 MB resident, unchanged 40 s later (bench/memory.ts).
 *
 * It takes two full collections, SETTLE_MS apart, then a trim of the C library's heap. The first
 * frees the ended sessions' objects, and V8 sweeps their pages on its own threads meanwhile; the
 * second gives the pages back to the system (10,000 ended: 168 MB resident after one collection,
 * 127 MB after two, 66 MB before they came); the trim (malloc_trim, from the addon) returns the C
 * library's free pages, where the typed arrays' buffers were. Run back to back, the second had to
 * finish the sweeping itself: 19,000 ended, 27 + 284 ms with the event loop stopped, and 65 ms
 * for the trim.
 *
 * A full collection stops the event loop for as long as marking what is still live takes: about
 * 180 ms on a heap of 800 MB with 1 % live, 300 ms with half of it live. So it runs only when the
 * sessions fell from a peak to a small part of it: at least MIN_ENDED fewer than the most this
 * process held since the last collection, and at most one left for every RATIO_ENDED_TO_LEFT
 * gone. Sessions coming and going at a steady count never qualify (V8 collects on its own while
 * they allocate). It waits for QUIET_MS without a further end (a
 * disconnect wave runs its course first), but at most MAX_WAIT_MS after the first chance.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Clock, TimerHandle } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';

export const MIN_ENDED = 1000;
export const RATIO_ENDED_TO_LEFT = 8;
export const QUIET_MS = 10_000;
export const MAX_WAIT_MS = 60_000;
export const SETTLE_MS = 3000;

export interface MemoryReleaseDeps {
  clock: Clock;
  log: Logger;
  /** One full, synchronous garbage collection. */
  collect: () => void;
  /** Give the C library's free heap pages back to the system (malloc_trim). */
  trimHeap?: () => void;
  /** Sessions in this process now. */
  sessions: () => number;
  /** The V8 heap in use, in octets (for the log line). */
  heapUsed?: () => number;
}

export class MemoryRelease {
  private readonly deps: MemoryReleaseDeps;
  /** The most sessions this process held since the last collection (seen when one ends). */
  private peak = 0;
  private timer: TimerHandle | undefined;
  /** When the pending collection must run at the latest. */
  private deadline = 0;
  /** Between the two collections: the second, and what the first found. */
  private settling:
    | { timer: TimerHandle; heapBefore: number | undefined; firstMs: number; ended: string }
    | undefined;

  constructor(deps: MemoryReleaseDeps) {
    this.deps = deps;
  }

  /** A session ended (it is no longer among `sessions()`). */
  sessionEnded(): void {
    const left = this.deps.sessions();
    // The count only rises between ends, so the count just before an end finds every peak.
    this.peak = Math.max(this.peak, left + 1);
    if (!this.worthIt(left)) {
      // More sessions came up since: what ended no longer dwarfs what is left.
      this.timer?.cancel();
      this.timer = undefined;
      return;
    }
    const now = this.deps.clock.now();
    if (this.timer === undefined) this.deadline = now + MAX_WAIT_MS;
    this.timer?.cancel();
    this.timer = this.deps.clock.setTimer(Math.min(QUIET_MS, this.deadline - now), () => this.collect());
  }

  /** Stop: no collection pending. */
  close(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.settling?.timer.cancel();
    this.settling = undefined;
  }

  private worthIt(left: number): boolean {
    const gone = this.peak - left;
    return gone >= MIN_ENDED && left * RATIO_ENDED_TO_LEFT <= gone;
  }

  private collect(): void {
    this.timer = undefined;
    // Sessions that came up meanwhile count too: the pause is what is live now.
    const left = this.deps.sessions();
    if (this.settling || !this.worthIt(left)) return;
    const ended = `${this.peak - left} of ${this.peak} sessions ended`;
    const heapBefore = this.deps.heapUsed?.();
    const firstMs = this.timed(this.deps.collect);
    const timer = this.deps.clock.setTimer(SETTLE_MS, () => this.release());
    this.settling = { timer, heapBefore, firstMs, ended };
  }

  /** The second collection and the trim, once V8 has swept what the first freed. */
  private release(): void {
    const { heapBefore, firstMs, ended } = this.settling!;
    this.settling = undefined;
    const left = this.deps.sessions();
    const worthIt = this.worthIt(left);
    this.peak = left;
    if (!worthIt) {
      this.deps.log.info(
        `memory: ${ended}, but ${left} are up again; one full garbage collection (${firstMs.toFixed(0)} ms), not the second`,
      );
      return;
    }
    const secondMs = this.timed(this.deps.collect);
    const trimMs = this.deps.trimHeap ? this.timed(this.deps.trimHeap) : 0;
    const heapAfter = this.deps.heapUsed?.();
    const heap =
      heapBefore === undefined || heapAfter === undefined
        ? ''
        : `, heap ${mb(heapBefore)} → ${mb(heapAfter)} MB`;
    this.deps.log.info(
      `memory: ${ended}; two full garbage collections and a heap trim (${firstMs.toFixed(0)} + ${secondMs.toFixed(0)} + ${trimMs.toFixed(0)} ms${heap}) give their memory back`,
    );
  }

  private timed(fn: () => unknown): number {
    const started = this.deps.clock.now();
    fn();
    return this.deps.clock.now() - started;
  }
}

const mb = (octets: number): string => (octets / 2 ** 20).toFixed(0);

/**
 * V8's full collection as a function, without starting node with --expose-gc: the flag is set for
 * as long as it takes a fresh context to get `gc`, then cleared. Undefined if V8 refuses.
 */
export function fullGarbageCollection(): (() => void) | undefined {
  const existing = (globalThis as { gc?: unknown }).gc;
  if (typeof existing === 'function') return existing as () => void;
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
