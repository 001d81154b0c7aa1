import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { escapeControls } from '../util/escape.ts';
import { formatIPv4, type IPv4 } from '../wire/ip.ts';
import { classifyEnd, END_CODES, type EndCode } from './end-reasons.ts';
import type { ServerObserver } from './observer.ts';

/**
 * Prometheus metrics (text exposition format 0.0.4), written here rather than with prom-client:
 * what we export is a few dozen series whose values already live in the server (session counters,
 * the pool, drop tables), so a scrape is one pass over the live sessions adding numbers, and one
 * string join. prom-client would have us mirror every value into its own metric objects (on the
 * packet path, or in collect() callbacks doing the same pass) and then serialise through its
 * registry, for no series we could not write in a few lines.
 *
 * Cost per scrape at N live sessions: one loop over the sessions reading four numbers and a state
 * string (no allocation per session), plus the drop tables of at most LIVE_DROPS_PER_SCRAPE
 * sessions (their per-layer drop counts are objects built on demand): the sessions are visited
 * round-robin, so at 60,000 sessions each one's drops are re-read every 30th scrape. A session's
 * final counts are folded into the totals when it closes, so the totals never go backwards.
 */

/** What the metrics read of a session (server/session.ts Session has all of it). */
export interface MetricsSession {
  readonly id: string;
  readonly peer: IPv4;
  readonly userName: string | undefined;
  readonly isUp: boolean;
  readonly state: string;
  readonly closeReason: string | undefined;
  readonly traffic: Readonly<{ bytesIn: number; bytesOut: number; packetsIn: number; packetsOut: number }>;
  layerDrops(): Record<string, Record<string, number> | undefined>;
}

/** What the metrics read of the server (server/server.ts PptpServer has all of it). */
export interface MetricsSource {
  readonly liveSessions: Iterable<MetricsSession>;
  readonly leases: { readonly poolSize: number; readonly poolFree: number };
  readonly drops: { snapshot(): Record<string, number> };
  readonly currentSettings: { readonly maxConnections: number };
  /** RADIUS clients' request counters, when RADIUS is configured. */
  readonly radius?: { clientStats(): RadiusClientStats[] } | undefined;
}

/** One RADIUS client's counters as RadiusService.clientStats gives them. */
export interface RadiusClientStats {
  purpose: string;
  stats: { transmissions: number; replies: number; timeouts: number; failed: number };
  down: number;
}

/** Drop counters outside the server object (the raw GRE socket, the TUN device), by layer name. */
export interface ExtraDrops {
  layer: string;
  drops: { snapshot(): Record<string, number> };
}

/** One failed connection attempt, for the status page. */
export interface FailureRecord {
  /** Milliseconds since the epoch. */
  at: number;
  peer: string;
  user: string | null;
  code: EndCode;
  words: string;
  /** The reason as logged (escaped: network text in it is inert). */
  detail: string;
}

export const LIVE_DROPS_PER_SCRAPE = 2000;
/** Failed attempts kept for the status page (and listed from all workers together). */
export const RECENT_FAILURES = 20;
/** Distinct reasons kept per layer in the folded totals; further ones count as "other". */
const MAX_REASONS_PER_LAYER = 64;
const LAG_WINDOW_MS = 10_000;

type LayerTable = Map<string, Map<string, number>>;

function addTo(table: LayerTable, layer: string, counts: Record<string, number> | undefined): void {
  if (!counts) return;
  let t = table.get(layer);
  for (const reason in counts) {
    const n = counts[reason]!;
    if (n === 0) continue;
    if (!t) {
      t = new Map();
      table.set(layer, t);
    }
    const key = t.has(reason) || t.size < MAX_REASONS_PER_LAYER ? reason : 'other';
    t.set(key, (t.get(key) ?? 0) + n);
  }
}

function hasAny(d: Record<string, Record<string, number> | undefined>): boolean {
  for (const layer in d) {
    const t = d[layer];
    if (t) for (const r in t) if (t[r]! > 0) return true;
  }
  return false;
}

