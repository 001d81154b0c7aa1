import {
  type DoctorConfig,
  type DoctorHost,
  type Finding,
  formatFindings,
  hasBlocker,
  realHost,
  runDoctor,
} from '../server/doctor.ts';
import { type LoadOptions, loadServerSettings } from '../server/load-settings.ts';
import type { ServerSettings } from '../server/settings.ts';
import { terminalJson } from '../util/escape.ts';
import type { Logger } from '../util/log.ts';
import { type FlagSpec, flag, has, type ParsedArgs } from './args.ts';

export const DOCTOR_FLAGS = [
  { name: 'config', short: ['c', 'conf'], value: true },
  { name: 'secrets', value: true },
  { name: 'options', short: ['o', 'option'], value: true },
  { name: 'global-options', value: true },
  { name: 'tun', value: true },
  { name: 'state-dir', value: true },
  { name: 'json', value: false },
] as const satisfies readonly FlagSpec[];

/** The checks' view of loaded settings. */
export function doctorConfig(settings: ServerSettings): DoctorConfig {
  const store = settings.credentials as { path?: unknown };
  return {
    secretsPath: typeof store.path === 'string' ? store.path : '/etc/ppp/chap-secrets',
    localIps: settings.localIps,
    remoteIps: settings.remoteIps,
    maxConnections: settings.maxConnections,
    delegate: settings.delegate,
    proxyArp: settings.proxyArp,
    mtu: settings.policy.mtu,
    mru: settings.policy.mru,
    tunName: settings.tunName,
    port: settings.port,
  };
}

/** `poptop doctor [--json]`: exit 1 when a finding would stop clients connecting. */
export function doctor(args: ParsedArgs, host: DoctorHost = realHost): number {
  const opts: LoadOptions = {};
  const config = flag(args, 'config');
  if (config !== undefined) opts.configPath = config;
  const secrets = flag(args, 'secrets');
  if (secrets !== undefined) opts.secretsPath = secrets;
  const options = flag(args, 'options');
  if (options !== undefined) opts.optionsPath = options;
  const globalOptions = flag(args, 'global-options');
  if (globalOptions !== undefined) opts.globalOptionsPath = globalOptions;
  const tun = flag(args, 'tun');
  if (tun !== undefined) opts.tunName = tun;
  const stateDir = flag(args, 'state-dir');
  if (stateDir !== undefined) opts.stateDir = stateDir;

  let findings: Finding[];
  try {
    const { settings } = loadServerSettings(opts);
    findings = runDoctor(host, doctorConfig(settings));
  } catch (e) {
    findings = [
      {
        check: 'config',
        level: 'error',
        message: `the configuration does not load: ${(e as Error).message}`,
        fix: 'correct the file and line named; poptop serve would refuse to start',
      },
    ];
  }
  const blocked = hasBlocker(findings);
  if (has(args, 'json')) process.stdout.write(`${terminalJson({ ok: !blocked, findings }, 2)}\n`);
  else {
    process.stdout.write(formatFindings(findings));
    const errors = findings.filter((f) => f.level === 'error').length;
    process.stdout.write(
      blocked
        ? `\n${errors} problem${errors === 1 ? '' : 's'} would stop clients connecting.\n`
        : '\nnothing found that would stop clients connecting.\n',
    );
  }
  return blocked ? 1 : 0;
}

/** At `serve` start-up: the same checks, briefly, into the log (ok findings at debug level). */
export function doctorAtStartup(settings: ServerSettings, log: Logger, host: DoctorHost = realHost): void {
  let findings: Finding[];
  try {
    findings = runDoctor(host, doctorConfig(settings));
  } catch (e) {
    log.debug(`doctor: the checks failed: ${(e as Error).message}`);
    return;
  }
  for (const f of findings) {
    const line = `doctor: ${f.message}${f.fix ? `; fix: ${f.fix}` : ''}`;
    if (f.level === 'error') log.error(line);
    else if (f.level === 'warn') log.warn(line);
    else log.debug(line);
  }
}
