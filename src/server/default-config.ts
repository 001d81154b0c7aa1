import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The built-in configuration used when `poptop serve` is given no -c: secure by default
 * (MS-CHAPv2 and MPPE-128 required), a private address pool, and one user whose generated
 * password is printed once and kept in a root-only state file in chap-secrets format.
 */
export const DEFAULT_STATE_DIR = '/var/lib/poptop';
export const DEFAULT_USER = 'poptop';

export const DEFAULT_PPTPD_CONF = `# poptop built-in configuration (pptpd.conf syntax)
option builtin:options
localip 10.77.0.1
remoteip 10.77.0.10-250
connections 241
`;

export const DEFAULT_PPP_OPTIONS = `# poptop built-in pppd options
name poptop
refuse-pap
refuse-chap
refuse-mschap
require-mschap-v2
require-mppe-128
nomppe-stateful
lcp-echo-interval 30
lcp-echo-failure 4
mtu 1400
mru 1400
`;

export interface DefaultSecrets {
  /** Path of the chap-secrets file in the state directory. */
  path: string;
  user: string;
  /** The password, only when this call generated it (print it once). */
  generatedPassword?: string;
}

/** A password of 20 characters from an unambiguous alphabet (~115 bits). */
export function generatePassword(): string {
  const alphabet = 'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const bytes = randomBytes(40);
  let out = '';
  for (const b of bytes) {
    if (b >= alphabet.length * 4) continue; // keep the choice uniform
    out += alphabet[b % alphabet.length];
    if (out.length === 20) break;
  }
  return out.length === 20 ? out : generatePassword();
}

/**
 * Make sure the state directory holds a chap-secrets file for the default user (mode 0600),
 * creating it with a fresh password the first time.
 */
export function ensureDefaultSecrets(stateDir = DEFAULT_STATE_DIR): DefaultSecrets {
  const path = join(stateDir, 'chap-secrets');
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  if (existsSync(path)) {
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    return { path, user: DEFAULT_USER };
  }
  const password = generatePassword();
  const text = `# poptop default user, generated ${new Date().toISOString()}
# client\tserver\tsecret\tIP addresses
${DEFAULT_USER}\t*\t"${password}"\t*
`;
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
  return { path, user: DEFAULT_USER, generatedPassword: password };
}

export function readFileIfExists(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}