export class ServerMetrics implements ServerObserver {
  private readonly source: MetricsSource;
  private readonly extra: ExtraDrops[];
  private readonly now: () => number;
  readonly startedAt: number;
  private setups = 0;
  private readonly failures = new Map<EndCode, number>();
  private readonly ends = new Map<EndCode, number>();
  private readonly authFailures = new Map<string, number>();
  private readonly closedTraffic = { bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0 };
  private readonly closedDrops: LayerTable = new Map();
  /** Last drop counts read from live sessions that had any. */
  private readonly liveDrops = new Map<MetricsSession, Record<string, Record<string, number> | undefined>>();
  private cursor: Iterator<MetricsSession> | undefined;
  /** Sessions whose call was refused: counted then, not again when they close. */
  private readonly refused = new WeakSet<MetricsSession>();
  private readonly recent: FailureRecord[] = [];
  private readonly lag: IntervalHistogram | undefined;
  private lagWindow = { p50: 0, p99: 0, max: 0 };
  private lagTimer: NodeJS.Timeout | undefined;

  constructor(
    source: MetricsSource,
    opts: { extraDrops?: ExtraDrops[]; now?: () => number; eventLoop?: boolean } = {},
  ) {
    this.source = source;
    this.extra = opts.extraDrops ?? [];
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
    if (opts.eventLoop !== false) {
      this.lag = monitorEventLoopDelay({ resolution: 10 });
      this.lag.enable();
      this.lagTimer = setInterval(() => this.closeLagWindow(), LAG_WINDOW_MS);
      this.lagTimer.unref();
    }
  }

  /** Stop sampling the event loop. */
  close(): void {
    this.lag?.disable();
    if (this.lagTimer) clearInterval(this.lagTimer);
  }

  private closeLagWindow(): void {
    const h = this.lag;
    if (!h || h.count === 0) return;
    this.lagWindow = { p50: h.percentile(50) / 1e9, p99: h.percentile(99) / 1e9, max: h.max / 1e9 };
    h.reset();
  }

  // ---- ServerObserver ----

  connectionRefused(peer: string, reason: string): void {
    this.failed(classifyEnd(reason).code, peer, null, reason);
  }

  callRefused(session: MetricsSession, reason: string): void {
    this.refused.add(session);
    this.failed(classifyEnd(reason).code, formatIPv4(session.peer), session.userName ?? null, reason);
  }

  sessionUp(): void {
    this.setups++;
  }

  sessionClosed(session: MetricsSession): void {
    const t = session.traffic;
    this.closedTraffic.bytesIn += t.bytesIn;
    this.closedTraffic.bytesOut += t.bytesOut;
    this.closedTraffic.packetsIn += t.packetsIn;
    this.closedTraffic.packetsOut += t.packetsOut;
    const d = session.layerDrops();
    for (const layer in d) addTo(this.closedDrops, layer, d[layer]);
    this.liveDrops.delete(session);
    const why = classifyEnd(session.closeReason);
    if (why.method !== undefined) inc(this.authFailures, why.method);
    if (session.isUp) inc(this.ends, why.code);
    else if (!this.refused.has(session)) {
      this.failed(why.code, formatIPv4(session.peer), session.userName ?? null, session.closeReason ?? '');
    }
  }

  private failed(code: EndCode, peer: string, user: string | null, reason: string): void {
    inc(this.failures, code);
    const words = classifyEnd(reason).words;
    this.recent.push({ at: this.now(), peer, user, code, words, detail: escapeControls(reason) });
    if (this.recent.length > RECENT_FAILURES) this.recent.shift();
  }

  // ---- reading ----

  /** The last failed connection attempts, newest last. */
  recentFailures(): readonly FailureRecord[] {
    return this.recent;
  }

  /** Traffic of every session since start (closed ones and live ones). */
  totals(): { bytesIn: number; bytesOut: number; packetsIn: number; packetsOut: number } {
    const t = { ...this.closedTraffic };
    for (const s of this.source.liveSessions) {
      const c = s.traffic;
      t.bytesIn += c.bytesIn;
      t.bytesOut += c.bytesOut;
      t.packetsIn += c.packetsIn;
      t.packetsOut += c.packetsOut;
    }
    return t;
  }

  /** Re-read the drop counts of up to `limit` live sessions, continuing where the last scrape stopped. */
  private refreshLiveDrops(limit: number): void {
    let restarted = false;
    for (let i = 0; i < limit; ) {
      this.cursor ??= this.source.liveSessions[Symbol.iterator]();
      const next = this.cursor.next();
      if (next.done) {
        this.cursor = undefined;
        if (restarted) break;
        restarted = true;
        continue;
      }
      i++;
      const d = next.value.layerDrops();
      if (hasAny(d)) this.liveDrops.set(next.value, d);
    }
  }

