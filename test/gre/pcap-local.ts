/**
 * A minimal pcap writer for the tshark cross-check (classic libpcap format, LINKTYPE_RAW = 101:
 * each record is a bare IPv4 packet). Local to test/gre until a shared test/support helper exists.
 */
const LINKTYPE_RAW = 101;
const IPPROTO_GRE = 47;

/** Wrap `payload` in an IPv4 header (no options, valid header checksum) from `src` to `dst`. */
export function ipv4Packet(src: number, dst: number, protocol: number, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  const v = new DataView(p.buffer);
  v.setUint8(0, 0x45); // version 4, IHL 5
  v.setUint16(2, p.length);
  v.setUint16(6, 0x4000); // DF
  v.setUint8(8, 64); // TTL
  v.setUint8(9, protocol);
  v.setUint32(12, src >>> 0);
  v.setUint32(16, dst >>> 0);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += v.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  v.setUint16(10, ~sum & 0xffff);
  p.set(payload, 20);
  return p;
}

export function grePacketInIpv4(src: number, dst: number, gre: Uint8Array): Uint8Array {
  return ipv4Packet(src, dst, IPPROTO_GRE, gre);
}

/** A whole pcap file holding `packets` (raw IPv4), one per second from t=1. */
export function pcapFile(packets: readonly Uint8Array[]): Uint8Array {
  const size = 24 + packets.reduce((n, p) => n + 16 + p.length, 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0xa1b2c3d4, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setUint32(16, 65535, true); // snaplen
  v.setUint32(20, LINKTYPE_RAW, true);
  let at = 24;
  packets.forEach((p, i) => {
    v.setUint32(at, i + 1, true);
    v.setUint32(at + 8, p.length, true);
    v.setUint32(at + 12, p.length, true);
    out.set(p, at + 16);
    at += 16 + p.length;
  });
  return out;
}
