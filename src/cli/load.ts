import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type LoadProgress, type LoadReport, percentile } from '../client/load.ts';
import { escapeControls, terminalJson } from '../util/escape.ts';
import { consoleLogger } from '../util/log.ts';
import { extend } from '../util/objects.ts';
import { formatIPv4, type IPv4, parseIPv4 } from '../wire/ip.ts';
import { type FlagSpec, flag, has, intFlag, type ParsedArgs, UsageError } from './args.ts';
import { CONNECT_FLAGS } from './connect.ts';
import { type ChildMessage, type LoadShare, type ParentMessage, startLoad } from './load-worker.ts';
import { resolvePassword } from './password.ts';

export const LOAD_FLAGS = [
  ...CONNECT_FLAGS.filter((f) => f.name !== 'tun' && f.name !== 'route'),
  { name: 'sessions', short: ['n'], value: true },
  { name: 'concurrency', short: ['c'], value: true },
  { name: 'hold', value: true },
  { name: 'source', value: true, repeat: true },
  { name: 'processes', short: ['P'], value: true },
  { name: 'progress', value: true },
  { name: 'json', value: false },
] as const satisfies readonly FlagSpec[];

/** Sessions one process may hold: its descriptors (one TCP socket each) and call ids. */
export const MAX_SESSIONS_PER_PROCESS = 30_000;

/**
 * `--source` values: addresses (`10.0.0.2`), comma-separated lists and last-octet ranges
 * (`10.0.0.2-9`); repeated flags add up. Duplicates are an error (each address gets one GRE socket).
 */
export function parseSources(values: readonly string[]): IPv4[] {
  const out: IPv4[] = [];
  for (const item of values.flatMap((v) => v.split(','))) {
    const text = item.trim();
    const m = /^(\d+\.\d+\.\d+\.)(\d+)(?:-(\d+))?$/.exec(text);
    const first = m ? parseIPv4(`${m[1]}${m[2]}`) : undefined;
    const lastOctet = m?.[3] === undefined ? Number(m?.[2]) : Number(m[3]);
    if (!m || first === undefined || !(lastOctet >= Number(m[2]) && lastOctet <= 255))
      throw new UsageError(
        `--source ${escapeControls(text)}: expected an IPv4 address or a range like 10.0.0.2-9`,
      );
    for (let o = Number(m[2]); o <= lastOctet; o++) {
      const ip = (first + (o - Number(m[2]))) >>> 0;
      if (out.includes(ip)) throw new UsageError(`--source ${formatIPv4(ip)} is given twice`);
      out.push(ip);
    }
  }
  return out;
}

/** Sessions and set-ups in flight for each of `processes` (spread evenly, the first ones take the rest). */
export function splitShares(total: number, processes: number): number[] {
  return Array.from(
    { length: processes },
    (_, i) => Math.floor(total / processes) + (i < total % processes ? 1 : 0),
  );
}

/** "1200 of 5000 up, 3 failed (2 × reason, ...), 40 setting up, 180/s" */
export function formatProgress(p: LoadProgress, ratePerS: number): string {
  const top = Object.entries(p.reasons)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 2)
    .map(([r, n]) => `${n} × ${escapeControls(r)}`);
  const more = Object.keys(p.reasons).length > 2 ? ', ...' : '';
  const failed = p.failed > 0 ? `${p.failed} failed (${top.join(', ')}${more})` : '0 failed';
  return `progress: ${p.up} of ${p.requested} up, ${failed}, ${p.inFlight} setting up, ${ratePerS.toFixed(0)}/s, ${p.seconds.toFixed(0)} s`;
}

/** Sums what several processes report. */
function addProgress(parts: readonly LoadProgress[], requested: number): LoadProgress {
  const reasons: Record<string, number> = {};
  for (const p of parts) for (const [r, n] of Object.entries(p.reasons)) reasons[r] = (reasons[r] ?? 0) + n;
  return {
    requested,
    up: parts.reduce((s, p) => s + p.up, 0),
    failed: parts.reduce((s, p) => s + p.failed, 0),
    inFlight: parts.reduce((s, p) => s + p.inFlight, 0),
    reasons,
    seconds: Math.max(0, ...parts.map((p) => p.seconds)),
  };
}

