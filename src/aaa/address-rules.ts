import { type IPv4, parseIPv4 } from '../wire/ip.ts';

/**
 * The address column of a chap-secrets entry, as pppd reads it: which addresses a user may be
 * given. config/ reports the column's problems with file:line; the lease manager applies it.
 */

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
