import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { formatIPv4, type IPv4, parseIPv4 } from '../wire/ip.ts';

/**
 * Routes, addresses, proxy ARP and forwarding through iproute2's `ip` command (run with
 * execFile, never a shell). Each failure is an Error naming the command and quoting ip's own
 * message. `netns` runs every command inside that network namespace (`ip -n NS ...`).
 */

/** Runs `ip` with these arguments and resolves with its stdout. */
export type IpExec = (args: readonly string[]) => Promise<string>;

/** An IPv4 address on an interface, as read from `ip -j addr`. */
export interface InterfaceAddress {
  readonly ifname: string;
  readonly address: IPv4;
  readonly prefixLength: number;
}

/** The real `ip`: rejects with "ip ARGS: <ip's stderr>" or a hint when iproute2 is missing. */
export const execIp: IpExec = (args) =>
  new Promise((resolve, reject) => {
    execFile('ip', [...args], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const cmd = `ip ${args.join(' ')}`;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new Error(`${cmd}: the ip command (iproute2) is not installed`, { cause: err }));
      }
      const why = stderr.trim() || err.message;
      const hint = /Operation not permitted/.test(why) ? ' (needs root or CAP_NET_ADMIN)' : '';
      reject(new Error(`${cmd}: ${why}${hint}`, { cause: err }));
    });
  });

/**
 * What a server needs per session: a host route through the TUN device and proxy ARP on the LAN.
 * IpRoute does it by running `ip` (one process per change); NetlinkRoutes (net/netlink.ts) through
 * rtnetlink in the addon. Deletes resolve with false when there was nothing to delete.
 */
export interface HostRoutes {
  addRoute(dev: string, dest: IPv4, prefixLength?: number, mtu?: number, opts?: RouteOptions): Promise<void>;
  delRoute(dev: string, dest: IPv4, prefixLength?: number, metric?: number): Promise<boolean>;
  addProxyArp(ip: IPv4, lanIf: string): Promise<void>;
  delProxyArp(ip: IPv4, lanIf: string): Promise<boolean>;
  interfaceContaining(ip: IPv4): Promise<InterfaceAddress | undefined>;
}

/** How a route is added besides its destination, device and MTU. */
export interface RouteOptions {
  /** The route's metric (its priority in the kernel). @default 0 */
  metric?: number;
  /** Fail (EEXIST, "File exists") rather than replace a route that is already there. @default false */
  exclusive?: boolean;
}

/** ip's words when a route (ESRCH) or a neighbour entry (ENOENT) to delete is not there. */
const NOTHING_TO_DELETE = /RTNETLINK answers: (No such process|No such file or directory)$/;

export interface IpRouteOptions {
  /** Run every command in this network namespace. */
  netns?: string;
  /** How to run `ip` (tests inject a fake). @default execIp */
  exec?: IpExec;
  /** The sysctl file for IPv4 forwarding. @default '/proc/sys/net/ipv4/ip_forward' */
  ipForwardPath?: string;
}

export class IpRoute implements HostRoutes {
  private readonly exec: IpExec;
  private readonly prefix: readonly string[];
  private readonly ipForwardPath: string;

  constructor(opts: IpRouteOptions = {}) {
    this.exec = opts.exec ?? execIp;
    this.prefix = opts.netns ? ['-n', opts.netns] : [];
    this.ipForwardPath = opts.ipForwardPath ?? '/proc/sys/net/ipv4/ip_forward';
  }

  private run(...args: string[]): Promise<string> {
    return this.exec([...this.prefix, ...args]);
  }

  async setLinkUp(dev: string): Promise<void> {
    await this.run('link', 'set', 'dev', dev, 'up');
  }

  async setLinkDown(dev: string): Promise<void> {
    await this.run('link', 'set', 'dev', dev, 'down');
  }

  async setMtu(dev: string, mtu: number): Promise<void> {
    await this.run('link', 'set', 'dev', dev, 'mtu', String(mtu));
  }

  /** `ip addr add LOCAL/PREFIX dev DEV`. */
  async addAddress(dev: string, local: IPv4, prefixLength = 32): Promise<void> {
    await this.run('addr', 'add', `${formatIPv4(local)}/${prefixLength}`, 'dev', dev);
  }

  /** Point-to-point form: `ip addr add LOCAL peer REMOTE dev DEV` (also installs REMOTE/32). */
  async addPeerAddress(dev: string, local: IPv4, remote: IPv4): Promise<void> {
    await this.run('addr', 'add', formatIPv4(local), 'peer', formatIPv4(remote), 'dev', dev);
  }

  async delPeerAddress(dev: string, local: IPv4, remote: IPv4): Promise<void> {
    await this.run('addr', 'del', formatIPv4(local), 'peer', formatIPv4(remote), 'dev', dev);
  }

