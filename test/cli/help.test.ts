/**
 * `poptop --help`, `poptop COMMAND --help` and man/poptop.8 cannot drift from the parsers: every
 * flag declared in src/cli (found in the source itself, not only in the table the CLI exports) and
 * every command must be documented in both. The man page must also format without groff warnings.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { FlagSpec } from '../../src/cli/args.ts';
import { commandHelp, USAGE, wantsHelp } from '../../src/cli/help.ts';
import { COMMAND_FLAGS, COMMANDS } from '../../src/cli/main.ts';
import { runCli } from './run-cli.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const MAN_SOURCE = readFileSync(join(ROOT, 'man', 'poptop.8'), 'utf8');

/** The man page's text as a reader sees it, without groff: `\-` is a dash, font changes vanish. */
const MAN = MAN_SOURCE.split('\n')
  .filter((l) => !l.startsWith('.\\"'))
  .map((l) => l.replace(/^\.[A-Z]+ ?/, ''))
  .join('\n')
  .replace(/\\f[BIRP]/g, '')
  .replace(/\\-/g, '-')
  .replace(/\\&/g, '')
  .replace(/"/g, ' ');

/** How a flag is written: --name, and -x for one-letter aliases, --alias for longer ones. */
function spellings(spec: FlagSpec): string[] {
  return [`--${spec.name}`, ...(spec.short ?? []).map((s) => (s.length === 1 ? `-${s}` : `--${s}`))];
}

/** `flag` appears as a word of `text` (not as part of a longer flag: -p is not found in -pidfile). */
function mentions(text: string, flag: string): boolean {
  const escaped = flag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[\\s,(\\[|])${escaped}(?![\\w-])`, 'm').test(text);
}

/** Every flag spec literal in src/cli/*.ts: `{ name: 'x', short: [...], value: ... }`. */
function flagsInSource(): FlagSpec[] {
  const dir = join(ROOT, 'src', 'cli');
  const out: FlagSpec[] = [];
  const re = /\{\s*name:\s*'([a-z0-9-]+)'\s*,\s*(?:short:\s*\[([^\]]*)\]\s*,\s*)?value:/g;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    for (const m of readFileSync(join(dir, file), 'utf8').matchAll(re)) {
      const short = [...(m[2] ?? '').matchAll(/'([^']+)'/g)].map((x) => x[1]!);
      out.push({ name: m[1]!, short, value: true });
    }
  }
  return out;
}

describe('help and man page cover every command and flag', () => {
  const declared = flagsInSource();

  it('finds the flag declarations in the source (the scan itself works)', () => {
    const names = new Set(declared.map((f) => f.name));
    for (const n of [
      'config',
      'fg',
      'user',
      'password-stdin',
      'sessions',
      'control-socket',
      'pidfile',
      'json',
    ])
      assert.ok(names.has(n), `${n} found in src/cli`);
    assert.ok(declared.length >= 25, `only ${declared.length} flags found`);
  });

  it('every flag declared in src/cli belongs to a command the CLI dispatches', () => {
    const registered = new Set(Object.values(COMMAND_FLAGS).flatMap((list) => list.map((f) => f.name)));
    for (const f of declared)
      assert.ok(registered.has(f.name), `--${f.name} is declared but in no COMMAND_FLAGS entry`);
  });

  it('every flag of every command is in that command’s --help', () => {
    for (const cmd of COMMANDS) {
      const help = commandHelp(cmd);
      for (const spec of COMMAND_FLAGS[cmd])
        for (const s of spellings(spec)) assert.ok(mentions(help, s), `poptop ${cmd} --help lacks ${s}`);
    }
  });

  it('every flag declared anywhere in src/cli is in some help text and in the man page', () => {
    const allHelp = COMMANDS.map(commandHelp).join('\n');
    for (const spec of declared) {
      for (const s of spellings(spec)) {
        assert.ok(mentions(allHelp, s), `no help text mentions ${s}`);
        assert.ok(mentions(MAN, s), `man/poptop.8 does not mention ${s}`);
      }
    }
  });

  it('every command is in the usage and has its own entry in the man page', () => {
    const commandsSection = MAN.slice(MAN.indexOf('\nCOMMANDS'), MAN.indexOf('\nOPTIONS'));
    for (const cmd of COMMANDS) {
      assert.ok(
        new RegExp(`poptop ${cmd}\\b`).test(USAGE) || USAGE.includes(`| ${cmd}`),
        `usage lacks ${cmd}`,
      );
      assert.ok(
        new RegExp(`^ ?${cmd}\\b`, 'm').test(commandsSection) || commandsSection.includes(`, ${cmd}`),
        `man page COMMANDS lacks ${cmd}`,
      );
      assert.notEqual(commandHelp(cmd), '', cmd);
    }
    // a command that would fall back to the general usage has no help of its own
    for (const cmd of COMMANDS.filter((c) => c !== 'help')) assert.notEqual(commandHelp(cmd), USAGE, cmd);
  });

  it('the man page has the sections a manual needs', () => {
    const sections = [...MAN_SOURCE.matchAll(/^\.SH (.+)$/gm)].map((m) => m[1]!.replace(/"/g, ''));
    assert.deepEqual(sections, [
      'NAME',
      'SYNOPSIS',
      'DESCRIPTION',
      'COMMANDS',
      'OPTIONS',
      'FILES',
      'SIGNALS',
      'EXIT STATUS',
      'SECURITY',
      'SEE ALSO',
    ]);
  });

  it('groff formats the man page without a warning', (t) => {
    const probe = spawnSync('groff', ['--version'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      t.skip('groff is not installed (a documentation check; apt-get install groff-base)');
      return;
    }
    const r = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z', join(ROOT, 'man', 'poptop.8')], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', r.stderr);
  });

  it('package.json ships the man page', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      files: string[];
      man?: string[];
    };
    assert.ok(pkg.files.includes('man'), 'files includes man');
    assert.deepEqual(pkg.man, ['./man/poptop.8']);
  });
});

describe('--help on the command line', () => {
  it('wantsHelp stops at --', () => {
    assert.equal(wantsHelp(['--user', 'a', '--help']), true);
    assert.equal(wantsHelp(['-h']), true);
    assert.equal(wantsHelp(['--', '--help']), false);
    assert.equal(wantsHelp(['--user', 'a']), false);
  });

  it('poptop reload --help, poptop help serve, poptop --help: exit 0 with the right text', async () => {
    const reload = await runCli(['reload', '--help']);
    assert.equal(reload.code, 0, reload.err);
    assert.equal(reload.out, commandHelp('reload'));
    const serve = await runCli(['help', 'serve']);
    assert.equal(serve.code, 0, serve.err);
    assert.match(serve.out, /^Usage: poptop serve/);
    const all = await runCli(['--help']);
    assert.equal(all.code, 0, all.err);
    assert.equal(all.out, USAGE);
  });

  it('--help wins over missing arguments (connect needs a server, not when asking for help)', async () => {
    const r = await runCli(['connect', '--help']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /--password-stdin/);
  });

  it('an unknown flag is still a usage error (exit 2)', async () => {
    const r = await runCli(['reload', '--pidfle', 'x']);
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown option --pidfle \(did you mean --pidfile\?\)/);
  });
});
