import { parseAddressColumn } from '../aaa/address-rules.ts';
import type { Credential, Secret } from '../aaa/credentials.ts';
import { parseRateLimit, type RateLimit } from '../aaa/rate-limit.ts';
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
    if (Array.isArray(entry)) entries.push(...entry);
    else if (entry) entries.push(entry);
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
): Credential | Credential[] | undefined {
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
  let rateLimit: RateLimit | undefined;
  if (dashes >= 0) {
    const options = addresses.slice(dashes + 1);
    addresses = addresses.slice(0, dashes);
    const unsupported: string[] = [];
    for (let i = 0; i < options.length; i++) {
      if (options[i] === 'rate-limit' && options[i + 1] !== undefined) {
        const r = parseRateLimit(options[++i]!);
        if (typeof r === 'string') issues.error(at, r);
        else rateLimit = r;
      } else unsupported.push(options[i]!);
    }
    if (unsupported.length > 0) {
      issues.warning(
        at,
        `per-user pppd options after "--" other than "rate-limit DOWN[/UP]" are not supported; "${unsupported.join(' ')}" ignored`,
      );
    }
  }
  let secretText = secretWord.text;
  const base = {
    server: server.text,
    addresses,
    source: `${at.file}:${at.line}`,
    ...(rateLimit ? { rateLimit } : {}),
  };
  if (secretText.startsWith('&/')) {
    // The NT hashes of a Samba smbpasswd file (the secret form of pptpd's MS-CHAP-patched pppd).
    const table = readSmbpasswd(secretText.slice(1), init);
    if ('problem' in table) {
      issues.warning(at, `${table.problem}; the entry for "${client.text}" is skipped`);
      return undefined;
    }
    for (const p of table.problems) issues.warning(at, p);
    for (const problem of parseAddressColumn(addresses).problems) issues.warning(at, problem);
    if (client.text !== '*') {
      const hash = table.users.get(client.text);
      if (!hash) {
        issues.warning(
          at,
          `"${client.text}" has no usable NT hash in ${secretText.slice(1)}; the entry is skipped`,
        );
        return undefined;
      }
      return { user: client.text, secret: { kind: 'nthash', hash }, ...base };
    }
    return [...table.users].map(([user, hash]) => ({ user, secret: { kind: 'nthash', hash }, ...base }));
  }
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
  return { user: client.text, secret, ...base };
}

/**
 * A Samba smbpasswd file (`name:uid:LM hash:NT hash:[flags]:LCT-...:`): the NT hash of every
 * account that has one and is not disabled (flag D). Lines without a usable NT hash are named in
 * `problems` (by line number only: the file holds secrets).
 */
export function parseSmbpasswd(
  text: string,
  path: string,
): { users: Map<string, Uint8Array>; problems: string[] } {
  const users = new Map<string, Uint8Array>();
  const problems: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const f = line.split(':');
    const [name, , , nt, flags = ''] = f;
    if (f.length < 5 || !name) {
      problems.push(`${path}:${i + 1}: not a smbpasswd line (name:uid:LM hash:NT hash:[flags]:...); ignored`);
      return;
    }
    if (/D/.test(flags.replace(/[[\]]/g, ''))) return; // disabled account
    if (!/^[0-9a-fA-F]{32}$/.test(nt ?? '')) return; // no password set ("XXXX...", "NO PASSWORD")
    users.set(name, Uint8Array.from(Buffer.from(nt!, 'hex')));
  });
  return { users, problems };
}

function readSmbpasswd(
  path: string,
  init: ChapSecretsInit,
): { users: Map<string, Uint8Array>; problems: string[] } | { problem: string } {
  if (!init.readFile) return { problem: `cannot read the smbpasswd file "${path}" here` };
  try {
    return parseSmbpasswd(init.readFile(path), path);
  } catch (e) {
    return { problem: `cannot read the smbpasswd file "${path}": ${(e as Error).message}` };
  }
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
