import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { FdReserve } from '../net/fd-reserve.ts';
import { type HostRoutes, IpRoute } from '../net/iproute.ts';
import type { SharedTun } from '../net/tun-queues.ts';
import { reloadFromFiles } from '../server/control-answers.ts';
import { type ControlReply, listenControlSocket } from '../server/control-socket.ts';
import type { LoadOptions } from '../server/load-settings.ts';
import { workerTunName } from '../server/load-settings.ts';
import type { ServerSettings } from '../server/settings.ts';
import {
  formatWorkerEnv,
  type ToWorker,
  WORKER_ENV,
  type WorkerIdentity,
} from '../server/workers/messages.ts';
import { type WorkerEvents, WorkerPool, type WorkerProcess } from '../server/workers/primary.ts';
import { SystemClock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import { formatPrefix } from '../wire/ip.ts';
import { routeBackend, startStatusListener } from './serve-common.ts';

/**
 * `poptop serve` with `workers N` (N > 1): this process listens, hands connections to N worker
 * processes (this same command, started with POPTOP_WORKER set) and answers the control socket for
 * all of them. Resolves with the exit code.
 */
export async function servePrimary(
  settings: ServerSettings,
  workers: number,
  shared: SharedTun | undefined,
  loadOpts: LoadOptions,
  log: Logger,
  o: { controlPath: string; serving: (tunnels: string) => string; pidfile: (() => () => void) | undefined },
): Promise<number> {
  const routes = shared ? primaryRoutes(log) : undefined;
  const pool = new WorkerPool(settings, workers, {
    clock: new SystemClock(),
    log,
    fds: new FdReserve({ clock: new SystemClock(), log }),
    spawn: (identity, events) => spawnWorkerProcess(identity, events, shared),
    ...(shared && routes
      ? { workerGone: (index: number) => removeWorkerRoutes(shared, routes, index, settings.proxyArp, log) }
      : {}),
  });
  try {
    await pool.start();
    await pool.listen();
  } catch (e) {
    log.error((e as Error).message);
    await pool.shutdown(1000);
    shared?.close();
    return 1;
  }
  log.info(
    o.serving(
      shared
        ? `tunnel ${shared.name} (a queue each)`
        : `tunnels ${workerTunName(settings.tunName, 0)}-${workerTunName(settings.tunName, workers - 1)}`,
    ),
  );
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
        // The last queue closed takes the device, and every route through it, away.
        shared?.close();
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

/** The descriptors a worker of a shared TUN device finds its queue and maps at (stdio slots). */
const CHILD_QUEUE_FD = 4;
const CHILD_STEERING_FD = 5;
const CHILD_DROP_FD = 6;

/**
 * A worker: this same command (`node [flags] poptop serve ...`) with POPTOP_WORKER set and an IPC
 * channel; with a shared TUN device, its queue and the maps as descriptors 4, 5 (and 6).
 */
function spawnWorkerProcess(
  identity: WorkerIdentity,
  events: WorkerEvents,
  shared: SharedTun | undefined,
): WorkerProcess {
  const fds = shared?.fdsFor(identity.index);
  // A copy, then the one variable set (not extend(): the environment is a record of the user's).
  const env = { ...process.env };
  env[WORKER_ENV] = formatWorkerEnv(
    fds
      ? Object.assign({}, identity, {
          shared: {
            queueFd: CHILD_QUEUE_FD,
            steeringFd: CHILD_STEERING_FD,
            ...(fds.dropFd !== undefined ? { dropFd: CHILD_DROP_FD } : {}),
          },
        })
      : identity,
  );
  const inherited = fds
    ? [fds.queueFd, fds.steeringFd, ...(fds.dropFd !== undefined ? [fds.dropFd] : [])]
    : [];
  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    env,
    // Its log goes where ours goes, written in whole lines of at most PIPE_BUF (consoleLogger's
    // shared mode): the processes' lines never interleave, and none passes through us.
    stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...inherited],
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
}

/** The primary's route back-end, for a dead worker's routes: the workers' (or `ip`, failing that). */
function primaryRoutes(log: Logger): HostRoutes {
  try {
    return routeBackend();
  } catch (e) {
    log.warn(`netlink: ${(e as Error).message}; a dead worker's routes are removed with ip`);
    return new IpRoute();
  }
}

/**
 * Worker `index` ended and left its routes on the shared device (its own device would have taken
 * them along): its prefixes come off the steering map and the drop list at once, then their routes
 * and proxy ARP entries are deleted. Failures are logged; an entry already gone is fine.
 */
async function removeWorkerRoutes(
  shared: SharedTun,
  routes: HostRoutes,
  index: number,
  proxyArp: boolean,
  log: Logger,
): Promise<void> {
  const gone = shared.forgetQueue(index);
  let failed = 0;
  for (const p of gone) {
    try {
      await routes.delRoute(shared.name, p.network, p.prefixLength);
      if (proxyArp && p.prefixLength === 32) {
        const lan = await routes.interfaceContaining(p.network);
        if (lan && lan.ifname !== shared.name) await routes.delProxyArp(p.network, lan.ifname);
      }
    } catch (e) {
      failed++;
      log.warn(
        `after worker ${index}: cannot remove ${formatPrefix(p.network, p.prefixLength)} from ${shared.name}: ${(e as Error).message}`,
      );
    }
  }
  if (gone.length > 0)
    log.info(
      `worker ${index}: removed ${gone.length - failed} of its ${gone.length} route${gone.length === 1 ? '' : 's'} from ${shared.name}`,
    );
}
