import type { Credential, Secret } from '../aaa/credentials.ts';
import { type IPv4, parseIPv4 } from '../net/ip.ts';
import { type ConfigIssue, IssueList, type SourceLocation } from './issues.ts';
import { splitPppdWords, type Word } from './words.ts';

export interface ChapSecretsInit {
  /** Reads a `@/path` secret file; default: none (such entries are skipped with a warning). */
  readFile?: (path: string) => string;
}

/**
 * Parses a pppd secrets file (/etc/ppp/chap-secrets; pppd(8) "AUTHENTICATION", auth.c
 * scan_authfile) into credentials, in file order:
 * - words as in pppd options files (quotes, backslash escapes, `#` comments); an entry starts
 *   with the first word of a line (a backslash-newline continues it): `client server secret
 *   [address...] [-- option...]`. Case matters in all three names.
 * - `*` as client or server matches any name (matching: aaa/chap-secrets.ts).
 * - a secret `@/path` is read from that file: its first word (pppd only does this for `@/`, an
 *   absolute path; `@other` is a literal secret). Unreadable: the entry is skipped with a
 *   warning, as pppd does, and the next best entry applies.
 * - a secret `$NT$` + 32 hex digits (any case, prefix too) is the NT hash, MD4 of the UTF-16LE
 *   password, stored as {kind:'nthash'} — a poptop extension: it works for PAP, MS-CHAP v1/v2 and
 *   MPPE but not CHAP-MD5. `$NT$` followed by anything else is an error (not a password).
 * - the address column is kept as written (see parseAddressColumn for what it means); words
 *   after `--` are pppd options for that user, which we do not support (warning, ignored).
 * - lines with fewer than three words are ignored, with a warning (pppd ignores them silently).
 * Never throws: an entry with an error is left out and the error is in `issues`.
 */
export function parseChapSecrets(
  text: string,
  fileName: string,
  init: ChapSecretsInit = {},
): { entries: Credential[]; issues: ConfigIssue[] } {
  const issues = new IssueList();
  const { words, problems } = splitPppdWords(text);
  for (const p of problems) issues.warning({ file: fileName, line: p.line }, p.message);
  const entries: Credential[] = [];
  for (const line of groupLines(words)) {
    const at = { file: fileName, line: line[0]!.line };
    const entry = parseEntry(line, at, init, issues);
    if (entry) entries.push(entry);
  }
  return { entries, issues: issues.items };
}

function groupLines(words: Word[]): Word[][] {
  const lines: Word[][] = [];
  for (const w of words) {
    if (w.startsLine || lines.length === 0) lines.push([w]);
    else lines.at(-1)!.push(w);
  }
  return lines;
}

function parseEntry(
  line: Word[],
  at: SourceLocation,
  init: ChapSecretsInit,
  issues: IssueList,
): Credential | undefined {
  if (line.length < 3) {
    issues.warning(
      at,
      `expected "client server secret [addresses...]" but found ${line.length} word(s); line ignored`,
    );
    return undefined;
  }
  const [client, server, secretWord] = line as [Word, Word, Word];
  let addresses = line.slice(3).map((w) => w.text);
  const dashes = addresses.indexOf('--');
  if (dashes >= 0) {
    issues.warning(
      at,
      `per-user pppd options after "--" are not supported; "${addresses.slice(dashes + 1).join(' ')}" ignored`,
    );
    addresses = addresses.slice(0, dashes);
  }
  let secretText = secretWord.text;
  if (secretText.startsWith('@/')) {
    const fromFile = readIndirectSecret(secretText.slice(1), init);
    if (typeof fromFile !== 'string') {
      issues.warning(at, `${fromFile.problem}; the entry for "${client.text}" is skipped`);
      return undefined;
    }
    secretText = fromFile;
  }
  const secret = parseSecret(secretText);
  if (typeof secret === 'string') {
    issues.error(at, `${secret}; the entry for "${client.text}" is skipped`);
    return undefined;
  }
  for (const problem of parseAddressColumn(addresses).problems) issues.warning(at, problem);
  return {
    user: client.text,
    server: server.text,
    secret,
    addresses,
    source: `${at.file}:${at.line}`,
  };
}

function readIndirectSecret(path: string, init: ChapSecretsInit): string | { problem: string } {
  if (!init.readFile) return { problem: `cannot read the secret file "${path}" here` };
  let text: string;
  try {
    text = init.readFile(path);
  } catch (e) {
    return { problem: `cannot read the secret file "${path}": ${(e as Error).message}` };
  }
  const first = splitPppdWords(text).words[0];
  if (!first) return { problem: `the secret file "${path}" has no secret in it` };
  return first.text;
}

const NT_PREFIX = /^\$NT\$/i;

/** A Secret, or a message saying why the text is not a usable secret. */
export function parseSecret(text: string): Secret | string {
  if (!NT_PREFIX.test(text)) return { kind: 'password', password: text };
  const hex = text.slice(4);
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) {
    return `"$NT$" must be followed by exactly 32 hex digits (the NT hash), found ${hex.length} character(s)`;
  }
  return { kind: 'nthash', hash: Uint8Array.from(Buffer.from(hex, 'hex')) };
}

/** One element of an address column: addresses with `(ip & mask) === base` are permitted or not. */
export interface AddressRule {
  permit: boolean;
  base: IPv4;
  mask: number;
}

export interface AddressColumn {
  /** In order; the first rule matching an address decides; no match means refused. */
  rules: AddressRule[];
  /** True when the column had no words at all. */
  empty: boolean;
  /** True when the column starts with "-": no address at all. */
  none: boolean;
  problems: string[];
}

/**
 * The address column as pppd reads it (auth.c set_allowed_addrs): words in order until "-"
 * (stop) or "*" (any address, stop); `!addr` refuses an address; `addr/n` is a subnet of n bits
 * (1..32). Not supported, reported in `problems` and skipped: host and network names (pppd
 * resolves them), and `addr/n+` (an address chosen by the ppp unit number, which we do not have).
 */
export function parseAddressColumn(words: readonly string[]): AddressColumn {
  const rules: AddressRule[] = [];
  const problems: string[] = [];
  const none = words[0] === '-';
  for (const word of words) {
    if (word === '-') break;
    if (word === '*') {
      rules.push({ permit: true, base: 0, mask: 0 });
      break;
    }
    const permit = !word.startsWith('!');
    const m = /^([^/]*)(?:\/(\d+)(\+?))?$/.exec(permit ? word : word.slice(1));
    const ip = m ? parseIPv4(m[1]!) : undefined;
    if (!m || ip === undefined) {
      problems.push(`address "${word}" is not an IPv4 address (host names are not supported); ignored`);
      continue;
    }
    const bits = m[2] === undefined ? 32 : Number(m[2]);
    if (bits < 1 || bits > 32) {
      problems.push(`address "${word}" has a prefix length outside 1..32; ignored`);
      continue;
    }
    if (m[3] === '+') {
      problems.push(
        `address "${word}": the "/n+" form (address from the ppp unit number) is not supported; ignored`,
      );
      continue;
    }
    const mask = bits === 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
    rules.push({ permit, base: (ip & mask) >>> 0, mask });
  }
  return { rules, empty: words.length === 0, none, problems };
}

/** pppd's ip_addr_check: the first matching rule decides; no rule matches: refused. */
export function addressPermitted(rules: readonly AddressRule[], ip: IPv4): boolean {
  for (const r of rules) if ((ip & r.mask) >>> 0 === r.base) return r.permit;
  return false;
}
