import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ConfigError, formatIssue } from '../../src/config/issues.ts';
import { loadPppdOptionFiles, mppePolicy, parsePppdOptions } from '../../src/config/options-file.ts';
import { formatIPv4, parseIPv4 } from '../../src/wire/ip.ts';
import { stockFile } from './stock-files.ts';

const F = '/etc/ppp/pptpd-options';

function files(map: Record<string, string>): (path: string) => string {
  return (path) => {
    const text = map[path];
    if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
    return text;
  };
}

const parse = (text: string, readFile?: (path: string) => string) =>
  parsePppdOptions(text, F, readFile ? { readFile } : {});
const notes = (text: string) => parse(text).notes.map(formatIssue);

function errorsOf(text: string, readFile?: (path: string) => string): string[] {
  try {
    parse(text, readFile);
  } catch (e) {
    if (e instanceof ConfigError) return e.errors.map(formatIssue);
    throw e;
  }
  assert.fail('expected a ConfigError');
}

test('options map to camelCase fields', () => {
  const { options } = parse(`
name pptpd
remotename "the server"
require-mschap-v2 refuse-pap refuse-chap refuse-mschap refuse-eap
+pap -chap
require-mppe-128 nomppe-40 nomppe-stateful
ms-dns 10.0.0.1
ms-dns 10.0.0.2
ms-wins 10.0.0.3
proxyarp nodefaultroute usepeerdns
lcp-echo-interval 30 lcp-echo-failure 4 lcp-max-configure 10 lcp-max-terminate 2
lcp-max-failure 5 lcp-restart 3 ipcp-max-configure 9 ipcp-restart 0x2 ipcp-accept-remote
mtu 1400 mru 1450
debug debug dump kdebug 1 logfile /var/log/poptop.log
+ipv6 ipv6 ::1,::2
ipparam office idle 600 maxconnect 3600 persist noipdefault
chapms-strip-domain
10.0.0.1:10.0.0.2
auth
`);
  assert.deepEqual(options, {
    name: 'pptpd',
    remotename: 'the server',
    requireMschapV2: true,
    refusePap: true,
    refuseChap: true,
    refuseMschap: true,
    refuseEap: true,
    requirePap: true,
    requireMppe128: true,
    nomppe40: true,
    mppeStateful: false,
    msDns: [parseIPv4('10.0.0.1'), parseIPv4('10.0.0.2')],
    msWins: [parseIPv4('10.0.0.3')],
    proxyarp: true,
    defaultroute: false,
    usepeerdns: true,
    lcpEchoInterval: 30,
    lcpEchoFailure: 4,
    lcpMaxConfigure: 10,
    lcpMaxTerminate: 2,
    lcpMaxFailure: 5,
    lcpRestart: 3,
    ipcpMaxConfigure: 9,
    ipcpRestart: 2,
    ipcpAcceptRemote: true,
    mtu: 1400,
    mru: 1450,
    debug: 2,
    dump: true,
    kdebug: 1,
    logfile: '/var/log/poptop.log',
    ipv6: true,
    ipv6LocalId: '::1',
    ipv6RemoteId: '::2',
    ipparam: 'office',
    idle: 600,
    maxconnect: 3600,
    persist: true,
    noipdefault: true,
    chapmsStripDomain: true,
    localIp: parseIPv4('10.0.0.1'),
    remoteIp: parseIPv4('10.0.0.2'),
    auth: true,
  });
});

test('later options override earlier ones', () => {
  assert.deepEqual(parse('auth\nnoauth\nproxyarp\n-proxyarp\nmtu 1000\nmtu 1200').options, {
    auth: false,
    proxyarp: false,
    mtu: 1200,
  });
});

test('a third ms-dns replaces the second, as pppd', () => {
  const r = parse('ms-dns 10.0.0.1\nms-dns 10.0.0.2\nms-dns 10.0.0.3\n');
  assert.deepEqual(r.options.msDns?.map(formatIPv4), ['10.0.0.1', '10.0.0.3']);
  assert.deepEqual(r.notes.map(formatIssue), [
    `${F}:3: a third "ms-dns": pppd keeps two, the first and the last; 10.0.0.2 is replaced`,
  ]);
});

