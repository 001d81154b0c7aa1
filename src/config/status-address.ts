import { parseIPv4 } from '../wire/ip.ts';

/** Where the status listener (metrics and the status page) listens. */
export interface StatusAddress {
  host: string;
  port: number;
}

export const STATUS_ADDRESS_EXPECTED = 'PORT or ADDR:PORT with an IPv4 address, e.g. 127.0.0.1:9100';

/** "9100" (on 127.0.0.1) or "ADDR:9100"; an IPv4 literal only. Undefined when malformed. */
export function parseStatusAddress(text: string): StatusAddress | undefined {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65_535) return undefined;
  if (m[1] !== undefined && parseIPv4(m[1]) === undefined) return undefined;
  return { host: m[1] ?? '127.0.0.1', port };
}
