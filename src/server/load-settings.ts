import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { ChapSecretsStore } from '../aaa/chap-secrets.ts';
import { StaticCredentials } from '../aaa/credentials.ts';
import { DEFAULT_LOGIN_THROTTLE } from '../aaa/login-throttle.ts';
import {
  DEFAULT_RADIUSCLIENT_CONF,
  loadRadiusClientConf,
  radiusSettingsFromNative,
} from '../aaa/radius/config.ts';
import type { RadiusSettings } from '../aaa/radius/service.ts';
import { ConfigError, type ConfigIssue, formatIssue, formatLocation } from '../config/issues.ts';
import { mppePolicy, type PppdOptions, parsePppdOptions } from '../config/options-file.ts';
import { MAX_WORKERS, type PptpdConf, parsePptpdConf, parseWorkers } from '../config/pptpd-conf.ts';
import { parseStatusAddress, STATUS_ADDRESS_EXPECTED } from '../config/status-address.ts';
import type { AuthMethod } from '../ppp/auth/types.ts';
import { defaultPolicy, type PppPolicy } from '../ppp/policy.ts';
import { PPTP_TCP_PORT } from '../pptp/constants.ts';
import { extend } from '../util/objects.ts';
import { type IPv4, parseIPv4 } from '../wire/ip.ts';
import {
  DEFAULT_PPP_OPTIONS,
  DEFAULT_PPTPD_CONF,
  DEFAULT_STATE_DIR,
  type DefaultSecrets,
  ensureDefaultSecrets,
} from './default-config.ts';
import type { ServerSettings } from './settings.ts';
import { processorsForWorkers } from './workers/processors.ts';

export interface LoadOptions {
  /** pptpd.conf path; undefined = the built-in default configuration. */
  configPath?: string;
  /** pppd's global options file, read before the one pptpd.conf names (as pppd does); 'none' skips it. */
  globalOptionsPath?: string;
  /** The pppd options file, overriding pptpd.conf's `option` (pptpd -o). */
  optionsPath?: string;
  /** chap-secrets path (pppd reads /etc/ppp/chap-secrets). */
  secretsPath?: string;
  /** Where the built-in configuration keeps its generated secrets. */
  stateDir?: string;
  tunName?: string;
  /** Command-line overrides (pptpd -l, -d). */
  listen?: string;
  /** `--status ADDR:PORT`: replaces pptpd.conf's `status`. */
  status?: string;
  /** `--workers N|auto`: replaces pptpd.conf's `workers`. */
  workers?: string;
  /**
   * Settings for worker `index` of `count` (server/workers/): its own TUN device (the name with
   * "w" and the index after it), its share of `max-unauth`, and no workers of its own.
   */
  worker?: { index: number; count: number };
  debug?: boolean;
  /** Read a file (tests). */
  readFile?: (path: string) => string;
}

export interface LoadedSettings {
  settings: ServerSettings;
  /** Warnings and notes, formatted "file:line: message". */
  notes: string[];
  /** Set when the built-in configuration created its default user now. */
  defaultSecrets?: DefaultSecrets;
}

/** Marker used by the built-in pptpd.conf for its embedded options file. */
const BUILTIN_OPTIONS = 'builtin:options';

/**
 * Read pptpd.conf, pppd's options files and chap-secrets into ServerSettings, the way pptpd +
 * pppd would: pptpd.conf names the options file; pppd reads /etc/ppp/options first, then that
 * file. Throws ConfigError (file:line and what was expected) on errors.
 */
