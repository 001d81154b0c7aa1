import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CcpHandler } from '../../src/ppp/ccp/handler.ts';
import { describeMppe, MppeBit } from '../../src/ppp/ccp/mppe-option.ts';
import { PacketCode, PppProtocol } from '../../src/ppp/constants.ts';
import type { MppeSettings } from '../../src/ppp/mppe/types.ts';
import { u32Option } from '../../src/ppp/options.ts';
import { defaultPolicy, type PppPolicy } from '../../src/ppp/policy.ts';
import { nullLogger } from '../../src/util/log.ts';
import { bench, controlFrame, fakeAuth, parseSent, resets } from './harness.ts';

function handler(tweak?: (p: PppPolicy) => void) {
  const policy = defaultPolicy('server');
  tweak?.(policy);
  const seen = { up: [] as (MppeSettings | null)[], fail: [] as string[], resets: 0 };
  const h = new CcpHandler({
    policy,
    log: nullLogger,
    events: {
      up: (s) => seen.up.push(s),
      down: () => {},
      finished: () => {},
      fail: (r) => seen.fail.push(r),
      resetRequested: () => seen.resets++,
    },
  });
  h.reset();
  return { h, seen };
}

const mppe = (v: number) => u32Option(18, v);

test('CCP: a Windows-style offer of 40+128 stateless is Nak-ed down to 128 only', () => {
  const { h } = handler((p) => (p.mppe.allow40 = true));
  const v = h.checkRequest([mppe(MppeBit.H | MppeBit.S | MppeBit.L)], false);
  assert.deepEqual(v, { kind: 'nak', options: [mppe(MppeBit.H | MppeBit.S)] });
  assert.deepEqual(h.checkRequest([mppe(MppeBit.H | MppeBit.S)], false), { kind: 'ack' });
});

test('CCP: MPPC, D and unknown bits are Nak-ed away; other compressors are Rejected', () => {
  const { h } = handler();
  const v = h.checkRequest([mppe(MppeBit.H | MppeBit.S | MppeBit.C | MppeBit.D | 0x100)], false);
  assert.deepEqual(v, { kind: 'nak', options: [mppe(MppeBit.H | MppeBit.S)] });
  const deflate = { type: 26, data: new Uint8Array([0x78, 0]) };
  const bsd = { type: 21, data: new Uint8Array([0x2f]) };
  assert.deepEqual(h.checkRequest([deflate, bsd, mppe(MppeBit.H | MppeBit.S)], false), {
    kind: 'reject',
    options: [deflate, bsd],
  });
  const short = { type: 18, data: new Uint8Array([1, 0]) };
  assert.deepEqual(h.checkRequest([short], false), { kind: 'reject', options: [short] });
});

test('CCP: stateful request Nak-ed to stateless unless mppe-stateful; after Max-Failure Rejected', () => {
  const { h } = handler();
  assert.deepEqual(h.checkRequest([mppe(MppeBit.S)], false), {
    kind: 'nak',
    options: [mppe(MppeBit.H | MppeBit.S)],
  });
  assert.deepEqual(h.checkRequest([mppe(MppeBit.S)], true), { kind: 'reject', options: [mppe(MppeBit.S)] });
  const stateful = handler((p) => (p.mppe.statefulAllowed = true));
  assert.deepEqual(stateful.h.checkRequest([mppe(MppeBit.S)], false), { kind: 'ack' });
});

test('CCP: a Nak offering only strengths we do not allow fails with the strengths in words', () => {
  const { h, seen } = handler();
  h.nakReceived([mppe(MppeBit.H | MppeBit.L)]);
  assert.deepEqual(seen.fail, ['peer offers MPPE 40-bit only; we allow 128-bit']);
});

test('CCP: Reset-Request calls the encryptor (RFC 1962 §2.1); Reset-Ack is accepted silently', () => {
  const { h, seen } = handler();
  assert.equal(h.extraCode(14, 1, new Uint8Array(0), 'opened'), true);
  assert.equal(h.extraCode(15, 1, new Uint8Array(0), 'opened'), true);
  assert.equal(h.extraCode(16, 1, new Uint8Array(0), 'opened'), false);
  assert.equal(seen.resets, 1);
  assert.equal(describeMppe(0x01000040), '<mppe +H -M +S -L -D -C>');
});

