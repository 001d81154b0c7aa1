/**
 * Our server and our client with a RADIUS server played by the test (in memory): what poptop does
 * with the Access-Accept's Framed-Route, Mikrotik-Rate-Limit and, with `plugin radattr.so`, the
 * attributes file. FreeRADIUS itself is in test/aaa/radius/freeradius.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type RadiusAttribute, textAttr, u32Attr } from '../../src/aaa/radius/codec.ts';
import { Attr, MikrotikAttr, VENDOR_MIKROTIK } from '../../src/aaa/radius/dictionary.ts';
import { defaultPolicy } from '../../src/ppp/policy.ts';
import { RecordingSystem } from '../../src/server/system.ts';
import { formatIPv4, IPV4_SOURCE_OFFSET, ipv4FromBytes } from '../../src/wire/ip.ts';
import {
  type Bench,
  ip,
  serverSettings,
  startClient,
  startServer,
  udpPacket,
  waitFor,
  within,
} from './harness.ts';
import { MemoryRadius, radiusPapSettings } from './memory-radius.ts';

const enc = (s: string) => new TextEncoder().encode(s);

const mikrotik = (text: string): RadiusAttribute => textAttr(MikrotikAttr.RateLimit, text, VENDOR_MIKROTIK);

async function bench(replies: Record<string, RadiusAttribute[]>, radattr = false): Promise<Bench> {
  const radius = new MemoryRadius('fake-radius', (user) => replies[user] ?? []);
  const settings = serverSettings(radiusPapSettings(radius, { accounting: false, radattr }));
  return startServer(settings, new RecordingSystem(), { radiusTransport: () => radius.transport() });
}

function papClient(b: Bench, user: string, localAddress = '127.0.0.2') {
  const policy = defaultPolicy('client');
  policy.auth.accept = ['pap'];
  policy.mppe.required = false;
  return startClient(b, { user, password: 'pw', policy, localAddress });
}

test('Framed-Route: routed to the session for its life (packets both ways), bad routes refused in words', async () => {
  const b = await bench({
    alice: [
      u32Attr(Attr.FramedIpAddress, ip('10.77.0.50')),
      textAttr(Attr.FramedRoute, '192.0.2.0/24 0.0.0.0 3'),
      textAttr(Attr.FramedRoute, '10.77.0.0/24'), // holds our tunnel address
      textAttr(Attr.FramedRoute, '10.77.0.8/29'), // holds pool addresses
      textAttr(Attr.FramedRoute, '198.51.100.0/24 10.9.9.9 1'), // another gateway
      textAttr(Attr.FramedRoute, '300.1.2.0/24\n'), // malformed, with a line feed
      textAttr(Attr.FramedRoute, '192.0.2.128/25'), // overlaps the first
    ],
    bob: [textAttr(Attr.FramedRoute, '192.0.2.0/26')],
  });
  try {
    const c = papClient(b, 'alice');
    const info = await within(c.up, 8000, 'the link to come up');
    assert.equal(formatIPv4(info.localAddress), '10.77.0.50');
    await waitFor(() => b.system.framedRoutes.size === 1, 3000, 'the framed route');
    assert.deepEqual([...b.system.framedRoutes], ['192.0.2.0/24']);
    assert.equal(b.server.status().system?.framedRoutes, 1);
    const warnings = b.log.lines.filter((l) => l.level === 'warn').map((l) => l.line);
    for (const expected of [
      /RADIUS Framed-Route 10\.77\.0\.0\/24 refused: it contains our tunnel address 10\.77\.0\.1 \(localip\)/,
      /RADIUS Framed-Route 10\.77\.0\.8\/29 refused: it contains the pool address 10\.77\.0\.10 \(remoteip\)/,
      /RADIUS Framed-Route "198\.51\.100\.0\/24 10\.9\.9\.9 1" names gateway 10\.9\.9\.9, not the client's 10\.77\.0\.50 \(or 0\.0\.0\.0\)/,
      /RADIUS Framed-Route "300\.1\.2\.0\/24\\n" does not start with an IPv4 destination/,
      /RADIUS Framed-Route 192\.0\.2\.128\/25 refused: it overlaps 192\.0\.2\.0\/24, routed to this session/,
    ]) {
      assert.ok(
        warnings.some((w) => expected.test(w)),
        `${expected}\n${warnings.join('\n')}`,
      );
    }
    assert.ok(!b.log.text().includes('\n"'), 'no raw line feed from the network in the log');

    // Towards the client: a host behind it, by longest prefix.
    const down = udpPacket(ip('203.0.113.9'), ip('192.0.2.77'), enc('to the subnet'));
    b.tun.inject(down);
    await waitFor(() => c.tun.written.length === 1, 3000, 'the packet behind the client');
    assert.deepEqual(c.tun.written[0], down);
    // From the subnet behind the client: accepted as a source; a stranger's address is not.
    c.tun.inject(udpPacket(ip('192.0.2.5'), ip('203.0.113.9'), enc('from the subnet')));
    c.tun.inject(udpPacket(ip('198.51.100.1'), ip('203.0.113.9'), enc('spoofed')));
    await waitFor(() => b.log.has(/dropped packet from 198\.51\.100\.1/), 3000, 'the spoofed packet drop');
    assert.equal(b.tun.written.length, 1);
    assert.equal(formatIPv4(ipv4FromBytes(b.tun.written[0]!, IPV4_SOURCE_OFFSET)), '192.0.2.5');
    // Outside every route: dropped and counted as before.
    b.tun.inject(udpPacket(ip('203.0.113.9'), ip('192.0.3.1'), enc('nobody')));
    assert.equal(b.server.status().drops['TUN packet for an address without a session'], 1);

    // bob asks for a part of alice's subnet: refused, and bob still comes up.
    const d = papClient(b, 'bob', '127.0.0.3');
    await within(d.up, 8000, "bob's link");
    await waitFor(
      () =>
        b.log.has(
          /Framed-Route 192\.0\.2\.0\/26 refused: it overlaps 192\.0\.2\.0\/24, routed to session s1/,
        ),
      3000,
      'the refusal',
    );
    assert.equal(b.system.framedRoutes.size, 1);

    // alice leaves: her route is gone from the host and from the dispatch; bob may have his now.
    await within(c.client.close(), 5000, 'alice to disconnect');
    await waitFor(() => b.system.framedRoutes.size === 0, 3000, 'the framed route removed');
    b.tun.inject(down);
    assert.equal(b.server.status().drops['TUN packet for an address without a session'], 2);
    const e = papClient(b, 'bob', '127.0.0.4');
    await within(e.up, 8000, "bob's second link");
    await waitFor(() => b.system.framedRoutes.has('192.0.2.0/26'), 3000, "bob's route");
  } finally {
    await b.close();
  }
});

test('Mikrotik-Rate-Limit in the Access-Accept limits the session (rx is the upload); a malformed one is a warning', async () => {
  const b = await bench({
    alice: [mikrotik('2M/1M 4M/2M 1M/500k 8/8 5')],
    bob: [mikrotik('fast\u001b[2J')],
  });
  try {
    const c = papClient(b, 'alice');
    await within(c.up, 8000, 'the link to come up');
    assert.ok(
      b.log.has(
        'rate limit: 1 Mbit/s down, 2 Mbit/s up (RADIUS Mikrotik-Rate-Limit "2M/1M 4M/2M 1M/500k 8/8 5")',
      ),
      b.log.text(),
    );
    const d = papClient(b, 'bob', '127.0.0.3');
    await within(d.up, 8000, "bob's link");
    const warn = b.log.lines.find((l) => l.level === 'warn' && l.line.includes('Mikrotik-Rate-Limit'));
    assert.match(
      warn?.line ?? '',
      /RADIUS: Mikrotik-Rate-Limit "fast\\x1b\[2J" is not "rx\[\/tx\] \.\.\." .*; no rate limit from RADIUS/,
    );
  } finally {
    await b.close();
  }
});

test('plugin radattr.so: the file is written before ip-up, named in RADATTR, removed after ip-down', async () => {
  const b = await bench(
    {
      alice: [
        u32Attr(Attr.FramedIpAddress, ip('10.77.0.50')),
        u32Attr(Attr.SessionTimeout, 3600),
        u32Attr(Attr.ServiceType, 2),
        textAttr(Attr.Class, 'gold\ttier'),
        mikrotik('10M/5M'),
      ],
    },
    true,
  );
  try {
    const c = papClient(b, 'alice');
    await within(c.up, 8000, 'the link to come up');
    await waitFor(() => b.system.hooks.length === 1, 3000, 'ip-up');
    const path = '/var/run/radattr.mtun-server.s1';
    assert.equal(b.system.hooks[0]!.ctx.radattr, path);
    assert.equal(
      b.system.radattrFiles.get(path),
      [
        'Framed-IP-Address 10.77.0.50',
        'Session-Timeout 3600',
        'Service-Type Framed-User',
        'Class gold\\011tier',
        'Mikrotik-Rate-Limit 10M/5M',
        '',
      ].join('\n'),
    );
    await within(c.client.close(), 5000, 'the client to disconnect');
    await waitFor(() => b.system.radattrFiles.size === 0, 3000, 'the file removed');
    assert.equal(b.system.hooks[1]?.kind, 'ip-down');
    assert.equal(b.system.hooks[1]?.ctx.radattr, path);
  } finally {
    await b.close();
  }
});

test('without plugin radattr.so no file is written and RADATTR is not set', async () => {
  const b = await bench({ alice: [] });
  try {
    const c = papClient(b, 'alice');
    await within(c.up, 8000, 'the link to come up');
    await waitFor(() => b.system.hooks.length === 1, 3000, 'ip-up');
    assert.equal(b.system.hooks[0]!.ctx.radattr, undefined);
    assert.equal(b.system.radattrFiles.size, 0);
  } finally {
    await b.close();
  }
});
