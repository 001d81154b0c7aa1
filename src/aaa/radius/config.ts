import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { type ConfigIssue, didYouMean, IssueList, type SourceLocation } from '../../config/issues.ts';
import type { NativeRadiusConf, NativeRadiusServer } from '../../config/radius-keywords.ts';
import { formatIPv4, parseIPv4 } from '../../wire/ip.ts';
import type { RadiusServer } from './client.ts';
import type { RadiusSettings } from './service.ts';

/** Where pppd's radius.so looks when no `radius-config-file` is given. */
export const DEFAULT_RADIUSCLIENT_CONF = '/etc/radiusclient/radiusclient.conf';

export const DEFAULT_AUTH_PORT = 1812;
export const DEFAULT_ACCT_PORT = 1813;

/** radiusclient's defaults. */
const DEFAULTS = { radius_timeout: 10, radius_retries: 3, radius_deadtime: 0, dynauth_port: 3799 };

/** radiusclient keywords about terminal logins (radlogin): accepted, no effect here. */
const LOGIN_KEYWORDS = new Set([
  'auth_order',
  'login_tries',
  'login_timeout',
  'nologin',
  'issue',
  'login_radius',
  'login_local',
  'seqfile',
  'mapfile',
  'default_realm',
  'clientdebug',
]);

const KEYWORDS = new Set([
  ...LOGIN_KEYWORDS,
  'authserver',
  'acctserver',
  'servers',
  'dictionary',
  'radius_timeout',
  'radius_retries',
  'radius_deadtime',
  'bindaddr',
  'nas-identifier',
  'nas_identifier',
  'nas-ip',
  'dynauth_port',
]);

export interface RadiusClientConfInit {
  readFile?: (path: string) => string;
  exists?: (path: string) => boolean;
  /** A file's permission bits, undefined when it cannot be checked (tests); default: stat. */
  mode?: (path: string) => number | undefined;
}

interface ServerEntry {
  host: string;
  address: string;
  port: number;
  secret: string | undefined;
  at: SourceLocation;
}

/**
 * Reads a radiusclient configuration as pppd's radius.so does (radiusclient.conf, then the
 * `servers` file it names for the shared secrets), into RadiusSettings:
 *
 *   authserver 10.0.0.5:1812,10.0.0.6        # host[:port[:secret]], comma-separated, in order
 *   acctserver 10.0.0.5:1813
 *   servers /etc/radiusclient/servers        # "host[:port] secret" per line
 *   dictionary /etc/radiusclient/dictionary  # checked to exist; poptop's dictionary is built in
 *   radius_timeout 10                        # seconds per try
 *   radius_retries 3                         # tries per server
 *   radius_deadtime 0                        # seconds a silent server is tried last
 *   bindaddr *                               # local address of the RADIUS socket
 *   nas-identifier vpn1                      # NAS-Identifier (else NAS-IP-Address / pppd `name`)
 *   nas-ip 192.0.2.1                         # NAS-IP-Address
 *   dynauth_port 3799                        # poptop's own: Disconnect/CoA port, 0 = off
 *
 * One `keyword value` per line; `#` starts a comment line. Login keywords (auth_order,
 * login_tries, seqfile...) are accepted with a note. An unknown keyword, a malformed value, a host
 * name other than localhost, or a server without a secret is an error naming the file and line.
 * Throws ConfigError listing every error; returns the settings and the notes.
 */
