import type { Clock } from '../util/clock.ts';
import { extend } from '../util/objects.ts';
import {
  formatIPv4,
  IPV4_DESTINATION_OFFSET,
  IPV4_HEADER_MIN,
  type IPv4,
  ipVersion,
  ipv4FromBytes,
  parseIPv4,
} from '../wire/ip.ts';
import type { GrePort, TunDevice, TunDropList } from './interfaces.ts';

/**
 * In-memory stand-ins for the kernel (no root, no sockets): a GRE network where ports with
 * different IPv4 addresses exchange packets, with loss, duplication, reordering and delay
 * driven by an injected Clock and a seeded random source, and a TUN device the test plays the
 * kernel for. Delivery always goes through a clock timer, never synchronously inside send(), so
 * protocol code sees the same re-entrancy as with real sockets.
 */

export interface LinkConditions {
  /** Probability (0..1) that a packet is lost. @default 0 */
  loss: number;
  /** Probability (0..1) that a packet is delivered twice. @default 0 */
  duplicate: number;
  /** Probability (0..1) that a packet is held back by `reorderDelayMs`, letting later ones pass. @default 0 */
  reorder: number;
  /** One-way delay of every packet. @default 1 */
  delayMs: number;
  /** Extra delay of a reordered packet. @default 10 */
  reorderDelayMs: number;
}

export interface MemoryGreNetworkOptions extends Partial<LinkConditions> {
  clock: Clock;
  /** Seed of the random source deciding loss/duplication/reordering. @default 1 */
  seed?: number;
}

export interface MemoryNetworkStats {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  reordered: number;
  /** Packets to an address no open port has. */
  undeliverable: number;
}

export class MemoryGreNetwork {
  readonly stats: MemoryNetworkStats = {
    sent: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    reordered: 0,
    undeliverable: 0,
  };
  private readonly clock: Clock;
  private readonly ports = new Map<IPv4, MemoryGrePort>();
  private readonly random: () => number;
  private conditions: LinkConditions;

  constructor(opts: MemoryGreNetworkOptions) {
    this.clock = opts.clock;
    this.random = mulberry32(opts.seed ?? 1);
    this.conditions = {
      loss: opts.loss ?? 0,
      duplicate: opts.duplicate ?? 0,
      reorder: opts.reorder ?? 0,
      delayMs: opts.delayMs ?? 1,
      reorderDelayMs: opts.reorderDelayMs ?? 10,
    };
  }

  /** Changes link conditions from now on (packets in flight keep their schedule). */
  setConditions(c: Partial<LinkConditions>): void {
    this.conditions = extend(this.conditions, c);
  }

  /** A port with this address (a number or dotted text); one port per address. */
  port(address: IPv4 | string): MemoryGrePort {
    const ip = typeof address === 'string' ? parseIPv4(address) : address;
    if (ip === undefined) throw new RangeError(`not an IPv4 address: ${String(address)}`);
    if (this.ports.has(ip)) throw new Error(`address ${formatIPv4(ip)} is already in use on this network`);
    const p = new MemoryGrePort(this, ip);
    this.ports.set(ip, p);
    return p;
  }

  /** @internal called by MemoryGrePort */
  transmit(packet: Uint8Array, from: IPv4, to: IPv4): void {
    this.stats.sent++;
    const c = this.conditions;
    if (this.random() < c.loss) {
      this.stats.lost++;
      return;
    }
    const copy = packet.slice();
    let delay = c.delayMs;
    if (this.random() < c.reorder) {
      this.stats.reordered++;
      delay += c.reorderDelayMs;
    }
    this.clock.setTimer(delay, () => this.deliver(copy, from, to));
    if (this.random() < c.duplicate) {
      this.stats.duplicated++;
      this.clock.setTimer(delay, () => this.deliver(copy.slice(), from, to));
    }
  }

  /** @internal called by MemoryGrePort */
  detach(port: MemoryGrePort): void {
    if (this.ports.get(port.address) === port) this.ports.delete(port.address);
  }

  private deliver(packet: Uint8Array, from: IPv4, to: IPv4): void {
    const port = this.ports.get(to);
    if (!port?.receive(packet, from, to)) this.stats.undeliverable++;
    else this.stats.delivered++;
  }
}

