/**
 * A small pcap reader for seeding the fuzz corpora from real captures: classic pcap files (either
 * byte order, micro- or nanosecond), link types Ethernet (with 802.1Q tags), raw IPv4, Linux cooked
 * (SLL) and 802.11 data frames with LLC/SNAP. Yields the IPv4 packets; tcpSegments() and
 * grePackets() pick out what the PPTP layers carry. No reassembly beyond ordering by sequence number.
 */

export interface Ipv4Packet {
  src: string;
  dst: string;
  protocol: number;
  /** The IP payload (bounded by the IP Total Length and the captured bytes). */
  payload: Uint8Array;
}

const ipText = (b: Uint8Array, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

/** The IPv4 packets of a pcap file, in capture order (other network protocols are skipped). */
export function readPcapIpv4(file: Uint8Array): Ipv4Packet[] {
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (file.length < 24) throw new Error('not a pcap file: too short');
  const magicLe = v.getUint32(0, true);
  const magicBe = v.getUint32(0, false);
  const known = [0xa1b2c3d4, 0xa1b23c4d];
  let le: boolean;
  if (known.includes(magicLe)) le = true;
  else if (known.includes(magicBe)) le = false;
  else throw new Error('not a classic pcap file');
  const linktype = v.getUint32(20, le);
  const out: Ipv4Packet[] = [];
  for (let at = 24; at + 16 <= file.length; ) {
    const caplen = v.getUint32(at + 8, le);
    const rec = file.subarray(at + 16, Math.min(file.length, at + 16 + caplen));
    at += 16 + caplen;
    const ipAt = networkOffset(rec, linktype);
    if (ipAt === undefined) continue;
    const ip = rec.subarray(ipAt);
    if (ip.length < 20 || ip[0]! >> 4 !== 4) continue;
    const ihl = (ip[0]! & 0x0f) * 4;
    const total = Math.min(ip.length, (ip[2]! << 8) | ip[3]!);
    const fragment = ((ip[6]! << 8) | ip[7]!) & 0x3fff;
    if (ihl < 20 || total < ihl || fragment !== 0) continue;
    out.push({
      src: ipText(ip, 12),
      dst: ipText(ip, 16),
      protocol: ip[9]!,
      payload: ip.subarray(ihl, total),
    });
  }
  return out;
}

/** Where the IPv4 header starts in one link-layer record, or undefined if it is not IPv4. */
function networkOffset(rec: Uint8Array, linktype: number): number | undefined {
  const u16 = (at: number) => ((rec[at] ?? 0) << 8) | (rec[at + 1] ?? 0);
  switch (linktype) {
    case 1: {
      // Ethernet II, possibly with 802.1Q/802.1ad tags.
      let at = 12;
      while (u16(at) === 0x8100 || u16(at) === 0x88a8) at += 4;
      return u16(at) === 0x0800 ? at + 2 : undefined;
    }
    case 101:
      return 0;
    case 113:
      // Linux cooked capture: 16-byte header, protocol at 14.
      return u16(14) === 0x0800 ? 16 : undefined;
    case 105: {
      // 802.11: data frames only (type 2), 24-byte header (+6 with 4 addresses, +2 with QoS), LLC/SNAP.
      const fc0 = rec[0] ?? 0;
      const fc1 = rec[1] ?? 0;
      if (((fc0 >> 2) & 3) !== 2 || (fc0 >> 4) & 4) return undefined; // not data, or a null frame
      let at = 24 + ((fc1 & 3) === 3 ? 6 : 0) + (fc0 & 0x80 ? 2 : 0);
      if (fc1 & 0x40) return undefined; // protected
      if (rec[at] !== 0xaa || rec[at + 1] !== 0xaa || rec[at + 2] !== 0x03) return undefined;
      at += 6;
      return u16(at) === 0x0800 ? at + 2 : undefined;
    }
    default:
      return undefined;
  }
}

export interface TcpSegment {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  syn: boolean;
  payload: Uint8Array;
}

export function tcpSegments(packets: readonly Ipv4Packet[]): TcpSegment[] {
  const out: TcpSegment[] = [];
  for (const p of packets) {
    if (p.protocol !== 6 || p.payload.length < 20) continue;
    const b = p.payload;
    const offset = (b[12]! >> 4) * 4;
    if (offset < 20 || offset > b.length) continue;
    out.push({
      src: p.src,
      dst: p.dst,
      srcPort: (b[0]! << 8) | b[1]!,
      dstPort: (b[2]! << 8) | b[3]!,
      seq: ((b[4]! << 24) | (b[5]! << 16) | (b[6]! << 8) | b[7]!) >>> 0,
      syn: (b[13]! & 0x02) !== 0,
      payload: b.subarray(offset),
    });
  }
  return out;
}

/** One direction of one TCP connection: its data segments in sequence order, duplicates dropped. */
export interface TcpFlow {
  key: string;
  /** 'c>s' when the sender is the side connecting to `serverPort`. */
  dir: 'c>s' | 's>c';
  segments: Uint8Array[];
}

export function tcpFlows(segments: readonly TcpSegment[], serverPort: number): TcpFlow[] {
  const flows = new Map<string, { dir: 'c>s' | 's>c'; bySeq: Map<number, Uint8Array> }>();
  for (const s of segments) {
    if (s.payload.length === 0) continue;
    let dir: 'c>s' | 's>c';
    if (s.dstPort === serverPort) dir = 'c>s';
    else if (s.srcPort === serverPort) dir = 's>c';
    else continue;
    const key = `${s.src}:${s.srcPort}>${s.dst}:${s.dstPort}`;
    let f = flows.get(key);
    if (!f) {
      f = { dir, bySeq: new Map() };
      flows.set(key, f);
    }
    if (!f.bySeq.has(s.seq)) f.bySeq.set(s.seq, s.payload);
  }
  return [...flows].map(([key, f]) => ({
    key,
    dir: f.dir,
    // Sequence order relative to the first segment seen (wrap-around safe for short captures).
    segments: [...f.bySeq]
      .sort((a, b) => ((a[0] - [...f.bySeq.keys()][0]!) >>> 0) - ((b[0] - [...f.bySeq.keys()][0]!) >>> 0))
      .map(([, p]) => p),
  }));
}

/** GRE packets (IP protocol 47) with their IP addresses. */
export function grePackets(packets: readonly Ipv4Packet[]): Ipv4Packet[] {
  return packets.filter((p) => p.protocol === 47);
}