export function loadServerSettings(o: LoadOptions = {}): LoadedSettings {
  const read = o.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const builtin = o.configPath === undefined;
  const confName = o.configPath ?? 'built-in pptpd.conf';
  const { config, warnings } = parsePptpdConf(builtin ? DEFAULT_PPTPD_CONF : read(o.configPath!), confName);
  const issues: ConfigIssue[] = [...warnings];

  let options: PppdOptions = {};
  const globalOptions = o.globalOptionsPath ?? (builtin ? undefined : '/etc/ppp/options');
  if (globalOptions && globalOptions !== 'none' && existsSync(globalOptions)) {
    const r = parsePppdOptions(read(globalOptions), globalOptions, { readFile: read, base: options });
    options = r.options;
    issues.push(...r.notes);
  }
  const optionFile = o.optionsPath ?? config.optionFile;
  if (optionFile === BUILTIN_OPTIONS) {
    const r = parsePppdOptions(DEFAULT_PPP_OPTIONS, 'built-in options', { readFile: read, base: options });
    options = r.options;
    issues.push(...r.notes);
  } else if (optionFile) {
    const r = parsePppdOptions(read(optionFile), optionFile, { readFile: read, base: options });
    options = r.options;
    issues.push(...r.notes);
  }

  let defaultSecrets: DefaultSecrets | undefined;
  let secretsPath = o.secretsPath;
  if (!secretsPath) {
    if (builtin) {
      defaultSecrets = ensureDefaultSecrets(o.stateDir ?? DEFAULT_STATE_DIR);
      secretsPath = defaultSecrets.path;
    } else secretsPath = '/etc/ppp/chap-secrets';
  }
  // RADIUS (pppd `plugin radius.so`): it judges every login; chap-secrets is then optional.
  // or poptop's radius-* keywords in pptpd.conf: the same settings, one form or the other.
  let radius: RadiusSettings | undefined;
  if (config.radius && options.radiusPlugin) {
    const plugin = options.radiusPluginAt ? formatLocation(options.radiusPluginAt) : 'the pppd options';
    throw new ConfigError([
      ...issues,
      {
        severity: 'error',
        ...config.radius.at,
        message: `RADIUS is configured twice: by the radius-* keywords here and by "plugin radius.so" at ${plugin}; keep one of the two (the radius-* keywords need no radiusclient files)`,
      },
    ]);
  }
  if (config.radius || options.radiusPlugin) {
    const r = config.radius
      ? radiusSettingsFromNative(config.radius, confName, o.readFile ? { readFile: read } : {})
      : loadRadiusClientConf(options.radiusConfigFile ?? DEFAULT_RADIUSCLIENT_CONF, { readFile: read });
    radius = r.settings;
    if (radius.nasIdentifier === undefined && radius.nasIpAddress === undefined) {
      radius.nasIdentifier = options.name ?? hostname();
    }
    if (options.radattrPlugin) radius.radattr = true;
    issues.push(...r.notes);
  }
  const useSecrets = !radius || o.readFile !== undefined || existsSync(secretsPath);
  const credentials = useSecrets
    ? new ChapSecretsStore(secretsPath, { readFile: read, checkPermissions: !radius })
    : new StaticCredentials([]);
  if (credentials instanceof ChapSecretsStore) issues.push(...credentials.reload());

  const { policy, notes } = serverPolicy(options);
  const settings: ServerSettings = {
    listen: o.listen !== undefined ? parseListen(o.listen) : config.listen,
    port: PPTP_TCP_PORT,
    maxConnections: config.connections,
    localIps: config.localIps,
    remoteIps: config.remoteIps,
    delegate: config.delegate,
    policy,
    credentials,
    serverName: options.name ?? hostname(),
    stripDomain: options.chapmsStripDomain ?? false,
    proxyArp: options.proxyarp ?? false,
    debug: o.debug || config.debug || (options.debug ?? 0) > 0,
    startTimeoutS: config.stimeout,
    pptpEchoIntervalS: 60,
    ipUpScript: options.ipUpScript ?? '/etc/ppp/ip-up',
    ipDownScript: options.ipDownScript ?? '/etc/ppp/ip-down',
    ipparam: options.ipparam,
    noipparam: config.noipparam,
    speed: 115200,
    tunName: o.tunName ?? 'poptop0',
    pidfile: builtin ? undefined : config.pidfile,
    ...(options.rateLimit ? { rateLimit: options.rateLimit } : {}),
    idleS: options.idle ?? 0,
    maxConnectS: options.maxconnect ?? 0,
    logwtmp: config.logwtmp || options.logwtmp === true,
    singleSession: config.singleSession,
    ...(config.bcrelay === undefined
      ? {}
      : {
          bcrelay: {
            ifname: config.bcrelay,
            at: config.sources.bcrelay ? formatLocation(config.sources.bcrelay) : confName,
          },
        }),
    origin: builtin ? 'the built-in configuration' : o.configPath!,
    radius,
    maxUnauthPerSource: config.guard.maxUnauthPerSource,
    maxSetupsPerSource: config.guard.maxSetupsPerSource,
    maxUnauth: config.guard.maxUnauth,
    callDeadlineS: config.guard.callDeadlineS,
    setupDeadlineS: config.guard.setupDeadlineS,
    controlWriteBufferBytes: config.guard.controlWriteBufferBytes,
    loginThrottle: Object.freeze(
      extend(DEFAULT_LOGIN_THROTTLE, {
        failLimit: config.authBackoff.failLimit,
        lockoutS: config.authBackoff.lockoutS,
        maxLockoutS: Math.max(DEFAULT_LOGIN_THROTTLE.maxLockoutS, config.authBackoff.lockoutS),
        windowS: config.authBackoff.failWindowS,
      }),
    ),
  };
  let status = config.status;
  if (o.status !== undefined) {
    status = parseStatusAddress(o.status);
    if (!status) throw new Error(`--status expects ${STATUS_ADDRESS_EXPECTED}, got "${o.status}"`);
  }
  if (o.worker) {
    const { index, count } = o.worker;
    // Each worker counts its own unauthenticated connections: their shares add up to the limit.
    return {
      settings: extend(settings, {
        tunName: workerTunName(settings.tunName, index),
        maxUnauth: Math.max(1, Math.floor(settings.maxUnauth / count)),
        ...(status ? { status } : {}),
      }),
      notes: [],
    };
  }
  const { workers, byDefault } = resolveWorkers(
    o.workers,
    config,
    confName,
    { tunName: settings.tunName },
    notes,
  );
  const out: LoadedSettings = {
    settings: Object.assign(
      {},
      settings,
      status ? { status } : {},
      workers > 1 ? { workers } : {},
      workers > 1 && byDefault ? { workersByDefault: true } : {},
    ),
    notes: [...issues.map(formatIssue), ...notes],
  };
  if (defaultSecrets) out.defaultSecrets = defaultSecrets;
  return out;
}

