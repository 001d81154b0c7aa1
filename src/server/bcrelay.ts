import { BPF, BPF_ACCEPT, type BpfInsn, encodeBpf } from '../net/bpf.ts';
import type { InterfaceAddress } from '../net/iproute.ts';
import type { Clock } from '../util/clock.ts';
import { DropCounter } from '../util/counters.ts';
import type { Logger } from '../util/log.ts';
import {
  formatIPv4,
  IPV4_DESTINATION_OFFSET,
  IPV4_HEADER_MIN,
  IPV4_SOURCE_OFFSET,
  type IPv4,
  ipv4FromBytes,
} from '../wire/ip.ts';

/**
 * pptpd's `bcrelay IF`: UDP broadcasts that arrive on the LAN interface IF are relayed to every
 * client whose tunnel is up, so NetBIOS name service (137), the browser service (138) and other
 * broadcast discovery work for VPN users as on the LAN. One direction, LAN to clients, which is
 * what pptpd.conf(5) documents for the keyword.
 *
 * What is relayed: IPv4 UDP whose destination is 255.255.255.255 or IF's directed broadcast
 * (e.g. 192.168.1.255 for 192.168.1.1/24). Each copy leaves as bcrelay sends it: destination
 * 255.255.255.255 (a client has no address in the LAN's subnet, so only the limited broadcast is
 * local to it), TTL 1 (no router, and no relay that honours TTL, passes it on), the IPv4 header
 * checksum recomputed and the UDP checksum computed for the new destination (bcrelay zeroes it).
 *
 * What is not, counted by reason: a packet this host sent itself (the kernel loops our own
 * broadcasts back), a packet whose source is a client's tunnel address or in the pool (a relay
 * loop or a spoof), TTL 1 (a copy another relay already made, or a sender that asked not to be
 * forwarded), malformed packets, and everything beyond `ratePerSecond` broadcasts a second (a
 * broadcast storm on the LAN costs each tunnel at most that much).
 */

/** The broadcast relay's vocabulary for packets it does not relay. */
export type BcrelayDropReason =
  | 'malformed IPv4/UDP packet'
  | 'TTL 1: not to be forwarded (or already relayed)'
  | 'sent by this host'
  | 'source is a VPN client address'
  | 'over the rate limit (broadcast storm on the LAN?)';

/** What the relay needs of a session. */
export interface RelaySession {
  readonly isUp: boolean;
  readonly assignedIp: IPv4 | undefined;
  /** Sends one IP packet through the tunnel; `headroom` free bytes before it may be overwritten. */
  sendIp(packet: Uint8Array, headroom: number): void;
}

/** Where the sessions are (PptpServer). */
export interface RelayTargets {
  readonly liveSessions: Iterable<RelaySession>;
}

export interface BroadcastRelayOptions {
  /** The LAN interface (for log lines). */
  ifname: string;
  /** IF's IPv4 addresses: their directed broadcasts are relayed, their sources are ours. */
  interfaceAddresses: readonly InterfaceAddress[];
  /** Every other address of this host (other interfaces, the TUN device's localip). */
  hostAddresses?: Iterable<IPv4>;
  /**
   * The client address pool (remoteip), never a source of a relayed packet; read again whenever
   * it returns another array (a reload).
   */
  clientPool?: () => readonly IPv4[];
  targets: RelayTargets;
  clock: Clock;
  log: Logger;
  /** Broadcasts relayed per second at most, each to every client; as many in a burst. @default 100 */
  ratePerSecond?: number;
  /** Free bytes put before each copy for the tunnel's headers (TUNNEL_HEADROOM). @default 32 */
  headroom?: number;
}

/** Counts of a running relay (metrics, tests). */
export interface BcrelayCounts {
  /** Broadcasts relayed (each to every client up at the time). */
  relayed: number;
  /** Copies handed to sessions. */
  copies: number;
  /** Broadcasts that arrived while no client was connected. */
  noClient: number;
  /** Packets that were not broadcasts (the kernel filter lets none through once attached). */
  notBroadcast: number;
}

export const BCRELAY_DEFAULT_RATE = 100;
const IPPROTO_UDP = 17;
const LIMITED_BROADCAST = 0xffffffff;
const UDP_HEADER = 8;

