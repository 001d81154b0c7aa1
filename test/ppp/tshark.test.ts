/**
 * Independent check of our PPP encodings: a whole negotiated session is wrapped in enhanced GRE
 * (RFC 2637 §4.1) inside IPv4 and dissected by tshark. Skipped only when tshark is missing and
 * CI is not 'true'.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PacketCode } from '../../src/ppp/constants.ts';
import { greInIpv4, writePcap } from '../support/pcap.ts';
import { tsharkFields, tsharkProblems, tsharkSkip } from '../support/tshark.ts';
import { bench, type Frame } from './harness.ts';

function gre(f: Frame, seq: number): Uint8Array {
  const g = new Uint8Array(12 + f.bytes.length);
  const v = new DataView(g.buffer);
  v.setUint16(0, 0x3001); // K and S bits, version 1
  v.setUint16(2, 0x880b); // PPP
  v.setUint16(4, f.bytes.length);
  v.setUint16(6, f.from === 'server' ? 7 : 9); // call id
  v.setUint32(8, seq);
  g.set(f.bytes, 12);
  const [src, dst] = f.from === 'server' ? ['192.0.2.1', '192.0.2.2'] : ['192.0.2.2', '192.0.2.1'];
  return greInIpv4(g, src, dst);
}

test('tshark dissects LCP, CHAP, IPCP, CCP/MPPE, Echo and Terminate packets as we meant them', {
  skip: tsharkSkip(),
}, () => {
  const b = bench({ server: (p) => (p.msDns = [0x08080808]) });
  b.open();
  b.clock.advance(100);
  b.client.link.sendIp(new Uint8Array([0x45, 0, 0, 20]));
  b.server.link.lcp.sendExtra(PacketCode.EchoRequest, new Uint8Array([0, 0, 0, 0]));
  b.server.link.receiveFrame(Uint8Array.from([0x40, 0x21, 1, 2])); // unknown protocol → Protocol-Reject
  b.clock.advance(5);
  b.client.link.close('bye');
  b.clock.advance(10_000);
  const path = writePcap(b.frames.map((f, i) => gre(f, i + 1)));
  assert.deepEqual(tsharkProblems(path), []);
  const rows = tsharkFields(path, [
    'ppp.protocol',
    'ppp.code',
    'lcp.opt.type',
    'lcp.opt.mru',
    'lcp.opt.auth_protocol',
    'lcp.opt.algorithm',
    'ipcp.opt.ip_address',
    'ipcp.opt.pri_dns_address',
    'ccp.opt.supported_bits',
    'lcp.rej_proto',
  ]).map((r) => r.join('|'));
  const expect = (...cells: string[]) => {
    const row = [...cells, ...Array<string>(10 - cells.length).fill('')].join('|');
    assert.ok(rows.includes(row), `${row} not in\n${rows.join('\n')}`);
  };
  // Server LCP Configure-Request: MRU 1400, CHAP with MS-CHAPv2 (0x81), magic, PFC, ACFC; its Ack.
  expect('0xc021', '1', '1,3,5,7,8', '1400', '0xc223', '129');
  expect('0xc021', '2', '1,3,5,7,8', '1400', '0xc223', '129');
  // Client Configure-Request (no auth).
  expect('0xc021', '1', '1,5,7,8', '1400');
  // IPCP: the client asks for 0.0.0.0 and DNS; the server Naks with the address and its DNS.
  expect('0x8021', '1', '', '', '', '', '0.0.0.0', '0.0.0.0');
  expect('0x8021', '3', '', '', '', '', '10.0.0.100', '8.8.8.8');
  expect('0x8021', '2', '', '', '', '', '10.0.0.100', '8.8.8.8');
  // CCP: MPPE 128-bit stateless, requested and acked.
  expect('0x80fd', '1', '', '', '', '', '', '', '0x01000040');
  expect('0x80fd', '2', '', '', '', '', '', '', '0x01000040');
  // The IPv4 packet as an MPPE-compressed datagram with PFC+ACFC (protocol 0x00fd).
  expect('0x00fd');
  // LCP Echo-Request/Reply, Protocol-Reject of 0x4021, Terminate-Request/Ack.
  expect('0xc021', '9');
  expect('0xc021', '10');
  expect('0xc021', '8', '', '', '', '', '', '', '', '0x4021');
  expect('0xc021', '5');
  expect('0xc021', '6');
});
