import { type IPv4, prefixesOverlap, prefixMask } from '../wire/ip.ts';

/** One subnet routed to a session (RADIUS Framed-Route). */
export interface RoutedPrefix<T> {
  readonly network: IPv4;
  readonly prefixLength: number;
  readonly owner: T;
}

/**
 * Subnets routed to sessions, for the TUN demultiplexer: a longest-prefix match over the few
 * prefix lengths in use, one map lookup per length (at most 33, in practice one or two). No two
 * entries overlap (add() refuses), so a match is unambiguous. The exact /32 lookup of a client's
 * own address stays a separate map in the server; this table is only asked when that one misses.
 */
export class FramedRouteTable<T> {
  /** prefix length → network → entry. */
  private readonly byLength = new Map<number, Map<IPv4, RoutedPrefix<T>>>();
  /** The prefix lengths in use, longest first. */
  private lengths: number[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** The owner of the longest prefix containing `ip`, or undefined. */
  lookup(ip: IPv4): T | undefined {
    for (const len of this.lengths) {
      const hit = this.byLength.get(len)!.get((ip & prefixMask(len)) >>> 0);
      if (hit) return hit.owner;
    }
    return undefined;
  }

  /** An entry sharing an address with network/prefixLength, or undefined. */
  overlapping(network: IPv4, prefixLength: number): RoutedPrefix<T> | undefined {
    for (const entries of this.byLength.values()) {
      for (const e of entries.values()) {
        if (prefixesOverlap(e.network, e.prefixLength, network, prefixLength)) return e;
      }
    }
    return undefined;
  }

  /** Adds the entry; false (and nothing changed) when it overlaps one already there. */
  add(entry: RoutedPrefix<T>): boolean {
    if (this.overlapping(entry.network, entry.prefixLength)) return false;
    let entries = this.byLength.get(entry.prefixLength);
    if (!entries) {
      entries = new Map();
      this.byLength.set(entry.prefixLength, entries);
      this.lengths = [...this.byLength.keys()].sort((a, b) => b - a);
    }
    entries.set(entry.network, entry);
    this.count++;
    return true;
  }

  /** Removes network/prefixLength if `owner` holds it; true when it did. */
  delete(network: IPv4, prefixLength: number, owner: T): boolean {
    const entries = this.byLength.get(prefixLength);
    const e = entries?.get(network);
    if (!entries || !e || e.owner !== owner) return false;
    entries.delete(network);
    this.count--;
    if (entries.size === 0) {
      this.byLength.delete(prefixLength);
      this.lengths = [...this.byLength.keys()].sort((a, b) => b - a);
    }
    return true;
  }
}
