// In-memory test rigs for the PPTP control connection: a PAC and a PNS joined by a queued duplex
// (deterministic, no sockets), and a single connection driven by hand-made messages.
import { CallIdAllocator } from '../../src/pptp/call-ids.ts';
import { type ControlMessage, encodeControlMessage } from '../../src/pptp/codec.ts';
import {
  type CallInfo,
  ControlConnection,
  type ControlConnectionOptions,
  type PeerInfo,
} from '../../src/pptp/control.ts';
import { ControlFramer } from '../../src/pptp/framer.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { MemoryLogger } from '../../src/util/log.ts';
import { outgoingCallRequest } from '../support/pptp-messages.ts';

export type Extra = Partial<
  Omit<ControlConnectionOptions, 'role' | 'clock' | 'log' | 'callIds' | 'write' | 'close'>
>;

/** Everything one connection reported through its callbacks. */
export class Events {
  established: PeerInfo[] = [];
  up: CallInfo[] = [];
  down: { call: CallInfo; reason: string }[] = [];
  linkInfo: { call: CallInfo; send: number; recv: number }[] = [];
  closed: string[] = [];
  closeCalls = 0;
}

function callbacks(ev: Events): Extra {
  return {
    onEstablished: (p) => ev.established.push(p),
    onCallUp: (c) => ev.up.push(c),
    onCallDown: (call, reason) => ev.down.push({ call, reason }),
    onSetLinkInfo: (call, send, recv) => ev.linkInfo.push({ call, send, recv }),
    onClosed: (r) => ev.closed.push(r),
  };
}

interface Side {
  conn: ControlConnection;
  ev: Events;
  log: MemoryLogger;
  callIds: CallIdAllocator;
  /** Messages this side wrote, decoded. */
  sent: ControlMessage[];
}

/** A PAC and a PNS over an in-memory duplex. Writes are queued; pump() delivers them in order. */
export class Pair {
  readonly clock = new ManualClock();
  readonly pac: Side;
  readonly pns: Side;
  /** When true, bytes in flight are lost (a dead network). */
  blackhole = false;
  /** Sees every write, in order (e.g. to build a capture). */
  onWrite: ((from: 'pac' | 'pns', bytes: Uint8Array) => void) | undefined;
  private readonly queues = { pac: [] as Uint8Array[], pns: [] as Uint8Array[] };
  private readonly closing = { pac: false, pns: false };
  private readonly gone = { pac: false, pns: false };

  constructor(pacExtra: Extra = {}, pnsExtra: Extra = {}) {
    this.pac = this.side('pac', pacExtra);
    this.pns = this.side('pns', pnsExtra);
  }

  private side(role: 'pac' | 'pns', extra: Extra): Side {
    const ev = new Events();
    const log = new MemoryLogger({ prefix: role });
    const callIds = new CallIdAllocator();
    const sent: ControlMessage[] = [];
    const tap = new ControlFramer();
    const conn = new ControlConnection({
      role,
      clock: this.clock,
      log,
      callIds,
      ...callbacks(ev),
      ...extra,
      write: (bytes) => {
        if (this.closing[role] || this.gone[role]) throw new Error(`${role} wrote after close()`);
        tap.push(bytes.slice());
        for (let m = tap.next(); m; m = tap.next()) sent.push(m);
        this.onWrite?.(role, bytes);
        this.queues[role].push(bytes);
      },
      close: () => {
        ev.closeCalls++;
        this.closing[role] = true;
      },
    });
    return { conn, ev, log, callIds, sent };
  }

  /** Deliver queued bytes (and the TCP close after them) until nothing moves. */
  pump(): void {
    for (let moved = true; moved; ) {
      moved = false;
      for (const from of ['pac', 'pns'] as const) {
        const to = from === 'pac' ? this.pns : this.pac;
        const q = this.queues[from];
        while (q.length > 0) {
          const bytes = q.shift()!;
          moved = true;
          if (!this.blackhole) to.conn.receive(bytes);
        }
        if (this.closing[from] && !this.gone[from]) {
          this.gone[from] = true;
          moved = true;
          to.conn.transportClosed();
        }
      }
    }
  }

  advance(ms: number, step = 1000): void {
    for (let t = 0; t < ms; t += step) {
      this.clock.advance(Math.min(step, ms - t));
      this.pump();
    }
  }

  /** Start both sides and bring the control connection up. */
  establish(): this {
    this.pac.conn.start();
    this.pns.conn.start();
    this.pump();
    return this;
  }
}

/** One connection whose peer is the test: feed() messages or raw bytes, read what it sent. */
export class Solo {
  readonly clock = new ManualClock();
  readonly ev = new Events();
  readonly log = new MemoryLogger();
  readonly conn: ControlConnection;
  readonly sent: ControlMessage[] = [];
  readonly callIds: CallIdAllocator;
  private readonly tap = new ControlFramer();

  constructor(role: 'pac' | 'pns', extra: Extra = {}, callIds = new CallIdAllocator()) {
    this.callIds = callIds;
    this.conn = new ControlConnection({
      role,
      clock: this.clock,
      log: this.log,
      callIds,
      ...callbacks(this.ev),
      ...extra,
      write: (bytes) => {
        if (this.ev.closeCalls > 0) throw new Error('wrote after close()');
        this.tap.push(bytes.slice());
        for (let m = this.tap.next(); m; m = this.tap.next()) this.sent.push(m);
      },
      close: () => {
        this.ev.closeCalls++;
      },
    });
  }

  feed(...msgs: ControlMessage[]): this {
    for (const m of msgs) this.conn.receive(encodeControlMessage(m));
    return this;
  }

  /** The messages sent since the last call. */
  take(): ControlMessage[] {
    return this.sent.splice(0);
  }

  last(): ControlMessage | undefined {
    return this.sent[this.sent.length - 1];
  }
}

export const SCCRQ: ControlMessage = {
  type: 'start-control-connection-request',
  protocolVersion: 0x0100,
  framingCapabilities: 1,
  bearerCapabilities: 1,
  maxChannels: 0,
  firmwareRevision: 2600,
  hostName: '',
  vendor: 'Microsoft Windows NT',
};

export const SCCRP: ControlMessage = {
  type: 'start-control-connection-reply',
  protocolVersion: 0x0100,
  resultCode: 1,
  errorCode: 0,
  framingCapabilities: 2,
  bearerCapabilities: 0,
  maxChannels: 0,
  firmwareRevision: 1,
  hostName: 'MikroTik',
  vendor: 'MikroTik',
};

export function ocrq(callId: number): ControlMessage {
  return outgoingCallRequest(callId, { callSerial: 31240 });
}