test('errors name file, line and what was expected', () => {
  const rows: [string, string[]][] = [
    [
      'lock\nrequre-mppe-128\n',
      [`${F}:2: unknown option "requre-mppe-128" (did you mean "require-mppe-128"?)`],
    ],
    ['proxyarpp', [`${F}:1: unknown option "proxyarpp" (did you mean "proxyarp"?)`]],
    ['frobnicate', [`${F}:1: unknown option "frobnicate"`]],
    ['auth\nname', [`${F}:2: option "name" needs an argument, but the file ends here`]],
    ['mtu big', [`${F}:1: option "mtu" needs a number from 128 to 16384, got "big"`]],
    ['mtu 64', [`${F}:1: option "mtu" needs a number from 128 to 16384, got "64"`]],
    ['lcp-echo-interval -5', [`${F}:1: option "lcp-echo-interval" needs a number from 0 to 86400, got "-5"`]],
    ['ms-dns dns.example', [`${F}:1: option "ms-dns" needs an IPv4 address, got "dns.example"`]],
    ['ms-wins', [`${F}:1: option "ms-wins" needs an argument, but the file ends here`]],
    [
      'require-mppe-56',
      [
        `${F}:1: option "require-mppe-56" is not supported: 56-bit MPPE is not supported (use require-mppe-128)`,
      ],
    ],
    [
      'radius-config-file /etc/r.conf',
      [`${F}:1: option "radius-config-file" needs "plugin radius.so" before it`],
    ],
    ['plugin radattr.so', [`${F}:1: plugin "radattr.so" needs "plugin radius.so" before it`]],
    [
      'plugin /usr/lib/pppd/2.4.9/rp-pppoe.so',
      [`${F}:1: plugin "/usr/lib/pppd/2.4.9/rp-pppoe.so" is not supported: poptop loads no pppd plugins`],
    ],
    [
      'mppe required,no41',
      [
        `${F}:1: option "mppe" takes a comma-separated list of required, stateless, stateful, no40, no56, no128; "no41" is not one`,
      ],
    ],
    [
      '10.0.0.1:vpn.example',
      [
        `${F}:1: "10.0.0.1:vpn.example" is not an address pair like 10.0.0.1:10.0.0.2 (host names are not supported)`,
      ],
    ],
    [
      'ipv6 nonsense!',
      [`${F}:1: option "ipv6" needs interface identifiers "<local>,<remote>" like ::1,::2, got "nonsense!"`],
    ],
    [
      'call ../etc/passwd',
      [`${F}:1: option "call" needs a peer name without "/" at the start or "..", got "../etc/passwd"`],
    ],
    [
      'bogus1\nmtu 1\nbogus2',
      [
        `${F}:1: unknown option "bogus1"`,
        `${F}:2: option "mtu" needs a number from 128 to 16384, got "1"`,
        `${F}:3: unknown option "bogus2"`,
      ],
    ],
  ];
  for (const [text, expected] of rows) assert.deepEqual(errorsOf(text), expected, text);
});

test('an argument taken from a later line is a warning', () => {
  const r = parse('name\nrefuse-pap\n');
  assert.equal(r.options.name, 'refuse-pap');
  assert.deepEqual(r.notes.map(formatIssue), [
    `${F}:1: option "name" takes its argument "refuse-pap" from line 2`,
  ]);
});

test('harmless legacy options are accepted with a note', () => {
  assert.deepEqual(notes('lock\nasyncmap 0\nnovj # no VJ\n-vjccomp\nnomppe-56'), [
    `${F}:1: "lock" has no effect in poptop; ignored`,
    `${F}:2: "asyncmap" has no effect in poptop; ignored`,
    `${F}:3: "novj" has no effect in poptop; ignored`,
    `${F}:4: "-vjccomp" has no effect in poptop; ignored`,
    `${F}:5: "nomppe-56" has no effect in poptop; ignored`,
  ]);
  assert.deepEqual(notes('/dev/ttyS0 115200'), [
    `${F}:1: "/dev/ttyS0" (a serial line device) has no effect in poptop; ignored`,
    `${F}:1: "115200" (a serial line speed) has no effect in poptop; ignored`,
  ]);
  assert.deepEqual(notes('plugin pptpd-logwtmp.so'), [], 'wtmp recording is supported now');
});

test('the old "mppe required,stateless,no40" syntax', () => {
  assert.deepEqual(parse('mppe required,stateless,no40,no56').options, {
    requireMppe: true,
    mppeStateful: false,
    nomppe40: true,
  });
});

test('mppePolicy follows pppd', () => {
  assert.deepEqual(mppePolicy({}), { required: false, allow40: true, allow128: true, allowStateful: false });
  assert.deepEqual(mppePolicy({ requireMppe128: true }), {
    required: true,
    allow40: false,
    allow128: true,
    allowStateful: false,
  });
  assert.deepEqual(mppePolicy({ requireMppe: true, nomppe40: true, mppeStateful: true }), {
    required: true,
    allow40: false,
    allow128: true,
    allowStateful: true,
  });
  assert.deepEqual(mppePolicy({ nomppe: true }), {
    required: false,
    allow40: false,
    allow128: false,
    allowStateful: false,
  });
});

