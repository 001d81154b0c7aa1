/**
 * A real FreeRADIUS (Debian's `freeradius` package) for the integration tests: started by the test
 * on loopback with a configuration directory the test writes (users file, one client entry for
 * 127.0.0.1, the detail module for accounting), stopped by its PID.
 *
 * Missing FreeRADIUS is a skip on a developer machine and a failure in CI (CI=true) or with
 * POPTOP_REQUIRE_ROOT_TESTS=1, as for the interop testbed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CANDIDATES = ['/usr/sbin/freeradius', '/usr/sbin/radiusd'];
const required = (): boolean => process.env.CI === 'true' || process.env.POPTOP_REQUIRE_ROOT_TESTS === '1';

export function freeradiusBinary(): string | undefined {
  return CANDIDATES.find((p) => existsSync(p));
}

/** For node:test's `skip`: a reason outside CI, an exception in CI. */
export function freeradiusSkip(): string | false {
  if (freeradiusBinary() && existsSync(RADCLIENT)) return false;
  const why = 'FreeRADIUS is not installed (apt-get install freeradius freeradius-utils)';
  if (required()) throw new Error(`FreeRADIUS required here: ${why}`);
  return why;
}

/** FreeRADIUS's radclient (freeradius-utils): sends Disconnect/CoA requests to our server. */
export const RADCLIENT = '/usr/bin/radclient';

/**
 * Send one request with radclient (`kind` coa or disconnect) and return its output: what it sent and
 * what it received ("Received CoA-ACK ..."). With `netns`, radclient runs in that namespace.
 */
