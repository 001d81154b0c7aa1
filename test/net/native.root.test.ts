// Real kernel I/O through the addon, inside network namespaces this suite creates and removes.
// Needs root; required in CI (scripts/test.mjs). Each scenario runs in child processes started
// with `ip netns exec` (test/net/fixtures/net-child.ts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { sh, TestNamespaces } from './fixtures/netns.ts';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (network namespaces, raw sockets, TUN)';
const nets = new TestNamespaces();

before(async () => {
  if (!isRoot && process.env.POPTOP_REQUIRE_ROOT_TESTS === '1')
    throw new Error('root suites are required here');
});
after(() => nets.cleanup());

test('RawGreSocket: batches of GRE packets between two namespaces and back, with addresses and bytes', {
  skip,
}, async () => {
  const nsA = await nets.add();
  const nsB = await nets.add();
  await nets.link(nsA, nsB, '198.18.0');
  const rounds = 8;
  const echo = nets.start(nsB, ['gre-echo', '198.18.0.2', String(rounds * 64)]);
  assert.deepEqual(await echo.line(), { ready: true });
  const sender = nets.start(nsA, ['gre-send', '198.18.0.1', '198.18.0.2', String(rounds)]);
  const result = await sender.line(30_000);
  assert.deepEqual(result.errors, []);
  assert.equal(result.received, rounds * 64);
  assert.deepEqual(result.drops, {});
  assert.deepEqual(await echo.line(), { echoed: rounds * 64, drops: 0 });
  assert.equal(await sender.exit(), 0, 'close() lets the process exit');
  assert.equal(await echo.exit(), 0);
});

test('RawGreSocket: a call-id range filter lets each socket receive only its calls', { skip }, async () => {
  const ns = await nets.add();
  const run = nets.start(ns, ['gre-filter']);
  assert.deepEqual(await run.line(15_000), { low: [1, 2, 32_767], high: [32_768, 40_000, 65_535] });
  assert.equal(await run.exit(), 0);
});

test('TunInterface: ICMP echo requests written into a TUN come back as the kernel replies', {
  skip,
}, async () => {
  const ns = await nets.add();
  const run = nets.start(ns, ['tun-ping']);
  const result = await run.line(15_000);
  assert.match(String(result.name), /^pttest\d+$/);
  assert.deepEqual(
    result.replies,
    Array.from({ length: 20 }, (_, i) => i),
  );
  assert.equal(await run.exit(), 0);
});

test('TunInterface.setPaused: nothing is read while paused (also when paused mid-batch); what the kernel kept arrives on resuming', {
  skip,
}, async () => {
  const ns = await nets.add();
  const run = nets.start(ns, ['tun-pause']);
  const result = await run.line(15_000);
  assert.equal(result.whilePaused, 0, 'paused before reading started');
  assert.equal(result.pausedInside, 5, 'paused from inside the callback: no further read in that event');
  assert.deepEqual(
    result.afterResume,
    Array.from({ length: 20 }, (_, i) => i),
    'the replies the kernel queued, in order',
  );
  assert.equal(result.whilePausedAgain, 0, 'paused while reading');
  assert.equal(result.last, 100);
  assert.deepEqual(result.drops, {});
  assert.equal(await run.exit(), 0);
});

test('KernelTunDropList: the kernel drops what is routed to a listed address before we read it, counts it, and lets the rest through', {
  skip,
}, async () => {
  const ns = await nets.add();
  const run = nets.start(ns, ['tun-drop-list']);
  const r = await run.line(15_000);
  const seqs = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
  assert.equal(r.added, true);
  assert.deepEqual(r.whileListed, { listed: [], other: seqs(0, 10) }, 'only the listed address is dropped');
  assert.equal(r.dropped, 10, 'each reply the kernel dropped was counted');
  assert.equal(r.removedAgain, 0);
  assert.equal(r.addedAgain, true);
  assert.deepEqual(
    r.after,
    { listed: seqs(10, 14), other: seqs(0, 14) },
    'taken out, and closed while listed',
  );
  assert.equal(r.addAfterClose, false);
  assert.equal((r.warnings as string[]).length, 1, String(r.warnings));
  assert.match(String(r.warnings), /could not take 198\.18\.11\.2 out of the TUN drop filter: No such file/);
  assert.deepEqual(r.drops, {});
  assert.equal(await run.exit(), 0);
});

