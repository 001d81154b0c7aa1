import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PppProtocol } from '../../src/ppp/constants.ts';
import { encodeFrame } from '../../src/ppp/frame.ts';
import { decodeAuthData, encodeAuthData, LcpOption } from '../../src/ppp/lcp/options.ts';
import { type ConfigOption, encodeOptions, flagOption, u16Option, u32Option } from '../../src/ppp/options.ts';
import { encodeControlPacket } from '../../src/ppp/packet.ts';
import {
  ConfigureAck,
  ConfigureNak,
  ConfigureReject,
  ConfigureRequest,
  controlFrame,
  lone,
  type Sent,
} from './harness.ts';

const LCP = PppProtocol.LCP;
const PEER_MAGIC = 0x5eed1234;
/** A client that needs no authentication from the raw peer to stay up. */
const noMppe = (p: { mppe: { required: boolean } }) => {
  p.mppe.required = false;
};

type Lone = ReturnType<typeof lone>;

function lastLcp(l: Lone, code?: number): Sent {
  const found = l.out.filter((s) => s.protocol === LCP && (code === undefined || s.code === code)).at(-1);
  assert.ok(found, `no LCP ${code} sent`);
  return found;
}

/** Bring a lone link's LCP to Opened by acking its request and sending an acceptable one. */
function openLcp(l: Lone, peerOpts: ConfigOption[] = [u32Option(LcpOption.MagicNumber, PEER_MAGIC)]) {
  l.link.open();
  const req = lastLcp(l, ConfigureRequest);
  l.link.receiveFrame(controlFrame(LCP, ConfigureAck, req.id, req.data));
  l.link.receiveFrame(controlFrame(LCP, ConfigureRequest, 0x42, peerOpts));
  assert.equal(l.link.lcp.state, 'opened', l.log.text());
}

test('server request: MRU, Authentication-Protocol MS-CHAPv2, Magic-Number, PFC, ACFC', () => {
  const l = lone('server');
  l.link.open();
  const req = lastLcp(l, ConfigureRequest);
  assert.deepEqual(
    req.options!.map((o) => o.type),
    [1, 3, 5, 7, 8],
  );
  assert.equal(decodeAuthData(req.options![1]!.data), 'mschapv2');
});

test('a peer that rejects everything: the client carries on with an empty request and opens', () => {
  const l = lone('client', noMppe);
  l.link.open();
  const req = lastLcp(l, ConfigureRequest);
  l.link.receiveFrame(controlFrame(LCP, ConfigureReject, req.id, req.data));
  const next = lastLcp(l, ConfigureRequest);
  assert.deepEqual(next.options, []);
  l.link.receiveFrame(controlFrame(LCP, ConfigureAck, next.id, new Uint8Array(0)));
  l.link.receiveFrame(controlFrame(LCP, ConfigureRequest, 9, []));
  assert.equal(l.link.lcp.state, 'opened');
});

test('a peer that rejects Authentication-Protocol: the server terminates with the reason', () => {
  const l = lone('server');
  l.link.open();
  const req = lastLcp(l, ConfigureRequest);
  const auth = req.options!.filter((o) => o.type === LcpOption.AuthProtocol);
  l.link.receiveFrame(controlFrame(LCP, ConfigureReject, req.id, auth));
  l.clock.advance(20_000);
  assert.deepEqual(l.down, ['peer refused to authenticate (rejected Authentication-Protocol)']);
});

test('server auth preference: the Nak suggestion is used when allowed, else the next method', () => {
  const l = lone('server', (p) => (p.auth.require = ['mschapv2', 'mschap', 'pap']));
  l.link.open();
  let req = lastLcp(l, ConfigureRequest);
  const nak = (m: Parameters<typeof encodeAuthData>[0]) => [{ type: 3, data: encodeAuthData(m) }];
  l.link.receiveFrame(controlFrame(LCP, ConfigureNak, req.id, nak('chap-md5')));
  req = lastLcp(l, ConfigureRequest);
  assert.equal(decodeAuthData(req.options![1]!.data), 'mschap');
  l.link.receiveFrame(controlFrame(LCP, ConfigureNak, req.id, nak('pap')));
  req = lastLcp(l, ConfigureRequest);
  assert.equal(decodeAuthData(req.options![1]!.data), 'pap');
  l.link.receiveFrame(controlFrame(LCP, ConfigureNak, req.id, nak('mschapv2')));
  l.clock.advance(20_000);
  assert.deepEqual(l.down, ['peer refused all authentication methods we require (mschapv2, mschap, pap)']);
});

