import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HookContext } from '../../src/server/hooks.ts';
import { HostAttachment } from '../../src/server/host-attachment.ts';
import type { SystemOps } from '../../src/server/system.ts';
import { nullLogger } from '../../src/util/log.ts';
import { type IPv4, parseIPv4 } from '../../src/wire/ip.ts';

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
  async addProxyArp(): Promise<string | undefined> {
    this.events.push('arp+');
    return 'eth0';
  }
  async delProxyArp(): Promise<void> {
    this.events.push('arp-');
  }
  async runHook(kind: 'ip-up' | 'ip-down', c: HookContext): Promise<void> {
    this.events.push(`${kind} ${c.remoteIp}`);
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
