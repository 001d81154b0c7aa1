import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Credential } from '../../src/aaa/credentials.ts';
import { LeaseManager } from '../../src/aaa/leases.ts';
import { formatIPv4, type IPv4, parseIPv4 } from '../../src/wire/ip.ts';

const ip = (s: string): IPv4 => parseIPv4(s)!;
const cred = (user: string, addresses: string[] = ['*']): Credential => ({
  user,
  server: '*',
  secret: { kind: 'password', password: 'x' },
  addresses,
});
const holder = (id: string) => ({ id });

test('leases are taken at authentication and confirmed, then released once', () => {
  const m = new LeaseManager([ip('10.0.0.10'), ip('10.0.0.11')]);
  const a = holder('s1');
  assert.deepEqual(m.admission(), { ok: true });
  assert.equal(m.poolFree, 2, 'admission holds nothing');
  const r = m.lease(a, 'alice', cred('alice'));
  assert.ok('lease' in r);
  assert.equal(formatIPv4(r.lease.ip), '10.0.0.10');
  assert.equal(r.lease.source, 'pool');
  assert.equal(r.lease.state, 'provisional');
  m.confirm(a);
  assert.equal(m.leaseOf(a)?.state, 'confirmed');
  assert.equal(m.holderOf(ip('10.0.0.10')), a);
  m.release(a);
  m.release(a);
  assert.equal(m.poolFree, 2);
  assert.equal(m.count, 0);
  assert.equal(m.holderOf(ip('10.0.0.10')), undefined);
});

test('a second authentication on the same session keeps its lease; another user is refused', () => {
  const m = new LeaseManager([ip('10.0.0.10'), ip('10.0.0.11')]);
  const a = holder('s1');
  const first = m.lease(a, 'alice', cred('alice'));
  const again = m.lease(a, 'alice', cred('alice'));
  assert.ok('lease' in first && 'lease' in again);
  assert.equal(again.lease.ip, first.lease.ip);
  assert.equal(m.poolFree, 1, 'no second address taken');
  const other = m.lease(a, 'mallory', cred('mallory'));
  assert.ok('refuse' in other);
  assert.match(other.refuse, /re-authentication as "mallory"/);
  assert.equal(m.poolFree, 1);
});

test('static addresses come from the secrets entry, one holder each, named in the refusal', () => {
  const m = new LeaseManager([ip('10.0.0.10')]);
  const a = m.lease(holder('s1'), 'bob', cred('bob', ['10.0.0.200']));
  assert.ok('lease' in a);
  assert.equal(a.lease.source, 'secrets');
  const b = m.lease(holder('s2'), 'bob', cred('bob', ['10.0.0.200']));
  assert.ok('refuse' in b);
  assert.match(b.refuse, /10\.0\.0\.200 is in use by session s1 \(bob\)/);
  assert.equal(m.poolFree, 1, 'a static lease outside the pool takes no pool address');
});

test('admission refuses only when the configured pool is empty; pool exhaustion and "-" refuse at lease time', () => {
  const m = new LeaseManager([ip('10.0.0.10')]);
  assert.ok('lease' in m.lease(holder('s1'), 'alice', cred('alice')));
  const adm = m.admission();
  assert.ok('refuse' in adm);
  assert.match(adm.refuse, /address pool exhausted: all 1 addresses of remoteip are in use/);
  const r = m.lease(holder('s2'), 'carol', cred('carol'));
  assert.ok('refuse' in r && /exhausted/.test(r.refuse));
  const none = m.lease(holder('s3'), 'dave', cred('dave', ['-']));
  assert.ok('refuse' in none && /allows no address/.test(none.refuse));
  assert.deepEqual(
    new LeaseManager([]).admission(),
    { ok: true },
    'delegate: no pool, nothing to refuse early',
  );
});

test('reload keeps live leases out of the new pool', () => {
  const m = new LeaseManager([ip('10.0.0.10'), ip('10.0.0.11')]);
  const a = holder('s1');
  m.lease(a, 'alice', cred('alice'));
  m.reload([ip('10.0.0.10'), ip('10.0.0.11'), ip('10.0.0.12')]);
  assert.equal(m.poolFree, 2);
  const b = m.lease(holder('s2'), 'bob', cred('bob'));
  assert.ok('lease' in b);
  assert.equal(formatIPv4(b.lease.ip), '10.0.0.11');
  m.release(a);
  assert.equal(m.poolFree, 2);
});

test('RADIUS: Framed-IP-Address is leased as source radius; none (or 255.255.255.254) takes the pool', () => {
  const m = new LeaseManager([ip('10.0.0.10'), ip('10.0.0.11')]);
  const a = holder('s1');
  const b = holder('s2');
  const c = holder('s3');
  const fixed = m.leaseFromRadius(a, 'alice', ip('10.0.0.11'));
  assert.ok('lease' in fixed);
  assert.equal(fixed.lease.source, 'radius');
  assert.equal(m.poolFree, 1, 'a pool address given by RADIUS leaves the free list');
  const same = m.leaseFromRadius(b, 'bob', ip('10.0.0.11'));
  assert.deepEqual(same, { refuse: 'the address RADIUS gives, 10.0.0.11, is in use by session s1 (alice)' });
  const pooled = m.leaseFromRadius(b, 'bob', undefined);
  assert.ok('lease' in pooled);
  assert.equal(formatIPv4(pooled.lease.ip), '10.0.0.10');
  assert.equal(pooled.lease.source, 'pool');
  assert.deepEqual(m.leaseFromRadius(c, 'carol', undefined), {
    refuse: 'address pool exhausted: all 2 addresses of remoteip are in use',
  });
  // outside the pool: only tracked
  const outside = m.leaseFromRadius(c, 'carol', ip('192.0.2.7'));
  assert.ok('lease' in outside);
  // re-authentication keeps the lease; another address or user is refused
  assert.deepEqual(m.leaseFromRadius(a, 'alice', ip('10.0.0.11')), { lease: m.leaseOf(a) });
  assert.ok('refuse' in m.leaseFromRadius(a, 'alice', ip('10.0.0.10')));
  assert.ok('refuse' in m.leaseFromRadius(a, 'mallory', undefined));
  for (const h of [a, b, c]) m.release(h);
  assert.equal(m.poolFree, 2);
  assert.equal(m.count, 0);
});
