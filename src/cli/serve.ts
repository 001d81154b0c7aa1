import { spawn } from 'node:child_process';
import { openSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { SharedTun } from '../net/tun-queues.ts';
import { answerControl, reloadFromFiles } from '../server/control-answers.ts';
import { DEFAULT_CONTROL_SOCKET, listenControlSocket } from '../server/control-socket.ts';
import { type LoadOptions, loadServerSettings } from '../server/load-settings.ts';
import type { PptpServer } from '../server/server.ts';
import { localStatus } from '../server/status-http.ts';
import { parseWorkerEnv, WORKER_ENV } from '../server/workers/messages.ts';
import { consoleLogger, type Logger } from '../util/log.ts';
import { formatIPv4 } from '../wire/ip.ts';
import { type FlagSpec, flag, has, type ParsedArgs } from './args.ts';
import { doctorAtStartup } from './doctor.ts';
import {
  attachMetrics,
  createKernelServer,
  type DataPlane,
  openDataPlane,
  openSharedTun,
  startRelay,
  startStatusListener,
} from './serve-common.ts';
import { servePrimary } from './serve-primary.ts';
import { serveWorker } from './serve-worker.ts';

export const SERVE_FLAGS = [
  { name: 'config', short: ['c', 'conf'], value: true },
  { name: 'fg', short: ['f', 'foreground'], value: false },
  { name: 'debug', short: ['d'], value: false },
  { name: 'listen', short: ['l'], value: true },
  { name: 'tun', value: true },
  { name: 'secrets', value: true },
  { name: 'options', short: ['o', 'option'], value: true },
  { name: 'state-dir', value: true },
  { name: 'control-socket', value: true },
  { name: 'pidfile', short: ['p'], value: true },
  { name: 'logfile', value: true },
  { name: 'global-options', value: true },
  { name: 'status', value: true },
  { name: 'workers', value: true },
] as const satisfies readonly FlagSpec[];

/** `poptop serve`: the daemon. Resolves with the exit code when it stops. */
export async function serve(args: ParsedArgs): Promise<number> {
  if (!has(args, 'fg')) return daemonize(args);
  const loadOpts: LoadOptions = {};
  const config = flag(args, 'config');
  if (config !== undefined) loadOpts.configPath = config;
  const secrets = flag(args, 'secrets');
  if (secrets !== undefined) loadOpts.secretsPath = secrets;
  const stateDir = flag(args, 'state-dir');
  if (stateDir !== undefined) loadOpts.stateDir = stateDir;
  const tunName = flag(args, 'tun');
  if (tunName !== undefined) loadOpts.tunName = tunName;
  const listen = flag(args, 'listen');
  if (listen !== undefined) loadOpts.listen = listen;
  const optionsFile = flag(args, 'options');
  if (optionsFile !== undefined) loadOpts.optionsPath = optionsFile;
  if (has(args, 'debug')) loadOpts.debug = true;
  const status = flag(args, 'status');
  if (status !== undefined) loadOpts.status = status;
  const globalOptions = flag(args, 'global-options');
  if (globalOptions !== undefined) loadOpts.globalOptionsPath = globalOptions;
  const workers = flag(args, 'workers');
  if (workers !== undefined) loadOpts.workers = workers;
  // A worker of a primary (server/workers/): the same files, its own TUN device, no fork of its own.
  const workerEnv = process.env[WORKER_ENV];
  const worker = parseWorkerEnv(workerEnv);
  if (workerEnv !== undefined) {
    if (!worker || !process.send) {
      process.stderr.write(
        `poptop: ${WORKER_ENV} is set ("${workerEnv}") but this is not a worker of poptop serve\n`,
      );
      return 1;
    }
    loadOpts.worker = { index: worker.index, count: worker.count };
  }

  let loaded: ReturnType<typeof loadServerSettings>;
  try {
    loaded = loadServerSettings(loadOpts);
  } catch (e) {
    process.stderr.write(`poptop: configuration error:\n${indent((e as Error).message)}\n`);
    return 1;
  }
  if (worker) {
    const settings = loaded.settings;
    const log = consoleLogger({ debug: settings.debug, shared: true }).child(`w${worker.index}`);
    return serveWorker(settings, worker, loadOpts, log);
  }
  const { settings } = loaded;
  const log = consoleLogger({ debug: settings.debug });
  for (const n of loaded.notes) log.warn(n);
  if (loaded.defaultSecrets?.generatedPassword)
    printDefaultUser(
      loaded.defaultSecrets.path,
      loaded.defaultSecrets.user,
      loaded.defaultSecrets.generatedPassword,
    );
  else if (loaded.defaultSecrets) {
    log.info(
      `built-in configuration: user "${loaded.defaultSecrets.user}", password in ${loaded.defaultSecrets.path}`,
    );
  }

  // The host checks of `poptop doctor` (forwarding, firewall, port 1723, secrets, ...), into the log.
  doctorAtStartup(settings, log);
  const controlPath = flag(args, 'control-socket') ?? DEFAULT_CONTROL_SOCKET;
  const pidfile = flag(args, 'pidfile') ?? settings.pidfile;
  // Workers, on one TUN device where the kernel allows it (by default only then: one process else).
  const n = settings.workers ?? 1;
  let shared: SharedTun | undefined;
  if (n > 1) {
    try {
      shared = await openSharedTun(settings, n, log);
    } catch (e) {
      log.error((e as Error).message);
      return 1;
    }
  }
  if (n > 1 && (shared || !settings.workersByDefault)) {
    const how = settings.workersByDefault ? ' (one per processor)' : '';
    return servePrimary(settings, n, shared, loadOpts, log, {
      controlPath,
      serving: (tunnels) => servingLine(settings, `${n} workers${how}, ${tunnels}`),
      pidfile: pidfile
        ? () => {
            writePidfile(pidfile, log);
            return () => removeFile(pidfile);
          }
        : undefined,
    });
  }

  let plane: DataPlane;
  try {
    plane = await openDataPlane(settings, log);
  } catch (e) {
    log.error((e as Error).message);
    return 1;
  }
  const { gre, tun } = plane;
  const server = createKernelServer(settings, plane, log);
  // pptpd.conf `bcrelay IF`: UDP broadcasts on the LAN interface to every client (server/bcrelay.ts).
  let bcrelay: Awaited<ReturnType<typeof startRelay>>;
  try {
    bcrelay = await startRelay(server, log);
  } catch (e) {
    log.error((e as Error).message);
    plane.close();
    return 1;
  }
  let statusListener: { close(): void } | undefined;
  if (settings.status) {
    const metrics = attachMetrics(server, plane, bcrelay);
    statusListener = await startStatusListener(settings.status, localStatus(server, metrics), {
      log,
      tokenFile: join(dirname(controlPath), 'status.token'),
    });
    if (statusListener) {
      const listener = statusListener;
      statusListener = {
        close: () => {
          listener.close();
          metrics.close();
        },
      };
    } else {
      metrics.close();
      server.observer = undefined;
    }
  }
  try {
    await server.listen();
  } catch (e) {
    statusListener?.close();
    bcrelay?.close();
    log.error((e as Error).message);
    tun.close();
    gre.close();
    return 1;
  }
  log.info(servingLine(settings, `tunnel ${tun.name}`));
  const control = await listenControlSocket(
    controlPath,
    (req) => answerControl(server, req, loadOpts, log),
    log,
  ).catch((e: Error) => {
    log.warn(`control socket ${controlPath} unavailable (poptop sessions/kill will not work): ${e.message}`);
    return undefined;
  });
  if (pidfile) writePidfile(pidfile, log);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info(`${signal}: telling every client and stopping`);
      void server.shutdown().then(() => {
        control?.close();
        statusListener?.close();
        bcrelay?.close();
        tun.close();
        gre.close();
        if (pidfile) removeFile(pidfile);
        log.info('stopped');
        resolve(0);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => reloadFromFiles(server, loadOpts, log, 'SIGHUP'));
  });
}

