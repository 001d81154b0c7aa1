/**
 * Data path against C, in one run: `node --import tsx bench/datapath.ts [maxMs]` (npm run bench:datapath).
 *
 * Builds bench/c/datapath.c with the system `cc -O2` into a temporary directory: a C reference
 * doing the per-packet work of our data path without syscalls (its own SHA-1 and RC4). Then, in
 * rounds, runs it and the same work through our modules in this process, and prints µs per packet
 * (wall clock and process CPU) for each direction and the ratio TS / C.
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
 * byte (same keys, same packets) and decrypt to the same plaintext; otherwise exit 1. Each timed
 * case runs for at most MAX_ITERATIONS or `maxMs` (default 1000 ms), whichever comes first.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GreChannel } from '../src/gre/channel.ts';
import { encodeGreHeader, type GreHeader, readGreHeader } from '../src/gre/codec.ts';
import { decodeFrame } from '../src/ppp/frame.ts';
import { createMppe } from '../src/ppp/mppe/cipher.ts';
import { MppeFraming, type MppeFramingDropReason } from '../src/ppp/mppe/framing.ts';
import { SystemClock } from '../src/util/clock.ts';
import { DropCounter } from '../src/util/counters.ts';
import { nullLogger } from '../src/util/log.ts';

const PACKET = 1400;
const HEADROOM = 32;
const RING = 1024;
const CALL_ID_PEER = 0x1234; // the key of the GRE we send
const CALL_ID_OURS = 0x0042; // the key of the GRE we receive
const ROUNDS = 2;
const MAX_ITERATIONS = 2_000_000;
const maxMs = Number(process.argv[2] ?? 1000);
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

interface Timing {
  n: number;
  wallUs: number;
  cpuUs: number;
}

/** Runs `step` in batches of 256 until maxMs or MAX_ITERATIONS, after `warm` steps. */
function measure(warm: number, step: () => void): Timing {
  for (let i = 0; i < warm; i++) step();
  const w0 = performance.now();
  const c0 = process.cpuUsage();
  let n = 0;
  let elapsed = 0;
  while (n < MAX_ITERATIONS) {
    for (let k = 0; k < 256; k++) step();
    n += 256;
    elapsed = performance.now() - w0;
    if (elapsed >= maxMs) break;
  }
  const cpu = process.cpuUsage(c0);
  return { n, wallUs: (elapsed * 1000) / n, cpuUs: (cpu.user + cpu.system) / n };
}

function tsSend(): Timing {
  const server = new Server();
  const slot = new Uint8Array(HEADROOM + PACKET);
  const ip = slot.subarray(HEADROOM);
  const template = new Uint8Array(PACKET);
  ipPacket(template, 0);
  const ack = new Uint8Array(12);
  let sent = 0;
  const t = measure(2000, () => {
    slot.set(template, HEADROOM);
    server.sendIp(ip);
    sent++;
    if ((sent & 31) === 0) {
      encodeGreHeader(ack, 0, { callId: CALL_ID_OURS, payloadLength: 0, ack: (sent - 1) >>> 0 });
      server.receiveGre(ack);
    }
  });
  const s = server.channel.stats;
  if (s.txPackets !== sent || Object.keys(s.drops).length > 0 || server.drops.total > 0) {
    fail(`TS send lost packets: ${s.txPackets}/${sent} ${JSON.stringify(s.drops)}`);
  }
  return t;
}

function tsReceive(ring: Uint8Array[]): Timing {
  const server = new Server();
  const buf = new Uint8Array(ring[0]!.length);
  let total = 0;
  const t = measure(2048, () => {
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
  });
  if (server.delivered !== total || server.drops.total > 0) {
    fail(`TS receive delivered ${server.delivered} of ${total}`);
  }
  return t;
}

/** MPPE alone: encryptInto (key change + RC4 over protocol + packet) into a reused buffer. */
function tsMppe(): Timing {
  const { encryptor } = createMppe({ send: SEND_START, recv: RECV_START }, { bits: 128, stateless: true });
  const plain = new Uint8Array(2 + PACKET);
  ipPacket(plain.subarray(2), 0);
  plain[1] = 0x21;
  const out = new Uint8Array(4 + PACKET);
  let sink = 0;
  const t = measure(2000, () => {
    encryptor.encryptInto(plain, out, 0);
    sink ^= out[PACKET + 1]!;
  });
  if (sink === 0.5) console.log(sink); // keep the result alive
  return t;
}

