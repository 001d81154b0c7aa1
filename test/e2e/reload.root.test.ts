/**
 * Reload with the real process: `poptop serve --fg` in a network namespace with a live
 * `poptop connect` session; `poptop reload` over the control socket and SIGHUP (through
 * `poptop reload --pidfile`) both re-read the files, answer or log in words, and keep the session.
 * Needs root (namespaces, raw GRE, TUN).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { POPTOP, serveArgv, sessionsIn, writeServerConfig } from './netns.ts';
import { Scenario } from './scenario.ts';

let sc: Scenario;
let conf: string;
let control: string;
let pidfile: string;

function poptop(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync('ip', ['netns', 'exec', sc.topo.server, process.execPath, POPTOP, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

before(async () => {
  sc = new Scenario(1);
  conf = writeServerConfig(sc.topo.dir, {
    remoteip: '10.77.0.10-11',
    users: [{ user: 'alice', password: 'alice-pw' }],
  });
  control = join(sc.topo.dir, 'control.sock');
  pidfile = join(sc.topo.dir, 'poptop.pid');
  sc.server = sc.spawn(
    'server',
    sc.topo.server,
    serveArgv({ conf, dir: sc.topo.dir, control, tun: 'pptpsrv0', extra: ['--pidfile', pidfile] }),
  );
  await sc.server.waitFor(/listening on/, 15_000);
});

after(async () => {
  await sc?.destroy();
});

test('poptop reload and SIGHUP re-read the files of the running server and keep its session', async () => {
  const alice = sc.connect(0, 'alice', 'alice-pw');
  await alice.waitFor(/connected: \S+ (\S+) -> (\S+)/, 20_000);
  const options = join(sc.topo.dir, 'options.pptpd');
  const good = readFileSync(options, 'utf8');

  // an error: exit 1, file:line, nothing changes
  writeFileSync(options, `${good}requre-mppe-128\n`);
  let r = poptop(['reload', '--control-socket', control]);
  assert.equal(r.code, 1, r.out + r.err);
  assert.match(r.err, /configuration NOT reloaded: the running one is kept \(1 session unaffected\)/);
  assert.match(r.err, new RegExp(`${options.replaceAll('.', '\\.')}:\\d+: unknown option "requre-mppe-128"`));
  await sc.server!.waitFor(/error +poptop reload: configuration not reloaded/, 5000);

  // a good change and one that needs a restart
  writeFileSync(options, `${good}ms-dns 10.0.0.53\n`);
  writeFileSync(conf, `${readFileSync(conf, 'utf8')}listen ${sc.topo.serverAddress}\n`);
  r = poptop(['reload', '--control-socket', control]);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /^reloaded .*pptpd\.conf: 1 session kept$/m);
  assert.match(r.out, /new sessions only: ms-dns changed from none to 10\.0\.0\.53/);
  assert.match(
    r.out,
    /NOT applied: listen changed from all addresses to 10\.231\.0\.1: this needs a restart/,
  );
  await sc.server!.waitFor(/warn +poptop reload: listen changed from all addresses/, 5000);

  // SIGHUP through the pid file: the same reload, reported in the log
  r = poptop(['reload', '--pidfile', pidfile]);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /sent SIGHUP to poptop \(pid \d+\)/);
  await sc.server!.waitFor(
    /warn +SIGHUP: listen changed from all addresses to 10\.231\.0\.1: this needs a restart/,
    5000,
  );

  // the session is still there and carries traffic
  const rows = sessionsIn(sc.topo.server, control);
  assert.deepEqual(
    rows.map((s) => s.user),
    ['alice'],
  );
  assert.ok(sc.ping(sc.topo.clients[0]!, '10.77.0.1'), 'alice still reaches the server through the tunnel');
  assert.equal(alice.exitCode, undefined, 'the client is still connected');
});
