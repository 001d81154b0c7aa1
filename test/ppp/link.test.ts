import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PacketCode } from '../../src/ppp/constants.ts';
import { bench, CLIENT_IP, type Frame, SERVER_IP } from './harness.ts';

test('defaults: server and client reach the Network phase with MPPE-128 stateless and an address', () => {
  const b = bench();
  b.open();
  b.clock.advance(100);
  assert.equal(b.server.link.phase, 'network', b.server.log.text());
  assert.equal(b.client.link.phase, 'network', b.client.log.text());
  assert.equal(b.server.up.length, 1);
  assert.equal(b.client.up.length, 1);
  const s = b.server.up[0]!;
  const c = b.client.up[0]!;
  assert.equal(s.localAddress, SERVER_IP);
  assert.equal(s.peerAddress, CLIENT_IP);
  assert.equal(c.localAddress, CLIENT_IP);
  assert.equal(c.peerAddress, SERVER_IP);
  assert.deepEqual(s.mppe, { bits: 128, stateless: true });
  assert.deepEqual(c.mppe, { bits: 128, stateless: true });
  b.client.link.sendIp(new Uint8Array([0x45, 1, 2, 3]));
  b.server.link.sendIp(new Uint8Array([0x45, 9, 9]));
  b.clock.advance(5);
  assert.deepEqual(b.server.ip, [new Uint8Array([0x45, 1, 2, 3])]);
  assert.deepEqual(b.client.ip, [new Uint8Array([0x45, 9, 9])]);
});

test('mismatched MRUs: each side sends within the MRU the other asked for', () => {
  const b = bench({
    server: (p) => (p.mru = 1500),
    client: (p) => {
      p.mru = 1200;
      p.mtu = 1500;
    },
  });
  b.open();
  b.clock.advance(100);
  assert.equal(b.server.up.length, 1);
  // The server sends to the client's MRU 1200 less the 4 octets of MPPE overhead.
  assert.equal(b.server.up[0]!.mtu, 1196);
  assert.equal(b.client.up[0]!.mtu, 1496);
  b.server.link.sendIp(new Uint8Array(1197));
  b.server.link.sendIp(new Uint8Array(1196));
  b.clock.advance(5);
  assert.equal(b.client.ip.length, 1);
  assert.equal(b.server.link.stats.drops['outgoing packet larger than the MTU'], 1);
});

test('a peer MRU below the minimum is Nak-ed up to 128, above 1500 down to 1500', () => {
  const b = bench({ client: (p) => (p.mru = 64), server: (p) => (p.mru = 9000) });
  b.open();
  b.clock.advance(100);
  assert.equal(b.server.up.length, 1);
  assert.equal(b.client.up[0]!.mtu, 1400); // the server's 9000 Nak-ed to 1500; our mtu 1400 is smaller
  assert.equal(b.server.up[0]!.mtu, 124); // 128 − MPPE overhead
});

test('Terminate from the client: both sides reach Dead and report the reason once', () => {
  const b = bench();
  b.open();
  b.clock.advance(100);
  b.client.link.close('user hung up');
  b.clock.advance(10_000);
  assert.equal(b.client.link.phase, 'dead');
  assert.equal(b.server.link.phase, 'dead');
  assert.deepEqual(b.client.down, ['user hung up']);
  assert.deepEqual(b.server.down, ['peer requested termination ("user hung up")']);
  assert.equal(b.clock.pending, 0);
  // Dead is final: a new Configure-Request does not revive the link nor report Down again.
  b.server.link.receiveFrame(b.frames[1]!.bytes);
  b.clock.advance(60_000);
  assert.equal(b.server.down.length, 1);
  assert.equal(b.server.link.stats.drops['frame after the link went down'], 1);
});

test('Terminate from the server; a lost Terminate-Ack ends by timeout', () => {
  const b = bench({ lose: (_n, f) => f.from === 'client' && f.bytes[4] === 6 });
  b.open();
  b.clock.advance(100);
  b.server.link.close('admin shutdown');
  b.clock.advance(30_000);
  assert.deepEqual(b.server.down, ['admin shutdown']);
  assert.deepEqual(b.client.down, ['peer requested termination ("admin shutdown")']);
  // Max-Terminate (2) Terminate-Requests were sent by the server.
  const termReqs = b.frames.filter((f) => f.from === 'server' && f.bytes[2] === 0xc0 && f.bytes[4] === 5);
  assert.equal(termReqs.length, 2);
});

test('LCP echo: a silent peer is declared dead after lcp-echo-failure unanswered requests', () => {
  let silent = false;
  const b = bench({
    server: (p) => {
      p.lcpEchoInterval = 10;
      p.lcpEchoFailure = 3;
    },
    lose: (_n, f) => silent && f.from === 'client',
  });
  b.open();
  b.clock.advance(100);
  b.clock.advance(60_000); // echoes answered: still up
  assert.equal(b.server.link.phase, 'network');
  silent = true;
  b.clock.advance(35_000);
  assert.equal(b.server.link.phase, 'network');
  b.clock.advance(20_000);
  assert.deepEqual(b.server.down, ['peer not responding to LCP echo']);
});

