import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeGrePacket } from '../../src/gre/codec.ts';
import { fromHex } from '../../src/wire/bytes.ts';
import { parseIPv4 } from '../../src/wire/ip.ts';
import { grePacketInIpv4, pcapFile } from './pcap-local.ts';

// Independent check: Wireshark's GRE dissector must read our headers as we meant them.
const haveTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
const skip = !haveTshark && process.env.CI !== 'true' ? 'tshark not installed' : false;

// LCP Echo-Request id 1, magic 0x12345678 (RFC 1661 §5.8), in HDLC-like framing.
const LCP_ECHO = fromHex('ff03 c021 09 01 0008 12345678');

const PACKETS = [
  { callId: 0x1234, seq: 0, ack: undefined, payload: LCP_ECHO },
  { callId: 0x0001, seq: 0xfffffffe, ack: 0x7fffffff, payload: LCP_ECHO },
  { callId: 0xffff, seq: undefined, ack: 42, payload: new Uint8Array(0) },
] as const;

const FIELDS = [
  'gre.flags.version',
  'gre.proto',
  'gre.flags.key',
  'gre.flags.sequence_number',
  'gre.flags.ack',
  'gre.key.payload_length',
  'gre.key.call_id',
  'gre.sequence_number',
  'gre.ack_number',
  'ppp.protocol',
  'lcp.magic_number',
  '_ws.malformed',
];

test('tshark decodes our enhanced GRE packets inside IPv4 (IP protocol 47)', { skip }, () => {
  const src = parseIPv4('192.0.2.1')!;
  const dst = parseIPv4('198.51.100.2')!;
  const frames = PACKETS.map((p) => grePacketInIpv4(src, dst, encodeGrePacket(p, p.payload)));
  const dir = mkdtempSync(join(tmpdir(), 'poptop-gre-'));
  try {
    const file = join(dir, 'gre.pcap');
    writeFileSync(file, pcapFile(frames));
    const args = ['-n', '-r', file, '-T', 'fields', '-E', 'separator=|', ...FIELDS.flatMap((f) => ['-e', f])];
    const r = spawnSync('tshark', args, { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const rows = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('|'));
    assert.equal(rows.length, PACKETS.length);
    const field = (row: string[], name: string): string => row[FIELDS.indexOf(name)] ?? '';
    PACKETS.forEach((p, i) => {
      const row = rows[i]!;
      assert.equal(field(row, 'gre.flags.version'), '1');
      assert.equal(Number(field(row, 'gre.proto')), 0x880b);
      assert.match(field(row, 'gre.flags.key'), /^(1|True)$/);
      assert.match(
        field(row, 'gre.flags.sequence_number'),
        p.seq === undefined ? /^(0|False)$/ : /^(1|True)$/,
      );
      assert.match(field(row, 'gre.flags.ack'), p.ack === undefined ? /^(0|False)$/ : /^(1|True)$/);
      assert.equal(Number(field(row, 'gre.key.payload_length')), p.payload.length);
      assert.equal(Number(field(row, 'gre.key.call_id')), p.callId);
      assert.equal(field(row, 'gre.sequence_number'), p.seq === undefined ? '' : String(p.seq));
      assert.equal(field(row, 'gre.ack_number'), p.ack === undefined ? '' : String(p.ack));
      if (p.payload.length > 0) {
        assert.equal(Number(field(row, 'ppp.protocol')), 0xc021);
        assert.equal(Number(field(row, 'lcp.magic_number')), 0x12345678);
      }
      assert.equal(field(row, '_ws.malformed'), '', `packet ${i} malformed for tshark`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
