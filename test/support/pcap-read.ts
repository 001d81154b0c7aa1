/**
 * Test support: read classic pcap files (either byte order, microsecond or nanosecond magic) and
 * take the IPv4 packets out of the link layers found in real captures: Ethernet (1, with 802.1Q
 * tags), raw IP (101), Linux cooked (113) and 802.11 (105, data frames with LLC/SNAP; with an FCS
 * the frames whose FCS is wrong are set apart), and IPv4 carried in IPv6 (next header 4).
 * Then TCP streams per direction, reassembled by sequence number (retransmissions, overlaps and
 * duplicates dropped, out-of-order segments held until the gap is filled).
 */
import { crc32 } from 'node:zlib';

export const Linktype = { ETHERNET: 1, RAW: 101, IEEE802_11: 105, LINUX_SLL: 113 } as const;

export interface PcapRecord {
  /** 0-based position in the file. */
  index: number;
  /** Seconds (with the fraction) since the epoch. */
  time: number;
  /** The captured bytes (possibly shorter than on the wire). */
  data: Uint8Array;
  origLength: number;
}

export interface PcapFile {
  linktype: number;
  littleEndian: boolean;
  records: PcapRecord[];
}

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;

export function readPcap(bytes: Uint8Array): PcapFile {
  if (bytes.length < 24) throw new Error(`pcap file of ${bytes.length} bytes has no header`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let le: boolean;
  const m = v.getUint32(0, true);
  if (m === MAGIC_US || m === MAGIC_NS) le = true;
  else if (v.getUint32(0, false) === MAGIC_US || v.getUint32(0, false) === MAGIC_NS) le = false;
  else throw new Error(`not a classic pcap file (magic 0x${v.getUint32(0, false).toString(16)})`);
  const fractionScale = v.getUint32(0, le) === MAGIC_NS ? 1e9 : 1e6;
  const major = v.getUint16(4, le);
  if (major !== 2) throw new Error(`pcap version ${major} is not 2`);
  const linktype = v.getUint32(20, le) & 0x0fffffff; // the top bits may carry the FCS length
  const records: PcapRecord[] = [];
  let at = 24;
  while (at < bytes.length) {
    if (at + 16 > bytes.length) throw new Error(`record ${records.length}: header truncated at ${at}`);
    const sec = v.getUint32(at, le);
    const frac = v.getUint32(at + 4, le);
    const incl = v.getUint32(at + 8, le);
    const orig = v.getUint32(at + 12, le);
    if (at + 16 + incl > bytes.length) throw new Error(`record ${records.length}: data truncated`);
    records.push({
      index: records.length,
      time: sec + frac / fractionScale,
      data: bytes.subarray(at + 16, at + 16 + incl),
      origLength: orig,
    });
    at += 16 + incl;
  }
  return { linktype, littleEndian: le, records };
}

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_VLAN = 0x8100;

function u16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/** What a link-layer frame held: an IPv4 packet, or why not. */
export type LinkPayload = { kind: 'ipv4'; ip: Uint8Array; retry?: boolean } | { kind: 'other'; why: string };

const ETHERTYPE_IPV6 = 0x86dd;
const IPV6_HEADER_LENGTH = 40;
const NEXT_HEADER_IPV4 = 4;

function fromEthertype(type: number, payload: Uint8Array): LinkPayload {
  if (type === ETHERTYPE_IPV4) return { kind: 'ipv4', ip: payload };
  if (type === ETHERTYPE_IPV6) return fromIpv6(payload);
  return { kind: 'other', why: `ethertype 0x${type.toString(16).padStart(4, '0')}` };
}

/** IPv4 in IPv6 (RFC 2473), directly after the fixed header. */
function fromIpv6(p: Uint8Array): LinkPayload {
  if (p.length < IPV6_HEADER_LENGTH || p[0]! >> 4 !== 6) return { kind: 'other', why: 'bad IPv6 header' };
  if (p[6] !== NEXT_HEADER_IPV4) return { kind: 'other', why: `IPv6 next header ${p[6]}` };
  return { kind: 'ipv4', ip: p.subarray(IPV6_HEADER_LENGTH, IPV6_HEADER_LENGTH + u16(p, 4)) };
}

/** The IPv4 packet inside one record of a file of link type `linktype`. */
export function linkPayload(linktype: number, frame: Uint8Array): LinkPayload {
  switch (linktype) {
    case Linktype.RAW:
      if (frame.length > 0 && frame[0]! >> 4 === 4) return { kind: 'ipv4', ip: frame };
      return frame.length > 0 && frame[0]! >> 4 === 6 ? fromIpv6(frame) : { kind: 'other', why: 'not IP' };
    case Linktype.ETHERNET: {
      if (frame.length < 14) return { kind: 'other', why: 'short Ethernet frame' };
      let at = 12;
      let type = u16(frame, at);
      while (type === ETHERTYPE_VLAN && at + 6 <= frame.length) {
        at += 4;
        type = u16(frame, at);
      }
      return fromEthertype(type, frame.subarray(at + 2));
    }
    case Linktype.LINUX_SLL:
      if (frame.length < 16) return { kind: 'other', why: 'short cooked header' };
      return fromEthertype(u16(frame, 14), frame.subarray(16));
    case Linktype.IEEE802_11:
      return ieee80211(frame);
    default:
      throw new Error(`link type ${linktype} is not supported`);
  }
}

/** Whether an 802.11 frame ends with its own right FCS (CRC-32 of the rest, little-endian). */
export function ieee80211FcsOk(frame: Uint8Array): boolean {
  if (frame.length < 14) return false;
  const end = frame.length - 4;
  const fcs =
    (frame[end]! | (frame[end + 1]! << 8) | (frame[end + 2]! << 16) | (frame[end + 3]! << 24)) >>> 0;
  return crc32(frame.subarray(0, end)) === fcs;
}

/**
 * Whether the 802.11 frames of a file carry an FCS: most of them end with a right one (a file
 * without FCS would match by chance once in 2^32 frames).
 */
export function ieee80211HasFcs(records: readonly PcapRecord[]): boolean {
  const ok = records.filter((r) => ieee80211FcsOk(r.data)).length;
  return ok * 2 > records.length;
}

/** An 802.11 data frame: header (24 octets, +6 with four addresses, +2 with QoS), LLC/SNAP. */
function ieee80211(frame: Uint8Array): LinkPayload {
  if (frame.length < 24) return { kind: 'other', why: '802.11 control frame' };
  const fc0 = frame[0]!;
  const flags = frame[1]!;
  const type = (fc0 >> 2) & 3;
  const subtype = fc0 >> 4;
  if (type !== 2) return { kind: 'other', why: `802.11 type ${type}` };
  if (subtype & 0x4) return { kind: 'other', why: '802.11 null data' };
  if (flags & 0x40) return { kind: 'other', why: '802.11 protected frame' };
  let at = 24;
  if ((flags & 3) === 3) at += 6;
  if (subtype & 0x8) at += 2;
  if (frame.length < at + 8) return { kind: 'other', why: 'short 802.11 data frame' };
  if (frame[at] !== 0xaa || frame[at + 1] !== 0xaa || frame[at + 2] !== 0x03) {
    return { kind: 'other', why: 'no LLC/SNAP header' };
  }
  const p = fromEthertype(u16(frame, at + 6), frame.subarray(at + 8));
  return p.kind === 'ipv4' ? { ...p, retry: (flags & 0x08) !== 0 } : p;
}

export interface Ipv4 {
  src: string;
  dst: string;
  protocol: number;
  id: number;
  /** Header checksum over the header is right. */
  checksumOk: boolean;
  /** True for a fragment (MF set or a non-zero offset). */
  fragment: boolean;
  /** The header exactly. */
  header: Uint8Array;
  /** Up to Total Length (link padding and an 802.11 FCS cut off). */
  payload: Uint8Array;
}

const dotted = (b: Uint8Array, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

/** RFC 1071 sum over `bytes`, folded, not complemented. */
function onesSum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length % 2 === 1) sum += bytes[bytes.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * Parse an IPv4 header; throws when it is not one (version, IHL, Total Length beyond the bytes).
 * Bytes after Total Length are dropped, so `payload` is exactly the datagram's.
 */
export function parseIpv4(p: Uint8Array): Ipv4 {
  if (p.length < 20 || p[0]! >> 4 !== 4) throw new Error('not an IPv4 packet');
  const ihl = (p[0]! & 0x0f) * 4;
  const total = u16(p, 2);
  if (ihl < 20 || total < ihl || total > p.length) {
    throw new Error(`IPv4 header length ${ihl} / total length ${total} with ${p.length} bytes`);
  }
  const header = p.subarray(0, ihl);
  const frag = u16(p, 6);
  return {
    src: dotted(p, 12),
    dst: dotted(p, 16),
    protocol: p[9]!,
    id: u16(p, 4),
    checksumOk: onesSum(header) === 0xffff,
    fragment: (frag & 0x2000) !== 0 || (frag & 0x1fff) !== 0,
    header,
    payload: p.subarray(ihl, total),
  };
}

export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  flags: number;
  payload: Uint8Array;
}

export const TcpFlags = { FIN: 0x01, SYN: 0x02, RST: 0x04 } as const;

export function parseTcp(t: Uint8Array): TcpSegment {
  if (t.length < 20) throw new Error('TCP header truncated');
  const off = (t[12]! >> 4) * 4;
  if (off < 20 || off > t.length) throw new Error(`TCP data offset ${off}`);
  return { srcPort: u16(t, 0), dstPort: u16(t, 2), seq: u32(t, 4), flags: t[13]!, payload: t.subarray(off) };
}

/**
 * One direction of a TCP connection, in order. Segments are given as captured; the stream starts
 * at the SYN's sequence number + 1, or (a capture that starts mid-connection) at the first
 * segment carrying data. Bytes already delivered are skipped (retransmissions and overlaps); a
 * segment beyond the next expected byte waits for the gap to be filled.
 */
export class TcpReassembler {
  private next: number | undefined;
  private readonly pending = new Map<number, Uint8Array>();
  private readonly chunks: Uint8Array[] = [];
  /** Segments (or parts) that repeated bytes already delivered. */
  duplicates = 0;
  /** Segments that arrived ahead of a gap (delivered later or never). */
  outOfOrder = 0;

  add(seg: TcpSegment): void {
    if (seg.flags & TcpFlags.SYN) {
      this.next ??= (seg.seq + 1) >>> 0;
      return;
    }
    if (seg.payload.length === 0) return;
    this.next ??= seg.seq;
    const d = (seg.seq - this.next) | 0; // signed distance, wrap-safe
    if (d > 0) {
      this.outOfOrder++;
      if (!this.pending.has(seg.seq)) this.pending.set(seg.seq, seg.payload);
      return;
    }
    if (-d >= seg.payload.length) {
      this.duplicates++;
      return;
    }
    if (d < 0) this.duplicates++;
    this.deliver(seg.payload.subarray(-d));
    this.drain();
  }

  private deliver(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.next = (this.next! + bytes.length) >>> 0;
  }

  private drain(): void {
    for (let progressed = true; progressed; ) {
      progressed = false;
      for (const [seq, bytes] of this.pending) {
        const d = (seq - this.next!) | 0;
        if (d > 0) continue;
        this.pending.delete(seq);
        if (-d < bytes.length) this.deliver(bytes.subarray(-d));
        progressed = true;
      }
    }
  }

  /** Bytes still waiting behind a gap that was never filled. */
  get stranded(): number {
    let n = 0;
    for (const b of this.pending.values()) n += b.length;
    return n;
  }

  /** Everything delivered so far, in order. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  /** The delivered bytes as the chunks they arrived in (for feeding a stream parser). */
  segments(): readonly Uint8Array[] {
    return this.chunks;
  }
}

/** RFC 1071 check of an IPv4 header (true when the stored checksum is right). */
export function ipv4HeaderChecksumOk(header: Uint8Array): boolean {
  return onesSum(header) === 0xffff;
}

/**
 * The IPv4 packets of a capture, in capture order; records without one (another protocol, a
 * link type or header this reader does not take) are skipped.
 */
export function ipv4Packets(pcap: PcapFile): Ipv4[] {
  const out: Ipv4[] = [];
  for (const rec of pcap.records) {
    try {
      const l = linkPayload(pcap.linktype, rec.data);
      if (l.kind === 'ipv4') out.push(parseIpv4(l.ip));
    } catch {
      // not an IPv4 packet this reader can take
    }
  }
  return out;
}

/** One direction of one TCP connection to `serverPort`, reassembled. */
export interface TcpFlow {
  /** "src:port>dst:port". */
  key: string;
  /** The sender's address. */
  src: string;
  /** 'c>s' when the sender is the side connecting to the server port. */
  dir: 'c>s' | 's>c';
  stream: TcpReassembler;
}

/**
 * The TCP flows to and from `serverPort` among `packets` that carry data, in the order of their
 * first data segment.
 */
export function tcpFlows(packets: readonly Ipv4[], serverPort: number): TcpFlow[] {
  const flows = new Map<string, TcpFlow>();
  const withData: TcpFlow[] = [];
  for (const p of packets) {
    if (p.protocol !== 6 || p.fragment) continue;
    let t: TcpSegment;
    try {
      t = parseTcp(p.payload);
    } catch {
      continue;
    }
    const dir = t.dstPort === serverPort ? 'c>s' : t.srcPort === serverPort ? 's>c' : undefined;
    if (!dir) continue;
    const key = `${p.src}:${t.srcPort}>${p.dst}:${t.dstPort}`;
    let f = flows.get(key);
    if (!f) {
      f = { key, src: p.src, dir, stream: new TcpReassembler() };
      flows.set(key, f);
    }
    if (t.payload.length > 0 && !withData.includes(f)) withData.push(f);
    f.stream.add(t);
  }
  return withData;
}
