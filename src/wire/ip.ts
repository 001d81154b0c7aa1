/** IPv4 addresses are uint32 numbers (host order) on the hot path; strings only at the edges. */
export type IPv4 = number;

export function parseIPv4(text: string): IPv4 | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text.trim());
  if (!m) return undefined;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const part = Number(m[i]);
    if (part > 255 || (m[i]!.length > 1 && m[i]!.startsWith('0'))) return undefined;
    v = v * 256 + part;
  }
  return v >>> 0;
}

export function formatIPv4(ip: IPv4): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

export function ipv4ToBytes(ip: IPv4): Uint8Array {
  return new Uint8Array([ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255]);
}

export function ipv4FromBytes(b: Uint8Array, offset = 0): IPv4 {
  return ((b[offset]! << 24) | (b[offset + 1]! << 16) | (b[offset + 2]! << 8) | b[offset + 3]!) >>> 0;
}

/** IPv4 header (RFC 791): the fields the data path reads, as named offsets. */
export const IPV4_HEADER_MIN = 20;
export const IPV4_SOURCE_OFFSET = 12;
export const IPV4_DESTINATION_OFFSET = 16;

/** The IP version in the first octet (4 or 6 for a well-formed packet); 0 for an empty one. */
export function ipVersion(packet: Uint8Array): number {
  return packet.length > 0 ? packet[0]! >> 4 : 0;
}

/** The netmask of a prefix length 0..32, as an IPv4 number (0 for /0, 0xffffffff for /32). */
export function prefixMask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

/** Whether `ip` lies in network/prefixLength. */
export function inPrefix(ip: IPv4, network: IPv4, prefixLength: number): boolean {
  return (ip & prefixMask(prefixLength)) >>> 0 === network;
}

/** Whether two prefixes share an address: the shorter one contains the other's network. */
export function prefixesOverlap(a: IPv4, aLength: number, b: IPv4, bLength: number): boolean {
  const mask = prefixMask(Math.min(aLength, bLength));
  return (a & mask) >>> 0 === (b & mask) >>> 0;
}

/** "10.1.0.0/16". */
export function formatPrefix(network: IPv4, prefixLength: number): string {
  return `${formatIPv4(network)}/${prefixLength}`;
}
