import { constants, endianness } from 'node:os';
import { formatPrefix, type IPv4, prefixMask } from '../wire/ip.ts';
import {
  BPF_F_NO_PREALLOC,
  BPF_MAP_TYPE_LPM_TRIE,
  BPF_PROG_TYPE_SOCKET_FILTER,
  tunSteeringProgram,
} from './ebpf.ts';
import type { HostRoutes, InterfaceAddress, RouteOptions } from './iproute.ts';
import { errnoName, loadNative, type NativeAddon } from './native.ts';
import { NetlinkError } from './netlink.ts';
import type { FilterTarget, KernelTunDropList } from './tun-filter.ts';

/**
 * One TUN device for every worker process (`workers N`): a multi-queue device (IFF_MULTI_QUEUE)
 * with one queue per worker, and an eBPF steering program that puts each packet routed to the
 * device on the queue of the worker holding its destination. Admins see one device, as with one
 * process (`poptop0`), and firewall rules, `ip route` and the doctor's checks name it as before.
 *
 * The primary opens every queue (SharedTun) and keeps them open for as long as it runs, so a
 * queue's index never changes (the kernel renumbers queues when one closes): worker i inherits
 * queue i at spawn, and a restarted worker i inherits the same one. The steering map is an LPM
 * trie, prefix → queue: a worker adds its clients' addresses and the subnets behind them (RADIUS
 * Framed-Route) as it adds their routes (SteeredRoutes). When a worker dies its routes stay on the
 * shared device, so the primary takes its prefixes off the map (forgetQueue) and deletes their
 * routes itself before their addresses go back to the pool.
 */

/** Prefixes the steering map holds at most: clients' addresses and the subnets behind them. */
export const TUN_STEERING_MAX = 262144;

/**
 * Room in the steering map for `sessions` sessions: each one's address and, on average, three
 * subnets behind it (RADIUS Framed-Route). Before Linux 5.11 the whole room counts against locked
 * memory (48 octets each), so it is not simply the most there could ever be.
 */
export function steeringRoom(sessions: number): number {
  return Math.min(TUN_STEERING_MAX, Math.max(1024, 4 * Math.floor(sessions)));
}

/** A prefix of the steering map and the queue it goes to. */
export interface SteeredPrefix {
  readonly network: IPv4;
  readonly prefixLength: number;
  readonly queue: number;
}

const LITTLE_ENDIAN = endianness() === 'LE';
const { EBADF, EEXIST } = constants.errno;

/** What SteeredRoutes changes in the steering map (TunSteering; a Map in unit tests). */
export type Steering = Pick<TunSteering, 'steer' | 'unsteer' | 'queueOfAddress'>;

/** The steering map: an LPM trie { u32 prefix length, host order; 4 address octets } → u32 queue. */
export class TunSteering {
  private readonly addon: NativeAddon;
  private fd: number;
  private readonly key = new Uint8Array(8);
  private readonly keyView = new DataView(this.key.buffer);
  private readonly value = new Uint8Array(4);
  private readonly valueView = new DataView(this.value.buffer);

  constructor(addon: NativeAddon, mapFd: number) {
    this.addon = addon;
    this.fd = mapFd;
  }

  /** A new map with room for `entries` prefixes; throws an Error with code (EPERM: no CAP_BPF). */
  static create(addon: NativeAddon, entries: number): TunSteering {
    return new TunSteering(
      addon,
      addon.bpfMapCreate(BPF_MAP_TYPE_LPM_TRIE, 8, 4, entries, BPF_F_NO_PREALLOC),
    );
  }

  get mapFd(): number {
    return this.fd;
  }

  private setKey(network: IPv4, prefixLength: number): void {
    this.keyView.setUint32(0, prefixLength, LITTLE_ENDIAN);
    this.keyView.setUint32(4, (network & prefixMask(prefixLength)) >>> 0, false);
  }

  /**
   * Packets to `network/prefixLength` go to `queue` from now on: 0 or an errno. `onlyNew`: only if
   * that exact prefix is not in the map yet (EEXIST if it is), atomically, whoever holds it.
   */
  steer(network: IPv4, prefixLength: number, queue: number, onlyNew = false): number {
    if (this.fd < 0) return EBADF;
    this.setKey(network, prefixLength);
    this.valueView.setUint32(0, queue, LITTLE_ENDIAN);
    return this.addon.bpfMapUpdate(this.fd, this.key, this.value, onlyNew);
  }

  /**
   * The queue packets to `address` go to, if any: that of the longest prefix holding it (an LPM
   * lookup), which is its own /32 when the map has one.
   */
  queueOfAddress(address: IPv4): number | undefined {
    if (this.fd < 0) return undefined;
    this.setKey(address, 32);
    if (this.addon.bpfMapLookup(this.fd, this.key, this.value) !== 0) return undefined;
    return this.valueView.getUint32(0, LITTLE_ENDIAN);
  }

