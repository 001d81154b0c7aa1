/**
 * pppd's word syntax, shared by options files and secrets files (pppd(8) "OPTIONS FILES";
 * options.c getword()):
 * - words are separated by white space; `#` starts a comment up to the end of the line, also
 *   right after a word (`mtu 1400#x` is the words "mtu" "1400");
 * - a word that starts with `"` or `'` runs to the matching quote, white space and `#`
 *   included; the quote ends the word (`"a"b` is two words); `""` is an empty word;
 * - a backslash quotes the next character, inside or outside quotes: `\a \b \f \n \r \t` as in
 *   C, `\s` is a space, `\ddd` up to three octal digits, `\xhh` up to two hex digits, any other
 *   character stands for itself; a backslash before a newline joins the lines.
 * Secrets files are line-oriented on top of this: an entry starts with the first word after an
 * unescaped newline, so `startsLine` is kept for each word.
 */
export interface Word {
  text: string;
  /** 1-based line where the word starts. */
  line: number;
  /** True for the first word of the file and for a word preceded by an unescaped newline. */
  startsLine: boolean;
}

export interface WordProblem {
  line: number;
  message: string;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  s: ' ',
  t: '\t',
};

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';
}
function isOctal(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '7';
}
function isHex(c: string | undefined): boolean {
  return c !== undefined && /^[0-9a-fA-F]$/.test(c);
}

/** Splits `text` into pppd words; never throws. Oddities pppd accepts silently go to `problems`. */
export function splitPppdWords(text: string): { words: Word[]; problems: WordProblem[] } {
  const words: Word[] = [];
  const problems: WordProblem[] = [];
  let i = 0;
  let line = 1;
  let newline = true;
  const n = text.length;

  while (i < n) {
    // Skip white space and comments; note newlines; a backslash before a newline joins lines.
    const c = text[i]!;
    if (c === '\n') {
      line++;
      newline = true;
      i++;
      continue;
    }
    if (c === '#') {
      while (i < n && text[i] !== '\n') i++;
      continue;
    }
    if (c === '\\' && text[i + 1] === '\n') {
      line++;
      i += 2;
      continue;
    }
    if (c === '\\' && i + 1 === n) {
      i++;
      continue;
    }
    if (isSpace(c)) {
      i++;
      continue;
    }

    const startLine = line;
    let quote: string | undefined;
    if (c === '"' || c === "'") {
      quote = c;
      i++;
    }
    let out = '';
    let closed = quote === undefined;
    while (i < n) {
      const ch = text[i]!;
      if (ch === '\\') {
        const r = readEscape(text, i + 1);
        if (r.newline) line++;
        out += r.value;
        i = r.next;
        continue;
      }
      if (quote !== undefined) {
        if (ch === quote) {
          i++;
          closed = true;
          break;
        }
        if (ch === '\n') line++;
      } else if (isSpace(ch) || ch === '#') {
        break;
      }
      out += ch;
      i++;
    }
    if (!closed)
      problems.push({
        line: startLine,
        message: `missing closing ${quote} (the word runs to the end of the file)`,
      });
    words.push({ text: out, line: startLine, startsLine: newline });
    newline = false;
  }
  return { words, problems };
}

/** Decodes the escape after a backslash at `i` (the character after the backslash). */
function readEscape(text: string, i: number): { value: string; next: number; newline: boolean } {
  const c = text[i];
  if (c === undefined) return { value: '', next: i, newline: false };
  if (c === '\n') return { value: '', next: i + 1, newline: true };
  const simple = SIMPLE_ESCAPES[c];
  if (simple !== undefined) return { value: simple, next: i + 1, newline: false };
  if (isOctal(c)) {
    let v = 0;
    let j = i;
    while (j < i + 3 && isOctal(text[j])) v = v * 8 + Number(text[j++]);
    return { value: String.fromCharCode(v & 0xff), next: j, newline: false };
  }
  if (c === 'x') {
    let v = 0;
    let j = i + 1;
    while (j < i + 3 && isHex(text[j])) v = v * 16 + Number.parseInt(text[j++]!, 16);
    return { value: String.fromCharCode(v), next: j, newline: false };
  }
  return { value: c, next: i + 1, newline: false };
}