function servingLine(s: PptpServer['currentSettings'], where: string): string {
  const auth = s.policy.auth.require.join('/') || 'none';
  return `poptop serving with ${s.origin}: ${where} ${s.localIps.map(formatIPv4).join(' ')}, auth ${auth}, MPPE ${describeMppe(s)}`;
}

function describeMppe(s: PptpServer['currentSettings']): string {
  const m = s.policy.mppe;
  const bits = [m.allow40 && '40', m.allow56 && '56', m.allow128 && '128'].filter(Boolean).join('/');
  return `${m.required ? 'required' : 'optional'} (${bits || 'none'}-bit${m.statefulAllowed ? ', stateful allowed' : ', stateless'})`;
}

function printDefaultUser(path: string, user: string, password: string): void {
  const lines = [
    'poptop is running with its built-in configuration.',
    'A VPN user was created (shown only this once; stored in',
    `${path}):`,
    '',
    `    user:      ${user}`,
    `    password:  ${password}`,
    '',
    'Connect with MS-CHAPv2 + MPPE 128-bit (Windows: "PPTP", "Require encryption").',
  ];
  const width = Math.max(...lines.map((l) => l.length));
  const bar = `+${'-'.repeat(width + 2)}+`;
  process.stdout.write(`${bar}\n${lines.map((l) => `| ${l.padEnd(width)} |`).join('\n')}\n${bar}\n`);
}

function writePidfile(path: string, log: Logger): void {
  try {
    writeFileSync(path, `${process.pid}\n`);
  } catch (e) {
    log.warn(`cannot write pidfile ${path}: ${(e as Error).message}`);
  }
}

function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* already gone */
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

/** Without --fg: run ourselves detached, logging to a file, as pptpd forks into the background. */
function daemonize(args: ParsedArgs): number {
  const logfile = flag(args, 'logfile') ?? '/var/log/poptop.log';
  let out: number;
  try {
    out = openSync(logfile, 'a', 0o640);
  } catch (e) {
    process.stderr.write(`poptop: cannot open log file ${logfile}: ${(e as Error).message}\n`);
    return 1;
  }
  const child = spawn(
    process.execPath,
    [...process.execArgv, process.argv[1]!, ...process.argv.slice(2), '--fg'],
    {
      detached: true,
      stdio: ['ignore', out, out],
    },
  );
  child.unref();
  process.stdout.write(`poptop: started in the background (pid ${child.pid}); log: ${logfile}\n`);
  return 0;
}