function cBench(cBinary: string): { send: Timing; recv: Timing; mppe: Timing } {
  const c = spawnSync(cBinary, ['bench', String(maxMs), String(MAX_ITERATIONS)], {
    encoding: 'utf8',
    timeout: maxMs * 10 + 10_000,
  });
  if (c.status !== 0) fail(`C reference bench failed (${c.status}): ${c.stderr}`);
  const get = (tag: string): Timing => {
    const m = new RegExp(`^${tag} (\\d+) ([\\d.]+) ([\\d.]+)$`, 'm').exec(c.stdout);
    if (!m) fail(`C reference printed no ${tag} line: ${c.stdout}`);
    return { n: Number(m[1]), wallUs: Number(m[2]), cpuUs: Number(m[3]) };
  };
  return { send: get('send'), recv: get('recv'), mppe: get('mppe') };
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

const loadBefore = loadavg();
const { binary, dir, compiler } = build();
try {
  console.log(
    `data path vs C, ${PACKET}-octet IP packets, MPPE-128 stateless, ≤ ${maxMs} ms per case, ${ROUNDS} rounds; ` +
      `node ${process.version}, C: ${compiler} -O2`,
  );
  const ring = buildRing();
  verify(binary, ring);
  const best = {
    cSend: Infinity,
    cRecv: Infinity,
    tsSend: Infinity,
    tsRecv: Infinity,
    cMppe: Infinity,
    tsMppe: Infinity,
  };
  const bestWall = { ...best };
  const row = (name: string, t: Timing): void =>
    console.log(
      `  ${name.padEnd(14)} ${t.wallUs.toFixed(2).padStart(6)} µs/pkt wall  ${t.cpuUs.toFixed(2).padStart(6)} µs/pkt CPU  (${t.n.toLocaleString('en')} packets)`,
    );
  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`round ${round} (load ${loadavg()})`);
    const c = cBench(binary);
    const s = tsSend();
    const r = tsReceive(ring);
    const m = tsMppe();
    row('C send', c.send);
    row('TS send', s);
    row('C receive', c.recv);
    row('TS receive', r);
    row('C MPPE only', c.mppe);
    row('TS MPPE only', m);
    best.cSend = Math.min(best.cSend, c.send.cpuUs);
    best.cRecv = Math.min(best.cRecv, c.recv.cpuUs);
    best.tsSend = Math.min(best.tsSend, s.cpuUs);
    best.tsRecv = Math.min(best.tsRecv, r.cpuUs);
    best.cMppe = Math.min(best.cMppe, c.mppe.cpuUs);
    best.tsMppe = Math.min(best.tsMppe, m.cpuUs);
    bestWall.cMppe = Math.min(bestWall.cMppe, c.mppe.wallUs);
    bestWall.tsMppe = Math.min(bestWall.tsMppe, m.wallUs);
    bestWall.cSend = Math.min(bestWall.cSend, c.send.wallUs);
    bestWall.cRecv = Math.min(bestWall.cRecv, c.recv.wallUs);
    bestWall.tsSend = Math.min(bestWall.tsSend, s.wallUs);
    bestWall.tsRecv = Math.min(bestWall.tsRecv, r.wallUs);
  }
  const line = (name: string, ts: number, c: number, tsW: number, cW: number): void =>
    console.log(
      `${name.padEnd(8)} TS ${ts.toFixed(2)} µs/pkt, C ${c.toFixed(2)} µs/pkt CPU: TS/C ${(ts / c).toFixed(2)}` +
        `  (wall: ${tsW.toFixed(2)} / ${cW.toFixed(2)} = ${(tsW / cW).toFixed(2)})`,
    );
  console.log('best of the rounds, measured in this run:');
  line('send', best.tsSend, best.cSend, bestWall.tsSend, bestWall.cSend);
  line('receive', best.tsRecv, best.cRecv, bestWall.tsRecv, bestWall.cRecv);
  line('MPPE', best.tsMppe, best.cMppe, bestWall.tsMppe, bestWall.cMppe);
  console.log(
    `notes: load average ${loadBefore} before, ${loadavg()} after; CPU is process time (TS includes V8's GC and compiler threads); ` +
      'both sides include a 1400-octet copy per packet standing for the TUN or socket read.',
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
