import type { Logger } from '../util/log.ts';
import { extend } from '../util/objects.ts';
import type { ControlReply, ControlRequest } from './control-socket.ts';
import { type LoadOptions, loadServerSettings } from './load-settings.ts';
import type { ServerMetrics } from './metrics.ts';
import { reloadServer } from './reload.ts';
import type { PptpServer } from './server.ts';
import { buildSnapshot } from './status-http.ts';
import type { WorkerRequest } from './workers/messages.ts';

/** SIGHUP and `poptop reload`: every file read again with the flags given at start (server/reload.ts). */
export function reloadFromFiles(
  server: Parameters<typeof reloadServer>[0],
  opts: LoadOptions,
  log: Logger,
  trigger: string,
) {
  return reloadServer(
    server,
    // The running TUN device's name stays (a worker's is derived from the flags again).
    () => loadServerSettings(opts.worker ? opts : extend(opts, { tunName: server.currentSettings.tunName })),
    log,
    trigger,
  );
}

/** The control socket's answers of one process's server (a single server, or a worker's). */
export function answerControl(
  server: PptpServer,
  req: ControlRequest,
  opts: LoadOptions,
  log: Logger,
): ControlReply {
  switch (req.cmd) {
    case 'sessions':
      return { ok: true, data: server.list() };
    case 'status': {
      // The process's memory beside the server's numbers (bench/memory.ts reads heapUsed).
      const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
      return {
        ok: true,
        data: extend(server.status(), { memory: { rss, heapTotal, heapUsed, external, arrayBuffers } }),
      };
    }
    case 'reload': {
      const report = reloadFromFiles(server, opts, log, 'poptop reload');
      return report.ok ? { ok: true, data: report } : { ok: false, error: 'not reloaded', data: report };
    }
    case 'kill': {
      const ids = server.kill(req.target);
      return ids.length > 0
        ? { ok: true, data: ids }
        : { ok: false, error: `no session matches "${req.target}"` };
    }
  }
}

/**
 * A worker's answers to its primary: the control socket's, and those the primary's status listener
 * needs (`metrics` undefined: no `status` configured, so there is nothing to show).
 */
export function answerWorker(
  server: PptpServer,
  metrics: ServerMetrics | undefined,
  req: WorkerRequest,
  opts: LoadOptions,
  log: Logger,
): ControlReply {
  switch (req.cmd) {
    case 'metrics':
      return metrics ? { ok: true, data: metrics.data() } : { ok: false, error: 'no status configured' };
    case 'page':
      return metrics
        ? { ok: true, data: buildSnapshot(server, metrics, false) }
        : { ok: false, error: 'no status configured' };
    case 'end':
      return server.killSession(req.id, req.reason)
        ? { ok: true, data: [req.id] }
        : { ok: false, error: `no session ${req.id}` };
    default:
      return answerControl(server, req, opts, log);
  }
}
