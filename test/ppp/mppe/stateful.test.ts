import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Rc4 } from '../../../src/crypto/rc4.ts';
import { MPPE_FLUSHED } from '../../../src/ppp/mppe/cipher.ts';
import { changeSessionKey, initialSessionKey, keyLength } from '../../../src/ppp/mppe/keys.ts';
import type { MppeBits, MppeDecryptor, MppeEncryptor } from '../../../src/ppp/mppe/types.ts';
import { DropCounter } from '../../../src/util/counters.ts';
import { nullLogger } from '../../../src/util/log.ts';
import { ALL_BITS, ccountOf, frame, KEY_A, pair } from './helpers.ts';

// ---- Reference model of Linux ppp_mppe in stateful mode, written plainly and independently. ----

/** One direction's key: the session key and an RC4 stream keyed with it. */
class RefKey {
  readonly start: Uint8Array;
  readonly bits: MppeBits;
  session: Uint8Array;
  rc4: Rc4;
  constructor(start: Uint8Array, bits: MppeBits) {
    this.start = start;
    this.bits = bits;
    this.session = initialSessionKey(start, bits);
    this.rc4 = new Rc4(this.session);
  }
  rekey(): void {
    this.session = changeSessionKey(this.start, this.session, this.bits);
    this.rc4 = new Rc4(this.session);
  }
}

class RefSender {
  private readonly key: RefKey;
  private count = 4095;
  private flush = false;
  constructor(start: Uint8Array, bits: MppeBits) {
    this.key = new RefKey(start, bits);
  }
  resetRequested(): void {
    this.flush = true;
  }
  encrypt(plain: Uint8Array): Uint8Array {
    this.count = (this.count + 1) % 4096;
    let first = 0x10;
    if (this.count % 256 === 255 || this.flush) {
      this.key.rekey();
      this.flush = false;
      first |= 0x80;
    }
    const out = new Uint8Array(plain.length + 2);
    out[0] = first | (this.count >> 8);
    out[1] = this.count % 256;
    out.set(this.key.rc4.process(plain), 2);
    return out;
  }
}

class RefReceiver {
  private readonly key: RefKey;
  private count = 4095;
  private discard = false;
  private wantReset = false;
  constructor(start: Uint8Array, bits: MppeBits) {
    this.key = new RefKey(start, bits);
  }
  takeResetRequest(): boolean {
    const w = this.wantReset;
    this.wantReset = false;
    return w;
  }
  decrypt(pkt: Uint8Array): Uint8Array | null {
    const flushed = (pkt[0]! & 0x80) !== 0;
    const count = (pkt[0]! & 0x0f) * 256 + pkt[1]!;
    if (count % 256 === 255 && !flushed) return null;
    if (!this.discard) {
      this.count = (this.count + 1) % 4096;
      if (count !== this.count) {
        this.discard = true;
        this.wantReset = true;
        return null;
      }
    } else {
      if (!flushed) return null;
      while (Math.floor(count / 256) !== Math.floor(this.count / 256)) {
        this.key.rekey();
        this.count = (this.count + 256) % 4096;
      }
      this.discard = false;
      this.count = count;
    }
    if (flushed) this.key.rekey();
    return this.key.rc4.process(pkt.subarray(2));
  }
}

type Sender = Pick<MppeEncryptor, 'encrypt' | 'resetRequested'>;
type Receiver = Pick<MppeDecryptor, 'decrypt' | 'takeResetRequest'>;

/**
 * A one-way link of `total` packets: `lost(n)` packets never arrive; a Reset-Request reaches the
 * sender `delay` packets after the receiver asks for it. Returns, per packet, what was sent and
 * what the receiver made of it (null = dropped or lost).
 */
function runLink(tx: Sender, rx: Receiver, total: number, lost: (n: number) => boolean, delay: number) {
  const sent: Uint8Array[] = [];
  const got: (Uint8Array | null)[] = [];
  let resetAt = -1;
  for (let n = 0; n < total; n++) {
    if (n === resetAt) tx.resetRequested();
    const pkt = tx.encrypt(frame(n, 20 + (n % 30)));
    sent.push(pkt.slice());
    got.push(lost(n) ? null : rx.decrypt(pkt));
    if (rx.takeResetRequest()) resetAt = n + 1 + delay;
  }
  return { sent, got };
}

