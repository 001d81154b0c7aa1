import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  ChapSecretsStore,
  checkSecretsPermissions,
  findBestCredential,
  stripDomainPrefix,
} from '../../src/aaa/chap-secrets.ts';
import { parseChapSecrets } from '../../src/config/chap-secrets-file.ts';
import { ConfigError, formatIssue } from '../../src/config/issues.ts';

const dir = mkdtempSync(join(tmpdir(), 'poptop-secrets-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

const secretOf = (c: ReturnType<typeof findBestCredential>) =>
  c?.secret.kind === 'password' ? c.secret.password : c?.secret.kind;

test('matching: the fewest wildcards win, exact client over exact server, first among equals', () => {
  const { entries } = parseChapSecrets(
    [
      '*      *      any-any',
      '*      pptpd  any-pptpd',
      'alice  *      alice-any',
      'alice  pptpd  alice-pptpd',
      'alice  pptpd  alice-pptpd-second',
      'bob    *      bob-any',
      '*      other  any-other',
      'Carol  pptpd  carol-capital',
    ].join('\n'),
    '/s',
  );
  const rows: [string, string, string | undefined][] = [
    ['alice', 'pptpd', 'alice-pptpd'],
    ['alice', 'elsewhere', 'alice-any'],
    ['bob', 'pptpd', 'bob-any'],
    ['zed', 'pptpd', 'any-pptpd'],
    ['zed', 'other', 'any-other'],
    ['zed', 'nowhere', 'any-any'],
    ['carol', 'pptpd', 'any-pptpd'],
    ['Carol', 'pptpd', 'carol-capital'],
  ];
  for (const [user, server, expected] of rows) {
    assert.equal(secretOf(findBestCredential(entries, user, server)), expected, `${user}@${server}`);
  }
  const noWild = parseChapSecrets('alice pptpd pw\n', '/s').entries;
  assert.equal(findBestCredential(noWild, 'bob', 'pptpd'), undefined);
  assert.equal(findBestCredential(noWild, 'alice', 'other'), undefined);
});

test('exact server beats wildcard client regardless of order', () => {
  const { entries } = parseChapSecrets('alice * first\n* pptpd second\n', '/s');
  assert.equal(secretOf(findBestCredential(entries, 'alice', 'pptpd')), 'first');
  const reversed = parseChapSecrets('* pptpd second\nalice * first\n', '/s').entries;
  assert.equal(secretOf(findBestCredential(reversed, 'alice', 'pptpd')), 'first');
});

test('strip a Windows domain prefix', () => {
  assert.equal(stripDomainPrefix('OFFICE\\alice'), 'alice');
  assert.equal(stripDomainPrefix('alice'), 'alice');
  assert.equal(stripDomainPrefix('a\\b\\c'), 'b\\c');
});

test('store: loads from a path, reload picks up changes, a bad reload keeps the old table', () => {
  const path = write('chap-secrets', 'alice pptpd one *\n');
  const store = new ChapSecretsStore(path);
  assert.equal(store.size, 1);
  assert.equal(secretOf(store.lookup('alice', 'pptpd')), 'one');

  writeFileSync(path, 'alice pptpd two *\nbob pptpd three 10.0.0.2\n');
  assert.deepEqual(store.reload(), []);
  assert.equal(secretOf(store.lookup('alice', 'pptpd')), 'two');
  assert.equal(store.lookup('bob', 'pptpd')?.source, `${path}:2`);

  writeFileSync(path, 'alice pptpd $NT$zz\n');
  assert.throws(
    () => store.reload(),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.message ===
        `${path}:1: "$NT$" must be followed by exactly 32 hex digits (the NT hash), found 2 character(s); the entry for "alice" is skipped`,
  );
  assert.equal(secretOf(store.lookup('alice', 'pptpd')), 'two', 'previous table kept');
});

test('store: @/file secrets are read through the same reader', () => {
  const pw = write('alice.pw', 'from-file\n');
  const path = write('chap-secrets-at', `alice pptpd @${pw}\n`);
  assert.equal(secretOf(new ChapSecretsStore(path).lookup('alice', 'pptpd')), 'from-file');
});

test('store: a missing file throws the read error', () => {
  assert.throws(() => new ChapSecretsStore(join(dir, 'absent')), /ENOENT/);
});

test('permissions: group/other access is a warning in words; a missing file too', () => {
  const ok = write('ok', 'x * y\n', 0o600);
  assert.equal(checkSecretsPermissions(ok), undefined);
  const group = write('group', 'x * y\n', 0o640);
  assert.equal(
    checkSecretsPermissions(group),
    `secrets file ${group} is accessible to its group (mode 0640); it should be readable by its owner only: chmod 600 ${group}`,
  );
  const world = write('world', 'x * y\n', 0o644);
  assert.equal(
    checkSecretsPermissions(world),
    `secrets file ${world} is accessible to its group and all other users (mode 0644); it should be readable by its owner only: chmod 600 ${world}`,
  );
  const missing = join(dir, 'missing');
  assert.equal(
    checkSecretsPermissions(missing),
    `secrets file ${missing} does not exist: nobody can authenticate`,
  );

  const store = new ChapSecretsStore(world);
  assert.deepEqual(store.reload().map(formatIssue), [
    `${world}: secrets file ${world} is accessible to its group and all other users (mode 0644); it should be readable by its owner only: chmod 600 ${world}`,
  ]);
  assert.deepEqual(new ChapSecretsStore(world, { checkPermissions: false }).reload(), []);
});