export function parseRadiusClientConf(
  text: string,
  file: string,
  init: RadiusClientConfInit = {},
): { settings: RadiusSettings; notes: ConfigIssue[] } {
  const read = init.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const exists = init.exists ?? existsSync;
  const issues = new IssueList();
  const values = new Map<string, { value: string; at: SourceLocation }>();
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const at = { file, line: i + 1 };
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    const key = m[1]!;
    const value = m[2]!.trim();
    if (!KEYWORDS.has(key)) {
      issues.error(at, `unknown keyword "${key}"${didYouMean(key, KEYWORDS)}`);
      return;
    }
    if (LOGIN_KEYWORDS.has(key)) {
      issues.note(at, `"${key}" is about terminal logins and has no effect in poptop; ignored`);
      return;
    }
    if (value === '') {
      issues.error(at, `keyword "${key}" needs a value`);
      return;
    }
    const name = key === 'nas_identifier' ? 'nas-identifier' : key;
    const earlier = values.get(name);
    if (earlier) issues.warning(at, `"${key}" again: this line replaces line ${earlier.at.line}`);
    values.set(name, { value, at });
  });

  const number = (key: keyof typeof DEFAULTS, min: number, max: number): number => {
    const v = values.get(key);
    if (!v) return DEFAULTS[key];
    if (!/^\d+$/.test(v.value) || Number(v.value) < min || Number(v.value) > max) {
      issues.error(v.at, `"${key}" needs a whole number from ${min} to ${max}, got "${v.value}"`);
      return DEFAULTS[key];
    }
    return Number(v.value);
  };
  const timeoutS = number('radius_timeout', 1, 600);
  const tries = number('radius_retries', 1, 100);
  const deadtimeS = number('radius_deadtime', 0, 86400);
  const dynauthPort = number('dynauth_port', 0, 65535);

  const auth = parseServerList(values.get('authserver'), DEFAULT_AUTH_PORT, issues);
  const acct = parseServerList(values.get('acctserver'), DEFAULT_ACCT_PORT, issues);
  if (!values.has('authserver')) {
    issues.error({ file, line: 0 }, 'no "authserver": RADIUS needs at least one authentication server');
  }

  // Secrets: inline ones win; the others come from the servers file.
  const serversFile = values.get('servers');
  let secrets: { host: string; port: number | undefined; secret: string }[] = [];
  if (serversFile) {
    const path = absolute(serversFile.value, file);
    try {
      secrets = parseServersFile(read(path), path, issues);
    } catch (e) {
      issues.error(serversFile.at, `cannot read the servers file "${path}": ${(e as Error).message}`);
    }
  }
  const resolveSecrets = (list: ServerEntry[]): RadiusServer[] =>
    list.flatMap((s) => {
      const secret =
        s.secret ??
        secrets.find(
          (x) =>
            (x.host === s.host || (x.host === 'localhost' ? '127.0.0.1' : x.host) === s.address) &&
            (x.port === undefined || x.port === s.port),
        )?.secret;
      if (secret === undefined) {
        const where = serversFile
          ? `in ${absolute(serversFile.value, file)}`
          : '(no "servers" file is named)';
        issues.error(s.at, `no shared secret for RADIUS server ${s.host} ${where}`);
        return [];
      }
      return [{ host: s.address, port: s.port, secret }];
    });

  const dictionary = values.get('dictionary');
  if (dictionary) {
    const path = absolute(dictionary.value, file);
    if (!exists(path)) {
      issues.warning(
        dictionary.at,
        `dictionary "${path}" does not exist (poptop's RADIUS dictionary is built in)`,
      );
    }
  }

  const settings: RadiusSettings = {
    authServers: resolveSecrets(auth),
    acctServers: resolveSecrets(acct),
    timeoutS,
    tries,
    deadtimeS,
    origin: file,
    dynauthPort,
  };
  const nasId = values.get('nas-identifier');
  if (nasId) settings.nasIdentifier = nasId.value;
  const nasIp = values.get('nas-ip');
  if (nasIp) {
    const ip = parseIPv4(nasIp.value);
    if (ip === undefined) issues.error(nasIp.at, `"nas-ip" needs an IPv4 address, got "${nasIp.value}"`);
    else settings.nasIpAddress = ip;
  }
  const bind = values.get('bindaddr');
  if (bind && bind.value !== '*') {
    if (parseIPv4(bind.value) === undefined) {
      issues.error(bind.at, `"bindaddr" needs an IPv4 address or "*", got "${bind.value}"`);
    } else settings.bindAddress = bind.value;
  }
  return { settings, notes: issues.finish() };
}