/** One address on a MemoryGreNetwork. */
export class MemoryGrePort implements GrePort {
  readonly address: IPv4;
  private readonly net: MemoryGreNetwork;
  private cb: ((packet: Uint8Array, from: IPv4, to: IPv4) => void) | undefined;
  private closed = false;

  constructor(net: MemoryGreNetwork, address: IPv4) {
    this.net = net;
    this.address = address;
  }

  send(packet: Uint8Array, to: IPv4): void {
    if (!this.closed) this.net.transmit(packet, this.address, to);
  }

  onPacket(cb: (packet: Uint8Array, from: IPv4, to: IPv4) => void): void {
    this.cb = cb;
  }

  /** @internal whether a receiver took the packet */
  receive(packet: Uint8Array, from: IPv4, to: IPv4): boolean {
    if (this.closed || !this.cb) return false;
    this.cb(packet, from, to);
    return true;
  }

  close(): void {
    this.closed = true;
    this.cb = undefined;
    this.net.detach(this);
  }
}

/** Two ports (192.0.2.1 and 198.51.100.1, documentation addresses) on a fresh network. */
export function createGrePortPair(
  opts: MemoryGreNetworkOptions,
): [MemoryGrePort, MemoryGrePort, MemoryGreNetwork] {
  const net = new MemoryGreNetwork(opts);
  return [net.port('192.0.2.1'), net.port('198.51.100.1'), net];
}

/**
 * A TUN device the test plays the kernel for: `inject` hands a packet to the reader as if the
 * kernel had routed it to the device; packets written by the code under test are kept in
 * `written` (copies) and passed to the `onWrite` hook.
 */
export class MemoryTun implements TunDevice {
  readonly name: string;
  /** Injected packets are copied behind this many free bytes, as TunInterface reads them. */
  readonly headroom: number;
  readonly written: Uint8Array[] = [];
  /** Called for each packet written (a copy); e.g. to loop it into another MemoryTun. */
  onWrite: ((packet: Uint8Array) => void) | undefined;
  /** Played as the kernel's filter: injected IPv4 packets to a listed address are dropped unread. */
  dropList: MemoryTunDropList | undefined;
  private cb: ((packet: Uint8Array) => void) | undefined;
  private closed = false;

  constructor(name = 'mtun0', headroom = 32) {
    this.name = name;
    this.headroom = headroom;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  write(packet: Uint8Array): void {
    if (this.closed) return;
    const copy = packet.slice();
    this.written.push(copy);
    this.onWrite?.(copy);
  }

  onPacket(cb: (packet: Uint8Array) => void): void {
    this.cb = cb;
  }

  /** Delivers a packet to the reader; false when closed or nobody reads. */
  inject(packet: Uint8Array): boolean {
    if (this.closed || !this.cb) return false;
    if (this.dropList?.drops(packet)) return false;
    const slot = new Uint8Array(this.headroom + packet.length);
    slot.set(packet, this.headroom);
    this.cb(slot.subarray(this.headroom));
    return true;
  }

  close(): void {
    this.closed = true;
    this.cb = undefined;
  }
}

/** TunDropList as the kernel's filter does it (net/tun-filter.ts), for MemoryTun. */
export class MemoryTunDropList implements TunDropList {
  /** Listed address → packets dropped for it since it was listed. */
  readonly listed = new Map<IPv4, number>();
  /** Every add and remove, in order: `+10.0.0.1` / `-10.0.0.1`. */
  readonly changes: string[] = [];
  private closed = false;

  add(address: IPv4): boolean {
    if (this.closed) return false;
    this.listed.set(address, 0);
    this.changes.push(`+${formatIPv4(address)}`);
    return true;
  }

  remove(address: IPv4): number {
    const n = this.listed.get(address) ?? 0;
    if (this.listed.delete(address)) this.changes.push(`-${formatIPv4(address)}`);
    return n;
  }

  /** Whether the filter drops `packet` (and counts it): an IPv4 packet to a listed address. */
  drops(packet: Uint8Array): boolean {
    if (packet.length < IPV4_HEADER_MIN || ipVersion(packet) !== 4) return false;
    const dst = ipv4FromBytes(packet, IPV4_DESTINATION_OFFSET);
    const n = this.listed.get(dst);
    if (n === undefined) return false;
    this.listed.set(dst, n + 1);
    return true;
  }

  close(): void {
    this.closed = true;
    this.listed.clear();
  }
}

/** A small deterministic PRNG (mulberry32) for reproducible loss patterns. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