/**
 * `workers` (pptpd.conf) or `--workers`: the number of processes, "auto" (the default) being one
 * per processor (capped by a CPU quota: see workers/processors.ts). Errors name where it was set: a
 * TUN name too long for the workers' own devices (NAME + "w" + index), which they use where the
 * kernel refuses them a shared one. By default those are never used (one process serves instead),
 * so the name is not checked.
 */
function resolveWorkers(
  flagValue: string | undefined,
  config: PptpdConf,
  confName: string,
  has: { tunName: string },
  notes: string[],
): { workers: number; byDefault: boolean } {
  let value = config.workers;
  let byDefault = !config.sources.workers;
  let at = config.sources.workers ? formatLocation(config.sources.workers) : confName;
  if (flagValue !== undefined) {
    at = '--workers';
    const parsed = parseWorkers(flagValue);
    if (parsed === undefined)
      throw new Error(
        `--workers expects "auto" (one per processor) or a number from 1 to ${MAX_WORKERS}, got "${flagValue}"`,
      );
    value = parsed;
    byDefault = false;
  }
  const processors = value === 'auto' ? processorsForWorkers() : undefined;
  const n = processors ? Math.min(MAX_WORKERS, processors.count) : (value as number);
  if (processors?.capped && !byDefault)
    notes.push(`${at}: "workers auto" is ${n} here, for ${processors.why}`);
  if (n <= 1) return { workers: 1, byDefault };
  if (byDefault) return { workers: n, byDefault };
  const what = `${at}: "workers ${value}"${value === 'auto' ? ` (${n} here)` : ''}`;
  const longest = workerTunName(has.tunName, n - 1);
  if (longest.length > 15)
    throw new Error(
      `${what}: the workers' TUN devices are named ${workerTunName(has.tunName, 0)} to ${longest}, longer than the 15 characters Linux allows; choose a shorter --tun`,
    );
  return { workers: n, byDefault };
}

/** The TUN device of worker `index`: the configured name with "w" and the index after it. */
export function workerTunName(base: string, index: number): string {
  return `${base}w${index}`;
}