  /** Takes the prefix off: 0 or an errno (ENOENT: it was not there). */
  unsteer(network: IPv4, prefixLength: number): number {
    if (this.fd < 0) return EBADF;
    this.setKey(network, prefixLength);
    return this.addon.bpfMapDelete(this.fd, this.key);
  }

  /** Every prefix in the map and its queue (a walk of the keys, then a lookup of each). */
  list(): SteeredPrefix[] {
    if (this.fd < 0) return [];
    const keys: Uint8Array[] = [];
    let prev: Uint8Array | null = null;
    for (;;) {
      const next = new Uint8Array(8);
      if (this.addon.bpfMapNextKey(this.fd, prev, next) !== 0) break;
      keys.push(next);
      prev = next;
      // The map holds at most TUN_STEERING_MAX: a longer walk would be a kernel bug, not data.
      if (keys.length > TUN_STEERING_MAX) break;
    }
    const out: SteeredPrefix[] = [];
    for (const key of keys) {
      if (this.addon.bpfMapLookup(this.fd, key, this.value) !== 0) continue; // gone meanwhile
      const view = new DataView(key.buffer);
      out.push({
        prefixLength: view.getUint32(0, LITTLE_ENDIAN),
        network: view.getUint32(4, false),
        queue: this.valueView.getUint32(0, LITTLE_ENDIAN),
      });
    }
    return out;
  }

  close(): void {
    if (this.fd < 0) return;
    this.addon.closeFd(this.fd);
    this.fd = -1;
  }
}

/**
 * Whether this process may set up the workers' steering for `sessions` sessions: creates the map
 * (of the size the server would) and loads the program,
 * then closes both (no device needed). Undefined when it may, or why not, in words (`poptop doctor`).
 */
