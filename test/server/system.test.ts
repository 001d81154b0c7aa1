// KernelSystem over fake HostRoutes: what it logs, at which level, and what it counts.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { HostRoutes, InterfaceAddress } from '../../src/net/iproute.ts';
import { KernelSystem } from '../../src/server/system.ts';
import { MemoryLogger } from '../../src/util/log.ts';
import { type IPv4, parseIPv4 } from '../../src/wire/ip.ts';

const ip = (s: string) => parseIPv4(s)!;

class FakeRoutes implements HostRoutes {
  readonly routes = new Set<IPv4>();
  readonly calls: string[] = [];
  failDelete: Error | undefined;
  async addRoute(
    _dev: string,
    dest: IPv4,
    len = 32,
    mtu?: number,
    opts: { metric?: number; exclusive?: boolean } = {},
  ): Promise<void> {
    this.calls.push(`add ${dest}/${len} mtu ${mtu} metric ${opts.metric ?? 0} excl ${!!opts.exclusive}`);
    if (opts.exclusive && this.routes.has(dest)) {
      throw Object.assign(new Error(`route to ${dest}/${len} via poptop0: File exists`), { code: 'EEXIST' });
    }
    this.routes.add(dest);
  }
  async delRoute(_dev: string, dest: IPv4, len = 32, metric?: number): Promise<boolean> {
    this.calls.push(`del ${dest}/${len} metric ${metric ?? 0}`);
    if (this.failDelete) throw this.failDelete;
    return this.routes.delete(dest);
  }
  async addProxyArp(): Promise<void> {}
  async delProxyArp(): Promise<boolean> {
    return false;
  }
  async interfaceContaining(): Promise<InterfaceAddress | undefined> {
    return { ifname: 'eth0', address: ip('192.0.2.1'), prefixLength: 24 };
  }
}

function system(routes: HostRoutes): KernelSystem {
  return new KernelSystem({ routes, tunName: 'poptop0', ipUpScript: '', ipDownScript: '' });
}

test('a route delete that fails is a warning naming the route (it stays in the kernel), and is counted', async () => {
  const routes = new FakeRoutes();
  const sys = system(routes);
  const log = new MemoryLogger({ debug: true });
  await sys.addClientRoute(ip('10.0.0.5'), log);
  assert.deepEqual(sys.counters(), { hostRoutes: 1, framedRoutes: 0, proxyArp: 0, failures: 0 });
  routes.failDelete = new Error('deleting the route to 10.0.0.5 via poptop0: No buffer space available');
  await sys.delClientRoute(ip('10.0.0.5'), log);
  const line = log.lines.find((l) => l.line.includes('10.0.0.5') && l.line.includes('No buffer space'));
  assert.equal(line?.level, 'warn', log.text());
  assert.match(line!.line, /cannot remove the route to 10\.0\.0\.5 via poptop0, it stays in the kernel/);
  assert.deepEqual(sys.counters(), { hostRoutes: 1, framedRoutes: 0, proxyArp: 0, failures: 1 });
});

test('a route already gone on delete is quiet (debug) and not a failure', async () => {
  const routes = new FakeRoutes();
  const sys = system(routes);
  const log = new MemoryLogger({ debug: true });
  await sys.addClientRoute(ip('10.0.0.6'), log);
  routes.routes.clear(); // the kernel removed it (its device went away)
  await sys.delClientRoute(ip('10.0.0.6'), log);
  assert.ok(
    log.lines.every((l) => l.level === 'debug' || l.level === 'info'),
    log.text(),
  );
  assert.ok(log.has('route to 10.0.0.6 via poptop0 was already gone'));
  assert.deepEqual(sys.counters(), { hostRoutes: 0, framedRoutes: 0, proxyArp: 0, failures: 0 });
});

test('proxy ARP published and removed is counted; removal of one already gone is quiet', async () => {
  const sys = system(new FakeRoutes());
  const log = new MemoryLogger({ debug: true });
  assert.equal(await sys.addProxyArp(ip('192.0.2.50'), log), 'eth0');
  assert.equal(sys.counters().proxyArp, 1);
  await sys.delProxyArp(ip('192.0.2.50'), 'eth0', log);
  assert.equal(sys.counters().proxyArp, 0);
  assert.ok(!log.lines.some((l) => l.level === 'warn'), log.text());
});

