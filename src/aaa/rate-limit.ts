/**
 * Per-user rate limits (poptop's `rate-limit DOWN[/UP]`, in the pppd options file for every user
 * or after `--` in a chap-secrets entry for one): bits per second towards the client (down) and
 * from it (up), policed with a token bucket per direction. Packets beyond the rate are dropped,
 * as a shaper at the far end of a slower link would; TCP adapts to it.
 */

export interface RateLimit {
  /** Bits per second from the server to the client; 0 = unlimited. */
  readonly downBps: number;
  /** Bits per second from the client; 0 = unlimited. */
  readonly upBps: number;
}

/** The highest rate accepted, in bits per second (`rate-limit`, Mikrotik-Rate-Limit, Filter-Id). */
export const MAX_BPS = 100e9;

const UNITS: Record<string, number> = { k: 1000, m: 1_000_000, g: 1_000_000_000 };

/**
 * A rate in bits per second: a number (a fraction allowed) with an optional unit k, M or G and an
 * optional "bit" or "bps"; a bare number counts in `bareUnit` bits per second. Undefined when
 * malformed or above MAX_BPS.
 */
export function parseRate(text: string, bareUnit: number): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)(?:bit|bps)?$/.exec(text);
  if (!m) return undefined;
  const v = Number(m[1]) * (m[2] ? UNITS[m[2].toLowerCase()]! : bareUnit);
  return Number.isFinite(v) && v >= 0 && v <= MAX_BPS ? Math.round(v) : undefined;
}

/**
 * `DOWN[/UP]`: numbers with an optional unit k, M or G (bits per second); a bare number is kbit/s,
 * as accel-ppp reads it; 0 is unlimited; UP defaults to DOWN. A message in words when malformed.
 */
export function parseRateLimit(text: string): RateLimit | string {
  const [down, up, extra] = text.split('/');
  const d = parseRate(down ?? '', 1000);
  const u = up === undefined ? d : parseRate(up, 1000);
  if (extra !== undefined || d === undefined || u === undefined) {
    return `"rate-limit" expects DOWN[/UP] in bits per second with k, M or G (a bare number is kbit/s), e.g. 2M/512k; got "${text}"`;
  }
  return { downBps: d, upBps: u };
}

export function formatRate(bps: number): string {
  if (bps === 0) return 'unlimited';
  if (bps % 1_000_000 === 0) return `${bps / 1_000_000} Mbit/s`;
  return `${Math.round(bps / 1000)} kbit/s`;
}

/** See TokenBucket.msUntilRefilled: about 24 full-size packets, or 100 ms of traffic. */
const REFILL_BYTES = 32 * 1024;
const REFILL_MS = 100;

/** Token bucket policing one direction: `rateBps` bits per second, bursts of `burstBytes`. */
export class TokenBucket {
  private readonly bytesPerMs: number;
  private readonly burst: number;
  private tokens: number;
  private last: number;

  constructor(rateBps: number, nowMs: number, burstBytes?: number) {
    this.bytesPerMs = rateBps / 8 / 1000;
    // 100 ms of traffic, at least a few full-size packets, so that TCP can keep its window open.
    this.burst = burstBytes ?? Math.max(16 * 1024, Math.round((rateBps / 8) * 0.1));
    this.tokens = this.burst;
    this.last = nowMs;
  }

  /** Whether `bytes` may pass now (and take them). */
  take(bytes: number, nowMs: number): boolean {
    const elapsed = nowMs - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + elapsed * this.bytesPerMs);
      this.last = nowMs;
    }
    if (this.tokens < bytes) return false;
    this.tokens -= bytes;
    return true;
  }

  /**
   * Milliseconds until the bucket holds the refill target again (0 if it does, at least 1 if not):
   * REFILL_BYTES, half its burst or REFILL_MS of traffic, whichever is least (what passes at once
   * after it fits a GRE window, and a slow client waits no longer than it must), but at least
   * `bytes`, the packet it refused.
   */
  msUntilRefilled(nowMs: number, bytes = 0): number {
    const tokens = Math.min(this.burst, this.tokens + Math.max(0, nowMs - this.last) * this.bytesPerMs);
    const target = Math.max(bytes, Math.min(REFILL_BYTES, this.burst / 2, this.bytesPerMs * REFILL_MS));
    const missing = target - tokens;
    return missing <= 0 ? 0 : Math.max(1, Math.ceil(missing / this.bytesPerMs));
  }
}
