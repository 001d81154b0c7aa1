import { rename, unlink, writeFile } from 'node:fs/promises';
import { describeFramedRoute, type FramedRoute } from '../aaa/radius/framed-route.ts';
import type { HostRoutes } from '../net/iproute.ts';
import type { NetlinkError } from '../net/netlink.ts';
import type { Logger } from '../util/log.ts';
import { formatIPv4, formatPrefix, type IPv4 } from '../wire/ip.ts';
import { type HookContext, runHook } from './hooks.ts';
import { type WtmpEntry, WtmpWriter, wtmpLayout } from './wtmp.ts';

/**
 * What a session asks of the host system when it comes up and goes down: a host route to the
 * client through the TUN device, routes to subnets behind it (RADIUS Framed-Route), proxy ARP on
 * the LAN, the radattr file, and pppd's ip-up / ip-down scripts.
 * The kernel implementation changes routes through HostRoutes (netlink in `serve`); tests use
 * RecordingSystem. None of these throw: failures are logged in words and the session goes on (as
 * pppd does when a hook fails).
 */
export interface SystemOps {
  /**
   * The host route to a client through the TUN device; `mtu` when the session's MTU is below the
   * TUN device's (a peer MRU under 1404 with MPPE): the route carries it, so the host sends no
   * larger packets and answers DF ones with Fragmentation-Needed instead of losing them silently.
   */
  addClientRoute(ip: IPv4, log: Logger, mtu?: number): Promise<void>;
  delClientRoute(ip: IPv4, log: Logger): Promise<void>;
  /**
   * A subnet behind a client (RADIUS Framed-Route) through the TUN device, with the session's `mtu`
   * as for its own route. A route the kernel already has is never replaced (it is not ours): that,
   * like any failure, is logged and resolves false.
   */
  addFramedRoute(route: FramedRoute, log: Logger, mtu?: number): Promise<boolean>;
  /** Removes a route addFramedRoute added. */
  delFramedRoute(route: FramedRoute, log: Logger): Promise<void>;
  /** Publish `ip` on the LAN interface whose subnet contains it; returns that interface, if any. */
  addProxyArp(ip: IPv4, log: Logger): Promise<string | undefined>;
  delProxyArp(ip: IPv4, lanIf: string, log: Logger): Promise<void>;
  runHook(kind: 'ip-up' | 'ip-down', ctx: HookContext, log: Logger): Promise<void>;
  /**
   * The RADIUS attributes file of a session (`plugin radattr.so`), mode 0600, replacing one left
   * from an earlier run. Resolves false (logged) when it cannot be written.
   */
  writeRadattr(path: string, text: string, log: Logger): Promise<boolean>;
  /** Removes it (one already gone is fine). */
  removeRadattr(path: string, log: Logger): Promise<void>;
  /** pptpd `logwtmp`: a wtmp record for a session coming up (login) or ending (logout). */
  wtmp(kind: 'login' | 'logout', entry: WtmpEntry, log: Logger): Promise<void>;
  /** What is in place on the host now, and what failed (status, tests). */
  counters?(): SystemCounters;
}

export interface SystemCounters {
  /** Host routes this process added and has not removed. */
  hostRoutes: number;
  /** Routes to subnets behind clients (RADIUS Framed-Route) added and not removed. */
  framedRoutes: number;
  /** Proxy ARP entries this process published and has not removed. */
  proxyArp: number;
  /** Route or proxy ARP changes the kernel refused (each is logged at warn). */
  failures: number;
}

export interface KernelSystemOptions {
  routes: HostRoutes;
  tunName: string;
  ipUpScript: string;
  ipDownScript: string;
  /** @default '/var/log/wtmp' */
  wtmpPath?: string;
  /** ip-up / ip-down scripts running at once; the others wait their turn. @default 4 */
  hookConcurrency?: number;
  /** Told about the descriptors a running hook holds (its stdio pipes). */
  fds?: { opened(n: number): () => void };
}

/** Descriptors the parent holds while a hook runs (stdin, stdout and stderr pipes). */
const FDS_PER_HOOK = 3;

export class KernelSystem implements SystemOps {
  private readonly o: KernelSystemOptions;
  private readonly routes = new Set<IPv4>();
  private readonly framed = new Set<string>();
  private readonly published = new Set<string>();
  private failures = 0;
  private hooksRunning = 0;
  private readonly hooksWaiting: (() => void)[] = [];

  constructor(o: KernelSystemOptions) {
    this.o = o;
  }

  counters(): SystemCounters {
    return {
      hostRoutes: this.routes.size,
      framedRoutes: this.framed.size,
      proxyArp: this.published.size,
      failures: this.failures,
    };
  }

