// Our control messages, checked by an independent decoder: Wireshark's PPTP dissector (tshark).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeControlMessage } from '../../src/pptp/codec.ts';
import { greInIpv4, internetChecksum, ipv4Packet, TcpStream, writePcap } from '../support/pcap.ts';
import { decodeWithTshark, tsharkFields, tsharkProblems, tsharkSkip } from '../support/tshark.ts';
import { Pair } from './harness.ts';
import { SAMPLES } from './samples.ts';

const skip = tsharkSkip();

function sample(type: string) {
  const m = SAMPLES.find((s) => s.type === type);
  assert.ok(m, type);
  return m;
}

/** One pcap with the given messages sent client → server on TCP port 1723, after a handshake. */
function capture(messages: readonly (typeof SAMPLES)[number][]): string {
  const tcp = new TcpStream({ ip: '192.0.2.10', port: 40_000 }, { ip: '198.51.100.1', port: 1723 });
  return writePcap([...tcp.handshake(), ...messages.map((m) => tcp.segment('a', encodeControlMessage(m)))]);
}

test('tshark decodes every message type with the right type and length, with no expert errors', {
  skip,
}, () => {
  const file = capture(SAMPLES);
  assert.deepEqual(tsharkProblems(file), []);
  const rows = tsharkFields(file, ['pptp.control_message_type', 'pptp.length', 'pptp.magic_cookie'], {
    filter: 'pptp',
  });
  assert.deepEqual(
    rows,
    SAMPLES.map((m, i) => [String(i + 1), String(encodeControlMessage(m).length), '0x1a2b3c4d']),
  );
});

test('tshark reads the field values of SCCRQ, OCRQ, OCRP, CDN, SLI and Echo', { skip }, () => {
  const msgs = [
    sample('start-control-connection-request'),
    sample('outgoing-call-request'),
    sample('outgoing-call-reply'),
    sample('call-disconnect-notify'),
    sample('set-link-info'),
    sample('echo-request'),
    sample('echo-reply'),
  ];
  const pptp = decodeWithTshark(capture(msgs), { filter: 'pptp' }).map(
    (l) => l.pptp as Record<string, unknown>,
  );
  assert.equal(pptp.length, msgs.length);
  const [sccrq, ocrq, ocrp, cdn, sli, echoRq, echoRp] = pptp;
  assert.deepEqual(pickFields(sccrq), {
    'pptp.protocol_version': '256',
    'pptp.framing_capabilities': '3',
    'pptp.bearer_capabilities': '1',
    'pptp.maximum_channels': '0',
    'pptp.firmware_revision': '2600',
    'pptp.host_name': 'client-pc',
    'pptp.vendor_name': 'Microsoft Windows NT',
  });
  assert.deepEqual(pickFields(ocrq), {
    'pptp.call_id': '4660',
    'pptp.call_serial_number': '7',
    'pptp.minimum_bps': '300',
    'pptp.maximum_bps': '100000000',
    'pptp.bearer_type': '3',
    'pptp.framing_type': '3',
    'pptp.packet_receive_window_size': '64',
    'pptp.packet_processing_delay': '5',
    'pptp.phone_number_length': '8',
    'pptp.phone_number': '555-0100',
    'pptp.subaddress': 'sub',
  });
  assert.deepEqual(pickFields(ocrp), {
    'pptp.call_id': '17185',
    'pptp.peer_call_id': '4660',
    'pptp.out_result': '1',
    'pptp.error': '0',
    'pptp.cause': '17',
    'pptp.connect_speed': '10000000',
    'pptp.packet_receive_window_size': '32',
    'pptp.packet_processing_delay': '2',
    'pptp.physical_channel_id': '195948557',
  });
  assert.deepEqual(pickFields(cdn), {
    'pptp.call_id': '17185',
    'pptp.disc_result': '4',
    'pptp.error': '0',
    'pptp.cause': '16',
    'pptp.call_Statistics': 'rx 10 tx 20',
  });
  assert.deepEqual(pickFields(sli), {
    'pptp.peer_call_id': '17185',
    'pptp.send_accm': '0xffffffff',
    'pptp.receive_accm': '0x000a0000',
  });
  assert.equal(echoRq?.['pptp.identifier'], '3735928559');
  assert.equal(echoRp?.['pptp.identifier'], '16909060');
  assert.equal(echoRp?.['pptp.echo_result'], '2');
});

test('a whole session of our PAC and PNS, as captured, decodes cleanly in tshark', { skip }, () => {
  const tcp = new TcpStream({ ip: '192.0.2.10', port: 40_001 }, { ip: '198.51.100.1', port: 1723 });
  const packets = tcp.handshake();
  const p = new Pair({}, { echoIntervalMs: 120_000 });
  p.onWrite = (from, bytes) => packets.push(tcp.segment(from === 'pns' ? 'a' : 'b', bytes));
  p.establish();
  p.pns.conn.placeCall();
  p.pump();
  p.advance(61_000); // the PAC's keepalive: one Echo-Request and its reply
  p.pns.conn.stop('done');
  p.pump();
  const file = writePcap(packets);
  assert.deepEqual(tsharkProblems(file), []);
  const types = tsharkFields(file, ['pptp.control_message_type'], { filter: 'pptp' }).map((r) =>
    Number(r[0]),
  );
  assert.deepEqual(types, [1, 2, 7, 8, 5, 6, 3, 4]);
});

function pickFields(layer: Record<string, unknown> | undefined): Record<string, unknown> {
  assert.ok(layer);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(layer)) {
    if (
      k.startsWith('pptp.') &&
      ![
        'pptp.length',
        'pptp.type',
        'pptp.magic_cookie',
        'pptp.control_message_type',
        'pptp.reserved',
      ].includes(k)
    ) {
      out[k] = v;
    }
  }
  return out;
}

test('pcap helpers: IPv4 and TCP checksums are valid, GRE and other protocols are wrapped as given', {
  skip,
}, () => {
  const tcp = new TcpStream({ ip: '192.0.2.10', port: 40_002 }, { ip: '198.51.100.1', port: 1723 });
  const seg = tcp.segment('a', encodeControlMessage(sample('echo-request')));
  assert.equal(internetChecksum(seg.subarray(0, 20)), 0, 'IPv4 header checksum');
  // Enhanced GRE (RFC 2637 §4.1): K and S set, version 1, protocol 0x880b, payload length 0, call id 0x1234, seq 1.
  const gre = Uint8Array.from([0x30, 0x01, 0x88, 0x0b, 0, 0, 0x12, 0x34, 0, 0, 0, 1]);
  const udpLike = ipv4Packet({ src: '192.0.2.1', dst: '192.0.2.2', protocol: 253 }, Uint8Array.of(1, 2, 3));
  const file = writePcap([seg, greInIpv4(gre, '198.51.100.1', '192.0.2.10'), udpLike]);
  const rows = tsharkFields(
    file,
    ['ip.proto', 'ip.checksum.status', 'tcp.checksum.status', 'gre.key.call_id'],
    {
      preferences: { 'ip.check_checksum': 'TRUE', 'tcp.check_checksum': 'TRUE' },
    },
  );
  // checksum status 1 = good (0 bad, 2 unverified)
  assert.deepEqual(rows, [
    ['6', '1', '1', ''],
    ['47', '1', '', '4660'],
    ['253', '1', '', ''],
  ]);
});
