import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { AddressPool, addressForUser } from '../../src/aaa/address-pool.ts';
import { parseIpSpec } from '../../src/config/pptpd-conf.ts';
import { formatIPv4, type IPv4, parseIPv4 } from '../../src/wire/ip.ts';

const ip = (s: string) => parseIPv4(s)!;
const poolOf = (spec: string) => new AddressPool(parseIpSpec(spec, { file: '/etc/pptpd.conf', line: 1 }));
const fmt = (v: IPv4 | undefined) => (v === undefined ? undefined : formatIPv4(v));

test('allocation follows the remoteip list until exhausted', () => {
  const pool = poolOf('192.168.0.234-238,192.168.0.245');
  assert.equal(pool.size, 6);
  const got = Array.from({ length: 6 }, () => fmt(pool.allocate()));
  assert.deepEqual(got, [
    '192.168.0.234',
    '192.168.0.235',
    '192.168.0.236',
    '192.168.0.237',
    '192.168.0.238',
    '192.168.0.245',
  ]);
  assert.equal(pool.freeCount, 0);
  assert.equal(pool.allocate(), undefined);
  pool.release(ip('192.168.0.236'));
  assert.equal(fmt(pool.allocate()), '192.168.0.236');
});

test('released addresses are reused last, in release order', () => {
  const pool = poolOf('10.0.0.1-5');
  const a = pool.allocate()!;
  const b = pool.allocate()!;
  pool.release(b);
  pool.release(a);
  assert.deepEqual(
    [pool.allocate(), pool.allocate(), pool.allocate(), pool.allocate(), pool.allocate()].map(fmt),
    ['10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.2', '10.0.0.1'],
  );
});

test('release is idempotent and ignores strangers', () => {
  const pool = poolOf('10.0.0.1-2');
  const a = pool.allocate()!;
  pool.release(a);
  pool.release(a);
  pool.release(ip('172.16.0.1'));
  assert.equal(pool.freeCount, 2);
  assert.equal(pool.leaseCount, 0);
  assert.deepEqual([pool.allocate(), pool.allocate(), pool.allocate()].map(fmt), [
    '10.0.0.2',
    '10.0.0.1',
    undefined,
  ]);
});

test('static reservations: inside the pool they leave the free list, collisions refused', () => {
  const pool = poolOf('10.0.0.1-3');
  assert.equal(pool.reserve(ip('10.0.0.2')), true);
  assert.equal(pool.inUse(ip('10.0.0.2')), true);
  assert.equal(pool.freeCount, 2);
  assert.equal(pool.reserve(ip('10.0.0.2')), false, 'already leased');
  assert.deepEqual([pool.allocate(), pool.allocate(), pool.allocate()].map(fmt), [
    '10.0.0.1',
    '10.0.0.3',
    undefined,
  ]);
  assert.equal(pool.reserve(ip('10.0.0.1')), false, 'leased from the pool');
  pool.release(ip('10.0.0.2'));
  assert.equal(fmt(pool.allocate()), '10.0.0.2');

  // Outside the pool: tracked, never handed out by allocate().
  assert.equal(pool.reserve(ip('10.9.0.1')), true);
  assert.equal(pool.reserve(ip('10.9.0.1')), false);
  assert.equal(pool.contains(ip('10.9.0.1')), false);
  pool.release(ip('10.9.0.1'));
  assert.equal(pool.inUse(ip('10.9.0.1')), false);
  assert.equal(pool.allocate(), undefined);
});

test('allocate honours a restriction from the secrets file', () => {
  const pool = poolOf('10.0.0.1-4');
  const only3or4 = (v: IPv4) => v >= ip('10.0.0.3');
  assert.equal(fmt(pool.allocate(only3or4)), '10.0.0.3');
  assert.equal(fmt(pool.allocate()), '10.0.0.1');
  assert.equal(fmt(pool.allocate(only3or4)), '10.0.0.4');
  assert.equal(pool.allocate(only3or4), undefined);
});

test('no address is ever leased twice (random allocate/release/reserve sequences)', () => {
  const addresses = parseIpSpec('10.0.0.1-8', { file: 'p', line: 1 });
  const op = fc.oneof(
    fc.constant({ kind: 'allocate' as const, n: 0 }),
    fc.record({ kind: fc.constant('release' as const), n: fc.integer({ min: 0, max: 11 }) }),
    fc.record({ kind: fc.constant('reserve' as const), n: fc.integer({ min: 0, max: 11 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const pool = new AddressPool(addresses);
      const live = new Set<IPv4>(); // our model of the leases
      for (const o of ops) {
        const target = (ip('10.0.0.1') + o.n) >>> 0; // 10.0.0.1..12: 4 outside the pool
        if (o.kind === 'allocate') {
          const got = pool.allocate();
          if (got === undefined) {
            assert.equal(
              addresses.every((a) => live.has(a)),
              true,
              'allocate fails only when the pool is exhausted',
            );
          } else {
            assert.equal(live.has(got), false, `${formatIPv4(got)} handed out twice`);
            assert.equal(pool.contains(got), true);
            live.add(got);
          }
        } else if (o.kind === 'reserve') {
          assert.equal(pool.reserve(target), !live.has(target));
          live.add(target);
        } else {
          pool.release(target);
          live.delete(target);
        }
        assert.equal(pool.leaseCount, live.size);
        assert.equal(pool.freeCount, addresses.filter((a) => !live.has(a)).length);
      }
    }),
    { numRuns: 300 },
  );
});

test('addressForUser reads the address column', () => {
  const user = (...addresses: string[]) => addressForUser({ user: 'alice', addresses });
  const staticIp = user('10.0.0.7');
  assert.deepEqual(staticIp, { kind: 'static', ip: ip('10.0.0.7') });
  assert.deepEqual(user('bogus', '10.0.0.8', '10.0.0.9'), { kind: 'static', ip: ip('10.0.0.8') });
  assert.deepEqual(user('!10.0.0.7', '10.0.0.7', '10.0.0.8'), { kind: 'static', ip: ip('10.0.0.8') });
  assert.deepEqual(user('-'), {
    kind: 'refuse',
    reason: 'the secrets entry for "alice" allows no address ("-")',
  });
  assert.deepEqual(user('-', '10.0.0.1'), {
    kind: 'refuse',
    reason: 'the secrets entry for "alice" allows no address ("-")',
  });
  assert.deepEqual(user('!10.0.0.1'), {
    kind: 'refuse',
    reason: 'the secrets entry for "alice" permits no usable address ("!10.0.0.1")',
  });
  assert.deepEqual(user('host.example'), {
    kind: 'refuse',
    reason: 'the secrets entry for "alice" permits no usable address ("host.example")',
  });
  for (const column of [[], ['*']]) {
    const r = user(...column);
    assert.equal(r.kind, 'pool');
    if (r.kind === 'pool') assert.equal(r.allowed(ip('8.8.8.8')), true);
  }
  const subnet = user('!10.0.0.5', '10.0.0.0/29');
  assert.equal(subnet.kind, 'pool');
  if (subnet.kind === 'pool') {
    const pool = poolOf('10.0.0.4-10');
    assert.deepEqual([pool.allocate(subnet.allowed), pool.allocate(subnet.allowed)].map(fmt), [
      '10.0.0.4',
      '10.0.0.6',
    ]);
    assert.deepEqual([pool.allocate(subnet.allowed), pool.allocate(subnet.allowed)].map(fmt), [
      '10.0.0.7',
      undefined,
    ]);
  }
});
