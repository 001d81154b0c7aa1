import type { Clock, TimerHandle } from '../util/clock.ts';
import { quote } from '../util/escape.ts';
import type { Logger } from '../util/log.ts';
import { extend } from '../util/objects.ts';

/**
 * Back-off for password guessing (RFC 2759 §10 asks authenticators to limit the rate of failed
 * attempts). Two tables, both bounded and both expiring:
 *
 * - **per source address** (the real defence): every failed login from an address makes the next
 *   answers to that address slower (delayS, doubled per failure, at most maxDelayS). `failLimit`
 *   failures within `windowS` lock the address out for `lockoutS`; each further lockout of the same
 *   address doubles, up to maxLockoutS. While locked out, no password is checked: the peer gets the
 *   protocol's ordinary failure answer (for MS-CHAP "E=691 R=0", as for a wrong password), so
 *   guessing learns nothing. A success from an address clears the failures of that user name
 *   there (a mistyped password then the right one costs nothing more); failures for other names
 *   stay, so logging in to an account of one's own does not reset the guessing of another.
 * - **per user name** (a slow brake only): after `userFreeFailures` failures for one name within
 *   `windowS`, from any addresses, answers for that name are delayed by `userDelayS` per further
 *   failure, at most `userMaxDelayS`. A user name is never locked: an attacker spraying from many
 *   addresses must not lock the real user out from everywhere.
 *
 * The delay is decided before the password is checked and applies to the answer whatever it is
 * (success too), so a peer cannot tell a wrong password by the answer being late. A source with no
 * recent failures, for a name with few, is answered at once.
 *
 * Logging: one warning per episode, when an address is locked out ("203.0.113.5: 10 failed logins
 * for 3 users in 40 s; locked out for 300 s"), one when its lockout ends with the attempts refused
 * meanwhile, and one when a user name starts being slowed down. The exchanges log one line per
 * failure at most, and only at debug level for a locked-out address.
 */
export interface LoginThrottleSettings {
  /** Failed logins from one address within windowS that lock it out (pptpd.conf `auth-fail-limit`). */
  readonly failLimit: number;
  /** The first lockout of an address, in seconds (`auth-lockout`); each further one doubles. */
  readonly lockoutS: number;
  /** The longest lockout, in seconds. */
  readonly maxLockoutS: number;
  /** How long a failure counts, in seconds (`auth-fail-window`). */
  readonly windowS: number;
  /** Delay after the first failure from an address, in seconds; doubles per failure. */
  readonly delayS: number;
  /** The longest per-address delay, in seconds. */
  readonly maxDelayS: number;
  /** Failures for one user name (from anywhere) that cost nothing. */
  readonly userFreeFailures: number;
  /** Per-user delay added for each failure beyond userFreeFailures, in seconds. */
  readonly userDelayS: number;
  /** The longest per-user delay, in seconds. */
  readonly userMaxDelayS: number;
  /** Most addresses remembered; the least recently seen is forgotten first. */
  readonly maxSources: number;
  /** Most user names remembered; the least recently seen is forgotten first. */
  readonly maxUsers: number;
}

export const DEFAULT_LOGIN_THROTTLE: LoginThrottleSettings = Object.freeze({
  failLimit: 10,
  lockoutS: 300,
  maxLockoutS: 3600,
  windowS: 600,
  delayS: 1,
  maxDelayS: 8,
  userFreeFailures: 3,
  userDelayS: 1,
  userMaxDelayS: 5,
  maxSources: 10_000,
  maxUsers: 10_000,
});

/** What an authenticator asks before checking a password. */
export interface ThrottleVerdict {
  /** The address is locked out: answer with the failure message, without checking the password. */
  readonly locked: boolean;
  /** Wait this long before answering (success or failure). */
  readonly delayMs: number;
}

/** The part of LoginThrottle the authenticators use (ppp/auth AuthenticatorOptions.throttle). */
export interface AuthThrottle {
  /** Before checking: may `source` try, and how long must the answer wait? */
  assess(source: string, user: string): ThrottleVerdict;
  /** The password (or name) was wrong. */
  failed(source: string, user: string): void;
  /** The peer authenticated: that name's failures from the address are forgotten. */
  succeeded(source: string, user: string): void;
}

/**
 * At most this many distinct names are remembered per address, each with its failures (for the
 * count in the log, and for a success to forget only its own). Failures for names beyond this are
 * still counted for the address, and a success never takes them back.
 */
const MAX_NAMES_PER_SOURCE = 64;

