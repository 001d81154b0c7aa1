/**
 * Session set-up rate against the real server, in network namespaces (root; run
 * `npx tsc -p tsconfig.build.json` first):
 *
 *   node --import tsx bench/setup-rate.ts [N ...] [--backends netlink,ip] [-c CONCURRENCY] [--timeout S]
 *     [--profile DIR] [--sources K] [--workers W] [--processes P] [--node-args "FLAGS"]
 *
 * For each N (default 1000 5000) and each route back-end (default both: `ip` runs a process per
 * route change, as before issue 12; `netlink` is the addon), it starts `poptop serve` in a fresh
 * namespace and `poptop load` in another, and measures full set-ups (TCP connect → IPCP up,
 * MS-CHAPv2 + MPPE-128): the rate, p50/p99 set-up time as load sees it, the server's RSS with all
 * sessions up, its CPU during the set-up (its own, and its child processes' as the kernel counts
 * them once reaped), and then the mass disconnect: load is killed, every session ends together,
 * and the host routes left in the kernel are counted. Each run is bounded by --timeout (default
 * 180 s). The load sends from K addresses (default 4) in turn. With --profile, the server and load
 * write V8 CPU profiles (`--cpu-prof`) into DIR when they exit; --node-args gives both node
 * flags (V8's: a GC trace, another collector setting). No hooks run (ip-up/ip-down point nowhere) so the figures are the server's own.
 * With --workers W the server runs `workers W` (its CPU and RSS are summed over the primary and the
 * workers); --processes P spreads the load over P processes (each needs K/P source addresses). One
 * process holds at most its descriptor limit of sessions: 60,000 takes e.g. `--workers 4
 * --processes 4 --sources 8` (each worker gets two addresses' sessions).
 */
import { readFileSync } from 'node:fs';
import { sh, type Topology, until } from '../test/e2e/netns.ts';
import {
  benchArgs,
  benchLoad,
  benchServer,
  benchStatus,
  inTopology,
  processesCpu,
  serverPids,
} from './ns-bench.ts';

const { opt, rest: args } = benchArgs(process.argv.slice(2));
const backends = opt('--backends', 'ip,netlink').split(',');
const concurrency = Number(opt('-c', '64'));
const timeoutS = Number(opt('--timeout', '180'));
const profileDir = opt('--profile', '');
const sources = Number(opt('--sources', '4'));
const workers = Number(opt('--workers', '1'));
const processes = Number(opt('--processes', '1'));
// V8 flags for the server and the load (e.g. "--trace-gc-nvp --no-parallel-scavenge"), to try them side by side.
const nodeFlags = opt('--node-args', '').split(' ').filter(Boolean);
const profile = [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), ...nodeFlags];
const sizes = args.length > 0 ? args.map(Number) : [1000, 5000];
const TUN = 'ptbench0';

if (process.getuid?.() !== 0) {
  console.error('bench/setup-rate.ts needs root (network namespaces, raw GRE, TUN)');
  process.exit(2);
}

interface Row {
  backend: string;
  n: number;
  up: number;
  failed: number;
  rate: number;
  p50: number;
  p99: number;
  rssMb: number;
  cpuSelfS: number;
  cpuChildrenS: number;
  cpuPerSetupMs: number;
  loadCpuPerSetupMs: number;
  /** With workers: the primary's part of cpuPerSetupMs. */
  primaryCpuPerSetupMs: number;
  /** The part of that CPU spent in the kernel (system time), server and load. */
  kernelShare: number;
  loadKernelShare: number;
  teardownS: number;
  routesLeft: number;
  reasons: Record<string, number>;
  /** What the server dropped during the set-up, by reason. */
  serverDrops: Record<string, number>;
  /** Server CPU per set-up (ms) while the sessions up went from `from` to `to`. */
  byBlock: { from: number; to: number; ms: number }[];
}

/** How often the server's CPU and its sessions up are read during a set-up. */
const SAMPLE_MS = 250;

interface Sample {
  /** Host routes through the server's TUN devices: its sessions up. */
  up: number;
  /** The server's CPU so far (own and children's), seconds. */
  cpu: number;
}

const cpuSum = (c: { self: number; children: number }): number => c.self + c.children;

/**
 * Host routes in the server's namespace through its TUN device(s), read from /proc/PID/net/route
 * (no process spawned, and the server does no work for it).
 */
function routesUp(pid: number): number {
  try {
    const table = readFileSync(`/proc/${pid}/net/route`, 'utf8');
    let count = 0;
    for (let at = table.indexOf(`\n${TUN}`); at !== -1; at = table.indexOf(`\n${TUN}`, at + 1)) count++;
    return count;
  } catch {
    return 0;
  }
}

/**
 * The server's CPU per set-up in blocks of the sessions coming up (a tenth of N each, 1,000 from
 * N = 10,000), the CPU at each block's edges interpolated between samples. The first block carries
 * what a fresh process spends once (V8 compiling the hot code); a cost that grows with N would
 * show as later blocks costing more than earlier ones.
 */