  async addClientRoute(ip: IPv4, log: Logger, mtu?: number): Promise<void> {
    try {
      await this.o.routes.addRoute(this.o.tunName, ip, 32, mtu);
      this.routes.add(ip);
    } catch (e) {
      this.failures++;
      log.warn(`cannot add the route to ${formatIPv4(ip)} via ${this.o.tunName}: ${(e as Error).message}`);
    }
  }

  /** A route already gone is fine (debug); any other failure leaves it in the kernel: warn. */
  async delClientRoute(ip: IPv4, log: Logger): Promise<void> {
    try {
      const removed = await this.o.routes.delRoute(this.o.tunName, ip);
      this.routes.delete(ip);
      if (!removed) log.debug(`route to ${formatIPv4(ip)} via ${this.o.tunName} was already gone`);
    } catch (e) {
      this.failures++;
      log.warn(
        `cannot remove the route to ${formatIPv4(ip)} via ${this.o.tunName}, it stays in the kernel: ${(e as Error).message}`,
      );
    }
  }

  async addFramedRoute(route: FramedRoute, log: Logger, mtu?: number): Promise<boolean> {
    const { network, prefixLength, metric } = route;
    const what = `the route to ${describeFramedRoute(route)} via ${this.o.tunName} (RADIUS Framed-Route)`;
    try {
      await this.o.routes.addRoute(this.o.tunName, network, prefixLength, mtu, { metric, exclusive: true });
      this.framed.add(formatPrefix(network, prefixLength));
      log.info(`added ${what}`);
      return true;
    } catch (e) {
      this.failures++;
      const exists = (e as NetlinkError).code === 'EEXIST' || /File exists/.test((e as Error).message);
      log.warn(
        exists
          ? `cannot add ${what}: the kernel has a route to ${formatPrefix(network, prefixLength)} already, which poptop does not replace`
          : `cannot add ${what}: ${(e as Error).message}`,
      );
      return false;
    }
  }

  async delFramedRoute(route: FramedRoute, log: Logger): Promise<void> {
    const { network, prefixLength, metric } = route;
    const what = `the route to ${describeFramedRoute(route)} via ${this.o.tunName}`;
    try {
      const removed = await this.o.routes.delRoute(this.o.tunName, network, prefixLength, metric);
      this.framed.delete(formatPrefix(network, prefixLength));
      if (!removed) log.debug(`${what} was already gone`);
    } catch (e) {
      this.failures++;
      log.warn(`cannot remove ${what}, it stays in the kernel: ${(e as Error).message}`);
    }
  }

  async addProxyArp(ip: IPv4, log: Logger): Promise<string | undefined> {
    try {
      const lan = await this.o.routes.interfaceContaining(ip);
      if (!lan || lan.ifname === this.o.tunName) {
        log.info(`proxyarp: no LAN interface has a subnet containing ${formatIPv4(ip)}; nothing to publish`);
        return undefined;
      }
      await this.o.routes.addProxyArp(ip, lan.ifname);
      this.published.add(`${ip}@${lan.ifname}`);
      log.info(`proxyarp: publishing ${formatIPv4(ip)} on ${lan.ifname}`);
      return lan.ifname;
    } catch (e) {
      this.failures++;
      log.warn(`proxyarp: cannot publish ${formatIPv4(ip)}: ${(e as Error).message}`);
      return undefined;
    }
  }

  async delProxyArp(ip: IPv4, lanIf: string, log: Logger): Promise<void> {
    try {
      const removed = await this.o.routes.delProxyArp(ip, lanIf);
      this.published.delete(`${ip}@${lanIf}`);
      if (!removed) log.debug(`proxyarp: ${formatIPv4(ip)} on ${lanIf} was already gone`);
    } catch (e) {
      this.failures++;
      log.warn(`proxyarp: cannot remove ${formatIPv4(ip)} from ${lanIf}: ${(e as Error).message}`);
    }
  }

  /**
   * Hooks are processes: a burst of sessions coming up or going down together runs at most
   * `hookConcurrency` of them at once (in order), so they cannot take a file descriptor or a
   * process slot per session.
   */
  async runHook(kind: 'ip-up' | 'ip-down', ctx: HookContext, log: Logger): Promise<void> {
    const script = kind === 'ip-up' ? this.o.ipUpScript : this.o.ipDownScript;
    if (!script) return;
    // A finishing hook hands its slot straight to the next in line.
    if (this.hooksRunning >= Math.max(1, this.o.hookConcurrency ?? 4))
      await new Promise<void>((resolve) => this.hooksWaiting.push(resolve));
    else this.hooksRunning++;
    const release = this.o.fds?.opened(FDS_PER_HOOK);
    try {
      await runHook(script, ctx, log);
    } finally {
      release?.();
      const next = this.hooksWaiting.shift();
      if (next) next();
      else this.hooksRunning--;
    }
  }

