import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ConfigError, formatIssue } from '../../src/config/issues.ts';
import { localIpFor, parseIpSpec, parsePptpdConf } from '../../src/config/pptpd-conf.ts';
import { formatIPv4, parseIPv4 } from '../../src/wire/ip.ts';
import { stockFile } from './stock-files.ts';

const F = '/etc/pptpd.conf';
const at = { file: F, line: 3 };
const ips = (spec: string) => parseIpSpec(spec, at).map(formatIPv4);

function errorsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.errors.map(formatIssue);
    throw e;
  }
  assert.fail('expected a ConfigError');
}

const parse = (text: string) => parsePptpdConf(text, F);
const warnings = (text: string) => parse(text).warnings.map(formatIssue);

test('ip specification: pptpd forms and our full range', () => {
  assert.deepEqual(ips('192.168.0.234-238,192.168.0.245'), [
    '192.168.0.234',
    '192.168.0.235',
    '192.168.0.236',
    '192.168.0.237',
    '192.168.0.238',
    '192.168.0.245',
  ]);
  assert.deepEqual(ips('10.0.0.7'), ['10.0.0.7']);
  assert.deepEqual(ips('192.168-170.1.231'), ['192.168.1.231', '192.169.1.231', '192.170.1.231']);
  assert.deepEqual(ips('10.0.1-2.5'), ['10.0.1.5', '10.0.2.5']);
  assert.deepEqual(ips('10.0.0.254-10.0.1.1'), ['10.0.0.254', '10.0.0.255', '10.0.1.0', '10.0.1.1']);
  assert.equal(parseIpSpec('10.0.0.0-255', at).length, 256);
});

test('ip specification: malformed ones name file and line', () => {
  const rows: [string, string][] = [
    ['', 'expected an address list like 192.168.0.234-238,192.168.0.245, got nothing'],
    ['10.0.0.1, 10.0.0.2', 'spaces are not allowed in the address list "10.0.0.1, 10.0.0.2"'],
    ['10.0.0.1,,10.0.0.2', 'empty entry in the address list "10.0.0.1,,10.0.0.2"'],
    ['10.0.0.1,', 'empty entry in the address list "10.0.0.1,"'],
    ['10.0.0.238-234', 'the range "10.0.0.238-234" is reversed (234 is below 238)'],
    ['10.0.0.9-10.0.0.1', 'the range "10.0.0.9-10.0.0.1" is reversed (10.0.0.1 is below 10.0.0.9)'],
    ['10.0.0.0-10.2.0.0', 'the range "10.0.0.0-10.2.0.0" has 131073 addresses; the limit is 65536'],
    ['10.0.0.1-2-3', '"10.0.0.1-2-3" has more than one "-" (expected a range like 192.168.0.234-238)'],
    ['10.0.0.234-256', '"10.0.0.234-256" is not a range like 192.168.0.234-238'],
    ['10.0.234-238', '"10.0.234-238" is not a range like 192.168.0.234-238'],
    ['300.0.0.1', '"300.0.0.1" is not an IPv4 address (expected four numbers 0-255 like 192.168.0.234)'],
    [
      '10.0.0.010',
      '"10.0.0.010" has an octet with a leading zero (pptpd would read it as octal); write it without',
    ],
    ['vpn.example.com', '"vpn.example.com" is not an IPv4 address (host names are not supported here)'],
    [
      '10.0.0.1#x',
      '"10.0.0.1#x" is not an IPv4 address (expected four numbers 0-255 like 192.168.0.234) (pptpd.conf has no comments after a value)',
    ],
  ];
  for (const [spec, message] of rows) {
    assert.deepEqual(
      errorsOf(() => parseIpSpec(spec, at)),
      [`${F}:3: ${message}`],
      spec,
    );
  }
});