  /** This process's numbers, ready to render or to merge with other processes' (workers). */
  data(): MetricsData {
    const states: Record<string, number> = { up: 0 };
    const traffic = { ...this.closedTraffic };
    for (const s of this.source.liveSessions) {
      const st = s.state;
      states[st] = (states[st] ?? 0) + 1;
      const c = s.traffic;
      traffic.bytesIn += c.bytesIn;
      traffic.bytesOut += c.bytesOut;
      traffic.packetsIn += c.packetsIn;
      traffic.packetsOut += c.packetsOut;
    }
    this.refreshLiveDrops(LIVE_DROPS_PER_SCRAPE);
    const drops: LayerTable = new Map();
    for (const [layer, t] of this.closedDrops) drops.set(layer, new Map(t));
    for (const d of this.liveDrops.values()) for (const layer in d) addTo(drops, layer, d[layer]);
    addTo(drops, 'server', this.source.drops.snapshot());
    for (const e of this.extra) addTo(drops, e.layer, e.drops.snapshot());
    const dropsOut: Record<string, Record<string, number>> = {};
    for (const [layer, t] of drops) dropsOut[layer] = Object.fromEntries(t);
    const authFailures: Record<string, number> = {};
    for (const m of AUTH_METHODS) authFailures[m] = 0;
    for (const [m, n] of this.authFailures) authFailures[m] = n;
    if (this.lag && this.lagWindow.max === 0) this.closeLagWindowPeek();
    const radius = this.source.radius?.clientStats();
    return {
      startedAt: this.startedAt,
      states,
      limit: this.source.currentSettings.maxConnections,
      setups: this.setups,
      failures: Object.fromEntries(this.failures),
      ends: Object.fromEntries(this.ends),
      authFailures,
      traffic,
      drops: dropsOut,
      pool: { size: this.source.leases.poolSize, free: this.source.leases.poolFree },
      ...(radius ? { radius: radiusMetrics(radius) } : {}),
      ...(this.lag ? { lag: { ...this.lagWindow } } : {}),
    };
  }

  /** The metrics in Prometheus text format. */
  render(): string {
    return renderMetrics(this.data());
  }

  /** Before the first window closes: report what has been measured so far, without resetting. */
  private closeLagWindowPeek(): void {
    const h = this.lag;
    if (!h || h.count === 0) return;
    this.lagWindow = { p50: h.percentile(50) / 1e9, p99: h.percentile(99) / 1e9, max: h.max / 1e9 };
  }
}

const AUTH_METHODS = ['mschapv2', 'mschap', 'chap-md5', 'pap'];

/** RADIUS clients' counters (RadiusService.clientStats) as metrics data. */
export function radiusMetrics(stats: readonly RadiusClientStats[]): RadiusMetrics[] {
  return stats.map((r) => ({
    purpose: r.purpose,
    transmissions: r.stats.transmissions,
    replies: r.stats.replies,
    timeouts: r.stats.timeouts,
    failed: r.stats.failed,
    down: r.down,
  }));
}

/** One RADIUS client's request counts (a purpose: authentication, accounting). */
export interface RadiusMetrics {
  purpose: string;
  transmissions: number;
  replies: number;
  timeouts: number;
  failed: number;
  down: number;
}

/**
 * What /metrics shows, as plain data (JSON-safe): one process's numbers (ServerMetrics.data), or
 * the sum over the workers of a primary (mergeMetrics), rendered by renderMetrics.
 */
export interface MetricsData {
  startedAt: number;
  /** Live sessions by state ("up" always present). */
  states: Record<string, number>;
  limit: number;
  setups: number;
  /** Set-up failures by end code. */
  failures: Record<string, number>;
  /** Ends of sessions that were up, by end code. */
  ends: Record<string, number>;
  authFailures: Record<string, number>;
  traffic: { bytesIn: number; bytesOut: number; packetsIn: number; packetsOut: number };
  /** Drops by layer, then reason. */
  drops: Record<string, Record<string, number>>;
  pool: { size: number; free: number };
  radius?: RadiusMetrics[];
  /** Event-loop delay over the last window, seconds (with workers: the slowest process's). */
  lag?: { p50: number; p99: number; max: number };
}

