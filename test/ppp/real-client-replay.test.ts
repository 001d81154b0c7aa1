/**
 * Replays the PPP negotiation a real client sent (Debian 12 pptp-linux + pppd 2.4.9 + kernel
 * MPPE, recorded from the QEMU testbed by test/interop/record-fixture.ts) against our server-side
 * PppLink with the real MS-CHAPv2 authenticator and MPPE, and checks that our answers are the ones
 * that client accepted: ConfAck of its LCP request, CHAP Success with the S= it verified, the ack
 * of MPPE-128 stateless, IPCP Reject of VJ, Nak with the address, then Ack.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeFrame } from '../../src/ppp/frame.ts';
import { PppLink } from '../../src/ppp/link.ts';
import { createMppe } from '../../src/ppp/mppe/cipher.ts';
import { decodeControlPacket } from '../../src/ppp/packet.ts';
import { defaultPolicy } from '../../src/ppp/policy.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { MemoryLogger } from '../../src/util/log.ts';
import { parseIPv4 } from '../../src/wire/ip.ts';
import {
  type CapturedFrame,
  describeControl,
  FIXTURE_DIR,
  parseFixture,
  recordedServerOptions,
} from '../interop/record-fixture.ts';

const fixture = parseFixture(readFileSync(join(FIXTURE_DIR, 'mschapv2-mppe128.hex'), 'utf8'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const info = (f: CapturedFrame) => decodeControlPacket(decodeFrame(f.frame).info, 'ppp');
const find = (dir: CapturedFrame['dir'], what: string) => {
  const f = fixture.find((x) => x.dir === dir && describeControl(x).startsWith(what));
  assert.ok(f, `fixture has a ${dir} ${what}`);
  return f;
};

function serverLink() {
  const clock = new ManualClock();
  const log = new MemoryLogger({ prefix: 'server' });
  const policy = defaultPolicy('server');
  policy.localAddress = parseIPv4('172.31.251.1')!;
  const sent: Uint8Array[] = [];
  const link = new PppLink({
    role: 'server',
    clock,
    log,
    policy,
    ...recordedServerOptions(fixture),
    sendFrame: (f) => sent.push(f.slice()),
    mppe: createMppe,
    events: { onAuthenticated: () => ({ peerAddress: parseIPv4('172.31.251.100')! }) },
  });
  return { link, clock, log, sent };
}

test('the real client negotiation replayed: our server answers frame for frame as recorded', () => {
  const { link, clock, log, sent } = serverLink();
  link.open();
  const ours: string[] = [];
  const take = () => {
    clock.advance(1);
    for (const f of sent.splice(0)) ours.push(hex(f));
  };
  take();
  for (const f of fixture.filter((x) => x.dir === 'c>s')) {
    link.receiveFrame(Uint8Array.from(f.frame));
    take();
  }
  const recorded = fixture.filter((x) => x.dir === 's>c').map((x) => hex(x.frame));
  assert.deepEqual(ours, recorded, log.text());
  assert.equal(link.phase, 'network');
});

test('the answers the real client needed: LCP ConfAck, CHAP Success S=, MPPE-128 stateless, IPCP Nak then Ack', () => {
  const { link, clock, sent } = serverLink();
  link.open();
  clock.advance(1);
  const answer = (f: CapturedFrame) => {
    sent.length = 0;
    link.receiveFrame(Uint8Array.from(f.frame));
    clock.advance(1);
    return sent.map((s) => ({ frame: s, pkt: decodeControlPacket(decodeFrame(s).info, 'ppp') }));
  };
  const lcpReq = find('c>s', 'LCP ConfReq');
  const [lcpAck] = answer(lcpReq);
  assert.equal(lcpAck?.pkt.code, 2, 'LCP ConfAck');
  assert.deepEqual(lcpAck.pkt.data, info(lcpReq).data, 'acks exactly the options the client asked for');
  answer(find('c>s', 'LCP ConfAck'));

  const success = answer(find('c>s', 'CHAP Response')).find((s) => decodeFrame(s.frame).protocol === 0xc223);
  assert.equal(success?.pkt.code, 3, 'CHAP Success');
  const message = Buffer.from(success.pkt.data).toString('latin1');
  const accepted = Buffer.from(info(find('s>c', 'CHAP Success')).data).toString('latin1');
  assert.match(message, /^S=[0-9A-F]{40} M=/);
  assert.equal(message.slice(0, 42), accepted.slice(0, 42), 'the authenticator response pppd verified');

  const ccp = answer(find('c>s', 'CCP ConfReq'));
  const ccpAck = ccp.find((s) => s.pkt.code === 2);
  assert.equal(hex(ccpAck!.pkt.data), '120601000040', 'MPPE option: H (stateless) + S (128-bit)');

  answer(find('c>s', 'CCP ConfAck'));
  const ipcp = fixture.filter((x) => x.dir === 'c>s' && describeControl(x).startsWith('IPCP ConfReq'));
  const replies = ipcp.map((f) => answer(f).find((s) => decodeFrame(s.frame).protocol === 0x8021)!.pkt);
  assert.deepEqual(
    replies.map((p) => p.code),
    [4, 3, 2],
    'Reject of VJ compression, Nak with the address, Ack',
  );
  assert.equal(hex(replies[1]!.data), '0306ac1ffb64', 'Nak: IP-Address 172.31.251.100');
  assert.equal(link.phase, 'network');
});