test('hooks run at most hookConcurrency at once, in order, and their descriptors are reported', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'poptop-hooks-'));
  try {
    const marks = join(dir, 'marks');
    const script = join(dir, 'ip-up');
    // Each run notes its start, waits for a file the test creates, notes its end.
    writeFileSync(
      script,
      `#!/bin/sh\necho "start $5" >> ${marks}\nwhile [ ! -e ${dir}/go ]; do sleep 0.02; done\necho "end $5" >> ${marks}\n`,
    );
    chmodSync(script, 0o755);
    let fds = 0;
    let maxFds = 0;
    const sys = new KernelSystem({
      routes: new FakeRoutes(),
      tunName: 'poptop0',
      ipUpScript: script,
      ipDownScript: '',
      hookConcurrency: 2,
      fds: {
        opened: (n) => {
          fds += n;
          maxFds = Math.max(maxFds, fds);
          return () => {
            fds -= n;
          };
        },
      },
    });
    const log = new MemoryLogger();
    const ctx = (i: number) => ({
      ifname: 'poptop0',
      localIp: '10.0.0.1',
      remoteIp: `10.0.0.${10 + i}`,
      peerName: 'u',
      ipparam: '',
      speed: 115200,
      sessionId: `s${i}`,
    });
    const runs = Array.from({ length: 5 }, (_, i) => sys.runHook('ip-up', ctx(i), log));
    await waitUntil(() => existsSync(marks) && readFileSync(marks, 'utf8').split('\n').length > 2);
    await new Promise((r) => setTimeout(r, 200));
    // The first two in the queue, and only they, while they block (two processes: either may write first).
    assert.deepEqual(readFileSync(marks, 'utf8').trim().split('\n').sort(), [
      'start 10.0.0.10',
      'start 10.0.0.11',
    ]);
    writeFileSync(join(dir, 'go'), '');
    await Promise.all(runs);
    const lines = readFileSync(marks, 'utf8').trim().split('\n');
    assert.equal(lines.filter((l) => l.startsWith('start')).length, 5);
    assert.deepEqual(
      lines
        .filter((l) => l.startsWith('start'))
        .slice(2)
        .sort(),
      ['start 10.0.0.12', 'start 10.0.0.13', 'start 10.0.0.14'],
    );
    assert.equal(maxFds, 6, 'two hooks at a time, three descriptors each');
    assert.equal(fds, 0);
    assert.ok(!log.lines.some((l) => l.level === 'warn'), log.text());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function waitUntil(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), 'condition not reached within 5 s');
}

test('framed routes: added exclusively with the metric and MTU, counted; an existing kernel route is not replaced, in words', async () => {
  const routes = new FakeRoutes();
  const sys = system(routes);
  const log = new MemoryLogger({ debug: true });
  const route = { network: ip('10.1.0.0'), prefixLength: 16, gateway: 0, metric: 5 };
  assert.equal(await sys.addFramedRoute(route, log, 1300), true);
  assert.deepEqual(sys.counters(), { hostRoutes: 0, framedRoutes: 1, proxyArp: 0, failures: 0 });
  assert.ok(log.has('added the route to 10.1.0.0/16 metric 5 via poptop0 (RADIUS Framed-Route)'), log.text());
  routes.routes.add(ip('10.2.0.0')); // the administrator's own route
  const theirs = { network: ip('10.2.0.0'), prefixLength: 16, gateway: 0, metric: 0 };
  assert.equal(await sys.addFramedRoute(theirs, log), false);
  const warn = log.lines.find((l) => l.level === 'warn');
  assert.equal(
    warn?.line,
    'cannot add the route to 10.2.0.0/16 via poptop0 (RADIUS Framed-Route): the kernel has a route to 10.2.0.0/16 already, which poptop does not replace',
  );
  await sys.delFramedRoute(route, log);
  assert.deepEqual(sys.counters(), { hostRoutes: 0, framedRoutes: 0, proxyArp: 0, failures: 1 });
  assert.deepEqual(routes.calls, [
    `add ${ip('10.1.0.0')}/16 mtu 1300 metric 5 excl true`,
    `add ${ip('10.2.0.0')}/16 mtu undefined metric 0 excl true`,
    `del ${ip('10.1.0.0')}/16 metric 5`,
  ]);
  assert.ok(routes.routes.has(ip('10.2.0.0')), 'theirs stays');
});

test('radattr file: written 0600 in one piece (a file of an earlier run replaced), removed; removal twice is quiet', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'poptop-radattr-'));
  try {
    const sys = system(new FakeRoutes());
    const log = new MemoryLogger({ debug: true });
    const path = join(dir, 'radattr.poptop0.s1');
    writeFileSync(path, 'stale\n', { mode: 0o644 });
    assert.equal(await sys.writeRadattr(path, 'Framed-IP-Address 10.0.0.5\n', log), true);
    assert.equal(readFileSync(path, 'utf8'), 'Framed-IP-Address 10.0.0.5\n');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    await sys.removeRadattr(path, log);
    await sys.removeRadattr(path, log);
    assert.equal(existsSync(path), false);
    assert.ok(
      log.lines.every((l) => l.level !== 'warn'),
      log.text(),
    );
    assert.equal(await sys.writeRadattr(join(dir, 'missing', 'x'), 'y', log), false);
    assert.match(log.text(), /radattr: cannot write .*missing\/x: ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
