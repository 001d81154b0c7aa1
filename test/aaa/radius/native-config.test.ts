/**
 * poptop's native RADIUS keywords in pptpd.conf (config/radius-keywords.ts + aaa/radius/config.ts):
 * the same RadiusSettings as radiusclient.conf gives, secrets from the line or a secret file, and
 * errors naming the file, the line and what was expected.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRadiusClientConf, radiusSettingsFromNative } from '../../../src/aaa/radius/config.ts';
import { ConfigError, formatIssue } from '../../../src/config/issues.ts';
import { parsePptpdConf } from '../../../src/config/pptpd-conf.ts';
import { loadServerSettings } from '../../../src/server/load-settings.ts';

const CONF = '/etc/pptpd.conf';
const OPTIONS = '/etc/ppp/pptpd-options';
const SECRET_FILE = '/etc/poptop/radius-secret';

function reader(map: Record<string, string>) {
  return (p: string) => {
    const t = map[p];
    if (t === undefined) throw new Error(`ENOENT: no such file "${p}"`);
    return t;
  };
}

/** loadServerSettings over in-memory files (no chap-secrets needed with RADIUS). */
function load(conf: string, extra: Record<string, string> = {}, options = 'require-mschap-v2\n') {
  const read = reader({ [CONF]: conf, [OPTIONS]: options, ...extra });
  return loadServerSettings({
    configPath: CONF,
    globalOptionsPath: 'none',
    secretsPath: '/nonexistent/chap-secrets',
    readFile: (p) => (p === '/nonexistent/chap-secrets' ? '' : read(p)),
  });
}

function loadErrors(conf: string, extra: Record<string, string> = {}, options?: string): string[] {
  try {
    load(conf, extra, options);
  } catch (e) {
    if (e instanceof ConfigError) return e.errors.map(formatIssue);
    throw e;
  }
  assert.fail('expected a ConfigError');
}

const BASE = `option ${OPTIONS}\nlocalip 10.1.0.1\nremoteip 10.1.0.10-20\n`;

test('the native keywords give the same settings as radiusclient.conf + servers', () => {
  const native = load(
    `${BASE}radius-auth-server 10.0.0.5
radius-auth-server 127.0.0.1:11812 secret-local
radius-acct-server 10.0.0.5:1813
radius-secret-file ${SECRET_FILE}
radius-timeout 5
radius-retries 2
radius-deadtime 30
radius-nas-identifier vpn1
radius-nas-ip 192.0.2.1
radius-bind 192.0.2.1
radius-dynauth-port 3800
`,
    { [SECRET_FILE]: '# shared with every server\nsecret-five\n' },
  ).settings.radius;
  const classic = parseRadiusClientConf(
    `authserver 10.0.0.5,localhost:11812:secret-local
acctserver 10.0.0.5:1813
servers /etc/radiusclient/servers
radius_timeout 5
radius_retries 2
radius_deadtime 30
nas-identifier vpn1
nas-ip 192.0.2.1
bindaddr 192.0.2.1
dynauth_port 3800
`,
    '/etc/radiusclient/radiusclient.conf',
    { readFile: reader({ '/etc/radiusclient/servers': '10.0.0.5 secret-five\n' }), exists: () => true },
  ).settings;
  assert.deepEqual(native, { ...classic, origin: CONF });
});

test("defaults: radiusclient's numbers, 3799 for Disconnect/CoA, NAS-Identifier from pppd `name`", () => {
  const { settings } = load(
    `${BASE}radius-auth-server 192.0.2.10 s3cret\n`,
    {},
    'name vpn-west\nrequire-mschap-v2\n',
  );
  assert.deepEqual(settings.radius, {
    authServers: [{ host: '192.0.2.10', port: 1812, secret: 's3cret' }],
    acctServers: [],
    timeoutS: 10,
    tries: 3,
    deadtimeS: 0,
    origin: CONF,
    dynauthPort: 3799,
    nasIdentifier: 'vpn-west',
  });
  // chap-secrets is not consulted: the server has no local users
  assert.equal(settings.credentials.lookup('alice', 'vpn-west'), undefined);
});