test('client auth: accepts an allowed method, Naks another with its preference', () => {
  const l = lone('client', (p) => (p.auth.accept = ['mschapv2', 'mschap']));
  l.link.open();
  const ask = (m: Parameters<typeof encodeAuthData>[0], id: number) =>
    l.link.receiveFrame(controlFrame(LCP, ConfigureRequest, id, [{ type: 3, data: encodeAuthData(m) }]));
  ask('pap', 1);
  const nak = lastLcp(l);
  assert.equal(nak.code, ConfigureNak);
  assert.equal(decodeAuthData(nak.options![0]!.data), 'mschapv2');
  ask('mschap', 2);
  assert.equal(lastLcp(l).code, ConfigureAck);
  // CHAP with an unknown algorithm is Nak-ed too.
  l.link.receiveFrame(
    controlFrame(LCP, ConfigureRequest, 3, [{ type: 3, data: new Uint8Array([0xc2, 0x23, 6]) }]),
  );
  assert.equal(lastLcp(l).code, ConfigureNak);
});

test('Max-Failure: after lcp-max-failure Naks in a row the disagreeing option is Rejected', () => {
  const l = lone('client', (p) => (p.lcpMaxFailure = 3));
  l.link.open();
  const mru = u16Option(LcpOption.MRU, 64);
  for (let id = 1; id <= 3; id++) {
    l.link.receiveFrame(controlFrame(LCP, ConfigureRequest, id, [mru]));
    assert.equal(lastLcp(l).code, ConfigureNak);
    assert.deepEqual(lastLcp(l).options, [u16Option(LcpOption.MRU, 128)]);
  }
  l.link.receiveFrame(controlFrame(LCP, ConfigureRequest, 4, [mru]));
  assert.equal(lastLcp(l).code, ConfigureReject);
  assert.deepEqual(lastLcp(l).options, [mru]);
});

test('unknown and deprecated LCP options are Rejected; ACCM is acked and ignored', () => {
  const l = lone('client');
  l.link.open();
  const callback = { type: 13, data: new Uint8Array([6]) };
  const quality = { type: 4, data: new Uint8Array([0xc0, 0x25, 0, 0, 0, 10]) };
  const accm = u32Option(LcpOption.ACCM, 0);
  l.link.receiveFrame(controlFrame(LCP, ConfigureRequest, 1, [accm, callback, quality]));
  assert.equal(lastLcp(l).code, ConfigureReject);
  assert.deepEqual(lastLcp(l).options, [callback, quality]);
  l.link.receiveFrame(controlFrame(LCP, ConfigureRequest, 2, [accm, flagOption(7), flagOption(8)]));
  assert.equal(lastLcp(l).code, ConfigureAck);
});

test('looped-back link: our own request comes back → Nak magic, then the link is declared looped back', () => {
  const l = lone('client');
  l.link.open();
  for (let i = 0; i < 10 && l.down.length === 0; i++) {
    const req = lastLcp(l, ConfigureRequest);
    l.link.receiveFrame(controlFrame(LCP, ConfigureRequest, req.id, req.data));
    l.link.receiveFrame(controlFrame(LCP, ConfigureNak, req.id, lastLcp(l, ConfigureNak).data));
  }
  l.clock.advance(20_000);
  assert.equal(l.down.length, 1);
  assert.match(l.down[0]!, /looped back/);
});

test('a zero Magic-Number is Nak-ed (RFC 1661 §6.4)', () => {
  const l = lone('client');
  l.link.open();
  l.link.receiveFrame(controlFrame(LCP, ConfigureRequest, 1, [u32Option(5, 0)]));
  const nak = lastLcp(l);
  assert.equal(nak.code, ConfigureNak);
  assert.notDeepEqual(nak.options![0]!.data, new Uint8Array(4));
});