const isFlushed = (pkt: Uint8Array | undefined) => pkt !== undefined && (pkt[0]! & MPPE_FLUSHED) !== 0;

/**
 * Checks a run against the expected Linux receiver behaviour, from the headers on the wire: a
 * packet whose count is not the previous + 1 (after a loss, or after our sender skipped to a flag
 * packet for a reset) reveals a gap and is dropped (A or not); every later one is dropped until
 * one with A; from there on everything arrives intact. The run must end resynchronised.
 */
function assertRecovers(run: ReturnType<typeof runLink>, lost: (n: number) => boolean, label: string) {
  let state: 'ok' | 'discard' = 'ok';
  let expected = 0;
  for (let n = 0; n < run.got.length; n++) {
    if (lost(n)) continue;
    const cc = ccountOf(run.sent[n]!);
    if (state === 'ok' && cc !== expected) state = 'discard';
    else if (state === 'discard' && isFlushed(run.sent[n])) state = 'ok';
    if (state === 'ok') {
      assert.deepEqual(run.got[n], frame(n, 20 + (n % 30)), `${label}: #${n}`);
      expected = (cc + 1) % 4096;
    } else {
      assert.equal(run.got[n], null, `${label}: #${n} before resync`);
    }
  }
  assert.equal(state, 'ok', `${label}: never resynchronised`);
}

test('known answer: without resets, and with a reset due on a flag packet, we send what Linux sends', () => {
  for (const bits of ALL_BITS) {
    const start = KEY_A.slice(0, keyLength(bits));
    const ours = pair({ bits, stateless: false }).a.encryptor;
    const ref = new RefSender(start, bits);
    for (let n = 0; n < 600; n++) {
      if (n === 511) {
        ours.resetRequested();
        ref.resetRequested();
      }
      const pkt = ours.encrypt(frame(n));
      assert.deepEqual(pkt, ref.encrypt(frame(n)), `${bits}-bit packet ${n}`);
      assert.equal(isFlushed(pkt), n === 255 || n === 511, `A bit of ${n}`);
    }
  }
});

test('a Reset-Request skips the count to the next flag packet: one key change, as many as Linux counts', () => {
  const { a } = pair({ bits: 128, stateless: false });
  const start = KEY_A.slice(0, 16);
  for (let n = 0; n < 100; n++) a.encryptor.encrypt(frame(n));
  a.encryptor.resetRequested();
  a.encryptor.resetRequested(); // a retransmitted Reset-Request: still one skip
  const flag = a.encryptor.encrypt(frame(100));
  assert.equal(ccountOf(flag), 0x0ff);
  assert.ok(isFlushed(flag));
  const stream = new Rc4(changeSessionKey(start, initialSessionKey(start, 128), 128));
  assert.deepEqual(flag.subarray(2), stream.process(frame(100)), 'keyed with the changed key');
  const next = a.encryptor.encrypt(frame(101));
  assert.equal(ccountOf(next), 0x100);
  assert.ok(!isFlushed(next));
  assert.deepEqual(next.subarray(2), stream.process(frame(101)), 'the same stream continues');
});

test('reset path: loss → one Reset-Request → next packet is a flag packet with A and a changed key → resync', () => {
  for (const bits of ALL_BITS) {
    const drops = new DropCounter(nullLogger, 'MPPE packet');
    const { a, b } = pair({ bits, stateless: false, drops });
    const start = KEY_A.slice(0, keyLength(bits));
    let n = 0;
    const send = () => a.encryptor.encrypt(frame(n++));
    for (let i = 0; i < 100; i++) assert.deepEqual(b.decryptor.decrypt(send()), frame(i));
    send(); // #100 lost, in the middle of a 256-packet span
    assert.equal(b.decryptor.decrypt(send()), null);
    assert.equal(b.decryptor.takeResetRequest(), true);
    assert.equal(b.decryptor.takeResetRequest(), false, 'once per loss event');
    for (let i = 0; i < 5; i++) assert.equal(b.decryptor.decrypt(send()), null, 'discarding until A');
    assert.equal(b.decryptor.takeResetRequest(), false);
    a.encryptor.resetRequested();
    a.encryptor.resetRequested(); // a retransmitted Reset-Request: still one key change
    const flushed = send();
    assert.equal(ccountOf(flushed), 255, 'the next flag packet');
    assert.ok(isFlushed(flushed));
    const newKey = changeSessionKey(start, initialSessionKey(start, bits), bits);
    const stream = new Rc4(newKey);
    assert.deepEqual(flushed.subarray(2), stream.process(frame(107)), 'keyed with the changed key');
    const next = send();
    assert.ok(!isFlushed(next));
    assert.deepEqual(next.subarray(2), stream.process(frame(108)), 'the same stream continues');
    assert.deepEqual(b.decryptor.decrypt(flushed), frame(107));
    assert.deepEqual(b.decryptor.decrypt(next), frame(108));
    for (let i = 0; i < 600; i++)
      assert.deepEqual(b.decryptor.decrypt(send()), frame(n - 1), `${bits} #${n}`);
    assert.equal(drops.get('coherency count gap'), 1);
    assert.equal(drops.get('awaiting flushed packet after loss'), 5);
  }
});