test('radius-secret-file: per-server lines win over the shared line; a relative path is from pptpd.conf', () => {
  const { settings } = load(
    `${BASE}radius-auth-server 192.0.2.10\nradius-auth-server 192.0.2.11\nradius-acct-server 192.0.2.10\nradius-secret-file radius-secret\n`,
    { '/etc/radius-secret': 'everyone\n192.0.2.11 eleven\n192.0.2.10:1813 ten-acct\n' },
  );
  assert.deepEqual(settings.radius?.authServers, [
    { host: '192.0.2.10', port: 1812, secret: 'everyone' },
    { host: '192.0.2.11', port: 1812, secret: 'eleven' },
  ]);
  assert.deepEqual(settings.radius?.acctServers, [{ host: '192.0.2.10', port: 1813, secret: 'ten-acct' }]);
});

test('both forms at once is an error naming both places', () => {
  assert.deepEqual(
    loadErrors(
      `${BASE}radius-timeout 5\nradius-auth-server 192.0.2.10 s\n`,
      {},
      'require-mschap-v2\nplugin radius.so\n',
    ),
    [
      `${CONF}:4: RADIUS is configured twice: by the radius-* keywords here and by "plugin radius.so" at ${OPTIONS}:2; keep one of the two (the radius-* keywords need no radiusclient files)`,
    ],
  );
});

test('bad values: file:line and what was expected', () => {
  const errs = (lines: string, extra: Record<string, string> = {}) => loadErrors(`${BASE}${lines}`, extra);
  assert.deepEqual(errs('radius-auth-server radius.example.com s\n'), [
    `${CONF}:4: "radius-auth-server" expects ADDR[:PORT] [SECRET] with an IPv4 address, e.g. 192.0.2.10:1812 or 192.0.2.10 the-secret, got "radius.example.com"`,
  ]);
  assert.deepEqual(errs('radius-auth-server 192.0.2.10:0 s\n'), [
    `${CONF}:4: "radius-auth-server": the port of "192.0.2.10:0" must be a number from 1 to 65535`,
  ]);
  assert.deepEqual(errs('radius-auth-server [2001:db8::1]:1812 s\n'), [
    `${CONF}:4: "radius-auth-server" expects ADDR[:PORT] [SECRET] with an IPv4 address, e.g. 192.0.2.10:1812 or 192.0.2.10 the-secret, got "[2001:db8::1]:1812" (IPv6 is not supported)`,
  ]);
  assert.deepEqual(errs('radius-auth-server 192.0.2.10 two words\n'), [
    `${CONF}:4: "radius-auth-server" expects ADDR[:PORT] [SECRET] with an IPv4 address, e.g. 192.0.2.10:1812 or 192.0.2.10 the-secret; got 3 words (a secret cannot contain spaces or tabs)`,
  ]);
  assert.deepEqual(errs('radius-auth-server 192.0.2.10\n'), [
    `${CONF}:4: no shared secret for RADIUS server 192.0.2.10:1812: on this line, and no "radius-secret-file" is given`,
  ]);
  assert.deepEqual(errs('radius-auth-server 192.0.2.10 a\nradius-auth-server 192.0.2.10:1812 b\n'), [
    `${CONF}:5: "radius-auth-server" 192.0.2.10:1812 is already given on line 4`,
  ]);
  assert.deepEqual(
    errs('radius-timeout 0\nradius-retries many\nradius-nas-ip vpn\nradius-dynauth-port 70000\n'),
    [
      `${CONF}:4: "radius-timeout" without "radius-auth-server": RADIUS needs at least one authentication server (a RADIUS authentication server, ADDR[:PORT] [SECRET] with an IPv4 address, e.g. 192.0.2.10:1812 or 192.0.2.10 the-secret)`,
      `${CONF}:4: "radius-timeout" expects seconds to wait for one answer, a whole number from 1 to 600, got "0"`,
      `${CONF}:5: "radius-retries" expects tries per server, a whole number from 1 to 100, got "many"`,
      `${CONF}:6: "radius-nas-ip" expects the NAS-IP-Address to send, an IPv4 address, got "vpn"`,
      `${CONF}:7: "radius-dynauth-port" expects the UDP port for Disconnect/CoA requests, a whole number from 0 (off) to 65535, got "70000"`,
    ],
  );
  assert.deepEqual(errs('radius-auth-server 192.0.2.10\nradius-secret-file /nope\n'), [
    `${CONF}:5: cannot read the RADIUS secret file "/nope": ENOENT: no such file "/nope"`,
    `${CONF}:4: no shared secret for RADIUS server 192.0.2.10:1812: neither on this line nor in /nope`,
  ]);
  assert.deepEqual(
    errs(`radius-auth-server 192.0.2.10\nradius-secret-file ${SECRET_FILE}\n`, {
      [SECRET_FILE]: 'one\ntwo\nexample.com secret\n',
    }),
    [
      `${SECRET_FILE}:2: a second shared secret (the first is on line 1); give "ADDR[:PORT] SECRET" to tell servers apart`,
      `${SECRET_FILE}:3: expected the secret alone, or "ADDR[:PORT] SECRET" with an IPv4 address (a secret cannot contain spaces)`,
    ],
  );
  assert.deepEqual(
    errs(`radius-auth-server 192.0.2.10\nradius-secret-file ${SECRET_FILE}\n`, {
      [SECRET_FILE]: '# empty\n',
    }),
    [
      `${SECRET_FILE}: no secret in the file: expected the secret alone on a line`,
      `${CONF}:4: no shared secret for RADIUS server 192.0.2.10:1812: neither on this line nor in ${SECRET_FILE}`,
    ],
  );
  assert.deepEqual(errs('radius-auth-server\n'), [
    `${CONF}:4: "radius-auth-server" needs a value (a RADIUS authentication server, ADDR[:PORT] [SECRET] with an IPv4 address, e.g. 192.0.2.10:1812 or 192.0.2.10 the-secret)`,
  ]);
});

