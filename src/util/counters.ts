import type { Logger } from './log.ts';

/** Distinct keys a counter keeps; beyond them every new key is counted under OTHER_KEY. */
export const MAX_COUNTER_KEYS = 64;
export const OTHER_KEY = 'other';

/** Counts by key, at most `maxKeys` distinct keys (so keys built from input cannot grow it). */
class BoundedCounts {
  /** Made at the first count: most counters (one set per session) never count anything. */
  private counts: Map<string, number> | undefined;
  private readonly maxKeys: number;

  constructor(maxKeys: number) {
    this.maxKeys = Math.max(1, maxKeys);
  }

  /** Count `n` more `key` (or OTHER_KEY when the table is full); returns the count of the key used. */
  add(key: string, n = 1): number {
    if (this.counts === undefined) this.counts = new Map();
    let k = key;
    if (!this.counts.has(k) && this.counts.size >= this.maxKeys) k = OTHER_KEY;
    const total = (this.counts.get(k) ?? 0) + n;
    this.counts.set(k, total);
    return total;
  }

  /** Whether `key` has a count of its own (rather than being counted under OTHER_KEY). */
  has(key: string): boolean {
    return this.counts?.has(key) ?? false;
  }

  get(key: string): number {
    return this.counts?.get(key) ?? 0;
  }

  get total(): number {
    let t = 0;
    if (this.counts) for (const n of this.counts.values()) t += n;
    return t;
  }

  snapshot(): Record<string, number> {
    return this.counts ? Object.fromEntries(this.counts) : {};
  }
}

const NONE_EXPECTED: ReadonlySet<string> = new Set();
/** One set per list of expected reasons (a module's constant), not one per counter. */
const expectedSets = new WeakMap<readonly string[], ReadonlySet<string>>();

function expectedSet(reasons: readonly string[] | undefined): ReadonlySet<string> {
  if (!reasons?.length) return NONE_EXPECTED;
  let set = expectedSets.get(reasons);
  if (!set) {
    set = new Set(reasons);
    expectedSets.set(reasons, set);
  }
  return set;
}

/**
 * Counts dropped input by reason, and logs each reason in words the first time it occurs
 * (then again at 10, 100, 1000, ... occurrences), so a flood of bad packets cannot flood the log.
 * `Reason` is the layer's vocabulary (a string-literal union, fixed words); what varies (an id, a
 * sequence number, an address) goes in the detail.
 */
export class DropCounter<Reason extends string = string> {
  private readonly counts: BoundedCounts;
  private readonly log: Logger;
  private readonly what: string;

  /** Reasons that are part of normal operation (a message crossing ours): counted, logged at debug. */
  private readonly expected: ReadonlySet<string>;

  constructor(
    log: Logger,
    what: string,
    maxKeys = MAX_COUNTER_KEYS,
    opts: { expected?: readonly Reason[] } = {},
  ) {
    this.log = log;
    this.what = what;
    this.counts = new BoundedCounts(maxKeys);
    this.expected = expectedSet(opts.expected);
  }

  /**
   * One more drop for `reason`. `detail` may be a function: it is then built only for the lines
   * that are logged, so a flood of dropped packets costs no formatting.
   */
  drop(reason: Reason, detail?: string | (() => string)): void {
    this.dropMany(reason, 1, detail);
  }

  /**
   * `count` more drops for `reason` at once (what another layer dropped for us, e.g. the kernel),
   * logged as `drop` would log the last of them: when the total reaches 1 or passes a power of ten.
   */
  dropMany(reason: Reason, count: number, detail?: string | (() => string)): void {
    if (!(count >= 1)) return;
    const n = this.counts.add(reason, count);
    if (passedPowerOfTen(n - count, n)) {
      const times = n === 1 ? '' : ` (${n} times so far)`;
      const shown = this.counts.has(reason)
        ? reason
        : `${reason}; too many reasons, counted as "${OTHER_KEY}"`;
      const expected = this.expected.has(reason);
      if (expected && !this.log.debugEnabled) return;
      const words = typeof detail === 'function' ? detail() : detail;
      const line = `dropped ${this.what}: ${shown}${words ? ` (${words})` : ''}${times}`;
      if (expected) this.log.debug(line);
      else this.log.warn(line);
    }
  }

  get(reason: Reason): number {
    return this.counts.get(reason);
  }

  get total(): number {
    return this.counts.total;
  }

  snapshot(): Record<string, number> {
    return this.counts.snapshot();
  }
}

/**
 * Events that a peer can repeat at will (a refused call, a WAN-Error-Notify): counted by key and
 * logged in the DropCounter style, the first time and then at 10, 100, 1000, ... occurrences with
 * the count, never one line per message. The text logged is that of the occurrence that logs.
 */
export class RepeatedEvents {
  private readonly counts: BoundedCounts;
  private readonly log: Logger;

  constructor(log: Logger, maxKeys = MAX_COUNTER_KEYS) {
    this.log = log;
    this.counts = new BoundedCounts(maxKeys);
  }

  /** One occurrence of `key`; `text` (a function: built only when it is logged) says what happened. */
  note(key: string, text: string | (() => string), level: 'info' | 'warn' = 'info'): void {
    const n = this.counts.add(key);
    if (!passedPowerOfTen(n - 1, n)) return;
    const words = typeof text === 'string' ? text : text();
    const line = n === 1 ? words : `${words} (${n} times so far)`;
    if (level === 'warn') this.log.warn(line);
    else this.log.info(line);
  }

  get(key: string): number {
    return this.counts.get(key);
  }

  snapshot(): Record<string, number> {
    return this.counts.snapshot();
  }
}

/** Whether (before, after] holds a power of ten (1, 10, 100, ...). */
function passedPowerOfTen(before: number, after: number): boolean {
  let p = 1;
  while (p <= before) p *= 10;
  return p <= after;
}