test('pptpd.conf: keywords and values', () => {
  const { config, warnings } = parse(
    [
      'option /etc/ppp/pptpd-options',
      'debug',
      'stimeout 5',
      'noipparam',
      'connections 3',
      'listen 203.0.113.1',
      'pidfile /run/poptop.pid',
      'localip 10.0.0.1',
      'remoteip 10.0.0.10-11,10.0.0.20',
      '',
    ].join('\n'),
  );
  assert.deepEqual(warnings, []);
  assert.equal(config.optionFile, '/etc/ppp/pptpd-options');
  assert.equal(config.debug, true);
  assert.equal(config.stimeout, 5);
  assert.equal(config.noipparam, true);
  assert.equal(config.connections, 3);
  assert.equal(config.listen, parseIPv4('203.0.113.1'));
  assert.equal(config.pidfile, '/run/poptop.pid');
  assert.deepEqual(config.localIps.map(formatIPv4), ['10.0.0.1']);
  assert.deepEqual(config.remoteIps.map(formatIPv4), ['10.0.0.10', '10.0.0.11', '10.0.0.20']);
  assert.equal(localIpFor(config, parseIPv4('10.0.0.20')!), parseIPv4('10.0.0.1'));
  assert.deepEqual(config.sources.remoteip, { file: F, line: 9 });
});

test('pptpd.conf: defaults', () => {
  const { config } = parse('localip 10.0.0.1\nremoteip 10.0.0.2\n');
  assert.equal(config.optionFile, undefined);
  assert.equal(config.stimeout, 10);
  assert.equal(config.connections, 1);
  assert.equal(config.pidfile, '/var/run/pptpd.pid');
  assert.equal(config.listen, undefined);
  assert.equal(config.debug, false);
  assert.equal(config.delegate, false);
});

test('pptpd.conf: comments only at the start of a line; first occurrence wins', () => {
  assert.deepEqual(
    warnings(
      [
        '# comment',
        '  # indented comment: silent',
        '  debug',
        'localip 10.0.0.1',
        'remoteip 10.0.0.2',
        'remoteip 10.0.0.3',
        'Localip 10.0.0.9',
        'requre 1',
      ].join('\n'),
    ),
    [
      `${F}:3: line starts with white space; pptpd ignores such lines, and so do we`,
      `${F}:6: "remoteip" was already set on line 5; pptpd uses the first one, so this is ignored`,
      `${F}:7: unknown keyword "Localip" ignored (did you mean "localip"?)`,
      `${F}:8: unknown keyword "requre" ignored`,
    ],
  );
  assert.deepEqual(parse('localip 10.0.0.1\nremoteip 10.0.0.2\nremoteip 10.0.0.3\n').config.remoteIps, [
    parseIPv4('10.0.0.2'),
  ]);
  // No end-of-line comments: the '#' becomes part of the value.
  assert.deepEqual(
    errorsOf(() => parse('localip 10.0.0.1\nremoteip 10.0.0.2 # lab\n')),
    [
      `${F}:2: spaces are not allowed in the address list "10.0.0.2 # lab" (pptpd.conf has no comments after a value)`,
    ],
  );
});

test('pptpd.conf: warnings for accepted-but-unsupported keywords', () => {
  const text =
    'localip 10.0.0.1\nremoteip 10.0.0.2\nlogwtmp\nbcrelay eth1\nspeed 115200\nppp /usr/sbin/pppd\ndebug yes\n';
  assert.deepEqual(warnings(text), [
    `${F}:7: "debug" takes no value; "yes" is ignored`,
    `${F}:5: "speed" has no meaning without a serial line; ignored`,
    `${F}:6: "ppp /usr/sbin/pppd" ignored: poptop runs PPP itself, no pppd is started`,
  ]);
  assert.equal(parse(text).config.logwtmp, true, 'logwtmp is supported: no warning');
  assert.equal(parse(text).config.bcrelay, 'eth1', 'bcrelay is supported: no warning');
});

