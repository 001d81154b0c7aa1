import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { InterfaceAddress } from '../../src/net/iproute.ts';
import {
  BroadcastRelay,
  broadcastFilter,
  directedBroadcasts,
  type RelaySession,
} from '../../src/server/bcrelay.ts';
import { startBroadcastRelay } from '../../src/server/bcrelay-start.ts';
import type { ServerSettings } from '../../src/server/settings.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { MemoryLogger } from '../../src/util/log.ts';
import { type IPv4, ipv4FromBytes, ipv4ToBytes, parseIPv4 } from '../../src/wire/ip.ts';
import { runBpf } from '../support/bpf.ts';
import { internetChecksum, ipv4Packet } from '../support/pcap.ts';

const ip = (s: string): IPv4 => parseIPv4(s)!;
const LAN: InterfaceAddress = { ifname: 'lan0', address: ip('192.168.50.1'), prefixLength: 24 };

/** The UDP checksum of `udp` (header with its checksum field zeroed, and payload) over src/dst. */
function udpChecksum(src: IPv4, dst: IPv4, udp: Uint8Array): number {
  const pseudo = new Uint8Array(12 + udp.length);
  pseudo.set(ipv4ToBytes(src), 0);
  pseudo.set(ipv4ToBytes(dst), 4);
  pseudo[9] = 17;
  pseudo[10] = udp.length >> 8;
  pseudo[11] = udp.length & 0xff;
  pseudo.set(udp, 12);
  const c = internetChecksum(pseudo);
  return c === 0 ? 0xffff : c;
}

/** A UDP datagram in IPv4 with correct checksums (or UDP checksum 0 with `noChecksum`). */
function udp(
  o: { src: string; dst: string; sport?: number; dport?: number; ttl?: number; noChecksum?: boolean },
  payload = new TextEncoder().encode('NBNS query WORKGROUP<1d>'),
): Uint8Array {
  const u = new Uint8Array(8 + payload.length);
  const v = new DataView(u.buffer);
  v.setUint16(0, o.sport ?? 137);
  v.setUint16(2, o.dport ?? 137);
  v.setUint16(4, u.length);
  u.set(payload, 8);
  if (!o.noChecksum) v.setUint16(6, udpChecksum(ip(o.src), ip(o.dst), u));
  return ipv4Packet({ src: o.src, dst: o.dst, protocol: 17, ttl: o.ttl ?? 128 }, u);
}

class FakeSession implements RelaySession {
  received: { packet: Uint8Array; headroom: number }[] = [];
  readonly assignedIp: IPv4 | undefined;
  isUp: boolean;
  constructor(assignedIp: IPv4 | undefined, isUp = true) {
    this.assignedIp = assignedIp;
    this.isUp = isUp;
  }
  sendIp(packet: Uint8Array, headroom: number): void {
    // The tunnel may encrypt in place: scribble over the copy as MPPE would.
    this.received.push({ packet: packet.slice(), headroom });
    packet.fill(0xee);
    new Uint8Array(packet.buffer, packet.byteOffset - headroom, headroom).fill(0xdd);
  }
}

function setup(o: { sessions?: FakeSession[]; rate?: number; pool?: string[]; debug?: boolean } = {}) {
  const sessions = o.sessions ?? [new FakeSession(ip('10.77.0.10')), new FakeSession(ip('10.77.0.11'))];
  const clock = new ManualClock(1000);
  const log = new MemoryLogger({ debug: o.debug ?? false });
  const relay = new BroadcastRelay({
    ifname: 'lan0',
    interfaceAddresses: [LAN],
    hostAddresses: [ip('10.77.0.1'), ip('203.0.113.1')],
    clientPool: () => (o.pool ?? ['10.77.0.10', '10.77.0.11', '10.77.0.12']).map(ip),
    targets: { liveSessions: sessions },
    clock,
    log,
    ...(o.rate === undefined ? {} : { ratePerSecond: o.rate }),
    headroom: 32,
  });
  return { relay, sessions, clock, log };
}