test('Configure-Ack with a wrong id or other options, and a Reject of options not sent, are discarded', () => {
  const l = lone('client');
  l.link.open();
  const req = lastLcp(l, ConfigureRequest);
  l.link.receiveFrame(controlFrame(LCP, ConfigureAck, req.id + 1, req.data));
  assert.equal(l.link.lcp.state, 'req-sent');
  l.link.receiveFrame(controlFrame(LCP, ConfigureAck, req.id, [u16Option(1, 1400)]));
  assert.equal(l.link.lcp.state, 'req-sent');
  l.link.receiveFrame(controlFrame(LCP, ConfigureReject, req.id, [u16Option(1, 1500)]));
  assert.equal(l.out.filter((s) => s.code === ConfigureRequest).length, 1);
  l.link.receiveFrame(controlFrame(LCP, ConfigureAck, req.id, req.data));
  assert.equal(l.link.lcp.state, 'ack-rcvd');
  // A duplicate Ack for the same request is discarded too.
  l.link.receiveFrame(controlFrame(LCP, ConfigureAck, req.id, req.data));
  assert.equal(l.link.lcp.state, 'ack-rcvd');
  assert.ok(l.link.stats.drops['LCP: Configure-Ack not matching our Configure-Request']! >= 3);
});

test('malformed packets: short header, Length < 4 or > bytes, option length 0/1/oversized → dropped', () => {
  const l = lone('client');
  l.link.open();
  const before = l.out.length;
  const frames = [
    '01 01 00', // truncated header
    '01 01 00 03', // Length 3
    '01 01 00 0a 01 04 05 dc', // Length 10 > 8 bytes
    '01 01 00 06 05 00', // option length 0
    '01 01 00 06 05 01', // option length 1
    '01 01 00 08 01 06 05 dc', // option length past the end
    '01 01 00 05 01', // option without a length octet
  ];
  for (const f of frames) {
    l.link.receiveFrame(encodeFrame(LCP, Uint8Array.from(Buffer.from(f.replace(/ /g, ''), 'hex'))));
  }
  assert.equal(l.out.length, before);
  assert.equal(l.link.lcp.state, 'req-sent');
  // Octets beyond Length are padding: ignored, the Ack carries only the real options.
  const padded = encodeControlPacket(1, 5, encodeOptions([u16Option(1, 1400)]));
  l.link.receiveFrame(encodeFrame(LCP, Uint8Array.from([...padded, 0xde, 0xad])));
  assert.equal(lastLcp(l).code, ConfigureAck);
  assert.deepEqual(lastLcp(l).options, [u16Option(1, 1400)]);
});

test('unknown code → Code-Reject carrying the packet; Code-Reject of Configure-Request → link down', () => {
  const l = lone('client', noMppe);
  openLcp(l);
  l.link.receiveFrame(controlFrame(LCP, 0x33, 7, new Uint8Array([1, 2, 3])));
  const rej = lastLcp(l);
  assert.equal(rej.code, 7);
  assert.deepEqual(rej.data, Uint8Array.from([0x33, 7, 0, 7, 1, 2, 3]));
  l.link.receiveFrame(controlFrame(LCP, 7, 8, new Uint8Array([1, 1, 0, 4])));
  l.clock.advance(20_000);
  assert.equal(l.link.phase, 'dead');
  assert.match(l.down[0]!, /peer rejected LCP code ConfReq/);
});

test('Echo-Request → Echo-Reply with our magic; an echo of our own magic is dropped', () => {
  const l = lone('client', noMppe);
  openLcp(l);
  const ourMagic = lastLcp(l, ConfigureRequest).options!.find((o) => o.type === 5)!.data;
  l.link.receiveFrame(controlFrame(LCP, 9, 0x21, Uint8Array.from([0x5e, 0xed, 0x12, 0x34, 0xaa])));
  const reply = lastLcp(l);
  assert.equal(reply.code, 10);
  assert.equal(reply.id, 0x21);
  assert.deepEqual(reply.data, Uint8Array.from([...ourMagic, 0xaa]));
  const n = l.out.length;
  l.link.receiveFrame(controlFrame(LCP, 9, 0x22, Uint8Array.from(ourMagic)));
  l.link.receiveFrame(controlFrame(LCP, 11, 0x23, new Uint8Array(4))); // Discard-Request
  l.link.receiveFrame(controlFrame(LCP, 12, 0x24, Uint8Array.from(Buffer.from('\0\0\0\0MSRASV5.20'))));
  assert.equal(l.out.length, n);
});