test('SharedTun: one multi-queue TUN device, a queue per reader process; packets go to the queue of the longest prefix steered; a forgotten queue leaves the map and the drop list', {
  skip,
}, async () => {
  const ns = await nets.add();
  const run = nets.start(ns, ['tun-queues']);
  const r = await run.line(20_000);
  assert.match(String(r.name), /^ptq\d+$/);
  assert.deepEqual(r.steered, [0, 0, 0]);
  assert.deepEqual(r.lookups, [1, 1, null, 0], 'the queue of the longest prefix, as the program finds it');
  assert.deepEqual(r.onlyNew, [0, 0, 'EEXIST', 0, 0]);
  assert.equal(r.second, 'EBUSY', 'a second server cannot take the device over');
  assert.deepEqual(
    r.before,
    [
      ['198.18.12.3:1', '198.18.13.9:1'],
      ['198.18.12.2:1', '198.18.13.5:1'],
    ],
    'queue 0: the unsteered address and the /32 inside the subnet; queue 1: its address and its subnet',
  );
  assert.equal(r.listed, 0);
  assert.deepEqual((r.forgotten as string[]).slice().sort(), ['198.18.12.2/32', '198.18.13.0/24']);
  assert.deepEqual(r.left, ['198.18.13.9/32>0']);
  assert.equal(r.dropLookup, 'ENOENT', 'taken off the drop list with its queue');
  assert.deepEqual(r.after, [['198.18.12.2:2', '198.18.13.5:2'], []], 'queue 1 forgotten: all to queue 0');
  assert.equal(await run.exit(), 0);
});

test('eBPF through the addon: a refused program says why in the words of the verifier; a key of the wrong size is refused before the kernel reads it', {
  skip,
}, async () => {
  const ns = await nets.add();
  const run = nets.start(ns, ['ebpf-errors']);
  const r = await run.line();
  assert.match(String(r.refused), /^bpf BPF_PROG_LOAD \(verifier: R0 !read_ok\): Permission denied$/);
  assert.equal(r.shortKey, "RangeError: poptop addon: the key and value must be of the map's sizes");
  assert.equal(r.missing, 'ENOENT');
  assert.equal(r.closed, 0);
  assert.equal(r.probe, null, "poptop doctor's probe: root may set the list up");
  assert.equal(r.steering, null, 'and the steering of workers');
  assert.equal(await run.exit(), 0);
});

test("KernelTunDropList and the workers' steering without CAP_BPF / CAP_SYS_ADMIN: an error that says what is missing", {
  skip,
}, async () => {
  const ns = await nets.add();
  const caps = '-bpf,-sys_admin';
  const run = nets.start(
    ns,
    ['tun-drop-list-denied'],
    ['setpriv', `--inh-caps=${caps}`, `--bounding-set=${caps}`, '--'],
  );
  const r = await run.line();
  // A host may let unprivileged processes use eBPF (kernel.unprivileged_bpf_disabled = 0).
  if (readFileSync('/proc/sys/kernel/unprivileged_bpf_disabled', 'utf8').trim() === '0') {
    assert.equal(r.attached, true);
    assert.equal(r.probe, null);
  } else {
    assert.equal(r.code, 'EPERM');
    assert.equal(r.syscall, 'bpf BPF_MAP_CREATE');
    assert.match(
      String(r.message),
      /^eBPF needs root or CAP_BPF \(CAP_SYS_ADMIN before Linux 5\.8; .*\) \(bpf BPF_MAP_CREATE: Operation not permitted\)$/,
    );
    assert.equal(r.probe, r.message, "poptop doctor's probe says the same");
  }
  // The workers' steering (an LPM trie) needs CAP_BPF even where unprivileged eBPF is allowed.
  assert.match(
    String(r.steering),
    /^eBPF needs root or CAP_BPF .*\(bpf BPF_MAP_CREATE: Operation not permitted\)$/,
  );
  assert.equal(await run.exit(), 0);
});

