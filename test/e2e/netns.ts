/**
 * Network namespaces for the end-to-end tests and the demo: a server namespace and client
 * namespaces joined by veth pairs to a bridge in the server namespace, all created here and
 * removed in `destroy()`. Nothing is routed outside them. Processes are started through
 * `ip netns exec` and killed only by the PID we got when starting them.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const POPTOP = join(ROOT, 'bin', 'poptop.js');

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A row of `poptop sessions --json`, as far as the tests look at it. */
export type SessionRow = { id: string; user: string | null; peer: string; ip: string | null };

/** Runs a `poptop` command (sessions, kill, ...) inside namespace `ns`; returns its stdout. */
export function poptopIn(ns: string, args: string[]): string {
  return sh('ip', ['netns', 'exec', ns, process.execPath, POPTOP, ...args]);
}

/** `poptop sessions --json` through the control socket `control`, inside `ns`. */
export function sessionsIn(ns: string, control: string): SessionRow[] {
  return JSON.parse(poptopIn(ns, ['sessions', '--json', '--control-socket', control])) as SessionRow[];
}

/**
 * `node [nodeArgs] poptop serve --fg` with a configuration written by writeServerConfig into `dir`
 * (its chap-secrets beside it), no global options file, its own control socket and TUN name.
 */
export function serveArgv(o: {
  conf: string;
  dir: string;
  control: string;
  tun: string;
  extra?: readonly string[];
  nodeArgs?: readonly string[];
}): string[] {
  return [
    process.execPath,
    ...(o.nodeArgs ?? []),
    POPTOP,
    'serve',
    '--fg',
    '-c',
    o.conf,
    '--global-options',
    'none',
    '--secrets',
    join(o.dir, 'chap-secrets'),
    '--control-socket',
    o.control,
    '--tun',
    o.tun,
    ...(o.extra ?? []),
  ];
}

/** The server's `status` answer (sessions, pool, system counters, fds, memory) through its control socket, inside `ns`. */
export function statusIn<T>(ns: string, control: string): T {
  const script = `const s=require('net').connect(process.argv[1]);let b='';s.on('connect',()=>s.write('{"cmd":"status"}\\n'));s.on('data',d=>b+=d);s.on('end',()=>process.stdout.write(b));`;
  const out = sh('ip', ['netns', 'exec', ns, process.execPath, '-e', script, control]);
  const reply = JSON.parse(out) as { ok: boolean; data: T };
  if (!reply.ok) throw new Error(`status failed: ${out}`);
  return reply.data;
}

/** Polls `get` every 200 ms until it returns a value; throws naming `what` after `ms`. */
export async function until<T>(what: string, ms: number, get: () => T | undefined): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface Topology {
  /** Namespace names. */
  server: string;
  clients: string[];
  /** Server LAN address (where TCP 1723 listens), e.g. 10.231.0.1. */
  serverAddress: string;
  clientAddress(i: number): string;
  dir: string;
  destroy(): void;
}

