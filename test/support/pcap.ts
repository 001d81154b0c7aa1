// Test support: build IPv4 packets (TCP segments, GRE, any protocol) and write them as a pcap file
// with link type 101 (raw IPv4), so that tshark can check our encodings independently.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type IPv4, ipv4ToBytes, parseIPv4 } from '../../src/wire/ip.ts';

/** LINKTYPE_RAW: each record is an IPv4 (or IPv6) packet with no link-layer header. */
export const LINKTYPE_RAW = 101;

export const IpProtocol = { ICMP: 1, TCP: 6, UDP: 17, GRE: 47 } as const;

export interface PcapRecord {
  data: Uint8Array;
  /** Capture time in milliseconds since the epoch; default: 1 ms after the previous record. */
  timeMs?: number;
}

/** A whole pcap file (microsecond timestamps, snaplen 262144). */
export function pcapFile(records: readonly (Uint8Array | PcapRecord)[], linktype = LINKTYPE_RAW): Uint8Array {
  const recs = records.map((r) => (r instanceof Uint8Array ? { data: r } : r));
  const out = new Uint8Array(24 + recs.reduce((n, r) => n + 16 + r.data.length, 0));
  const v = new DataView(out.buffer);
  v.setUint32(0, 0xa1b2c3d4, true); // magic, little-endian file
  v.setUint16(4, 2, true); // version 2.4
  v.setUint16(6, 4, true);
  v.setUint32(16, 262_144, true); // snaplen
  v.setUint32(20, linktype, true);
  let at = 24;
  let t = 1_700_000_000_000;
  for (const r of recs) {
    t = r.timeMs ?? t + 1;
    v.setUint32(at, Math.floor(t / 1000), true);
    v.setUint32(at + 4, Math.round((t % 1000) * 1000), true);
    v.setUint32(at + 8, r.data.length, true);
    v.setUint32(at + 12, r.data.length, true);
    out.set(r.data, at + 16);
    at += 16 + r.data.length;
  }
  return out;
}

/** Write a pcap file at `path` (or into a fresh temporary directory) and return its path. */
export function writePcap(
  records: readonly (Uint8Array | PcapRecord)[],
  path?: string,
  linktype = LINKTYPE_RAW,
): string {
  const file = path ?? join(mkdtempSync(join(tmpdir(), 'poptop-pcap-')), 'capture.pcap');
  writeFileSync(file, pcapFile(records, linktype));
  return file;
}

/** RFC 1071 Internet checksum of `bytes` (plus an optional running sum). */
export function internetChecksum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length % 2 === 1) sum += bytes[bytes.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function addr(a: IPv4 | string): IPv4 {
  if (typeof a === 'number') return a;
  const ip = parseIPv4(a);
  if (ip === undefined) throw new Error(`bad IPv4 address ${a}`);
  return ip;
}

export interface Ipv4Header {
  src: IPv4 | string;
  dst: IPv4 | string;
  protocol: number;
  ttl?: number;
  id?: number;
}

/** An IPv4 packet (20-byte header, DF set, correct header checksum) around any payload. */
export function ipv4Packet(h: Ipv4Header, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  const v = new DataView(p.buffer);
  v.setUint8(0, 0x45);
  v.setUint16(2, p.length);
  v.setUint16(4, h.id ?? 0);
  v.setUint16(6, 0x4000);
  v.setUint8(8, h.ttl ?? 64);
  v.setUint8(9, h.protocol);
  p.set(ipv4ToBytes(addr(h.src)), 12);
  p.set(ipv4ToBytes(addr(h.dst)), 16);
  v.setUint16(10, internetChecksum(p.subarray(0, 20)));
  p.set(payload, 20);
  return p;
}

/** A GRE packet (as produced by a GRE codec) in IPv4 protocol 47. */
export function greInIpv4(gre: Uint8Array, src: IPv4 | string, dst: IPv4 | string): Uint8Array {
  return ipv4Packet({ src, dst, protocol: IpProtocol.GRE }, gre);
}

export const TcpFlag = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

export interface TcpSegment {
  src: IPv4 | string;
  dst: IPv4 | string;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** @default PSH|ACK */
  flags?: number;
  window?: number;
}

/** A TCP segment (20-byte header, correct checksum) in an IPv4 packet. */
export function tcpInIpv4(s: TcpSegment, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const t = new Uint8Array(20 + payload.length);
  const v = new DataView(t.buffer);
  v.setUint16(0, s.srcPort);
  v.setUint16(2, s.dstPort);
  v.setUint32(4, s.seq >>> 0);
  v.setUint32(8, s.ack >>> 0);
  v.setUint8(12, 5 << 4);
  v.setUint8(13, s.flags ?? TcpFlag.PSH | TcpFlag.ACK);
  v.setUint16(14, s.window ?? 65_535);
  t.set(payload, 20);
  const pseudo = new Uint8Array(12);
  pseudo.set(ipv4ToBytes(addr(s.src)), 0);
  pseudo.set(ipv4ToBytes(addr(s.dst)), 4);
  pseudo[9] = IpProtocol.TCP;
  new DataView(pseudo.buffer).setUint16(10, t.length);
  const partial = ~internetChecksum(pseudo) & 0xffff;
  v.setUint16(16, internetChecksum(t, partial));
  return ipv4Packet({ src: s.src, dst: s.dst, protocol: IpProtocol.TCP }, t);
}

export interface TcpEndpoint {
  ip: IPv4 | string;
  port: number;
}

/** Both directions of one TCP connection, keeping sequence numbers consistent so that a dissector
 *  reassembles the payloads as one stream. */
export class TcpStream {
  private readonly a: TcpEndpoint;
  private readonly b: TcpEndpoint;
  private seqA = 1000;
  private seqB = 5000;

  constructor(a: TcpEndpoint, b: TcpEndpoint) {
    this.a = a;
    this.b = b;
  }

  /** SYN, SYN-ACK, ACK from a to b. */
  handshake(): Uint8Array[] {
    const { a, b } = this;
    const out = [
      tcpInIpv4({
        src: a.ip,
        dst: b.ip,
        srcPort: a.port,
        dstPort: b.port,
        seq: this.seqA,
        ack: 0,
        flags: TcpFlag.SYN,
      }),
      tcpInIpv4({
        src: b.ip,
        dst: a.ip,
        srcPort: b.port,
        dstPort: a.port,
        seq: this.seqB,
        ack: this.seqA + 1,
        flags: TcpFlag.SYN | TcpFlag.ACK,
      }),
    ];
    this.seqA++;
    this.seqB++;
    out.push(
      tcpInIpv4({
        src: a.ip,
        dst: b.ip,
        srcPort: a.port,
        dstPort: b.port,
        seq: this.seqA,
        ack: this.seqB,
        flags: TcpFlag.ACK,
      }),
    );
    return out;
  }

  /** A data segment from `from` ('a' or 'b') carrying `payload`. */
  segment(from: 'a' | 'b', payload: Uint8Array): Uint8Array {
    const [s, d] = from === 'a' ? [this.a, this.b] : [this.b, this.a];
    const seq = from === 'a' ? this.seqA : this.seqB;
    const ack = from === 'a' ? this.seqB : this.seqA;
    const pkt = tcpInIpv4({ src: s.ip, dst: d.ip, srcPort: s.port, dstPort: d.port, seq, ack }, payload);
    if (from === 'a') this.seqA = (this.seqA + payload.length) >>> 0;
    else this.seqB = (this.seqB + payload.length) >>> 0;
    return pkt;
  }
}
