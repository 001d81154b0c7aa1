import type { RateLimit } from './rate-limit.ts';

/**
 * Who may connect: the authenticator asks a CredentialStore for the secret of a user; the
 * method (PAP, CHAP-MD5, MS-CHAP) does the cryptography itself.
 */
export type Secret =
  /** A clear-text password (works with every method). */
  | { kind: 'password'; password: string }
  /** The MD4 of the UTF-16LE password (works with PAP, MS-CHAPv1/v2 and MPPE, not CHAP-MD5). */
  | { kind: 'nthash'; hash: Uint8Array };

export interface Credential {
  /** The user name as written in the secrets file (the "client" column). */
  user: string;
  /** The "server" column ("*" for any). */
  server: string;
  secret: Secret;
  /**
   * The addresses column, as written: IPv4 addresses the user must get (first is used),
   * "*" (any address), "-" or empty per pppd's rules. Interpretation is the address allocator's.
   */
  addresses: string[];
  /** Where it came from, for log lines ("/etc/ppp/chap-secrets:12"). */
  source?: string;
  /** `-- rate-limit DOWN[/UP]` in the entry: this user's rate limit (aaa/rate-limit.ts). */
  rateLimit?: RateLimit;
}

export interface CredentialStore {
  /** The secret for `user` when we are `serverName` (pppd's matching rules), or undefined. */
  lookup(user: string, serverName: string): Credential | undefined;
}

/** A CredentialStore over a fixed list (tests, the built-in default configuration). */
export class StaticCredentials implements CredentialStore {
  private readonly entries: Credential[];
  constructor(entries: Credential[]) {
    this.entries = entries;
  }
  lookup(user: string, serverName: string): Credential | undefined {
    return this.entries.find(
      (e) => (e.user === user || e.user === '*') && (e.server === '*' || e.server === serverName),
    );
  }
}