test('phase gating: non-LCP before LCP opens and IPCP before authentication are dropped', () => {
  const l = lone('server');
  l.link.open();
  l.link.receiveFrame(controlFrame(PppProtocol.IPCP, 1, 1, [u32Option(3, 0)]));
  assert.equal(l.link.stats.drops['non-LCP frame while LCP is not open'], 1);
  openLcp(l);
  l.link.receiveFrame(controlFrame(PppProtocol.IPCP, 1, 1, [u32Option(3, 0)]));
  l.link.receiveFrame(encodeFrame(0x0021, new Uint8Array([0x45])));
  l.link.receiveFrame(encodeFrame(0x4021, new Uint8Array([1]))); // unknown: not even rejected yet
  assert.equal(l.link.stats.drops['network frame before authentication is done'], 3);
  assert.equal(l.out.filter((s) => s.protocol === PppProtocol.IPCP).length, 0);
  assert.equal(l.out.filter((s) => s.code === 8).length, 0);
});

test('Network phase: unknown protocol → Protocol-Reject; plain IP with MPPE required is dropped', () => {
  const l = lone('server', (p) => {
    p.localAddress = 0x0a000001;
    p.peerAddress = 0x0a000002;
  });
  openLcp(l);
  l.link.receiveFrame(encodeFrame(PppProtocol.CHAP, encodeControlPacket(2, 7, Buffer.from('secret'))));
  assert.equal(l.link.phase, 'network', l.log.text());
  l.link.receiveFrame(encodeFrame(0x4021, new Uint8Array([1, 2, 3])));
  const pr = lastLcp(l);
  assert.equal(pr.code, 8);
  assert.deepEqual(pr.data, Uint8Array.from([0x40, 0x21, 1, 2, 3]));
  l.link.receiveFrame(encodeFrame(0x0021, new Uint8Array([0x45])));
  assert.equal(l.link.stats.drops['unencrypted IPv4 with MPPE on'], 1);
  // The peer Protocol-Rejects IPCP: nothing else to run, the link closes.
  l.link.receiveFrame(controlFrame(LCP, 8, 3, Uint8Array.from([0x80, 0x21, 1, 1, 0, 4])));
  l.clock.advance(20_000);
  assert.deepEqual(l.down, ['peer rejected IPCP']);
});

test('Configure-Request in Opened: tld, new request, network layers restart (RFC 1661 RCR in Opened)', () => {
  const l = lone('client', noMppe);
  openLcp(l);
  const n = l.out.filter((s) => s.code === ConfigureRequest).length;
  l.link.receiveFrame(controlFrame(LCP, ConfigureRequest, 0x50, [u32Option(5, PEER_MAGIC)]));
  assert.equal(l.out.filter((s) => s.code === ConfigureRequest).length, n + 1);
  assert.equal(lastLcp(l).code, ConfigureAck);
  assert.equal(l.link.lcp.state, 'ack-sent');
  assert.equal(l.link.phase, 'establish');
});

test('a peer that Naks our MRU forever before authentication: the MRU is given up, then the link ends', () => {
  const l = lone('server');
  l.link.open();
  const naks = (n: number) => {
    for (let i = 0; i < n && l.down.length === 0; i++) {
      const req = lastLcp(l, ConfigureRequest);
      l.link.receiveFrame(controlFrame(LCP, ConfigureNak, req.id, [u16Option(LcpOption.MRU, 40)]));
    }
  };
  naks(5); // lcp-max-failure: the fifth Nak is taken as a Reject of <mru 1400>
  assert.deepEqual(
    lastLcp(l, ConfigureRequest).options!.map((o) => o.type),
    [LcpOption.AuthProtocol, LcpOption.MagicNumber, LcpOption.PFC, LcpOption.ACFC],
  );
  naks(1000);
  assert.equal(l.down.length, 1);
  assert.match(l.down[0]!, /LCP negotiation did not converge/);
  assert.ok(l.out.filter((s) => s.protocol === LCP && s.code === ConfigureRequest).length <= 45);
  l.clock.advance(60_000);
  assert.equal(l.clock.pending, 0);
});
