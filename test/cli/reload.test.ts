/**
 * `poptop reload` against a running server in this process: the real configuration files in a
 * temporary directory, the real control socket there, the real CLI in a child process, a real
 * session (our client over loopback TCP and in-memory GRE) that must survive every reload.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseArgs } from '../../src/cli/args.ts';
import { RELOAD_FLAGS, type ReloadIo, reloadCommand } from '../../src/cli/reload.ts';
import { defaultPolicy } from '../../src/ppp/policy.ts';
import { listenControlSocket } from '../../src/server/control-socket.ts';
import { type LoadOptions, loadServerSettings } from '../../src/server/load-settings.ts';
import { type ReloadReport, reloadServer } from '../../src/server/reload.ts';
import { formatIPv4 } from '../../src/wire/ip.ts';
import { type Bench, startClient, startServer, type TestClient, within } from '../server/harness.ts';
import { runCli } from './run-cli.ts';

const OPTIONS = ['name poptop-test', 'require-mschap-v2', 'require-mppe-128', 'lcp-echo-interval 0'];

describe('poptop reload (control socket, real files, a live session)', () => {
  let dir: string;
  let conf: string;
  let options: string;
  let secrets: string;
  let sock: string;
  let bench: Bench;
  let control: Server;
  let alice: TestClient;
  let loadOpts: LoadOptions;

  const writeConf = (lines: string[]): void => writeFileSync(conf, `${lines.join('\n')}\n`);
  const writeOptions = (lines: string[]): void => writeFileSync(options, `${lines.join('\n')}\n`);
  const writeSecrets = (lines: string[]): void =>
    writeFileSync(secrets, `${lines.join('\n')}\n`, { mode: 0o600 });
  const baseConf = (): string[] => [
    `option ${options}`,
    'listen 127.0.0.1',
    'localip 10.77.0.1',
    'remoteip 10.77.0.10-12',
  ];

  // The server's port is chosen by the test (0): the files cannot say so, as port 1723 is fixed.
  const load = () => {
    const l = loadServerSettings(loadOpts);
    return { ...l, settings: { ...l.settings, port: 0 } };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'poptop-reload-'));
    conf = join(dir, 'pptpd.conf');
    options = join(dir, 'options.pptpd');
    secrets = join(dir, 'chap-secrets');
    sock = join(dir, 'run', 'control.sock');
    writeConf(baseConf());
    writeOptions(OPTIONS);
    writeSecrets(['alice * "alice-secret" *']);
    loadOpts = { configPath: conf, secretsPath: secrets, globalOptionsPath: 'none', tunName: 'mtun-server' };
    bench = await startServer(load().settings);
    // The same wiring as `poptop serve`: the control socket's "reload" runs reloadServer().
    control = await listenControlSocket(
      sock,
      (req) => {
        if (req.cmd === 'reload') {
          const report = reloadServer(bench.server, load, bench.log, 'poptop reload');
          return report.ok ? { ok: true, data: report } : { ok: false, error: 'not reloaded', data: report };
        }
        if (req.cmd === 'sessions') return { ok: true, data: bench.server.list() };
        return { ok: false, error: 'unexpected' };
      },
      bench.log,
    );
    alice = startClient(bench, { user: 'alice', password: 'alice-secret' });
    await within(alice.up, 5000, 'alice up');
  });

  after(async () => {
    await alice?.client.close();
    control?.close();
    await bench?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const aliceUp = (): void => {
    const s = bench.server.list().find((x) => x.user === 'alice');
    assert.ok(s, 'alice has a session');
    assert.equal(s.state, 'up');
  };

  it('an error in a file: exit 1, the error with file:line, the running configuration and the session kept', async () => {
    const before = bench.server.currentSettings;
    writeOptions([...OPTIONS, 'requre-mppe-128']);
    const r = await runCli(['reload', '--control-socket', sock]);
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.err, /configuration NOT reloaded: the running one is kept \(1 session unaffected\)/);
    assert.ok(r.err.includes(`${options}:5: unknown option "requre-mppe-128"`), r.err);
    assert.equal(bench.server.currentSettings, before, 'the settings object is the same');
    assert.ok(bench.log.lines.some((l) => l.level === 'error' && l.line.includes(`${options}:5`)));
    aliceUp();
    writeOptions(OPTIONS);
  });

  it('a bad chap-secrets line is an error with file:line too', async () => {
    writeSecrets(['alice * "alice-secret" *', 'bob * $NT$1234 *']);
    const r = await runCli(['reload', '--control-socket', sock, '--json']);
    assert.equal(r.code, 1, r.out + r.err);
    const report = JSON.parse(r.out) as ReloadReport;
    assert.equal(report.ok, false);
    assert.ok(
      report.errors.some((e) => e.startsWith(`${secrets}:2:`)),
      JSON.stringify(report.errors),
    );
    writeSecrets(['alice * "alice-secret" *']);
  });

  it('changes: new secrets and options apply to new sessions, listen is named as needing a restart, alice stays', async () => {
    writeConf([
      `option ${options}`,
      'listen 127.0.0.9',
      'localip 10.77.0.1',
      'remoteip 10.77.0.20-29',
      'connections 5',
      'bcrelay eth1',
    ]);
    writeOptions([...OPTIONS, 'ms-dns 10.0.0.53']);
    writeSecrets(['alice * "alice-secret" *', 'dave * "dave-pw" *']);
    const r = await runCli(['reload', '--control-socket', sock]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, new RegExp(`^reloaded ${conf}: 1 session kept$`, 'm'));
    assert.match(
      r.out,
      /NOT applied: listen changed from 127\.0\.0\.1 to 127\.0\.0\.9: this needs a restart/,
    );
    assert.match(
      r.out,
      /NOT applied: the broadcast relay \(bcrelay\) changed from off to eth1: this needs a restart; off stays until then/,
    );
    assert.equal(bench.server.currentSettings.bcrelay, undefined, 'the relay is not started by a reload');
    assert.match(
      r.out,
      /new sessions only: ms-dns changed from none to 10\.0\.0\.53 \(live sessions keep theirs\)/,
    );
    assert.match(r.out, /applied: connections changed from 3 to 5/);
    assert.match(
      r.out,
      /applied: remoteip changed: 3 addresses \(10\.77\.0\.10 \.\.\. 10\.77\.0\.12\) -> 5 addresses \(10\.77\.0\.20 \.\.\. 10\.77\.0\.24\)/,
    );
    assert.match(r.out, /1 live session keeps its address outside the new pool \(10\.77\.0\.10\)/);
    assert.match(r.out, /chap-secrets read again \(2 entries\)/);
    assert.match(r.out, /notes:\n {2}.*pptpd\.conf:4: remoteip lists 10 addresses but connections is 5/);
    // the listener was not moved: still the running address
    assert.equal(formatIPv4(bench.server.currentSettings.listen!), '127.0.0.1');
    assert.ok(
      bench.log.lines.some(
        (l) => l.level === 'warn' && /poptop reload: listen changed .* needs a restart/.test(l.line),
      ),
    );
    aliceUp();

    // dave, unknown before, logs in now and gets the new pool and the new DNS server
    const dave = startClient(bench, {
      user: 'dave',
      password: 'dave-pw',
      localAddress: '127.0.0.3',
      policy: { ...defaultPolicy('client'), usePeerDns: true },
    });
    try {
      const info = await within(dave.up, 5000, 'dave up after the reload');
      assert.equal(formatIPv4(info.localAddress), '10.77.0.20');
      assert.deepEqual(info.dns.map(formatIPv4), ['10.0.0.53']);
    } finally {
      await dave.client.close();
    }
    aliceUp();
  });

  it('a change needing a restart is named again at every reload until the restart', async () => {
    const r = await runCli(['reload', '--control-socket', sock]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /NOT applied: listen changed from 127\.0\.0\.1 to 127\.0\.0\.9/);
    assert.doesNotMatch(r.out, /ms-dns changed/, 'applied changes are not repeated');
    aliceUp();
  });

  it('the localip of the TUN device is kept and named; so is debug', async () => {
    writeConf([
      `option ${options}`,
      'listen 127.0.0.1',
      'localip 10.77.0.2',
      'remoteip 10.77.0.10-12',
      'debug',
    ]);
    const r = await runCli(['reload', '--control-socket', sock]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(
      r.out,
      /NOT applied: localip \(the TUN device's own addresses\) changed from 10\.77\.0\.1 to 10\.77\.0\.2/,
    );
    assert.match(r.out, /NOT applied: debug logging \(-d, debug\) changed from off to on/);
    assert.doesNotMatch(r.out, /NOT applied: listen/, 'listen is back to the running value');
    assert.deepEqual(bench.server.currentSettings.localIps.map(formatIPv4), ['10.77.0.1']);
    assert.equal(bench.server.currentSettings.debug, false);
    aliceUp();
  });

  it('nothing listening: a message in words, exit 1', async () => {
    const r = await runCli(['reload', '--control-socket', join(dir, 'nothing.sock')]);
    assert.equal(r.code, 1);
    assert.match(r.err, /no poptop server is running \(nothing listens on .*nothing\.sock\)/);
  });
});

describe('poptop reload --pidfile (SIGHUP)', () => {
  const io = (files: Record<string, string>, signalled: number[]): ReloadIo & { text: string } => {
    const o = {
      text: '',
      out: (t: string) => {
        o.text += t;
      },
      err: (t: string) => {
        o.text += t;
      },
      query: () => Promise.reject(new Error('no socket in this test')),
      readFile: (p: string) => {
        const f = files[p];
        if (f === undefined) throw new Error(`ENOENT: ${p}`);
        return f;
      },
      signal: (pid: number) => {
        signalled.push(pid);
      },
    };
    return o;
  };

  it('sends SIGHUP to the poptop process named in the pid file', async () => {
    const sent: number[] = [];
    const o = io(
      { '/run/pptpd.pid': '4242\n', '/proc/4242/cmdline': 'node\0/usr/bin/poptop\0serve\0--fg\0' },
      sent,
    );
    assert.equal(await reloadCommand(parseArgs(['--pidfile', '/run/pptpd.pid'], RELOAD_FLAGS), o), 0);
    assert.deepEqual(sent, [4242]);
    assert.match(o.text, /sent SIGHUP to poptop \(pid 4242\)/);
  });

  it('refuses to signal a process that is not poptop (a stale pid file)', async () => {
    const sent: number[] = [];
    const o = io({ '/run/pptpd.pid': '4242\n', '/proc/4242/cmdline': '/usr/sbin/sshd\0-D\0' }, sent);
    await assert.rejects(
      reloadCommand(parseArgs(['-p', '/run/pptpd.pid'], RELOAD_FLAGS), o),
      /is not poptop .*sshd/,
    );
    assert.deepEqual(sent, []);
  });

  it('a pid file without a live process or without a number: errors in words', async () => {
    const sent: number[] = [];
    await assert.rejects(
      reloadCommand(parseArgs(['-p', '/x.pid'], RELOAD_FLAGS), io({ '/x.pid': '99999\n' }, sent)),
      /no process 99999 \(from \/x\.pid\) is running/,
    );
    await assert.rejects(
      reloadCommand(parseArgs(['-p', '/x.pid'], RELOAD_FLAGS), io({ '/x.pid': 'garbage' }, sent)),
      /does not hold a process id/,
    );
    await assert.rejects(
      reloadCommand(parseArgs(['-p', '/missing.pid'], RELOAD_FLAGS), io({}, sent)),
      /cannot read pid file \/missing\.pid/,
    );
    assert.deepEqual(sent, []);
  });

  it('an old server that does not know "reload" gets a hint to use SIGHUP', async () => {
    const o = io({}, []);
    o.query = () => Promise.resolve({ ok: false, error: 'malformed request' });
    await assert.rejects(reloadCommand(parseArgs([], RELOAD_FLAGS), o), /does not know "reload".*--pidfile/);
  });
});
