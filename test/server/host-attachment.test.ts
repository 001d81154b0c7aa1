import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FramedRoute } from '../../src/aaa/radius/framed-route.ts';
import type { HookContext } from '../../src/server/hooks.ts';
import { HostAttachment } from '../../src/server/host-attachment.ts';
import type { SystemOps } from '../../src/server/system.ts';
import { MemoryLogger, nullLogger } from '../../src/util/log.ts';
import { formatPrefix, type IPv4, parseIPv4 } from '../../src/wire/ip.ts';

const ip = (s: string): IPv4 => parseIPv4(s)!;
const ctx = (remoteIp: string): HookContext => ({
  ifname: 'poptop0',
  localIp: '10.0.0.1',
  remoteIp,
  peerName: 'alice',
  ipparam: '',
  speed: 115200,
  sessionId: 's1',
});

/** A host whose route additions finish only when the test says so. */
class SlowSystem implements SystemOps {
  readonly events: string[] = [];
  private pending: (() => void)[] = [];
  addClientRoute(a: IPv4): Promise<void> {
    this.events.push(`route+ ${a}`);
    return new Promise((resolve) => this.pending.push(resolve));
  }
  finishRoutes(): void {
    for (const r of this.pending.splice(0)) r();
  }
  async delClientRoute(a: IPv4): Promise<void> {
    this.events.push(`route- ${a}`);
  }
  async addFramedRoute(r: FramedRoute): Promise<boolean> {
    this.events.push(`framed+ ${formatPrefix(r.network, r.prefixLength)}`);
    return r.metric !== 99;
  }
  async delFramedRoute(r: FramedRoute): Promise<void> {
    this.events.push(`framed- ${formatPrefix(r.network, r.prefixLength)}`);
  }
  async writeRadattr(path: string): Promise<boolean> {
    this.events.push(`radattr+ ${path}`);
    return !path.includes('unwritable');
  }
  readonly upContexts: HookContext[] = [];
  async removeRadattr(path: string): Promise<void> {
    this.events.push(`radattr- ${path}`);
  }
  async addProxyArp(): Promise<string | undefined> {
    this.events.push('arp+');
    return 'eth0';
  }
  async delProxyArp(): Promise<void> {
    this.events.push('arp-');
  }
  /** ip-down finishes only when the test says so (when set). */
  slowDown: (() => void) | undefined;
  async runHook(kind: 'ip-up' | 'ip-down', c: HookContext): Promise<void> {
    this.events.push(`${kind} ${c.remoteIp}`);
    this.upContexts.push(c);
    if (kind === 'ip-down' && this.slowDown === undefined) return;
    if (kind === 'ip-down') await new Promise<void>((r) => (this.slowDown = r));
  }
  async wtmp(): Promise<void> {}
}

const tick = () => new Promise((r) => setImmediate(r));

test('packets from the client wait for the host route, then pass in order', async () => {
  const sys = new SlowSystem();
  const a = new HostAttachment(sys, nullLogger, { proxyArp: true });
  const out: number[] = [];
  a.attach(ip('10.0.0.10'), undefined, ctx('10.0.0.10'), (p) => out.push(p[0]!));
  a.pass(new Uint8Array([1]));
  a.pass(new Uint8Array([2]));
  await tick();
  assert.deepEqual(out, [], 'nothing reaches the host before the route exists');
  sys.finishRoutes();
  await tick();
  assert.deepEqual(out, [1, 2]);
  a.pass(new Uint8Array([3]));
  assert.deepEqual(out, [1, 2, 3]);
  assert.deepEqual(sys.events, [`route+ ${ip('10.0.0.10')}`, 'arp+', 'ip-up 10.0.0.10']);
});

test('a release during the route addition removes it afterwards; release twice is harmless', async () => {
  const sys = new SlowSystem();
  const a = new HostAttachment(sys, nullLogger, { proxyArp: false });
  a.attach(ip('10.0.0.10'), 1300, ctx('10.0.0.10'), () => {});
  a.release(ctx('10.0.0.10'));
  a.release(ctx('10.0.0.10'));
  await tick();
  sys.finishRoutes();
  await a.settled();
  assert.deepEqual(
    sys.events,
    [`route+ ${ip('10.0.0.10')}`, `route- ${ip('10.0.0.10')}`],
    'no ip-up, no ip-down',
  );
});

test('ip-down sees the address ip-up saw, and proxy ARP is withdrawn', async () => {
  const sys = new SlowSystem();
  const a = new HostAttachment(sys, nullLogger, { proxyArp: true });
  a.attach(ip('10.0.0.10'), undefined, ctx('10.0.0.10'), () => {});
  await tick();
  sys.finishRoutes();
  await a.settled();
  a.release(ctx('10.0.0.99'));
  await a.settled();
  assert.deepEqual(sys.events.slice(3), ['ip-down 10.0.0.10', `route- ${ip('10.0.0.10')}`, 'arp-']);
});

