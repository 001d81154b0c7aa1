import type { Logger } from '../util/log.ts';
import type { ControlReply, ControlRequest } from './control-socket.ts';
import { type LoadOptions, loadServerSettings } from './load-settings.ts';
import { reloadServer } from './reload.ts';
import type { PptpServer } from './server.ts';

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
    () => loadServerSettings(opts.worker ? opts : { ...opts, tunName: server.currentSettings.tunName }),
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
        data: { ...server.status(), memory: { rss, heapTotal, heapUsed, external, arrayBuffers } },
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
