import type { Logger } from './log.ts';

/**
 * Counts dropped input by reason, and logs each reason in words the first time it occurs
 * (then again at 10, 100, 1000, ... occurrences), so a flood of bad packets cannot flood the log.
 */
export class DropCounter {
  private readonly counts = new Map<string, number>();
  private readonly log: Logger;
  private readonly what: string;

  constructor(log: Logger, what: string) {
    this.log = log;
    this.what = what;
  }

  drop(reason: string, detail?: string): void {
    const n = (this.counts.get(reason) ?? 0) + 1;
    this.counts.set(reason, n);
    if (n === 1 || isPowerOfTen(n)) {
      const times = n === 1 ? '' : ` (${n} times so far)`;
      this.log.warn(`dropped ${this.what}: ${reason}${detail ? ` (${detail})` : ''}${times}`);
    }
  }

  get(reason: string): number {
    return this.counts.get(reason) ?? 0;
  }

  get total(): number {
    let t = 0;
    for (const n of this.counts.values()) t += n;
    return t;
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}

function isPowerOfTen(n: number): boolean {
  while (n >= 10 && n % 10 === 0) n /= 10;
  return n === 1;
}
