import { formatIPv4, type IPv4, parseIPv4 } from '../wire/ip.ts';
import type { IssueList, SourceLocation } from './issues.ts';

/**
 * poptop's native RADIUS keywords in pptpd.conf: the same settings as pppd's `plugin radius.so`
 * with radiusclient.conf and its servers file (aaa/radius/config.ts), without those files.
 *
 *   radius-auth-server 192.0.2.10:1812          # ADDR[:PORT] [SECRET]; repeated: fail-over, in order
 *   radius-auth-server 192.0.2.11
 *   radius-acct-server 192.0.2.10:1813          # none: no accounting
 *   radius-secret-file /etc/poptop/radius-secret  # secrets of the servers without one on their line
 *   radius-timeout 5                             # seconds per try (radiusclient radius_timeout)
 *   radius-retries 3                             # tries per server (radius_retries)
 *   radius-deadtime 0                            # radius_deadtime
 *   radius-nas-identifier vpn1                   # NAS-Identifier
 *   radius-nas-ip 192.0.2.1                      # NAS-IP-Address
 *   radius-bind 192.0.2.1                        # local address of the RADIUS sockets (bindaddr)
 *   radius-dynauth-port 3799                     # Disconnect/CoA port, 0 = off
 *
 * This module checks each value's form; the secrets file is read by aaa/radius/config.ts.
 */
export const RADIUS_KEYWORDS = [
  'radius-auth-server',
  'radius-acct-server',
  'radius-secret-file',
  'radius-timeout',
  'radius-retries',
  'radius-deadtime',
  'radius-nas-identifier',
  'radius-nas-ip',
  'radius-bind',
  'radius-dynauth-port',
] as const;
export type RadiusKeyword = (typeof RADIUS_KEYWORDS)[number];

/** The server keywords may be given more than once (one line per server, in fail-over order). */
export const REPEATABLE_RADIUS_KEYWORDS: ReadonlySet<string> = new Set([
  'radius-auth-server',
  'radius-acct-server',
]);

const SERVER_EXPECTED =
  'ADDR[:PORT] [SECRET] with an IPv4 address, e.g. 192.0.2.10:1812 or 192.0.2.10 the-secret';

export const RADIUS_EXPECTED: Record<RadiusKeyword, string> = {
  'radius-auth-server': `a RADIUS authentication server, ${SERVER_EXPECTED}`,
  'radius-acct-server': `a RADIUS accounting server, ${SERVER_EXPECTED}`,
  'radius-secret-file': 'the path of a file holding the RADIUS shared secret(s)',
  'radius-timeout': 'seconds to wait for one answer, a whole number from 1 to 600',
  'radius-retries': 'tries per server, a whole number from 1 to 100',
  'radius-deadtime': 'seconds a silent server is tried last, a whole number from 0 to 86400',
  'radius-nas-identifier': 'the NAS-Identifier to send, e.g. vpn1',
  'radius-nas-ip': 'the NAS-IP-Address to send, an IPv4 address',
  'radius-bind': 'the local IPv4 address of the RADIUS sockets',
  'radius-dynauth-port': 'the UDP port for Disconnect/CoA requests, a whole number from 0 (off) to 65535',
};

export const RADIUS_DEFAULT_AUTH_PORT = 1812;
export const RADIUS_DEFAULT_ACCT_PORT = 1813;

export interface NativeRadiusServer {
  address: IPv4;
  port: number;
  /** On the line itself; else from radius-secret-file. */
  secret: string | undefined;
  at: SourceLocation;
}

/** What the radius-* keywords of pptpd.conf say; absent numbers take radiusclient's defaults later. */
export interface NativeRadiusConf {
  authServers: NativeRadiusServer[];
  acctServers: NativeRadiusServer[];
  secretFile: { path: string; at: SourceLocation } | undefined;
  timeoutS: number | undefined;
  tries: number | undefined;
  deadtimeS: number | undefined;
  nasIdentifier: string | undefined;
  nasIpAddress: IPv4 | undefined;
  bindAddress: string | undefined;
  dynauthPort: number | undefined;
  /** The first radius-* line: where "RADIUS is configured here" points. */
  at: SourceLocation;
  /** The lines that carry a secret (pptpd.conf is then a secret file too). */
  inlineSecrets: SourceLocation[];
}

interface Line {
  value: string;
  at: SourceLocation;
}

/**
 * The radius-* keywords found in pptpd.conf (`lines`: every occurrence of each, in file order), or
 * undefined when there is none. Errors go to `issues`, each naming its line and what was expected.
 */