test('a spurious Reset-Request (receiver in step) costs one loss event, then both sides agree again', () => {
  const { a, b } = pair({ bits: 128, stateless: false });
  let n = 0;
  const send = () => a.encryptor.encrypt(frame(n++));
  for (let i = 0; i < 5; i++) assert.deepEqual(b.decryptor.decrypt(send()), frame(i));
  a.encryptor.resetRequested();
  assert.equal(b.decryptor.decrypt(send()), null, 'the skipped count is a gap');
  assert.equal(b.decryptor.takeResetRequest(), true);
  assert.equal(b.decryptor.decrypt(send()), null);
  a.encryptor.resetRequested();
  for (let i = 0; i < 300; i++) assert.deepEqual(b.decryptor.decrypt(send()), frame(n - 1), `#${n - 1}`);
});

test('loss across flag boundaries catches up one key change per missed flag packet', () => {
  // [last good, first lost .. last lost]: 254 → lose the flag packet 255 only; 255 → lose 256
  // (no flag missed); lose 300..900 (flags 511, 767); lose 3000..4300 across the 4096 wrap.
  const cases: [number, number][] = [
    [255, 255],
    [256, 256],
    [300, 900],
    [3000, 4300],
    [4095, 4095],
  ];
  for (const [from, to] of cases) {
    // A reset that arrives ≥ 255 packets late can find the receiver already resynchronised by a
    // flag packet, and our skip then costs it one more loss event each time; the GRE window keeps
    // the packets in flight (and so the delay) far below that, hence at most 200 here.
    for (const delay of [0, 3, 64, 200]) {
      const lost = (n: number) => n >= from && n <= to;
      const { a, b } = pair({ bits: 40, stateless: false });
      const run = runLink(a.encryptor, b.decryptor, 5200, lost, delay);
      assertRecovers(run, lost, `lose ${from}..${to}, reset delay ${delay}`);
    }
  }
});

test('a flag packet that is the first after a gap is dropped; recovery waits for the reset', () => {
  const { a, b } = pair({ bits: 56, stateless: false });
  const sent = Array.from({ length: 300 }, (_, n) => a.encryptor.encrypt(frame(n)));
  for (let n = 0; n < 250; n++) assert.ok(b.decryptor.decrypt(sent[n]!));
  assert.equal(b.decryptor.decrypt(sent[255]!), null, 'count gap, even with A');
  assert.equal(b.decryptor.takeResetRequest(), true);
  for (let n = 256; n < 300; n++) assert.equal(b.decryptor.decrypt(sent[n]!), null);
  a.encryptor.resetRequested();
  for (let n = 300; n < 600; n++)
    assert.deepEqual(b.decryptor.decrypt(a.encryptor.encrypt(frame(n))), frame(n));
});

test('a loss followed by the flag packet recovers there, before the reset arrives', () => {
  const { a, b } = pair({ bits: 56, stateless: false });
  const sent = Array.from({ length: 300 }, (_, n) => a.encryptor.encrypt(frame(n)));
  for (let n = 0; n < 250; n++) assert.ok(b.decryptor.decrypt(sent[n]!));
  for (let n = 251; n < 255; n++) assert.equal(b.decryptor.decrypt(sent[n]!), null); // #250 lost
  assert.deepEqual(b.decryptor.decrypt(sent[255]!), frame(255)); // flag packet carries A
  for (let n = 256; n < 300; n++) assert.deepEqual(b.decryptor.decrypt(sent[n]!), frame(n));
});

