import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ensureDefaultSecrets } from '../../src/server/default-config.ts';
import { loadServerSettings, serverPolicy } from '../../src/server/load-settings.ts';
import { processorsForWorkers } from '../../src/server/workers/processors.ts';
import { formatIPv4 } from '../../src/wire/ip.ts';

function files(over: { conf?: string; options?: string; secrets?: string } = {}): {
  dir: string;
  conf: string;
  secrets: string;
} {
  const dir = mkdtempSync(join(tmpdir(), 'poptop-settings-'));
  const options = join(dir, 'options');
  writeFileSync(options, over.options ?? 'name vpn\nrequire-mschap-v2\nrequire-mppe-128\nms-dns 10.0.0.53\n');
  const conf = join(dir, 'pptpd.conf');
  writeFileSync(conf, over.conf ?? `option ${options}\nlocalip 10.0.0.1\nremoteip 10.0.0.100-102\n`);
  const secrets = join(dir, 'chap-secrets');
  writeFileSync(secrets, over.secrets ?? 'alice * "pw" *\n', { mode: 0o600 });
  return { dir, conf, secrets };
}

test('pptpd.conf + options + chap-secrets become server settings', () => {
  const f = files();
  const { settings, notes } = loadServerSettings({
    configPath: f.conf,
    secretsPath: f.secrets,
    globalOptionsPath: 'none',
  });
  assert.deepEqual(notes, []);
  assert.equal(settings.serverName, 'vpn');
  assert.deepEqual(settings.remoteIps.map(formatIPv4), ['10.0.0.100', '10.0.0.101', '10.0.0.102']);
  assert.deepEqual(settings.policy.auth.require, ['mschapv2']);
  assert.equal(settings.policy.mppe.required, true);
  assert.equal(settings.policy.mppe.allow128, true);
  assert.equal(settings.policy.mppe.allow40, false);
  assert.deepEqual(settings.policy.msDns.map(formatIPv4), ['10.0.0.53']);
  assert.ok(settings.credentials.lookup('alice', 'vpn'));
});

test('an unknown pppd option is an error naming the file and line', () => {
  const f = files({ options: 'name vpn\nrequre-mppe-128\n' });
  assert.throws(
    () => loadServerSettings({ configPath: f.conf, secretsPath: f.secrets, globalOptionsPath: 'none' }),
    (e: Error) => e.message.includes(`${join(f.dir, 'options')}:2`) && e.message.includes('require-mppe-128'),
  );
});

test('a secrets file readable by others is warned about', () => {
  const f = files();
  chmodSync(f.secrets, 0o644);
  const { notes } = loadServerSettings({
    configPath: f.conf,
    secretsPath: f.secrets,
    globalOptionsPath: 'none',
  });
  assert.ok(
    notes.some((n) => n.includes('chmod 600')),
    notes.join('\n'),
  );
});

test('authentication policy: require-*, auth with refuse-*, noauth, and the secure default', () => {
  assert.deepEqual(serverPolicy({}).policy.auth.require, ['mschapv2']);
  assert.deepEqual(serverPolicy({ auth: true, refusePap: true, refuseChap: true }).policy.auth.require, [
    'mschapv2',
    'mschap',
  ]);
  assert.deepEqual(serverPolicy({ requireChap: true, requirePap: true }).policy.auth.require, [
    'chap-md5',
    'pap',
  ]);
  assert.deepEqual(
    serverPolicy({ requireMschapV2: true, requireMschap: true, refuseMschap: true }).policy.auth.require,
    ['mschapv2'],
  );
  assert.throws(() => serverPolicy({ refuseMschapV2: true }), /every authentication method is refused/);
  const open = serverPolicy({ auth: false });
  assert.deepEqual(open.policy.auth.require, []);
  assert.match(open.notes.join(), /NOT authenticated/);
  assert.throws(
    () => serverPolicy({ requirePap: true, requireMppe128: true }),
    /MPPE keys come from MS-CHAP/,
  );
});

test('built-in configuration: generated user kept in a 0600 state file, password printed only once', () => {
  const dir = mkdtempSync(join(tmpdir(), 'poptop-state-'));
  const first = ensureDefaultSecrets(dir);
  assert.ok(first.generatedPassword && first.generatedPassword.length === 20);
  assert.equal(statSync(first.path).mode & 0o777, 0o600);
  assert.ok(readFileSync(first.path, 'utf8').includes(`"${first.generatedPassword}"`));
  const second = ensureDefaultSecrets(dir);
  assert.equal(second.generatedPassword, undefined);
  const { settings } = loadServerSettings({ stateDir: dir });
  assert.equal(settings.policy.mppe.required, true);
  assert.deepEqual(settings.policy.auth.require, ['mschapv2']);
  assert.ok(settings.credentials.lookup('poptop', settings.serverName));
  assert.equal(settings.remoteIps.length, 241);
});

test('mppe-stateful-preferred (poptop extension) makes the server ask for stateful MPPE', () => {
  const { conf, secrets } = files({
    options: 'require-mschap-v2\nrequire-mppe-128\nmppe-stateful-preferred\n',
  });
  const { settings } = loadServerSettings({
    configPath: conf,
    secretsPath: secrets,
    globalOptionsPath: 'none',
  });
  assert.equal(settings.policy.mppe.preferStateful, true);
  assert.equal(settings.policy.mppe.statefulAllowed, true);
  assert.equal(serverPolicy({ requireMppe128: true }).policy.mppe.preferStateful, undefined);
});