test('MPPE-128 required against a 40-bit-only peer: the link fails with a clear reason', () => {
  const b = bench({
    client: (p) => {
      p.mppe.allow128 = false;
      p.mppe.allow40 = true;
      p.mppe.required = false;
    },
  });
  b.open();
  b.clock.advance(30_000);
  assert.equal(b.server.link.phase, 'dead');
  assert.match(b.server.down[0]!, /MPPE required: peer offers MPPE 40-bit only; we allow 128-bit/);
  assert.equal(b.client.link.phase, 'dead');
});

test('MPPE 40/128 server against a 40-bit-only client settles on 40-bit', () => {
  const b = bench({
    server: (p) => (p.mppe.allow40 = true),
    client: (p) => {
      p.mppe.allow128 = false;
      p.mppe.allow40 = true;
    },
  });
  b.open();
  b.clock.advance(1000);
  assert.deepEqual(b.server.up[0]?.mppe, { bits: 40, stateless: true });
  assert.deepEqual(b.client.up[0]?.mppe, { bits: 40, stateless: true });
});

test('stateless vs stateful: a client that allows stateful still ends stateless with a stateless-only server', () => {
  const b = bench({ client: (p) => (p.mppe.statefulAllowed = true) });
  b.open();
  b.clock.advance(1000);
  assert.deepEqual(b.client.up[0]?.mppe, { bits: 128, stateless: true });
  assert.deepEqual(b.server.up[0]?.mppe, { bits: 128, stateless: true });
});

test('stateful: a peer asking for stateful is acked with mppe-stateful, and our request follows', () => {
  const { h, seen } = handler((p) => (p.mppe.statefulAllowed = true));
  assert.deepEqual(h.checkRequest([mppe(MppeBit.S)], false), { kind: 'ack' });
  assert.deepEqual(h.buildRequest(), [mppe(MppeBit.S)]);
  h.ackReceived();
  h.up();
  assert.deepEqual(seen.up, [{ bits: 128, stateless: false }]);
});

test('stateful refused: a Nak asking for stateful fails without mppe-stateful', () => {
  const { h, seen } = handler();
  h.nakReceived([mppe(MppeBit.S)]);
  assert.deepEqual(seen.fail, ['peer wants stateful MPPE, which we refuse (nomppe-stateful)']);
});

test('MPPE required but the method gives no keys: terminate with a clear reason', () => {
  const b = bench({
    server: (p) => (p.auth.require = ['pap']),
    client: (p) => (p.auth.accept = ['pap']),
    serverLink: { authenticator: fakeAuth('authenticator', { keys: false }) },
    clientLink: { authPeer: fakeAuth('peer', { keys: false }) },
  });
  b.open();
  b.clock.advance(30_000);
  assert.deepEqual(b.server.down, ['MPPE is required but pap provides no MPPE keys']);
});

test('MPPE not required and no keys: CCP is not run, IP flows in clear; CCP from the peer is Protocol-Rejected', () => {
  const b = bench({
    server: (p) => {
      p.auth.require = ['pap'];
      p.mppe.required = false;
    },
    client: (p) => {
      p.auth.accept = ['pap'];
      p.mppe.required = false;
    },
    serverLink: { authenticator: fakeAuth('authenticator', { keys: false }) },
    clientLink: { authPeer: fakeAuth('peer', { keys: false }) },
  });
  b.open();
  b.clock.advance(1000);
  assert.equal(b.server.up[0]?.mppe, null);
  b.client.link.sendIp(new Uint8Array([0x45, 0]));
  b.clock.advance(5);
  assert.equal(b.server.ip.length, 1);
  assert.equal(b.frames.at(-1)!.bytes[0], 0x21); // PFC+ACFC: protocol 0x21 alone
});

