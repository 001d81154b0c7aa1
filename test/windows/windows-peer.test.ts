/**
 * Issue 11: the real server object, in memory (loopback TCP, in-memory GRE and TUN, ManualClock),
 * against a peer that behaves as the Windows built-in PPTP client does in the captured sessions
 * (windows-peer.ts): the session must come up with MS-CHAPv2 + MPPE-128, give DNS and WINS, carry
 * a ping answered on the server's TUN, and end cleanly on the Windows teardown.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StaticCredentials } from '../../src/aaa/credentials.ts';
import { MemoryGreNetwork, MemoryTun } from '../../src/net/memory.ts';
import { PacketCode, PppProtocol } from '../../src/ppp/constants.ts';
import { LcpOption } from '../../src/ppp/lcp/options.ts';
import { defaultPolicy } from '../../src/ppp/policy.ts';
import { PptpServer } from '../../src/server/server.ts';
import { RecordingSystem } from '../../src/server/system.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { MemoryLogger } from '../../src/util/log.ts';
import { formatIPv4, type IPv4 } from '../../src/wire/ip.ts';
import { isValidIpv4Datagram } from '../captures/analyze.ts';
import { credential, ip, serverSettings } from '../server/harness.ts';
import { IpProtocol, internetChecksum, ipv4Packet } from '../support/pcap.ts';
import { WindowsPeer, type WindowsVersion } from './windows-peer.ts';

const DNS = ['10.77.0.53', '10.77.0.54'];
const WINS = ['10.77.0.137', '10.77.0.138'];

async function bench() {
  const clock = new ManualClock(1_000_000);
  const net = new MemoryGreNetwork({ clock, delayMs: 1 });
  const tun = new MemoryTun('mtun-win');
  const system = new RecordingSystem();
  const log = new MemoryLogger({ debug: true });
  const policy = defaultPolicy('server');
  policy.msDns = DNS.map(ip);
  policy.msWins = WINS.map(ip);
  const settings = serverSettings({
    policy,
    credentials: new StaticCredentials([credential('alice', 'alice-secret')]),
    tunName: 'mtun-win',
  });
  const server = new PptpServer(settings, { clock, log, gre: net.port('127.0.0.1'), tun, system });
  const port = await server.listen();
  return { clock, net, tun, system, log, server, port };
}

/** An ICMP echo request or reply (RFC 792) in IPv4, both checksums right. */
function icmpEcho(type: 0 | 8, src: IPv4 | string, dst: IPv4 | string, id: number, seq: number): Uint8Array {
  const icmp = new Uint8Array(8 + 32);
  icmp[0] = type;
  icmp[4] = id >> 8;
  icmp[5] = id & 0xff;
  icmp[6] = seq >> 8;
  icmp[7] = seq & 0xff;
  for (let i = 8; i < icmp.length; i++) icmp[i] = 0x61 + ((i - 8) % 23); // "abcdefghijklmnopqrstuvw", as Windows ping
  const sum = internetChecksum(icmp);
  icmp[2] = sum >> 8;
  icmp[3] = sum & 0xff;
  return ipv4Packet({ src, dst, protocol: IpProtocol.ICMP, id: seq }, icmp);
}

