import { RepeatedEvents } from '../util/counters.ts';
import type { Logger } from '../util/log.ts';
import { nullLogger } from '../util/log.ts';
import { formatIPv4, type IPv4 } from '../wire/ip.ts';
import { BPF_F_NO_PREALLOC, BPF_MAP_TYPE_HASH, BPF_PROG_TYPE_SOCKET_FILTER, tunDropProgram } from './ebpf.ts';
import type { TunDropList } from './interfaces.ts';
import { errnoName, loadNative, type NativeAddon } from './native.ts';

/** Where the drop filter goes: a TUN device (TunInterface), or a shared one's queue (SharedTun). */
export interface FilterTarget {
  readonly name: string;
  /** TUNSETFILTEREBPF (progFd -1: none): 0 or an errno. */
  setFilter(progFd: number): number;
}

/** Addresses the kernel may drop for at once, at most: one per session whose GRE send queue is full. */
export const TUN_DROP_LIST_MAX = 65536;

/**
 * Creates the map (room for `entries` addresses), checks that the kernel can take an address off
 * it again, and loads the program reading it: both fds, or an Error in words (nothing left open).
 */
function loadDropFilter(addon: NativeAddon, entries: number): { mapFd: number; progFd: number } {
  const mapFd = addon.bpfMapCreate(BPF_MAP_TYPE_HASH, 4, 8, entries, BPF_F_NO_PREALLOC);
  try {
    // 0.0.0.0 is never routed to the device: an address listed for good would black-hole a client.
    const key = new Uint8Array(4);
    const value = new Uint8Array(8);
    let probe = addon.bpfMapUpdate(mapFd, key, value);
    if (probe === 0) probe = addon.bpfMapTake(mapFd, key, value);
    if (probe !== 0)
      throw new Error(
        `the kernel's eBPF map cannot list an address and take it off (${addon.strerror(probe)})`,
      );
    return { mapFd, progFd: addon.bpfProgLoad(BPF_PROG_TYPE_SOCKET_FILTER, tunDropProgram(mapFd), 'GPL') };
  } catch (e) {
    addon.closeFd(mapFd);
    throw e;
  }
}

/**
 * Whether this process may set up the drop list: loads it as `attach` does, then closes it (no
 * device needed). Undefined when it may, or why not, in words (`poptop doctor`).
 */
export function probeTunDropList(): string | undefined {
  try {
    const addon = loadNative();
    const { mapFd, progFd } = loadDropFilter(addon, 1);
    addon.closeFd(progFd);
    addon.closeFd(mapFd);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * The kernel half of TunDropList: an eBPF filter on the TUN device (net/ebpf.ts tunDropProgram)
 * and the hash map it reads, address → packets dropped. While an address is in the map the kernel
 * drops what is routed to it before queueing it for us, so a flood towards one client whose GRE
 * queue is full costs the server no reads, and every other session's packets still queue as before
 * (the device's queue is one for all). Needs root or CAP_BPF; `attach` throws an Error in words
 * when the kernel refuses, and the server then drops such packets after reading them.
 */
export class KernelTunDropList implements TunDropList {
  private readonly addon: NativeAddon;
  /** The device it is attached to; none when another process attached it (a shared device). */
  private readonly tun: FilterTarget | undefined;
  private mapFd: number;
  private readonly key = new Uint32Array(1);
  private readonly keyBytes = new Uint8Array(this.key.buffer);
  private readonly value = new BigUint64Array(1);
  private readonly valueBytes = new Uint8Array(this.value.buffer);
  private readonly events: RepeatedEvents;

  private constructor(addon: NativeAddon, tun: FilterTarget | undefined, mapFd: number, log: Logger) {
    this.addon = addon;
    this.tun = tun;
    this.mapFd = mapFd;
    this.events = new RepeatedEvents(log);
  }

  /**
   * Creates the map (room for `maxEntries` addresses: the sessions there can be), checks that the
   * kernel can take an address off it again, loads the program and attaches it to `tun`; throws an
   * Error in words.
   */
  static attach(
    tun: FilterTarget,
    log: Logger = nullLogger,
    maxEntries = TUN_DROP_LIST_MAX,
  ): KernelTunDropList {
    const addon = loadNative();
    const entries = Math.max(1, Math.min(TUN_DROP_LIST_MAX, Math.floor(maxEntries)));
    const { mapFd, progFd } = loadDropFilter(addon, entries);
    try {
      const err = tun.setFilter(progFd);
      if (err !== 0) throw new Error(`ioctl TUNSETFILTEREBPF on ${tun.name}: ${addon.strerror(err)}`);
    } catch (e) {
      addon.closeFd(mapFd);
      throw e;
    } finally {
      // The device holds the program (and the program the map) once attached.
      addon.closeFd(progFd);
    }
    return new KernelTunDropList(addon, tun, mapFd, log);
  }

  /**
   * `attach` with room for `sessions` sessions (256 at least: `connections` may grow with a
   * reload), or undefined with one line saying why not: the server then reads what is routed to a
   * client whose GRE send queue is full, and drops it itself.
   */
  static tryAttach(tun: FilterTarget, log: Logger, sessions: number): KernelTunDropList | undefined {
    try {
      return KernelTunDropList.attach(tun, log, Math.max(256, sessions));
    } catch (e) {
      log.info(
        `no kernel drop filter on ${tun.name} (${(e as Error).message}): packets towards a client whose GRE send queue is full are read, then dropped`,
      );
      return undefined;
    }
  }

  /** The map's descriptor (-1 once closed), for the processes that share the device. */
  get fd(): number {
    return this.mapFd;
  }

  /**
   * The list of a shared multi-queue device (net/tun-queues.ts), whose map `mapFd` this process
   * inherited: the process that opened the device attached the filter, and takes a dead reader's
   * addresses off. Closing closes only this process's descriptor.
   */
  static adopt(mapFd: number, log: Logger = nullLogger): KernelTunDropList {
    return new KernelTunDropList(loadNative(), undefined, mapFd, log);
  }

  add(address: IPv4): boolean {
    if (this.mapFd < 0) return false;
    this.key[0] = address;
    this.value[0] = 0n;
    const err = this.addon.bpfMapUpdate(this.mapFd, this.keyBytes, this.valueBytes);
    if (err === 0) return true;
    this.events.note(
      `add ${errnoName(err)}`,
      () =>
        `the kernel did not take ${formatIPv4(address)} into the TUN drop filter (${this.addon.strerror(err)}): its excess is dropped after reading`,
      'warn',
    );
    return false;
  }

  /** Takes `address` off if it is listed, quietly (a dead worker's, net/tun-queues.ts). */
  forget(address: IPv4): void {
    if (this.mapFd < 0) return;
    this.key[0] = address;
    this.addon.bpfMapTake(this.mapFd, this.keyBytes, this.valueBytes);
  }

  remove(address: IPv4): number {
    if (this.mapFd < 0) return 0;
    this.key[0] = address;
    const err = this.addon.bpfMapTake(this.mapFd, this.keyBytes, this.valueBytes);
    if (err === 0) return Number(this.value[0]);
    this.events.note(
      `remove ${errnoName(err)}`,
      () => `could not take ${formatIPv4(address)} out of the TUN drop filter: ${this.addon.strerror(err)}`,
      'warn',
    );
    return 0;
  }

  /** Detaches the program (if attached here and the device is still open) and closes the map. */
  close(): void {
    if (this.mapFd < 0) return;
    this.tun?.setFilter(-1);
    this.addon.closeFd(this.mapFd);
    this.mapFd = -1;
  }
}
