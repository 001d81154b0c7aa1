/**
 * What the namespace benchmarks (setup-rate.ts, memory.ts) share: `poptop serve` for N sessions of
 * one user in the server namespace of a fresh topology, `poptop load` in the client namespace, and
 * the server's status through its control socket. Root only; uses the compiled dist/.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createTopology,
  NsProcess,
  POPTOP,
  serveArgv,
  sh,
  statusIn,
  type Topology,
  writeServerConfig,
} from '../test/e2e/netns.ts';

/**
 * Starts the server for `n` sessions from one source address (per-source caps lifted, no hooks,
 * LCP echo 30 s) and resolves once it listens. `nodeArgs` go to node before the script.
 */
export async function benchServer(
  topo: Topology,
  n: number,
  o: {
    tun: string;
    pool: number;
    env?: NodeJS.ProcessEnv;
    nodeArgs?: string[];
    extra?: string[];
    /** More pppd options lines (e.g. `rate-limit 50M`). */
    options?: string[];
  },
): Promise<{ server: NsProcess; control: string }> {
  const conf = writeServerConfig(topo.dir, {
    remoteip: Array.from({ length: Math.ceil(n / 250) }, (_, i) => `10.${o.pool}.${i}.1-250`).join(','),
    users: [{ user: 'load', password: 'load-pw' }],
    options: [
      'lcp-echo-interval 30',
      'ip-up-script /nonexistent',
      'ip-down-script /nonexistent',
      ...(o.options ?? []),
    ],
  });
  const cap = n + 100;
  appendFileSync(
    conf,
    `connections ${cap}\nmax-unauth-per-source ${cap}\nmax-unauth ${cap}\nmax-setups-per-source ${cap}\n`,
  );
  const control = join(topo.dir, 'control.sock');
  // Run from the topology's folder: that is where a heap snapshot (--heapsnapshot-signal) lands.
  const server = new NsProcess(
    'server',
    topo.server,
    [
      'sh',
      '-c',
      `cd '${topo.dir}' && exec "$@"`,
      'sh',
      ...serveArgv({
        conf,
        dir: topo.dir,
        control,
        tun: o.tun,
        ...(o.nodeArgs ? { nodeArgs: o.nodeArgs } : {}),
        ...(o.extra ? { extra: o.extra } : {}),
      }),
    ],
    o.env ?? {},
  );
  await server.waitFor(/listening on/, 15_000);
  return { server, control };
}

/**
 * `poptop load` of `n` sessions, held for an hour, printing its result as JSON; `nodeArgs` go to
 * node; `sources` addresses of the client namespace send them, in turn, from `processes` processes.
 */
export function benchLoad(
  topo: Topology,
  n: number,
  concurrency: number,
  nodeArgs: readonly string[] = [],
  sources = 1,
  processes = 1,
): NsProcess {
  // Source addresses of their own on the client's interface, consecutive (a server's workers take
  // an address each in turn): one address's ephemeral ports run short, and the kernel's search for
  // a free one grows with the connections it already has.
  const addresses = Array.from({ length: sources }, (_, k) => topo.clientAddress(100 + k));
  if (sources > 1)
    for (const a of addresses) sh('ip', ['-n', topo.clients[0]!, 'addr', 'add', `${a}/24`, 'dev', 'eth0']);
  const sourceArgs = sources > 1 ? ['--source', addresses.join(',')] : [];
  const processArgs = processes > 1 ? ['--processes', String(processes)] : [];
  return new NsProcess(
    'load',
    topo.clients[0]!,
    [
      process.execPath,
      ...nodeArgs,
      POPTOP,
      'load',
      topo.serverAddress,
      '--user',
      'load',
      '-n',
      String(n),
      '-c',
      String(concurrency),
      '--hold',
      '3600',
      '--progress',
      '0',
      '--json',
      ...sourceArgs,
      ...processArgs,
    ],
    { POPTOP_PASSWORD: 'load-pw' },
  );
}

/** The server's `status` answer (sessions, pool, system counters, memory...). */
export function benchStatus<T>(topo: Topology, control: string): T {
  return statusIn<T>(topo.server, control);
}

/**
 * A fresh one-client topology for `fn`; every process `fn` registers with `keep` is killed (by PID)
 * and the namespaces are removed afterwards, whatever happens.
 */
export async function inTopology<R>(
  tag: string,
  fn: (topo: Topology, keep: (p: NsProcess) => NsProcess) => Promise<R>,
): Promise<R> {
  const topo = createTopology(1, tag);
  const procs: NsProcess[] = [];
  try {
    return await fn(topo, (p) => {
      procs.push(p);
      return p;
    });
  } finally {
    for (const p of procs) p.signal('SIGKILL');
    for (const p of procs) await p.exited(5000).catch(() => undefined);
    topo.destroy();
  }
}

/** `--name value` options taken out of argv (the rest are the positional sizes). */
export function benchArgs(argv: string[]): { opt(name: string, fallback: string): string; rest: string[] } {
  const rest = [...argv];
  return {
    opt(name, fallback) {
      const i = rest.indexOf(name);
      if (i < 0) return fallback;
      const v = rest[i + 1] ?? fallback;
      rest.splice(i, 2);
      return v;
    },
    rest,
  };
}

const TICK = 100; // clock ticks per second (USER_HZ) in /proc/PID/stat

/**
 * The server's processes: `pid`, and with `workers N` its workers (from its status). Their CPU and
 * memory are the server's: a worker is not a reaped child until it ends.
 */
export function serverPids(topo: Topology, control: string, pid: number): number[] {
  const st = benchStatus<{ workers?: { pid: number | null }[] }>(topo, control);
  return [pid, ...(st.workers ?? []).flatMap((w) => (w.pid ? [w.pid] : []))];
}

/** processCpu summed over several processes. */
export function processesCpu(pids: readonly number[]): { self: number; system: number; children: number } {
  const sum = { self: 0, system: 0, children: 0 };
  for (const pid of pids) {
    const c = processCpu(pid);
    sum.self += c.self;
    sum.system += c.system;
    sum.children += c.children;
  }
  return sum;
}

/** A process's CPU from /proc/PID/stat, in seconds: user + system, system alone, and reaped children. */
export function processCpu(pid: number): { self: number; system: number; children: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields after the command: state(3) ... utime(14) stime(15) cutime(16) cstime(17); f[0] is field 3.
  const n = (i: number): number => Number(f[i - 3]);
  return { self: (n(14) + n(15)) / TICK, system: n(15) / TICK, children: (n(16) + n(17)) / TICK };
}