async function windowsSession(version: WindowsVersion) {
  const b = await bench();
  const peer = new WindowsPeer({
    version,
    clock: b.clock,
    gre: b.net.port('127.0.0.2'),
    server: ip('127.0.0.1'),
    port: b.port,
    localAddress: '127.0.0.2',
    user: 'alice',
    password: 'alice-secret',
  });
  try {
    await peer.connect();
    const sccrp = await peer.startControl();
    assert.equal(sccrp.resultCode, 1);
    const ocrp = await peer.call();
    assert.equal(ocrp.resultCode, 1);
    assert.equal(ocrp.peerCallId, peer.ourCallId);

    await peer.lcp();
    assert.ok(peer.log.droppedServerConfReqs >= 1, 'the server ConfReq before ours was dropped');
    // The server retransmitted its request and Windows answered that one.
    const lcpReqs = peer.log.received.filter(
      (r) => r.protocol === PppProtocol.LCP && r.code === PacketCode.ConfigureRequest,
    );
    assert.ok(lcpReqs.length >= 2);
    // Callback (and on Windows 2000 MRRU and the Endpoint Discriminator) were Configure-Rejected.
    const kept = peer.log.lcpAcked.map((o) => o.type);
    const expected =
      version === 'win2000'
        ? [LcpOption.MagicNumber, LcpOption.PFC, LcpOption.ACFC]
        : [LcpOption.MRU, LcpOption.MagicNumber, LcpOption.PFC, LcpOption.ACFC];
    assert.deepEqual(kept, expected);

    assert.equal(await peer.authenticate(), 'success', 'MS-CHAPv2 with the S= verified by the peer');
    await peer.ncps();
    assert.equal(peer.log.ccpAcked, 0x01000040, 'MPPE-128 stateless (H + S)');
    if (version === 'win2000') {
      // Offered MPPC + 40 + 56 + 128: Nak-ed down to H + S.
      assert.ok(
        peer.log.received.some((r) => r.protocol === PppProtocol.CCP && r.code === PacketCode.ConfigureNak),
      );
    } else {
      assert.ok(peer.log.ipv6cpRejected, 'IPv6CP Protocol-Rejected (no +ipv6)');
    }
    const got = peer.log.ipcp!;
    assert.ok(got);
    assert.equal(formatIPv4(got.address), '10.77.0.10');
    assert.deepEqual([got.dns1, got.dns2].map(formatIPv4), DNS);
    assert.deepEqual([got.nbns1, got.nbns2].map(formatIPv4), WINS);

    await peer.pump(
      () => b.server.list().length === 1 && b.server.list()[0]!.ip !== undefined,
      2000,
      'session row',
    );
    const [row] = b.server.list();
    assert.equal(row?.user, 'alice');
    assert.equal(row?.ip, '10.77.0.10');
    assert.equal(row?.auth, 'mschapv2');
    assert.equal(row?.mppe, '128-bit stateless');

    // Ping through the tunnel; the test plays the server's kernel and answers on the TUN.
    b.tun.onWrite = (p) => {
      if (p[9] === IpProtocol.ICMP && p[20] === 8) {
        const id = (p[24]! << 8) | p[25]!;
        const seq = (p[26]! << 8) | p[27]!;
        b.tun.inject(icmpEcho(0, p.subarray(16, 20).join('.'), p.subarray(12, 16).join('.'), id, seq));
      }
    };
    for (let seq = 1; seq <= 4; seq++) peer.sendIp(icmpEcho(8, '10.77.0.10', '10.77.0.1', 1, seq));
    await peer.pump(() => peer.ipReceived.length === 4, 2000, 'four echo replies');
    assert.equal(b.tun.written.length, 4, 'four echo requests reached the TUN');
    for (const [i, reply] of peer.ipReceived.entries()) {
      assert.ok(isValidIpv4Datagram(reply));
      assert.equal(reply[20], 0, 'ICMP echo reply');
      assert.equal((reply[26]! << 8) | reply[27]!, i + 1);
      assert.equal(internetChecksum(reply.subarray(20)), 0, 'ICMP checksum');
    }

    // The server's keepalives, LCP (every 30 s) and PPTP (every 60 s), are answered: the link stays up.
    await peer.pump(() => false, 125_000, 'nothing').catch(() => {});
    const echoes = peer.log.received.filter(
      (r) => r.protocol === PppProtocol.LCP && r.code === PacketCode.EchoRequest,
    );
    assert.ok(echoes.length >= 4, `${echoes.length} LCP Echo-Requests in 125 s`);
    const pptpEchoes = peer.log.control.filter((m) => m.type === 'echo-request');
    assert.ok(pptpEchoes.length >= 2, `${pptpEchoes.length} PPTP Echo-Requests in 125 s`);
    assert.equal(b.server.list().length, 1, 'still up after the keepalive');

    const { termAck, cdn, stop } = await peer.hangUp();
    assert.ok(termAck, 'LCP Terminate-Ack');
    assert.equal(cdn.resultCode, 4, 'Call-Disconnect-Notify Result Code 4: Request (RFC 2637 §2.13)');
    assert.equal(stop.resultCode, 1);
    await peer.pump(() => b.server.list().length === 0, 5000, 'the session to close');
    assert.equal(b.server.status().poolFree, 3, 'address back in the pool');
    assert.equal(b.system.routes.size, 0, 'host route removed');
    if (process.env.POPTOP_TEST_DEBUG === '1') process.stderr.write(b.log.text());
    return { peer, b };
  } finally {
    peer.destroy();
    const done = b.server.shutdown(2000);
    let finished = false;
    void done.then(() => {
      finished = true;
    });
    for (let i = 0; i < 5000 && !finished; i++) {
      b.clock.advance(1);
      await new Promise((r) => setImmediate(r));
    }
  }
}

test('Windows 10 client personality: MS-CHAPv2 + MPPE-128, DNS/WINS, ping, Windows teardown', async () => {
  await windowsSession('win10');
});

test('Windows 2000 personality: MRRU + Endpoint Discriminator rejected, MPPC+40+56+128 Nak-ed to 128', async () => {
  await windowsSession('win2000');
});
