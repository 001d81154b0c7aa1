import { ConfigError, formatIssue } from '../config/issues.ts';
import type { Logger } from '../util/log.ts';
import { extend } from '../util/objects.ts';
import { formatIPv4, type IPv4 } from '../wire/ip.ts';
import type { LoadedSettings } from './load-settings.ts';
import type { SessionInfo } from './session.ts';
import type { ServerSettings } from './settings.ts';

/**
 * Reloading the configuration of a running server: what SIGHUP and `poptop reload` both do.
 *
 * Every file is read again (pptpd.conf, /etc/ppp/options, the pppd options file, chap-secrets) with
 * the command-line flags the server was started with. If any file has an error, nothing changes and
 * the errors (file:line) are the answer. Otherwise the new settings replace the old ones, except for
 * what only a restart can change (the listen address and port, the TUN device's name and address, the
 * pid file, debug logging): those keep their running values and are named, with the value waiting, in
 * the log and in the answer. Live sessions are never closed; they keep the PPP settings they were set
 * up with, and the answer names which of those changed for new sessions only.
 */
export interface ReloadReport {
  /** True when the new configuration is in effect. */
  ok: boolean;
  /** What asked for it: "SIGHUP" or "poptop reload". */
  trigger: string;
  /** Where the configuration comes from (the pptpd.conf path or "the built-in configuration"). */
  origin: string;
  /** Sessions alive at the reload (none is closed by it). */
  sessions: number;
  /** Why nothing was reloaded, "file:line: message" each. */
  errors: string[];
  /** Warnings and notes of the files read ("file:line: message"). */
  notes: string[];
  /** Changes in effect now, for new sessions and the server as a whole. */
  applied: string[];
  /** Changes that live sessions do not get (they keep what they started with); new sessions do. */
  newSessionsOnly: string[];
  /** Changes that need a restart; until then the running value stays. */
  restartNeeded: string[];
}

/** The part of PptpServer a reload needs. */
export interface ReloadTarget {
  readonly currentSettings: ServerSettings;
  reload(settings: ServerSettings): void;
  list(): SessionInfo[];
}

/** Read the configuration again with `load` and apply it to `server`; logs and returns what happened. */
export function reloadServer(
  server: ReloadTarget,
  load: () => LoadedSettings,
  log: Logger,
  trigger: string,
): ReloadReport {
  const running = server.currentSettings;
  const sessions = server.list();
  const report: ReloadReport = {
    ok: false,
    trigger,
    origin: running.origin,
    sessions: sessions.length,
    errors: [],
    notes: [],
    applied: [],
    newSessionsOnly: [],
    restartNeeded: [],
  };
  let loaded: LoadedSettings;
  try {
    loaded = load();
  } catch (e) {
    if (e instanceof ConfigError) {
      report.errors = e.errors.map(formatIssue);
      report.notes = e.issues.filter((i) => i.severity !== 'error').map(formatIssue);
    } else report.errors = (e as Error).message.split('\n');
    if (report.errors.length === 0) report.errors = ['the configuration could not be read'];
    // One log line per problem: the log sink escapes line feeds.
    log.error(`${trigger}: configuration not reloaded, the running one is kept:`);
    for (const line of report.errors) log.error(`  ${line}`);
    return report;
  }
  report.notes = loaded.notes;
  const { settings, restartNeeded } = keepRestartOnly(running, loaded.settings);
  report.origin = settings.origin;
  report.restartNeeded = restartNeeded;
  const changes = describeChanges(running, settings, sessions);
  report.applied = changes.applied;
  report.newSessionsOnly = sessions.length > 0 ? changes.newSessionsOnly : [];
  if (sessions.length === 0) report.applied.push(...changes.newSessionsOnly);
  for (const n of loaded.notes) log.warn(n);
  server.reload(settings);
  report.ok = true;
  for (const c of report.applied) log.info(`${trigger}: ${c}`);
  const live =
    sessions.length === 1 ? 'the live session keeps its own' : `the ${sessions.length} live ones keep theirs`;
  for (const c of report.newSessionsOnly) log.info(`${trigger}: ${c} (for new sessions; ${live})`);
  for (const c of report.restartNeeded) log.warn(`${trigger}: ${c}`);
  return report;
}

type Field = {
  /** How the setting is called in the files or on the command line. */
  name: string;
  get(s: ServerSettings): string;
};

const listen = (s: ServerSettings): string =>
  s.listen === undefined ? 'all addresses' : formatIPv4(s.listen);