export function probeTunSteering(sessions = 256): string | undefined {
  try {
    const addon = loadNative();
    const steering = TunSteering.create(addon, steeringRoom(sessions));
    try {
      addon.closeFd(
        addon.bpfProgLoad(BPF_PROG_TYPE_SOCKET_FILTER, tunSteeringProgram(steering.mapFd), 'GPL'),
      );
    } finally {
      steering.close();
    }
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** What a worker inherits of a shared device: its queue, the steering map and the drop list's map. */
export interface SharedTunFds {
  readonly queueFd: number;
  readonly steeringFd: number;
  /** Absent where the kernel refused the drop filter (or POPTOP_TUN_FILTER=off). */
  readonly dropFd?: number;
}

/**
 * The primary's side: the device, every queue, the steering program attached and its map, and the
 * drop list (attached through the first queue). Nothing here reads packets.
 */
export class SharedTun implements FilterTarget {
  readonly name: string;
  private readonly addon: NativeAddon;
  private readonly queueFds: number[];
  readonly steering: TunSteering;
  /** The kernel drop list of the device; undefined where the kernel refused it. */
  private readonly dropList: KernelTunDropList | undefined;

  private constructor(
    addon: NativeAddon,
    name: string,
    queueFds: number[],
    steering: TunSteering,
    dropList: (target: FilterTarget) => KernelTunDropList | undefined,
  ) {
    this.addon = addon;
    this.name = name;
    this.queueFds = queueFds;
    this.steering = steering;
    this.dropList = dropList(this);
  }

  /**
   * Creates device `name` with `queues` queues and attaches the steering program, with room for
   * `sessions` sessions; then `dropList` attaches the drop list to it (KernelTunDropList.tryAttach),
   * or gives none. Throws an Error in words (nothing left open) when the kernel refuses the device
   * or the steering (code EBUSY: a device of that name exists).
   */
  static open(
    name: string,
    queues: number,
    o: { sessions: number; dropList: (target: FilterTarget) => KernelTunDropList | undefined },
  ): SharedTun {
    const addon = loadNative();
    const fds: number[] = [];
    let steering: TunSteering | undefined;
    const closeAll = (): void => {
      steering?.close();
      for (const fd of fds) addon.closeFd(fd);
    };
    try {
      let real = name;
      for (let i = 0; i < queues; i++) {
        // The first creates the device, and fails if it exists (another server's: EBUSY).
        const q = addon.tunOpenQueue(real, i === 0);
        fds.push(q.fd);
        real = q.name;
      }
      steering = TunSteering.create(addon, steeringRoom(o.sessions));
      const prog = addon.bpfProgLoad(BPF_PROG_TYPE_SOCKET_FILTER, tunSteeringProgram(steering.mapFd), 'GPL');
      const err = addon.tunQueueSetEbpf(fds[0]!, true, prog);
      addon.closeFd(prog); // the device holds it once attached
      if (err !== 0) throw new Error(`ioctl TUNSETSTEERINGEBPF on ${real}: ${addon.strerror(err)}`);
      return new SharedTun(addon, real, fds, steering, o.dropList);
    } catch (e) {
      closeAll();
      throw e;
    }
  }

  /** The drop filter, attached through the first queue (it is the device's): 0 or an errno. */
  setFilter(progFd: number): number {
    const first = this.queueFds[0];
    return first === undefined ? EBADF : this.addon.tunQueueSetEbpf(first, false, progFd);
  }

  /** What worker `index` inherits (its queue is the index-th). */
  fdsFor(index: number): SharedTunFds {
    const queueFd = this.queueFds[index];
    if (queueFd === undefined) throw new RangeError(`no queue ${index} on ${this.name}`);
    return {
      queueFd,
      steeringFd: this.steering.mapFd,
      ...(this.dropList ? { dropFd: this.dropList.fd } : {}),
    };
  }

  /**
   * Worker `queue` is gone: every prefix steered to it comes off the map, and its addresses off the
   * drop list (a listed address would stay black-holed for its next session). Returns the prefixes,
   * whose routes the caller deletes. Synchronous: a restarted worker's new prefixes cannot be
   * taken for the dead one's.
   */
  forgetQueue(queue: number): SteeredPrefix[] {
    const gone = this.steering.list().filter((p) => p.queue === queue);
    for (const p of gone) {
      this.steering.unsteer(p.network, p.prefixLength);
      if (p.prefixLength === 32) this.dropList?.forget(p.network);
    }
    return gone;
  }

  /** Closes every queue and the maps: the device goes, and every route through it. */
  close(): void {
    this.dropList?.close();
    for (const fd of this.queueFds.splice(0)) this.addon.closeFd(fd);
    this.steering.close();
  }
}

/**
 * A worker's routes on a shared device: each route added through `dev` also steers its prefix to
 * this worker's queue (first, so the first packets already arrive here), and each route deleted
 * takes it off. Only what this worker put in the map comes off it. Everything else goes to `inner`
 * unchanged.
 */
export class SteeredRoutes implements HostRoutes {
  private readonly inner: HostRoutes;
  private readonly steering: Steering;
  private readonly dev: string;
  private readonly queue: number;
  /** The prefixes this worker steered, "a.b.c.d/len". */
  private readonly mine = new Set<string>();

  constructor(inner: HostRoutes, steering: Steering, dev: string, queue: number) {
    this.inner = inner;
    this.steering = steering;
    this.dev = dev;
    this.queue = queue;
  }

  async addRoute(
    dev: string,
    dest: IPv4,
    prefixLength = 32,
    mtu?: number,
    opts?: RouteOptions,
  ): Promise<void> {
    if (dev !== this.dev) return this.inner.addRoute(dev, dest, prefixLength, mtu, opts);
    const prefix = formatPrefix(dest, prefixLength);
    // An exclusive route (a RADIUS Framed-Route) only if no session steers that prefix yet: one
    // of another worker, or of this one, has its route already (the kernel would refuse it too).
    const err = this.steering.steer(dest, prefixLength, this.queue, opts?.exclusive === true);
    if (err === EEXIST) throw new NetlinkError(`route ${prefix}`, EEXIST, 'File exists');
    if (err !== 0)
      throw new NetlinkError(
        `steering ${prefix} to this worker's queue of ${dev} (${errnoName(err)})`,
        err,
        loadNative().strerror(err),
      );
    this.mine.add(prefix);
    try {
      await this.inner.addRoute(dev, dest, prefixLength, mtu, opts);
    } catch (e) {
      this.mine.delete(prefix);
      this.steering.unsteer(dest, prefixLength);
      throw e;
    }
  }

  async delRoute(dev: string, dest: IPv4, prefixLength = 32, metric?: number): Promise<boolean> {
    if (dev !== this.dev) return this.inner.delRoute(dev, dest, prefixLength, metric);
    try {
      return await this.inner.delRoute(dev, dest, prefixLength, metric);
    } finally {
      // A client's /32 comes off only while it still points here. Its lease is not freed before
      // this deletion is over (server/host-attachment.ts), so another worker should not have it
      // yet; should it all the same, its steering is that worker's, and stays.
      const ours = prefixLength !== 32 || this.steering.queueOfAddress(dest) === this.queue;
      if (this.mine.delete(formatPrefix(dest, prefixLength)) && ours)
        this.steering.unsteer(dest, prefixLength);
    }
  }

  addProxyArp(ip: IPv4, lanIf: string): Promise<void> {
    return this.inner.addProxyArp(ip, lanIf);
  }

  delProxyArp(ip: IPv4, lanIf: string): Promise<boolean> {
    return this.inner.delProxyArp(ip, lanIf);
  }

  interfaceContaining(ip: IPv4): Promise<InterfaceAddress | undefined> {
    return this.inner.interfaceContaining(ip);
  }
}
