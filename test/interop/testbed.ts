/**
 * The QEMU testbed (shared/testbed, outside the repository) driven from node:test: the real
 * Debian PPTP client (pptp-linux + pppd + kernel MPPE) and the real PoPToP server in guests on a
 * bridge in network namespace `pptb`, and our `poptop` processes in that namespace. Every process
 * is started through NsProcess and stopped only by its own PID; `down()` removes the namespace.
 *
 * The testbed is found at $POPTOP_TESTBED, else <repo>/../shared/testbed, else
 * /work/shared/testbed. Missing, or a failing build.sh, is a skip on a developer machine and a
 * failure in CI (CI=true) or with POPTOP_REQUIRE_ROOT_TESTS=1.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processorsForWorkers } from '../../src/server/workers/processors.ts';
import { NsProcess, POPTOP, poptopIn, ROOT, type SessionRow, sessionsIn } from '../e2e/netns.ts';

export const NETNS = 'pptb';
/** Host end of the bridge: where our server listens and where guest servers are reached from. */
export const HOST_IP = '172.31.250.1';
/** Tunnel addresses used by our server configurations. */
export const TUNNEL_LOCAL = '172.31.251.1';

const required = (): boolean => process.env.CI === 'true' || process.env.POPTOP_REQUIRE_ROOT_TESTS === '1';

export function locateTestbed(): string | undefined {
  const candidates = [
    process.env.POPTOP_TESTBED,
    join(ROOT, '..', 'shared', 'testbed'),
    '/work/shared/testbed',
  ];
  return candidates.find((d): d is string => !!d && existsSync(join(d, 'guest-client.sh')));
}

let prepared: { dir: string } | { skip: string } | undefined;

/**
 * Locate and build the testbed (build.sh --quiet: a no-op when up to date) and refresh dist/ so
 * that bin/poptop.js runs the current sources. Returns the testbed directory, or a reason to skip
 * (only outside CI); in CI every problem throws.
 */
export function prepareTestbed(): { dir: string } | { skip: string } {
  prepared ??= prepare();
  return prepared;
}