/** Progress lines on stderr, one at once and then every `everyS` seconds (0: none); the rate is over the last interval. */
function progressPrinter(everyS: number, read: () => LoadProgress): { stop(): void } {
  if (everyS <= 0) return { stop: () => {} };
  let lastUp = 0;
  let lastAt = performance.now();
  const print = () => {
    const p = read();
    const now = performance.now();
    const rate = ((p.up - lastUp) * 1000) / Math.max(1, now - lastAt);
    lastUp = p.up;
    lastAt = now;
    process.stderr.write(`${formatProgress(p, rate)}\n`);
  };
  print(); // at once: the run has started
  const timer = setInterval(print, everyS * 1000);
  return { stop: () => clearInterval(timer) };
}

/**
 * SIGINT/SIGTERM for the whole run: the first one during the set-up stops starting sessions (the
 * result is printed for those that came); during the hold, or a second one, ends the hold. The
 * sessions are then closed cleanly either way.
 */
class Interrupts {
  private onStop: (() => void) | undefined;
  private wake: (() => void) | undefined;
  interrupted = false;
  private readonly handler = () => {
    this.interrupted = true;
    this.onStop?.();
    this.onStop = undefined;
    this.wake?.();
  };

  constructor() {
    process.on('SIGINT', this.handler);
    process.on('SIGTERM', this.handler);
  }

  /** What a signal during the set-up does. */
  duringSetup(stop: () => void): void {
    this.onStop = stop;
  }

