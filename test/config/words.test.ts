import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitPppdWords } from '../../src/config/words.ts';

const texts = (s: string) => splitPppdWords(s).words.map((w) => w.text);

test('pppd word syntax', () => {
  const rows: [string, string, string[]][] = [
    ['plain words', 'name pptpd\nproxyarp', ['name', 'pptpd', 'proxyarp']],
    ['comment to end of line', 'auth # require it\nlock', ['auth', 'lock']],
    ['# right after a word ends it', 'mtu 1400#x y\nz', ['mtu', '1400', 'z']],
    ['double quotes keep spaces and #', 'name "my # server"', ['name', 'my # server']],
    ['single quotes', "'a b' c", ['a b', 'c']],
    ['closing quote ends the word', '"ab"cd', ['ab', 'cd']],
    ['empty quoted word', 'a "" b', ['a', '', 'b']],
    ['escaped space', 'a\\ b c', ['a b', 'c']],
    ['escaped quote inside quotes', '"say \\"hi\\""', ['say "hi"']],
    ['C escapes', '"\\t\\n\\s\\a"', ['\t\n \x07']],
    ['octal escape, three digits at most', '\\1011', ['A1']],
    ['hex escape, two digits at most', '\\x414', ['A4']],
    ['other escaped characters stand for themselves', '\\q\\#\\\\', ['q#\\']],
    ['backslash-newline joins lines', 'abc\\\ndef', ['abcdef']],
    ['backslash-newline between words', 'a \\\n b', ['a', 'b']],
    ['CRLF line ends', 'a\r\nb\r\n', ['a', 'b']],
    ['nothing', '  # only a comment\n\n', []],
  ];
  for (const [name, input, expected] of rows) assert.deepEqual(texts(input), expected, name);
});

test('line numbers and line starts', () => {
  const { words } = splitPppdWords('a b\n\n# c\nd \\\ne\n"f\ng" h');
  assert.deepEqual(
    words.map((w) => [w.text, w.line, w.startsLine]),
    [
      ['a', 1, true],
      ['b', 1, false],
      ['d', 4, true],
      ['e', 5, false],
      ['f\ng', 6, true],
      ['h', 7, false],
    ],
  );
});

test('an unterminated quote is a problem, the word runs to the end', () => {
  const r = splitPppdWords('name "abc\ndef');
  assert.deepEqual(r.words.at(-1)?.text, 'abc\ndef');
  assert.deepEqual(r.problems, [
    { line: 1, message: 'missing closing " (the word runs to the end of the file)' },
  ]);
});
