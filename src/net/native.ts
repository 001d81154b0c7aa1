import { createRequire } from 'node:module';
import { constants } from 'node:os';

/**
 * The N-API addon (native/poptop.c, built by node-gyp at `npm install`): raw GRE socket, TUN
 * device, batched receive into preallocated buffers, libuv readiness. No protocol logic in it.
 */

/** An opaque port handle (a raw GRE socket or a TUN device) owned by the addon. */
export type NativeHandle = { readonly __brand: 'poptop-native-handle' };

/** What `openGre` / `openTun` return: the handle plus the buffers shared with C. */
export interface NativePort {
  readonly handle: NativeHandle;
  readonly fd: number;
  /** 'gre' for a raw socket; the kernel's interface name for a TUN device. */
  readonly name: string;
  /** slots × slotSize bytes where received packets land. */
  readonly rx: ArrayBuffer;
  /** slots rows of 4 uint32: [offset in rx, length, source, destination] (host order). */
  readonly rxTable: ArrayBuffer;
}

/** Called once per received batch; `errno` ≠ 0 reports a receive error (count is then 0). */
export type BatchCallback = (count: number, dropped: number, errno: number) => void;

export interface NativeAddon {
  /** bufferBytes > 0 sets SO_RCVBUF/SO_SNDBUF (forced past the sysctl limit when privileged). */
  openGre(
    bindAddr: number,
    slots: number,
    slotSize: number,
    bufferBytes: number,
    filter?: Uint8Array,
  ): NativePort;
  /**
   * Packets are read `headroom` bytes into their slot: the bytes before each are scratch. A number
   * instead of a name adopts that descriptor: a queue tunOpenQueue opened, inherited from the parent.
   */
  openTun(nameOrFd: string | number, slots: number, slotSize: number, headroom: number): NativePort;
  /**
   * A queue of the multi-queue TUN device `name`, not read here: its fd, close-on-exec, for a child
   * process to adopt. `create`: the device must not exist yet (EBUSY if it does; "%d" as for
   * openTun); else one more queue of it. Throws like openTun.
   */
  tunOpenQueue(name: string, create: boolean): { fd: number; name: string };
  /** Sets close-on-exec on an inherited descriptor: 0 or an errno. */
  cloexec(fd: number): number;
  /**
   * Receive-only raw IPv4 socket for IP protocol `protocol`, bound to interface `ifname`
   * (SO_BINDTODEVICE): copies of what the host receives there, IPv4 header kept. `filter`: a
   * classic BPF program (8-byte struct sock_filter each, host byte order) run by the kernel first.
   */
  openRawIp(
    protocol: number,
    ifname: string,
    slots: number,
    slotSize: number,
    bufferBytes: number,
    filter?: Uint8Array,
  ): NativePort;
  start(handle: NativeHandle, cb: BatchCallback): void;
  /**
   * packets[0..count-1] to dsts[i], sent from where they are (one sendmmsg for GRE, a write each
   * for TUN); status[i] gets 0 or the errno; returns how many were sent. count ≤ slots.
   */
  sendMany(
    handle: NativeHandle,
    packets: readonly Uint8Array[],
    dsts: Uint32Array,
    count: number,
    status: Uint32Array,
  ): number;
  setRef(handle: NativeHandle, ref: boolean): void;
  /** Stop reading a started port (the kernel keeps or drops what arrives meanwhile), or read again. */
  setPaused(handle: NativeHandle, paused: boolean): void;
  close(handle: NativeHandle): void;
  // rtnetlink, on one socket per process opened on first use (see net/netlink.ts).
  /** The index of interface `name`; throws an Error with code (ENODEV) like the openers. */
  ifIndex(name: string): number;
  /**
   * IPv4 route dst/prefixLength (default 32) through interface `ifindex`; mtu 0 for none; metric is
   * the route's priority. Created or replaced, or with `exclusive` only created (EEXIST when the
   * kernel has that route already). 0 or an errno.
   */
  routeAdd(
    dst: number,
    ifindex: number,
    mtu: number,
    prefixLength?: number,
    metric?: number,
    exclusive?: number,
  ): number;
  /** Deletes that route (metric 0: whatever its metric): 0 or an errno (ESRCH when there was none). */
  routeDel(dst: number, ifindex: number, prefixLength?: number, metric?: number): number;
  /** Proxy ARP entry for `ip` on `ifindex` (NTF_PROXY), created or replaced: 0 or an errno. */
  proxyArpAdd(ip: number, ifindex: number): number;
  /** Deletes it: 0 or an errno (ENOENT when there was none). */
  proxyArpDel(ip: number, ifindex: number): number;
  /** Every IPv4 address (RTM_GETADDR): `address` ≠ `local` for a point-to-point peer. Throws like ifIndex. */
  addresses(): NativeAddress[];
  /** The netlink socket's fd (opening it now if needed), or -errno. */
  netlinkFd(): number;
  /** The C library's text for an errno ("No such device"). */
  strerror(errno: number): string;
  /** malloc_trim(0): the C library's free heap pages back to the system; true if any went. */
  trimHeap(): boolean;
  // eBPF through bpf(2): root or CAP_BPF (see net/ebpf.ts for the programs, net/tun-filter.ts).
  /** A map's fd (close-on-exec); throws an Error with code (EPERM, EINVAL) like the openers. */
  bpfMapCreate(type: number, keySize: number, valueSize: number, maxEntries: number, flags: number): number;
  /** Loads a program (struct bpf_insn, 8 bytes each); its fd, or throws with the verifier's last line. */
  bpfProgLoad(type: number, insns: Uint8Array, license: string): number;
  /**
   * Creates or replaces the element `key` (BPF_ANY; `onlyNew`: only creates it, BPF_NOEXIST): 0 or
   * an errno (E2BIG: the map is full; EEXIST: with onlyNew, the key is there).
   */
  bpfMapUpdate(fd: number, key: Uint8Array, value: Uint8Array, onlyNew?: boolean): number;
  /** The element's value into `value`, and the element deleted: 0 or an errno (ENOENT: none). */
  bpfMapTake(fd: number, key: Uint8Array, value: Uint8Array): number;
  /** The element's value into `value`: 0 or an errno (ENOENT: none). */
  bpfMapLookup(fd: number, key: Uint8Array, value: Uint8Array): number;
  /** Deletes the element `key`: 0 or an errno (ENOENT: none). */
  bpfMapDelete(fd: number, key: Uint8Array): number;
  /** The key after `key` (null: the first) into `next`: 0 or an errno (ENOENT: no more). */
  bpfMapNextKey(fd: number, key: Uint8Array | null, next: Uint8Array): number;
  /** Closes an fd that bpfMapCreate, bpfProgLoad or tunOpenQueue returned: 0 or an errno. */
  closeFd(fd: number): number;
  /** TUNSETFILTEREBPF on an open TUN port (progFd -1: none): 0 or an errno (ENOTTY: not a TUN port). */
  tunSetFilter(handle: NativeHandle, progFd: number): number;
  /**
   * TUNSETFILTEREBPF, or with `steering` TUNSETSTEERINGEBPF (the program's return value picks each
   * packet's queue), on a queue fd from tunOpenQueue; both are the device's. 0 or an errno.
   */
  tunQueueSetEbpf(fd: number, steering: boolean, progFd: number): number;
}

/** One IPv4 address as the kernel lists it (host byte order). */
export interface NativeAddress {
  readonly index: number;
  readonly name: string;
  readonly local: number;
  readonly address: number;
  readonly prefixLength: number;
}

/** Size of one rx table row in uint32 words. */
export const TABLE_ROW = 4;

/** The error thrown when the addon has not been built. */
export const NOT_BUILT_MESSAGE = 'native addon not built: run npm install (needs python3, make, g++)';

let cached: NativeAddon | undefined;

/** Loads build/Release/poptop.node once; throws a clear Error if it is missing. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  try {
    cached = require('../../build/Release/poptop.node') as NativeAddon;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'MODULE_NOT_FOUND') throw e;
    throw new Error(NOT_BUILT_MESSAGE, { cause: e });
  }
  return cached;
}

/** The errno name for a number (for log lines), e.g. 11 → "EAGAIN". */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/** errno number → name; where names share a number (EAGAIN/EWOULDBLOCK) the first listed wins. */
const errnoNames = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!errnoNames.has(n)) errnoNames.set(n, name);
