import type { IPv4 } from '../wire/ip.ts';
import { addressPermitted, parseAddressColumn } from './address-rules.ts';
import type { Credential } from './credentials.ts';

/**
 * Client addresses from pptpd's remoteip list, plus static per-user addresses.
 *
 * Order: addresses are handed out in the order of the list (lowest first for a range, as pptpd
 * fills its slots in order); a released address goes to the END of the queue, so the address a
 * client just left is the last one reused (its old routes, ARP entries and logs age out first).
 *
 * Static addresses (from the secrets file) are leased with reserve(): two live sessions never
 * share an address. A static address inside the pool is taken out of the free queue while
 * leased and comes back at the end when released. Addresses outside the pool are only tracked.
 */
export class AddressPool {
  /** The pool's addresses, in list order. */
  private readonly members: ReadonlySet<IPv4>;
  /** Free pool addresses; the Set's insertion order is the allocation order. */
  private readonly free = new Set<IPv4>();
  /** Every live lease, pool or static. */
  private readonly leased = new Set<IPv4>();

  constructor(addresses: Iterable<IPv4>) {
    this.members = new Set(addresses);
    for (const ip of this.members) this.free.add(ip);
  }

  /** Number of addresses in the pool. */
  get size(): number {
    return this.members.size;
  }

  /** Pool addresses not leased. */
  get freeCount(): number {
    return this.free.size;
  }

  /** Live leases, static ones outside the pool included. */
  get leaseCount(): number {
    return this.leased.size;
  }

  /**
   * Leases the next free address (that `allowed` accepts, if given: a user whose secrets entry
   * restricts addresses); undefined when none is left.
   */
  allocate(allowed?: (ip: IPv4) => boolean): IPv4 | undefined {
    for (const ip of this.free) {
      if (allowed && !allowed(ip)) continue;
      this.free.delete(ip);
      this.leased.add(ip);
      return ip;
    }
    return undefined;
  }

  /** Leases `ip` for a static assignment; false (and nothing changes) when it is already leased. */
  reserve(ip: IPv4): boolean {
    if (this.leased.has(ip)) return false;
    this.free.delete(ip);
    this.leased.add(ip);
    return true;
  }

  /** Ends the lease of `ip`; releasing an address that is not leased does nothing. */
  release(ip: IPv4): void {
    if (!this.leased.delete(ip)) return;
    if (this.members.has(ip)) this.free.add(ip);
  }

  inUse(ip: IPv4): boolean {
    return this.leased.has(ip);
  }

  /** True when `ip` is one of the pool's addresses (leased or not). */
  contains(ip: IPv4): boolean {
    return this.members.has(ip);
  }
}

/** How a user gets an address, from the address column of their secrets entry. */
export type UserAddress =
  /** This address (the first single address the column permits). */
  | { kind: 'static'; ip: IPv4 }
  /** An address from the pool that `allowed` accepts (always true for `*` or an empty column). */
  | { kind: 'pool'; allowed: (ip: IPv4) => boolean }
  | { kind: 'refuse'; reason: string };

const ANY = (): boolean => true;

/**
 * Reads the address column of `credential` (config/chap-secrets-file.ts parseAddressColumn):
 * - `*` or an empty column: the pool. pppd would refuse every address for an entry without an
 *   address column; we allocate from the pool (remoteip), which is what pptpd users expect;
 * - a first word `-`: refused (pppd: "no addresses authorized");
 * - single addresses: the first one permitted is static (pppd suggests it to the peer);
 * - only subnets / `!` exclusions before a `*`: the pool, restricted to what they permit;
 * - nothing usable (only unknown words, or only exclusions): refused.
 */
export function addressForUser(credential: Pick<Credential, 'user' | 'addresses'>): UserAddress {
  const column = parseAddressColumn(credential.addresses);
  if (column.empty) return { kind: 'pool', allowed: ANY };
  if (column.none) {
    return { kind: 'refuse', reason: `the secrets entry for "${credential.user}" allows no address ("-")` };
  }
  const { rules } = column;
  const host = rules.find((r) => r.mask === 0xffffffff && addressPermitted(rules, r.base));
  if (host) return { kind: 'static', ip: host.base };
  if (rules.length === 1 && rules[0]!.mask === 0 && rules[0]!.permit) return { kind: 'pool', allowed: ANY };
  if (rules.some((r) => r.permit)) return { kind: 'pool', allowed: (ip) => addressPermitted(rules, ip) };
  return {
    kind: 'refuse',
    reason: `the secrets entry for "${credential.user}" permits no usable address ("${credential.addresses.join(' ')}")`,
  };
}