test('guard limits and the login back-off reach the server settings', () => {
  const f = files();
  const defaults = loadServerSettings({
    configPath: f.conf,
    secretsPath: f.secrets,
    globalOptionsPath: 'none',
  });
  const s = defaults.settings;
  assert.deepEqual(
    [
      s.maxUnauthPerSource,
      s.maxSetupsPerSource,
      s.maxUnauth,
      s.callDeadlineS,
      s.setupDeadlineS,
      s.controlWriteBufferBytes,
    ],
    [16, 8, 256, 30, 60, 65536],
  );
  assert.equal(s.loginThrottle.failLimit, 10);
  assert.equal(s.loginThrottle.lockoutS, 300);
  assert.equal(s.loginThrottle.windowS, 600);
  assert.ok(Object.isFrozen(s.loginThrottle));

  writeFileSync(
    f.conf,
    `${readFileSync(f.conf, 'utf8')}auth-fail-limit 4\nauth-lockout 7200\nauth-fail-window 60\nmax-unauth 40\ncall-deadline 15\n`,
  );
  const t = loadServerSettings({
    configPath: f.conf,
    secretsPath: f.secrets,
    globalOptionsPath: 'none',
  }).settings;
  assert.equal(t.loginThrottle.failLimit, 4);
  assert.equal(t.loginThrottle.lockoutS, 7200);
  assert.equal(t.loginThrottle.maxLockoutS, 7200, 'the longest lockout is never below the first');
  assert.equal(t.loginThrottle.windowS, 60);
  assert.equal(t.maxUnauth, 40);
  assert.equal(t.callDeadlineS, 15);

  // the built-in configuration has them too
  const dir = mkdtempSync(join(tmpdir(), 'poptop-builtin-'));
  const b = loadServerSettings({ stateDir: dir }).settings;
  assert.equal(b.maxUnauthPerSource, 16);
  assert.equal(b.loginThrottle.failLimit, 10);
});

test('workers: the count reaches the settings; with RADIUS, status or a long TUN name it is an error naming where', () => {
  const f = files();
  const load = (extra: string, more: Record<string, string> = {}) => {
    writeFileSync(
      f.conf,
      `option ${join(f.dir, 'options')}\nlocalip 10.0.0.1\nremoteip 10.0.0.100-102\n${extra}`,
    );
    return loadServerSettings({
      configPath: f.conf,
      secretsPath: f.secrets,
      globalOptionsPath: 'none',
      ...more,
    });
  };
  // Unset: one per processor ("auto"), marked as the default (one process where the kernel refuses
  // a shared TUN device); a long TUN name is no error then, since no worker device is ever named.
  const processors = processorsForWorkers().count;
  const byDefault = load('', { tunName: 'a-long-tunname' }).settings;
  assert.equal(byDefault.workers, processors > 1 ? processors : undefined, 'one per processor by default');
  assert.equal(byDefault.workersByDefault, processors > 1 ? true : undefined);
  assert.equal(load('workers auto\n').settings.workersByDefault, undefined, 'set: not the default');
  assert.equal(load('', { workers: 'auto' }).settings.workersByDefault, undefined, '--workers auto');
  assert.equal(load('workers 1\n').settings.workers, undefined);
  assert.equal(load('workers 3\n').settings.workers, 3);
  assert.equal(load('workers 3\n', { workers: '2' }).settings.workers, 2, '--workers wins');
  assert.equal(load('workers 3\n', { workers: '1' }).settings.workers, undefined);
  assert.throws(
    () => load('', { workers: 'many' }),
    /^Error: --workers expects "auto" \(one per processor\) or a number from 1 to 64, got "many"$/,
  );
  const withStatus = load('workers 2\nstatus 127.0.0.1:9100\n').settings;
  assert.equal(withStatus.workers, 2, 'the primary serves the status page for its workers');
  assert.deepEqual(withStatus.status, { host: '127.0.0.1', port: 9100 });
  const withRadius = load(
    'workers 2\nradius-auth-server 127.0.0.1 secret\nradius-nas-identifier vpn\n',
  ).settings;
  assert.equal(withRadius.workers, 2, 'RADIUS with workers: the primary has the NAS events');
  assert.ok(withRadius.radius);
  const w = loadServerSettings({
    configPath: f.conf,
    secretsPath: f.secrets,
    globalOptionsPath: 'none',
    tunName: 'vpn0',
    worker: { index: 2, count: 3 },
  }).settings;
  assert.equal(w.tunName, 'vpn0w2', "a worker's own TUN device");
  assert.equal(w.maxUnauth, Math.floor(256 / 3), 'its share of max-unauth');
  assert.equal(w.workers, undefined, 'no workers of its own');
  assert.throws(
    () => load('workers 12\n', { tunName: 'a-long-tunname' }),
    /the workers' TUN devices are named a-long-tunnamew0 to a-long-tunnamew11, longer than the 15 characters Linux allows/,
  );
});
