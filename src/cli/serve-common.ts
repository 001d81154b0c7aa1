import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { StatusAddress } from '../config/status-address.ts';
import { FdReserve } from '../net/fd-reserve.ts';
import { RawGreSocket } from '../net/gre-socket.ts';
import type { HostRoutes } from '../net/iproute.ts';
import { IpRoute } from '../net/iproute.ts';
import { loadNative } from '../net/native.ts';
import { NetlinkRoutes } from '../net/netlink.ts';
import { TunInterface } from '../net/tun.ts';
import { type FilterTarget, KernelTunDropList } from '../net/tun-filter.ts';
import { SharedTun, type SharedTunFds, SteeredRoutes, TunSteering } from '../net/tun-queues.ts';
import type { CallIdRange } from '../pptp/call-ids.ts';
import { startBroadcastRelay } from '../server/bcrelay-start.ts';
import { workerTunName } from '../server/load-settings.ts';
import { fullGarbageCollection } from '../server/memory-release.ts';
import { ServerMetrics } from '../server/metrics.ts';
import { PptpServer } from '../server/server.ts';
import type { AddressAuthority } from '../server/session.ts';
import type { ServerSettings } from '../server/settings.ts';
import { isLoopback, StatusHttpServer, type StatusProvider } from '../server/status-http.ts';
import { KernelSystem } from '../server/system.ts';
import { TUNNEL_HEADROOM } from '../tunnel/call.ts';
import { SystemClock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';

/** The data plane of one serving process: its GRE socket, its TUN device and the route back-end. */
export interface DataPlane {
  gre: RawGreSocket;
  tun: TunInterface;
  /** The kernel's drop list on `tun`; undefined where the kernel refused it (no CAP_BPF). */
  tunDrops: KernelTunDropList | undefined;
  routes: HostRoutes;
  close(): void;
}

/** A worker's queue of the shared TUN device (net/tun-queues.ts): the fds it inherited, and its index. */
export interface SharedQueue {
  fds: SharedTunFds;
  index: number;
}

/**
 * Opens the GRE socket (only `callIds`' packets, for a worker) and the TUN device, and sets the
 * device up: MTU, every localip, link up. A worker of a shared device (`shared`) adopts its queue
 * instead, which the primary set up, and steers its routes to it. Throws an Error in words.
 */
export async function openDataPlane(
  settings: ServerSettings,
  log: Logger,
  callIds?: CallIdRange,
  shared?: SharedQueue,
): Promise<DataPlane> {
  const gre = new RawGreSocket({ localAddress: settings.listen ?? 0, log, ...(callIds ? { callIds } : {}) });
  let tun: TunInterface;
  try {
    tun = shared
      ? new TunInterface({ fd: shared.fds.queueFd, headroom: TUNNEL_HEADROOM, log })
      : new TunInterface({ name: settings.tunName, headroom: TUNNEL_HEADROOM, log });
  } catch (e) {
    gre.close();
    throw e;
  }
  let tunDrops: KernelTunDropList | undefined;
  let steering: TunSteering | undefined;
  if (shared) {
    // The maps' descriptors were inherited without close-on-exec: keep them from ip-up scripts.
    const addon = loadNative();
    addon.cloexec(shared.fds.steeringFd);
    steering = new TunSteering(addon, shared.fds.steeringFd);
    if (shared.fds.dropFd !== undefined) {
      addon.cloexec(shared.fds.dropFd);
      tunDrops = KernelTunDropList.adopt(shared.fds.dropFd, log);
    }
  } else tunDrops = openTunDropList(tun, log, settings.maxConnections);
  const close = (): void => {
    tunDrops?.close();
    steering?.close();
    tun.close();
    gre.close();
  };
  let routes: HostRoutes;
  try {
    routes = routeBackend();
    if (steering) routes = new SteeredRoutes(routes, steering, tun.name, shared!.index);
    else await setUpDevice(new IpRoute(), tun.name, settings);
  } catch (e) {
    close();
    throw new Error(`cannot set up ${tun.name}: ${(e as Error).message}`);
  }
  return { gre, tun, tunDrops, routes, close };
}

/**
 * Per-session routes and proxy ARP: through netlink (the addon); `ip` only sets devices up.
 * POPTOP_ROUTE_BACKEND=ip (undocumented) runs `ip` per change instead, for benchmarks. Throws an
 * Error in words when the netlink socket cannot be opened.
 */
export function routeBackend(): HostRoutes {
  if (process.env.POPTOP_ROUTE_BACKEND === 'ip') return new IpRoute();
  const netlink = new NetlinkRoutes();
  netlink.open();
  return netlink;
}

/** A TUN device made ready for sessions: no IPv6, the MTU, every localip, link up. */
export async function setUpDevice(ip: IpRoute, name: string, settings: ServerSettings): Promise<void> {
  await ip.disableIpv6(name);
  await ip.setMtu(name, Math.max(576, settings.policy.mtu));
  // Every localip (pptpd pairs them with remoteip): the host must own each to answer on it.
  for (const local of new Set(settings.localIps)) await ip.addAddress(name, local);
  await ip.setLinkUp(name);
}

/**
 * The primary's shared TUN device for `workers` workers (net/tun-queues.ts), set up: one device for
 * all of them. Undefined, with one line saying why, where the kernel refuses it (no CAP_BPF for
 * the steering program, or POPTOP_SHARED_TUN=off): each worker then opens a device of its own, or,
 * when the number of workers is the default, one process serves (cli/serve.ts).
 */
export async function openSharedTun(
  settings: ServerSettings,
  workers: number,
  log: Logger,
): Promise<SharedTun | undefined> {
  const own = settings.workersByDefault
    ? `one process serves every session, on ${settings.tunName} ("workers ${workers}" would run ${workers} processes with a TUN device each)`
    : `each worker opens its own TUN device (${workerTunName(settings.tunName, 0)} to ${workerTunName(settings.tunName, workers - 1)})`;
  if (process.env.POPTOP_SHARED_TUN === 'off') {
    log.info(`POPTOP_SHARED_TUN=off: ${own}`);
    return undefined;
  }
  let shared: SharedTun;
  try {
    shared = SharedTun.open(settings.tunName, workers, {
      sessions: settings.maxConnections,
      dropList: (target) => openTunDropList(target, log, settings.maxConnections),
    });
  } catch (e) {
    // Another server's device (or a leftover one): no fallback would get further.
    if ((e as NodeJS.ErrnoException).code === 'EBUSY')
      throw new Error(`cannot create ${settings.tunName}: ${(e as Error).message}`);
    log.info(`no TUN device shared by the workers (${(e as Error).message}): ${own}`);
    return undefined;
  }
  try {
    await setUpDevice(new IpRoute(), shared.name, settings);
  } catch (e) {
    shared.close();
    throw new Error(`cannot set up ${shared.name}: ${(e as Error).message}`);
  }
  return shared;
}

/**
 * The TUN device's kernel drop list (net/tun-filter.ts; the only process's device, or the workers'
 * shared one), or undefined with one line saying why not. POPTOP_TUN_FILTER=off (for benchmarks)
 * does without it.
 */
function openTunDropList(tun: FilterTarget, log: Logger, sessions: number): KernelTunDropList | undefined {
  if (process.env.POPTOP_TUN_FILTER === 'off') return undefined;
  return KernelTunDropList.tryAttach(tun, log, sessions);
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

/**
 * The server of one process (the only one, or a worker) on its data plane: routes through the
 * plane's back-end, file descriptors kept in reserve, the ip-up / ip-down scripts.
 */
export function createKernelServer(
  settings: ServerSettings,
  plane: DataPlane,
  log: Logger,
  worker?: { callIds: CallIdRange; authority: AddressAuthority },
): PptpServer {
  const fds = new FdReserve({ clock: new SystemClock(), log });
  const collectGarbage = fullGarbageCollection();
  if (!collectGarbage)
    log.debug('memory: no full garbage collection available; memory comes back as V8 needs it');
  return new PptpServer(settings, {
    clock: new SystemClock(),
    log,
    gre: plane.gre,
    tun: plane.tun,
    ...(plane.tunDrops ? { tunDrops: plane.tunDrops } : {}),
    fds,
    ...(collectGarbage ? { collectGarbage, trimHeap: () => loadNative().trimHeap() } : {}),
    ...(worker ?? {}),
    system: new KernelSystem({
      routes: plane.routes,
      fds,
      tunName: plane.tun.name,
      ipUpScript: settings.ipUpScript,
      ipDownScript: settings.ipDownScript,
    }),
  });
}

/**
 * The metrics of one process's server (the only one, or a worker's): it becomes the server's
 * observer, and counts the drops of the plane's GRE socket and TUN device and of bcrelay too.
 */
export function attachMetrics(
  server: PptpServer,
  plane: DataPlane,
  relay: Awaited<ReturnType<typeof startRelay>>,
): ServerMetrics {
  const metrics = new ServerMetrics(server, {
    extraDrops: [
      { layer: 'gre-socket', drops: plane.gre.drops },
      { layer: 'tun', drops: plane.tun.drops },
      ...(relay ? [{ layer: 'bcrelay', drops: relay.relay.drops }] : []),
    ],
  });
  server.observer = metrics;
  return metrics;
}

/**
 * The status listener (metrics and the page) of the process that answers for the server: the
 * only process, or the primary of workers. One that cannot start is logged and the VPN runs
 * without it (monitoring must not take the service down). Writes the kill token to `tokenFile`.
 */
export async function startStatusListener(
  address: StatusAddress,
  provider: StatusProvider,
  o: { log: Logger; tokenFile: string },
): Promise<{ close(): void } | undefined> {
  const http = new StatusHttpServer({ address, provider, log: o.log });
  try {
    const port = await http.listen();
    let tokenNote = '';
    try {
      mkdirSync(dirname(o.tokenFile), { recursive: true, mode: 0o700 });
      writeFileSync(o.tokenFile, `${http.token}\n`, { mode: 0o600 });
      chmodSync(o.tokenFile, 0o600);
      tokenNote = isLoopback(address.host)
        ? ''
        : `; this address is not loopback: open the page as http://${address.host}:${port}/#token=TOKEN with the token from ${o.tokenFile}`;
    } catch (e) {
      tokenNote = `; cannot write the token file ${o.tokenFile} (${(e as Error).message}): the kill button will not work from other hosts`;
    }
    o.log.info(
      `status page on http://${address.host}:${port}/ and Prometheus metrics on /metrics${tokenNote}`,
    );
  } catch (e) {
    o.log.error(`status listener ${address.host}:${address.port} not started: ${(e as Error).message}`);
    return undefined;
  }
  return { close: () => http.close() };
}