test('a late or repeated packet is a loss event, as in Linux; recovery via the reset', () => {
  const { a, b } = pair({ bits: 40, stateless: false });
  const sent = Array.from({ length: 20 }, (_, n) => a.encryptor.encrypt(frame(n)));
  for (let n = 0; n < 5; n++) assert.ok(b.decryptor.decrypt(sent[n]!.slice()));
  assert.equal(b.decryptor.decrypt(sent[4]!.slice()), null, 'repeated');
  assert.equal(b.decryptor.takeResetRequest(), true);
  for (let n = 5; n < 20; n++) assert.equal(b.decryptor.decrypt(sent[n]!), null);
  a.encryptor.resetRequested();
  assert.deepEqual(b.decryptor.decrypt(a.encryptor.encrypt(frame(20))), frame(20));
  assert.deepEqual(b.decryptor.decrypt(a.encryptor.encrypt(frame(21))), frame(21));
});

test('a flag count without A is dropped and counted, leaving the state alone', () => {
  const drops = new DropCounter(nullLogger, 'MPPE packet');
  const { a, b } = pair({ bits: 128, stateless: false, drops });
  const sent = Array.from({ length: 256 }, (_, n) => a.encryptor.encrypt(frame(n)));
  for (let n = 0; n < 255; n++) assert.ok(b.decryptor.decrypt(sent[n]!));
  const forged = sent[255]!.slice();
  forged[0] = forged[0]! & ~MPPE_FLUSHED;
  assert.equal(b.decryptor.decrypt(forged), null);
  assert.equal(drops.get('flag packet without flushed bit'), 1);
  assert.equal(b.decryptor.takeResetRequest(), false);
  assert.deepEqual(b.decryptor.decrypt(sent[255]!), frame(255));
});

test('Linux weakness avoided: losing the A packet of a reset no longer desynchronises the keys', () => {
  // With Linux's sender (RefSender) the reset's A packet changes the key; once it is lost, the
  // receiver changes its key once where the sender changed it twice and decrypts garbage for good.
  // Our sender's A packet is the next flag packet, which a Linux receiver accounts for by count.
  const lost = (n: number) => n === 100 || n === 102;
  const start = KEY_A.slice(0, 16);
  const linux = runLink(new RefSender(start, 128), new RefReceiver(start, 128), 600, lost, 0);
  assert.ok(isFlushed(linux.sent[102]));
  assert.notDeepEqual(linux.got[255], frame(255, 20 + (255 % 30)), 'Linux to Linux: garbage');
  const { a } = pair({ bits: 128, stateless: false });
  const ours = runLink(a.encryptor, new RefReceiver(start, 128), 600, lost, 0);
  assert.ok(isFlushed(ours.sent[102]) && ccountOf(ours.sent[102]!) === 0x0ff, 'the reset A packet is #102');
  assertRecovers(ours, lost, 'ours to Linux');
});

test('property: under random loss bursts and reset delays we decrypt as Linux does, and always recover', () => {
  // Bursts end by packet 4200: the reset (delay ≤ 40) then always has time to resync the link.
  const burst = fc.record({ at: fc.nat(3600), len: fc.integer({ min: 1, max: 600 }) });
  fc.assert(
    fc.property(
      fc.constantFrom<MppeBits>(40, 56, 128),
      fc.array(burst, { maxLength: 6 }),
      fc.nat(40),
      (bits, bursts, delay) => {
        const lost = (n: number) => bursts.some((x) => n >= x.at && n < x.at + x.len);
        const start = KEY_A.slice(0, keyLength(bits));
        const { a, b } = pair({ bits, stateless: false });
        const ours = runLink(a.encryptor, b.decryptor, 4400, lost, delay);
        const sender = pair({ bits, stateless: false }).a.encryptor;
        const linux = runLink(sender, new RefReceiver(start, bits), 4400, lost, delay);
        for (let n = 0; n < 4400; n++) assert.deepEqual(ours.got[n], linux.got[n], `output ${n}`);
        // Even when the A packet of a reset is lost (unlike Linux's own sender, see above).
        assertRecovers(ours, lost, 'ours');
      },
    ),
    { numRuns: 25 },
  );
});