interface SourceEntry {
  /** Start of the current counting window (first failure in it). */
  windowStart: number;
  failures: number;
  /** Failures per user name within `failures`. */
  users: Map<string, number>;
  lockedUntil: number;
  lockouts: number;
  /** Attempts refused during the current lockout. */
  refused: number;
  timer: TimerHandle | undefined;
}

interface UserEntry {
  windowStart: number;
  failures: number;
  sources: Set<string>;
  /** The slow-down of this name has been logged in this window. */
  logged: boolean;
}

export class LoginThrottle implements AuthThrottle {
  private current: LoginThrottleSettings;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly sources = new Map<string, SourceEntry>();
  private readonly users = new Map<string, UserEntry>();

  /** Told of every failed login (workers: the primary passes it to the other workers). */
  private readonly onFailure: ((source: string, user: string) => void) | undefined;

  constructor(
    settings: Partial<LoginThrottleSettings>,
    deps: { clock: Clock; log: Logger; onFailure?: (source: string, user: string) => void },
  ) {
    this.current = extend(DEFAULT_LOGIN_THROTTLE, settings);
    checkSettings(this.current);
    this.clock = deps.clock;
    this.log = deps.log;
    this.onFailure = deps.onFailure;
  }

  get settings(): LoginThrottleSettings {
    return this.current;
  }

  /**
   * New settings (SIGHUP), keeping what is remembered: failures already counted and lockouts under
   * way stay (a running lockout keeps its end); the new limits apply from the next login.
   */
  update(settings: Partial<LoginThrottleSettings>): void {
    const next = extend(DEFAULT_LOGIN_THROTTLE, settings);
    checkSettings(next);
    this.current = next;
    this.evict(this.sources, next.maxSources);
    this.evict(this.users, next.maxUsers);
  }

  /** Addresses and user names currently remembered. */
  get size(): { sources: number; users: number } {
    return { sources: this.sources.size, users: this.users.size };
  }

  /** Is `source` locked out now? */
  isLocked(source: string): boolean {
    const e = this.sources.get(source);
    return e !== undefined && e.lockedUntil > this.clock.now();
  }

  assess(source: string, user: string): ThrottleVerdict {
    const now = this.clock.now();
    this.sweep(now);
    const s = this.sources.get(source);
    if (s && s.lockedUntil > now) {
      s.refused++;
      this.touch(this.sources, source, s);
      return { locked: true, delayMs: this.settings.maxDelayS * 1000 };
    }
    const delayS = Math.max(this.sourceDelayS(s, now), this.userDelayS(this.users.get(user), now));
    return { locked: false, delayMs: Math.round(delayS * 1000) };
  }

  failed(source: string, user: string): void {
    const now = this.clock.now();
    this.sweep(now);
    this.onFailure?.(source, user);
    this.failedForUser(source, user, now);
    const s = this.sourceEntry(source, now);
    if (s.lockedUntil > now) return; // counted as refused by assess()
    if (s.failures === 0 || now - s.windowStart >= this.settings.windowS * 1000) {
      s.windowStart = now;
      s.failures = 0;
      s.users.clear();
    }
    s.failures++;
    const mine = s.users.get(user);
    if (mine !== undefined) s.users.set(user, mine + 1);
    else if (s.users.size < MAX_NAMES_PER_SOURCE) s.users.set(user, 1);
    if (s.failures >= this.settings.failLimit) this.lockOut(source, s, now);
  }

  /**
   * A failed login that another process saw (workers: the addresses are split among them, user
   * names are not): it counts for the user name's brake only; the address's own back-off is kept by
   * the worker that serves the address.
   */
  failedElsewhere(source: string, user: string): void {
    const now = this.clock.now();
    this.sweep(now);
    this.failedForUser(source, user, now);
  }

  succeeded(source: string, user: string): void {
    const s = this.sources.get(source);
    if (!s || s.lockedUntil > this.clock.now()) return;
    s.failures = Math.max(0, s.failures - (s.users.get(user) ?? 0));
    s.users.delete(user);
    if (s.failures === 0) this.forgetSource(source, s);
  }

  /** Cancel the lockout timers (the server is stopping). */
  close(): void {
    for (const s of this.sources.values()) s.timer?.cancel();
    this.sources.clear();
    this.users.clear();
  }

  private sourceDelayS(s: SourceEntry | undefined, now: number): number {
    if (!s || s.failures === 0 || now - s.windowStart >= this.settings.windowS * 1000) return 0;
    return Math.min(this.settings.maxDelayS, this.settings.delayS * 2 ** Math.min(s.failures - 1, 30));
  }

