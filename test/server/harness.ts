/**
 * Our server and our client in one process, without root: PPTP control over real loopback TCP
 * (127.0.0.1 server, 127.0.0.2 client), GRE over the in-memory network, TUN devices played by
 * the test (MemoryTun), routes and hooks recorded (RecordingSystem).
 */
import { connect as tcpConnect } from 'node:net';
import { type Credential, StaticCredentials } from '../../src/aaa/credentials.ts';
import { PptpClient } from '../../src/client/client.ts';
import type { GrePort } from '../../src/net/interfaces.ts';
import { MemoryGreNetwork, MemoryTun, MemoryTunDropList } from '../../src/net/memory.ts';
import type { NetworkInfo } from '../../src/ppp/link.ts';
import { defaultPolicy, type PppPolicy } from '../../src/ppp/policy.ts';
import { PptpServer, type PptpServerDeps } from '../../src/server/server.ts';
import { defaultGuardSettings, type ServerSettings } from '../../src/server/settings.ts';
import { RecordingSystem } from '../../src/server/system.ts';
import { type ManualClock, SystemClock } from '../../src/util/clock.ts';
import { MemoryLogger } from '../../src/util/log.ts';
import { type IPv4, parseIPv4 } from '../../src/wire/ip.ts';

export const ip = (s: string): IPv4 => parseIPv4(s)!;

export function credential(user: string, password: string, addresses: string[] = ['*']): Credential {
  return { user, server: '*', secret: { kind: 'password', password }, addresses };
}

export function serverSettings(over: Partial<ServerSettings> = {}): ServerSettings {
  return {
    listen: ip('127.0.0.1'),
    port: 0,
    maxConnections: 100,
    localIps: [ip('10.77.0.1')],
    remoteIps: [ip('10.77.0.10'), ip('10.77.0.11'), ip('10.77.0.12')],
    delegate: false,
    policy: defaultPolicy('server'),
    credentials: new StaticCredentials([
      credential('alice', 'alice-secret'),
      credential('bob', 'bob-secret', ['10.77.0.200']),
    ]),
    serverName: 'poptop-test',
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
    tunName: 'mtun-server',
    pidfile: undefined,
    idleS: 0,
    maxConnectS: 0,
    logwtmp: false,
    singleSession: 'off',
    origin: 'test',
    ...defaultGuardSettings(100),
    ...over,
  };
}

export interface Bench {
  server: PptpServer;
  port: number;
  net: MemoryGreNetwork;
  tun: MemoryTun;
  /** The kernel's TUN drop filter as played for `tun`. */
  tunDrops: MemoryTunDropList;
  system: RecordingSystem;
  log: MemoryLogger;
  close(): Promise<void>;
}

export async function startServer(
  settings = serverSettings(),
  system: RecordingSystem = new RecordingSystem(),
  extra: Pick<PptpServerDeps, 'fds' | 'radiusTransport'> = {},
): Promise<Bench> {
  const clock = new SystemClock();
  const net = new MemoryGreNetwork({ clock, delayMs: 0 });
  const tun = new MemoryTun('mtun-server');
  const tunDrops = new MemoryTunDropList();
  tun.dropList = tunDrops;
  const log = new MemoryLogger({ debug: process.env.POPTOP_TEST_DEBUG === '1' });
  if (process.env.POPTOP_TEST_DEBUG === '1') {
    const push = log.lines.push.bind(log.lines);
    log.lines.push = (...items) => {
      for (const i of items) process.stderr.write(`S ${i.line}\n`);
      return push(...items);
    };
  }
  const server = new PptpServer(settings, {
    clock,
    log,
    gre: net.port('127.0.0.1'),
    tun,
    tunDrops,
    system,
    ...extra,
  });
  const port = await server.listen();
  return {
    server,
    port,
    net,
    tun,
    tunDrops,
    system,
    log,
    close: () => server.shutdown(2000),
  };
}

export interface TestClient {
  client: PptpClient;
  tun: MemoryTun;
  log: MemoryLogger;
  up: Promise<NetworkInfo>;
  down: Promise<string>;
}

const grePorts = new WeakMap<Bench, Map<string, GrePort>>();

/** One GRE port per address and bench: clients from the same address, one after another, share it. */
function grePortFor(bench: Bench, local: string): GrePort {
  let ports = grePorts.get(bench);
  if (!ports) {
    ports = new Map();
    grePorts.set(bench, ports);
  }
  let port = ports.get(local);
  if (!port) {
    port = bench.net.port(local);
    ports.set(local, port);
  }
  return port;
}

/** A client from `localAddress` (127.0.0.x) with its own GRE port on the bench's network. */
export function startClient(
  bench: Bench,
  opts: {
    user: string;
    password: string;
    localAddress?: string;
    policy?: PppPolicy;
    onAccepting?: (accepting: boolean) => void;
  },
): TestClient {
  const local = opts.localAddress ?? '127.0.0.2';
  const log = new MemoryLogger({ debug: process.env.POPTOP_TEST_DEBUG === '1' });
  const tun = new MemoryTun(`mtun-${local}`);
  let resolveUp: (i: NetworkInfo) => void = () => {};
  const up = new Promise<NetworkInfo>((r) => {
    resolveUp = r;
  });
  const client = new PptpClient({
    server: ip('127.0.0.1'),
    port: bench.port,
    user: opts.user,
    password: opts.password,
    policy: opts.policy ?? defaultPolicy('client'),
    clock: new SystemClock(),
    log,
    gre: grePortFor(bench, local),
    connectTcp: (host, port) => tcpConnect({ host, port, localAddress: local, noDelay: true }),
    onUp: (info) => resolveUp(info),
    onIp: (p) => tun.write(p),
    ...(opts.onAccepting ? { onAccepting: opts.onAccepting } : {}),
  });
  tun.onPacket((p) => client.sendIp(p, tun.headroom));
  client.start();
  return { client, tun, log, up, down: client.done };
}

/** Resolve `p`, or reject after `ms` with `what` (tests must not hang). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** A minimal IPv4/UDP packet from `src` to `dst` carrying `payload` (checksums zero: not checked here). */
export function udpPacket(src: IPv4, dst: IPv4, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(28 + payload.length);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, p.length);
  p[8] = 64;
  p[9] = 17;
  v.setUint32(12, src);
  v.setUint32(16, dst);
  v.setUint16(20, 40000);
  v.setUint16(22, 9);
  v.setUint16(24, 8 + payload.length);
  p.set(payload, 28);
  return p;
}

/** Poll `cond` every 5 ms until it holds, or throw after `ms` naming `what`. */
export async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Let streams and timers run: `ms` of virtual time on `clock` in 10 ms steps, with real turns between. */
export async function runVirtual(clock: ManualClock, ms: number): Promise<void> {
  const turn = () => new Promise((r) => setImmediate(r));
  for (let t = 0; t < ms; t += 10) {
    clock.advance(10);
    await turn();
    await turn();
  }
}
