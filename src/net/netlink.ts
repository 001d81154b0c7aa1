import { formatIPv4, type IPv4 } from '../wire/ip.ts';
import {
  findSubnetContaining,
  type HostRoutes,
  type InterfaceAddress,
  type RouteOptions,
} from './iproute.ts';
import { errnoName, loadNative, type NativeAddon } from './native.ts';

/** The part of the addon NetlinkRoutes uses (tests inject a fake). */
export type NetlinkCalls = Pick<
  NativeAddon,
  'ifIndex' | 'routeAdd' | 'routeDel' | 'proxyArpAdd' | 'proxyArpDel' | 'addresses' | 'netlinkFd' | 'strerror'
>;

/** A netlink request the kernel refused: the message says what, on which interface, and why. */
export class NetlinkError extends Error {
  /** The errno name, e.g. "ENODEV". */
  readonly code: string;
  readonly errno: number;
  constructor(what: string, errno: number, text: string) {
    super(`${what}: ${text}`);
    this.name = 'NetlinkError';
    this.errno = errno;
    this.code = errnoName(errno);
  }
}

const ENODEV = 19;
const ESRCH = 3;
const ENOENT = 2;

/**
 * Host routes and proxy ARP through rtnetlink in the addon: one netlink socket for the process,
 * one request and its acknowledgement per change (microseconds), no process and no new file
 * descriptor per session. Interface indexes are looked up once per name and again if the
 * kernel says the interface is gone (a device recreated under the same name).
 *
 * Deleting something that is not there resolves with false (not an error): a route the kernel
 * already removed with its device, or a second release.
 */
export class NetlinkRoutes implements HostRoutes {
  private readonly nl: NetlinkCalls;
  private readonly indexes = new Map<string, number>();

  constructor(opts: { addon?: NetlinkCalls } = {}) {
    this.nl = opts.addon ?? loadNative();
  }

  /**
   * Opens the netlink socket now (rather than at the first session), so that a process at its
   * file descriptor limit can still change routes. Throws an Error in words if it cannot.
   */
  open(): void {
    const fd = this.nl.netlinkFd();
    if (fd < 0) {
      const hint = -fd === 1 || -fd === 13 ? ' (needs root or CAP_NET_ADMIN)' : '';
      throw new NetlinkError('cannot open a netlink socket', -fd, `${this.nl.strerror(-fd)}${hint}`);
    }
  }

  /**
   * A route to dest/prefixLength through `dev`. A host route (the default, for a client's tunnel
   * address) replaces one that is there; with `opts.exclusive` (a subnet behind a client) an
   * existing route is never replaced: the kernel's EEXIST comes back as a NetlinkError.
   */
  async addRoute(
    dev: string,
    dest: IPv4,
    prefixLength = 32,
    mtu?: number,
    opts: RouteOptions = {},
  ): Promise<void> {
    const what = `route to ${formatIPv4(dest)}${prefixLength === 32 ? '' : `/${prefixLength}`} via ${dev}`;
    this.request(what, dev, (index) =>
      this.nl.routeAdd(dest, index, mtu ?? 0, prefixLength, opts.metric ?? 0, opts.exclusive ? 1 : 0),
    );
  }

  async delRoute(dev: string, dest: IPv4, prefixLength = 32, metric?: number): Promise<boolean> {
    const what = `deleting the route to ${formatIPv4(dest)}${prefixLength === 32 ? '' : `/${prefixLength}`} via ${dev}`;
    return this.request(
      what,
      dev,
      (index) => this.nl.routeDel(dest, index, prefixLength, metric ?? 0),
      ESRCH,
    );
  }

  async addProxyArp(ip: IPv4, lanIf: string): Promise<void> {
    this.request(`proxy ARP for ${formatIPv4(ip)} on ${lanIf}`, lanIf, (index) =>
      this.nl.proxyArpAdd(ip, index),
    );
  }

  async delProxyArp(ip: IPv4, lanIf: string): Promise<boolean> {
    return this.request(
      `deleting proxy ARP for ${formatIPv4(ip)} on ${lanIf}`,
      lanIf,
      (index) => this.nl.proxyArpDel(ip, index),
      ENOENT,
    );
  }

  /** Every IPv4 address of every interface, from one netlink dump. */
  async addresses(): Promise<InterfaceAddress[]> {
    return this.nl.addresses().map((a) => ({
      ifname: a.name,
      address: a.local >>> 0,
      prefixLength: a.address !== a.local ? 32 : a.prefixLength,
    }));
  }

  /** The interface whose subnet contains `ip` (for proxy ARP), or undefined. */
  async interfaceContaining(ip: IPv4): Promise<InterfaceAddress | undefined> {
    return findSubnetContaining(await this.addresses(), ip);
  }

  /**
   * Runs `call` with the index of `dev`; 0 → true, `absent` → false (nothing to delete), any other
   * errno → NetlinkError. ENODEV once more with a fresh index, in case the device was recreated.
   */
  private request(what: string, dev: string, call: (index: number) => number, absent?: number): boolean {
    for (let attempt = 0; ; attempt++) {
      const index = this.index(what, dev);
      const errno = call(index);
      if (errno === 0) return true;
      if (absent !== undefined && errno === absent) return false;
      if (errno === ENODEV && attempt === 0) {
        this.indexes.delete(dev);
        continue;
      }
      throw new NetlinkError(what, errno, this.nl.strerror(errno));
    }
  }

  private index(what: string, dev: string): number {
    let index = this.indexes.get(dev);
    if (index === undefined) {
      try {
        index = this.nl.ifIndex(dev);
      } catch (e) {
        const errno = -((e as { errno?: number }).errno ?? -ENODEV);
        throw new NetlinkError(what, errno, this.nl.strerror(errno));
      }
      this.indexes.set(dev, index);
    }
    return index;
  }
}
