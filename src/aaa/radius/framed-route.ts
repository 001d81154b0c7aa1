import { quote } from '../../util/escape.ts';
import { formatIPv4, formatPrefix, type IPv4, parseIPv4, prefixMask } from '../../wire/ip.ts';

/**
 * Framed-Route (RFC 2865 §5.22): a subnet behind the client, to be routed to it for the life of the
 * session. The text is `destination[/length] [gateway [metric ...]]`:
 *
 *   "192.0.2.0/24"                   the subnet, through the client
 *   "192.0.2.0/24 0.0.0.0 5"         the same, metric 5 (0.0.0.0: the client's own address)
 *   "10.0.0.0 0.0.0.0 1"             no length: the class of the address decides (/8, /16, /24)
 *   "192.0.2.0 255.255.255.0 0.0.0.0"  a netmask after the destination (Cisco's form)
 *
 * as the RFC describes it and accel-ppp reads it. Only the first metric is used (the RFC allows
 * several; "-1" marks an unused one). A second field is a netmask only when the destination has no
 * length and the field is a contiguous mask of at least 255.0.0.0: no gateway can be such an
 * address. The gateway must be 0.0.0.0 or the client's tunnel
 * address: every framed route leaves through the one TUN device to the session that asked for it,
 * so a third address has no meaning here (the caller checks, since it alone knows the address).
 */
export interface FramedRoute {
  /** The network, host bits zero. */
  readonly network: IPv4;
  readonly prefixLength: number;
  /** 0: the client's tunnel address. */
  readonly gateway: IPv4;
  /** The kernel route's metric (priority). */
  readonly metric: number;
}

/** The largest metric accepted (the kernel takes 32 bits; no routing daemon needs more than this). */
const MAX_METRIC = 0xffff_ffff;

/** The classful length RFC 2865 §5.22 gives a destination written without one; undefined for D and E. */
function classfulLength(ip: IPv4): number | undefined {
  const first = ip >>> 24;
  if (first < 128) return 8;
  if (first < 192) return 16;
  if (first < 224) return 24;
  return undefined;
}

/** The length of a contiguous netmask of at least 255.0.0.0 written as an address, else undefined. */
function netmaskLength(text: string): number | undefined {
  const m = parseIPv4(text);
  if (m === undefined || m >>> 24 !== 255) return undefined;
  for (let len = 8; len <= 32; len++) if (prefixMask(len) === m) return len;
  return undefined;
}

/**
 * Parse one Framed-Route value. Returns the route, or the problem in words with the value quoted
 * (escaped: it came from the network).
 */
export function parseFramedRoute(text: string): FramedRoute | string {
  const bad = (why: string) => `Framed-Route ${quote(text, 80)} ${why}`;
  const fields = text.trim().split(/[ \t]+/);
  if (fields.length === 0 || fields[0] === '') return bad('is empty');
  const [dest = '', ...rest] = fields;
  const slash = dest.indexOf('/');
  const mask = slash < 0 && rest[0] !== undefined ? netmaskLength(rest[0]) : undefined;
  if (mask !== undefined) rest.shift();
  const [gw, ...metrics] = rest;
  const addrText = slash < 0 ? dest : dest.slice(0, slash);
  const address = parseIPv4(addrText);
  if (address === undefined) return bad('does not start with an IPv4 destination (a.b.c.d[/length])');
  let prefixLength: number | undefined;
  if (mask !== undefined) prefixLength = mask;
  else if (slash < 0) {
    prefixLength = classfulLength(address);
    if (prefixLength === undefined) return bad('has no /length and a class D or E destination');
  } else {
    const lenText = dest.slice(slash + 1);
    if (!/^\d{1,2}$/.test(lenText) || Number(lenText) > 32) return bad('has a length that is not 0 to 32');
    prefixLength = Number(lenText);
  }
  if ((address & ~prefixMask(prefixLength)) >>> 0 !== 0) {
    return bad(
      `has host bits set: ${formatIPv4(address)} is not the start of a /${prefixLength} (${formatPrefix((address & prefixMask(prefixLength)) >>> 0, prefixLength)} is)`,
    );
  }
  let gateway = 0;
  if (gw !== undefined) {
    const g = parseIPv4(gw);
    if (g === undefined) return bad('has a gateway that is not an IPv4 address');
    gateway = g;
  }
  let metric = 0;
  if (metrics.length > 0) {
    const m = metrics[0]!;
    // -1 is how RFC 2865's example marks an unused metric; anything else must be a number.
    if (m !== '-1') {
      if (!/^\d{1,10}$/.test(m) || Number(m) > MAX_METRIC) return bad('has a metric that is not a number');
      metric = Number(m);
    }
  }
  return { network: address, prefixLength, gateway, metric };
}

/** "10.1.0.0/16" with " metric 5" when there is one. */
export function describeFramedRoute(r: FramedRoute): string {
  return `${formatPrefix(r.network, r.prefixLength)}${r.metric ? ` metric ${r.metric}` : ''}`;
}