/** Settings that only a restart changes: the listener, the TUN device, the pid file, the logger. */
const RESTART_ONLY: readonly (Field & {
  keep(next: ServerSettings, running: ServerSettings): ServerSettings;
})[] = [
  {
    name: 'listen',
    get: listen,
    keep: (n, r) => extend(n, { listen: r.listen }),
  },
  { name: 'port', get: (s) => String(s.port), keep: (n, r) => extend(n, { port: r.port }) },
  {
    name: 'the TUN device name (--tun)',
    get: (s) => s.tunName,
    keep: (n, r) => extend(n, { tunName: r.tunName }),
  },
  {
    name: `localip (the TUN device's own addresses)`,
    get: (s) => (s.localIps.length === 0 ? 'none' : s.localIps.map(formatIPv4).join(' ')),
    keep: (n, r) => extend(n, { localIps: r.localIps }),
  },
  {
    name: 'the status listener (status, --status)',
    get: (s) => (s.status ? `${s.status.host}:${s.status.port}` : 'off'),
    keep: (n, r) => {
      const { status: _drop, ...rest } = n;
      return r.status ? extend(rest, { status: r.status }) : rest;
    },
  },
  {
    name: 'the broadcast relay (bcrelay)',
    get: (s) => s.bcrelay?.ifname ?? 'off',
    keep: (n, r) => {
      const { bcrelay: _drop, ...rest } = n;
      return r.bcrelay ? extend(rest, { bcrelay: r.bcrelay }) : rest;
    },
  },
  {
    name: 'pidfile',
    get: (s) => s.pidfile ?? 'none',
    keep: (n, r) => extend(n, { pidfile: r.pidfile }),
  },
  {
    name: 'debug logging (-d, debug)',
    get: (s) => (s.debug ? 'on' : 'off'),
    keep: (n, r) => extend(n, { debug: r.debug }),
  },
];

/**
 * The new settings with every restart-only field at its running value, and those fields' changes
 * in words ("listen: 0.0.0.0 -> 192.0.2.1 needs a restart; still 0.0.0.0").
 */
export function keepRestartOnly(
  running: ServerSettings,
  next: ServerSettings,
): { settings: ServerSettings; restartNeeded: string[] } {
  let settings = next;
  const restartNeeded: string[] = [];
  for (const f of RESTART_ONLY) {
    const was = f.get(running);
    const now = f.get(next);
    if (was === now) continue;
    restartNeeded.push(
      `${f.name} changed from ${was} to ${now}: this needs a restart; ${was} stays until then`,
    );
    settings = f.keep(settings, running);
  }
  return { settings, restartNeeded };
}

const POLICY_NAMES: Record<string, string> = {
  mru: 'mru',
  mtu: 'mtu',
  lcpEchoInterval: 'lcp-echo-interval',
  lcpEchoFailure: 'lcp-echo-failure',
  lcpMaxConfigure: 'lcp-max-configure',
  lcpMaxTerminate: 'lcp-max-terminate',
  lcpMaxFailure: 'lcp-max-failure',
  lcpRestart: 'lcp-restart',
  ncpMaxConfigure: 'ipcp-max-configure',
  ncpMaxTerminate: 'ipcp-max-terminate',
  ncpMaxFailure: 'ipcp-max-failure',
  ncpRestart: 'ipcp-restart',
  auth: 'authentication (require-*/refuse-*)',
  mppe: 'MPPE (require-mppe*, mppe-stateful)',
  msDns: 'ms-dns',
  msWins: 'ms-wins',
  ipv6: '+ipv6',
};

function policyValue(key: string, v: unknown): string {
  if (key === 'msDns' || key === 'msWins') {
    const list = v as IPv4[];
    return list.length === 0 ? 'none' : list.map(formatIPv4).join(' ');
  }
  if (key === 'auth') return (v as { require: string[] }).require.join('/') || 'none';
  if (key === 'mppe') {
    const m = v as ServerSettings['policy']['mppe'];
    const bits = [m.allow40 && '40', m.allow56 && '56', m.allow128 && '128'].filter(Boolean).join('/');
    return `${m.required ? 'required' : 'optional'} ${bits || 'none'}-bit${m.statefulAllowed ? ' stateful allowed' : ''}`;
  }
  return String(v);
}

/** Settings a session takes when it starts and keeps for its life. */
const PER_SESSION: readonly Field[] = [
  { name: 'proxyarp', get: (s) => (s.proxyArp ? 'on' : 'off') },
  { name: 'name', get: (s) => s.serverName },
  { name: 'chapms-strip-domain', get: (s) => (s.stripDomain ? 'on' : 'off') },
  { name: 'ip-up-script', get: (s) => s.ipUpScript },
  { name: 'ip-down-script', get: (s) => s.ipDownScript },
  { name: 'ipparam', get: (s) => (s.noipparam ? 'none (noipparam)' : (s.ipparam ?? "the client's address")) },
  { name: 'stimeout', get: (s) => `${s.startTimeoutS} s` },
  { name: 'call-deadline', get: (s) => `${s.callDeadlineS} s` },
  { name: 'setup-deadline', get: (s) => `${s.setupDeadlineS} s` },
];

