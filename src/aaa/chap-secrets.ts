import { readFileSync, statSync } from 'node:fs';
import { parseChapSecrets } from '../config/chap-secrets-file.ts';
import { ConfigError, type ConfigIssue } from '../config/issues.ts';
import type { Credential, CredentialStore } from './credentials.ts';

/**
 * pppd's choice among secrets (auth.c scan_authfile): an entry applies when its client is the
 * user or `*` and its server is our name or `*`. The best one has the fewest wildcards, an exact
 * client counting more than an exact server (client+server > client+* > *+server > *+*); among
 * equals the first in the file wins. Names are compared exactly (case matters).
 */
export function findBestCredential(
  entries: readonly Credential[],
  user: string,
  serverName: string,
): Credential | undefined {
  let best: Credential | undefined;
  let bestScore = -1;
  for (const e of entries) {
    const clientExact = e.user !== '*';
    const serverExact = e.server !== '*';
    if (clientExact && e.user !== user) continue;
    if (serverExact && e.server !== serverName) continue;
    const score = (clientExact ? 2 : 0) + (serverExact ? 1 : 0);
    if (score > bestScore) {
      best = e;
      bestScore = score;
    }
  }
  return best;
}

/**
 * The user name without a leading `DOMAIN\` (Windows clients send `DOMAIN\user`), for
 * `chapms-strip-domain`. Only the part up to the first backslash is dropped.
 */
export function stripDomainPrefix(user: string): string {
  const i = user.indexOf('\\');
  return i < 0 ? user : user.slice(i + 1);
}

/**
 * A warning in words when the secrets file at `path` is missing, cannot be examined, or grants
 * any access to its group or to others (mode & 0o077, as pppd's check_access); else undefined.
 */
export function checkSecretsPermissions(path: string): string | undefined {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `secrets file ${path} does not exist: nobody can authenticate`;
    return `cannot check the permissions of secrets file ${path}: ${(e as Error).message}`;
  }
  if ((mode & 0o077) === 0) return undefined;
  const who = [mode & 0o070 ? 'its group' : '', mode & 0o007 ? 'all other users' : '']
    .filter(Boolean)
    .join(' and ');
  const octal = (mode & 0o777).toString(8).padStart(4, '0');
  return `secrets file ${path} is accessible to ${who} (mode ${octal}); it should be readable by its owner only: chmod 600 ${path}`;
}

export interface ChapSecretsStoreInit {
  /** Reads the secrets file and `@/path` secret files; default: fs.readFileSync as UTF-8. */
  readFile?: (path: string) => string;
  /** Warn about group/other access on the secrets file (default true; uses the real fs). */
  checkPermissions?: boolean;
}

/**
 * The credentials of a chap-secrets file, loaded synchronously at construction and again on
 * reload() (SIGHUP). A reload that finds errors keeps the previous table.
 */
export class ChapSecretsStore implements CredentialStore {
  readonly path: string;
  private readonly readFile: (path: string) => string;
  private readonly checkPermissions: boolean;
  private entries: Credential[] = [];

  /** Throws ConfigError (with file:line issues) or the read error when the file cannot be used. */
  constructor(path: string, init: ChapSecretsStoreInit = {}) {
    this.path = path;
    this.readFile = init.readFile ?? ((p) => readFileSync(p, 'utf8'));
    this.checkPermissions = init.checkPermissions ?? true;
    this.reload();
  }

  /**
   * Reads the file again. Returns the warnings (permissions included); throws ConfigError when
   * an entry has an error, or the read error, leaving the current table in place.
   */
  reload(): ConfigIssue[] {
    const text = this.readFile(this.path);
    const { entries, issues } = parseChapSecrets(text, this.path, { readFile: this.readFile });
    if (issues.some((i) => i.severity === 'error')) throw new ConfigError(issues);
    const permission = this.checkPermissions ? checkSecretsPermissions(this.path) : undefined;
    if (permission) issues.unshift({ severity: 'warning', file: this.path, line: 0, message: permission });
    this.entries = entries;
    return issues;
  }

  get size(): number {
    return this.entries.length;
  }

  lookup(user: string, serverName: string): Credential | undefined {
    return findBestCredential(this.entries, user, serverName);
  }
}
