/**
 * packaging/poptop.service and packaging/poptop.default: the unit is parsed and its essentials
 * checked against the code (the flags ExecStart passes are accepted by `poptop serve`, its paths
 * are the ones poptop uses, the capabilities poptop needs are kept), then `systemd-analyze verify`
 * runs on it when systemd is installed (skipped otherwise: CI need not have systemd).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { flag, has, parseArgs } from '../../src/cli/args.ts';
import { RELOAD_FLAGS } from '../../src/cli/reload.ts';
import { SERVE_FLAGS } from '../../src/cli/serve.ts';
import { DEFAULT_CONTROL_SOCKET } from '../../src/server/control-socket.ts';
import { DEFAULT_STATE_DIR } from '../../src/server/default-config.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const UNIT_PATH = join(ROOT, 'packaging', 'poptop.service');
const UNIT_TEXT = readFileSync(UNIT_PATH, 'utf8');
const DEFAULT_TEXT = readFileSync(join(ROOT, 'packaging', 'poptop.default'), 'utf8');

type Unit = Map<string, Map<string, string[]>>;

/** systemd's unit syntax: [Section], Key=Value (a key may repeat), # and ; comments, \ continuation. */
export function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const head = /^\[([A-Za-z]+)\]$/.exec(line);
    if (head) {
      section = new Map();
      unit.set(head[1]!, section);
      return;
    }
    const eq = line.indexOf('=');
    if (!section || eq <= 0) throw new Error(`line ${i + 1}: not a Key=Value inside a section: ${line}`);
    const key = line.slice(0, eq).trim();
    const list = section.get(key) ?? [];
    list.push(line.slice(eq + 1).trim());
    section.set(key, list);
  });
  return unit;
}

/** The shell-style assignments of an EnvironmentFile (VAR=value, VAR="value"). */
function parseEnvironmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(raw.trim());
    if (m) env[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
  }
  return env;
}

/** ExecStart's words after systemd's expansion: ${VAR} inside a word, $VAR alone split on spaces. */
function expandCommand(line: string, env: Record<string, string>): string[] {
  const words: string[] = [];
  for (const word of line.split(/\s+/).filter(Boolean)) {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (whole) words.push(...(env[whole[1]!] ?? '').split(/\s+/).filter(Boolean));
    else words.push(word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, v: string) => env[v] ?? ''));
  }
  return words;
}

const unit = parseUnit(UNIT_TEXT);
const service = unit.get('Service')!;
const one = (key: string): string => {
  const v = service.get(key);
  assert.ok(v && v.length === 1, `[Service] ${key}= set once (got ${JSON.stringify(v)})`);
  return v[0]!;
};
const words = (key: string): string[] => (service.get(key) ?? []).flatMap((v) => v.split(/\s+/));

