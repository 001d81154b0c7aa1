import type { Secret } from '../../aaa/credentials.ts';
import { ntPasswordHash } from '../../crypto/mschap.ts';
import { quote } from '../../util/escape.ts';
import { bytesEqual, hex } from '../../wire/bytes.ts';

/** Error codes of MS-CHAP Failure messages (RFC 2433 §5, RFC 2759 §6). */
export const MsChapError = {
  RestrictedLogonHours: 646,
  AccountDisabled: 647,
  PasswordExpired: 648,
  NoDialinPermission: 649,
  AuthenticationFailure: 691,
  ChangingPassword: 709,
} as const;
export type MsChapErrorCode = (typeof MsChapError)[keyof typeof MsChapError];

const ERROR_WORDS: Record<number, string> = {
  646: 'restricted logon hours',
  647: 'account disabled',
  648: 'password expired',
  649: 'no dial-in permission',
  691: 'authentication failure',
  709: 'error changing password',
};

/** A computed NT hash, with a private copy to tell whether a caller changed the shared array. */
interface KnownHash {
  password: string;
  hash: Uint8Array;
  copy: Uint8Array;
}

function knownHash(password: string, known: KnownHash | undefined): KnownHash {
  if (known && known.password === password && bytesEqual(known.hash, known.copy)) return known;
  const hash = ntPasswordHash(password);
  return { password, hash, copy: hash.slice() };
}

/** Per stored secret (a credential's, from the secrets file): its NT hash, computed once. */
const hashBySecret = new WeakMap<Secret, KnownHash>();

/**
 * The NT password hash of a stored secret: either stored as such, or computed from the password,
 * once per secret (the same array at every login, so crypto/mschap.ts keeps what it derives from
 * it too). Callers must not change the array; one that did would only cost a recomputation.
 */
export function ntHashOfSecret(secret: Secret): Uint8Array {
  if (secret.kind === 'nthash') return secret.hash;
  const known = knownHash(secret.password, hashBySecret.get(secret));
  hashBySecret.set(secret, known);
  return known.hash;
}

/** The client's own passwords (one per `poptop connect`, one per `poptop load`): a few at most. */
const MAX_OWN_PASSWORDS = 16;
const hashByOwnPassword = new Map<string, KnownHash>();

/**
 * The NT hash of the password we log in with (the client side), computed once per password. Only
 * for our own configured password: a password a peer offers (PAP) is never looked up here, so
 * how long a check takes cannot depend on what was offered before.
 */
export function ntHashOfOwnPassword(password: string): Uint8Array {
  const known = knownHash(password, hashByOwnPassword.get(password));
  if (!hashByOwnPassword.has(password) && hashByOwnPassword.size >= MAX_OWN_PASSWORDS)
    hashByOwnPassword.clear();
  hashByOwnPassword.set(password, known);
  return known.hash;
}

/** The fields of an MS-CHAP Failure message "E=e R=r C=c V=v M=m" (RFC 2759 §6). */
export interface MsChapFailure {
  error: number;
  retry: boolean;
  /** Present when a retry is allowed: the new challenge to answer. */
  challenge?: Uint8Array;
  version: number;
  /** Text for the user (MS-CHAPv2 only). */
  message?: string;
}

/** Format a Failure message. Hex is upper case, as Windows and pppd send it. */
export function formatMsChapFailure(f: MsChapFailure): string {
  let s = `E=${f.error} R=${f.retry ? 1 : 0}`;
  if (f.challenge) s += ` C=${hex(f.challenge).toUpperCase()}`;
  s += ` V=${f.version}`;
  if (f.message !== undefined) s += ` M=${f.message}`;
  return s;
}

/**
 * Parse a Failure message leniently (fields may be missing; M= takes the rest of the text).
 * Returns undefined when there is no "E=" field at all.
 */
export function parseMsChapFailure(text: string): (Partial<MsChapFailure> & { error: number }) | undefined {
  const m = /(?:^|\s)E=(\d+)/.exec(text);
  if (!m?.[1]) return undefined;
  const out: Partial<MsChapFailure> & { error: number } = { error: Number.parseInt(m[1], 10) };
  const r = /\sR=([01])/.exec(text);
  if (r) out.retry = r[1] === '1';
  const c = /\sC=([0-9A-Fa-f]+)/.exec(text);
  if (c?.[1] && c[1].length % 2 === 0) out.challenge = new Uint8Array(Buffer.from(c[1], 'hex'));
  const v = /\sV=(\d+)/.exec(text);
  if (v?.[1]) out.version = Number.parseInt(v[1], 10);
  const at = text.indexOf('M=');
  if (at >= 0) out.message = text.slice(at + 2);
  return out;
}

/** A Failure message in words for the log, e.g. `authenticator refused us: E=691 (authentication failure)`. */
export function describeMsChapFailure(text: string): string {
  const f = parseMsChapFailure(text);
  if (!f) return `authenticator refused us: ${quote(text)}`;
  const words = ERROR_WORDS[f.error] ?? 'unknown error';
  const msg = f.message ? `: ${quote(f.message)}` : '';
  return `authenticator refused us: E=${f.error} (${words})${msg}`;
}
