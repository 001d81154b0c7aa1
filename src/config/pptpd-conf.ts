import { formatIPv4, type IPv4, parseIPv4 } from '../wire/ip.ts';
import { parseIpSpec } from './ip-spec.ts';
import { ConfigError, type ConfigIssue, didYouMean, IssueList, type SourceLocation } from './issues.ts';
import {
  type NativeRadiusConf,
  parseRadiusKeywords,
  RADIUS_EXPECTED,
  RADIUS_KEYWORDS,
  type RadiusKeyword,
  REPEATABLE_RADIUS_KEYWORDS,
} from './radius-keywords.ts';
import { parseStatusAddress, STATUS_ADDRESS_EXPECTED, type StatusAddress } from './status-address.ts';

export { parseIpSpec } from './ip-spec.ts';

/**
 * /etc/pptpd.conf, read the way pptpd 1.4 reads it (configfile.c read_config_file, pptpd.c):
 * - one `keyword value` per line; the value is the rest of the line after the white space that
 *   follows the keyword, trailing spaces and tabs removed. Keywords are case-sensitive.
 * - `#` starts a comment only as the FIRST character of a line; there are no end-of-line
 *   comments (`remoteip 10.0.0.2 # lab` makes "10.0.0.2 # lab" the value, which fails).
 * - pptpd ignores a line that starts with a space or tab (logging an error); we ignore it with a
 *   warning, and silently when it is an indented comment.
 * - the FIRST occurrence of a keyword wins (pptpd scans the file for each keyword and stops at
 *   the first match); we warn about the later ones.
 * - unknown keywords: pptpd ignores them silently; we warn with a did-you-mean.
 * - lines over 510 characters: pptpd ignores them; we accept them with a warning.
 * Differences that make us stricter: malformed numbers and addresses are errors (pptpd's atoi
 * reads "abc" as 0 and falls back to the default).
 */
export interface PptpdConf {
  /**
   * The pppd options file (`option`). pppd reads /etc/ppp/options first, then this file, so the
   * server should load both, in that order. undefined: only /etc/ppp/options.
   */
  optionFile: string | undefined;
  /** Our addresses, in order; one address serves every session. Empty with `delegate`. */
  localIps: IPv4[];
  /** The client address pool, in order (at most `connections` entries). Empty with `delegate`. */
  remoteIps: IPv4[];
  /** Address to listen on (`listen`); undefined: all addresses. */
  listen: IPv4 | undefined;
  /** Most concurrent sessions: `connections` (default 100), reduced to the addresses available. */
  connections: number;
  debug: boolean;
  /** Seconds to wait for the first PPTP message on a new connection (default 10). */
  stimeout: number;
  /** Do not pass the client's address to pppd as ipparam. */
  noipparam: boolean;
  /** Record sessions in wtmp (`last` shows VPN users), as pptpd's logwtmp plugin does. */
  logwtmp: boolean;
  /** poptop's `single-session`: one session per user name; a second login is refused or replaces the first. */
  singleSession: 'off' | 'deny' | 'replace';
  /** `bcrelay IF`: relay UDP broadcasts received on LAN interface IF to every client; undefined: off. */
  bcrelay: string | undefined;
  /** Addresses come from the secrets file / RADIUS instead of localip/remoteip. */
  delegate: boolean;
  pidfile: string;
  /** poptop's own `status ADDR:PORT`: metrics and the status page; undefined: off. */
  status: StatusAddress | undefined;
  /** poptop's own `workers N|auto`: processes sharing the sessions (server/workers/); default auto. */
  workers: number | 'auto';
  /** poptop's limits on connections still setting up (see GUARD_KEYWORDS); all defaulted. */
  guard: GuardLimits;
  /** poptop's login back-off (`auth-fail-limit`, `auth-lockout`, `auth-fail-window`). */
  authBackoff: AuthBackoffConf;
  /** poptop's native RADIUS keywords (`radius-auth-server`...); undefined when none is used. */
  radius: NativeRadiusConf | undefined;
  /** Where each keyword that was used was found, for later messages. */
  sources: Partial<Record<PptpdKeyword, SourceLocation>>;
}

