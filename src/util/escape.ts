/**
 * Text that came from the network (user names, host and vendor names, reject texts, the data of a
 * Terminate-Request...) is untrusted: a NUL makes a log a binary file for grep, a line feed forges
 * a log line, an escape sequence reprograms the terminal that shows it, a bidirectional override
 * reorders what the reader sees. These helpers make such text inert and visible:
 *
 * - escapeControls(s): every unsafe character becomes a backslash escape (`\n`, `\r`, `\t`, `\xHH`
 *   below U+0100, `\u{HHHH}` above). The log sink applies it to every line, so no code path can
 *   write a raw control character into the log whatever it forgot to escape.
 * - quote(s): a network string for a message: in double quotes, with `\` and `"` escaped too (so
 *   the quoted text is unambiguous) and a length cap. Its output is left unchanged by
 *   escapeControls.
 *
 * Unsafe: C0 controls (U+0000..U+001F), DEL (U+007F), C1 controls (U+0080..U+009F), the Unicode line
 * and paragraph separators (U+2028, U+2029), the bidirectional marks, embeddings, overrides and
 * isolates (U+200E, U+200F, U+202A..U+202E, U+2066..U+2069), and lone UTF-16 surrogates (what
 * invalid input leaves behind when it is not replaced by U+FFFD).
 */

/** Matches one unsafe character (with the `u` flag a lone surrogate is one match, a valid pair none). */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]/u;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'gu');
/** The unsafe characters JSON.stringify leaves as they are (all but C0). */
const UNSAFE_BEYOND_C0 = /[\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]/gu;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeOne(ch: string): string {
  const named = NAMED[ch];
  if (named !== undefined) return named;
  const cp = ch.codePointAt(0) ?? 0;
  return cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16).padStart(4, '0')}}`;
}

/** True when `s` holds a character escapeControls would rewrite. */
export function hasUnsafeCharacters(s: string): boolean {
  return UNSAFE.test(s);
}

/** `s` with every unsafe character written as a backslash escape; safe text is returned as is. */
export function escapeControls(s: string): string {
  return UNSAFE.test(s) ? s.replace(UNSAFE_ALL, escapeOne) : s;
}

/** A message for the terminal: its lines kept, every unsafe character in them escaped. */
export function terminalText(text: string): string {
  return text.split('\n').map(escapeControls).join('\n');
}

/**
 * JSON for the terminal or a pipe: JSON.stringify escapes C0 controls only, so the other unsafe
 * characters (C1, DEL, bidirectional overrides, line separators, lone surrogates) are written as
 * `\uXXXX` too. The result is the same JSON value.
 */
export function terminalJson(value: unknown, indent?: number): string {
  // C0 left in the output is the indentation's own line breaks: strings have theirs escaped already.
  return JSON.stringify(value, null, indent).replace(
    UNSAFE_BEYOND_C0,
    (ch) => `\\u${(ch.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`,
  );
}

/** Default cap of quote(): longer text is cut, and the cut is said. */
export const QUOTE_MAX_CHARS = 256;

/**
 * A network-supplied string for a log or terminal message: `"CORP\\alice"`, `"\x16*\x1f:\x00<"`.
 * Backslashes and double quotes are escaped, then every unsafe character; text longer than
 * `maxChars` characters (code points) is cut there and followed by `... (N characters)`.
 */
export function quote(s: string, maxChars = QUOTE_MAX_CHARS): string {
  let text = s;
  let suffix = '';
  if (text.length > maxChars) {
    const chars = Array.from(text);
    if (chars.length > maxChars) {
      text = chars.slice(0, maxChars).join('');
      suffix = `... (${chars.length} characters)`;
    }
  }
  const escaped = text.replace(/[\\"]/g, (c) => `\\${c}`);
  return `"${escapeControls(escaped)}"${suffix}`;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Octets from the network for a message: quoted text when they are valid UTF-8, otherwise their
 * hex (`16 2a 1f 3a 00 3c`, at most `maxBytes` of them, then `...`), followed by the length.
 * Windows puts binary data in LCP Terminate-Requests; this shows it without writing it.
 */
export function describeOctets(b: Uint8Array, maxBytes = 64): string {
  if (b.length === 0) return '(empty)';
  let text: string | undefined;
  try {
    text = strictUtf8.decode(b);
  } catch {
    text = undefined;
  }
  // Text with a NUL or other C0 control is binary data in practice (Windows' terminate data is).
  if (text !== undefined && !/[\u0000-\u0008\u000e-\u001f]/.test(text)) return quote(text);
  const shown = Array.from(b.subarray(0, maxBytes), (x) => x.toString(16).padStart(2, '0')).join(' ');
  return `${b.length} octets: ${shown}${b.length > maxBytes ? ' ...' : ''}`;
}
