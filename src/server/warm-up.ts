/**
 * Warm-up: session set-ups in memory before the server takes its first client.
 *
 * V8 runs a function in its interpreter or as baseline code until the function has run often
 * enough to be worth optimising. A session's set-up runs much code once per session (the PPTP
 * handshake, LCP, MS-CHAPv2, CCP, IPCP), so the first thousand or so set-ups after a start cost
 * the server about twice the CPU of later ones: 2.0–2.4 ms each against 0.7–1.1 ms on the
 * machine README's figures come from. That is exactly when clients arrive together, after a
 * restart. The warm-up runs the same code first, between a throwaway server and our own client
 * joined in memory (net/memory-stream.ts for TCP, net/memory.ts for GRE and the TUN device):
 * the server's own policy, a user of its own, no routes, hooks, logs, RADIUS or counters of the
 * real server. Nothing of it is left when it returns.
 */
import { StaticCredentials } from '../aaa/credentials.ts';
import { PptpClient } from '../client/client.ts';
import { MAX_WARM_UP } from '../config/pptpd-conf.ts';
import { MemoryGreNetwork, type MemoryGrePort, MemoryTun } from '../net/memory.ts';
import { MemoryListener } from '../net/memory-stream.ts';
import type { AuthMethod } from '../ppp/auth/types.ts';
import { defaultPolicy, type PppPolicy } from '../ppp/policy.ts';
import type { Clock } from '../util/clock.ts';
import { SystemClock } from '../util/clock.ts';
import { nullLogger } from '../util/log.ts';
import { formatIPv4, type IPv4, parseIPv4 } from '../wire/ip.ts';
import { PptpServer } from './server.ts';
import { defaultGuardSettings, type ServerSettings } from './settings.ts';
import { RecordingSystem } from './system.ts';

/** After this many failed set-ups the warm-up stops: this configuration does not come up in memory. */
export const MAX_WARM_UP_FAILURES = 8;
/** Sessions at once; in memory only the interleaving depends on it. */
const CONCURRENCY = 16;

export interface WarmUpOptions {
  /** Set-ups to run. */
  count: number;
  /** The throwaway server's PPP policy (a server's own); its client mirrors it (clientPolicyFor). */
  serverPolicy: Readonly<PppPolicy>;
  /** The client's policy (the load generator's own). @default clientPolicyFor(serverPolicy) */
  clientPolicy?: Readonly<PppPolicy>;
  /** No set-up starts after this long. @default 30 s */
  maxMs?: number;
  clock?: Clock;
}

export interface WarmUpReport {
  /** Set-ups that came up. */
  up: number;
  failed: number;
  ms: number;
  /** Why the first failed set-up failed, in our own words; undefined when none failed. */
  firstFailure: string | undefined;
  /** Why it ended before `count`: too many failures, or out of time. */
  stopped: string | undefined;
}

/**
 * A client policy that asks for what `server` requires: its authentication methods, its MPPE
 * strengths and mode, IPv6CP when it runs it, its MRU. No LCP echo (nothing is idle here).
 */
export function clientPolicyFor(server: Readonly<PppPolicy>): PppPolicy {
  return {
    ...defaultPolicy('client'),
    mru: server.mru,
    mtu: server.mtu,
    lcpEchoInterval: 0,
    auth: { require: [], accept: [...server.auth.require] },
    mppe: { ...server.mppe },
    ipv6: server.ipv6,
    pfc: server.pfc,
    acfc: server.acfc,
  };
}

/** The server policy a client (the load generator's) would meet: its strongest method required. */
export function serverPolicyFor(client: Readonly<PppPolicy>): PppPolicy {
  const order: AuthMethod[] = ['mschapv2', 'mschap', 'chap-md5', 'pap'];
  const method = order.find((m) => client.auth.accept.includes(m));
  return {
    ...defaultPolicy('server'),
    lcpEchoInterval: 0,
    auth: { require: method ? [method] : [], accept: [] },
    mppe: { ...client.mppe },
    ipv6: client.ipv6,
  };
}

const USER = 'warm-up';
const PASSWORD = 'warm-up-password';