test('unref: open and receiving ports do not keep the process alive', { skip }, async () => {
  const ns = await nets.add();
  const run = nets.start(ns, ['unref']);
  assert.deepEqual(await run.line(), { unref: true });
  assert.equal(await run.exit(5_000), 0);
});

test('without CAP_NET_RAW / CAP_NET_ADMIN the errors say which capability is missing', { skip }, async () => {
  const ns = await nets.add();
  const caps = '-net_raw,-net_admin';
  const run = nets.start(
    ns,
    ['open-both'],
    ['setpriv', `--inh-caps=${caps}`, `--bounding-set=${caps}`, '--'],
  );
  const r = (await run.line()) as Record<string, Record<string, unknown>>;
  assert.equal(r.gre?.code, 'EPERM');
  assert.equal(r.gre?.errno, -1);
  assert.equal(r.gre?.syscall, 'socket');
  assert.match(
    String(r.gre?.message),
    /^raw GRE socket needs root or CAP_NET_RAW \(socket: Operation not permitted\)$/,
  );
  assert.equal(r.tun?.code, 'EPERM');
  assert.equal(r.tun?.syscall, 'ioctl TUNSETIFF');
  assert.match(String(r.tun?.message), /^TUN device needs root or CAP_NET_ADMIN and \/dev\/net\/tun \(/);
  assert.equal(await run.exit(), 0);
});

test('netlink: host routes with an MTU, replace, delete (gone: false), subnet routes, proxy ARP, addresses, errors in words', {
  skip,
}, async () => {
  const ns = await nets.add();
  const ipn = (...a: string[]) => sh('ip', ['-n', ns, ...a]);
  await ipn('link', 'add', 'ptnl0', 'type', 'veth', 'peer', 'name', 'ptnl1');
  await ipn('addr', 'add', '198.18.7.1/24', 'dev', 'ptnl0');
  await ipn('addr', 'add', '198.18.8.1', 'peer', '198.18.8.2', 'dev', 'ptnl1');
  await ipn('link', 'set', 'ptnl0', 'up');
  await ipn('link', 'set', 'ptnl1', 'up');
  const run = nets.start(ns, ['netlink', 'ptnl1', 'ptnl0']);
  const r = await run.line(15_000);
  assert.match(String(r.added), /^10\.9\.0\.5 scope link mtu 1300 *$/m, 'replaced, not doubled');
  assert.equal(String(r.added).match(/^10\.9\.0\.5 /gm)?.length, 1);
  assert.match(String(r.added), /^10\.9\.0\.6 scope link *$/m);
  assert.equal(r.deleted, true);
  assert.equal(r.deletedAgain, false);
  assert.doesNotMatch(String(r.afterDelete), /10\.9\.0\.5/);
  assert.match(String(r.afterDelete), /10\.9\.0\.6/);
  assert.match(String(r.prefix), /^10\.9\.64\.0\/18 scope link metric 7 mtu 1300 *$/m);
  assert.equal(r.prefixAgain, 'EEXIST: route to 10.9.64.0/18 via ptnl1: File exists');
  assert.equal(r.prefixDeleted, true);
  assert.equal(r.prefixDeletedAgain, false);
  assert.match(String(r.proxy), /^198\.18\.7\.50 proxy$/);
  assert.equal(r.proxyDeleted, true);
  assert.equal(r.proxyDeletedAgain, false);
  assert.equal(r.proxyAfter, '');
  assert.equal(r.lan, 'ptnl0');
  assert.equal(r.peer, null, 'a point-to-point peer is no LAN');
  assert.equal(r.noDevice, 'ENODEV: route to 10.9.0.7 via ptnone0: No such device');
  // Node itself opens and closes a few (its thread pool, io_uring on newer versions): a descriptor
  // per change would add 200.
  assert.ok(
    (r.fdsAfter as number) <= (r.fdsBefore as number) + 8,
    `no descriptor per change: ${r.fdsBefore} before, ${r.fdsAfter} after 200 adds and deletes`,
  );
  assert.doesNotMatch(String(r.left), /10\.9\.1\./);
  assert.equal(await run.exit(), 0);
});