function checkCopy(copy: Uint8Array, original: Uint8Array): void {
  assert.equal(copy.length, original.length);
  assert.equal(ipv4FromBytes(copy, 16), 0xffffffff, 'destination is the limited broadcast');
  assert.equal(copy[8], 1, 'TTL 1');
  assert.equal(internetChecksum(copy.subarray(0, 20)), 0, 'IPv4 header checksum valid');
  const u = copy.slice(20);
  const sent = (u[6]! << 8) | u[7]!;
  u[6] = 0;
  u[7] = 0;
  assert.equal(
    sent,
    udpChecksum(ipv4FromBytes(copy, 12), 0xffffffff, u),
    'UDP checksum valid for the new destination',
  );
  assert.deepEqual(copy.subarray(12, 16), original.subarray(12, 16), 'source kept');
  assert.deepEqual(copy.subarray(20 + 8), original.subarray(20 + 8), 'payload kept');
}

test('bcrelay: a LAN broadcast (limited or directed) goes to every session that is up, each its own copy', () => {
  const down = new FakeSession(ip('10.77.0.12'), false);
  const { relay, sessions } = setup({
    sessions: [new FakeSession(ip('10.77.0.10')), down, new FakeSession(ip('10.77.0.11'))],
  });
  const limited = udp({ src: '192.168.50.20', dst: '255.255.255.255' });
  const directed = udp({ src: '192.168.50.21', dst: '192.168.50.255', sport: 138, dport: 138 });
  const before = limited.slice();
  relay.receive(limited);
  relay.receive(directed);
  assert.deepEqual(limited, before, 'the receive buffer is not modified');
  for (const s of [sessions[0]!, sessions[2]!]) {
    assert.equal(s.received.length, 2);
    checkCopy(s.received[0]!.packet, limited);
    checkCopy(s.received[1]!.packet, directed);
    assert.equal(s.received[0]!.headroom, 32);
  }
  assert.equal(down.received.length, 0, 'a session still setting up gets nothing');
  assert.deepEqual(relay.counts, { relayed: 2, copies: 4, noClient: 0, notBroadcast: 0 });
});

test('bcrelay: a UDP checksum of 0 (none) stays 0; the copy from a directed broadcast is still valid', () => {
  const { relay, sessions } = setup();
  const p = udp({ src: '192.168.50.20', dst: '192.168.50.255', noChecksum: true });
  relay.receive(p);
  const copy = sessions[0]!.received[0]!.packet;
  assert.equal((copy[26]! << 8) | copy[27]!, 0);
  assert.equal(internetChecksum(copy.subarray(0, 20)), 0);
});

test('bcrelay: a checksum-offload partial sum (veth, own stack) becomes a correct UDP checksum', () => {
  const { relay, sessions } = setup();
  const p = udp({ src: '192.168.50.20', dst: '192.168.50.255' });
  p[26] = 0x12; // what CHECKSUM_PARTIAL leaves: the pseudo-header sum only, not a checksum
  p[27] = 0x34;
  relay.receive(p);
  checkCopy(sessions[0]!.received[0]!.packet, p);
});

test('bcrelay: unicast and broadcasts of other subnets are not relayed', () => {
  const { relay, sessions } = setup();
  relay.receive(udp({ src: '192.168.50.20', dst: '192.168.50.1' }));
  relay.receive(udp({ src: '192.168.50.20', dst: '10.1.2.255' }));
  relay.receive(udp({ src: '192.168.50.20', dst: '192.168.50.10' }));
  assert.equal(sessions[0]!.received.length, 0);
  assert.equal(relay.counts.notBroadcast, 3);
  assert.equal(relay.counts.relayed, 0);
});

test('bcrelay: no loops: TTL 1, this host as source, a client address as source are dropped by reason', () => {
  const staticUser = new FakeSession(ip('192.168.50.77')); // a chap-secrets address outside the pool
  const { relay, sessions, log } = setup({ sessions: [new FakeSession(ip('10.77.0.10')), staticUser] });
  relay.receive(udp({ src: '192.168.50.20', dst: '255.255.255.255', ttl: 1 }));
  relay.receive(udp({ src: '192.168.50.1', dst: '255.255.255.255' })); // IF's own address
  relay.receive(udp({ src: '10.77.0.1', dst: '255.255.255.255' })); // localip
  relay.receive(udp({ src: '10.77.0.12', dst: '255.255.255.255' })); // pool, not in use
  relay.receive(udp({ src: '192.168.50.77', dst: '192.168.50.255' })); // a client's static address
  for (const s of sessions) assert.equal(s.received.length, 0);
  assert.deepEqual(relay.drops.snapshot(), {
    'TTL 1: not to be forwarded (or already relayed)': 1,
    'sent by this host': 2,
    'source is a VPN client address': 2,
  });
  assert.ok(
    log.has(
      'dropped broadcast from lan0: sent by this host (UDP 192.168.50.1:137 -> 255.255.255.255:137 on lan0)',
    ),
    log.text(),
  );
});

