import { timingSafeEqual } from 'node:crypto';
import type { Credential } from '../../aaa/credentials.ts';
import { secureRandom } from '../../crypto/random.ts';
import { DropCounter } from '../../util/counters.ts';
import { quote } from '../../util/escape.ts';
import { extend } from '../../util/objects.ts';
import { isProtocolError } from '../../wire/errors.ts';
import type {
  AuthDropReason,
  AuthenticatorOptions,
  AuthFailure,
  AuthHost,
  AuthMethod,
  ExchangeOptions,
} from './types.ts';

/** Defaults shared by the exchanges (pppd's values). */
export const DEFAULT_RETRY_MS = 3_000;
export const DEFAULT_MAX_CHALLENGES = 10;
export const DEFAULT_MAX_REQUESTS = 10;
export const DEFAULT_TIMEOUT_MS = 30_000;

/** The method names as written in log lines. */
export const METHOD_NAMES: Record<AuthMethod, string> = {
  pap: 'PAP',
  'chap-md5': 'CHAP-MD5',
  mschap: 'MS-CHAP',
  mschapv2: 'MS-CHAPv2',
};

/** `DOMAIN\user` → `user` (the part after the last backslash); names without one are unchanged. */
export function withoutDomain(name: string): string {
  const at = name.lastIndexOf('\\');
  return at < 0 ? name : name.slice(at + 1);
}

/** Constant-time comparison of two secrets or responses; different lengths compare unequal. */
export function safeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

export function encodeText(s: string): Uint8Array {
  return utf8.encode(s);
}

/** Names and messages on the wire are octets; we read them as UTF-8 (invalid bytes become U+FFFD). */
export function decodeText(b: Uint8Array): string {
  return utf8Decoder.decode(b);
}

export function randomSource(opts: ExchangeOptions): (n: number) => Uint8Array {
  return opts.random ?? secureRandom;
}

export function dropCounter(
  host: AuthHost,
  opts: ExchangeOptions,
  what: string,
): DropCounter<AuthDropReason> {
  return opts.drops ?? new DropCounter<AuthDropReason>(host.log, what);
}

/** The result of looking up the name a peer presented. */
export interface UserLookup {
  /** As the peer sent it. */
  rawUser: string;
  /** The name used for lookup and accounting (domain stripped when configured). */
  user: string;
  credential: Credential | undefined;
}

/** Look the peer's name up in the credential store, stripping `DOMAIN\` when configured. */
export function lookupUser(cfg: AuthenticatorOptions, rawUser: string): UserLookup {
  const user = cfg.stripDomain ? withoutDomain(rawUser) : rawUser;
  return { rawUser, user, credential: cfg.credentials.lookup(user, cfg.serverName) };
}

/** `unknown user "bob"` — the reason text for a name the store does not know. */
export function unknownUser(user: string): string {
  return `unknown user ${quote(user)}`;
}

/** `wrong password for "alice"`. */
export function wrongPassword(user: string): string {
  return `wrong password for ${quote(user)}`;
}

/**
 * Log a failed login on the authenticator (with the peer address when known): one line, a warning,
 * or a debug line when `quiet` (an address that is locked out; the back-off logs the episode).
 * Only names and reasons are logged, never a password or a response value.
 */
export function logAuthenticatorFailure(
  host: AuthHost,
  opts: ExchangeOptions,
  failure: AuthFailure,
  quiet = false,
): void {
  const from = opts.peerAddress ? ` from ${opts.peerAddress}` : '';
  const line = `${METHOD_NAMES[failure.method]} authentication of peer${from} failed: ${failure.reason}`;
  if (quiet) {
    if (host.log.debugEnabled) host.log.debug(line);
  } else host.log.warn(line);
}

/** Log a failed login on the authenticator and report it (the link terminates). */
export function reportAuthenticatorFailure(
  host: AuthHost,
  opts: ExchangeOptions,
  failure: AuthFailure,
): void {
  logAuthenticatorFailure(host, opts, failure);
  host.failed(extend(failure, { logged: true }));
}

/** The reason logged for a login refused because its address is locked out. */
export function lockedOutReason(address: string): string {
  return `address ${address} is locked out after repeated failed logins (password not checked)`;
}

/**
 * Ask the throttle (if any, and if the peer's address is known) about a login about to be checked.
 * Without one: not locked, no delay.
 */
export function assessLogin(cfg: AuthenticatorOptions, user: string): { locked: boolean; delayMs: number } {
  if (!cfg.throttle || cfg.peerAddress === undefined) return { locked: false, delayMs: 0 };
  return cfg.throttle.assess(cfg.peerAddress, user);
}

/** Tell the throttle (if any) how a checked login ended. */
export function recordLogin(cfg: AuthenticatorOptions, user: string, ok: boolean): void {
  if (!cfg.throttle || cfg.peerAddress === undefined) return;
  if (ok) cfg.throttle.succeeded(cfg.peerAddress, user);
  else cfg.throttle.failed(cfg.peerAddress, user);
}

/** Decode, or count the drop and return undefined: bad input never throws out of receive(). */
export function decodeOrDrop<T>(
  decode: (packet: Uint8Array) => T,
  packet: Uint8Array,
  drops: DropCounter<AuthDropReason>,
): T | undefined {
  try {
    return decode(packet);
  } catch (e) {
    if (!isProtocolError(e)) throw e;
    drops.drop('malformed packet', `${e.code}: ${e.message}`);
    return undefined;
  }
}