export function radclient(
  port: number,
  kind: 'coa' | 'disconnect',
  secret: string,
  attributes: string,
  netns?: string,
): Promise<string> {
  return new Promise((resolve) => {
    const argv = [RADCLIENT, '-x', '-r', '2', '-t', '2', `127.0.0.1:${port}`, kind, secret];
    const p = spawn(netns ? 'ip' : argv[0]!, netns ? ['netns', 'exec', netns, ...argv] : argv.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.on('exit', () => resolve(out));
    p.stdin.end(`${attributes}\n`);
  });
}

/** A free UDP port on 127.0.0.1 (bound then released). */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface FreeRadiusOptions {
  /** The users file (FreeRADIUS `files` module syntax). */
  users: string;
  secret: string;
  /**
   * An address pool in SQLite handed out by rlm_sqlippool (post-auth) and released by accounting
   * (Stop, Accounting-On/Off), with the queries file at `queries`. Users need `Pool-Name := "<pool>"`.
   */
  sqlippool?: { pool: string; addresses: string[]; leaseS: number; queries: string };
  /** Run inside this network namespace (on its loopback), for a server that runs there too. */
  netns?: string;
}

/** Debian's schema for the sqlippool table (freeradius-config). */
const IPPOOL_SCHEMA = '/etc/freeradius/3.0/mods-config/sql/ippool/sqlite/schema.sql';

/** One FreeRADIUS process with its own configuration directory. */
export class FreeRadius {
  readonly dir: string;
  readonly authPort: number;
  readonly acctPort: number;
  readonly secret: string;
  private readonly proc: ChildProcess;
  private output = '';
  private exited: Promise<number | null>;

  private constructor(dir: string, authPort: number, acctPort: number, secret: string, proc: ChildProcess) {
    this.dir = dir;
    this.authPort = authPort;
    this.acctPort = acctPort;
    this.secret = secret;
    this.proc = proc;
    proc.stdout?.on('data', (d: Buffer) => {
      this.output += d.toString();
    });
    proc.stderr?.on('data', (d: Buffer) => {
      this.output += d.toString();
    });
    this.exited = new Promise((r) => proc.on('exit', (code) => r(code)));
  }

  static async start(opts: FreeRadiusOptions): Promise<FreeRadius> {
    const bin = freeradiusBinary();
    if (!bin) throw new Error('FreeRADIUS is not installed');
    const dir = mkdtempSync(join(tmpdir(), 'poptop-freeradius-'));
    mkdirSync(join(dir, 'run'));
    mkdirSync(join(dir, 'log'));
    const authPort = await freeUdpPort();
    let acctPort = await freeUdpPort();
    while (acctPort === authPort) acctPort = await freeUdpPort();
    writeFileSync(join(dir, 'radiusd.conf'), radiusdConf(dir, authPort, acctPort, opts));
    if (opts.sqlippool) {
      // rlm_sql_sqlite creates the database from this file when it does not exist.
      const rows = opts.sqlippool.addresses.map(
        (a, i) =>
          `INSERT INTO radippool (id, pool_name, framedipaddress, expiry_time) VALUES (${i + 1}, '${opts.sqlippool!.pool}', '${a}', '2000-01-01 00:00:00');`,
      );
      writeFileSync(join(dir, 'ippool.sql'), `${readFileSync(IPPOOL_SCHEMA, 'utf8')}\n${rows.join('\n')}\n`);
    }
    writeFileSync(join(dir, 'users'), opts.users);
    // -X: debug mode (one thread, everything on stdout, in the foreground): its output explains
    // a failing test.
    // stdbuf: line-buffered output, so that `log` is current while the test runs (a pipe would
    // otherwise hold it back in 4 KiB blocks). `ip netns exec` and stdbuf exec FreeRADIUS itself:
    // the PID stays the one to stop.
    const argv = ['stdbuf', '-oL', '-eL', bin, '-X', '-d', dir];
    const proc = opts.netns
      ? spawn('ip', ['netns', 'exec', opts.netns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const fr = new FreeRadius(dir, authPort, acctPort, opts.secret, proc);
    await fr.ready();
    return fr;
  }

  private async ready(): Promise<void> {
    const end = Date.now() + 15_000;
    while (!this.output.includes('Ready to process requests')) {
      if (this.proc.exitCode !== null || Date.now() > end) {
        await this.stop();
        throw new Error(`FreeRADIUS did not start:\n${this.output.slice(-3000)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** FreeRADIUS's own log of what it did (debug output). */
  get log(): string {
    return this.output;
  }

  /** The accounting records the detail module wrote, each as attribute name → values. */
  detail(): Map<string, string[]>[] {
    const path = join(this.dir, 'detail');
    if (!existsSync(path)) return [];
    const records: Map<string, string[]>[] = [];
    for (const block of readFileSync(path, 'utf8').split(/\n\s*\n/)) {
      const rec = new Map<string, string[]>();
      for (const line of block.split('\n')) {
        const m = /^\s+([A-Za-z0-9-]+) = (.*)$/.exec(line);
        if (!m) continue;
        const value = m[2]!.replace(/^"(.*)"$/, '$1');
        rec.set(m[1]!, [...(rec.get(m[1]!) ?? []), value]);
      }
      if (rec.size > 0) records.push(rec);
    }
    return records;
  }

  /** Stop the process (by its PID) and remove the directory. */
  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.pid !== undefined) {
      process.kill(this.proc.pid, 'SIGTERM');
      const t = setTimeout(() => {
        if (this.proc.exitCode === null && this.proc.pid !== undefined)
          process.kill(this.proc.pid, 'SIGKILL');
      }, 5000);
      await this.exited;
      clearTimeout(t);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A minimal radiusd.conf: one client (127.0.0.1), auth and acct listeners on loopback, the files
 * module for users, pap/chap/mschap with MPPE keys, detail for accounting. FreeRADIUS 3.2.1
 * (Debian 12) does not add a Message-Authenticator to its replies by itself (3.2.5 does): the
 * post-auth section asks for one, as our documentation tells administrators to do.
 */
function radiusdConf(dir: string, authPort: number, acctPort: number, opts: FreeRadiusOptions): string {
  const { secret } = opts;
  const pool = opts.sqlippool;
  const poolModules = pool
    ? `  sql {
    dialect = "sqlite"
    driver = "rlm_sql_sqlite"
    sqlite {
      filename = "${dir}/ippool.db"
      busy_timeout = 1000
      bootstrap = "${dir}/ippool.sql"
    }
    radius_db = "radius"
    pool {
      start = 1
      min = 1
      max = 1
      spare = 0
      uses = 0
      lifetime = 0
      idle_timeout = 0
    }
  }
  sqlippool {
    sql_module_instance = "sql"
    dialect = "sqlite"
    pool_name = "Pool-Name"
    ippool_table = "radippool"
    lease_duration = ${pool.leaseS}
    attribute_name = Framed-IP-Address
    req_attribute_name = Framed-IP-Address
    pool_key = "%{Acct-Session-Id}"
    messages {
      exists = "Existing IP: %{reply:Framed-IP-Address} (user %{User-Name})"
      success = "Allocated IP: %{reply:Framed-IP-Address} from %{control:Pool-Name} (nas %{NAS-Identifier} user %{User-Name})"
      clear = "Released IP %{request:Framed-IP-Address} (nas %{NAS-Identifier} user %{User-Name})"
      failed = "IP Allocation FAILED from %{control:Pool-Name} (nas %{NAS-Identifier} user %{User-Name})"
      nopool = "No Pool-Name defined (user %{User-Name})"
    }
    $INCLUDE ${pool.queries}
  }
  always reject {
    rcode = reject
  }
`
    : '';
  const allocate = pool
    ? `    sqlippool
    if (notfound) {
      update reply {
        Reply-Message := "no free address in pool ${pool.pool}"
      }
      reject
    }
`
    : '';
  return `prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
confdir = ${dir}
raddbdir = ${dir}
modconfdir = ${dir}
logdir = ${dir}/log
radacctdir = ${dir}
run_dir = ${dir}/run
db_dir = ${dir}
libdir = /usr/lib/freeradius
pidfile = ${dir}/run/radiusd.pid
name = freeradius
max_request_time = 30
cleanup_delay = 0
max_requests = 1024
hostname_lookups = no
log {
  destination = files
  file = ${dir}/radius.log
  auth = yes
}
security {
  allow_core_dumps = no
  max_attributes = 200
  reject_delay = 0
  status_server = no
}
thread pool {
  start_servers = 1
  max_servers = 2
  min_spare_servers = 1
  max_spare_servers = 2
  max_requests_per_server = 0
}
client poptop {
  ipaddr = 127.0.0.1
  secret = "${secret}"
  require_message_authenticator = yes
}
modules {
  pap {
    normalise = yes
  }
  chap {
  }
  mschap {
    use_mppe = yes
    require_encryption = no
    require_strong = no
    with_ntdomain_hack = yes
  }
  files {
    filename = ${dir}/users
  }
  detail {
    filename = ${dir}/detail
    permissions = 0600
    header = "%t"
    locking = no
  }
${poolModules}}
server default {
  listen {
    type = auth
    ipaddr = 127.0.0.1
    port = ${authPort}
  }
  listen {
    type = acct
    ipaddr = 127.0.0.1
    port = ${acctPort}
  }
  authorize {
    files
    mschap
    chap
    pap
  }
  authenticate {
    Auth-Type PAP {
      pap
    }
    Auth-Type CHAP {
      chap
    }
    Auth-Type MS-CHAP {
      mschap
    }
  }
  preacct {
  }
  accounting {
    detail${pool ? '\n    sqlippool' : ''}
  }
  post-auth {
    update reply {
      Message-Authenticator := 0x00
    }
${allocate}
    Post-Auth-Type REJECT {
      update reply {
        Message-Authenticator := 0x00
      }
    }
  }
}
`;
}
