import { readdirSync, readFileSync } from 'node:fs';
import type { Clock, TimerHandle } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';

/**
 * File descriptors kept in reserve. A server that lets connections take its last descriptors can
 * no longer accept on its control socket (`poptop sessions` / `kill`), change a route or run a
 * hook, so it refuses new connections and calls while fewer than `reserve` descriptors are left
 * under RLIMIT_NOFILE, with the reason in the log once per episode.
 *
 * Counting is cheap: the number of open descriptors is read from /proc/self/fd at most once per
 * `measureEveryMs` (every 100 ms near the limit) and kept current in between by the sockets the
 * server reports opened and closed.
 */

/** The soft RLIMIT_NOFILE from /proc/self/limits ("Max open files  SOFT  HARD  files"); undefined if unlimited or unreadable. */
export function readNofileLimit(path = '/proc/self/limits'): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^Max open files\s+(\S+)/m.exec(text);
  const n = m ? Number(m[1]) : Number.NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** Descriptors open in this process now (the directory's own descriptor not counted); throws if unreadable. */
export function countOpenFds(dir = '/proc/self/fd'): number {
  return readdirSync(dir).length - 1;
}

/** Why a new connection or call is refused, and whether even a polite refusal would cost too much. */
export interface FdShortage {
  /** With the numbers (logged once when refusing starts). */
  readonly reason: string;
  /** The same in words that do not change from one refusal to the next (for each refused call). */
  readonly brief: string;
  /** Within half the reserve of the limit: close at once rather than answer. */
  readonly critical: boolean;
}

export interface FdReserveOptions {
  clock: Clock;
  log: Logger;
  /** undefined: no limit known, never refuses. @default readNofileLimit() */
  limit?: number | undefined;
  /** Descriptors kept free. @default limit/32, at least 32 and at most 256 */
  reserve?: number;
  /** @default countOpenFds */
  count?: () => number;
  /** @default 1000 */
  measureEveryMs?: number;
  /**
   * How long accepting must last before the episode's end is logged. A burst of refused sockets
   * closing frees descriptors faster than new ones take them, so near the limit refusing stops and
   * starts again within a fraction of a second: one episode in the log, not one per swing.
   * @default 2000
   */
  episodeQuietMs?: number;
}

export class FdReserve {
  readonly limit: number | undefined;
  readonly reserve: number;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly count: () => number;
  private readonly measureEveryMs: number;
  private measured = 0;
  private delta = 0;
  private measuredAt = Number.NEGATIVE_INFINITY;
  private refusing = false;
  private refusals = 0;
  /** Bumped by each measurement; closes of descriptors opened before it are already in `measured`. */
  private epoch = 0;
  private recheck: TimerHandle | undefined;
  private readonly episodeQuietMs: number;
  /** Set while accepting again, until the end of the episode is logged. */
  private episodeEnd: TimerHandle | undefined;

  constructor(o: FdReserveOptions) {
    this.clock = o.clock;
    this.log = o.log;
    this.limit = 'limit' in o ? o.limit : readNofileLimit();
    this.reserve =
      o.reserve ?? (this.limit === undefined ? 0 : Math.min(256, Math.max(32, Math.floor(this.limit / 32))));
    this.count = o.count ?? countOpenFds;
    this.measureEveryMs = o.measureEveryMs ?? 1000;
    this.episodeQuietMs = o.episodeQuietMs ?? 2000;
  }

  /**
   * `n` descriptors were opened (an accepted socket, the pipes of a hook); call the returned
   * function once when they are closed (it does nothing the second time).
   *
   * A close only lowers the count when no measurement came between: the kernel may have freed the
   * descriptor before the close is reported ('close' events come a turn later), and a measurement
   * in between already left it out. Counting it again would drift low by a whole burst, and a low
   * count lets a burst of connections through to EMFILE. Until the next measurement the count may
   * stay high instead, which only refuses a little early.
   */
  opened(n = 1): () => void {
    this.delta += n;
    const epoch = this.epoch;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (epoch === this.epoch) this.delta -= n;
      if (this.refusing) this.recheckSoon(); // so the end of an episode is logged when it ends
    };
  }

  /** Descriptors in use, as last measured plus what was reported since. */
  get inUse(): number {
    return this.measured + this.delta;
  }

  /** For status: the limit, the reserve, what is in use, whether we refuse, how many were refused. */
  snapshot(): { limit: number | null; reserve: number; inUse: number; refusing: boolean; refused: number } {
    return {
      limit: this.limit ?? null,
      reserve: this.reserve,
      inUse: this.inUse,
      refusing: this.refusing,
      refused: this.refusals,
    };
  }

  /**
   * Whether one more connection or call may take descriptors: undefined if so, else why not.
   * Refusing starts `reserve` descriptors before the limit and stops once half a reserve more
   * is free again (so it does not flap). The start is logged once; the stop once accepting has
   * lasted `episodeQuietMs`, and a start within that time continues the episode unlogged.
   */
  check(): FdShortage | undefined {
    const limit = this.limit;
    if (limit === undefined || !this.update()) return undefined;
    const used = this.inUse;
    this.refusals++;
    return {
      reason: this.describe(used, limit),
      brief: `too few file descriptors left: the last ${this.reserve} are kept for the control socket, routes and the log`,
      critical: used >= limit - Math.ceil(this.reserve / 2),
    };
  }

  /** Measures if due, moves between accepting and refusing (logging each change); true when refusing. */
  private update(): boolean {
    const limit = this.limit;
    if (limit === undefined) return false;
    const now = this.clock.now();
    const near = this.inUse >= limit - 2 * this.reserve;
    if (now - this.measuredAt >= (near ? Math.min(100, this.measureEveryMs) : this.measureEveryMs))
      this.measure(now, limit);
    const used = this.inUse;
    const refuseAt = limit - this.reserve;
    if (this.refusing && used < refuseAt - Math.ceil(this.reserve / 2)) {
      this.refusing = false;
      if (this.episodeQuietMs > 0) {
        this.episodeEnd = this.clock.setTimer(this.episodeQuietMs, () => {
          this.episodeEnd = undefined;
          this.logEpisodeEnd(limit);
        });
      } else this.logEpisodeEnd(limit);
    } else if (!this.refusing && used >= refuseAt) {
      this.refusing = true;
      if (this.episodeEnd) {
        // Refusing again within the quiet time: the same episode, already logged.
        this.episodeEnd.cancel();
        this.episodeEnd = undefined;
      } else {
        this.refusals = 0;
        this.log.warn(`refusing new connections and calls: ${this.describe(used, limit)}`);
      }
    }
    return this.refusing;
  }

  /** Logged with the count measured now: up to `episodeQuietMs` after refusing stopped. */
  private logEpisodeEnd(limit: number): void {
    this.measure(this.clock.now(), limit);
    this.log.info(
      `accepting new connections and calls again: ${this.inUse} of ${limit} file descriptors in use (${this.refusals} refused meanwhile)`,
    );
  }

  /** While refusing: look again now, and once more when a measurement is next due. */
  private recheckSoon(): void {
    if (!this.update() || this.recheck) return;
    this.recheck = this.clock.setTimer(Math.min(100, this.measureEveryMs), () => {
      this.recheck = undefined;
      if (this.update()) this.recheckSoon();
    });
  }

  private describe(used: number, limit: number): string {
    return `${used} of ${limit} file descriptors in use (ulimit -n); the last ${this.reserve} are kept for the control socket, routes and the log`;
  }

  private measure(now: number, limit: number): void {
    try {
      this.measured = this.count();
    } catch {
      // Even listing /proc/self/fd needs a descriptor: failing to is itself the answer.
      this.measured = limit;
    }
    this.delta = 0;
    this.epoch++;
    this.measuredAt = now;
  }
}
