/**
 * GRE data-path micro-benchmark: `node --import tsx bench/gre.ts [maxMs]`.
 * Reports header encode+decode and channel send → receive rates for 1400-byte payloads. Each
 * case runs for at most MAX_ITERATIONS or `maxMs` (default 1000 ms), whichever comes first.
 */
import { GreChannel } from '../src/gre/channel.ts';
import { decodeGreHeader, encodeGreHeader, GRE_HEADER_LENGTH_MAX } from '../src/gre/codec.ts';
import { ManualClock } from '../src/util/clock.ts';
import { nullLogger } from '../src/util/log.ts';

const PAYLOAD = 1400;
const MAX_ITERATIONS = 5_000_000;
const maxMs = Number(process.argv[2] ?? 1000);

function measure(name: string, step: (i: number) => void): void {
  for (let i = 0; i < 10_000; i++) step(i); // warm-up
  const start = performance.now();
  let n = 0;
  let elapsed = 0;
  while (n < MAX_ITERATIONS) {
    for (let k = 0; k < 1024; k++) step(n++);
    elapsed = performance.now() - start;
    if (elapsed >= maxMs) break;
  }
  const rate = n / (elapsed / 1000);
  const mbit = (rate * PAYLOAD * 8) / 1e6;
  console.log(
    `${name.padEnd(44)} ${Math.round(rate).toLocaleString('en').padStart(12)} pkt/s` +
      `  ${((elapsed * 1000) / n).toFixed(3)} µs/pkt  ${Math.round(mbit).toLocaleString('en')} Mbit/s`,
  );
}

function headerCodec(): void {
  const buf = new Uint8Array(GRE_HEADER_LENGTH_MAX + PAYLOAD);
  let sink = 0;
  measure('header encode+decode (S+A, 16 bytes)', (i) => {
    encodeGreHeader(buf, 0, { callId: 0x1234, payloadLength: PAYLOAD, seq: i >>> 0, ack: i >>> 0 });
    sink ^= decodeGreHeader(buf).seq ?? 0;
  });
  if (sink === 0.5) console.log(sink); // keep the result alive
}

/** Channel a → channel b, synchronously; b's acks (every 32 packets) flow straight back to a. */
function channelPair(zeroCopy: boolean): void {
  const clock = new ManualClock();
  let delivered = 0;
  let a: GreChannel | undefined;
  const b = new GreChannel({
    clock,
    log: nullLogger,
    peerCallId: 1,
    peerRecvWindow: 64,
    sendPacket: (p) => a?.receive(p, decodeGreHeader(p)),
    deliver: (p) => {
      delivered += p.length;
    },
  });
  a = new GreChannel({
    clock,
    log: nullLogger,
    peerCallId: 2,
    peerRecvWindow: 64,
    sendPacket: (p) => b.receive(p, decodeGreHeader(p)),
    deliver: () => {},
  });
  const sender = a;
  const payload = new Uint8Array(PAYLOAD).fill(0x5a);
  const framed = new Uint8Array(GRE_HEADER_LENGTH_MAX + PAYLOAD).fill(0x5a);
  const name = zeroCopy ? 'channel send→receive (headroom, no copy)' : 'channel send→receive (copying send)';
  measure(name, () => {
    if (zeroCopy) sender.sendWithHeadroom(framed, GRE_HEADER_LENGTH_MAX, PAYLOAD);
    else sender.send(payload);
  });
  const s = b.stats;
  if (s.delivered * PAYLOAD !== delivered || Object.keys(a.stats.drops).length > 0) {
    throw new Error(`bench lost packets: ${JSON.stringify(a.stats.drops)}`);
  }
}

console.log(`GRE micro-benchmark, ${PAYLOAD}-byte payloads, ≤ ${maxMs} ms per case, node ${process.version}`);
headerCodec();
channelPair(false);
channelPair(true);
