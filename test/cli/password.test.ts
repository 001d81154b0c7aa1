import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseArgs, UsageError } from '../../src/cli/args.ts';
import { CONNECT_FLAGS } from '../../src/cli/connect.ts';
import { LOAD_FLAGS } from '../../src/cli/load.ts';
import { ARGV_PASSWORD_WARNING, type PasswordIo, resolvePassword } from '../../src/cli/password.ts';

function io(over: Partial<PasswordIo> & { files?: Record<string, string>; stdin?: string } = {}) {
  const warnings: string[] = [];
  const files = over.files ?? {};
  const fake: PasswordIo = {
    env: over.env ?? {},
    readFile: (p) => {
      const t = files[p];
      if (t === undefined) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
      return t;
    },
    fileMode: over.fileMode ?? (() => 0o100600),
    readStdin: async () => {
      if (over.stdin === undefined) throw new Error('stdin not expected');
      return over.stdin;
    },
    warn: (m) => warnings.push(m),
  };
  return { fake, warnings };
}

const args = (...argv: string[]) => parseArgs(['10.0.0.1', '--user', 'alice', ...argv], CONNECT_FLAGS);

describe('poptop connect: where the password comes from', () => {
  it('--password-file: the first line, one trailing newline removed, no warning', async () => {
    const { fake, warnings } = io({ files: { '/run/secrets/vpn': 'correct horse\n' } });
    assert.equal(
      await resolvePassword(args('--password-file', '/run/secrets/vpn'), 'connect', fake),
      'correct horse',
    );
    assert.deepEqual(warnings, []);
    const crlf = io({ files: { f: 'pw with spaces \r\n' } });
    assert.equal(await resolvePassword(args('--password-file=f'), 'connect', crlf.fake), 'pw with spaces ');
  });

  it('--password-file - and --password-stdin read standard input', async () => {
    assert.equal(
      await resolvePassword(args('--password-file', '-'), 'connect', io({ stdin: 's3cret\n' }).fake),
      's3cret',
    );
    assert.equal(
      await resolvePassword(args('--password-stdin'), 'connect', io({ stdin: 's3cret' }).fake),
      's3cret',
    );
  });

  it('POPTOP_PASSWORD, removed from the environment once read', async () => {
    const env: Record<string, string | undefined> = { POPTOP_PASSWORD: 'from-env', HOME: '/root' };
    const { fake, warnings } = io({ env });
    assert.equal(await resolvePassword(args(), 'connect', fake), 'from-env');
    assert.equal('POPTOP_PASSWORD' in env, false);
    assert.equal(env.HOME, '/root');
    assert.deepEqual(warnings, []);
  });

  it('--password on the command line still works, with a warning', async () => {
    const { fake, warnings } = io({ env: { POPTOP_PASSWORD: 'ignored' } });
    assert.equal(await resolvePassword(args('--password', 'visible'), 'connect', fake), 'visible');
    assert.deepEqual(warnings, [ARGV_PASSWORD_WARNING]);
    assert.match(ARGV_PASSWORD_WARNING, /ps/);
  });

  it('a password file others can read is warned about', async () => {
    const { fake, warnings } = io({ files: { f: 'pw\n' }, fileMode: () => 0o100644 });
    await resolvePassword(args('--password-file', 'f'), 'connect', fake);
    assert.deepEqual(warnings, ['the password file f can be read by other users (mode 644); chmod 600 it']);
  });

  it('refuses no password, several sources, an empty or multi-line one, an unreadable file', async () => {
    const reject = (a: ReturnType<typeof args>, fake: PasswordIo, re: RegExp, type: unknown = UsageError) =>
      assert.rejects(
        resolvePassword(a, 'connect', fake),
        (e: Error) => e instanceof (type as typeof Error) && re.test(e.message),
      );
    await reject(
      args(),
      io().fake,
      /connect needs a password: --password-file FILE, --password-stdin, or POPTOP_PASSWORD/,
    );
    await reject(
      args('--password', 'x', '--password-file', 'f'),
      io({ files: { f: 'y' } }).fake,
      /give the password one way only, not --password and --password-file/,
    );
    await reject(
      args('--password-file', 'f'),
      io({ files: { f: '\n' } }).fake,
      /the password from f is empty/,
    );
    await reject(args('--password-file', 'f'), io({ files: { f: 'a\nb\n' } }).fake, /more than one line/);
    await reject(
      args('--password-file', 'nope'),
      io().fake,
      /cannot read the password file nope: ENOENT/,
      Error,
    );
    await reject(
      args(),
      io({ env: { POPTOP_PASSWORD: '' } }).fake,
      /the password from POPTOP_PASSWORD is empty/,
    );
  });

  it('poptop load accepts the same flags', () => {
    const a = parseArgs(['10.0.0.1', '--user', 'u', '--password-file', '/f', '-n', '5'], LOAD_FLAGS);
    assert.equal(a.flags.get('password-file')?.[0], '/f');
    assert.ok(parseArgs(['10.0.0.1', '--password-stdin'], LOAD_FLAGS).flags.has('password-stdin'));
  });
});
