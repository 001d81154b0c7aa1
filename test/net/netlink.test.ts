// NetlinkRoutes over a fake addon: what it asks the kernel, and the words of its errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type NetlinkCalls, type NetlinkError, NetlinkRoutes } from '../../src/net/netlink.ts';
import { parseIPv4 } from '../../src/wire/ip.ts';

const ip = (s: string) => parseIPv4(s)!;
const TEXT: Record<number, string> = {
  2: 'No such file or directory',
  3: 'No such process',
  19: 'No such device',
  17: 'File exists',
  1: 'Operation not permitted',
};

function fake(
  answers: Partial<Record<'routeAdd' | 'routeDel' | 'proxyArpAdd' | 'proxyArpDel', number[]>> = {},
) {
  const calls: string[] = [];
  let nextIndex = 7;
  const answer = (name: keyof typeof answers, call: string): number => {
    calls.push(call);
    return answers[name]?.shift() ?? 0;
  };
  const addon: NetlinkCalls = {
    ifIndex: (name) => {
      calls.push(`ifIndex ${name}`);
      if (name === 'missing0')
        throw Object.assign(new Error('ioctl SIOCGIFINDEX: No such device'), { errno: -19 });
      return nextIndex++;
    },
    routeAdd: (dst, index, mtu, len, metric, excl) =>
      answer('routeAdd', `routeAdd ${dst} ${index} ${mtu} /${len} metric ${metric} excl ${excl}`),
    routeDel: (dst, index, len, metric) =>
      answer('routeDel', `routeDel ${dst} ${index} /${len} metric ${metric}`),
    proxyArpAdd: (a, index) => answer('proxyArpAdd', `proxyArpAdd ${a} ${index}`),
    proxyArpDel: (a, index) => answer('proxyArpDel', `proxyArpDel ${a} ${index}`),
    addresses: () => [
      { index: 1, name: 'lo', local: ip('127.0.0.1'), address: ip('127.0.0.1'), prefixLength: 8 },
      { index: 2, name: 'eth0', local: ip('192.0.2.2'), address: ip('192.0.2.2'), prefixLength: 24 },
      { index: 3, name: 'ptp0', local: ip('10.5.0.1'), address: ip('10.5.0.2'), prefixLength: 30 },
    ],
    netlinkFd: () => 9,
    strerror: (n) => TEXT[n] ?? `errno ${n}`,
  };
  return { addon, calls };
}

test('routes and proxy ARP: one request each, the interface index looked up once per name', async () => {
  const { addon, calls } = fake();
  const nl = new NetlinkRoutes({ addon });
  nl.open();
  await nl.addRoute('poptop0', ip('10.0.0.5'));
  await nl.addRoute('poptop0', ip('10.0.0.6'), 32, 1396);
  assert.equal(await nl.delRoute('poptop0', ip('10.0.0.5')), true);
  await nl.addRoute('poptop0', ip('10.1.0.0'), 16, 1396, { metric: 5, exclusive: true });
  assert.equal(await nl.delRoute('poptop0', ip('10.1.0.0'), 16, 5), true);
  await nl.addProxyArp(ip('192.0.2.50'), 'eth0');
  assert.equal(await nl.delProxyArp(ip('192.0.2.50'), 'eth0'), true);
  assert.deepEqual(calls, [
    'ifIndex poptop0',
    `routeAdd ${ip('10.0.0.5')} 7 0 /32 metric 0 excl 0`,
    `routeAdd ${ip('10.0.0.6')} 7 1396 /32 metric 0 excl 0`,
    `routeDel ${ip('10.0.0.5')} 7 /32 metric 0`,
    `routeAdd ${ip('10.1.0.0')} 7 1396 /16 metric 5 excl 1`,
    `routeDel ${ip('10.1.0.0')} 7 /16 metric 5`,
    'ifIndex eth0',
    `proxyArpAdd ${ip('192.0.2.50')} 8`,
    `proxyArpDel ${ip('192.0.2.50')} 8`,
  ]);
});

test('deleting what is already gone is not an error (ESRCH for routes, ENOENT for proxy ARP)', async () => {
  const { addon } = fake({ routeDel: [3], proxyArpDel: [2] });
  const nl = new NetlinkRoutes({ addon });
  assert.equal(await nl.delRoute('poptop0', ip('10.0.0.5')), false);
  assert.equal(await nl.delProxyArp(ip('192.0.2.50'), 'eth0'), false);
});

test('errors name the change, the interface and the reason in words, with the errno name', async () => {
  const { addon } = fake({ routeAdd: [17, 17], routeDel: [1], proxyArpDel: [3] });
  const nl = new NetlinkRoutes({ addon });
  await assert.rejects(nl.addRoute('poptop0', ip('10.0.0.5')), (e: NetlinkError) => {
    assert.equal(e.message, 'route to 10.0.0.5 via poptop0: File exists');
    assert.equal(e.code, 'EEXIST');
    return true;
  });
  await assert.rejects(nl.delRoute('poptop0', ip('10.0.0.5')), {
    message: 'deleting the route to 10.0.0.5 via poptop0: Operation not permitted',
  });
  await assert.rejects(nl.delProxyArp(ip('192.0.2.50'), 'eth0'), {
    message: 'deleting proxy ARP for 192.0.2.50 on eth0: No such process',
  });
  await assert.rejects(nl.addRoute('missing0', ip('10.0.0.5')), {
    message: 'route to 10.0.0.5 via missing0: No such device',
    code: 'ENODEV',
  });
  await assert.rejects(nl.addRoute('poptop0', ip('10.0.0.0'), 24, undefined, { exclusive: true }), {
    message: 'route to 10.0.0.0/24 via poptop0: File exists',
  });
});

test('ENODEV: the index is looked up again once (a device recreated under its name), then reported', async () => {
  const { addon, calls } = fake({ routeAdd: [0, 19, 0, 19, 19] });
  const nl = new NetlinkRoutes({ addon });
  await nl.addRoute('poptop0', ip('10.0.0.5'));
  await nl.addRoute('poptop0', ip('10.0.0.6'));
  assert.deepEqual(
    calls.filter((c) => c.startsWith('ifIndex')),
    ['ifIndex poptop0', 'ifIndex poptop0'],
  );
  await assert.rejects(nl.addRoute('poptop0', ip('10.0.0.7')), {
    message: 'route to 10.0.0.7 via poptop0: No such device',
  });
});

test('interfaceContaining: from the kernel address list; point-to-point and loopback never match', async () => {
  const { addon } = fake();
  const nl = new NetlinkRoutes({ addon });
  assert.equal((await nl.interfaceContaining(ip('192.0.2.77')))?.ifname, 'eth0');
  assert.equal(await nl.interfaceContaining(ip('10.5.0.2')), undefined);
  assert.equal(await nl.interfaceContaining(ip('127.0.0.5')), undefined);
});

test('open(): a netlink socket that cannot be opened is an error in words', () => {
  const { addon } = fake();
  const nl = new NetlinkRoutes({ addon: { ...addon, netlinkFd: () => -1 } });
  assert.throws(() => nl.open(), {
    message: 'cannot open a netlink socket: Operation not permitted (needs root or CAP_NET_ADMIN)',
  });
});