test("single-value radius keywords follow pptpd.conf's first-one-wins rule, with a warning", () => {
  const { config, warnings } = parsePptpdConf(
    'radius-auth-server 192.0.2.10 s\nradius-timeout 5\nradius-timeout 7\n',
    CONF,
  );
  assert.equal(config.radius?.timeoutS, 5);
  assert.deepEqual(warnings.filter((w) => w.line === 3).map(formatIssue), [
    `${CONF}:3: "radius-timeout" was already set on line 2; pptpd uses the first one, so this is ignored`,
  ]);
});

test('a secret that others can read is warned about, with the fix', () => {
  const native = parsePptpdConf(
    `radius-auth-server 192.0.2.10 inline\nradius-acct-server 192.0.2.10\nradius-secret-file ${SECRET_FILE}\n`,
    CONF,
  ).config.radius!;
  const modes: Record<string, number> = { [CONF]: 0o100644, [SECRET_FILE]: 0o100640 };
  const { notes } = radiusSettingsFromNative(native, CONF, {
    readFile: reader({ [SECRET_FILE]: 'from-file\n' }),
    mode: (p) => modes[p],
  });
  assert.deepEqual(notes.map(formatIssue), [
    `${SECRET_FILE}: the RADIUS secret file is accessible to others than its owner (mode 0640): chmod 600 ${SECRET_FILE}`,
    `${CONF}:1: a RADIUS secret on this line, and ${CONF} is accessible to others than its owner (mode 0644): move the secret to a "radius-secret-file" only root can read`,
  ]);
  modes[CONF] = 0o100600;
  modes[SECRET_FILE] = 0o100600;
  const quiet = radiusSettingsFromNative(native, CONF, {
    readFile: reader({ [SECRET_FILE]: 'from-file\n' }),
    mode: (p) => modes[p],
  });
  assert.deepEqual(quiet.notes, []);
  assert.deepEqual(quiet.settings.acctServers, [{ host: '192.0.2.10', port: 1813, secret: 'from-file' }]);
});