  private userDelayS(u: UserEntry | undefined, now: number): number {
    if (!u || now - u.windowStart >= this.settings.windowS * 1000) return 0;
    const beyond = u.failures - this.settings.userFreeFailures;
    return beyond <= 0 ? 0 : Math.min(this.settings.userMaxDelayS, this.settings.userDelayS * beyond);
  }

  private failedForUser(source: string, user: string, now: number): void {
    let u = this.users.get(user);
    if (!u || now - u.windowStart >= this.settings.windowS * 1000) {
      u = { windowStart: now, failures: 0, sources: new Set(), logged: false };
    }
    u.failures++;
    if (u.sources.size < MAX_NAMES_PER_SOURCE) u.sources.add(source);
    this.touch(this.users, user, u);
    this.evict(this.users, this.settings.maxUsers);
    if (!u.logged && u.failures > this.settings.userFreeFailures) {
      u.logged = true;
      const n = u.sources.size;
      this.log.warn(
        `user ${quote(user)}: ${u.failures} failed logins from ${n}${n >= MAX_NAMES_PER_SOURCE ? '+' : ''} ` +
          `address${n === 1 ? '' : 'es'} in ${seconds(now - u.windowStart)}; answers for this name are ` +
          `delayed (up to ${this.settings.userMaxDelayS} s) until ${seconds(this.settings.windowS * 1000)} pass`,
      );
    }
  }

  private sourceEntry(source: string, now: number): SourceEntry {
    let s = this.sources.get(source);
    if (!s) {
      s = {
        windowStart: now,
        failures: 0,
        users: new Map(),
        lockedUntil: 0,
        lockouts: 0,
        refused: 0,
        timer: undefined,
      };
    }
    this.touch(this.sources, source, s);
    this.evict(this.sources, this.settings.maxSources);
    return s;
  }

  private lockOut(source: string, s: SourceEntry, now: number): void {
    s.lockouts++;
    const lockS = Math.min(
      this.settings.maxLockoutS,
      this.settings.lockoutS * 2 ** Math.min(s.lockouts - 1, 30),
    );
    s.lockedUntil = now + lockS * 1000;
    s.refused = 0;
    const n = s.users.size;
    const again = s.lockouts > 1 ? ` (lockout ${s.lockouts} of this address)` : '';
    this.log.warn(
      `${source}: ${s.failures} failed logins for ${n}${n >= MAX_NAMES_PER_SOURCE ? '+' : ''} user${n === 1 ? '' : 's'} ` +
        `in ${seconds(now - s.windowStart)}; locked out for ${lockS} s${again}`,
    );
    s.failures = 0;
    s.users.clear();
    s.timer?.cancel();
    s.timer = this.clock.setTimer(lockS * 1000, () => this.lockoutEnded(source, s));
  }

  private lockoutEnded(source: string, s: SourceEntry): void {
    s.timer = undefined;
    if (this.sources.get(source) !== s) return;
    const refused = s.refused;
    s.refused = 0;
    this.log.info(
      `${source}: lockout over; ${refused} login attempt${refused === 1 ? ' was' : 's were'} refused during it`,
    );
  }

  /** When an entry may be forgotten: its window is over, and a locked address stays for maxLockoutS more. */
  private sourceExpiry(s: SourceEntry): number {
    const windowEnd = s.windowStart + this.settings.windowS * 1000;
    return s.lockouts > 0 ? Math.max(windowEnd, s.lockedUntil + this.settings.maxLockoutS * 1000) : windowEnd;
  }

  /** Forget expired entries, oldest first (both maps are in order of last use). */
  private sweep(now: number): void {
    for (const [k, s] of this.sources) {
      if (this.sourceExpiry(s) > now) break;
      this.forgetSource(k, s);
    }
    for (const [k, u] of this.users) {
      if (u.windowStart + this.settings.windowS * 1000 > now) break;
      this.users.delete(k);
    }
  }

  private forgetSource(source: string, s: SourceEntry): void {
    s.timer?.cancel();
    this.sources.delete(source);
  }

  private touch<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    map.set(key, value);
  }

  private evict<V>(map: Map<string, V>, max: number): void {
    for (const [k, v] of map) {
      if (map.size <= max) break;
      if (map === (this.sources as Map<string, unknown>)) this.forgetSource(k, v as SourceEntry);
      else map.delete(k);
    }
  }
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}

function checkSettings(s: LoginThrottleSettings): void {
  for (const [k, v] of Object.entries(s)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new RangeError(`login throttle: ${k} must be a number >= 0, got ${String(v)}`);
    }
  }
  if (s.failLimit < 1 || s.maxSources < 1 || s.maxUsers < 1) {
    throw new RangeError('login throttle: failLimit, maxSources and maxUsers must be at least 1');
  }
}