export const PPTPD_DEFAULTS = {
  connections: 100,
  stimeout: 10,
  pidfile: '/var/run/pptpd.pid',
  /** pptpd's built-in lists when localip/remoteip are absent (defaults.h). */
  localip: '192.168.0.1-100',
  remoteip: '192.168.1.1-100',
} as const;

/**
 * poptop's own keywords against connections that never finish setting up (floods, slow or
 * half-open clients). pptpd has none of these; they follow pptpd.conf's syntax, but a value
 * outside the range (0 included) is an error rather than "the default".
 */
export interface GuardLimits {
  /** Control connections from one address not yet authenticated (`max-unauth-per-source`). */
  maxUnauthPerSource: number;
  /** Calls being set up (placed, IPCP not yet up) from one address (`max-setups-per-source`). */
  maxSetupsPerSource: number;
  /** Unauthenticated control connections in all (`max-unauth`); default max(256, connections). */
  maxUnauth: number;
  /** Seconds from TCP accept to a placed call (`call-deadline`). */
  callDeadlineS: number;
  /** Seconds from the call to IPCP up (`setup-deadline`). */
  setupDeadlineS: number;
  /** Bytes queued for one control connection before we stop reading / drop it (`control-write-buffer`). */
  controlWriteBufferBytes: number;
}

/** The login back-off keywords (the rest of its settings are fixed; see aaa/login-throttle.ts). */
export interface AuthBackoffConf {
  /** Failed logins from one address within failWindowS that lock it out (`auth-fail-limit`). */
  failLimit: number;
  /** Seconds of the first lockout (`auth-lockout`); doubled for each further one, up to 1 hour. */
  lockoutS: number;
  /** Seconds a failure counts (`auth-fail-window`). */
  failWindowS: number;
}

interface RangedSpec {
  min: number;
  max: number;
  fallback: number;
  expected: string;
  /** Accept a k/K (×1024) or m/M (×1048576) suffix. */
  sizeSuffix?: boolean;
}

const GUARD_KEYWORDS = {
  'max-unauth-per-source': { min: 1, max: 65_535, fallback: 16, expected: 'a number of connections' },
  'max-setups-per-source': { min: 1, max: 65_535, fallback: 8, expected: 'a number of calls' },
  'max-unauth': { min: 1, max: 1_000_000, fallback: 256, expected: 'a number of connections' },
  'call-deadline': { min: 1, max: 3600, fallback: 30, expected: 'a number of seconds' },
  'setup-deadline': { min: 1, max: 3600, fallback: 60, expected: 'a number of seconds' },
  'control-write-buffer': {
    min: 4096,
    max: 16 * 1024 * 1024,
    fallback: 64 * 1024,
    expected: 'a number of bytes (a k or m suffix multiplies by 1024 or 1048576)',
    sizeSuffix: true,
  },
  'auth-fail-limit': { min: 1, max: 1000, fallback: 10, expected: 'a number of failed logins' },
  'auth-lockout': { min: 1, max: 86_400, fallback: 300, expected: 'a number of seconds' },
  'auth-fail-window': { min: 1, max: 86_400, fallback: 600, expected: 'a number of seconds' },
} as const satisfies Record<string, RangedSpec>;
type GuardKeyword = keyof typeof GUARD_KEYWORDS;

/** The defaults of poptop's own keywords (max-unauth: the larger of this and `connections`). */
export const GUARD_DEFAULTS: Readonly<Record<GuardKeyword, number>> = Object.freeze(
  Object.fromEntries(Object.entries(GUARD_KEYWORDS).map(([k, v]) => [k, v.fallback])) as Record<
    GuardKeyword,
    number
  >,
);

/** Most worker processes (`workers`): each holds up to its descriptor limit of sessions. */
export const MAX_WORKERS = 64;

/** `workers` (pptpd.conf) and `--workers`: "auto" or 1 to MAX_WORKERS; undefined when neither. */
export function parseWorkers(text: string): number | 'auto' | undefined {
  if (text === 'auto') return 'auto';
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  return n >= 1 && n <= MAX_WORKERS ? n : undefined;
}

/** pptpd's line limit (MAX_CONFIG_STRING_SIZE 512 less the newline and the terminator). */
const MAX_LINE = 510;