function cpuByBlock(samples: readonly Sample[], n: number): { from: number; to: number; ms: number }[] {
  const size = n >= 10_000 ? 1000 : Math.max(1, Math.round(n / 10));
  const cpuAt = (up: number): number | undefined => {
    for (let k = 1; k < samples.length; k++) {
      const a = samples[k - 1]!;
      const b = samples[k]!;
      if (b.up >= up && b.up > a.up) return a.cpu + ((b.cpu - a.cpu) * (up - a.up)) / (b.up - a.up);
    }
    return undefined;
  };
  const blocks: { from: number; to: number; ms: number }[] = [];
  for (let from = 0; from < n; from += size) {
    const to = Math.min(n, from + size);
    const c0 = cpuAt(from);
    const c1 = cpuAt(to);
    if (c0 === undefined || c1 === undefined) break;
    blocks.push({ from, to, ms: ((c1 - c0) * 1000) / (to - from) });
  }
  return blocks;
}

function rssMb(pids: readonly number[]): number {
  let kb = 0;
  for (const pid of pids) {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    kb += m ? Number(m[1]) : Number.NaN;
  }
  return kb / 1024;
}

function status(topo: Topology, control: string): { sessions: number; system?: { hostRoutes: number } } {
  return benchStatus(topo, control);
}

/** Host routes through the server's TUN device, or its workers' (TUNw0, TUNw1, ...). */
function hostRoutes(topo: Topology): number {
  const dev = new RegExp(`^10\\.\\d+\\.\\d+\\.\\d+ dev ${TUN}(w\\d+)? `);
  return sh('ip', ['-n', topo.server, 'route', 'show'])
    .split('\n')
    .filter((l) => dev.test(l)).length;
}