function prepare(): { dir: string } | { skip: string } {
  const fail = (why: string): { skip: string } => {
    if (required()) throw new Error(`interop testbed required here: ${why}`);
    return { skip: why };
  };
  if (process.getuid?.() !== 0) return fail('needs root (network namespaces, QEMU taps)');
  const dir = locateTestbed();
  if (!dir) return fail('testbed not found (set POPTOP_TESTBED)');
  const build = spawnSync(join(dir, 'build.sh'), ['--quiet'], { encoding: 'utf8', timeout: 600_000 });
  if (build.status !== 0) return fail(`build.sh failed (${build.status}): ${build.stderr.slice(-800)}`);
  // bin/poptop.js runs dist/: compile the current sources first.
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run build failed:\n${r.stdout}${r.stderr}`);
  return { dir };
}

/** For node:test's `skip` option. */
export function testbedSkip(): string | false {
  const p = prepareTestbed();
  return 'skip' in p ? p.skip : false;
}

function testbedDir(): string {
  const p = prepareTestbed();
  if ('skip' in p) throw new Error(p.skip);
  return p.dir;
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Run in the namespace; returns whether the command exited 0. */
export function nsOk(argv: string[]): boolean {
  return (
    spawnSync('ip', ['netns', 'exec', NETNS, ...argv], { stdio: 'ignore', timeout: 60_000 }).status === 0
  );
}

/** Polls `check` every 100 ms until it returns true or `ms` pass. */
export async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (check()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Everything one test file started: processes (stopped by PID) and the namespace. */
export class Bed {
  readonly dir: string;
  readonly work: string;
  private readonly procs: NsProcess[] = [];
  private readonly iperf = new Map<number, NsProcess>();

  constructor() {
    this.dir = testbedDir();
    this.work = mkdtempSync(join(tmpdir(), 'poptop-interop-'));
    sh(join(this.dir, 'netns.sh'), ['up']);
  }

  /** A process in the namespace (the testbed scripts too: they create their taps in it). */
  spawn(name: string, argv: string[], env: NodeJS.ProcessEnv = {}): NsProcess {
    const p = new NsProcess(name, NETNS, argv, env);
    this.procs.push(p);
    return p;
  }

  /** Stop everything we started (guests first, by SIGTERM: they shut down cleanly), then the namespace. */
  async down(): Promise<void> {
    for (const p of this.procs) p.signal('SIGTERM');
    await Promise.all(this.procs.map((p) => p.exited(20_000).catch(() => null)));
    for (const p of this.procs) p.signal('SIGKILL');
    await Promise.all(this.procs.map((p) => p.exited(5000).catch(() => null)));
    try {
      sh(join(this.dir, 'netns.sh'), ['down']);
    } catch {
      /* already gone */
    }
    if (process.env.POPTOP_INTEROP_KEEP !== '1') rmSync(this.work, { recursive: true, force: true });
  }

  /** `iperf3 -s` for one test on the server's tunnel address (start it after the server is up). */
  async iperfServer(port: number, bind = TUNNEL_LOCAL): Promise<NsProcess> {
    await until(() => sh('ip', ['-n', NETNS, '-o', 'addr']).includes(`inet ${bind}/`), 10_000);
    // A one-off server whose client never came (a failed test) would hold the port: stop it first.
    const old = this.iperf.get(port);
    if (old && old.exitCode === undefined) {
      old.signal('SIGTERM');
      await old.exited(5000).catch(() => null);
    }
    const argv = ['iperf3', '-s', '-1', '--forceflush', '-B', bind, '-p', String(port)];
    const p = this.spawn(`iperf3-s:${port}`, argv);
    this.iperf.set(port, p);
    await p.waitFor(/Server listening/, 10_000);
    return p;
  }
}

export interface ServerUser {
  user: string;
  password: string;
  ip?: string;
}

/** `poptop serve` in the namespace with an options file written from `options` (pppd syntax). */
export class PoptopServer {
  readonly proc: NsProcess;
  readonly control: string;

  private constructor(proc: NsProcess, control: string) {
    this.proc = proc;
    this.control = control;
  }

  static async start(
    bed: Bed,
    name: string,
    o: { options: string[]; users: ServerUser[]; remoteip: string },
  ): Promise<PoptopServer> {
    const dir = join(bed.work, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'options'), `${o.options.join('\n')}\n`);
    const secrets = o.users.map(
      (u) => `"${u.user.replaceAll('\\', '\\\\')}" * "${u.password}" ${u.ip ?? '*'}\n`,
    );
    writeFileSync(join(dir, 'chap-secrets'), secrets.join(''), { mode: 0o600 });
    const conf = join(dir, 'pptpd.conf');
    writeFileSync(conf, `option ${join(dir, 'options')}\nlocalip ${TUNNEL_LOCAL}\nremoteip ${o.remoteip}\n`);
    const control = join(dir, 'control.sock');
    const proc = bed.spawn(`server:${name}`, [
      process.execPath,
      POPTOP,
      'serve',
      '--fg',
      '-d',
      '-c',
      conf,
      '--global-options',
      'none',
      '--secrets',
      join(dir, 'chap-secrets'),
      '--control-socket',
      control,
      '--tun',
      'pptbsrv0',
    ]);
    await proc.waitFor(/listening on/, 20_000);
    // `workers` is left unset, so the server runs one worker per processor, on one TUN device: the
    // real clients meet that default wherever this machine has more than one processor.
    const serving = (await proc.waitFor(/poptop serving with .*/, 5000))[0];
    if (
      processorsForWorkers().count > 1 &&
      !/workers \(one per processor\), tunnel pptbsrv0 \(a queue each\)/.test(serving)
    )
      throw new Error(`the default configuration should run workers on one TUN device here: ${serving}`);
    await proc.waitFor(/control socket listening/, 5000);
    return new PoptopServer(proc, control);
  }

  sessions(): SessionRow[] {
    return sessionsIn(NETNS, this.control);
  }

  kill(target: string): string {
    return poptopIn(NETNS, ['kill', target, '--control-socket', this.control]);
  }

  /** SIGTERM and wait for exit (the TUN device is gone afterwards, so the next server may start). */
  async stop(): Promise<number | null> {
    this.proc.signal('SIGTERM');
    return this.proc.exited(20_000);
  }

  /** Output of the server since `from` (an offset into its output). */
  since(from: number): string {
    return this.proc.output.slice(from);
  }
}