  /**
   * `ip route add DEST/LEN dev DEV [mtu MTU] [metric M]`: with `mtu`, the kernel knows the path MTU
   * to DEST. An existing route is an error here whatever `opts.exclusive` says.
   */
  async addRoute(
    dev: string,
    dest: IPv4,
    prefixLength = 32,
    mtu?: number,
    opts: RouteOptions = {},
  ): Promise<void> {
    const extra = mtu === undefined ? [] : ['mtu', String(mtu)];
    if (opts.metric) extra.push('metric', String(opts.metric));
    await this.run('route', 'add', `${formatIPv4(dest)}/${prefixLength}`, 'dev', dev, ...extra);
  }

  /** `ip route del DEST/LEN dev DEV [metric M]`; false when there was no such route. */
  async delRoute(dev: string, dest: IPv4, prefixLength = 32, metric?: number): Promise<boolean> {
    const extra = metric ? ['metric', String(metric)] : [];
    return this.runDelete('route', 'del', `${formatIPv4(dest)}/${prefixLength}`, 'dev', dev, ...extra);
  }

  /** Answer ARP for `ip` on the LAN interface (pppd's proxyarp): `ip neigh add proxy IP dev LANIF`. */
  async addProxyArp(ip: IPv4, lanIf: string): Promise<void> {
    await this.run('neigh', 'add', 'proxy', formatIPv4(ip), 'dev', lanIf);
  }

  /** `ip neigh del proxy IP dev LANIF`; false when there was no such entry. */
  async delProxyArp(ip: IPv4, lanIf: string): Promise<boolean> {
    return this.runDelete('neigh', 'del', 'proxy', formatIPv4(ip), 'dev', lanIf);
  }

  private async runDelete(...args: string[]): Promise<boolean> {
    try {
      await this.run(...args);
      return true;
    } catch (e) {
      if (NOTHING_TO_DELETE.test((e as Error).message)) return false;
      throw e;
    }
  }

  /**
   * Switch IPv6 off on `dev` (no router solicitations or MLD reports on a device that only
   * carries IPv4). Best effort: a kernel without IPv6 has nothing to switch off.
   */
  async disableIpv6(dev: string): Promise<void> {
    try {
      await writeFile(`/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`, '1\n');
    } catch {
      /* no IPv6 in this kernel or namespace */
    }
  }

  /** Every IPv4 address of every interface (`ip -j addr`). */
  async addresses(): Promise<InterfaceAddress[]> {
    return parseIpAddrJson(await this.run('-j', 'addr'));
  }

  /** The interface whose subnet contains `ip` (for proxy ARP), or undefined. */
  async interfaceContaining(ip: IPv4): Promise<InterfaceAddress | undefined> {
    return findSubnetContaining(await this.addresses(), ip);
  }

  /** Whether IPv4 forwarding is on (in the namespace of this process, whatever `netns` says). */
  async readIpForward(): Promise<boolean> {
    return (await readFile(this.ipForwardPath, 'utf8')).trim() === '1';
  }

  /** Turns IPv4 forwarding on (in the namespace of this process). */
  async enableIpForward(): Promise<void> {
    try {
      await writeFile(this.ipForwardPath, '1\n');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const hint = code === 'EACCES' || code === 'EROFS' || code === 'EPERM' ? ' (needs root)' : '';
      throw new Error(`cannot enable IPv4 forwarding in ${this.ipForwardPath}: ${code ?? e}${hint}`, {
        cause: e,
      });
    }
  }
}

/**
 * Parses `ip -j addr` output into IPv4 addresses. Point-to-point addresses (`local X peer Y`)
 * carry the peer's prefix, not a subnet, and are returned with prefixLength 32.
 */
export function parseIpAddrJson(json: string): InterfaceAddress[] {
  const out: InterfaceAddress[] = [];
  const links: unknown = JSON.parse(json);
  if (!Array.isArray(links)) throw new Error('ip -j addr: expected a JSON array');
  for (const link of links as { ifname?: unknown; addr_info?: unknown }[]) {
    if (typeof link.ifname !== 'string' || !Array.isArray(link.addr_info)) continue;
    for (const a of link.addr_info as {
      family?: unknown;
      local?: unknown;
      prefixlen?: unknown;
      address?: unknown;
    }[]) {
      if (a.family !== 'inet' || typeof a.local !== 'string' || typeof a.prefixlen !== 'number') continue;
      const address = parseIPv4(a.local);
      if (address === undefined) continue;
      const pointToPoint = typeof a.address === 'string' && a.address !== a.local;
      out.push({ ifname: link.ifname, address, prefixLength: pointToPoint ? 32 : a.prefixlen });
    }
  }
  return out;
}

/** The address whose subnet (prefix < 32, not loopback) contains `ip`; the longest prefix wins. */
export function findSubnetContaining(
  addrs: readonly InterfaceAddress[],
  ip: IPv4,
): InterfaceAddress | undefined {
  let best: InterfaceAddress | undefined;
  for (const a of addrs) {
    if (a.prefixLength >= 32 || a.address >>> 24 === 127) continue;
    const mask = a.prefixLength === 0 ? 0 : (0xffffffff << (32 - a.prefixLength)) >>> 0;
    if ((a.address & mask) >>> 0 !== (ip & mask) >>> 0) continue;
    if (!best || a.prefixLength > best.prefixLength) best = a;
  }
  return best;
}