/** The load process and its children (--processes), whose CPU is theirs until they end. */
function loadPids(pid: number): number[] {
  const children = (p: number): number[] => {
    try {
      return readFileSync(`/proc/${p}/task/${p}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map(Number);
    } catch {
      return [];
    }
  };
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...children(all[i]!));
  return all;
}

async function run(backend: string, n: number, tag: string): Promise<Row> {
  return inTopology(tag, async (topo, keep) => {
    const { server, control } = await benchServer(topo, n, {
      tun: TUN,
      pool: 78,
      env: { POPTOP_ROUTE_BACKEND: backend },
      nodeArgs: profile,
      ...(workers > 1 ? { extra: ['--workers', String(workers)] } : {}),
    });
    keep(server);
    const pids = serverPids(topo, control, server.child.pid!);
    const cpu = (list: readonly number[] = pids) => processesCpu(list);
    const before = cpu();
    const primaryBefore = cpu(pids.slice(0, 1));
    const gen = benchLoad(topo, n, concurrency, profile, sources, processes);
    keep(gen);
    const started = Date.now();
    const samples: Sample[] = [{ up: 0, cpu: cpuSum(before) }];
    // The load's CPU per set-up counts from a sample with sessions up to the end, over the set-ups
    // in between: not its start (node and the modules loading cost it 0.1-0.2 s, as much as
    // 100-200 set-ups).
    let loadBase: { self: number; system: number; up: number } | undefined;
    const sampler = setInterval(() => {
      const up = routesUp(server.child.pid!);
      samples.push({ up, cpu: cpuSum(cpu()) });
      if (up > 0 && !loadBase) loadBase = { ...processesCpu(loadPids(gen.child.pid!)), up };
    }, SAMPLE_MS);
    let report: {
      up: number;
      failed: number;
      reasons: Record<string, number>;
      setupSeconds: number;
      p50Ms: number;
      p99Ms: number;
    };
    try {
      const m = await gen.waitFor(/^\{"requested".*\}$/m, timeoutS * 1000);
      report = JSON.parse(m[0]) as typeof report;
    } catch {
      // Out of time: what is up so far, as the server counts it; no latency figures.
      const up = status(topo, control).system?.hostRoutes ?? 0;
      const setupSeconds = (Date.now() - started) / 1000;
      report = {
        up,
        failed: 0,
        reasons: { [`timed out after ${timeoutS} s`]: 1 },
        setupSeconds,
        p50Ms: Number.NaN,
        p99Ms: Number.NaN,
      };
    }
    // Every route in place (the last ones may still be on their way) before reading the figures.
    await until('every route in place', 30_000, () =>
      (status(topo, control).system?.hostRoutes ?? 0) >= report.up ? true : undefined,
    ).catch(() => undefined);
    const after = cpu();
    clearInterval(sampler);
    samples.push({ up: routesUp(server.child.pid!), cpu: cpuSum(after) });
    const serverDrops = benchStatus<{ drops?: Record<string, number> }>(topo, control).drops ?? {};
    const primaryAfter = cpu(pids.slice(0, 1));
    const rss = rssMb(pids);
    const t0 = Date.now();
    const loadTotal = processesCpu(loadPids(gen.child.pid!));
    const loadCpu = {
      self: loadTotal.self - (loadBase?.self ?? 0),
      system: loadTotal.system - (loadBase?.system ?? 0),
    };
    // A profiled load must exit by itself to write its profile: SIGINT closes its sessions.
    gen.signal(profile.length > 0 ? 'SIGINT' : 'SIGKILL');
    await gen.exited(10_000);
    // Out of time: the figures show it (tear-down time, routes left); the run goes on.
    await until('every session and route gone', timeoutS * 1000, () => {
      const st = status(topo, control);
      return st.sessions === 0 && (st.system?.hostRoutes ?? 0) === 0 ? true : undefined;
    }).catch(() => undefined);
    const teardownS = (Date.now() - t0) / 1000;
    // Deletes that failed stay counted by the server: give them no more time, count the kernel's.
    const routesLeft = hostRoutes(topo);
    server.signal('SIGTERM');
    await server.exited(30_000).catch(() => undefined);
    // What the server logged about its drops and failures (each reason once, then at 10, 100, ...).
    const notable = server.output.split('\n').filter((l) => /\b(warn|error)\b/.test(l));
    for (const l of notable.slice(0, 30)) console.error(`  server: ${l}`);
    if (notable.length > 30) console.error(`  server: ... ${notable.length - 30} more warnings`);
    const self = after.self - before.self;
    const children = after.children - before.children;
    return {
      backend,
      n,
      up: report.up,
      failed: report.failed,
      rate: report.up / Math.max(report.setupSeconds, 1e-6),
      p50: report.p50Ms,
      p99: report.p99Ms,
      rssMb: rss,
      cpuSelfS: self,
      cpuChildrenS: children,
      cpuPerSetupMs: ((self + children) * 1000) / Math.max(1, report.up),
      loadCpuPerSetupMs: (loadCpu.self * 1000) / Math.max(1, report.up - (loadBase?.up ?? 0)),
      primaryCpuPerSetupMs:
        pids.length > 1
          ? ((primaryAfter.self - primaryBefore.self) * 1000) / Math.max(1, report.up)
          : Number.NaN,
      kernelShare: (after.system - before.system) / Math.max(1e-6, self),
      loadKernelShare: loadCpu.system / Math.max(1e-6, loadCpu.self),
      teardownS,
      routesLeft,
      reasons: report.reasons,
      serverDrops,
      byBlock: cpuByBlock(samples, n),
    };
  });
}

const rows: Row[] = [];
let k = 0;
for (const n of sizes) {
  for (const backend of backends) {
    const row = await run(backend, n, `${process.pid % 10000}b${k++}`);
    rows.push(row);
    console.log(JSON.stringify(row));
  }
}
const fmt = (x: number, d = 0): string => x.toFixed(d);
console.log(
  '\n| N | routes via | up / failed | set-up rate | p50 / p99 | server RSS | server CPU (own + children) | CPU per set-up | load CPU per set-up | tear-down | routes left |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.n} | ${r.backend} | ${r.up} / ${r.failed} | ${fmt(r.rate)} /s | ${fmt(r.p50)} / ${fmt(r.p99)} ms | ${fmt(r.rssMb)} MB | ${fmt(r.cpuSelfS, 2)} + ${fmt(r.cpuChildrenS, 2)} s | ${fmt(r.cpuPerSetupMs, 2)} ms (${fmt(100 * r.kernelShare)} % kernel${Number.isNaN(r.primaryCpuPerSetupMs) ? '' : `; primary ${fmt(r.primaryCpuPerSetupMs, 2)} ms`}) | ${fmt(r.loadCpuPerSetupMs, 2)} ms (${fmt(100 * r.loadKernelShare)} % kernel) | ${fmt(r.teardownS, 1)} s | ${r.routesLeft} |`,
  );
}
for (const r of rows) {
  if (r.byBlock.length > 0)
    console.log(
      `N=${r.n} (${r.backend}): server CPU per set-up as the sessions came up, ms: ` +
        r.byBlock
          .map((b) => `${b.from.toLocaleString('en')}–${b.to.toLocaleString('en')} ${fmt(b.ms, 2)}`)
          .join(' · '),
    );
}
for (const n of sizes) {
  const ip = rows.find((r) => r.n === n && r.backend === 'ip');
  const nl = rows.find((r) => r.n === n && r.backend === 'netlink');
  if (ip && nl)
    console.log(
      `N=${n}: netlink/ip set-up rate ${fmt(nl.rate / ip.rate, 2)}×, server CPU per set-up ${fmt(nl.cpuPerSetupMs / ip.cpuPerSetupMs, 2)}× (ip ${fmt(ip.cpuPerSetupMs, 2)} ms, netlink ${fmt(nl.cpuPerSetupMs, 2)} ms)`,
    );
}