test('LCP echo (issue 11.2): every lcp-echo-interval while the peer sends traffic, as plain LCP with ff 03 c0 21', () => {
  const b = bench({ server: (p) => (p.lcpEchoInterval = 2) });
  b.open();
  b.clock.advance(100);
  assert.equal(b.server.link.phase, 'network');
  const from = b.frames.length;
  // The client is busy for 11 s: an IP packet every 100 ms, and one back from the server.
  for (let t = 0; t < 11_000; t += 100) {
    b.client.link.sendIp(new Uint8Array([0x45, 0, 0, 20]));
    b.server.link.sendIp(new Uint8Array([0x45, 0, 0, 21]));
    b.clock.advance(100);
  }
  const sent = b.frames.slice(from);
  const isLcp = (f: Frame, code: number) =>
    f.bytes[0] === 0xff &&
    f.bytes[1] === 0x03 &&
    f.bytes[2] === 0xc0 &&
    f.bytes[3] === 0x21 &&
    f.bytes[4] === code;
  // pppd's default (not lcp-echo-adaptive): the timer is not held off by received traffic.
  const requests = sent.filter((f) => f.from === 'server' && isLcp(f, PacketCode.EchoRequest));
  assert.equal(requests.length, 5, 'one Echo-Request every 2 s of the 11 s');
  assert.deepEqual(
    requests.map((f) => f.bytes[5]),
    [...new Set(requests.map((f) => f.bytes[5]))],
    'a fresh identifier each time',
  );
  // The server's IP packets in the same period went out MPPE-encrypted with ACFC + PFC (0xfd
  // alone): the echoes were exempt from both, as RFC 1661 and RFC 3078 require.
  const ip = sent.filter((f) => f.from === 'server' && f.bytes[0] === 0xfd);
  assert.equal(ip.length, 110);
  const replies = sent.filter((f) => f.from === 'client' && isLcp(f, PacketCode.EchoReply));
  assert.deepEqual(
    replies.map((f) => f.bytes[5]),
    requests.map((f) => f.bytes[5]),
    'the peer answered every one',
  );
  assert.equal(b.server.link.phase, 'network');
});

test('renegotiation: LCP Configure-Request in Opened restarts authentication and the network layers', () => {
  const b = bench();
  b.open();
  b.clock.advance(100);
  assert.equal(b.server.up.length, 1);
  // The client's LCP starts over (as after a PPTP reconnect at the PPP layer).
  const lcp = b.client.link.lcp;
  lcp.down();
  lcp.up();
  b.clock.advance(200);
  assert.equal(b.server.link.phase, 'network');
  assert.equal(b.client.link.phase, 'network');
  assert.equal(b.server.up.length, 2);
  assert.equal(b.client.up.length, 2);
  b.client.link.sendIp(new Uint8Array([0x45, 7]));
  b.clock.advance(5);
  assert.equal(b.server.ip.length, 1);
});

test('lost frames at every step of the set-up: the link still comes up', () => {
  for (let nth = 1; nth <= 25; nth++) {
    let data = false;
    const b = bench({ lose: (n) => n === nth && !data });
    b.open();
    b.clock.advance(60_000);
    assert.equal(b.server.link.phase, 'network', `frame ${nth} lost:\n${b.server.log.text()}`);
    assert.equal(b.client.link.phase, 'network', `frame ${nth} lost:\n${b.client.log.text()}`);
    // A lost Configure-Ack can make the peer renegotiate from Opened (RFC 1661 RCR in Opened), so
    // onNetworkUp may come twice; the final state is what matters.
    assert.ok(b.server.up.length >= 1 && b.client.up.length >= 1, `frame ${nth}`);
    assert.deepEqual(b.client.up.at(-1)!.mppe, { bits: 128, stateless: true }, `frame ${nth}`);
    data = true;
    b.client.link.sendIp(new Uint8Array([0x45]));
    b.clock.advance(5);
    assert.equal(b.server.ip.length, 1, `frame ${nth}`);
  }
});

test('IPCP: the server assigns the address from onAuthenticated and gives DNS/WINS', () => {
  const b = bench({
    server: (p) => {
      p.msDns = [0x08080808, 0x01010101];
      p.msWins = [0x0a000005];
    },
    serverLink: {
      events: {
        onAuthenticated: () => ({ peerAddress: 0x0a0000c8 }),
      },
    },
  });
  b.open();
  b.clock.advance(100);
  assert.equal(b.client.up[0]!.localAddress, 0x0a0000c8);
  assert.deepEqual(b.client.up[0]!.dns, [0x08080808, 0x01010101]);
  assert.deepEqual(b.client.up[0]!.wins, []); // the client did not ask for WINS
  assert.equal(b.server.link.phase, 'network');
});

