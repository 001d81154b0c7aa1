import { RawGreSocket } from '../net/gre-socket.ts';
import type { HostRoutes } from '../net/iproute.ts';
import { IpRoute } from '../net/iproute.ts';
import { NetlinkRoutes } from '../net/netlink.ts';
import { TunInterface } from '../net/tun.ts';
import type { CallIdRange } from '../pptp/call-ids.ts';
import { startBroadcastRelay } from '../server/bcrelay-start.ts';
import type { ControlReply, ControlRequest } from '../server/control-socket.ts';
import { type LoadOptions, loadServerSettings } from '../server/load-settings.ts';
import { reloadServer } from '../server/reload.ts';
import type { PptpServer } from '../server/server.ts';
import type { ServerSettings } from '../server/settings.ts';
import { TUNNEL_HEADROOM } from '../tunnel/call.ts';
import { SystemClock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';

/** The data plane of one serving process: its GRE socket, its TUN device and the route back-end. */
export interface DataPlane {
  gre: RawGreSocket;
  tun: TunInterface;
  routes: HostRoutes;
  close(): void;
}

/**
 * Opens the GRE socket (only `callIds`' packets, for a worker) and the TUN device, and sets the
 * device up: MTU, every localip, link up. Throws an Error in words.
 */
export async function openDataPlane(
  settings: ServerSettings,
  log: Logger,
  callIds?: CallIdRange,
): Promise<DataPlane> {
  const gre = new RawGreSocket({ localAddress: settings.listen ?? 0, log, ...(callIds ? { callIds } : {}) });
  let tun: TunInterface;
  try {
    tun = new TunInterface({ name: settings.tunName, headroom: TUNNEL_HEADROOM, log });
  } catch (e) {
    gre.close();
    throw e;
  }
  const close = (): void => {
    tun.close();
    gre.close();
  };
  const ip = new IpRoute();
  // Per-session routes and proxy ARP through netlink; `ip` only for the set-up below.
  // POPTOP_ROUTE_BACKEND=ip (undocumented) runs `ip` per change instead, for benchmarks.
  let routes: HostRoutes = ip;
  try {
    if (process.env.POPTOP_ROUTE_BACKEND !== 'ip') {
      const netlink = new NetlinkRoutes();
      netlink.open();
      routes = netlink;
    }
    await ip.disableIpv6(tun.name);
    await ip.setMtu(tun.name, Math.max(576, settings.policy.mtu));
    // Every localip (pptpd pairs them with remoteip): the host must own each to answer on it.
    for (const local of new Set(settings.localIps)) await ip.addAddress(tun.name, local);
    await ip.setLinkUp(tun.name);
  } catch (e) {
    close();
    throw new Error(`cannot set up ${tun.name}: ${(e as Error).message}`);
  }
  return { gre, tun, routes, close };
}

/** pptpd.conf `bcrelay IF`, when set: UDP broadcasts on the LAN interface to every session here. */
export async function startRelay(
  server: PptpServer,
  log: Logger,
): Promise<Awaited<ReturnType<typeof startBroadcastRelay>> | undefined> {
  const bcrelay = server.currentSettings.bcrelay;
  if (!bcrelay) return undefined;
  return startBroadcastRelay({ bcrelay, server, clock: new SystemClock(), log, headroom: TUNNEL_HEADROOM });
}

/** SIGHUP and `poptop reload`: every file read again with the flags given at start (server/reload.ts). */
export function reloadFromFiles(
  server: Parameters<typeof reloadServer>[0],
  opts: LoadOptions,
  log: Logger,
  trigger: string,
) {
  return reloadServer(
    server,
    () => loadServerSettings({ ...opts, tunName: server.currentSettings.tunName }),
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