export function parseRadiusKeywords(
  lines: ReadonlyMap<RadiusKeyword, Line[]>,
  issues: IssueList,
): NativeRadiusConf | undefined {
  const all = [...lines.values()].flat();
  if (all.length === 0) return undefined;
  const first = all.reduce((a, b) => (b.at.line < a.at.line ? b : a));
  const one = (kw: RadiusKeyword): Line | undefined => lines.get(kw)?.[0];
  const number = (kw: RadiusKeyword, min: number, max: number): number | undefined => {
    const l = one(kw);
    if (!l) return undefined;
    if (!/^\d+$/.test(l.value) || Number(l.value) < min || Number(l.value) > max) {
      issues.error(l.at, `"${kw}" expects ${RADIUS_EXPECTED[kw]}, got "${l.value}"`);
      return undefined;
    }
    return Number(l.value);
  };
  const address = (kw: RadiusKeyword): IPv4 | undefined => {
    const l = one(kw);
    if (!l) return undefined;
    const ip = parseIPv4(l.value);
    if (ip === undefined) issues.error(l.at, `"${kw}" expects ${RADIUS_EXPECTED[kw]}, got "${l.value}"`);
    return ip;
  };

  const inlineSecrets: SourceLocation[] = [];
  const servers = (kw: 'radius-auth-server' | 'radius-acct-server', defaultPort: number) =>
    (lines.get(kw) ?? []).flatMap((l) => {
      const s = parseServerLine(kw, l, defaultPort, issues);
      if (s?.secret !== undefined) inlineSecrets.push(l.at);
      return s ? [s] : [];
    });
  const authServers = servers('radius-auth-server', RADIUS_DEFAULT_AUTH_PORT);
  const acctServers = servers('radius-acct-server', RADIUS_DEFAULT_ACCT_PORT);
  checkRepeats(authServers, 'radius-auth-server', issues);
  checkRepeats(acctServers, 'radius-acct-server', issues);
  if (!lines.has('radius-auth-server')) {
    issues.error(
      first.at,
      `"${[...lines.keys()][0]}" without "radius-auth-server": RADIUS needs at least one authentication server (${RADIUS_EXPECTED['radius-auth-server']})`,
    );
  }

  const nasId = one('radius-nas-identifier');
  const bind = one('radius-bind');
  let bindAddress: string | undefined;
  if (bind) {
    const ip = address('radius-bind');
    if (ip !== undefined) bindAddress = formatIPv4(ip);
  }
  const secretFile = one('radius-secret-file');
  return {
    authServers,
    acctServers,
    secretFile: secretFile ? { path: secretFile.value, at: secretFile.at } : undefined,
    timeoutS: number('radius-timeout', 1, 600),
    tries: number('radius-retries', 1, 100),
    deadtimeS: number('radius-deadtime', 0, 86_400),
    nasIdentifier: nasId?.value,
    nasIpAddress: address('radius-nas-ip'),
    bindAddress,
    dynauthPort: number('radius-dynauth-port', 0, 65_535),
    at: first.at,
    inlineSecrets,
  };
}

/** "ADDR[:PORT] [SECRET]". */
function parseServerLine(
  kw: 'radius-auth-server' | 'radius-acct-server',
  l: Line,
  defaultPort: number,
  issues: IssueList,
): NativeRadiusServer | undefined {
  const words = l.value.split(/[ \t]+/);
  if (words.length > 2) {
    issues.error(
      l.at,
      `"${kw}" expects ${SERVER_EXPECTED}; got ${words.length} words (a secret cannot contain spaces or tabs)`,
    );
    return undefined;
  }
  const [server = '', secret] = words;
  const m = /^([^:]+)(?::([^:]*))?$/.exec(server);
  const ip = m ? parseIPv4(m[1]!) : undefined;
  if (!m || ip === undefined) {
    const why = server.startsWith('[') || server.split(':').length > 2 ? ' (IPv6 is not supported)' : '';
    issues.error(l.at, `"${kw}" expects ${SERVER_EXPECTED}, got "${server}"${why}`);
    return undefined;
  }
  let port = defaultPort;
  if (m[2] !== undefined) {
    if (!/^\d{1,5}$/.test(m[2]) || Number(m[2]) < 1 || Number(m[2]) > 65_535) {
      issues.error(l.at, `"${kw}": the port of "${server}" must be a number from 1 to 65535`);
      return undefined;
    }
    port = Number(m[2]);
  }
  return { address: ip, port, secret, at: l.at };
}

function checkRepeats(list: NativeRadiusServer[], kw: string, issues: IssueList): void {
  list.forEach((s, i) => {
    const earlier = list.slice(0, i).find((e) => e.address === s.address && e.port === s.port);
    if (earlier) {
      issues.error(
        s.at,
        `"${kw}" ${formatIPv4(s.address)}:${s.port} is already given on line ${earlier.at.line}`,
      );
    }
  });
}
