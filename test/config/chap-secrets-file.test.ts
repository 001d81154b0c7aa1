import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { addressPermitted, parseAddressColumn } from '../../src/aaa/address-rules.ts';
import { parseChapSecrets, parseSecret } from '../../src/config/chap-secrets-file.ts';
import { formatIssue } from '../../src/config/issues.ts';
import { parseIPv4 } from '../../src/wire/ip.ts';

const F = '/etc/ppp/chap-secrets';
const parse = (text: string, readFile?: (path: string) => string) =>
  parseChapSecrets(text, F, readFile ? { readFile } : {});

test('entries: quoting, escapes, comments, continuation lines', () => {
  const { entries, issues } = parse(
    [
      '# client server secret addresses',
      'alice pptpd "correct horse" *',
      "'bob smith' * b\\x41d\\\\pass 10.0.0.5 10.0.0.6",
      'carol pptpd "" # empty secret, no addresses',
      'dave pptpd pass#word',
      'erin \\',
      '  pptpd erinpw \\',
      '  10.0.0.9',
      'frank pptpd "say \\"hi\\"" - 10.0.0.1',
    ].join('\n'),
  );
  assert.deepEqual(issues, []);
  assert.deepEqual(
    entries.map((e) => [
      e.user,
      e.server,
      e.secret.kind === 'password' ? e.secret.password : '?',
      e.addresses,
      e.source,
    ]),
    [
      ['alice', 'pptpd', 'correct horse', ['*'], `${F}:2`],
      ['bob smith', '*', 'bAd\\pass', ['10.0.0.5', '10.0.0.6'], `${F}:3`],
      ['carol', 'pptpd', '', [], `${F}:4`],
      ['dave', 'pptpd', 'pass', [], `${F}:5`],
      ['erin', 'pptpd', 'erinpw', ['10.0.0.9'], `${F}:6`],
      ['frank', 'pptpd', 'say "hi"', ['-', '10.0.0.1'], `${F}:9`],
    ],
  );
});

test('short lines, per-user options and bad addresses are warned about', () => {
  const { entries, issues } = parse(
    [
      'lonely pptpd',
      'alice pptpd pw 10.0.0.1 -- mtu 1200',
      'bob pptpd pw host.example 10.0.0.0/33 10.0.0.0/24+',
    ].join('\n'),
  );
  assert.deepEqual(
    entries.map((e) => [e.user, e.addresses]),
    [
      ['alice', ['10.0.0.1']],
      ['bob', ['host.example', '10.0.0.0/33', '10.0.0.0/24+']],
    ],
  );
  assert.deepEqual(issues.map(formatIssue), [
    `${F}:1: expected "client server secret [addresses...]" but found 2 word(s); line ignored`,
    `${F}:2: per-user pppd options after "--" other than "rate-limit DOWN[/UP]" are not supported; "mtu 1200" ignored`,
    `${F}:3: address "host.example" is not an IPv4 address (host names are not supported); ignored`,
    `${F}:3: address "10.0.0.0/33" has a prefix length outside 1..32; ignored`,
    `${F}:3: address "10.0.0.0/24+": the "/n+" form (address from the ppp unit number) is not supported; ignored`,
  ]);
});

test('NT hashes: $NT$ and 32 hex digits, any case', () => {
  const upper = '$NT$8846F7EAEE8FB117AD06BDD830B7586C';
  const { entries, issues } = parse(`alice * ${upper}\nbob * $nt$8846f7eaee8fb117ad06bdd830b7586c\n`);
  assert.deepEqual(issues, []);
  for (const e of entries) {
    assert.equal(e.secret.kind, 'nthash');
    if (e.secret.kind === 'nthash')
      assert.equal(Buffer.from(e.secret.hash).toString('hex'), '8846f7eaee8fb117ad06bdd830b7586c');
  }
  const bad = parse('carol * $NT$1234\ndave * pw\n');
  assert.deepEqual(
    bad.entries.map((e) => e.user),
    ['dave'],
  );
  assert.deepEqual(bad.issues.map(formatIssue), [
    `${F}:1: "$NT$" must be followed by exactly 32 hex digits (the NT hash), found 4 character(s); the entry for "carol" is skipped`,
  ]);
  assert.deepEqual(parseSecret('NT$abc'), { kind: 'password', password: 'NT$abc' });
});

test('@/file secrets: first word of the file; unreadable ones are skipped', () => {
  const readFile = (path: string) => {
    if (path === '/etc/ppp/alice.pw') return '  "open sesame" trailing words\n';
    if (path === '/etc/ppp/empty.pw') return '# nothing\n';
    if (path === '/etc/ppp/nt.pw') return '$NT$8846f7eaee8fb117ad06bdd830b7586c\n';
    throw new Error(`EACCES: permission denied, open '${path}'`);
  };
  const { entries, issues } = parse(
    [
      'alice pptpd @/etc/ppp/alice.pw',
      'bob pptpd @/etc/ppp/secret.pw',
      'carol pptpd @/etc/ppp/empty.pw',
      'dave pptpd @literal',
      'erin pptpd @/etc/ppp/nt.pw',
    ].join('\n'),
    readFile,
  );
  assert.deepEqual(
    entries.map((e) => [e.user, e.secret.kind === 'password' ? e.secret.password : e.secret.kind]),
    [
      ['alice', 'open sesame'],
      ['dave', '@literal'],
      ['erin', 'nthash'],
    ],
  );
  assert.deepEqual(issues.map(formatIssue), [
    `${F}:2: cannot read the secret file "/etc/ppp/secret.pw": EACCES: permission denied, open '/etc/ppp/secret.pw'; the entry for "bob" is skipped`,
    `${F}:3: the secret file "/etc/ppp/empty.pw" has no secret in it; the entry for "carol" is skipped`,
  ]);
});

test('address column rules, as pppd', () => {
  const ip = (s: string) => parseIPv4(s)!;
  const col = parseAddressColumn(['!10.0.0.5', '10.0.0.0/24', '-', '10.9.9.9']);
  assert.equal(col.rules.length, 2);
  assert.equal(addressPermitted(col.rules, ip('10.0.0.4')), true);
  assert.equal(addressPermitted(col.rules, ip('10.0.0.5')), false);
  assert.equal(addressPermitted(col.rules, ip('10.0.1.4')), false);
  assert.equal(addressPermitted(col.rules, ip('10.9.9.9')), false, 'words after "-" are ignored');
  assert.equal(addressPermitted(parseAddressColumn(['*']).rules, ip('1.2.3.4')), true);
  assert.equal(parseAddressColumn(['-']).none, true);
  assert.equal(parseAddressColumn([]).empty, true);
});

test('the fixture secrets file', () => {
  const text = readFileSync(new URL('./fixtures/chap-secrets', import.meta.url), 'utf8');
  const { entries, issues } = parse(text);
  assert.deepEqual(issues, []);
  assert.deepEqual(
    entries.map((e) => [e.user, e.server, e.addresses]),
    [
      ['alice', 'pptpd', ['*']],
      ['bob', 'pptpd', ['192.168.1.50']],
      ['carol smith', '*', ['-']],
      ['*', 'pptpd', ['192.168.1.0/24']],
    ],
  );
  assert.deepEqual(entries[2]?.secret, { kind: 'password', password: "it's" });
});