export class BroadcastRelay {
  readonly drops: DropCounter<BcrelayDropReason>;
  readonly counts: BcrelayCounts = { relayed: 0, copies: 0, noClient: 0, notBroadcast: 0 };
  /** 255.255.255.255 and IF's directed broadcasts. */
  readonly destinations: readonly IPv4[];
  private readonly ifname: string;
  private readonly own = new Set<IPv4>();
  private readonly clientPool: () => readonly IPv4[];
  private poolSeen: readonly IPv4[] | undefined;
  private pool = new Set<IPv4>();
  private readonly targets: RelayTargets;
  private readonly clock: Clock;
  private readonly log: Logger;
  readonly rate: number;
  private readonly headroom: number;
  private tokens: number;
  private lastRefill: number;

  constructor(o: BroadcastRelayOptions) {
    this.ifname = o.ifname;
    this.targets = o.targets;
    this.clock = o.clock;
    this.log = o.log;
    this.rate = Math.max(1, o.ratePerSecond ?? BCRELAY_DEFAULT_RATE);
    this.headroom = o.headroom ?? 32;
    this.tokens = this.rate;
    this.lastRefill = o.clock.now();
    this.drops = new DropCounter<BcrelayDropReason>(o.log, `broadcast from ${o.ifname}`);
    this.destinations = [LIMITED_BROADCAST, ...directedBroadcasts(o.interfaceAddresses)];
    for (const a of o.interfaceAddresses) this.own.add(a.address);
    for (const a of o.hostAddresses ?? []) this.own.add(a);
    this.clientPool = o.clientPool ?? (() => []);
  }

  /**
   * One packet received on IF, from its IPv4 header on (a view valid only during the call: every
   * copy is made before this returns).
   */
  receive(packet: Uint8Array): void {
    const len = packet.length;
    const ihl = len >= IPV4_HEADER_MIN ? (packet[0]! & 0x0f) * 4 : 0;
    if (
      len < IPV4_HEADER_MIN + UDP_HEADER ||
      packet[0]! >> 4 !== 4 ||
      ihl < IPV4_HEADER_MIN ||
      ihl + UDP_HEADER > len ||
      ((packet[2]! << 8) | packet[3]!) !== len ||
      packet[9] !== IPPROTO_UDP ||
      (packet[6]! & 0x3f) !== 0 ||
      packet[7] !== 0 || // a fragment (the kernel hands reassembled datagrams)
      !validUdpLength((packet[ihl + 4]! << 8) | packet[ihl + 5]!, len - ihl)
    ) {
      this.drops.drop('malformed IPv4/UDP packet', `${len} bytes`);
      return;
    }
    const dst = ipv4FromBytes(packet, IPV4_DESTINATION_OFFSET);
    if (!this.destinations.includes(dst)) {
      this.counts.notBroadcast++;
      return;
    }
    const src = ipv4FromBytes(packet, IPV4_SOURCE_OFFSET);
    if (packet[8]! <= 1)
      return void this.drops.drop('TTL 1: not to be forwarded (or already relayed)', () =>
        this.describe(packet, ihl),
      );
    if (this.own.has(src)) return void this.drops.drop('sent by this host', () => this.describe(packet, ihl));
    // One pass over the sessions: is the source a client's (static addresses are outside the
    // pool), and is anyone up to receive it?
    let up = 0;
    let fromClient = this.inPool(src);
    for (const s of this.targets.liveSessions) {
      if (s.assignedIp === src) fromClient = true;
      if (s.isUp) up++;
    }
    if (fromClient) {
      return void this.drops.drop('source is a VPN client address', () => this.describe(packet, ihl));
    }
    if (up === 0) {
      this.counts.noClient++;
      return;
    }
    if (!this.take()) {
      return void this.drops.drop(
        'over the rate limit (broadcast storm on the LAN?)',
        `more than ${this.rate} a second`,
      );
    }
    const template = relayCopy(packet, ihl);
    let sent = 0;
    for (const s of this.targets.liveSessions) {
      if (!s.isUp) continue;
      // Each session encrypts its copy in place, headers written into the headroom.
      const buf = new Uint8Array(this.headroom + len);
      buf.set(template, this.headroom);
      s.sendIp(buf.subarray(this.headroom), this.headroom);
      sent++;
    }
    this.counts.relayed++;
    this.counts.copies += sent;
    if (this.log.debugEnabled)
      this.log.debug(`relayed ${this.describe(packet, ihl)} to ${sent} client${sent === 1 ? '' : 's'}`);
  }

