/**
 * Data path against C, in one run: `node --import tsx bench/datapath.ts [roundMs] [rounds]`
 * (npm run bench:datapath).
 *
 * Builds bench/c/datapath.c with the system `cc -O2` into a temporary directory: a C reference
 * doing the per-packet work of our data path without syscalls (its own SHA-1 and RC4), started once
 * as a child. Then, in rounds, each case runs for `roundMs` (default 200) in C and then through our
 * modules in this process, or the other way round, and the ratio TS / C of that round is taken.
 * It prints the median µs per packet (process CPU) of each side and the median of the `rounds`
 * (default 12) ratios with their range. Short turns taken in pairs keep a machine whose speed drifts
 * (a shared VM) from favouring one side; one round before them warms both up.
 *
 *   send:    a 1400-octet IP packet copied into a slot with 32 octets of headroom (the TUN read),
 *            MppeFraming.encryptFrame in place (PPP + MPPE-128 stateless: key change per packet,
 *            RC4), GreChannel.sendFrame with the GRE header in front; an ack-only packet from the
 *            peer every 32 packets (readGreHeader + GreChannel.receive) keeps the window open.
 *   receive: a GRE packet copied into a buffer (the socket read) with its sequence number
 *            rewritten, readGreHeader, GreChannel.receive (sequence, ack, an ack-only packet out
 *            every 32), decodeFrame, MppeFraming.decrypt (header, coherency count, key change,
 *            RC4), inner protocol check. The peer's packets come from a ring of 1024 encrypted
 *            once beforehand; the decryptor starts over with the ring (both sides do the same).
 *   MPPE:    the encryptor alone (key change + RC4 over 1402 octets), for the share of MPPE.
 *
 * Before timing, the first packets of each direction from C and from TS must be equal byte for
 * byte (same keys, same packets) and decrypt to the same plaintext; otherwise exit 1. A turn stops
 * early at MAX_ITERATIONS packets.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { GreChannel } from '../src/gre/channel.ts';
import { encodeGreHeader, type GreHeader, readGreHeader } from '../src/gre/codec.ts';
import { decodeFrame } from '../src/ppp/frame.ts';
import { createMppe } from '../src/ppp/mppe/cipher.ts';
import { MppeFraming, type MppeFramingDropReason } from '../src/ppp/mppe/framing.ts';
import { SystemClock } from '../src/util/clock.ts';
import { DropCounter } from '../src/util/counters.ts';
import { nullLogger } from '../src/util/log.ts';
import { measurer, type Timing } from './measure.ts';
import { pinToOneProcessor } from './pin.ts';

const PACKET = 1400;
const HEADROOM = 32;
const RING = 1024;
const CALL_ID_PEER = 0x1234; // the key of the GRE we send
const CALL_ID_OURS = 0x0042; // the key of the GRE we receive
const MAX_ITERATIONS = 2_000_000;
const roundMs = Number(process.argv[2] ?? 200);
const rounds = Number(process.argv[3] ?? 12);

// Both sides on one processor: see bench/pin.ts.
const pinnedTo = pinToOneProcessor();
const SEND_START = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
const RECV_START = Uint8Array.from({ length: 16 }, (_, i) => 0x80 + i);
const NO_COMPRESSION = { acfc: false, pfc: false };
const PPP_IP = 0x0021;

function fail(message: string): never {
  console.error(`bench/datapath: ${message}`);
  process.exit(1);
}

/** IP packet number i: the same pattern as ip_packet() in bench/c/datapath.c. */
function ipPacket(out: Uint8Array, i: number): void {
  for (let k = 0; k < PACKET; k++) out[k] = (k * 7 + i * 13) & 0xff;
  out[0] = 0x45;
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

/** The server side of one call: its GRE channel and MPPE framing, as src/tunnel/call.ts wires them. */
class Server {
  framing!: MppeFraming;
  readonly channel: GreChannel;
  readonly drops = new DropCounter<MppeFramingDropReason>(nullLogger, 'MPPE');
  delivered = 0;
  lastIp: Uint8Array | undefined;
  acksOut = 0;
  sink = 0;

  constructor() {
    this.restartMppe();
    this.channel = new GreChannel({
      clock: new SystemClock(),
      log: nullLogger,
      peerCallId: CALL_ID_PEER,
      peerRecvWindow: 64,
      sendPacket: (p) => {
        this.sink ^= p[p.length - 1]!;
        if (p.length === 12) this.acksOut++;
      },
      deliver: (frame) => this.receiveFrame(frame),
    });
  }

  /** Fresh MPPE state (both directions' keys from their start keys). */
  restartMppe(): void {
    this.framing = new MppeFraming(
      {
        clock: new SystemClock(),
        drops: this.drops,
        sendResetRequest: () => fail('unexpected CCP Reset-Request in stateless mode'),
        failed: (reason) => fail(reason),
      },
      createMppe({ send: SEND_START, recv: RECV_START }, { bits: 128, stateless: true }),
    );
  }

  /** The link's receive path for one GRE payload (PppLink.receiveFrame → ncps receiveEncrypted). */
  receiveFrame(frame: Uint8Array): void {
    const f = decodeFrame(frame);
    if (f.protocol !== 0x00fd) fail(`frame of protocol 0x${f.protocol.toString(16)}`);
    const inner = this.framing.decrypt(f.info);
    if (inner === undefined || inner.protocol !== PPP_IP) fail('MPPE packet not decrypted to IPv4');
    this.delivered++;
    this.lastIp = inner.payload;
  }

  /** One IP packet at slot[HEADROOM..] out through MPPE and GRE, headers written in the headroom. */
  sendIp(ip: Uint8Array): void {
    const out = this.framing.encryptFrame(PPP_IP, ip, NO_COMPRESSION, HEADROOM, 16);
    this.channel.sendFrame(out.frame, out.headroom);
  }

  /** One GRE packet from the network (GreDemux's part: decode, call id check). */
  receiveGre(packet: Uint8Array): void {
    const header: GreHeader | string = readGreHeader(packet);
    if (typeof header === 'string') fail(`GRE refused: ${header}`);
    if (header.callId !== CALL_ID_OURS) fail(`GRE for call id ${header.callId}`);
    this.channel.receive(packet, header);
  }
}

/** The peer's packets: GRE (S+A) + FF03 00FD + MPPE(00 21 + IP packet i), as build_ring() in C. */
function buildRing(): Uint8Array[] {
  const peer = createMppe({ send: RECV_START, recv: SEND_START }, { bits: 128, stateless: true }).encryptor;
  const plain = new Uint8Array(2 + PACKET);
  const ring: Uint8Array[] = [];
  for (let i = 0; i < RING; i++) {
    const p = new Uint8Array(16 + 8 + PACKET);
    encodeGreHeader(p, 0, { callId: CALL_ID_OURS, payloadLength: PACKET + 8, seq: i, ack: 0xffffffff });
    p.set([0xff, 0x03, 0x00, 0xfd], 16);
    plain[0] = 0x00;
    plain[1] = 0x21;
    ipPacket(plain.subarray(2), i);
    peer.encryptInto(plain, p, 20);
    ring.push(p);
  }
  return ring;
}

/** Send packet i then receive ring packet i, three times, on one call; compared with C's output. */
function verify(cBinary: string, ring: Uint8Array[]): void {
  const c = spawnSync(cBinary, ['verify'], { encoding: 'utf8', timeout: 30_000 });
  if (c.status !== 0) fail(`C reference verify failed: ${c.stderr}`);
  const cLines = c.stdout.trim().split('\n');
  // One channel both ways, as C's verify does: later sends carry the ack of what was received.
  const server = new Server();
  let sent: Uint8Array | undefined;
  const lines: string[] = [];
  const slot = new Uint8Array(HEADROOM + PACKET);
  const capture = new GreChannel({
    clock: new SystemClock(),
    log: nullLogger,
    peerCallId: CALL_ID_PEER,
    peerRecvWindow: 64,
    sendPacket: (p) => {
      sent = p.slice();
    },
    deliver: (frame) => server.receiveFrame(frame),
  });
  for (let i = 0; i < 3; i++) {
    ipPacket(slot.subarray(HEADROOM), i);
    const out = server.framing.encryptFrame(PPP_IP, slot.subarray(HEADROOM), NO_COMPRESSION, HEADROOM, 16);
    capture.sendFrame(out.frame, out.headroom);
    if (!sent) fail('nothing sent');
    lines.push(`send ${i} ${hex(sent)}`);
    lines.push(`ring ${i} ${hex(ring[i]!)}`);
    const buf = ring[i]!.slice();
    const header = readGreHeader(buf);
    if (typeof header === 'string') fail(`GRE refused: ${header}`);
    capture.receive(buf, header);
    if (!server.lastIp) fail('nothing received');
    lines.push(`recv ${i} ${hex(server.lastIp)}`);
    server.lastIp = undefined;
  }
  const expected = new Uint8Array(PACKET);
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== cLines[i]) {
      const a = cLines[i] ?? '';
      const b = lines[i]!;
      let at = 0;
      while (at < a.length && a[at] === b[at]) at++;
      const from = Math.max(0, at - 40);
      fail(
        `C and TS differ in "${b.split(' ').slice(0, 2).join(' ')}" at character ${at}:\n` +
          `  C  …${a.slice(from, at + 40)}\n  TS …${b.slice(from, at + 40)}`,
      );
    }
    if (lines[i]!.startsWith('recv')) {
      ipPacket(expected, Number(lines[i]!.split(' ')[1]));
      if (!lines[i]!.endsWith(hex(expected))) fail(`received plaintext ${i} is not the packet sent`);
    }
  }
  console.log(
    `verified: C and TS give the same GRE/PPP/MPPE octets for 3 packets each way (${lines.length} comparisons)`,
  );
}

