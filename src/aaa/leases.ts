import { escapeControls, quote } from '../util/escape.ts';
import { extend } from '../util/objects.ts';
import { formatIPv4, type IPv4 } from '../wire/ip.ts';
import { AddressPool, addressForUser } from './address-pool.ts';
import type { Credential } from './credentials.ts';

/**
 * Who decided a lease's address: the user's secrets entry (static), the remoteip pool, or the
 * RADIUS server's Framed-IP-Address (a pool address the server asked for with 255.255.255.254 is
 * 'pool').
 */
export type LeaseSource = 'secrets' | 'pool' | 'radius';

/**
 * A lease is provisional from authentication until the network layer is up (IPCP opened), then
 * confirmed until released. Nothing is leased before the user is known: an unauthenticated peer
 * cannot hold an address.
 */
export type LeaseState = 'provisional' | 'confirmed';

export interface Lease {
  readonly ip: IPv4;
  readonly source: LeaseSource;
  /** The user the lease was made for; a second authentication as another user is refused. */
  readonly user: string;
  readonly state: LeaseState;
}

/** What holds a lease: a session (its id names it in refusals). */
export interface LeaseHolder {
  readonly id: string;
}

export type LeaseAnswer = { lease: Lease } | { refuse: string };

/** The refusal when `max` sessions (pptpd.conf `connections`) are there already. */
export function connectionLimitReached(max: number): string {
  return `connection limit reached (${max}, pptpd.conf "connections")`;
}

interface Entry {
  holder: LeaseHolder;
  lease: Lease;
}

/** What lease() and leaseFromRadius() ask leaseFor() for. */
interface Wanted {
  /** A fixed address (recorded with `source`), or undefined for a pool address. */
  ip: IPv4 | undefined;
  source: LeaseSource;
  /** Which pool addresses may be given (undefined: any). */
  allowed: ((ip: IPv4) => boolean) | undefined;
  /** Undefined when a lease the holder has already still fits; else the refusal. */
  stillFits(lease: Lease): string | undefined;
  /** The refusal when the fixed address (`ip` as text) is taken; `by` names the session, if any. */
  inUse(ip: string, by: string): string;
  /** The refusal when the pool is empty (none configured). */
  emptyPool: string;
}

/**
 * The client addresses of one server: the remoteip pool plus static addresses from the secrets
 * file, each held by exactly one session. Lookups by holder and by address are O(1), so neither a
 * set-up nor a refusal pays for the number of sessions.
 *
 * ```
 *   (authenticated) ── lease() ──> provisional ── confirm() ──> confirmed
 *                                       │                           │
 *                                       └──────── release() ────────┴──> (free; idempotent)
 * ```
 */
export class LeaseManager {
  private pool: AddressPool;
  private readonly byHolder = new Map<LeaseHolder, Entry>();
  private readonly byIp = new Map<IPv4, Entry>();

  constructor(poolAddresses: Iterable<IPv4>) {
    this.pool = new AddressPool(poolAddresses);
  }

  get poolSize(): number {
    return this.pool.size;
  }

  get poolFree(): number {
    return this.pool.freeCount;
  }

  /** Live leases, provisional and confirmed. */
  get count(): number {
    return this.byHolder.size;
  }

  /**
   * Before authentication (Outgoing-Call-Request): refuse early, without holding anything, when
   * the pool is configured and empty (pptpd refuses the call then too).
   */
  admission(): { ok: true } | { refuse: string } {
    if (this.pool.size > 0 && this.pool.freeCount === 0) return { refuse: this.exhausted() };
    return { ok: true };
  }

  /**
   * An address for `holder`, authenticated as `user` with `credential` (undefined without
   * authentication: any pool address). A holder that has a lease already (re-authentication, LCP
   * renegotiation) keeps its address when the user is the same and the entry still permits it;
   * otherwise the answer is a refusal and the old lease stays until released.
   */
  lease(
    holder: LeaseHolder,
    user: string,
    credential: Pick<Credential, 'user' | 'addresses'> | undefined,
  ): LeaseAnswer {
    const want = credential ? addressForUser(credential) : { kind: 'pool' as const, allowed: () => true };
    if (want.kind === 'refuse' && !this.byHolder.has(holder)) return { refuse: want.reason };
    return this.leaseFor(holder, user, {
      ip: want.kind === 'static' ? want.ip : undefined,
      source: 'secrets',
      allowed: want.kind === 'pool' ? want.allowed : undefined,
      stillFits: (lease) => {
        const same =
          want.kind === 'static' ? want.ip === lease.ip : want.kind === 'pool' && want.allowed(lease.ip);
        return same ? undefined : `its address ${formatIPv4(lease.ip)} is no longer permitted`;
      },
      inUse: (ip, by) => `its static address ${ip} is in use${by}`,
      emptyPool: 'no address to give: remoteip is empty and the secrets file has no address for this user',
    });
  }