const FLAG_KEYWORDS = ['debug', 'noipparam', 'logwtmp', 'delegate'] as const;
const VALUE_KEYWORDS = [
  'option',
  'localip',
  'remoteip',
  'listen',
  'connections',
  'stimeout',
  'speed',
  'pidfile',
  'bcrelay',
  'ppp',
  'single-session',
  'status',
  'workers',
  ...(Object.keys(GUARD_KEYWORDS) as GuardKeyword[]),
  ...RADIUS_KEYWORDS,
] as const;
export type PptpdKeyword = (typeof FLAG_KEYWORDS)[number] | (typeof VALUE_KEYWORDS)[number];

const EXPECTED: Record<(typeof VALUE_KEYWORDS)[number], string> = {
  option: 'the path of a pppd options file',
  localip: 'an address list like 192.168.0.1 or 192.168.0.234-238,192.168.0.245',
  remoteip: 'an address list like 192.168.0.234-238,192.168.0.245',
  listen: 'an IPv4 address',
  connections: 'a number of connections',
  stimeout: 'a number of seconds',
  speed: 'a line speed',
  pidfile: 'a file path',
  bcrelay: 'the name of the LAN interface whose UDP broadcasts go to the clients, like eth1',
  ppp: 'the path of pppd',
  'single-session': '"deny" (refuse a second login of the same user) or "replace" (end the older session)',
  status: STATUS_ADDRESS_EXPECTED,
  workers: `"auto" (one per processor) or a number of processes from 1 to ${MAX_WORKERS}`,
  ...RADIUS_EXPECTED,
  ...(Object.fromEntries(Object.entries(GUARD_KEYWORDS).map(([k, v]) => [k, v.expected])) as Record<
    GuardKeyword,
    string
  >),
};

interface Setting {
  value: string;
  at: SourceLocation;
}

/** Parses pptpd.conf text. Throws ConfigError listing every error; returns warnings and notes. */
export function parsePptpdConf(
  text: string,
  fileName: string,
): { config: PptpdConf; warnings: ConfigIssue[] } {
  const issues = new IssueList();
  const repeats = new Map<PptpdKeyword, Setting[]>();
  const settings = readSettings(text, fileName, issues, repeats);
  const config = buildConfig(settings, repeats, fileName, issues);
  return { config, warnings: issues.finish() };
}

/**
 * Each keyword's first line (pptpd's rule); `repeats` gets the later lines of the keywords that may
 * be repeated (the RADIUS servers).
 */
function readSettings(
  text: string,
  file: string,
  issues: IssueList,
  repeats: Map<PptpdKeyword, Setting[]>,
): Map<PptpdKeyword, Setting> {
  const known = new Set<string>([...FLAG_KEYWORDS, ...VALUE_KEYWORDS]);
  const settings = new Map<PptpdKeyword, Setting>();
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const at = { file, line: index + 1 };
    const line = raw.replace(/\r$/, '').replace(/[ \t]+$/, '');
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (!line.trimStart().startsWith('#')) {
        issues.warning(at, 'line starts with white space; pptpd ignores such lines, and so do we');
      }
      return;
    }
    if (line.length > MAX_LINE) {
      issues.warning(at, `line is longer than ${MAX_LINE} characters; pptpd would ignore it (we accept it)`);
    }
    // The keyword runs to the first space or tab (as in pptpd); any other character, a form feed or a
    // carriage return inside the line included, is part of the keyword or the value.
    const m = /^([^ \t]+)(?:[ \t]+([\s\S]*))?$/.exec(line)!;
    const keyword = m[1]!;
    const value = m[2] ?? '';
    if (!known.has(keyword)) {
      issues.warning(at, `unknown keyword "${keyword}" ignored${didYouMean(keyword, known)}`);
      return;
    }
    const kw = keyword as PptpdKeyword;
    const first = settings.get(kw);
    if (first && REPEATABLE_RADIUS_KEYWORDS.has(kw)) {
      repeats.set(kw, [...(repeats.get(kw) ?? []), { value, at }]);
      return;
    }
    if (first) {
      issues.warning(
        at,
        `"${kw}" was already set on line ${first.at.line}; pptpd uses the first one, so this is ignored`,
      );
      return;
    }
    settings.set(kw, { value, at });
  });
  return settings;
}

