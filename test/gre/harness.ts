/**
 * Two GRE channels cross-wired in memory over links that can lose, duplicate and delay
 * (hence reorder) packets, on a ManualClock with a seeded random source: deterministic, no sockets.
 */
import { GreChannel, type GreChannelOptions } from '../../src/gre/channel.ts';
import { decodeGreHeader, encodeGrePacket, type GreHeader } from '../../src/gre/codec.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { MemoryLogger } from '../../src/util/log.ts';

/** mulberry32: a small seeded PRNG so failures replay exactly. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface LinkOptions {
  loss?: number; // probability a packet is lost
  duplicate?: number; // probability a packet is delivered twice
  delayMs?: number; // base one-way delay
  jitterMs?: number; // extra uniform delay in [0, jitterMs): reorders packets
}

export type Options = Partial<
  Omit<GreChannelOptions, 'clock' | 'log' | 'sendPacket' | 'deliver' | 'peerCallId'>
>;

/** One end: its channel, the frames it delivered, the packets it sent. */
export interface End {
  channel: GreChannel;
  got: Uint8Array[];
  sent: GreHeader[];
  /** Highest ack (serial) that reached this end's channel. */
  lastAckIn: number | undefined;
  /** Most data packets seen unacknowledged on the wire when this end sent one. */
  maxWireInFlight: number;
}

export function frame(n: number, size = 8): Uint8Array {
  const f = new Uint8Array(Math.max(4, size));
  new DataView(f.buffer).setUint32(0, n >>> 0);
  return f;
}

export function frameNumber(f: Uint8Array): number {
  return new DataView(f.buffer, f.byteOffset, f.byteLength).getUint32(0);
}

/** A data (or ack-only, when seq is undefined) packet as a peer would send it to call id 1. */
export function packet(
  seq: number | undefined,
  ack?: number,
  payload = seq === undefined ? 0 : seq,
): Uint8Array {
  return encodeGrePacket({ callId: 1, seq, ack }, seq === undefined ? new Uint8Array(0) : frame(payload));
}

export function feed(ch: GreChannel, pkt: Uint8Array): void {
  ch.receive(pkt, decodeGreHeader(pkt));
}

export function pair(
  link: LinkOptions = {},
  opts: { a?: Options; b?: Options; seed?: number } = {},
): { clock: ManualClock; log: MemoryLogger; a: End; b: End } {
  const clock = new ManualClock();
  const log = new MemoryLogger();
  const rnd = seededRandom(opts.seed ?? 1);
  const ends: End[] = [];
  const make = (name: string, myId: number, peerId: number, o: Options | undefined): End => {
    const end: End = {
      channel: undefined as unknown as GreChannel,
      got: [],
      sent: [],
      lastAckIn: undefined,
      maxWireInFlight: 0,
    };
    end.channel = new GreChannel({
      peerRecvWindow: 64,
      ...o,
      clock,
      log: log.child(name),
      peerCallId: peerId,
      deliver: (p) => end.got.push(p.slice()),
      sendPacket: (pkt) => {
        const h = decodeGreHeader(pkt);
        if (h.callId !== peerId) throw new Error(`${name} sent to call id ${h.callId}`);
        end.sent.push(h);
        if (h.seq !== undefined) {
          const first = end.sent.find((x) => x.seq !== undefined)!.seq!;
          const inFlight = (h.seq - (end.lastAckIn ?? first - 1)) >>> 0;
          end.maxWireInFlight = Math.max(end.maxWireInFlight, inFlight);
        }
        transmit(pkt.slice(), ends[myId === 1 ? 1 : 0]!);
      },
    });
    return end;
  };
  const transmit = (pkt: Uint8Array, to: End): void => {
    if (rnd() < (link.loss ?? 0)) return;
    const copies = rnd() < (link.duplicate ?? 0) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = (link.delayMs ?? 1) + rnd() * (link.jitterMs ?? 0);
      clock.setTimer(delay, () => {
        const h = decodeGreHeader(pkt);
        if (h.ack !== undefined && (to.lastAckIn === undefined || ((h.ack - to.lastAckIn) | 0) > 0)) {
          to.lastAckIn = h.ack;
        }
        to.channel.receive(pkt, h);
      });
    }
  };
  ends.push(make('[a]', 1, 2, opts.a), make('[b]', 2, 1, opts.b));
  return { clock, log, a: ends[0]!, b: ends[1]! };
}