  /** Resolves after `ms`, or at once if interrupted (before or meanwhile). */
  hold(ms: number): Promise<void> {
    this.onStop = undefined;
    if (this.interrupted || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  dispose(): void {
    process.off('SIGINT', this.handler);
    process.off('SIGTERM', this.handler);
  }
}

/**
 * `poptop load SERVER --user U --password-file F -n 1000 -c 64 [--hold S] [--source LIST]
 * [--processes P]`: open many sessions from this host (no TUN device each; a raw GRE socket per
 * source address), report progress while it runs and then the set-up rate and failures, hold the
 * sessions for S seconds, then disconnect them all cleanly. With P processes each takes its share
 * of the sessions and its own source addresses.
 */
export async function load(args: ParsedArgs): Promise<number> {
  const server = parseIPv4(args.positional[0] ?? '');
  if (server === undefined) throw new UsageError('load needs the server IPv4 address');
  const user = flag(args, 'user');
  if (!user) throw new UsageError('load needs --user');
  const processes = intFlag(args, 'processes', 1, 64) ?? 1;
  const sessions = intFlag(args, 'sessions', 1, MAX_SESSIONS_PER_PROCESS * 64) ?? 100;
  const concurrency = intFlag(args, 'concurrency', 1, 1000 * 64) ?? 32;
  const holdS = intFlag(args, 'hold', 0, 86_400) ?? 0;
  const progressS = intFlag(args, 'progress', 0, 3600) ?? 5;
  const sources = parseSources(args.flags.get('source') ?? []);
  if (processes > 1 && sources.length < processes)
    throw new UsageError(
      `--processes ${processes} needs at least ${processes} --source addresses: each process sends from addresses of its own`,
    );
  if (Math.ceil(sessions / processes) > MAX_SESSIONS_PER_PROCESS)
    throw new UsageError(
      `${sessions} sessions need --processes ${Math.ceil(sessions / MAX_SESSIONS_PER_PROCESS)} or more (at most ${MAX_SESSIONS_PER_PROCESS} per process)`,
    );
  const password = await resolvePassword(args, 'load');
  const log = consoleLogger({ debug: has(args, 'debug') });
  const run = processes === 1 ? runHere : runInProcesses;
  return run({
    args,
    server,
    user,
    password,
    sessions,
    concurrency,
    holdS,
    progressS,
    sources,
    processes,
    log,
  });
}

interface LoadRun extends Omit<LoadShare, 'sources'> {
  holdS: number;
  progressS: number;
  sources: IPv4[];
  processes: number;
}

function printReport(args: ParsedArgs, report: LoadReport & { processes?: number }): void {
  if (has(args, 'json')) {
    process.stdout.write(`${terminalJson(report)}\n`);
    return;
  }
  process.stdout.write(
    `${report.up}/${report.requested} sessions up in ${report.setupSeconds.toFixed(2)} s ` +
      `(${(report.up / Math.max(report.setupSeconds, 1e-6)).toFixed(0)}/s; set-up p50 ${report.p50Ms.toFixed(0)} ms, p99 ${report.p99Ms.toFixed(0)} ms)\n`,
  );
  for (const [reason, n] of Object.entries(report.reasons))
    process.stdout.write(`  ${n} × ${escapeControls(reason)}\n`);
}

async function runHere(r: LoadRun): Promise<number> {
  let handle: ReturnType<typeof startLoad>;
  try {
    handle = startLoad(r);
  } catch (e) {
    r.log.error((e as Error).message);
    return 1;
  }
  const signals = new Interrupts();
  signals.duringSetup(() => handle.gen.stop());
  const printer = progressPrinter(r.progressS, () => handle.gen.progress());
  const report = await handle.done;
  printer.stop();
  printReport(r.args, report);
  await signals.hold(r.holdS * 1000);
  await handle.close();
  signals.dispose();
  return report.failed === 0 ? 0 : 1;
}

async function runInProcesses(r: LoadRun): Promise<number> {
  const shares = splitShares(r.sessions, r.processes);
  const inFlight = splitShares(Math.max(r.concurrency, r.processes), r.processes);
  const workerPath = fileURLToPath(
    new URL(`./load-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url),
  );
  const latest: LoadProgress[] = [];
  const reports: Array<{ report: LoadReport; times: number[] } | undefined> = [];
  const children = shares.map((share, i) => {
    // A copy, then the one variable set (not extend(): the environment is a record of the user's).
    const env = { ...process.env };
    env.POPTOP_LOAD_WORKER = '1';
    const child = fork(workerPath, [], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env,
    });
    latest[i] = { requested: share, up: 0, failed: 0, inFlight: 0, reasons: {}, seconds: 0 };
    const mine = r.sources.filter((_, j) => j % r.processes === i);
    const start: ParentMessage = {
      type: 'start',
      args: r.args,
      server: r.server,
      user: r.user,
      password: r.password,
      sessions: share,
      concurrency: inFlight[i]!,
      sources: mine,
      debug: has(r.args, 'debug'),
    };
    child.send(start);
    const ended = new Promise<void>((resolve) => {
      child.on('message', (m: ChildMessage) => {
        if (m.type === 'progress') latest[i] = m.progress;
        else if (m.type === 'report') {
          reports[i] = { report: m.report, times: m.times };
          resolve();
        }
      });
      child.on('exit', (code) => {
        if (!reports[i]) {
          r.log.error(`load process ${i + 1} ended before its report (exit ${code})`);
          // Reasons are a record keyed by failure text: copied with a lone spread, not extend().
          const reasons = { ...latest[i]!.reasons };
          reasons['load process ended early'] = share - latest[i]!.up - latest[i]!.failed;
          reports[i] = {
            report: extend(latest[i]!, {
              requested: share,
              setupSeconds: latest[i]!.seconds,
              p50Ms: 0,
              p99Ms: 0,
              failed: share - latest[i]!.up,
              reasons,
            }),
            times: [],
          };
        }
        resolve();
      });
    });
    return { child, ended };
  });
  const signals = new Interrupts();
  signals.duringSetup(() => {
    for (const { child } of children)
      if (child.connected) child.send({ type: 'stop' } satisfies ParentMessage, () => {});
  });
  const printer = progressPrinter(r.progressS, () => addProgress(latest, r.sessions));
  await Promise.all(children.map((c) => c.ended));
  printer.stop();
  const all = reports.map((x) => x!);
  const times = all.flatMap((x) => x.times).sort((a, b) => a - b);
  const merged = addProgress(
    all.map((x) => extend(x.report, { inFlight: 0, seconds: x.report.setupSeconds })),
    r.sessions,
  );
  const report: LoadReport & { processes: number } = {
    requested: r.sessions,
    up: merged.up,
    failed: merged.failed,
    reasons: merged.reasons,
    setupSeconds: merged.seconds,
    p50Ms: percentile(times, 0.5),
    p99Ms: percentile(times, 0.99),
    processes: r.processes,
  };
  printReport(r.args, report);
  await signals.hold(r.holdS * 1000);
  await Promise.all(
    children.map(
      ({ child }) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || !child.connected) return resolve();
          child.once('exit', () => resolve());
          child.send({ type: 'close' } satisfies ParentMessage, () => {});
        }),
    ),
  );
  signals.dispose();
  return report.failed === 0 ? 0 : 1;
}
