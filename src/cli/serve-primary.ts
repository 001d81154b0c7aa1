import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { FdReserve } from '../net/fd-reserve.ts';
import { reloadFromFiles } from '../server/control-answers.ts';
import { type ControlReply, listenControlSocket } from '../server/control-socket.ts';
import type { LoadOptions } from '../server/load-settings.ts';
import type { ServerSettings } from '../server/settings.ts';
import { formatWorkerEnv, type ToWorker, WORKER_ENV } from '../server/workers/messages.ts';
import { type SpawnWorker, WorkerPool } from '../server/workers/primary.ts';
import { SystemClock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import { startStatusListener } from './serve-common.ts';

/**
 * `poptop serve` with `workers N` (N > 1): this process listens, hands connections to N worker
 * processes (this same command, started with POPTOP_WORKER set) and answers the control socket for
 * all of them. Resolves with the exit code.
 */
export async function servePrimary(
  settings: ServerSettings,
  workers: number,
  loadOpts: LoadOptions,
  log: Logger,
  o: { controlPath: string; serving: string; pidfile: (() => () => void) | undefined },
): Promise<number> {
  const pool = new WorkerPool(settings, workers, {
    clock: new SystemClock(),
    log,
    fds: new FdReserve({ clock: new SystemClock(), log }),
    spawn: spawnWorkerProcess,
  });
  try {
    await pool.start();
    await pool.listen();
  } catch (e) {
    log.error((e as Error).message);
    await pool.shutdown(1000);
    return 1;
  }
  log.info(o.serving);
  // pptpd.conf `status`: the page and the metrics of every worker, served here.
  const statusListener = settings.status
    ? await startStatusListener(settings.status, pool.statusProvider(), {
        log,
        tokenFile: join(dirname(o.controlPath), 'status.token'),
      })
    : undefined;
  const reload = (trigger: string) => reloadFromFiles(pool, loadOpts, log, trigger);
  const control = await listenControlSocket(
    o.controlPath,
    (req): ControlReply | Promise<ControlReply> => {
      if (req.cmd !== 'reload') return pool.request(req);
      const report = reload('poptop reload');
      return report.ok ? { ok: true, data: report } : { ok: false, error: 'not reloaded', data: report };
    },
    log,
  ).catch((e: Error) => {
    log.warn(
      `control socket ${o.controlPath} unavailable (poptop sessions/kill will not work): ${e.message}`,
    );
    return undefined;
  });
  const removePidfile = o.pidfile?.();
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info(`${signal}: telling every worker to close its sessions, and stopping`);
      void pool.shutdown().then(() => {
        control?.close();
        statusListener?.close();
        removePidfile?.();
        log.info('stopped');
        resolve(0);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => reload('SIGHUP'));
  });
}

/**
 * A worker: this same command (`node [flags] poptop serve ...`) with POPTOP_WORKER set and an IPC
 * channel.
 */
const spawnWorkerProcess: SpawnWorker = (identity, events) => {
  // A copy, then the one variable set (not extend(): the environment is a record of the user's).
  const env = { ...process.env };
  env[WORKER_ENV] = formatWorkerEnv(identity);
  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    env,
    // Its log goes where ours goes, written in whole lines of at most PIPE_BUF (consoleLogger's
    // shared mode): the processes' lines never interleave, and none passes through us.
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child.on('message', (m) => events.message(m as Parameters<typeof events.message>[0]));
  child.on('exit', (code, signal) => events.exit(signal ? `signal ${signal}` : `exit code ${code}`));
  // A channel error (the child just died) is reported by 'exit'.
  child.on('error', () => {});
  return {
    get pid() {
      return child.pid;
    },
    send: (m: ToWorker, socket) => {
      if (!child.connected) return false;
      try {
        // keepOpen false: the socket is closed here once it is on its way. (send's false means a
        // backlog, not a failure: the message is queued.)
        child.send(m, socket, { keepOpen: false }, () => {});
        return true;
      } catch {
        return false;
      }
    },
    kill: (signal) => {
      child.kill(signal);
    },
  };
};