test('contradictory MPPE settings are warned about', () => {
  assert.deepEqual(notes('refuse-mschap\nrefuse-mschap-v2\nrequire-mppe-128\n'), [
    `${F}:3: MPPE is required but MS-CHAP and MS-CHAPv2 are both refused: MPPE keys come from MS-CHAP, so no client can connect`,
  ]);
  assert.deepEqual(notes('require-mppe-128\nnomppe-128\n'), [
    `${F}:1: MPPE is required but the other options leave no MPPE strength allowed: no client can connect`,
  ]);
});

test('file includes: relative to the including file, errors name the included file', () => {
  const readFile = files({
    '/etc/ppp/common': 'proxyarp\nfile extra/more\n',
    '/etc/ppp/extra/more': 'mtu 1300\nrequire-mschap-v3\n',
  });
  assert.deepEqual(errorsOf('name pptpd\nfile common\n', readFile), [
    `/etc/ppp/extra/more:2: unknown option "require-mschap-v3" (did you mean "require-mschap-v2"?)`,
  ]);
  const ok = files({
    '/etc/ppp/common': 'proxyarp\nfile /etc/ppp/more\n',
    '/etc/ppp/more': 'mtu 1300 # small\n',
  });
  assert.deepEqual(parse('file common\nname pptpd', ok).options, {
    proxyarp: true,
    mtu: 1300,
    name: 'pptpd',
  });
  assert.deepEqual(parse('call office', files({ '/etc/ppp/peers/office': 'remotename office' })).options, {
    remotename: 'office',
  });
});

test('file includes: missing files, loops and depth', () => {
  assert.deepEqual(errorsOf('file /nope', files({})), [
    `${F}:1: cannot read included options file "/nope": ENOENT: no such file or directory, open '/nope'`,
  ]);
  const loop = files({ '/a': 'file /b', '/b': 'file /a' });
  assert.deepEqual(errorsOf('file /a', loop), [`/b:1: "/a" includes itself (${F} -> /a -> /b -> /a)`]);
  const chain: Record<string, string> = {};
  for (let k = 0; k < 20; k++) chain[`/f${k}`] = `file /f${k + 1}`;
  assert.deepEqual(errorsOf('file /f0', files(chain)), [
    `/f9:1: options files are nested more than 10 deep at "/f10"`,
  ]);
});

test('several files in order: /etc/ppp/options, then the pptpd one', () => {
  const readFile = files({ '/etc/ppp/options': 'auth\nmtu 1500\n', [F]: 'mtu 1400\nname pptpd\n' });
  assert.deepEqual(loadPppdOptionFiles(['/etc/ppp/options', F], { readFile }).options, {
    auth: true,
    mtu: 1400,
    name: 'pptpd',
  });
});

test("Debian's stock options files parse without errors", () => {
  const pptpd = stockFile('/etc/ppp/pptpd-options', 'pptpd-options');
  const ppp = stockFile('/etc/ppp/options', 'ppp-options');
  const a = parsePppdOptions(readFileSync(ppp.path, 'utf8'), '/etc/ppp/options');
  const b = parsePppdOptions(readFileSync(pptpd.path, 'utf8'), F, { base: a.options });
  for (const n of [...a.notes, ...b.notes]) assert.notEqual(n.severity, 'error');
  assert.equal(b.options.name, 'pptpd');
  assert.equal(b.options.requireMschapV2, true);
  assert.equal(b.options.refusePap, true);
  assert.equal(b.options.auth, true);
  assert.deepEqual(mppePolicy(b.options), {
    required: true,
    allow40: false,
    allow128: true,
    allowStateful: false,
  });
  if (!pptpd.fromCache) {
    assert.deepEqual(
      b.notes.map((n) => n.message),
      ['lock', 'nobsdcomp', 'novj', 'novjccomp', 'nologfd'].map(
        (o) => `"${o}" has no effect in poptop; ignored`,
      ),
    );
  }
});

test("the pptp client's stock options.pptp parses without errors", () => {
  const { path } = stockFile('/etc/ppp/options.pptp', 'options.pptp');
  const r = parsePppdOptions(readFileSync(path, 'utf8'), '/etc/ppp/options.pptp');
  for (const n of r.notes) assert.equal(n.severity, 'note');
  assert.equal(r.options.auth, false);
  assert.equal(r.options.refuseMschap, true);
  assert.equal(r.options.requireMschapV2, undefined);
});

test('rate-limit DOWN[/UP] for every user (poptop), an error with file:line when malformed', () => {
  assert.deepEqual(parse('rate-limit 10M/2M').options.rateLimit, { downBps: 10_000_000, upBps: 2_000_000 });
  assert.deepEqual(errorsOf('rate-limit lots'), [
    `${F}:1: "rate-limit" expects DOWN[/UP] in bits per second with k, M or G (a bare number is kbit/s), e.g. 2M/512k; got "lots"`,
  ]);
});