type CaseName = 'send' | 'recv' | 'mppe';

/** One timed case on our side: its state carries on from one measurement to the next, as in C. */
interface Case {
  run(ms: number): Timing;
}

function tsSend(): Case {
  const server = new Server();
  const slot = new Uint8Array(HEADROOM + PACKET);
  const ip = slot.subarray(HEADROOM);
  const template = new Uint8Array(PACKET);
  ipPacket(template, 0);
  const ack = new Uint8Array(12);
  let sent = 0;
  const step = (): void => {
    slot.set(template, HEADROOM);
    server.sendIp(ip);
    sent++;
    if ((sent & 31) === 0) {
      encodeGreHeader(ack, 0, { callId: CALL_ID_OURS, payloadLength: 0, ack: (sent - 1) >>> 0 });
      server.receiveGre(ack);
    }
  };
  const measure = measurer(step, MAX_ITERATIONS);
  return {
    run(ms) {
      const t = measure(ms);
      const s = server.channel.stats;
      if (s.txPackets !== sent || Object.keys(s.drops).length > 0 || server.drops.total > 0) {
        fail(`TS send lost packets: ${s.txPackets}/${sent} ${JSON.stringify(s.drops)}`);
      }
      return t;
    },
  };
}

function tsReceive(ring: Uint8Array[]): Case {
  const server = new Server();
  const buf = new Uint8Array(ring[0]!.length);
  let total = 0;
  const step = (): void => {
    const r = total % RING;
    if (r === 0) server.restartMppe(); // the ring starts the peer's keys over
    buf.set(ring[r]!);
    const seq = total;
    buf[8] = seq >>> 24;
    buf[9] = seq >>> 16;
    buf[10] = seq >>> 8;
    buf[11] = seq;
    total++;
    server.receiveGre(buf);
    server.sink ^= server.lastIp![PACKET - 1]!;
  };
  const measure = measurer(step, MAX_ITERATIONS);
  return {
    run(ms) {
      const t = measure(ms);
      if (server.delivered !== total || server.drops.total > 0) {
        fail(`TS receive delivered ${server.delivered} of ${total}`);
      }
      return t;
    },
  };
}

