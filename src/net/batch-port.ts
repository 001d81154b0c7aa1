import { DropCounter } from '../util/counters.ts';
import { type Logger, nullLogger } from '../util/log.ts';
import {
  type BatchCallback,
  errnoName,
  loadNative,
  type NativeAddon,
  type NativePort,
  TABLE_ROW,
} from './native.ts';

/** Why a native device dropped a packet (errno names go in the detail). */
export type NativeDropReason =
  | 'receive error'
  | 'malformed or larger than a receive slot'
  | 'send after close'
  | 'send failed';

/** Receives one packet: a view into the shared receive buffer, valid only during the call. */
export type RowCallback = (packet: Uint8Array, src: number, dst: number) => void;

/**
 * The part shared by RawGreSocket and TunInterface: one native port, its receive dispatch and
 * its batched send.
 *
 * Receive: the addon drains the fd in batches into one preallocated buffer and calls back once
 * per batch; each packet is handed on as a `subarray` view of that buffer (no copy, no Buffer
 * per packet). The view is overwritten by the next batch: a consumer that keeps bytes beyond
 * its callback must copy them.
 *
 * Send: packets are staged as they are (no copy) and go out together, with one sendmmsg, when
 * `slots` are staged or when the current callback's microtasks run: that is after the receive
 * batch that produced them and before the addon reads the next one, so a staged view of a
 * receive buffer is still intact when it is sent. A failure is counted, never thrown.
 */
export class BatchPort {
  readonly slots: number;
  readonly slotSize: number;
  private readonly addon: NativeAddon;
  private readonly port: NativePort;
  private readonly drops: DropCounter<NativeDropReason>;
  private readonly rx: Uint8Array;
  private readonly rxTable: Uint32Array;
  private readonly staged: Uint8Array[] = [];
  private readonly stagedTo: Uint32Array;
  private readonly status: Uint32Array;
  private flushScheduled = false;
  private cb: RowCallback | undefined;
  private started = false;
  private closed = false;
  private paused = false;

  constructor(
    addon: NativeAddon,
    port: NativePort,
    slots: number,
    slotSize: number,
    drops: DropCounter<NativeDropReason>,
  ) {
    this.addon = addon;
    this.port = port;
    this.slots = slots;
    this.slotSize = slotSize;
    this.drops = drops;
    this.rx = new Uint8Array(port.rx);
    this.rxTable = new Uint32Array(port.rxTable);
    this.stagedTo = new Uint32Array(slots);
    this.status = new Uint32Array(slots);
  }

  get name(): string {
    return this.port.name;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Sets the receive callback (replacing any earlier one) and starts polling the fd. */
  onPacket(cb: RowCallback): void {
    this.cb = cb;
    if (this.started || this.closed) return;
    this.started = true;
    this.addon.start(this.port.handle, this.onBatch);
    if (this.paused) this.addon.setPaused(this.port.handle, true);
  }

  /**
   * Stop reading (true) or read again (false). Meanwhile the kernel holds what arrives up to its
   * queue or buffer and drops the rest, without waking us; a batch being delivered is finished.
   * A paused port does not keep the event loop alive (a stopped poll handle is inactive). Never
   * throws: should the kernel refuse to poll again (it could only be out of memory), that is
   * counted and logged, and the port stays paused until the next call.
   */
  setPaused(paused: boolean): void {
    if (paused === this.paused) return;
    if (this.started && !this.closed) {
      try {
        this.addon.setPaused(this.port.handle, paused);
      } catch (e) {
        this.drops.drop('receive error', `polling again: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
        return;
      }
    }
    this.paused = paused;
  }

  private readonly onBatch: BatchCallback = (count, dropped, errno) => {
    if (errno !== 0) this.drops.drop('receive error', errnoName(errno));
    for (let i = 0; i < dropped; i++) this.drops.drop('malformed or larger than a receive slot');
    const t = this.rxTable;
    for (let i = 0; i < count && !this.closed; i++) {
      const o = i * TABLE_ROW;
      const off = t[o]!;
      this.cb?.(this.rx.subarray(off, off + t[o + 1]!), t[o + 2]!, t[o + 3]!);
    }
  };

  /**
   * Stages one packet (kept by reference, not copied: its bytes must stay as they are until the
   * current callback's microtasks have run) for `dst`; sent with the others of this turn.
   */
  send(packet: Uint8Array, dst: number): void {
    if (this.closed) return void this.drops.drop('send after close');
    const n = this.staged.length;
    this.staged.push(packet);
    this.stagedTo[n] = dst;
    if (n + 1 === this.slots) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flush);
    }
  }

  /** Sends everything staged now (one sendmmsg for GRE). */
  readonly flush = (): void => {
    this.flushScheduled = false;
    const n = this.staged.length;
    if (n === 0) return;
    if (this.closed) {
      this.staged.length = 0;
      for (let i = 0; i < n; i++) this.drops.drop('send after close');
      return;
    }
    const sent = this.addon.sendMany(this.port.handle, this.staged, this.stagedTo, n, this.status);
    this.staged.length = 0;
    if (sent < n) {
      for (let i = 0; i < n; i++) {
        const errno = this.status[i]!;
        if (errno !== 0) this.drops.drop('send failed', errnoName(errno));
      }
    }
  };

  /** Whether a started receive keeps the event loop (and so the process) alive. Default: yes. */
  setRef(ref: boolean): void {
    if (!this.closed) this.addon.setRef(this.port.handle, ref);
  }

  /** Sends what is staged, stops receiving and closes the fd; idempotent. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.cb = undefined;
    this.addon.close(this.port.handle);
  }
}

/** Sizes shared by the native devices' options. */
export interface NativeDeviceOptions {
  /** Packets per batch (recvmmsg/sendmmsg, or reads per readiness event). @default 64 */
  batchSize?: number;
  /** Buffer per packet; a packet that fills it counts as truncated. @default 4096 */
  slotSize?: number;
  log?: Logger;
}

/**
 * What RawGreSocket and TunInterface share: opening a native port through the addon, the drop
 * counter, receive dispatch, and the ref/unref/close lifecycle.
 */
export abstract class NativeDevice {
  readonly drops: DropCounter<NativeDropReason>;
  protected readonly port: BatchPort;
  protected readonly native: NativePort;

  protected constructor(
    what: string,
    opts: NativeDeviceOptions,
    open: (addon: NativeAddon, slots: number, slotSize: number) => NativePort,
  ) {
    const addon = loadNative();
    const slots = opts.batchSize ?? 64;
    const slotSize = opts.slotSize ?? 4096;
    this.drops = new DropCounter<NativeDropReason>(opts.log ?? nullLogger, what);
    this.native = open(addon, slots, slotSize);
    this.port = new BatchPort(addon, this.native, slots, slotSize, this.drops);
  }

  /** Each received packet: a view valid only during the call (see BatchPort). */
  onPacket(cb: RowCallback): void {
    this.port.onPacket(cb);
  }

  /** Let the process exit while this device is open (`ref()` undoes it). */
  unref(): void {
    this.port.setRef(false);
  }

  ref(): void {
    this.port.setRef(true);
  }

  /** Stop reading, or read again: see BatchPort.setPaused. */
  setPaused(paused: boolean): void {
    this.port.setPaused(paused);
  }

  close(): void {
    this.port.close();
  }
}
