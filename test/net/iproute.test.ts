import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { findSubnetContaining, IpRoute, parseIpAddrJson } from '../../src/net/iproute.ts';
import { errnoName } from '../../src/net/native.ts';
import { formatIPv4, parseIPv4 } from '../../src/wire/ip.ts';

const ip = (s: string) => parseIPv4(s)!;

function recorder(netns?: string): { route: IpRoute; calls: string[] } {
  const calls: string[] = [];
  const route = new IpRoute({
    ...(netns ? { netns } : {}),
    exec: async (args) => {
      calls.push(args.join(' '));
      return '';
    },
  });
  return { route, calls };
}

test('IpRoute builds the ip command lines (argv, no shell), in a namespace when asked', async () => {
  const { route, calls } = recorder('ns1');
  await route.setLinkUp('poptop0');
  await route.setMtu('poptop0', 1400);
  await route.addPeerAddress('poptop0', ip('10.9.0.1'), ip('10.9.0.2'));
  await route.addRoute('poptop0', ip('10.9.0.3'));
  await route.addRoute('poptop0', ip('10.9.0.4'), 32, 1396);
  await route.delRoute('poptop0', ip('10.9.1.0'), 24);
  await route.addProxyArp(ip('192.0.2.50'), 'eth0');
  await route.delProxyArp(ip('192.0.2.50'), 'eth0');
  await route.addAddress('poptop0', ip('10.9.0.1'), 24);
  assert.deepEqual(calls, [
    '-n ns1 link set dev poptop0 up',
    '-n ns1 link set dev poptop0 mtu 1400',
    '-n ns1 addr add 10.9.0.1 peer 10.9.0.2 dev poptop0',
    '-n ns1 route add 10.9.0.3/32 dev poptop0',
    '-n ns1 route add 10.9.0.4/32 dev poptop0 mtu 1396',
    '-n ns1 route del 10.9.1.0/24 dev poptop0',
    '-n ns1 neigh add proxy 192.0.2.50 dev eth0',
    '-n ns1 neigh del proxy 192.0.2.50 dev eth0',
    '-n ns1 addr add 10.9.0.1/24 dev poptop0',
  ]);
});

const SAMPLE = JSON.stringify([
  { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
  {
    ifname: 'eth0',
    addr_info: [
      { family: 'inet', local: '192.0.2.2', prefixlen: 24, broadcast: '192.0.2.255' },
      { family: 'inet6', local: 'fd00::2', prefixlen: 64 },
    ],
  },
  { ifname: 'eth1', addr_info: [{ family: 'inet', local: '192.0.2.130', prefixlen: 25 }] },
  {
    ifname: 'poptop0',
    addr_info: [{ family: 'inet', local: '10.9.0.1', address: '10.9.0.2', prefixlen: 32 }],
  },
  { ifname: 'down0', addr_info: [] },
]);

test('parseIpAddrJson keeps IPv4 addresses, point-to-point ones as /32', () => {
  assert.deepEqual(
    parseIpAddrJson(SAMPLE).map((a) => `${a.ifname} ${formatIPv4(a.address)}/${a.prefixLength}`),
    ['lo 127.0.0.1/8', 'eth0 192.0.2.2/24', 'eth1 192.0.2.130/25', 'poptop0 10.9.0.1/32'],
  );
  assert.throws(() => parseIpAddrJson('{}'), /JSON array/);
});

test('findSubnetContaining picks the longest matching subnet, never loopback or /32', async () => {
  const addrs = parseIpAddrJson(SAMPLE);
  assert.equal(findSubnetContaining(addrs, ip('192.0.2.50'))?.ifname, 'eth0');
  assert.equal(findSubnetContaining(addrs, ip('192.0.2.200'))?.ifname, 'eth1');
  assert.equal(findSubnetContaining(addrs, ip('127.0.0.5')), undefined);
  assert.equal(findSubnetContaining(addrs, ip('10.9.0.2')), undefined);
  assert.equal(findSubnetContaining(addrs, ip('198.51.100.1')), undefined);
  const route = new IpRoute({ exec: async (args) => (args.join(' ') === '-j addr' ? SAMPLE : '') });
  assert.equal((await route.interfaceContaining(ip('192.0.2.9')))?.ifname, 'eth0');
});

test('ip failures become errors naming the command and quoting ip', async () => {
  const route = new IpRoute({ netns: 'poptop-no-such-ns-xyz' });
  await assert.rejects(route.setLinkUp('nothing0'), (e: Error) => {
    assert.match(e.message, /^ip -n poptop-no-such-ns-xyz link set dev nothing0 up: /);
    return true;
  });
});

test('ip_forward is read and enabled through the sysctl file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'poptop-fwd-'));
  try {
    const path = join(dir, 'ip_forward');
    await writeFile(path, '0\n');
    const route = new IpRoute({ ipForwardPath: path });
    assert.equal(await route.readIpForward(), false);
    await route.enableIpForward();
    assert.equal(await route.readIpForward(), true);
    assert.equal(await readFile(path, 'utf8'), '1\n');
    const bad = new IpRoute({ ipForwardPath: join(dir, 'missing', 'ip_forward') });
    await assert.rejects(bad.enableIpForward(), /cannot enable IPv4 forwarding.*ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('errnoName names errno numbers for log lines', () => {
  assert.equal(errnoName(11), 'EAGAIN');
  assert.equal(errnoName(1), 'EPERM');
  assert.equal(errnoName(99999), 'errno 99999');
});