function addCounts(into: Record<string, number>, from: Record<string, number> | undefined): void {
  if (!from) return;
  for (const k in from) into[k] = (into[k] ?? 0) + (from[k] ?? 0);
}

/**
 * The workers' numbers summed (sessions, set-ups, failures, traffic, drops, RADIUS requests); the
 * event-loop delay is the worst process's. What only the primary knows (the limit, the pool, when
 * it started, its own drops) is given in `primary` and replaces the workers' view of it.
 */
export function mergeMetrics(
  parts: readonly MetricsData[],
  primary: Pick<MetricsData, 'startedAt' | 'limit' | 'pool'> & {
    drops?: Record<string, Record<string, number>>;
    lag?: MetricsData['lag'];
    /** The primary's own RADIUS requests (Accounting-On/Off, the Stops of a dead worker's sessions). */
    radius?: RadiusMetrics[];
  },
): MetricsData {
  const out: MetricsData = {
    startedAt: primary.startedAt,
    states: { up: 0 },
    limit: primary.limit,
    setups: 0,
    failures: {},
    ends: {},
    authFailures: {},
    traffic: { bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0 },
    drops: {},
    pool: primary.pool,
  };
  const radius = new Map<string, RadiusMetrics>();
  const lags = primary.lag ? [primary.lag] : [];
  // Drops and RADIUS requests: the primary's own as well as the workers'.
  const own: Partial<MetricsData> = { drops: primary.drops ?? {}, radius: primary.radius ?? [] };
  for (const d of [own, ...parts]) {
    for (const layer in d.drops) {
      let t = out.drops[layer];
      if (!t) {
        t = {};
        out.drops[layer] = t;
      }
      addCounts(t, d.drops[layer]);
    }
    for (const r of d.radius ?? []) {
      const m = radius.get(r.purpose);
      if (!m) radius.set(r.purpose, { ...r });
      else {
        m.transmissions += r.transmissions;
        m.replies += r.replies;
        m.timeouts += r.timeouts;
        m.failed += r.failed;
        m.down = Math.max(m.down, r.down);
      }
    }
  }
  for (const d of parts) {
    addCounts(out.states, d.states);
    out.setups += d.setups;
    addCounts(out.failures, d.failures);
    addCounts(out.ends, d.ends);
    addCounts(out.authFailures, d.authFailures);
    addCounts(out.traffic, d.traffic);
    if (d.lag) lags.push(d.lag);
  }
  if (radius.size > 0) out.radius = [...radius.values()];
  if (lags.length > 0) {
    out.lag = {
      p50: Math.max(...lags.map((l) => l.p50)),
      p99: Math.max(...lags.map((l) => l.p99)),
      max: Math.max(...lags.map((l) => l.max)),
    };
  }
  return out;
}