function buildConfig(
  settings: Map<PptpdKeyword, Setting>,
  repeats: Map<PptpdKeyword, Setting[]>,
  file: string,
  issues: IssueList,
): PptpdConf {
  const sources: PptpdConf['sources'] = {};
  for (const [kw, s] of settings) {
    sources[kw] = s.at;
    const isFlag = (FLAG_KEYWORDS as readonly string[]).includes(kw);
    if (isFlag && s.value !== '') issues.warning(s.at, `"${kw}" takes no value; "${s.value}" is ignored`);
    if (!isFlag && s.value === '') {
      issues.error(s.at, `"${kw}" needs a value (${EXPECTED[kw as (typeof VALUE_KEYWORDS)[number]]})`);
      settings.delete(kw);
    }
  }
  const get = (kw: PptpdKeyword): Setting | undefined => settings.get(kw);

  const logwtmp = get('logwtmp');
  const single = get('single-session');
  let singleSession: PptpdConf['singleSession'] = 'off';
  if (single) {
    if (single.value === 'deny' || single.value === 'replace') singleSession = single.value;
    else
      issues.error(
        single.at,
        `"single-session" expects ${EXPECTED['single-session']}, got "${single.value}"`,
      );
  }
  const bcrelaySetting = get('bcrelay');
  let bcrelay: string | undefined;
  if (bcrelaySetting) {
    // Linux interface names: 1-15 bytes, no white space or '/', not "." or ".." (dev_valid_name).
    const name = bcrelaySetting.value;
    if (/^[^\s/:]{1,15}$/.test(name) && name !== '.' && name !== '..') bcrelay = name;
    else
      issues.error(
        bcrelaySetting.at,
        `"bcrelay" expects ${EXPECTED.bcrelay} (at most 15 characters, no spaces, "/" or ":"), got "${name}"`,
      );
  }
  const speed = get('speed');
  if (speed) issues.note(speed.at, '"speed" has no meaning without a serial line; ignored');
  const ppp = get('ppp');
  if (ppp) issues.note(ppp.at, `"ppp ${ppp.value}" ignored: poptop runs PPP itself, no pppd is started`);

  const configured = positiveInt('connections', get('connections'), PPTPD_DEFAULTS.connections, issues);
  const listen = get('listen');
  let listenIp: IPv4 | undefined;
  if (listen) {
    listenIp = parseIPv4(listen.value);
    if (listenIp === undefined)
      issues.error(listen.at, `"listen" expects ${EXPECTED.listen}, got "${listen.value}"`);
  }
  const statusSetting = get('status');
  const status = statusSetting ? parseStatusAddress(statusSetting.value) : undefined;
  if (statusSetting && !status)
    issues.error(statusSetting.at, `"status" expects ${EXPECTED.status}, got "${statusSetting.value}"`);
  const workersSetting = get('workers');
  let workers: PptpdConf['workers'] = 'auto';
  if (workersSetting) {
    const v = workersSetting.value;
    const parsed = parseWorkers(v);
    if (parsed !== undefined) workers = parsed;
    else issues.error(workersSetting.at, `"workers" expects ${EXPECTED.workers}, got "${v}"`);
  }
  const delegate = get('delegate') !== undefined;
  const { localIps, remoteIps, connections } = delegate
    ? delegatedAddresses(settings, configured, issues)
    : poolAddresses(settings, file, configured, issues);

  return {
    optionFile: get('option')?.value,
    localIps,
    remoteIps,
    listen: listenIp,
    connections,
    debug: get('debug') !== undefined,
    stimeout: positiveInt('stimeout', get('stimeout'), PPTPD_DEFAULTS.stimeout, issues),
    noipparam: get('noipparam') !== undefined,
    logwtmp: logwtmp !== undefined,
    singleSession,
    bcrelay,
    delegate,
    pidfile: get('pidfile')?.value ?? PPTPD_DEFAULTS.pidfile,
    status,
    workers,
    guard: guardLimits(get, connections, issues),
    authBackoff: {
      failLimit: ranged('auth-fail-limit', get('auth-fail-limit'), issues),
      lockoutS: ranged('auth-lockout', get('auth-lockout'), issues),
      failWindowS: ranged('auth-fail-window', get('auth-fail-window'), issues),
    },
    radius: radiusKeywords(settings, repeats, issues),
    sources,
  };
}