test('IPCP: a refusing onAuthenticated terminates the link', () => {
  const b = bench({ serverLink: { events: { onAuthenticated: () => false } } });
  b.open();
  b.clock.advance(10_000);
  assert.deepEqual(b.server.down, ['session refused for user "alice"']);
  assert.equal(b.client.link.phase, 'dead');
});

test('IPCP: an answer decided elsewhere (a promise) is waited for; a late or failed one is handled', async () => {
  let decide: ((a: { peerAddress: number } | false) => void) | undefined;
  const b = bench({
    serverLink: {
      events: { onAuthenticated: () => new Promise((resolve) => (decide = resolve)) },
    },
  });
  b.open();
  b.clock.advance(100);
  assert.ok(decide, 'asked');
  assert.equal(b.server.link.phase, 'authenticate', 'waits for the answer');
  assert.equal(b.client.up.length, 0);
  decide({ peerAddress: 0x0a0000c9 });
  await Promise.resolve();
  // The client's CCP and IPCP requests that came while we waited were kept: no 3 s retransmission.
  b.clock.advance(100);
  assert.equal(b.client.up[0]!.localAddress, 0x0a0000c9);
  assert.equal(b.server.link.phase, 'network');
  assert.equal(b.server.link.stats.drops['network frame before authentication is done'], undefined);

  // The link closes while the answer is on its way: the answer changes nothing.
  let late: ((a: { peerAddress: number }) => void) | undefined;
  const c = bench({
    serverLink: { events: { onAuthenticated: () => new Promise((resolve) => (late = resolve)) } },
  });
  c.open();
  c.clock.advance(100);
  c.server.link.close('administrator');
  c.clock.advance(10_000);
  late!({ peerAddress: 0x0a0000ca });
  await Promise.resolve();
  c.clock.advance(100);
  assert.equal(c.server.link.phase, 'dead');
  assert.equal(c.client.up.length, 0);

  // A failed decision refuses the session, in words.
  const d = bench({
    serverLink: { events: { onAuthenticated: () => Promise.reject(new Error('the primary is gone')) } },
  });
  d.open();
  d.clock.advance(100);
  await Promise.resolve();
  await Promise.resolve();
  d.clock.advance(10_000);
  assert.deepEqual(d.server.down, ['session refused for user "alice": the primary is gone']);
});

test('IPCP: a client without usepeerdns gets no DNS; a server without ms-dns rejects DNS', () => {
  const b = bench({ client: (p) => (p.usePeerDns = false) });
  b.open();
  b.clock.advance(100);
  assert.deepEqual(b.client.up[0]!.dns, []);
  const c = bench();
  c.open();
  c.clock.advance(100);
  assert.deepEqual(c.client.up[0]!.dns, []);
  assert.equal(c.client.link.phase, 'network');
});

test('IPv6CP: both sides enabled → interface identifiers exchanged and IPv6 flows through MPPE', () => {
  const b = bench({ server: (p) => (p.ipv6 = true), client: (p) => (p.ipv6 = true) });
  b.open();
  b.clock.advance(100);
  const s = b.server.up[0]!.ipv6!;
  const c = b.client.up[0]!.ipv6!;
  assert.ok(s && c);
  assert.deepEqual(s.localId, c.peerId);
  assert.deepEqual(s.peerId, c.localId);
  assert.notDeepEqual(s.localId, s.peerId);
  b.client.link.sendIpv6(new Uint8Array([0x60, 0, 0, 0]));
  b.clock.advance(5);
  assert.equal(b.server.ipv6.length, 1);
});

test('IPv6CP: a server without +ipv6 Protocol-Rejects it; the client gives IPv6 up', () => {
  const b = bench({ client: (p) => (p.ipv6 = true) });
  b.open();
  b.clock.advance(100);
  assert.equal(b.client.up.length, 1);
  assert.equal(b.client.up[0]!.ipv6, null);
  assert.equal(b.client.link.network.ipv6cp!.state, 'starting');
  assert.ok(b.server.log.has('Protocol-Reject for protocol 0x8057'));
});

test('abort (PPTP call cleared): everything stops at once, no Terminate-Request, onDown once', () => {
  const b = bench();
  b.open();
  b.clock.advance(100);
  const sent = b.frames.length;
  b.server.link.abort('call cleared by peer');
  b.server.link.abort('again');
  assert.equal(b.server.link.phase, 'dead');
  assert.deepEqual(b.server.down, ['call cleared by peer']);
  assert.equal(b.frames.length, sent);
  b.client.link.abort('call cleared');
  assert.equal(b.clock.pending, 0);
});