test('bcrelay: malformed packets are dropped: not UDP, truncated, a fragment, a bad length', () => {
  const { relay, sessions } = setup();
  const tcp = ipv4Packet({ src: '192.168.50.20', dst: '255.255.255.255', protocol: 6 }, new Uint8Array(20));
  const good = udp({ src: '192.168.50.20', dst: '255.255.255.255' });
  const fragment = good.slice();
  fragment[6] = 0x20; // more fragments
  const badUdpLength = good.slice();
  badUdpLength[24] = 0xff;
  const badIpLength = good.slice(0, good.length - 1);
  for (const p of [tcp, good.subarray(0, 25), fragment, badUdpLength, badIpLength, new Uint8Array(0)])
    relay.receive(p);
  assert.equal(sessions[0]!.received.length, 0);
  assert.equal(relay.drops.get('malformed IPv4/UDP packet'), 6);
});

test('bcrelay: with no client up a broadcast is only counted (and uses no rate budget)', () => {
  const s = new FakeSession(ip('10.77.0.10'), false);
  const { relay } = setup({ sessions: [s], rate: 1 });
  relay.receive(udp({ src: '192.168.50.20', dst: '255.255.255.255' }));
  relay.receive(udp({ src: '192.168.50.20', dst: '255.255.255.255' }));
  assert.equal(relay.counts.noClient, 2);
  s.isUp = true;
  relay.receive(udp({ src: '192.168.50.20', dst: '255.255.255.255' }));
  assert.equal(s.received.length, 1);
});

test('bcrelay: a broadcast storm is cut to the rate a second, with a burst of the same size', () => {
  const { relay, sessions, clock, log } = setup({ rate: 5 });
  const p = udp({ src: '192.168.50.20', dst: '255.255.255.255' });
  for (let i = 0; i < 8; i++) relay.receive(p);
  assert.equal(sessions[0]!.received.length, 5);
  assert.equal(relay.drops.get('over the rate limit (broadcast storm on the LAN?)'), 3);
  assert.ok(log.has('over the rate limit (broadcast storm on the LAN?) (more than 5 a second)'));
  clock.advance(200); // one more token (5 a second)
  relay.receive(p);
  relay.receive(p);
  assert.equal(sessions[0]!.received.length, 6);
  clock.advance(60_000); // saved-up tokens stop at the burst size
  for (let i = 0; i < 8; i++) relay.receive(p);
  assert.equal(sessions[0]!.received.length, 11);
  assert.equal(sessions[1]!.received.length, 11);
  assert.equal(relay.counts.relayed, 11);
  assert.equal(relay.drops.get('over the rate limit (broadcast storm on the LAN?)'), 3 + 1 + 3);
});

test('bcrelay: the client pool is read again after a reload', () => {
  let pool = [ip('10.77.0.10')];
  const s = new FakeSession(ip('10.77.0.10'));
  const relay = new BroadcastRelay({
    ifname: 'lan0',
    interfaceAddresses: [LAN],
    clientPool: () => pool,
    targets: { liveSessions: [s] },
    clock: new ManualClock(),
    log: new MemoryLogger(),
  });
  relay.receive(udp({ src: '172.16.0.5', dst: '255.255.255.255' }));
  assert.equal(s.received.length, 1);
  pool = [ip('172.16.0.5')];
  relay.receive(udp({ src: '172.16.0.5', dst: '255.255.255.255' }));
  assert.equal(s.received.length, 1);
  assert.equal(relay.drops.get('source is a VPN client address'), 1);
});

