import { formatIPv4, type IPv4, parseIPv4 } from '../wire/ip.ts';
import { ConfigError, type SourceLocation } from './issues.ts';

/** Most addresses one specification may expand to (a typo like 10.0.0.1-10.9.0.1 is caught). */
export const MAX_IP_SPEC_ADDRESSES = 65536;

/**
 * Parses pptpd's ip-specification (pptpd.conf(5) localip/remoteip; pptpd.c processIPStr), in
 * the order written:
 * - a comma-separated list, no spaces: `192.168.0.234-238,192.168.0.245`;
 * - an entry is one dotted-quad address, or a range with exactly one `-` inside one octet:
 *   `192.168.0.234-238` (last octet) or `192.168-178.1.231` (the second octet runs 168..178,
 *   the others stay) — pptpd accepts the dash in any octet;
 * - extension (pptpd rejects it): a full range `10.0.0.1-10.0.0.9`.
 * Stricter than pptpd: host names are refused (pptpd resolves them once at start-up), and so are
 * octets with leading zeros (inet_addr reads `010` as octal 8), reversed ranges (pptpd silently
 * yields nothing), empty entries and more than MAX_IP_SPEC_ADDRESSES addresses.
 * Throws ConfigError naming `where`.
 */
export function parseIpSpec(spec: string, where: SourceLocation): IPv4[] {
  const fail = (message: string): never => {
    const hint = spec.includes('#') ? ' (pptpd.conf has no comments after a value)' : '';
    throw new ConfigError([
      { severity: 'error', file: where.file, line: where.line, message: message + hint },
    ]);
  };
  if (spec.trim() === '') fail('expected an address list like 192.168.0.234-238,192.168.0.245, got nothing');
  if (/\s/.test(spec)) fail(`spaces are not allowed in the address list "${spec}"`);
  const out: IPv4[] = [];
  for (const entry of spec.split(',')) {
    if (entry === '') fail(`empty entry in the address list "${spec}"`);
    const range = expandEntry(entry, fail);
    if (out.length + range.count > MAX_IP_SPEC_ADDRESSES) {
      fail(`the address list "${spec}" has more than ${MAX_IP_SPEC_ADDRESSES} addresses`);
    }
    for (let k = 0; k < range.count; k++) out.push((range.first + k * range.step) >>> 0);
  }
  return out;
}

interface Expansion {
  first: IPv4;
  count: number;
  /** Distance between consecutive addresses: 1 for the last octet, 256 for the third... */
  step: number;
}

function expandEntry(entry: string, fail: (message: string) => never): Expansion {
  const dashes = entry.split('-').length - 1;
  if (dashes === 0) {
    const ip = parseIPv4(entry);
    if (ip === undefined) fail(badAddress(entry));
    return { first: ip!, count: 1, step: 1 };
  }
  if (dashes > 1) fail(`"${entry}" has more than one "-" (expected a range like 192.168.0.234-238)`);
  const [left, right] = entry.split('-') as [string, string];
  if (left.split('.').length === 4 && right.split('.').length === 4)
    return fullRange(entry, left, right, fail);

  // pptpd form: the dash sits inside one octet, e.g. 192.168.0.234-238 or 192.168-178.1.231.
  const parts = entry.split('.');
  if (parts.length !== 4) fail(`"${entry}" is not a range like 192.168.0.234-238`);
  const at = parts.findIndex((p) => p.includes('-'));
  const [lowText, highText] = parts[at]!.split('-') as [string, string];
  const low = octet(lowText);
  const high = octet(highText);
  if (low === undefined || high === undefined) fail(`"${entry}" is not a range like 192.168.0.234-238`);
  const firstText = parts.map((p, k) => (k === at ? lowText : p)).join('.');
  const first = parseIPv4(firstText);
  if (first === undefined) fail(badAddress(entry));
  if (high! < low!) fail(`the range "${entry}" is reversed (${high} is below ${low})`);
  return { first: first!, count: high! - low! + 1, step: 2 ** (8 * (3 - at)) };
}

function fullRange(entry: string, left: string, right: string, fail: (message: string) => never): Expansion {
  const first = parseIPv4(left);
  const last = parseIPv4(right);
  if (first === undefined) fail(badAddress(left));
  if (last === undefined) fail(badAddress(right));
  if (last! < first!)
    fail(`the range "${entry}" is reversed (${formatIPv4(last!)} is below ${formatIPv4(first!)})`);
  const count = last! - first! + 1;
  if (count > MAX_IP_SPEC_ADDRESSES) {
    fail(`the range "${entry}" has ${count} addresses; the limit is ${MAX_IP_SPEC_ADDRESSES}`);
  }
  return { first: first!, count, step: 1 };
}

function octet(text: string): number | undefined {
  if (!/^\d{1,3}$/.test(text) || (text.length > 1 && text.startsWith('0'))) return undefined;
  const v = Number(text);
  return v <= 255 ? v : undefined;
}

function badAddress(text: string): string {
  if (/^[\d.]+$/.test(text) && /(^|\.)0\d/.test(text)) {
    return `"${text}" has an octet with a leading zero (pptpd would read it as octal); write it without`;
  }
  if (/^[a-zA-Z0-9.-]+$/.test(text) && /[a-zA-Z]/.test(text))
    return `"${text}" is not an IPv4 address (host names are not supported here)`;
  return `"${text}" is not an IPv4 address (expected four numbers 0-255 like 192.168.0.234)`;
}