/** Settings the whole server applies at once (admission, the pool, login back-off). */
const SERVER_WIDE: readonly Field[] = [
  { name: 'connections', get: (s) => String(s.maxConnections) },
  { name: 'delegate', get: (s) => (s.delegate ? 'on' : 'off') },
  { name: 'max-unauth-per-source', get: (s) => String(s.maxUnauthPerSource) },
  { name: 'max-setups-per-source', get: (s) => String(s.maxSetupsPerSource) },
  { name: 'max-unauth', get: (s) => String(s.maxUnauth) },
  { name: 'control-write-buffer', get: (s) => String(s.controlWriteBufferBytes) },
  { name: 'auth-fail-limit', get: (s) => String(s.loginThrottle.failLimit) },
  { name: 'auth-lockout', get: (s) => `${s.loginThrottle.lockoutS} s` },
  { name: 'auth-fail-window', get: (s) => `${s.loginThrottle.windowS} s` },
];

/** What differs between the running settings and the next ones, in words. */
export function describeChanges(
  running: ServerSettings,
  next: ServerSettings,
  sessions: readonly SessionInfo[],
): { applied: string[]; newSessionsOnly: string[] } {
  const applied: string[] = [];
  const newSessionsOnly: string[] = [];
  for (const f of SERVER_WIDE) {
    const was = f.get(running);
    const now = f.get(next);
    if (was !== now) applied.push(`${f.name} changed from ${was} to ${now}`);
  }
  if (next.maxConnections < sessions.length) {
    applied.push(
      `${sessions.length} sessions are up, more than connections ${next.maxConnections}: none is closed, new calls are refused until fewer remain`,
    );
  }
  if (!sameList(running.remoteIps, next.remoteIps)) {
    applied.push(`remoteip changed: ${describePool(running.remoteIps)} -> ${describePool(next.remoteIps)}`);
  }
  // Sessions holding a pool address that the new pool no longer has (static addresses from
  // chap-secrets were never pool addresses and are not counted).
  const oldPool = new Set((running.delegate ? [] : running.remoteIps).map(formatIPv4));
  const newPool = new Set((next.delegate ? [] : next.remoteIps).map(formatIPv4));
  const outside = sessions.filter((s) => s.ip != null && oldPool.has(s.ip) && !newPool.has(s.ip));
  if (outside.length > 0) {
    const shown = outside.slice(0, 5).map((s) => s.ip);
    applied.push(
      `${outside.length} live session${outside.length === 1 ? ' keeps its address' : 's keep their addresses'} outside the new pool (${shown.join(', ')}${outside.length > 5 ? ', ...' : ''}) until ${outside.length === 1 ? 'it ends' : 'they end'}`,
    );
  }
  if (running.credentials !== next.credentials) {
    const size = (next.credentials as { size?: unknown }).size;
    applied.push(
      `chap-secrets read again${typeof size === 'number' ? ` (${size} entries)` : ''}: new logins use it; logged-in sessions stay`,
    );
  }
  if (!sameList(running.localIps.slice(1), next.localIps.slice(1))) {
    newSessionsOnly.push(
      `localip changed from ${running.localIps.map(formatIPv4).join(',') || 'none'} to ${next.localIps.map(formatIPv4).join(',') || 'none'}`,
    );
  }
  const oldPolicy = running.policy as unknown as Record<string, unknown>;
  const newPolicy = next.policy as unknown as Record<string, unknown>;
  for (const key of Object.keys(POLICY_NAMES)) {
    const was = policyValue(key, oldPolicy[key]);
    const now = policyValue(key, newPolicy[key]);
    if (was !== now) newSessionsOnly.push(`${POLICY_NAMES[key]} changed from ${was} to ${now}`);
  }
  for (const f of PER_SESSION) {
    const was = f.get(running);
    const now = f.get(next);
    if (was !== now) newSessionsOnly.push(`${f.name} changed from ${was} to ${now}`);
  }
  return { applied, newSessionsOnly };
}

function sameList(a: readonly IPv4[], b: readonly IPv4[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function describePool(list: readonly IPv4[]): string {
  if (list.length === 0) return 'no addresses';
  const first = formatIPv4(list[0]!);
  const last = formatIPv4(list[list.length - 1]!);
  return `${list.length} address${list.length === 1 ? '' : 'es'} (${first}${list.length > 1 ? ` ... ${last}` : ''})`;
}

/** The report for a terminal: what happened in words, one item a line. */
export function formatReloadReport(r: ReloadReport): string {
  const lines: string[] = [];
  const kept = `${r.sessions} session${r.sessions === 1 ? '' : 's'}`;
  if (!r.ok) {
    lines.push(`configuration NOT reloaded: the running one is kept (${kept} unaffected). Errors:`);
    for (const e of r.errors) lines.push(`  ${e}`);
  } else {
    lines.push(`reloaded ${r.origin}: ${kept} kept`);
    if (r.applied.length + r.newSessionsOnly.length + r.restartNeeded.length === 0)
      lines.push('  no setting changed');
    for (const c of r.applied) lines.push(`  applied: ${c}`);
    for (const c of r.newSessionsOnly) lines.push(`  new sessions only: ${c} (live sessions keep theirs)`);
    for (const c of r.restartNeeded) lines.push(`  NOT applied: ${c}`);
  }
  if (r.notes.length > 0) {
    lines.push('notes:');
    for (const n of r.notes) lines.push(`  ${n}`);
  }
  return `${lines.join('\n')}\n`;
}