/** Reads the radiusclient configuration at `path` (pppd `radius-config-file`). */
export function loadRadiusClientConf(
  path: string,
  init: RadiusClientConfInit = {},
): { settings: RadiusSettings; notes: ConfigIssue[] } {
  const read = init.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  return parseRadiusClientConf(read(path), path, init);
}

function absolute(path: string, relativeTo: string): string {
  return isAbsolute(path) ? path : resolve(dirname(relativeTo), path);
}

function parseServerList(
  v: { value: string; at: SourceLocation } | undefined,
  defaultPort: number,
  issues: IssueList,
): ServerEntry[] {
  if (!v) return [];
  const out: ServerEntry[] = [];
  for (const item of v.value.split(',').map((s) => s.trim())) {
    if (item.startsWith('[')) {
      issues.error(v.at, `"${item}": IPv6 RADIUS servers are not supported`);
      continue;
    }
    const [host = '', port, ...rest] = item.split(':');
    const secret = rest.length > 0 ? rest.join(':') : undefined;
    const address = host === 'localhost' ? '127.0.0.1' : host;
    if (parseIPv4(address) === undefined) {
      issues.error(
        v.at,
        `"${host}" is not an IPv4 address (host names other than localhost are not supported)`,
      );
      continue;
    }
    let p = defaultPort;
    if (port !== undefined && port !== '') {
      if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
        issues.error(v.at, `"${item}": the port must be a number from 1 to 65535`);
        continue;
      }
      p = Number(port);
    }
    out.push({ host, address, port: p, secret: secret === '' ? undefined : secret, at: v.at });
  }
  return out;
}

/** radiusclient's servers file: "host[:port] secret" per line, # comments. */
function parseServersFile(
  text: string,
  file: string,
  issues: IssueList,
): { host: string; port: number | undefined; secret: string }[] {
  const out: { host: string; port: number | undefined; secret: string }[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) return;
    const at = { file, line: i + 1 };
    const m = /^(\S+)\s+(\S+)\s*$/.exec(line);
    if (!m) {
      issues.error(at, 'expected "server secret" (two words; a secret cannot contain spaces)');
      return;
    }
    const [host = '', port] = m[1]!.split(':');
    if (port !== undefined && !/^\d+$/.test(port)) {
      issues.error(at, `"${m[1]}": the port must be a number`);
      return;
    }
    out.push({ host, port: port === undefined ? undefined : Number(port), secret: m[2]! });
  });
  return out;
}

/**
 * RadiusSettings from poptop's native keywords in pptpd.conf (config/radius-keywords.ts), the
 * same settings radiusclient.conf gives. Secrets not on a server's line come from
 * `radius-secret-file`: a line holding only the secret serves every server, `ADDR[:PORT] SECRET`
 * lines one server each (radiusclient's servers file form). A file holding secrets that others can
 * read is warned about. Throws ConfigError listing every error.
 */
