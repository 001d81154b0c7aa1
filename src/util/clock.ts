/**
 * Time is injected everywhere: protocol objects never read Date.now() or call setTimeout
 * themselves, so tests drive them with ManualClock, deterministically and without sleeping.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Call fn once after ms milliseconds unless cancelled. */
  setTimer(ms: number, fn: () => void): TimerHandle;
}

/** The longest delay a Node timer takes as given: a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The real clock (performance.now + setTimeout; timers do not keep the process alive). A timer
 * longer than MAX_TIMER_MS (pppd maxconnect/idle and RADIUS Session-Timeout go up to 2^31-1 and
 * 2^32-1 seconds) runs in steps of at most that.
 */
export class SystemClock implements Clock {
  now(): number {
    return performance.now();
  }
  setTimer(ms: number, fn: () => void): TimerHandle {
    // The common case, for every packet-driven timer: one Timeout and one small handle, no closures.
    if (ms <= MAX_TIMER_MS) return new NodeTimer(setTimeout(fn, Math.max(0, ms)).unref());
    let t: ReturnType<typeof setTimeout>;
    const step = (left: number): void => {
      const wait = Math.min(left, MAX_TIMER_MS);
      t = setTimeout(() => (left > MAX_TIMER_MS ? step(left - MAX_TIMER_MS) : fn()), wait);
      t.unref();
    };
    step(Math.max(0, ms));
    return { cancel: () => clearTimeout(t) };
  }
}

class NodeTimer implements TimerHandle {
  private readonly t: ReturnType<typeof setTimeout>;
  constructor(t: ReturnType<typeof setTimeout>) {
    this.t = t;
  }
  cancel(): void {
    clearTimeout(this.t);
  }
}

interface PendingTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A clock that moves only when told to. Timers fire in time order (then creation order). */
export class ManualClock implements Clock {
  private t = 0;
  private seq = 0;
  private timers: PendingTimer[] = [];

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const timer: PendingTimer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  /** Number of timers armed and not cancelled. */
  get pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Advance time by ms, firing every timer that falls due (including ones armed while advancing). */
  advance(ms: number): void {
    const target = this.t + ms;
    for (;;) {
      this.timers = this.timers.filter((t) => !t.cancelled);
      let next: PendingTimer | undefined;
      for (const t of this.timers) {
        if (t.at <= target && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (!next) break;
      this.t = next.at;
      next.cancelled = true;
      next.fn();
    }
    this.t = target;
  }

  /** Fire timers until none is left or `limitMs` of virtual time has passed. */
  runAll(limitMs = 3_600_000): void {
    const stop = this.t + limitMs;
    while (this.t < stop) {
      const live = this.timers.filter((t) => !t.cancelled);
      if (live.length === 0) return;
      const nextAt = Math.min(...live.map((t) => t.at));
      this.advance(Math.max(0, Math.min(nextAt, stop) - this.t));
    }
  }
}
