import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IpcpHandler, type IpcpResult } from '../../src/ppp/ipcp/handler.ts';
import { Ipv6cpHandler, type Ipv6cpResult } from '../../src/ppp/ipv6cp/handler.ts';
import { u32Option } from '../../src/ppp/options.ts';
import { defaultPolicy, type PppPolicy } from '../../src/ppp/policy.ts';

function ipcp(role: 'server' | 'client', tweak?: (p: PppPolicy) => void) {
  const policy = defaultPolicy(role);
  if (role === 'server') {
    policy.localAddress = 0x0a000001;
    policy.peerAddress = 0x0a000002;
  }
  tweak?.(policy);
  const seen = { up: [] as IpcpResult[], fail: [] as string[] };
  const h = new IpcpHandler({
    role,
    policy,
    events: {
      up: (r) => seen.up.push(r),
      down: () => {},
      finished: () => {},
      fail: (r) => seen.fail.push(r),
    },
  });
  h.reset();
  return { h, seen };
}

const addr = (v: number) => u32Option(3, v);

test('IPCP server: 0.0.0.0 or another address is Nak-ed with the assigned one', () => {
  const { h } = ipcp('server');
  assert.deepEqual(h.checkRequest([addr(0)], false), { kind: 'nak', options: [addr(0x0a000002)] });
  assert.deepEqual(h.checkRequest([addr(0x0a000099)], false), { kind: 'nak', options: [addr(0x0a000002)] });
  assert.deepEqual(h.checkRequest([addr(0x0a000002)], false), { kind: 'ack' });
  assert.deepEqual(h.buildRequest(), [addr(0x0a000001)]);
});

test('IPCP server: DNS/NBNS supplied when configured, Rejected otherwise; VJ and IP-Addresses Rejected', () => {
  const { h } = ipcp('server', (p) => (p.msDns = [0x08080808]));
  const vj = { type: 2, data: new Uint8Array([0x00, 0x2d, 0x0f, 0x01]) };
  const old = { type: 1, data: new Uint8Array(8) };
  assert.deepEqual(h.checkRequest([addr(0x0a000002), vj, old], false), {
    kind: 'reject',
    options: [vj, old],
  });
  assert.deepEqual(h.checkRequest([addr(0x0a000002), u32Option(129, 0), u32Option(131, 0)], false), {
    kind: 'reject',
    options: [u32Option(131, 0)],
  });
  assert.deepEqual(h.checkRequest([addr(0x0a000002), u32Option(129, 0), u32Option(130, 0)], false), {
    kind: 'reject',
    options: [u32Option(130, 0)],
  });
  assert.deepEqual(h.checkRequest([addr(0x0a000002), u32Option(129, 0)], false), {
    kind: 'nak',
    options: [u32Option(129, 0x08080808)],
  });
  assert.deepEqual(h.checkRequest([addr(0x0a000002), u32Option(129, 0x08080808)], false), { kind: 'ack' });
  h.up();
});

test('IPCP client: requests 0.0.0.0 and DNS, takes the Nak, accepts the server address', () => {
  const { h, seen } = ipcp('client');
  assert.deepEqual(h.buildRequest(), [addr(0), u32Option(129, 0), u32Option(131, 0)]);
  h.nakReceived([addr(0x0a000064), u32Option(129, 0x01010101)]);
  h.rejectReceived([u32Option(131, 0)]);
  assert.deepEqual(h.buildRequest(), [addr(0x0a000064), u32Option(129, 0x01010101)]);
  assert.deepEqual(h.checkRequest([addr(0x0a000001)], false), { kind: 'ack' });
  h.up();
  assert.deepEqual(seen.up, [
    { localAddress: 0x0a000064, peerAddress: 0x0a000001, dns: [0x01010101], wins: [] },
  ]);
});

test('IPCP client: a server that never assigns an address fails IPCP', () => {
  const { h, seen } = ipcp('client');
  h.checkRequest([addr(0x0a000001)], false);
  h.up();
  assert.deepEqual(seen.fail, ['IPCP: the peer did not give us an IPv4 address']);
});

test('IPv6CP: zero or colliding identifiers are Nak-ed; a Nak of ours is adopted', () => {
  let n = 0;
  const seen: Ipv6cpResult[] = [];
  const h = new Ipv6cpHandler({
    random: () => 0x01020304 + n++,
    events: { up: (r) => seen.push(r), down: () => {}, finished: () => {}, fail: () => {} },
  });
  h.reset();
  const ours = h.buildRequest()[0]!;
  const zero = { type: 1, data: new Uint8Array(8) };
  const v = h.checkRequest([zero], false);
  assert.equal(v.kind, 'nak');
  assert.notDeepEqual(v.kind === 'nak' && v.options[0]!.data, ours.data);
  assert.equal(h.checkRequest([ours], false).kind, 'nak');
  const theirs = { type: 1, data: Uint8Array.from([2, 0, 0, 0, 0, 0, 0, 9]) };
  const comp = { type: 2, data: new Uint8Array([0, 0x4f]) };
  assert.deepEqual(h.checkRequest([theirs, comp], false), { kind: 'reject', options: [comp] });
  assert.deepEqual(h.checkRequest([theirs], false), { kind: 'ack' });
  const suggested = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 7]);
  h.nakReceived([{ type: 1, data: suggested }]);
  assert.deepEqual(h.buildRequest()[0]!.data, suggested);
  h.up();
  assert.deepEqual(seen, [{ localId: suggested, peerId: theirs.data }]);
});