function parseListen(text: string): IPv4 {
  const ip = parseIPv4(text);
  if (ip === undefined) throw new Error(`--listen expects an IPv4 address, got "${text}"`);
  return ip;
}

const ALL_METHODS: AuthMethod[] = ['mschapv2', 'mschap', 'chap-md5', 'pap'];

/**
 * pppd options → the server's PPP policy. Authentication, as pppd does it for an authenticator:
 * `require-X` lists the methods to offer (strongest first); plain `auth` offers every method not
 * refused; `noauth` turns authentication off (logged loudly). With none of them, poptop requires
 * MS-CHAPv2 (secure default: a VPN server that lets anyone in is never what was meant).
 * `refuse-X` also removes X from the offer, which is what pptpd's sample files intend.
 */
export function serverPolicy(o: PppdOptions): { policy: PppPolicy; notes: string[] } {
  const notes: string[] = [];
  const p = defaultPolicy('server');
  const refused = new Set<AuthMethod>();
  if (o.refusePap) refused.add('pap');
  if (o.refuseChap) refused.add('chap-md5');
  if (o.refuseMschap) refused.add('mschap');
  if (o.refuseMschapV2) refused.add('mschapv2');
  const required: AuthMethod[] = [];
  if (o.requireMschapV2) required.push('mschapv2');
  if (o.requireMschap) required.push('mschap');
  if (o.requireChap) required.push('chap-md5');
  if (o.requirePap) required.push('pap');
  if (required.length > 0) p.auth.require = required.filter((m) => !refused.has(m));
  else if (o.auth === false) {
    p.auth.require = [];
    notes.push('noauth: clients are NOT authenticated; anyone who can reach this server can connect');
  } else if (o.auth === true) p.auth.require = ALL_METHODS.filter((m) => !refused.has(m));
  else p.auth.require = refused.has('mschapv2') ? [] : ['mschapv2'];
  if (p.auth.require.length === 0 && o.auth !== false) {
    throw new Error(
      'every authentication method is refused: allow at least one (e.g. require-mschap-v2 without refuse-mschap-v2)',
    );
  }

  const mppe = mppePolicy(o);
  p.mppe = {
    required: mppe.required,
    allow40: mppe.allow40,
    allow56: false,
    allow128: mppe.allow128,
    statefulAllowed: mppe.allowStateful || o.mppeStatefulPreferred === true,
  };
  if (o.mppeStatefulPreferred) p.mppe.preferStateful = true;
  if (mppe.required && !p.auth.require.some((m) => m === 'mschap' || m === 'mschapv2')) {
    throw new Error('MPPE is required but no MS-CHAP method is allowed: MPPE keys come from MS-CHAP');
  }
  if (o.mru !== undefined) p.mru = o.mru;
  if (o.mtu !== undefined) p.mtu = o.mtu;
  if (o.lcpEchoInterval !== undefined) p.lcpEchoInterval = o.lcpEchoInterval;
  if (o.lcpEchoFailure !== undefined) p.lcpEchoFailure = o.lcpEchoFailure;
  if (o.lcpMaxConfigure !== undefined) p.lcpMaxConfigure = o.lcpMaxConfigure;
  if (o.lcpMaxTerminate !== undefined) p.lcpMaxTerminate = o.lcpMaxTerminate;
  if (o.lcpMaxFailure !== undefined) p.lcpMaxFailure = o.lcpMaxFailure;
  if (o.lcpRestart !== undefined) p.lcpRestart = o.lcpRestart;
  if (o.ipcpMaxConfigure !== undefined) p.ncpMaxConfigure = o.ipcpMaxConfigure;
  if (o.ipcpMaxTerminate !== undefined) p.ncpMaxTerminate = o.ipcpMaxTerminate;
  if (o.ipcpMaxFailure !== undefined) p.ncpMaxFailure = o.ipcpMaxFailure;
  if (o.ipcpRestart !== undefined) p.ncpRestart = o.ipcpRestart;
  if (o.msDns) p.msDns = o.msDns.slice(0, 2);
  if (o.msWins) p.msWins = o.msWins.slice(0, 2);
  if (o.ipv6 !== undefined) p.ipv6 = o.ipv6;
  return { policy: p, notes };
}