export function radiusSettingsFromNative(
  native: NativeRadiusConf,
  conf: string,
  init: RadiusClientConfInit = {},
): { settings: RadiusSettings; notes: ConfigIssue[] } {
  const read = init.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const mode = init.mode ?? (init.readFile ? () => undefined : fileMode);
  const issues = new IssueList();
  let fromFile: SecretFile | undefined;
  const file = native.secretFile;
  if (file) {
    const path = absolute(file.path, conf);
    let text: string | undefined;
    try {
      text = read(path);
    } catch (e) {
      issues.error(file.at, `cannot read the RADIUS secret file "${path}": ${(e as Error).message}`);
    }
    if (text !== undefined) {
      fromFile = parseSecretFile(text, path, issues);
      const m = readableBy(mode(path));
      if (m) issues.warning({ file: path, line: 0 }, `the RADIUS secret file is ${m}: chmod 600 ${path}`);
    }
  }
  const first = native.inlineSecrets[0];
  const readable = first ? readableBy(mode(conf)) : undefined;
  if (first && readable) {
    issues.warning(
      first,
      `a RADIUS secret on this line, and ${conf} is ${readable}: move the secret to a "radius-secret-file" only root can read`,
    );
  }

  const resolve = (list: NativeRadiusServer[]): RadiusServer[] =>
    list.flatMap((s) => {
      const host = formatIPv4(s.address);
      const secret =
        s.secret ??
        fromFile?.perServer.find(
          (x) => x.address === s.address && (x.port === undefined || x.port === s.port),
        )?.secret ??
        fromFile?.shared;
      if (secret === undefined) {
        const where = file
          ? `neither on this line nor in ${absolute(file.path, conf)}`
          : 'on this line, and no "radius-secret-file" is given';
        issues.error(s.at, `no shared secret for RADIUS server ${host}:${s.port}: ${where}`);
        return [];
      }
      return [{ host, port: s.port, secret }];
    });
  const settings: RadiusSettings = {
    authServers: resolve(native.authServers),
    acctServers: resolve(native.acctServers),
    timeoutS: native.timeoutS ?? DEFAULTS.radius_timeout,
    tries: native.tries ?? DEFAULTS.radius_retries,
    deadtimeS: native.deadtimeS ?? DEFAULTS.radius_deadtime,
    origin: conf,
    dynauthPort: native.dynauthPort ?? DEFAULTS.dynauth_port,
  };
  if (native.nasIdentifier !== undefined) settings.nasIdentifier = native.nasIdentifier;
  if (native.nasIpAddress !== undefined) settings.nasIpAddress = native.nasIpAddress;
  if (native.bindAddress !== undefined) settings.bindAddress = native.bindAddress;
  return { settings, notes: issues.finish() };
}

interface SecretFile {
  /** The secret on a line of its own: for every server. */
  shared: string | undefined;
  perServer: { address: number; port: number | undefined; secret: string }[];
}

function parseSecretFile(text: string, file: string, issues: IssueList): SecretFile {
  const out: SecretFile = { shared: undefined, perServer: [] };
  let sharedAt = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) return;
    const at = { file, line: i + 1 };
    const words = line.split(/[ \t]+/);
    if (words.length === 1) {
      if (out.shared !== undefined) {
        issues.error(
          at,
          `a second shared secret (the first is on line ${sharedAt}); give "ADDR[:PORT] SECRET" to tell servers apart`,
        );
        return;
      }
      out.shared = words[0]!;
      sharedAt = i + 1;
      return;
    }
    const m = words.length === 2 ? /^([^:]+)(?::(\d{1,5}))?$/.exec(words[0]!) : null;
    const address = m ? parseIPv4(m[1]!) : undefined;
    if (!m || address === undefined) {
      issues.error(
        at,
        'expected the secret alone, or "ADDR[:PORT] SECRET" with an IPv4 address (a secret cannot contain spaces)',
      );
      return;
    }
    out.perServer.push({ address, port: m[2] === undefined ? undefined : Number(m[2]), secret: words[1]! });
  });
  if (out.shared === undefined && out.perServer.length === 0) {
    issues.error({ file, line: 0 }, 'no secret in the file: expected the secret alone on a line');
  }
  return out;
}

function fileMode(path: string): number | undefined {
  try {
    return statSync(path).mode;
  } catch {
    return undefined;
  }
}

/** "readable by others than its owner (mode 0644)" when the group or others have any access. */
function readableBy(mode: number | undefined): string | undefined {
  if (mode === undefined || (mode & 0o077) === 0) return undefined;
  return `accessible to others than its owner (mode ${(mode & 0o777).toString(8).padStart(4, '0')})`;
}