function radiusKeywords(
  settings: Map<PptpdKeyword, Setting>,
  repeats: Map<PptpdKeyword, Setting[]>,
  issues: IssueList,
): NativeRadiusConf | undefined {
  const lines = new Map<RadiusKeyword, Setting[]>();
  for (const kw of RADIUS_KEYWORDS) {
    // The first line is gone when its value was missing (an error already).
    const all = [...(settings.has(kw) ? [settings.get(kw)!] : []), ...(repeats.get(kw) ?? [])];
    if (all.length > 0) lines.set(kw, all);
  }
  return parseRadiusKeywords(lines, issues);
}

function guardLimits(
  get: (kw: PptpdKeyword) => Setting | undefined,
  connections: number,
  issues: IssueList,
): GuardLimits {
  const limits: GuardLimits = {
    maxUnauthPerSource: ranged('max-unauth-per-source', get('max-unauth-per-source'), issues),
    maxSetupsPerSource: ranged('max-setups-per-source', get('max-setups-per-source'), issues),
    maxUnauth: get('max-unauth')
      ? ranged('max-unauth', get('max-unauth'), issues)
      : Math.max(GUARD_KEYWORDS['max-unauth'].fallback, connections),
    callDeadlineS: ranged('call-deadline', get('call-deadline'), issues),
    setupDeadlineS: ranged('setup-deadline', get('setup-deadline'), issues),
    controlWriteBufferBytes: ranged('control-write-buffer', get('control-write-buffer'), issues),
  };
  const stimeout = get('stimeout');
  const callDeadline = get('call-deadline');
  const startTimeout =
    /^\d+$/.test(stimeout?.value ?? '') && Number(stimeout!.value) > 0
      ? Number(stimeout!.value)
      : PPTPD_DEFAULTS.stimeout;
  if (callDeadline && limits.callDeadlineS < startTimeout) {
    issues.warning(
      callDeadline.at,
      `"call-deadline ${limits.callDeadlineS}" is shorter than stimeout (${startTimeout} s): a client may be cut off before its start timeout is over`,
    );
  }
  const perSource = get('max-unauth-per-source') ?? get('max-unauth');
  if (perSource && limits.maxUnauthPerSource > limits.maxUnauth) {
    issues.warning(
      perSource.at,
      `max-unauth-per-source (${limits.maxUnauthPerSource}) is above max-unauth (${limits.maxUnauth}); the global limit applies first`,
    );
  }
  return limits;
}

/** A poptop keyword's whole number within its range (its default when absent; an error otherwise). */
function ranged(name: GuardKeyword, s: Setting | undefined, issues: IssueList): number {
  const spec: RangedSpec = GUARD_KEYWORDS[name];
  if (!s) return spec.fallback;
  const m = (spec.sizeSuffix ? /^(\d+)([kKmM]?)$/ : /^(\d+)()$/).exec(s.value);
  const range = `${spec.min} to ${spec.max}`;
  if (!m) {
    issues.error(s.at, `"${name}" expects ${spec.expected}, a whole number from ${range}, got "${s.value}"`);
    return spec.fallback;
  }
  const unit = { '': 1, k: 1024, K: 1024, m: 1024 * 1024, M: 1024 * 1024 }[m[2]!] ?? 1;
  const v = Number(m[1]) * unit;
  if (v < spec.min || v > spec.max) {
    issues.error(s.at, `"${name}" expects ${spec.expected} from ${range}, got "${s.value}"`);
    return spec.fallback;
  }
  return v;
}