test('pptpd.conf: bcrelay takes an interface name; off without it; a bad name is an error with file:line', () => {
  assert.equal(parse('localip 10.0.0.1\nremoteip 10.0.0.2\n').config.bcrelay, undefined);
  assert.equal(parse('bcrelay br-lan.10\nlocalip 10.0.0.1\nremoteip 10.0.0.2\n').config.bcrelay, 'br-lan.10');
  for (const bad of ['eth0 eth1', 'a-name-longer-than-15', 'eth0/1', 'eth0:1', '..']) {
    assert.deepEqual(
      errorsOf(() => parse(`localip 10.0.0.1\nremoteip 10.0.0.2\nbcrelay ${bad}\n`)),
      [
        `${F}:3: "bcrelay" expects the name of the LAN interface whose UDP broadcasts go to the clients, like eth1 (at most 15 characters, no spaces, "/" or ":"), got "${bad}"`,
      ],
    );
  }
  assert.deepEqual(
    errorsOf(() => parse('localip 10.0.0.1\nremoteip 10.0.0.2\nbcrelay\n')),
    [
      `${F}:3: "bcrelay" needs a value (the name of the LAN interface whose UDP broadcasts go to the clients, like eth1)`,
    ],
  );
});

test('pptpd.conf: single-session deny|replace, anything else an error with file:line', () => {
  assert.equal(parse('localip 10.0.0.1\nremoteip 10.0.0.2\n').config.singleSession, 'off');
  assert.equal(
    parse('localip 10.0.0.1\nremoteip 10.0.0.2\nsingle-session replace\n').config.singleSession,
    'replace',
  );
  assert.deepEqual(
    errorsOf(() => parse('localip 10.0.0.1\nremoteip 10.0.0.2\nsingle-session yes\n')),
    [
      `${F}:3: "single-session" expects "deny" (refuse a second login of the same user) or "replace" (end the older session), got "yes"`,
    ],
  );
});

test('pptpd.conf: workers N or auto (default auto), anything else an error with file:line', () => {
  const base = 'localip 10.0.0.1\nremoteip 10.0.0.2\n';
  assert.equal(parse(base).config.workers, 'auto');
  assert.equal(parse(`${base}workers 4\n`).config.workers, 4);
  assert.equal(parse(`${base}workers auto\n`).config.workers, 'auto');
  for (const bad of ['0', '65', 'two', '-1', '2.5'])
    assert.deepEqual(
      errorsOf(() => parse(`${base}workers ${bad}\n`)),
      [
        `${F}:3: "workers" expects "auto" (one per processor) or a number of processes from 1 to 64, got "${bad}"`,
      ],
    );
});

test('pptpd.conf: malformed values are errors with file:line', () => {
  assert.deepEqual(
    errorsOf(() =>
      parse(
        [
          'connections many',
          'stimeout -1',
          'listen example.org',
          'option',
          'localip 10.0.0.1',
          'remoteip 10.0.0.2,10.0.0.2,10.0.0.1,127.0.0.5',
        ].join('\n'),
      ),
    ),
    [
      `${F}:4: "option" needs a value (the path of a pppd options file)`,
      `${F}:1: "connections" expects a number of connections (a whole number), got "many"`,
      `${F}:3: "listen" expects an IPv4 address, got "example.org"`,
      `${F}:6: remoteip lists 10.0.0.2 twice`,
      `${F}:6: 10.0.0.1 is both a local and a remote address`,
      `${F}:6: 127.0.0.5 cannot be a client address (zero, loopback, multicast or reserved)`,
      `${F}:2: "stimeout" expects a number of seconds (a whole number), got "-1"`,
    ],
  );
});

test('pptpd.conf: a line with a form feed, vertical tab or carriage return inside is parsed, never a TypeError', () => {
  // Found by fuzzing (test/fuzz/regressions/pptpd-conf): a line starting with \v, or with \r or
  // U+2028 inside, did not match the keyword/value pattern and the parser threw a TypeError.
  assert.equal(
    warnings('\vlocalip 10.0.0.1')[0],
    `${F}:1: unknown keyword "\vlocalip" ignored (did you mean "localip"?)`,
  );
  assert.deepEqual(
    errorsOf(() => parse('listen 10.0.0.1\rx\nlocalip 10.0.0.1\nremoteip 10.0.0.2')),
    [`${F}:1: "listen" expects an IPv4 address, got "10.0.0.1\rx"`],
  );
  assert.equal(parse('pidfile /run/a\u2028b').config.pidfile, '/run/a\u2028b');
});