/** Runs `count` set-ups in memory and ends every session cleanly; never throws for a failed set-up. */
export async function warmUp(o: WarmUpOptions): Promise<WarmUpReport> {
  const clock = o.clock ?? new SystemClock();
  const started = clock.now();
  const deadline = started + (o.maxMs ?? 30_000);
  const count = Math.max(0, Math.min(MAX_WARM_UP, Math.floor(o.count)));
  const report: WarmUpReport = { up: 0, failed: 0, ms: 0, firstFailure: undefined, stopped: undefined };
  if (count === 0) return report;

  const net = new MemoryGreNetwork({ clock, delayMs: 0 });
  const listener = new MemoryListener('127.0.0.1');
  const concurrency = Math.min(CONCURRENCY, count);
  const base = parseIPv4('10.255.0.2')!;
  const pool: IPv4[] = Array.from({ length: concurrency }, (_, i) => base + i);
  const server = new PptpServer(warmUpSettings(o.serverPolicy, pool), {
    clock,
    log: nullLogger,
    gre: net.port('127.0.0.1'),
    tun: new MemoryTun('warm-up'),
    system: new RecordingSystem(),
    listener,
  });
  await server.listen();
  // The in-memory network runs on the clock's timers, which do not hold the process open.
  const keepAlive = setInterval(() => {}, 1000);
  const clientPolicy = o.clientPolicy
    ? { ...o.clientPolicy, lcpEchoInterval: 0 }
    : clientPolicyFor(o.serverPolicy);
  let next = 0;
  const stopReason = (): string | undefined =>
    report.failed >= MAX_WARM_UP_FAILURES
      ? `${report.failed} set-ups failed`
      : clock.now() >= deadline
        ? `out of time after ${Math.round((clock.now() - started) / 1000)} s`
        : undefined;

  const one = async (address: string, gre: MemoryGrePort): Promise<void> => {
    let client: PptpClient | undefined;
    const failure = await new Promise<string | undefined>((resolve) => {
      client = new PptpClient({
        server: parseIPv4('127.0.0.1')!,
        user: USER,
        password: PASSWORD,
        policy: clientPolicy,
        clock,
        log: nullLogger,
        gre,
        connectTcp: () => listener.connect(address),
        onUp: () => resolve(undefined),
        onDown: (reason) => resolve(reason),
      });
      client.start();
    });
    if (failure === undefined) report.up++;
    else {
      report.failed++;
      report.firstFailure ??= failure;
    }
    await client!.close('warm-up done');
  };
  const lane = async (i: number): Promise<void> => {
    // Each lane has an address of its own; its sessions follow one another on it.
    const address = formatIPv4(parseIPv4('127.1.0.1')! + i);
    const gre = net.port(address);
    while (next < count && stopReason() === undefined) {
      next++;
      await one(address, gre);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, (_, i) => lane(i)));
  } finally {
    await server.shutdown(1000);
    clearInterval(keepAlive);
  }
  report.stopped = report.up + report.failed < count ? stopReason() : undefined;
  report.ms = clock.now() - started;
  return report;
}

function warmUpSettings(policy: Readonly<PppPolicy>, pool: IPv4[]): ServerSettings {
  return {
    listen: parseIPv4('127.0.0.1'),
    port: 0,
    maxConnections: pool.length,
    localIps: [parseIPv4('10.255.0.1')!],
    remoteIps: pool,
    delegate: false,
    policy: { ...policy, lcpEchoInterval: 0 },
    credentials: new StaticCredentials([
      { user: USER, server: '*', secret: { kind: 'password', password: PASSWORD }, addresses: ['*'] },
    ]),
    serverName: 'warm-up',
    stripDomain: false,
    proxyArp: false,
    debug: false,
    startTimeoutS: 10,
    pptpEchoIntervalS: 60,
    ipUpScript: '',
    ipDownScript: '',
    ipparam: undefined,
    noipparam: false,
    speed: 115200,
    tunName: 'warm-up',
    pidfile: undefined,
    idleS: 0,
    maxConnectS: 0,
    logwtmp: false,
    singleSession: 'off',
    origin: 'the warm-up',
    ...defaultGuardSettings(pool.length),
    maxUnauthPerSource: pool.length,
    maxSetupsPerSource: pool.length,
  };
}

/** The report as one log line: "warm-up: 1000 set-ups in memory in 1.4 s" and what went wrong. */
export function describeWarmUp(r: WarmUpReport): { level: 'info' | 'warn'; line: string } {
  const took = `${(r.ms / 1000).toFixed(1)} s`;
  if (r.failed === 0 && r.stopped === undefined)
    return { level: 'info', line: `warm-up: ${r.up} session set-ups in memory in ${took}` };
  const failed = r.failed > 0 ? `; ${r.failed} failed, the first with "${r.firstFailure}"` : '';
  const stopped = r.stopped ? ` (stopped: ${r.stopped})` : '';
  return {
    level: 'warn',
    line: `warm-up: ${r.up} session set-ups in memory in ${took}${failed}${stopped}; the first clients meet code not yet optimised`,
  };
}