/** `count` client namespaces, each with a veth to the server namespace on one /24. */
export function createTopology(count: number, tag = `${process.pid % 10000}`): Topology {
  const server = `ptS${tag}`;
  const clients = Array.from({ length: count }, (_, i) => `ptC${tag}x${i}`);
  const net = '10.231.0';
  const dir = mkdtempSync(join(tmpdir(), 'poptop-e2e-'));
  const topo: Topology = {
    server,
    clients,
    serverAddress: `${net}.1`,
    clientAddress: (i) => `${net}.${i + 2}`,
    dir,
    destroy: () => {
      for (const ns of [server, ...clients]) {
        try {
          sh('ip', ['netns', 'del', ns]);
        } catch {
          /* already gone */
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    sh('ip', ['netns', 'add', server]);
    sh('ip', ['-n', server, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', server, 'link', 'add', 'br0', 'type', 'bridge']);
    sh('ip', ['-n', server, 'addr', 'add', `${topo.serverAddress}/24`, 'dev', 'br0']);
    sh('ip', ['-n', server, 'link', 'set', 'br0', 'up']);
    clients.forEach((ns, i) => {
      sh('ip', ['netns', 'add', ns]);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      sh('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `v${i}`, 'netns', server]);
      sh('ip', ['-n', server, 'link', 'set', `v${i}`, 'master', 'br0', 'up']);
      sh('ip', ['-n', ns, 'addr', 'add', `${topo.clientAddress(i)}/24`, 'dev', 'eth0']);
      sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    });
  } catch (e) {
    topo.destroy();
    throw e;
  }
  return topo;
}

/** A process running in a namespace, with its output collected. */
export class NsProcess {
  readonly child: ChildProcess;
  readonly name: string;
  output = '';
  private exitWaiters: ((code: number | null) => void)[] = [];
  exitCode: number | null | undefined;

  constructor(name: string, ns: string, argv: string[], env: NodeJS.ProcessEnv = {}) {
    this.name = name;
    this.child = spawn('ip', ['netns', 'exec', ns, ...argv], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    const collect = (d: Buffer): void => {
      this.output += d.toString();
      if (process.env.POPTOP_TEST_DEBUG === '1') process.stderr.write(`[${name}] ${d}`);
    };
    this.child.stdout!.on('data', collect);
    this.child.stderr!.on('data', collect);
    // Ended once its output is read to the end too: 'exit' may come before the last of it
    // ('close' once the pipes are drained). A child left behind holding the pipes (a hook's
    // background job) would hold 'close' back, so 500 ms after 'exit' it counts as ended anyway.
    this.child.on('exit', (code, signal) => {
      const status = code ?? (signal ? -1 : null);
      const ended = (): void => {
        if (this.exitCode !== undefined) return;
        this.exitCode = status;
        for (const w of this.exitWaiters.splice(0)) w(status);
      };
      if (this.child.stdout!.readableEnded && this.child.stderr!.readableEnded) ended();
      else {
        this.child.once('close', ended);
        setTimeout(ended, 500).unref();
      }
    });
  }

  /** Resolves when the output matches, rejects on timeout or if the process exits first. */
  waitFor(re: RegExp, ms: number): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const start = Date.now();
      const tick = (): void => {
        const m = this.output.match(re);
        if (m) resolve(m);
        else if (this.exitCode !== undefined) {
          reject(new Error(`${this.name} exited (${this.exitCode}) before ${re}:\n${this.tail()}`));
        } else if (Date.now() - start > ms) {
          reject(new Error(`${this.name}: no ${re} within ${ms} ms:\n${this.tail()}`));
        } else setTimeout(tick, 50);
      };
      tick();
    });
  }

  exited(ms: number): Promise<number | null> {
    if (this.exitCode !== undefined) return Promise.resolve(this.exitCode);
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`${this.name} still running after ${ms} ms:\n${this.tail()}`)),
        ms,
      );
      this.exitWaiters.push((c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
  }

  signal(sig: NodeJS.Signals): void {
    // `ip netns exec` execs the command, so this PID is the command itself.
    if (this.exitCode === undefined && this.child.pid) process.kill(this.child.pid, sig);
  }

  tail(lines = 40): string {
    return this.output.split('\n').slice(-lines).join('\n');
  }
}

/** Writes a poptop server configuration (pptpd.conf, options, chap-secrets) into `dir`. */
export function writeServerConfig(
  dir: string,
  o: {
    remoteip: string;
    users: { user: string; password: string; ip?: string }[];
    options?: string[];
    /** More pptpd.conf lines. */
    conf?: string[];
    /**
     * Leave `workers` unset (the default: one per processor). Otherwise the file says `workers 1`:
     * the suites are written for one process unless they ask for workers (`--workers N`).
     */
    defaultWorkers?: boolean;
  },
): string {
  const options = join(dir, 'options.pptpd');
  const secrets = join(dir, 'chap-secrets');
  const conf = join(dir, 'pptpd.conf');
  writeFileSync(
    options,
    [
      'name poptop-e2e',
      'refuse-pap',
      'refuse-chap',
      'refuse-mschap',
      'require-mschap-v2',
      'require-mppe-128',
      'lcp-echo-interval 1',
      'lcp-echo-failure 3',
      ...(o.options ?? []),
      '',
    ].join('\n'),
  );
  writeFileSync(secrets, o.users.map((u) => `${u.user}\t*\t"${u.password}"\t${u.ip ?? '*'}\n`).join(''), {
    mode: 0o600,
  });
  writeFileSync(
    conf,
    [
      `option ${options}`,
      'localip 10.77.0.1',
      `remoteip ${o.remoteip}`,
      ...(o.conf ?? []),
      // Last, so the suites' own lines keep the line numbers they check in messages.
      ...(o.defaultWorkers ? [] : ['workers 1']),
      '',
    ].join('\n'),
  );
  return conf;
}
