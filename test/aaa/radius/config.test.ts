import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRadiusClientConf } from '../../../src/aaa/radius/config.ts';
import { ConfigError, formatIssue } from '../../../src/config/issues.ts';
import { parsePppdOptions } from '../../../src/config/options-file.ts';
import { loadServerSettings } from '../../../src/server/load-settings.ts';
import { formatIPv4 } from '../../../src/wire/ip.ts';

const CONF = '/etc/radiusclient/radiusclient.conf';
const SERVERS = '/etc/radiusclient/servers';

function files(map: Record<string, string>) {
  return {
    readFile: (p: string) => {
      const t = map[p];
      if (t === undefined) throw new Error(`ENOENT: no such file "${p}"`);
      return t;
    },
    exists: (p: string) => p in map,
  };
}

/** A radiusclient.conf as pptpd + radius.so users have it. */
const TYPICAL = `# General settings
auth_order	radius
login_tries	4
login_timeout	60
nologin /etc/nologin
issue	/etc/radiusclient/issue
authserver 	10.0.0.5,localhost:11812
acctserver 	10.0.0.5:1813:inline-secret
servers		/etc/radiusclient/servers
dictionary 	/etc/radiusclient/dictionary
login_radius	/usr/sbin/login.radius
seqfile		/var/run/radius.seq
mapfile		/etc/radiusclient/port-id-map
default_realm
radius_timeout	5
radius_retries	2
radius_deadtime	30
bindaddr *
nas-identifier vpn1
`;

const SERVER_SECRETS = `# Server Name or Client/Server pair		Key
10.0.0.5	secret-five
localhost	secret-local
`;

test('a typical radiusclient.conf with its servers file', () => {
  const { settings, notes } = parseRadiusClientConf(
    TYPICAL,
    CONF,
    files({ [SERVERS]: SERVER_SECRETS, '/etc/radiusclient/dictionary': '' }),
  );
  assert.deepEqual(settings.authServers, [
    { host: '10.0.0.5', port: 1812, secret: 'secret-five' },
    { host: '127.0.0.1', port: 11812, secret: 'secret-local' },
  ]);
  assert.deepEqual(settings.acctServers, [{ host: '10.0.0.5', port: 1813, secret: 'inline-secret' }]);
  assert.equal(settings.timeoutS, 5);
  assert.equal(settings.tries, 2);
  assert.equal(settings.deadtimeS, 30);
  assert.equal(settings.nasIdentifier, 'vpn1');
  assert.equal(settings.bindAddress, undefined);
  assert.deepEqual(notes.map(formatIssue), [
    `${CONF}:2: "auth_order" is about terminal logins and has no effect in poptop; ignored`,
    `${CONF}:3: "login_tries" is about terminal logins and has no effect in poptop; ignored`,
    `${CONF}:4: "login_timeout" is about terminal logins and has no effect in poptop; ignored`,
    `${CONF}:5: "nologin" is about terminal logins and has no effect in poptop; ignored`,
    `${CONF}:6: "issue" is about terminal logins and has no effect in poptop; ignored`,
    `${CONF}:11: "login_radius" is about terminal logins and has no effect in poptop; ignored`,
    `${CONF}:12: "seqfile" is about terminal logins and has no effect in poptop; ignored`,
    `${CONF}:13: "mapfile" is about terminal logins and has no effect in poptop; ignored`,
    `${CONF}:14: "default_realm" is about terminal logins and has no effect in poptop; ignored`,
  ]);
});

function errors(text: string, extra: Record<string, string> = {}): string[] {
  try {
    parseRadiusClientConf(text, CONF, files({ [SERVERS]: SERVER_SECRETS, ...extra }));
  } catch (e) {
    if (e instanceof ConfigError) return e.errors.map(formatIssue);
    throw e;
  }
  return [];
}