/** MPPE alone: encryptInto (key change + RC4 over protocol + packet) into a reused buffer. */
function tsMppe(): Case {
  const { encryptor } = createMppe({ send: SEND_START, recv: RECV_START }, { bits: 128, stateless: true });
  const plain = new Uint8Array(2 + PACKET);
  ipPacket(plain.subarray(2), 0);
  plain[1] = 0x21;
  const out = new Uint8Array(4 + PACKET);
  let sink = 0;
  const step = (): void => {
    encryptor.encryptInto(plain, out, 0);
    sink ^= out[PACKET + 1]!;
  };
  const measure = measurer(step, MAX_ITERATIONS);
  return {
    run(ms) {
      const t = measure(ms);
      if (sink === 0.5) console.log(sink); // keep the result alive
      return t;
    },
  };
}

/**
 * The C reference as a child that measures one case per command ("CASE MS MAX"), so that C and TS
 * take turns within a round and a change in the machine's speed reaches both sides of a pair.
 */
function cReference(binary: string): { run(tag: CaseName, ms: number): Promise<Timing>; close(): void } {
  const child = spawn(binary, ['serve'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    async run(tag, ms) {
      child.stdin!.write(`${tag} ${ms} ${MAX_ITERATIONS}\n`);
      const { value, done } = await lines.next();
      const m = done ? null : new RegExp(`^${tag} (\\d+) ([\\d.]+) ([\\d.]+)$`).exec(value as string);
      if (!m)
        fail(
          `C reference printed no ${tag} line (exit ${child.exitCode}): ${done ? 'end of output' : value}`,
        );
      return { n: Number(m[1]), wallUs: Number(m[2]), cpuUs: Number(m[3]) };
    },
    close() {
      child.stdin!.end();
    },
  };
}

function build(): { binary: string; dir: string; compiler: string } {
  const dir = mkdtempSync(join(tmpdir(), 'poptop-datapath-'));
  const source = join(dirname(fileURLToPath(import.meta.url)), 'c', 'datapath.c');
  const binary = join(dir, 'datapath');
  const cc = spawnSync('cc', ['-O2', '-o', binary, source], { encoding: 'utf8', timeout: 60_000 });
  if (cc.error || cc.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    fail(`could not build the C reference with cc -O2: ${cc.error?.message ?? cc.stderr}`);
  }
  const version = spawnSync('cc', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? 'cc';
  return { binary, dir, compiler: version };
}

const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const loadBefore = loadavg();
const { binary, dir, compiler } = build();
const c = cReference(binary);
try {
  console.log(
    `data path vs C, ${PACKET}-octet IP packets, MPPE-128 stateless; ${rounds} rounds of ${roundMs} ms per case and side ` +
      `after one to warm up; processor ${pinnedTo}; node ${process.version}, C: ${compiler} -O2`,
  );
  const ring = buildRing();
  verify(binary, ring);
  const cases: Record<CaseName, Case> = { send: tsSend(), recv: tsReceive(ring), mppe: tsMppe() };
  const names = Object.keys(cases) as CaseName[];
  const results = Object.fromEntries(
    names.map((n) => [n, { c: [] as Timing[], ts: [] as Timing[] }]),
  ) as Record<CaseName, { c: Timing[]; ts: Timing[] }>;
  for (let round = 0; round <= rounds; round++) {
    for (const name of names) {
      // C first in odd rounds, TS first in even ones: neither side always runs just after the other.
      let cTime: Timing;
      let tsTime: Timing;
      if (round % 2 === 1) {
        cTime = await c.run(name, roundMs);
        tsTime = cases[name].run(roundMs);
      } else {
        tsTime = cases[name].run(roundMs);
        cTime = await c.run(name, roundMs);
      }
      if (round === 0) continue; // warm-up: V8 compiles, caches fill
      results[name].c.push(cTime);
      results[name].ts.push(tsTime);
    }
  }
  c.close();
  const label: Record<CaseName, string> = { send: 'send', recv: 'receive', mppe: 'MPPE' };
  console.log(
    `per case: median µs per packet (process CPU), and TS / C per round: median [lowest – highest]`,
  );
  for (const name of names) {
    const { c: cs, ts } = results[name];
    const ratios = ts.map((t, k) => t.cpuUs / cs[k]!.cpuUs);
    const wallRatios = ts.map((t, k) => t.wallUs / cs[k]!.wallUs);
    console.log(
      `${label[name].padEnd(8)} TS ${median(ts.map((t) => t.cpuUs)).toFixed(2)} µs, C ${median(cs.map((t) => t.cpuUs)).toFixed(2)} µs: ` +
        `TS/C ${median(ratios).toFixed(2)} [${Math.min(...ratios).toFixed(2)} – ${Math.max(...ratios).toFixed(2)}]` +
        `  (wall: ${median(wallRatios).toFixed(2)})`,
    );
  }
  console.log(
    `notes: load average ${loadBefore} before, ${loadavg()} after; CPU is process time (TS includes V8's GC and compiler threads); ` +
      'both sides include a 1400-octet copy per packet standing for the TUN or socket read.',
  );
} finally {
  c.close();
  rmSync(dir, { recursive: true, force: true });
}