  /**
   * An address for `holder` as a RADIUS Access-Accept decided: `ip` (Framed-IP-Address), or the
   * pool when undefined (no Framed-IP-Address, or 255.255.255.254). The same rules as lease() for a
   * holder that has a lease already; an address in use by another session is refused.
   */
  leaseFromRadius(holder: LeaseHolder, user: string, ip: IPv4 | undefined): LeaseAnswer {
    return this.leaseFor(holder, user, {
      ip,
      source: 'radius',
      allowed: undefined,
      stillFits: (lease) =>
        ip !== undefined && ip !== lease.ip
          ? `RADIUS now gives ${formatIPv4(ip)}, but the session has ${formatIPv4(lease.ip)}`
          : undefined,
      inUse: (text, by) => `the address RADIUS gives, ${text}, is in use${by}`,
      emptyPool: 'no address to give: RADIUS gives no Framed-IP-Address and remoteip is empty',
    });
  }

  /**
   * leaseFromRadius(), and when the refusal is that another session holds the address RADIUS gave,
   * `heldBy` names that session (the RADIUS side then sends no Stop that would free it there).
   */
  leaseFromRadiusNamingHolder(
    holder: LeaseHolder,
    user: string,
    ip: IPv4 | undefined,
  ): LeaseAnswer & { heldBy?: string } {
    const answer = this.leaseFromRadius(holder, user, ip);
    const other = ip === undefined ? undefined : this.holderOf(ip);
    return 'refuse' in answer && other !== undefined && other !== holder
      ? extend(answer, { heldBy: other.id })
      : answer;
  }

  /**
   * lease() and leaseFromRadius(): a holder with a lease keeps it when the user is the same and
   * `w.stillFits` it; else `w.ip` when it is free, or a pool address `w.allowed` permits.
   */
  private leaseFor(holder: LeaseHolder, user: string, w: Wanted): LeaseAnswer {
    const held = this.byHolder.get(holder);
    if (held) {
      const { lease } = held;
      if (lease.user !== user) {
        return { refuse: `re-authentication as ${quote(user)} on a session leased to ${quote(lease.user)}` };
      }
      const problem = w.stillFits(lease);
      return problem === undefined ? { lease } : { refuse: problem };
    }
    if (w.ip !== undefined) {
      const other = this.byIp.get(w.ip);
      if (other || !this.pool.reserve(w.ip)) {
        const by = other ? ` by session ${other.holder.id} (${escapeControls(other.lease.user)})` : '';
        return { refuse: w.inUse(formatIPv4(w.ip), by) };
      }
      return { lease: this.record(holder, { ip: w.ip, source: w.source, user, state: 'provisional' }) };
    }
    const ip = this.pool.allocate(w.allowed);
    if (ip === undefined) return { refuse: this.pool.size === 0 ? w.emptyPool : this.exhausted() };
    return { lease: this.record(holder, { ip, source: 'pool', user, state: 'provisional' }) };
  }

  /** The network layer is up with the leased address. */
  confirm(holder: LeaseHolder): void {
    const e = this.byHolder.get(holder);
    if (e && e.lease.state === 'provisional') e.lease = extend(e.lease, { state: 'confirmed' });
  }

  /** Ends the holder's lease, if it has one; safe to call more than once. */
  release(holder: LeaseHolder): void {
    const e = this.byHolder.get(holder);
    if (!e) return;
    this.byHolder.delete(holder);
    this.byIp.delete(e.lease.ip);
    this.pool.release(e.lease.ip);
  }

  leaseOf(holder: LeaseHolder): Lease | undefined {
    return this.byHolder.get(holder)?.lease;
  }

  holderOf(ip: IPv4): LeaseHolder | undefined {
    return this.byIp.get(ip)?.holder;
  }

  /** SIGHUP: a new remoteip list; live leases are kept (reserved in the new pool). */
  reload(poolAddresses: Iterable<IPv4>): void {
    const pool = new AddressPool(poolAddresses);
    for (const ip of this.byIp.keys()) pool.reserve(ip);
    this.pool = pool;
  }

  private record(holder: LeaseHolder, lease: Lease): Lease {
    const e = { holder, lease };
    this.byHolder.set(holder, e);
    this.byIp.set(lease.ip, e);
    return lease;
  }

  private exhausted(): string {
    return `address pool exhausted: all ${this.pool.size} addresses of remoteip are in use`;
  }
}