/** The Prometheus text exposition (format 0.0.4) of `d`. */
export function renderMetrics(d: MetricsData): string {
  const w = new Exposition();
  w.family('poptop_sessions', 'gauge', 'Sessions by state ("up", or how far the set-up got).');
  for (const state in d.states) w.sample('poptop_sessions', { state }, d.states[state]!);
  w.family('poptop_sessions_limit', 'gauge', 'Most concurrent sessions (pptpd.conf connections).');
  w.sample('poptop_sessions_limit', undefined, d.limit);

  w.family('poptop_session_setups_total', 'counter', 'Sessions whose network layer came up.');
  w.sample('poptop_session_setups_total', undefined, d.setups);
  w.family(
    'poptop_session_setup_failures_total',
    'counter',
    'Connection attempts that ended before the network layer came up, by reason.',
  );
  for (const code of END_CODES)
    w.sample('poptop_session_setup_failures_total', { reason: code }, d.failures[code] ?? 0);
  w.family('poptop_session_ends_total', 'counter', 'Sessions that were up and ended, by reason.');
  for (const code of END_CODES) w.sample('poptop_session_ends_total', { reason: code }, d.ends[code] ?? 0);
  w.family('poptop_auth_failures_total', 'counter', 'Failed logins, by authentication method.');
  for (const method in d.authFailures)
    w.sample('poptop_auth_failures_total', { method }, d.authFailures[method]!);

  w.family('poptop_tunnel_bytes_total', 'counter', 'IP bytes through the tunnels (in: from clients).');
  w.sample('poptop_tunnel_bytes_total', { direction: 'in' }, d.traffic.bytesIn);
  w.sample('poptop_tunnel_bytes_total', { direction: 'out' }, d.traffic.bytesOut);
  w.family('poptop_tunnel_packets_total', 'counter', 'IP packets through the tunnels (in: from clients).');
  w.sample('poptop_tunnel_packets_total', { direction: 'in' }, d.traffic.packetsIn);
  w.sample('poptop_tunnel_packets_total', { direction: 'out' }, d.traffic.packetsOut);

  w.family('poptop_drops_total', 'counter', 'Dropped input, by layer and reason.');
  for (const layer in d.drops) {
    const t = d.drops[layer]!;
    for (const reason in t) w.sample('poptop_drops_total', { layer, reason }, t[reason]!);
  }

  w.family('poptop_pool_addresses', 'gauge', 'Addresses in the remoteip pool.');
  w.sample('poptop_pool_addresses', undefined, d.pool.size);
  w.family('poptop_pool_free_addresses', 'gauge', 'Addresses of the pool not leased.');
  w.sample('poptop_pool_free_addresses', undefined, d.pool.free);

  if (d.radius) {
    w.family('poptop_radius_requests_total', 'counter', 'RADIUS packets sent, retransmissions included.');
    for (const r of d.radius)
      w.sample('poptop_radius_requests_total', { purpose: r.purpose }, r.transmissions);
    w.family('poptop_radius_replies_total', 'counter', 'RADIUS replies received and accepted.');
    for (const r of d.radius) w.sample('poptop_radius_replies_total', { purpose: r.purpose }, r.replies);
    w.family('poptop_radius_timeouts_total', 'counter', 'RADIUS transmissions that got no answer in time.');
    for (const r of d.radius) w.sample('poptop_radius_timeouts_total', { purpose: r.purpose }, r.timeouts);
    w.family('poptop_radius_failed_total', 'counter', 'RADIUS requests no server answered at all.');
    for (const r of d.radius) w.sample('poptop_radius_failed_total', { purpose: r.purpose }, r.failed);
    w.family('poptop_radius_servers_down', 'gauge', 'RADIUS servers marked down now.');
    for (const r of d.radius) w.sample('poptop_radius_servers_down', { purpose: r.purpose }, r.down);
  }

  if (d.lag) {
    w.family('poptop_event_loop_lag_seconds', 'gauge', 'Event-loop delay over the last 10 s window.');
    w.sample('poptop_event_loop_lag_seconds', { stat: 'p50' }, d.lag.p50);
    w.sample('poptop_event_loop_lag_seconds', { stat: 'p99' }, d.lag.p99);
    w.sample('poptop_event_loop_lag_seconds', { stat: 'max' }, d.lag.max);
  }
  w.family('poptop_start_time_seconds', 'gauge', 'When the server started, seconds since the epoch.');
  w.sample('poptop_start_time_seconds', undefined, Math.floor(d.startedAt / 1000));
  return w.text();
}

function inc<K>(m: Map<K, number>, k: K): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

/**
 * A label value for the text format. Network text is made visible first (a control character
 * becomes `\x07`, a line feed `\n` as two characters), then `\` and `"` are escaped as the format
 * requires, so no label value can end a line or a quoted string early.
 */
export function escapeLabelValue(v: string): string {
  return escapeControls(v).replace(/[\\"]/g, (c) => `\\${c}`);
}

function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Number.POSITIVE_INFINITY) return '+Inf';
  if (n === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(n);
}

class Exposition {
  private readonly parts: string[] = [];

  family(name: string, type: 'counter' | 'gauge', help: string): void {
    this.parts.push(
      `# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${type}\n`,
    );
  }

  sample(name: string, labels: Record<string, string> | undefined, value: number): void {
    let l = '';
    if (labels) {
      const kv: string[] = [];
      for (const k in labels) kv.push(`${k}="${escapeLabelValue(labels[k]!)}"`);
      l = `{${kv.join(',')}}`;
    }
    this.parts.push(`${name}${l} ${formatValue(value)}\n`);
  }

  text(): string {
    return this.parts.join('');
  }
}