test('bcrelay: directed broadcasts of the interface addresses (no /31, /32 or duplicates)', () => {
  assert.deepEqual(
    directedBroadcasts([
      LAN,
      { ifname: 'lan0', address: ip('192.168.50.9'), prefixLength: 24 },
      { ifname: 'lan0', address: ip('10.0.0.1'), prefixLength: 8 },
      { ifname: 'lan0', address: ip('172.16.1.1'), prefixLength: 32 },
      { ifname: 'lan0', address: ip('172.16.2.0'), prefixLength: 31 },
    ]),
    [ip('192.168.50.255'), ip('10.255.255.255')],
  );
});

test('bcrelay: the kernel filter accepts exactly the broadcast destinations', () => {
  const { relay } = setup();
  const prog = broadcastFilter(relay.destinations);
  assert.equal(prog.length % 8, 0);
  const accepts = (dst: string) => runBpf(prog, udp({ src: '192.168.50.20', dst })) > 0;
  assert.equal(accepts('255.255.255.255'), true);
  assert.equal(accepts('192.168.50.255'), true);
  assert.equal(accepts('192.168.50.1'), false);
  assert.equal(accepts('10.1.2.255'), false);
  const three = broadcastFilter([ip('255.255.255.255'), ip('10.0.0.255'), ip('10.1.255.255')]);
  assert.ok(runBpf(three, udp({ src: '10.0.0.1', dst: '10.1.255.255' })) > 0);
  assert.equal(runBpf(three, udp({ src: '10.0.0.1', dst: '10.1.255.254' })), 0);
});

function fakeServer(): Parameters<typeof startBroadcastRelay>[0]['server'] {
  return {
    liveSessions: [],
    currentSettings: {
      localIps: [ip('10.77.0.1')],
      remoteIps: [ip('10.77.0.10')],
    } as unknown as ServerSettings,
  };
}

test('bcrelay start-up: a missing interface is an error naming the keyword file:line', async () => {
  const noDev = Object.assign(
    new Error('no such network interface (setsockopt SO_BINDTODEVICE: No such device)'),
    {
      code: 'ENODEV',
    },
  );
  await assert.rejects(
    startBroadcastRelay({
      bcrelay: { ifname: 'eth9', at: '/etc/pptpd.conf:12' },
      server: fakeServer(),
      clock: new ManualClock(),
      log: new MemoryLogger(),
      headroom: 32,
      ip: { addresses: async () => [LAN] },
      open: () => {
        throw noDev;
      },
    }),
    { message: '/etc/pptpd.conf:12: bcrelay eth9: there is no network interface "eth9" on this host' },
  );
});

test('bcrelay start-up: reads the interface addresses, filters for its broadcasts, feeds the relay, closes', async () => {
  const log = new MemoryLogger();
  let filter: Uint8Array | undefined;
  let feed: ((p: Uint8Array) => void) | undefined;
  let closed = false;
  const { relay, close } = await startBroadcastRelay({
    bcrelay: { ifname: 'lan0', at: '/etc/pptpd.conf:3' },
    server: fakeServer(),
    clock: new ManualClock(),
    log,
    headroom: 32,
    ip: { addresses: async () => [LAN, { ifname: 'wan0', address: ip('203.0.113.1'), prefixLength: 24 }] },
    open: (ifname, f) => {
      assert.equal(ifname, 'lan0');
      filter = f;
      return {
        onPacket: (cb) => {
          feed = cb;
        },
        close: () => {
          closed = true;
        },
      };
    },
  });
  assert.deepEqual(relay.destinations, [0xffffffff, ip('192.168.50.255')]);
  assert.ok(filter && runBpf(filter, udp({ src: '192.168.50.2', dst: '192.168.50.255' })) > 0);
  assert.ok(
    log.has(
      'broadcast relay (/etc/pptpd.conf:3): UDP broadcasts to 255.255.255.255 and 192.168.50.255 received on lan0 go to every connected client, at most 100 a second',
    ),
    log.text(),
  );
  feed!(udp({ src: '203.0.113.1', dst: '255.255.255.255' })); // another interface's address is ours too
  feed!(udp({ src: '192.168.50.2', dst: '255.255.255.255' }));
  assert.equal(relay.drops.get('sent by this host'), 1);
  assert.equal(relay.counts.noClient, 1);
  close();
  assert.equal(closed, true);
});
