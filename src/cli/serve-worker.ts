import type { Socket } from 'node:net';
import { answerWorker } from '../server/control-answers.ts';
import type { LoadOptions } from '../server/load-settings.ts';
import type { ServerSettings } from '../server/settings.ts';
import type { ToPrimary, ToWorker, WorkerIdentity } from '../server/workers/messages.ts';
import { PrimaryChannel, receiveFromPrimary, type WorkerSide } from '../server/workers/worker.ts';
import type { Logger } from '../util/log.ts';
import { attachMetrics, createKernelServer, openDataPlane, startRelay } from './serve-common.ts';

/**
 * `poptop serve` as worker `identity.index` of a primary (server/workers/primary.ts): its queue of
 * the shared TUN device (or, where the kernel refused that, its own device: settings.tunName is the
 * worker's) and a GRE socket for its call ids only; control
 * connections arrive from the primary over the IPC channel, and the primary decides leases and
 * single-session. Resolves with the exit code.
 */
export async function serveWorker(
  settings: ServerSettings,
  identity: WorkerIdentity,
  loadOpts: LoadOptions,
  log: Logger,
): Promise<number> {
  const post = (m: ToPrimary): boolean => {
    if (!process.connected) return false;
    process.send!(m);
    return true;
  };
  let plane: Awaited<ReturnType<typeof openDataPlane>>;
  try {
    plane = await openDataPlane(
      settings,
      log,
      identity.callIds,
      identity.shared ? { fds: identity.shared, index: identity.index } : undefined,
    );
  } catch (e) {
    post({ t: 'failed', error: (e as Error).message });
    log.error((e as Error).message);
    return 1;
  }
  const channel = new PrimaryChannel(post, log);
  const server = createKernelServer(settings, plane, log, { callIds: identity.callIds, authority: channel });
  let relay: Awaited<ReturnType<typeof startRelay>>;
  try {
    relay = await startRelay(server, log);
  } catch (e) {
    post({ t: 'failed', error: (e as Error).message });
    log.error((e as Error).message);
    plane.close();
    return 1;
  }
  // With `status`, the primary serves the page and the metrics: this worker counts its part.
  const metrics = settings.status ? attachMetrics(server, plane, relay) : undefined;

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (why: string, graceMs = 5000): void => {
      if (stopping) return;
      stopping = true;
      log.info(`${why}: closing this worker's sessions`);
      void server.shutdown(graceMs).then(() => {
        channel.close();
        metrics?.close();
        relay?.close();
        plane.close();
        // The channel would keep the process alive: what was sent on it is delivered first.
        if (process.connected) process.disconnect();
        resolve(0);
      });
    };
    const side: WorkerSide = {
      server,
      channel,
      post,
      answer: (req) => answerWorker(server, metrics, req, loadOpts, log),
      stop: (graceMs) => stop('asked by the primary', graceMs),
      get stopping() {
        return stopping;
      },
    };
    process.on('message', (m: ToWorker, handle: unknown) =>
      receiveFromPrimary(side, m, handle as Socket | undefined),
    );
    // The primary is gone: nothing can be leased or handed over any more.
    process.on('disconnect', () => {
      channel.close();
      stop('the primary process is gone');
    });
    // The primary handles the terminal's signals and SIGHUP, and tells its workers.
    process.on('SIGINT', () => {});
    process.on('SIGHUP', () => {});
    process.on('SIGTERM', () => stop('SIGTERM'));
    post({ t: 'ready', tun: plane.tun.name });
  });
}