test('pptpd.conf: connections limits and local/remote pairing', () => {
  const r = parse('connections 2\nlocalip 10.0.0.1-3\nremoteip 10.0.0.11-15\n');
  assert.equal(r.config.connections, 2);
  assert.deepEqual(r.config.remoteIps.map(formatIPv4), ['10.0.0.11', '10.0.0.12']);
  assert.deepEqual(r.config.localIps.map(formatIPv4), ['10.0.0.1', '10.0.0.2']);
  assert.deepEqual(r.warnings.map(formatIssue), [
    `${F}:3: remoteip lists 5 addresses but connections is 2; only the first 2 are used`,
  ]);
  assert.equal(localIpFor(r.config, parseIPv4('10.0.0.12')!), parseIPv4('10.0.0.2'));
  assert.equal(localIpFor(r.config, parseIPv4('10.9.9.9')!), parseIPv4('10.0.0.1'));

  const short = parse('localip 10.0.0.1-2\nremoteip 10.0.0.11-13\n');
  assert.equal(short.config.connections, 2);
  assert.deepEqual(short.warnings.map(formatIssue), [
    `${F}:1: localip lists 2 addresses and remoteip 3; pptpd pairs them in order, so at most 2 sessions can run (give one localip to share it)`,
  ]);

  const reduced = parse('connections 50\nlocalip 10.0.0.1\nremoteip 10.0.0.11-13\n');
  assert.equal(reduced.config.connections, 3);
  assert.deepEqual(reduced.warnings.map(formatIssue), [
    `${F}:1: connections 50 reduced to 3: not enough addresses`,
  ]);

  assert.deepEqual(parse('connections 0\nlocalip 10.0.0.1\nremoteip 10.0.0.2\n').warnings.map(formatIssue), [
    `${F}:1: "connections 0" means the default (100) in pptpd, and so here`,
  ]);
});

test('pptpd.conf: delegate ignores localip/remoteip', () => {
  const r = parse('delegate\nlocalip 10.0.0.1\nremoteip 10.0.0.2\n');
  assert.equal(r.config.delegate, true);
  assert.deepEqual(r.config.remoteIps, []);
  assert.equal(r.config.connections, 100);
  assert.equal(localIpFor(r.config, 1), undefined);
  assert.deepEqual(r.warnings.map(formatIssue), [
    `${F}:2: "localip" is ignored because "delegate" is set (addresses come from the secrets file)`,
    `${F}:3: "remoteip" is ignored because "delegate" is set (addresses come from the secrets file)`,
  ]);
});

test("pptpd.conf: a line over pptpd's limit is accepted with a warning", () => {
  const list = Array.from({ length: 60 }, (_, k) => `10.0.${k}.100`).join(',');
  const r = parse(`localip 10.1.0.1\nremoteip ${list}\n`);
  assert.equal(r.config.remoteIps.length, 60);
  assert.deepEqual(r.warnings.map(formatIssue), [
    `${F}:2: line is longer than 510 characters; pptpd would ignore it (we accept it)`,
  ]);
});

test("Debian's stock pptpd.conf parses without errors", () => {
  const { path, fromCache } = stockFile('/etc/pptpd.conf', 'pptpd.conf');
  const r = parsePptpdConf(readFileSync(path, 'utf8'), '/etc/pptpd.conf');
  assert.equal(r.config.optionFile, '/etc/ppp/pptpd-options');
  assert.equal(r.config.logwtmp, true);
  if (fromCache) return; // the .deb's file: no errors is the claim; its exact warnings may vary
  assert.deepEqual(r.warnings.map(formatIssue).sort(), [
    `/etc/pptpd.conf: "localip" is not set; using pptpd's built-in default 192.168.0.1-100`,
    `/etc/pptpd.conf: "remoteip" is not set; using pptpd's built-in default 192.168.1.1-100`,
  ]);
  assert.equal(r.config.connections, 100);
  assert.equal(formatIPv4(r.config.remoteIps[0]!), '192.168.1.1');
});