test('framed routes after the client route, the radattr file before ip-up; removed in reverse, the file after ip-down', async () => {
  const sys = new SlowSystem();
  const refused: string[] = [];
  const a = new HostAttachment(sys, nullLogger, { proxyArp: false });
  const routes: FramedRoute[] = [
    { network: ip('10.1.0.0'), prefixLength: 16, gateway: 0, metric: 0 },
    { network: ip('10.2.0.0'), prefixLength: 24, gateway: 0, metric: 99 }, // the host refuses it
  ];
  a.attach(ip('10.0.0.10'), undefined, ctx('10.0.0.10'), () => {}, {
    framedRoutes: routes,
    onFramedRouteRefused: (r) => refused.push(formatPrefix(r.network, r.prefixLength)),
    radattr: { path: '/run/radattr.poptop0.s1', text: 'Framed-IP-Address 10.0.0.10\n' },
  });
  await tick();
  sys.finishRoutes();
  await a.settled();
  assert.deepEqual(sys.events, [
    `route+ ${ip('10.0.0.10')}`,
    'framed+ 10.1.0.0/16',
    'framed+ 10.2.0.0/24',
    'radattr+ /run/radattr.poptop0.s1',
    'ip-up 10.0.0.10',
  ]);
  assert.deepEqual(refused, ['10.2.0.0/24']);
  sys.events.length = 0;
  sys.slowDown = () => {};
  a.release(ctx('10.0.0.10'));
  a.release(ctx('10.0.0.10'));
  await tick();
  assert.deepEqual(
    sys.events,
    ['ip-down 10.0.0.10', 'framed- 10.1.0.0/16', `route- ${ip('10.0.0.10')}`],
    'only the route the host took is removed; the file waits for ip-down',
  );
  sys.slowDown();
  await a.settled();
  assert.deepEqual(sys.events.slice(3), ['radattr- /run/radattr.poptop0.s1']);
});

test('a radattr file that cannot be written: ip-up and ip-down get no RADATTR, nothing to remove', async () => {
  const sys = new SlowSystem();
  const a = new HostAttachment(sys, nullLogger, { proxyArp: false });
  const path = '/unwritable/radattr.poptop0.s1';
  a.attach(ip('10.0.0.10'), undefined, { ...ctx('10.0.0.10'), radattr: path }, () => {}, {
    radattr: { path, text: 'x\n' },
  });
  await tick();
  sys.finishRoutes();
  await a.settled();
  a.release({ ...ctx('10.0.0.10'), radattr: path });
  await a.settled();
  assert.deepEqual(
    sys.upContexts.map((c) => [c.remoteIp, c.radattr]),
    [
      ['10.0.0.10', undefined],
      ['10.0.0.10', undefined],
    ],
  );
  assert.ok(!sys.events.some((e) => e.startsWith('radattr-')), sys.events.join(', '));
});

test('release() resolves once the routes and proxy ARP are gone, not waiting for ip-down; never rejects; nothing attached: undefined', async () => {
  const idle = new HostAttachment(new SlowSystem(), nullLogger, { proxyArp: false });
  assert.equal(idle.release(ctx('')), undefined, 'nothing was attached');

  const sys = new SlowSystem();
  sys.slowDown = () => {};
  const a = new HostAttachment(sys, nullLogger, { proxyArp: true });
  a.attach(ip('10.0.0.10'), undefined, ctx('10.0.0.10'), () => {});
  await tick();
  sys.finishRoutes();
  await a.settled();
  let freed = false;
  const gone = a.release(ctx('10.0.0.10'));
  assert.ok(gone);
  assert.equal(a.release(ctx('10.0.0.10')), gone, 'the same promise the second time');
  void gone.then(() => {
    freed = true;
  });
  assert.equal(freed, false);
  await gone;
  assert.deepEqual(sys.events.slice(-3), ['ip-down 10.0.0.10', `route- ${ip('10.0.0.10')}`, 'arp-']);
  sys.slowDown?.();

  // A host whose deletion throws (it should log and resolve): the address is freed all the same.
  const broken = new SlowSystem();
  broken.delClientRoute = () => Promise.reject(new Error('netlink socket gone'));
  const log = new MemoryLogger();
  const b = new HostAttachment(broken, log, { proxyArp: false });
  b.attach(ip('10.0.0.11'), undefined, ctx('10.0.0.11'), () => {});
  await tick();
  broken.finishRoutes();
  await b.settled();
  await b.release(ctx('10.0.0.11'));
  await b.settled();
  assert.deepEqual(
    log.lines.map((l) => l.line),
    ['releasing 10.0.0.11 from the host: netlink socket gone'],
  );
});