test('CCP Reset-Request is answered with Reset-Ack of the same id, then a flushed packet (Linux needs the Ack)', () => {
  const b = bench();
  b.open();
  b.clock.advance(1000);
  assert.equal(b.server.link.phase, 'network');
  const before = resets.count;
  const sent = b.frames.length;
  b.server.link.receiveFrame(controlFrame(PppProtocol.CCP, PacketCode.ResetRequest, 0x2a, new Uint8Array(0)));
  const answers = b.frames
    .slice(sent)
    .filter((f) => f.from === 'server')
    .map((f) => parseSent(f.bytes));
  assert.deepEqual(
    answers.map((s) => [s.protocol, s.code, s.id]),
    [[PppProtocol.CCP, PacketCode.ResetAck, 0x2a]],
  );
  assert.equal(resets.count, before + 1);
});

test('issue 11.1: with require-mppe (40 or 128) our request offers S and L together (H set), as pppd does', () => {
  const { h } = handler((p) => (p.mppe.allow40 = true));
  assert.deepEqual(h.buildRequest(), [mppe(MppeBit.H | MppeBit.S | MppeBit.L)]);
  const all = handler((p) => {
    p.mppe.allow40 = true;
    p.mppe.allow56 = true;
  });
  assert.deepEqual(all.h.buildRequest(), [mppe(MppeBit.H | MppeBit.S | MppeBit.M | MppeBit.L)]);
  // 128 only: one bit, as before.
  assert.deepEqual(handler().h.buildRequest(), [mppe(MppeBit.H | MppeBit.S)]);
});

test('issue 11.1: a Nak naming a subset of what we offered is accepted and the link settles on it', () => {
  const { h, seen } = handler((p) => (p.mppe.allow40 = true));
  h.nakReceived([mppe(MppeBit.H | MppeBit.L)]); // pppd require-mppe-40 naks down to L
  assert.deepEqual(seen.fail, []);
  assert.deepEqual(h.buildRequest(), [mppe(MppeBit.H | MppeBit.L)]);
  assert.deepEqual(h.checkRequest([mppe(MppeBit.H | MppeBit.L)], false), { kind: 'ack' });
  h.ackReceived();
  h.up();
  assert.deepEqual(seen.up, [{ bits: 40, stateless: true }]);
});

test('issue 11.1: the peer request decides first: our offer narrows to the strength we agreed to', () => {
  const { h, seen } = handler((p) => (p.mppe.allow40 = true));
  assert.deepEqual(h.checkRequest([mppe(MppeBit.H | MppeBit.L)], false), { kind: 'ack' });
  assert.deepEqual(h.buildRequest(), [mppe(MppeBit.H | MppeBit.L)]);
  h.ackReceived();
  h.up();
  assert.deepEqual(seen.up, [{ bits: 40, stateless: true }]);
});

test('issue 11.1: a peer that Acks our S+L offer gets the strength its own request names', () => {
  const { h, seen } = handler((p) => (p.mppe.allow40 = true));
  h.ackReceived();
  // Our request was acked with both bits; the peer then asks for 128 + 40: we Nak to 128.
  assert.deepEqual(h.checkRequest([mppe(MppeBit.H | MppeBit.S | MppeBit.L)], false), {
    kind: 'nak',
    options: [mppe(MppeBit.H | MppeBit.S)],
  });
  assert.deepEqual(h.checkRequest([mppe(MppeBit.H | MppeBit.S)], false), { kind: 'ack' });
  h.up();
  assert.deepEqual(seen.up, [{ bits: 128, stateless: true }]);
});

test('issue 11.1: two poptop ends allowing 40+128 settle on 128; 128 vs 40+128 settles on 128', () => {
  for (const clientAllows40 of [true, false]) {
    const b = bench({
      server: (p) => (p.mppe.allow40 = true),
      client: (p) => (p.mppe.allow40 = clientAllows40),
    });
    b.open();
    b.clock.advance(1000);
    assert.deepEqual(b.server.up[0]?.mppe, { bits: 128, stateless: true });
    assert.deepEqual(b.client.up[0]?.mppe, { bits: 128, stateless: true });
  }
});