  async writeRadattr(path: string, text: string, log: Logger): Promise<boolean> {
    try {
      // Written aside and renamed: a script never reads half a file, and a file of an earlier
      // session (or a link someone placed there) is replaced, not written through.
      const tmp = `${path}.tmp${process.pid}`;
      await unlink(tmp).catch(() => {});
      await writeFile(tmp, text, { mode: 0o600, flag: 'wx' });
      await rename(tmp, path);
      log.debug(`radattr: wrote ${path}`);
      return true;
    } catch (e) {
      log.warn(`radattr: cannot write ${path}: ${(e as Error).message}`);
      return false;
    }
  }

  async removeRadattr(path: string, log: Logger): Promise<void> {
    try {
      await unlink(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        log.warn(`radattr: cannot remove ${path}: ${(e as Error).message}`);
    }
  }

  private wtmpWriter: WtmpWriter | null | undefined;

  async wtmp(kind: 'login' | 'logout', entry: WtmpEntry, log: Logger): Promise<void> {
    if (this.wtmpWriter === undefined) {
      const layout = wtmpLayout();
      this.wtmpWriter = layout ? new WtmpWriter(this.o.wtmpPath ?? '/var/log/wtmp', layout) : null;
      if (!layout) log.warn(`logwtmp: the wtmp record layout of ${process.arch} is not known; not recording`);
    }
    if (!this.wtmpWriter) return;
    try {
      await (kind === 'login' ? this.wtmpWriter.login(entry) : this.wtmpWriter.logout(entry));
    } catch (e) {
      log.warn(`logwtmp: cannot write ${this.o.wtmpPath ?? '/var/log/wtmp'}: ${(e as Error).message}`);
    }
  }
}

/** Records what a session asked for (tests, and the in-memory demo). */
export class RecordingSystem implements SystemOps {
  readonly routes = new Set<IPv4>();
  /** Framed routes in place, as "10.1.0.0/16". */
  readonly framedRoutes = new Set<string>();
  /** Framed routes to refuse (as the kernel would one that exists), as "10.1.0.0/16". */
  readonly refuseFramedRoutes = new Set<string>();
  readonly proxyArp = new Map<IPv4, string>();
  readonly hooks: { kind: 'ip-up' | 'ip-down'; ctx: HookContext }[] = [];
  /** RADIUS attributes files written and not removed: path → text. */
  readonly radattrFiles = new Map<string, string>();
  readonly wtmpRecords: { kind: 'login' | 'logout'; entry: WtmpEntry }[] = [];
  /** Interface reported as containing every address, or undefined for none. */
  lanInterface: string | undefined;

  async addClientRoute(ip: IPv4): Promise<void> {
    this.routes.add(ip);
  }
  async delClientRoute(ip: IPv4): Promise<void> {
    this.routes.delete(ip);
  }
  async addFramedRoute(route: FramedRoute): Promise<boolean> {
    const key = formatPrefix(route.network, route.prefixLength);
    if (this.refuseFramedRoutes.has(key)) return false;
    this.framedRoutes.add(key);
    return true;
  }
  async delFramedRoute(route: FramedRoute): Promise<void> {
    this.framedRoutes.delete(formatPrefix(route.network, route.prefixLength));
  }
  async addProxyArp(ip: IPv4): Promise<string | undefined> {
    if (this.lanInterface) this.proxyArp.set(ip, this.lanInterface);
    return this.lanInterface;
  }
  async delProxyArp(ip: IPv4): Promise<void> {
    this.proxyArp.delete(ip);
  }
  async runHook(kind: 'ip-up' | 'ip-down', ctx: HookContext): Promise<void> {
    this.hooks.push({ kind, ctx });
  }
  async writeRadattr(path: string, text: string): Promise<boolean> {
    this.radattrFiles.set(path, text);
    return true;
  }
  async removeRadattr(path: string): Promise<void> {
    this.radattrFiles.delete(path);
  }
  async wtmp(kind: 'login' | 'logout', entry: WtmpEntry): Promise<void> {
    this.wtmpRecords.push({ kind, entry });
  }
  counters(): SystemCounters {
    return {
      hostRoutes: this.routes.size,
      framedRoutes: this.framedRoutes.size,
      proxyArp: this.proxyArp.size,
      failures: 0,
    };
  }
}
