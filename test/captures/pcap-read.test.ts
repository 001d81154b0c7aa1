import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LINKTYPE_RAW, pcapFile, TcpStream } from '../support/pcap.ts';
import { linkPayload, parseIpv4, parseTcp, readPcap, TcpReassembler } from '../support/pcap-read.ts';

const A = { ip: '10.0.0.1', port: 40000 };
const B = { ip: '10.0.0.2', port: 1723 };
const bytes = (...xs: number[]) => new Uint8Array(xs);

function segmentsOf(packets: Uint8Array[]) {
  return packets.map((p) => parseTcp(parseIpv4(p).payload));
}

test('pcap reader: both byte orders give the same records', () => {
  const s = new TcpStream(A, B);
  const file = pcapFile([...s.handshake(), s.segment('a', bytes(1, 2, 3))], LINKTYPE_RAW);
  // The same file written big-endian: swap every header field.
  const be = file.slice();
  const dv = new DataView(file.buffer);
  const out = new DataView(be.buffer);
  out.setUint32(0, dv.getUint32(0, true), false);
  out.setUint16(4, dv.getUint16(4, true), false);
  out.setUint16(6, dv.getUint16(6, true), false);
  for (const at of [8, 12, 16, 20]) out.setUint32(at, dv.getUint32(at, true), false);
  for (let at = 24; at < file.length; ) {
    const incl = dv.getUint32(at + 8, true);
    for (let f = 0; f < 16; f += 4) out.setUint32(at + f, dv.getUint32(at + f, true), false);
    at += 16 + incl;
  }
  const l = readPcap(file);
  const b = readPcap(be);
  assert.equal(l.littleEndian, true);
  assert.equal(b.littleEndian, false);
  assert.equal(b.linktype, LINKTYPE_RAW);
  assert.deepEqual(
    b.records.map((r) => [r.time, Buffer.from(r.data).toString('hex')]),
    l.records.map((r) => [r.time, Buffer.from(r.data).toString('hex')]),
  );
  const last = linkPayload(b.linktype, b.records[3]!.data);
  assert.equal(last.kind, 'ipv4');
});

test('TCP reassembly: retransmissions, overlaps and out-of-order segments give the stream once, in order', () => {
  const s = new TcpStream(A, B);
  const [syn] = s.handshake();
  const p1 = s.segment('a', bytes(1, 2, 3, 4));
  const p2 = s.segment('a', bytes(5, 6));
  const p3 = s.segment('a', bytes(7, 8, 9));
  const [t1, t2, t3] = segmentsOf([p1, p2, p3]);
  const r = new TcpReassembler();
  r.add(segmentsOf([syn!])[0]!);
  r.add(t1!);
  r.add(t3!); // ahead of a gap: held
  r.add(t1!); // retransmission
  assert.deepEqual([...r.bytes()], [1, 2, 3, 4]);
  // An overlapping retransmission covering 3..6 fills the gap.
  r.add({ ...t1!, seq: (t1!.seq + 2) >>> 0, payload: bytes(3, 4, 5, 6) });
  r.add(t2!);
  assert.deepEqual([...r.bytes()], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(r.stranded, 0);
  assert.equal(r.duplicates, 3);
  assert.equal(r.outOfOrder, 1);
});
