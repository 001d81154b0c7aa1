import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  describeOctets,
  escapeControls,
  hasUnsafeCharacters,
  quote,
  terminalJson,
  terminalText,
} from '../../src/util/escape.ts';
import { consoleLogger, LOG_BATCH_MS, MemoryLogger } from '../../src/util/log.ts';

/** Every character a log line or a terminal must never receive raw. */
const UNSAFE_RE =
  /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]/u;

describe('escapeControls', () => {
  it('leaves ordinary text alone (same string, no copy)', () => {
    const s = 'alice 203.0.113.5 "CORP\\alice" é 漢字 😀 U+FFFD \ufffd';
    assert.equal(escapeControls(s), s);
    assert.equal(hasUnsafeCharacters(s), false);
  });

  it('writes line breaks, tabs, NUL, ESC, DEL and C1 controls as escapes', () => {
    assert.equal(escapeControls('a\nb\rc\td'), 'a\\nb\\rc\\td');
    assert.equal(escapeControls('\u0000\u001b[2J\u007f\u0085\u009b'), '\\x00\\x1b[2J\\x7f\\x85\\x9b');
  });

  it('escapes Unicode line separators, bidi overrides and lone surrogates, keeps valid pairs', () => {
    assert.equal(escapeControls('a\u2028b\u2029c'), 'a\\u{2028}b\\u{2029}c');
    assert.equal(escapeControls('\u202eevil\u2066'), '\\u{202e}evil\\u{2066}');
    assert.equal(escapeControls('x\ud800y\udfffz'), 'x\\u{d800}y\\u{dfff}z');
    assert.equal(escapeControls('\ud83d\ude00'), '\ud83d\ude00');
  });

  it('never leaves an unsafe character, whatever the input (every code unit 0..0xffff)', () => {
    const all = Array.from({ length: 0x10000 }, (_, i) => String.fromCharCode(i)).join('');
    const out = escapeControls(all);
    assert.equal(UNSAFE_RE.test(out), false);
  });
});

describe('quote', () => {
  it('delimits and escapes quotes and backslashes, so the text is unambiguous', () => {
    assert.equal(quote('alice'), '"alice"');
    assert.equal(quote('CORP\\alice'), '"CORP\\\\alice"');
    assert.equal(quote('say "hi"'), '"say \\"hi\\""');
    assert.equal(quote('a\nb'), '"a\\nb"');
    // a literal backslash-x in the input cannot pass for an escaped control character
    assert.notEqual(quote('\\x00'), quote('\u0000'));
  });

  it('is left unchanged by the log sink escaping', () => {
    const q = quote('\u0016*\u001f:\u0000<\u001b]0;pwned\u0007');
    assert.equal(escapeControls(q), q);
  });

  it('cuts long text and says how long it was', () => {
    const q = quote('x'.repeat(1000), 10);
    assert.equal(q, '"xxxxxxxxxx"... (1000 characters)');
    assert.equal(quote('😀'.repeat(3), 2), '"😀😀"... (3 characters)');
  });
});

describe('describeOctets', () => {
  it('shows binary terminate data (Windows) as hex, never raw', () => {
    const data = Uint8Array.of(0x16, 0x2a, 0x1f, 0x3a, 0x00, 0x3c);
    assert.equal(describeOctets(data), '6 octets: 16 2a 1f 3a 00 3c');
  });
  it('shows UTF-8 text quoted, and invalid UTF-8 as hex', () => {
    assert.equal(describeOctets(new TextEncoder().encode('User request')), '"User request"');
    assert.equal(describeOctets(Uint8Array.of(0xff, 0x41)), '2 octets: ff 41');
    assert.equal(describeOctets(new Uint8Array(0)), '(empty)');
    assert.match(describeOctets(new Uint8Array(100)), /^100 octets: (00 ){63}00 \.\.\.$/);
  });
});

describe('log sink', () => {
  it('no message can forge a log line or carry a control character', () => {
    const log = new MemoryLogger();
    const user = 'bob\n2026-01-01T00:00:00.000Z info  [s1 admin] session up\u0000\u001b[31m';
    log.child('[s7 - 203.0.113.5]').warn(`unknown user ${user}`);
    assert.equal(log.lines.length, 1);
    const line = log.lines[0]!.line;
    assert.equal(UNSAFE_RE.test(line), false, line);
    assert.match(line, /bob\\n2026/);
    assert.match(line, /\\x00\\x1b\[31m$/);
  });

  it('escapes the prefix too (a user name in a session prefix)', () => {
    const log = new MemoryLogger().child('[s1 ev\ril]');
    log.info('x');
    assert.equal(log.lines[0]!.line, '[s1 ev\\ril] x');
  });

  it('consoleLogger writes exactly one terminal line per message', async (t) => {
    const written: string[] = [];
    t.mock.method(process.stderr, 'write', (chunk: string) => {
      written.push(String(chunk));
      return true;
    });
    consoleLogger().warn('a\nb\u009b2J\u2028c');
    await new Promise((r) => setTimeout(r, LOG_BATCH_MS + 5)); // lines are written in batches
    t.mock.restoreAll();
    assert.equal(written.length, 1);
    const out = written[0]!;
    assert.equal(out.endsWith('\n'), true);
    assert.equal(UNSAFE_RE.test(out.slice(0, -1)), false, out);
    assert.match(out, / warn {2}a\\nb\\x9b2J\\u\{2028\}c\n$/);
  });
});

it('terminalJson: the same JSON value, with C1, bidi and separators written as \\u escapes', () => {
  const value = { user: 'a\u009b31m\u202eb\u2028c\u0007', n: 1 };
  const out = terminalJson(value, 2);
  assert.doesNotMatch(out, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u202e]/);
  assert.match(out, /a\\u009b31m\\u202eb\\u2028c\\u0007/);
  assert.deepEqual(JSON.parse(out), value);
  assert.equal(terminalText('one\ntwo\u001b[2J'), 'one\ntwo\\x1b[2J');
});