function positiveInt(
  name: 'connections' | 'stimeout',
  s: Setting | undefined,
  fallback: number,
  issues: IssueList,
): number {
  if (!s) return fallback;
  if (!/^\d+$/.test(s.value)) {
    issues.error(s.at, `"${name}" expects ${EXPECTED[name]} (a whole number), got "${s.value}"`);
    return fallback;
  }
  const v = Number(s.value);
  if (v === 0) {
    issues.warning(s.at, `"${name} 0" means the default (${fallback}) in pptpd, and so here`);
    return fallback;
  }
  return v;
}

function delegatedAddresses(settings: Map<PptpdKeyword, Setting>, connections: number, issues: IssueList) {
  for (const kw of ['localip', 'remoteip'] as const) {
    const s = settings.get(kw);
    if (s)
      issues.warning(
        s.at,
        `"${kw}" is ignored because "delegate" is set (addresses come from the secrets file)`,
      );
  }
  return { localIps: [] as IPv4[], remoteIps: [] as IPv4[], connections };
}

function poolAddresses(
  settings: Map<PptpdKeyword, Setting>,
  file: string,
  configured: number,
  issues: IssueList,
) {
  const lists: Record<'localip' | 'remoteip', IPv4[]> = { localip: [], remoteip: [] };
  for (const kw of ['remoteip', 'localip'] as const) {
    const s = settings.get(kw);
    const spec = s?.value ?? PPTPD_DEFAULTS[kw];
    const at = s?.at ?? { file, line: 0 };
    if (!s) issues.warning(at, `"${kw}" is not set; using pptpd's built-in default ${spec}`);
    try {
      lists[kw] = parseIpSpec(spec, at);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      for (const issue of e.issues) issues.add(issue.severity, issue, issue.message);
    }
  }
  const remote = settings.get('remoteip')?.at ?? { file, line: 0 };
  checkRemoteAddresses(lists.remoteip, lists.localip, remote, issues);
  let remoteIps = lists.remoteip;
  let localIps = lists.localip;
  if (remoteIps.length > configured) {
    issues.note(
      remote,
      `remoteip lists ${remoteIps.length} addresses but connections is ${configured}; only the first ${configured} are used`,
    );
    remoteIps = remoteIps.slice(0, configured);
  }
  if (localIps.length > 1 && localIps.length > configured) localIps = localIps.slice(0, configured);
  let connections = Math.min(configured, remoteIps.length);
  if (localIps.length > 1 && localIps.length !== remoteIps.length) {
    const local = settings.get('localip')?.at ?? { file, line: 0 };
    issues.warning(
      local,
      `localip lists ${localIps.length} addresses and remoteip ${remoteIps.length}; pptpd pairs them in order, so at most ${Math.min(localIps.length, remoteIps.length)} sessions can run (give one localip to share it)`,
    );
    connections = Math.min(connections, localIps.length);
  }
  const explicit = /^[1-9]\d*$/.test(settings.get('connections')?.value ?? '');
  if (explicit && connections < configured && remoteIps.length > 0) {
    issues.note(
      settings.get('connections')!.at,
      `connections ${configured} reduced to ${connections}: not enough addresses`,
    );
  }
  return { localIps, remoteIps, connections };
}

function checkRemoteAddresses(remote: IPv4[], local: IPv4[], at: SourceLocation, issues: IssueList): void {
  const seen = new Set<IPv4>();
  const localSet = new Set(local);
  for (const ip of remote) {
    const text = formatIPv4(ip);
    if (seen.has(ip)) issues.error(at, `remoteip lists ${text} twice`);
    seen.add(ip);
    if (localSet.has(ip)) issues.error(at, `${text} is both a local and a remote address`);
    const first = ip >>> 24;
    if (first === 0 || first === 127 || first >= 224) {
      issues.error(at, `${text} cannot be a client address (zero, loopback, multicast or reserved)`);
    }
  }
}

/**
 * Our address for a session whose client got `remote`: the single localip, or the localip in
 * the same position as `remote` in remoteip (pptpd's pairing), or the first localip for an
 * address outside the pool (a static one from the secrets file). undefined with `delegate`.
 */
export function localIpFor(config: PptpdConf, remote: IPv4): IPv4 | undefined {
  if (config.localIps.length <= 1) return config.localIps[0];
  const index = config.remoteIps.indexOf(remote);
  return config.localIps[index] ?? config.localIps[0];
}
