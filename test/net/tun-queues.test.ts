// SteeredRoutes: a worker's routes on the shared TUN device steer their prefixes to its queue
// (net/tun-queues.ts), against a Map standing in for the kernel's LPM trie and a recording route
// back-end. The kernel's side (the program, the trie, the queues) is in test/net/native.root.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostRoutes, InterfaceAddress } from '../../src/net/iproute.ts';
import { SteeredRoutes, type Steering } from '../../src/net/tun-queues.ts';
import { formatPrefix, type IPv4, parseIPv4 } from '../../src/wire/ip.ts';

const ip = (s: string): IPv4 => parseIPv4(s)!;

class MapSteering implements Steering {
  readonly map = new Map<string, number>();
  steer(network: IPv4, prefixLength: number, queue: number, onlyNew = false): number {
    const key = formatPrefix(network, prefixLength);
    if (onlyNew && this.map.has(key)) return 17; // EEXIST, as BPF_NOEXIST
    this.map.set(key, queue);
    return 0;
  }
  unsteer(network: IPv4, prefixLength: number): number {
    return this.map.delete(formatPrefix(network, prefixLength)) ? 0 : 2;
  }
  queueOf(network: IPv4, prefixLength: number): number | undefined {
    return this.map.get(formatPrefix(network, prefixLength));
  }
  queueOfAddress(address: IPv4): number | undefined {
    return this.queueOf(address, 32);
  }
}

/** Records each call with what the steering map held at that moment; `refuse` makes addRoute fail. */
class Recording implements HostRoutes {
  readonly calls: string[] = [];
  refuse: Error | undefined;
  private readonly steering: MapSteering;
  constructor(steering: MapSteering) {
    this.steering = steering;
  }
  async addRoute(dev: string, dest: IPv4, prefixLength = 32): Promise<void> {
    this.calls.push(
      `add ${dev} ${formatPrefix(dest, prefixLength)} (steered: ${this.steering.queueOf(dest, prefixLength)})`,
    );
    if (this.refuse) throw this.refuse;
  }
  async delRoute(dev: string, dest: IPv4, prefixLength = 32): Promise<boolean> {
    this.calls.push(`del ${dev} ${formatPrefix(dest, prefixLength)}`);
    return true;
  }
  async addProxyArp(): Promise<void> {}
  async delProxyArp(): Promise<boolean> {
    return true;
  }
  async interfaceContaining(): Promise<InterfaceAddress | undefined> {
    return undefined;
  }
}

test('SteeredRoutes: a route through the shared device is steered to the queue before it is added, and no longer once deleted', async () => {
  const steering = new MapSteering();
  const inner = new Recording(steering);
  const routes = new SteeredRoutes(inner, steering, 'poptop0', 1);
  await routes.addRoute('poptop0', ip('10.77.0.10'), 32, 1400);
  await routes.addRoute('poptop0', ip('192.168.50.0'), 24, undefined, { exclusive: true });
  assert.deepEqual(inner.calls, [
    'add poptop0 10.77.0.10/32 (steered: 1)',
    'add poptop0 192.168.50.0/24 (steered: 1)',
  ]);
  assert.deepEqual(
    [...steering.map],
    [
      ['10.77.0.10/32', 1],
      ['192.168.50.0/24', 1],
    ],
  );
  assert.equal(await routes.delRoute('poptop0', ip('10.77.0.10')), true);
  assert.deepEqual([...steering.map], [['192.168.50.0/24', 1]]);
  // Another device's routes are not steered.
  await routes.addRoute('eth0', ip('10.9.0.0'), 16);
  assert.equal(steering.map.size, 1);
});

test('SteeredRoutes: a refused route takes its steering back; a subnet another worker routes keeps its queue', async () => {
  const steering = new MapSteering();
  const inner = new Recording(steering);
  const routes = new SteeredRoutes(inner, steering, 'poptop0', 1);
  inner.refuse = new Error('No such device');
  await assert.rejects(routes.addRoute('poptop0', ip('10.77.0.11')), /No such device/);
  assert.equal(steering.map.size, 0);
  await assert.rejects(
    routes.addRoute('poptop0', ip('192.168.70.0'), 24, undefined, { exclusive: true }),
    /No such device/,
  );
  assert.equal(steering.map.size, 0, 'an exclusive one too');
  inner.refuse = undefined;

  // Worker 0 routes 192.168.60.0/24 already (RADIUS Framed-Route of one of its sessions).
  steering.steer(ip('192.168.60.0'), 24, 0);
  await assert.rejects(
    routes.addRoute('poptop0', ip('192.168.60.0'), 24, undefined, { exclusive: true }),
    (e: NodeJS.ErrnoException) => e.code === 'EEXIST',
  );
  assert.equal(steering.queueOf(ip('192.168.60.0'), 24), 0, 'still worker 0');
  assert.equal(inner.calls.length, 2, 'the kernel was not asked');
  // Deleting it from here (a session of this worker whose add failed) leaves worker 0's steering.
  await routes.delRoute('poptop0', ip('192.168.60.0'), 24);
  assert.equal(steering.queueOf(ip('192.168.60.0'), 24), 0);
  // A host route replaces (not exclusive), and comes off when deleted.
  steering.steer(ip('10.77.0.12'), 32, 0);
  await routes.addRoute('poptop0', ip('10.77.0.12'));
  assert.equal(steering.queueOf(ip('10.77.0.12'), 32), 1);
  await routes.delRoute('poptop0', ip('10.77.0.12'));
  assert.equal(steering.queueOf(ip('10.77.0.12'), 32), undefined);
  // Given to worker 0's session (which replaced route and steering) before ours came off: stays.
  await routes.addRoute('poptop0', ip('10.77.0.13'));
  steering.steer(ip('10.77.0.13'), 32, 0);
  await routes.delRoute('poptop0', ip('10.77.0.13'));
  assert.equal(steering.queueOf(ip('10.77.0.13'), 32), 0);
});