test('pptpd.conf: poptop guard and back-off keywords default to secure values', () => {
  const { config, warnings } = parse('localip 10.0.0.1\nremoteip 10.0.0.2-9\n');
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.guard, {
    maxUnauthPerSource: 16,
    maxSetupsPerSource: 8,
    maxUnauth: 256,
    callDeadlineS: 30,
    setupDeadlineS: 60,
    controlWriteBufferBytes: 65536,
  });
  assert.deepEqual(config.authBackoff, { failLimit: 10, lockoutS: 300, failWindowS: 600 });
  // max-unauth follows a large connections setting (a reconnect storm after a restart)
  const big = parse('connections 1000\nlocalip 10.0.0.1\nremoteip 10.0.0.10-10.0.4.0\n').config;
  assert.equal(big.connections, 1000);
  assert.equal(big.guard.maxUnauth, 1000);
});

test('pptpd.conf: poptop guard and back-off keywords are read with their units', () => {
  const { config, warnings } = parse(
    [
      'localip 10.0.0.1',
      'remoteip 10.0.0.2-9',
      'max-unauth-per-source 3',
      'max-setups-per-source 2',
      'max-unauth 500',
      'call-deadline 20',
      'setup-deadline 45',
      'control-write-buffer 128k',
      'auth-fail-limit 5',
      'auth-lockout 900',
      'auth-fail-window 3600',
    ].join('\n'),
  );
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.guard, {
    maxUnauthPerSource: 3,
    maxSetupsPerSource: 2,
    maxUnauth: 500,
    callDeadlineS: 20,
    setupDeadlineS: 45,
    controlWriteBufferBytes: 131072,
  });
  assert.deepEqual(config.authBackoff, { failLimit: 5, lockoutS: 900, failWindowS: 3600 });
  assert.equal(
    parse('control-write-buffer 1M\nlocalip 10.0.0.1\nremoteip 10.0.0.2').config.guard
      .controlWriteBufferBytes,
    1048576,
  );
  assert.equal(
    parse('control-write-buffer 8192\nlocalip 10.0.0.1\nremoteip 10.0.0.2').config.guard
      .controlWriteBufferBytes,
    8192,
  );
});

test('pptpd.conf: bad guard and back-off values are errors naming file:line and the range', () => {
  const text = [
    'localip 10.0.0.1',
    'remoteip 10.0.0.2-9',
    'max-unauth-per-source 0',
    'max-setups-per-source many',
    'call-deadline 30s',
    'setup-deadline 99999',
    'control-write-buffer 1k',
    'auth-fail-limit -1',
    'auth-lockout',
  ].join('\n');
  assert.deepEqual(
    errorsOf(() => parse(text)),
    [
      `${F}:9: "auth-lockout" needs a value (a number of seconds)`,
      `${F}:3: "max-unauth-per-source" expects a number of connections from 1 to 65535, got "0"`,
      `${F}:4: "max-setups-per-source" expects a number of calls, a whole number from 1 to 65535, got "many"`,
      `${F}:5: "call-deadline" expects a number of seconds, a whole number from 1 to 3600, got "30s"`,
      `${F}:6: "setup-deadline" expects a number of seconds from 1 to 3600, got "99999"`,
      `${F}:7: "control-write-buffer" expects a number of bytes (a k or m suffix multiplies by 1024 or 1048576) from 4096 to 16777216, got "1k"`,
      `${F}:8: "auth-fail-limit" expects a number of failed logins, a whole number from 1 to 1000, got "-1"`,
    ],
  );
});

test('pptpd.conf: inconsistent guard values are warned about', () => {
  const w = warnings(
    [
      'localip 10.0.0.1',
      'remoteip 10.0.0.2-9',
      'stimeout 60',
      'call-deadline 30',
      'max-unauth 4',
      'max-unauth-per-source 8',
      'max-unauth-per-source 2',
    ].join('\n'),
  );
  assert.deepEqual(w, [
    `${F}:7: "max-unauth-per-source" was already set on line 6; pptpd uses the first one, so this is ignored`,
    `${F}:4: "call-deadline 30" is shorter than stimeout (60 s): a client may be cut off before its start timeout is over`,
    `${F}:6: max-unauth-per-source (8) is above max-unauth (4); the global limit applies first`,
  ]);
  // a misspelt keyword gets a did-you-mean
  assert.match(
    warnings('localip 10.0.0.1\nremoteip 10.0.0.2\nauth-fail-limt 3').join('\n'),
    /unknown keyword "auth-fail-limt" ignored \(did you mean "auth-fail-limit"\?\)/,
  );
});