test('errors name the file and the line, with what was expected', () => {
  const S = `servers ${SERVERS}\n`;
  assert.deepEqual(errors(`${S}authserver 10.0.0.5\nradius_timout 5\n`), [
    `${CONF}:3: unknown keyword "radius_timout" (did you mean "radius_timeout"?)`,
  ]);
  assert.deepEqual(errors(`${S}authserver radius.example.com\n`), [
    `${CONF}:2: "radius.example.com" is not an IPv4 address (host names other than localhost are not supported)`,
  ]);
  assert.deepEqual(errors(`${S}authserver 10.0.0.5:99999\n`), [
    `${CONF}:2: "10.0.0.5:99999": the port must be a number from 1 to 65535`,
  ]);
  assert.deepEqual(errors(`${S}authserver 10.0.0.9\n`), [
    `${CONF}:2: no shared secret for RADIUS server 10.0.0.9 in ${SERVERS}`,
  ]);
  assert.deepEqual(errors('authserver 10.0.0.9\n'), [
    `${CONF}:1: no shared secret for RADIUS server 10.0.0.9 (no "servers" file is named)`,
  ]);
  assert.deepEqual(errors(`${S}authserver 10.0.0.5\nradius_retries 0\nnas-ip nas\n`), [
    `${CONF}:3: "radius_retries" needs a whole number from 1 to 100, got "0"`,
    `${CONF}:4: "nas-ip" needs an IPv4 address, got "nas"`,
  ]);
  assert.deepEqual(errors(S), [`${CONF}: no "authserver": RADIUS needs at least one authentication server`]);
  assert.deepEqual(errors(`servers /nope\nauthserver 10.0.0.5\n`), [
    `${CONF}:1: cannot read the servers file "/nope": ENOENT: no such file "/nope"`,
    `${CONF}:2: no shared secret for RADIUS server 10.0.0.5 in /nope`,
  ]);
  assert.deepEqual(errors(`${S}authserver 10.0.0.5\n`, { [SERVERS]: '10.0.0.5 a b\n' }), [
    `${SERVERS}:1: expected "server secret" (two words; a secret cannot contain spaces)`,
    `${CONF}:2: no shared secret for RADIUS server 10.0.0.5 in ${SERVERS}`,
  ]);
});

test('pppd options: plugin radius.so, radattr.so and radius-config-file', () => {
  const { options, notes } = parsePppdOptions(
    'plugin radius.so\nplugin radattr.so\nradius-config-file radius/client.conf\n',
    '/etc/ppp/pptpd-options',
  );
  assert.equal(options.radiusPlugin, true);
  assert.equal(options.radattrPlugin, true);
  assert.equal(options.radiusConfigFile, '/etc/ppp/radius/client.conf');
  assert.deepEqual(notes.map(formatIssue), []);
});

test('loadServerSettings: the plugin line brings RADIUS in; chap-secrets may be absent', () => {
  const fs = files({
    '/etc/pptpd.conf': 'option /etc/ppp/pptpd-options\nlocalip 10.1.0.1\nremoteip 10.1.0.10-20\n',
    '/etc/ppp/pptpd-options':
      'name vpn\nrequire-mschap-v2\nrequire-mppe-128\nplugin /usr/lib/pppd/2.4.9/radius.so\nplugin radattr.so\nradius-config-file /etc/r/rc.conf\n',
    '/etc/r/rc.conf': 'authserver 127.0.0.1:1812:s1\nacctserver 127.0.0.1:1813:s1\n',
  });
  const secrets = '/nonexistent/chap-secrets';
  const { settings } = loadServerSettings({
    configPath: '/etc/pptpd.conf',
    globalOptionsPath: 'none',
    secretsPath: secrets,
    readFile: (p) => (p === secrets ? '' : fs.readFile(p)),
  });
  assert.deepEqual(settings.radius?.authServers, [{ host: '127.0.0.1', port: 1812, secret: 's1' }]);
  assert.deepEqual(settings.radius?.acctServers, [{ host: '127.0.0.1', port: 1813, secret: 's1' }]);
  assert.equal(settings.radius?.nasIdentifier, 'vpn', 'NAS-Identifier defaults to pppd `name`');
  assert.equal(settings.radius?.origin, '/etc/r/rc.conf');
  assert.equal(settings.radius?.radattr, true, 'plugin radattr.so: the attributes files are written');
  assert.equal(formatIPv4(settings.localIps[0]!), '10.1.0.1');
});
