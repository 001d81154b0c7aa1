/**
 * The `&/etc/smbpasswd` secret form (pptpd's MS-CHAP-patched pppd): NT hashes read from a Samba
 * smbpasswd file, so Windows users keep their Samba passwords.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChapSecretsStore } from '../../src/aaa/chap-secrets.ts';
import { parseChapSecrets, parseSmbpasswd } from '../../src/config/chap-secrets-file.ts';
import { formatIssue } from '../../src/config/issues.ts';
import { ntPasswordHash } from '../../src/crypto/mschap.ts';
import { serverSettings, startClient, startServer, within } from '../server/harness.ts';

const hex = (pw: string) => Buffer.from(ntPasswordHash(pw)).toString('hex').toUpperCase();
const SMBPASSWD = [
  '# Samba smbpasswd',
  `alice:1000:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:${hex('alice-samba')}:[U          ]:LCT-5F3A1B2C:`,
  `bob:1001:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:${hex('bob-samba')}:[DU         ]:LCT-5F3A1B2C:`,
  'carol:1002:NO PASSWORDXXXXXXXXXXXXXXXXXXXXX:NO PASSWORDXXXXXXXXXXXXXXXXXXXXX:[NU         ]:LCT-00000000:',
  'garbage line',
  '',
].join('\n');

test('smbpasswd: enabled accounts with an NT hash; disabled and password-less ones left out', () => {
  const { users, problems } = parseSmbpasswd(SMBPASSWD, '/etc/samba/smbpasswd');
  assert.deepEqual([...users.keys()], ['alice']);
  assert.deepEqual(users.get('alice'), ntPasswordHash('alice-samba'));
  assert.deepEqual(problems, [
    '/etc/samba/smbpasswd:5: not a smbpasswd line (name:uid:LM hash:NT hash:[flags]:...); ignored',
  ]);
});

test('chap-secrets "&/path": one user, or every smbpasswd user for "*"; a missing user or file is a warning', () => {
  const readFile = (p: string) => {
    if (p === '/etc/samba/smbpasswd') return SMBPASSWD;
    throw new Error('ENOENT: no such file');
  };
  const one = parseChapSecrets('alice pptpd &/etc/samba/smbpasswd *\n', '/etc/ppp/chap-secrets', {
    readFile,
  });
  assert.deepEqual(one.entries[0]?.secret, { kind: 'nthash', hash: ntPasswordHash('alice-samba') });
  const all = parseChapSecrets('* pptpd &/etc/samba/smbpasswd 10.0.0.0/24\n', '/etc/ppp/chap-secrets', {
    readFile,
  });
  assert.deepEqual(
    all.entries.map((e) => [e.user, e.server, e.addresses]),
    [['alice', 'pptpd', ['10.0.0.0/24']]],
  );
  const missing = parseChapSecrets(
    'bob * &/etc/samba/smbpasswd *\ndave * &/nope *\n',
    '/etc/ppp/chap-secrets',
    {
      readFile,
    },
  );
  assert.equal(missing.entries.length, 0);
  const text = missing.issues.map(formatIssue).join('\n');
  assert.match(text, /:1: "bob" has no usable NT hash in \/etc\/samba\/smbpasswd; the entry is skipped/);
  assert.match(text, /:2: cannot read the smbpasswd file "\/nope": ENOENT/);
});

test('a Windows user logs in with the Samba password through "* * &/etc/samba/smbpasswd *"', async () => {
  const files: Record<string, string> = {
    '/etc/ppp/chap-secrets': '* * &/etc/samba/smbpasswd *\n',
    '/etc/samba/smbpasswd': SMBPASSWD,
  };
  const credentials = new ChapSecretsStore('/etc/ppp/chap-secrets', {
    readFile: (p) => files[p] ?? '',
    checkPermissions: false,
  });
  const bench = await startServer(serverSettings({ credentials }));
  try {
    const ok = startClient(bench, { user: 'alice', password: 'alice-samba' });
    await within(ok.up, 5000, 'alice with her Samba password');
    const wrong = startClient(bench, { user: 'alice', password: 'other', localAddress: '127.0.0.3' });
    await within(wrong.down, 10_000, 'a wrong password refused');
    await ok.client.close();
  } finally {
    await bench.close();
  }
});