  private inPool(ip: IPv4): boolean {
    const now = this.clientPool();
    if (now !== this.poolSeen) {
      this.poolSeen = now;
      this.pool = new Set(now);
    }
    return this.pool.has(ip);
  }

  /** Token bucket: `rate` tokens a second, at most `rate` saved up. */
  private take(): boolean {
    const now = this.clock.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.lastRefill) * this.rate) / 1000);
    this.lastRefill = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private describe(p: Uint8Array, ihl: number): string {
    const sport = (p[ihl]! << 8) | p[ihl + 1]!;
    const dport = (p[ihl + 2]! << 8) | p[ihl + 3]!;
    return `UDP ${formatIPv4(ipv4FromBytes(p, IPV4_SOURCE_OFFSET))}:${sport} -> ${formatIPv4(ipv4FromBytes(p, IPV4_DESTINATION_OFFSET))}:${dport} on ${this.ifname}`;
  }
}

function validUdpLength(udpLength: number, payload: number): boolean {
  return udpLength >= UDP_HEADER && udpLength <= payload;
}

/** The directed broadcast of each address with a subnet (prefix ≤ 30), without duplicates. */
export function directedBroadcasts(addrs: readonly InterfaceAddress[]): IPv4[] {
  const out: IPv4[] = [];
  for (const a of addrs) {
    if (a.prefixLength < 1 || a.prefixLength > 30) continue;
    const host = (0xffffffff >>> a.prefixLength) >>> 0;
    const b = (a.address | host) >>> 0;
    if (!out.includes(b)) out.push(b);
  }
  return out;
}

/**
 * The copy a client gets: destination 255.255.255.255, TTL 1, IPv4 header checksum recomputed,
 * UDP checksum computed afresh for the new destination unless the sender sent none (0). Afresh,
 * not adjusted: a packet from this host's own stack or a veth may carry checksum offload's
 * partial sum rather than a finished checksum.
 */
export function relayCopy(packet: Uint8Array, ihl: number): Uint8Array {
  const out = packet.slice();
  out[8] = 1;
  out.fill(0xff, 16, 20);
  out[10] = 0;
  out[11] = 0;
  const h = onesComplementSum(out, 0, ihl);
  out[10] = (~h >> 8) & 0xff;
  out[11] = ~h & 0xff;
  const c = ihl + 6;
  if (out[c] !== 0 || out[c + 1] !== 0) {
    out[c] = 0;
    out[c + 1] = 0;
    const udpLength = (out[ihl + 4]! << 8) | out[ihl + 5]!;
    // Pseudo-header: source, destination, zero + protocol, UDP length; then the datagram.
    let sum =
      onesComplementSum(out, 12, 20) + IPPROTO_UDP + udpLength + onesComplementSum(out, ihl, ihl + udpLength);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    let check = ~sum & 0xffff;
    if (check === 0) check = 0xffff; // UDP: a computed 0 is sent as all ones (0 means "none")
    out[c] = check >> 8;
    out[c + 1] = check & 0xff;
  }
  return out;
}

/** The 16-bit ones' complement sum of bytes [from, to), folded (not inverted). */
export function onesComplementSum(b: Uint8Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i + 1 < to; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if ((to - from) & 1) sum += b[to - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * A classic BPF program for the raw socket (SO_ATTACH_FILTER): keep only packets whose IPv4
 * destination is one of `destinations`, so the kernel does not wake us for the host's unicast
 * UDP. The filter sees the packet from its IPv4 header. struct sock_filter { u16 code; u8 jt;
 * u8 jf; u32 k }, host byte order.
 */
export function broadcastFilter(destinations: readonly IPv4[]): Uint8Array {
  const n = destinations.length;
  return encodeBpf([
    [BPF.LD_W_ABS, 0, 0, IPV4_DESTINATION_OFFSET],
    // true: to "accept", n - i instructions ahead
    ...destinations.map((d, i): BpfInsn => [BPF.JEQ_K, n - i, 0, d]),
    [BPF.RET_K, 0, 0, 0],
    [BPF.RET_K, 0, 0, BPF_ACCEPT],
  ]);
}