describe('packaging/poptop.service', () => {
  it('has the three sections and installs into multi-user.target', () => {
    assert.deepEqual([...unit.keys()], ['Unit', 'Service', 'Install']);
    assert.deepEqual(unit.get('Install')!.get('WantedBy'), ['multi-user.target']);
  });

  it('runs poptop serve in the foreground with -c, through the binary package.json installs', () => {
    assert.ok(
      ['simple', 'exec'].includes(one('Type')),
      `Type=${one('Type')}: poptop does not send sd_notify`,
    );
    const env = {
      ...Object.fromEntries(
        (service.get('Environment') ?? []).map((e) => e.split('=', 2) as [string, string]),
      ),
      ...parseEnvironmentFile(DEFAULT_TEXT),
    };
    const argv = expandCommand(one('ExecStart'), env);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };
    assert.ok(argv[0]!.startsWith('/'), 'an absolute path');
    assert.ok(
      Object.hasOwn(pkg.bin, basename(argv[0]!)),
      `${basename(argv[0]!)} is a package.json "bin" entry`,
    );
    assert.equal(argv[1], 'serve');
    const args = parseArgs(argv.slice(2), SERVE_FLAGS); // throws on a flag serve does not accept
    assert.ok(has(args, 'fg'), 'ExecStart uses --fg (systemd supervises the process it started)');
    assert.equal(flag(args, 'config'), '/etc/pptpd.conf');
    assert.equal(
      dirname(flag(args, 'pidfile')!),
      dirname(DEFAULT_CONTROL_SOCKET),
      'the pid file is in /run/poptop',
    );
  });

  it('every example option of poptop.default works with the unit’s ExecStart (no duplicate flag)', () => {
    const examples = [...DEFAULT_TEXT.matchAll(/^# {3}(-\S+(?: [^\s-]\S*)?)/gm)].map((m) => m[1]!);
    assert.ok(examples.length >= 4, `examples found: ${JSON.stringify(examples)}`);
    for (const ex of examples) {
      const argv = expandCommand(one('ExecStart'), { POPTOP_CONFIG: '/etc/pptpd.conf', POPTOP_OPTS: ex });
      assert.doesNotThrow(() => parseArgs(argv.slice(2), SERVE_FLAGS), ex);
    }
    // and what the file says is set already is indeed an error when given again
    for (const dup of ['--fg', '-c /etc/other.conf', '--pidfile /run/x.pid']) {
      const argv = expandCommand(one('ExecStart'), { POPTOP_CONFIG: '/etc/pptpd.conf', POPTOP_OPTS: dup });
      assert.throws(() => parseArgs(argv.slice(2), SERVE_FLAGS), /given twice/, dup);
      assert.ok(DEFAULT_TEXT.includes(dup.split(' ')[0]!), `poptop.default warns about ${dup}`);
    }
  });

  it('reloads with poptop reload, reads /etc/default/poptop if present', () => {
    const reload = one('ExecReload').split(/\s+/);
    assert.equal(reload[0], one('ExecStart').split(/\s+/)[0], 'the same binary');
    assert.equal(reload[1], 'reload');
    assert.doesNotThrow(() => parseArgs(reload.slice(2), RELOAD_FLAGS));
    assert.deepEqual(service.get('EnvironmentFile'), ['-/etc/default/poptop']);
  });

  it('keeps exactly the capabilities poptop needs: raw sockets, TUN and routes, port 1723, its eBPF programs', () => {
    const needed = ['CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_NET_BIND_SERVICE', 'CAP_BPF'];
    assert.deepEqual(words('CapabilityBoundingSet').sort(), [...needed].sort());
    assert.deepEqual(words('AmbientCapabilities').sort(), [...needed].sort());
    assert.equal(one('NoNewPrivileges'), 'yes');
    // @system-service leaves bpf(2) out (it is in @privileged): allowed on its own line.
    assert.deepEqual(service.get('SystemCallFilter'), ['@system-service', 'bpf']);
  });

  it('lets it open /dev/net/tun and the socket families it uses', () => {
    assert.ok(
      (service.get('DeviceAllow') ?? []).some((d) => /^\/dev\/net\/tun\s+rw?m?$/.test(d)),
      'DeviceAllow=/dev/net/tun rw',
    );
    assert.notEqual(service.get('PrivateDevices')?.[0], 'yes', 'PrivateDevices would hide /dev/net/tun');
    for (const af of ['AF_INET', 'AF_UNIX', 'AF_NETLINK'])
      assert.ok(words('RestrictAddressFamilies').includes(af), af);
    assert.notEqual(service.get('PrivateNetwork')?.[0], 'yes');
    assert.notEqual(service.get('MemoryDenyWriteExecute')?.[0], 'yes', "Node's JIT needs W+X memory");
    assert.notEqual(
      service.get('ProtectKernelTunables')?.[0],
      'yes',
      'poptop writes /proc/sys/net/ipv6/conf/<tun>/disable_ipv6',
    );
  });

  it('a read-only system with poptop’s own directories writable', () => {
    assert.equal(one('ProtectSystem'), 'strict');
    assert.equal(one('ProtectHome'), 'yes');
    assert.equal(one('PrivateTmp'), 'yes');
    const writable = [
      ...words('ReadWritePaths').map((p) => p.replace(/^-/, '')),
      ...words('RuntimeDirectory').map((d) => `/run/${d}`),
      ...words('StateDirectory').map((d) => `/var/lib/${d}`),
    ];
    assert.ok(
      writable.includes(dirname(DEFAULT_CONTROL_SOCKET)),
      `${dirname(DEFAULT_CONTROL_SOCKET)} writable`,
    );
    assert.ok(writable.includes(DEFAULT_STATE_DIR), `${DEFAULT_STATE_DIR} writable`);
    assert.ok(writable.includes('/var/log'), '/var/log writable (logfile, wtmp)');
  });

  it('systemd-analyze verify accepts it', (t) => {
    const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      t.skip('systemd-analyze is not installed');
      return;
    }
    // verify checks that ExecStart's binary exists: point it at this checkout's executable.
    const dir = mkdtempSync(join(tmpdir(), 'poptop-unit-'));
    try {
      const path = join(dir, 'poptop.service');
      writeFileSync(path, UNIT_TEXT.replaceAll('/usr/bin/poptop', join(ROOT, 'bin', 'poptop.js')));
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', path], { encoding: 'utf8' });
      // Other units installed on the machine may be reported too; only ours matter.
      const ours = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('poptop'));
      assert.deepEqual(ours, [], ours.join('\n'));
      assert.equal(r.status, 0, r.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('parseUnit', () => {
  it('collects repeated keys, joins continuations, rejects a stray line', () => {
    const u = parseUnit('[Service]\n# c\nA=1\nA=2\nB=x \\\n  y\n');
    assert.deepEqual(u.get('Service')!.get('A'), ['1', '2']);
    assert.equal(u.get('Service')!.get('B')![0]!.replace(/\s+/g, ' '), 'x y');
    assert.throws(() => parseUnit('A=1\n'), /not a Key=Value inside a section/);
  });
});
