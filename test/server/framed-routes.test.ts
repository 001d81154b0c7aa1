import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FramedRouteTable } from '../../src/server/framed-routes.ts';
import { parseIPv4 } from '../../src/wire/ip.ts';

const ip = (s: string) => parseIPv4(s)!;

test('longest prefix wins; outside every prefix nothing; only the owner removes its entry', () => {
  const t = new FramedRouteTable<string>();
  assert.equal(t.lookup(ip('10.1.2.3')), undefined);
  assert.equal(t.add({ network: ip('10.1.0.0'), prefixLength: 16, owner: 's1' }), true);
  assert.equal(t.add({ network: ip('192.0.2.0'), prefixLength: 24, owner: 's2' }), true);
  assert.equal(t.add({ network: ip('198.51.100.7'), prefixLength: 32, owner: 's3' }), true);
  assert.equal(t.size, 3);
  const rows: [string, string | undefined][] = [
    ['10.1.0.0', 's1'],
    ['10.1.255.255', 's1'],
    ['10.2.0.0', undefined],
    ['192.0.2.200', 's2'],
    ['192.0.3.0', undefined],
    ['198.51.100.7', 's3'],
    ['198.51.100.8', undefined],
  ];
  for (const [addr, owner] of rows) assert.equal(t.lookup(ip(addr)), owner, addr);
  assert.equal(t.delete(ip('10.1.0.0'), 16, 's2'), false, 'not the owner');
  assert.equal(t.lookup(ip('10.1.2.3')), 's1');
  assert.equal(t.delete(ip('10.1.0.0'), 16, 's1'), true);
  assert.equal(t.delete(ip('10.1.0.0'), 16, 's1'), false, 'twice');
  assert.equal(t.lookup(ip('10.1.2.3')), undefined);
  assert.equal(t.size, 2);
});

test('overlapping prefixes are refused, whichever is longer; neighbours are not overlaps', () => {
  const t = new FramedRouteTable<string>();
  t.add({ network: ip('10.1.0.0'), prefixLength: 16, owner: 's1' });
  assert.equal(t.add({ network: ip('10.1.128.0'), prefixLength: 17, owner: 's2' }), false, 'inside');
  assert.equal(t.add({ network: ip('10.0.0.0'), prefixLength: 8, owner: 's2' }), false, 'around');
  assert.equal(t.add({ network: ip('10.1.0.0'), prefixLength: 16, owner: 's2' }), false, 'the same');
  assert.equal(t.overlapping(ip('10.1.7.7'), 32)?.owner, 's1');
  assert.equal(t.add({ network: ip('10.2.0.0'), prefixLength: 16, owner: 's2' }), true, 'next door');
  assert.equal(t.add({ network: ip('10.0.255.0'), prefixLength: 24, owner: 's3' }), true, 'just below');
  assert.equal(t.size, 3);
  assert.equal(t.lookup(ip('10.2.3.4')), 's2');
  assert.equal(t.lookup(ip('10.0.255.1')), 's3');
});
