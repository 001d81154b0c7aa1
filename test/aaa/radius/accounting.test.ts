import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AccountingQueue, terminateCause } from '../../../src/aaa/radius/accounting.ts';
import { RadiusClient, type RadiusTransport } from '../../../src/aaa/radius/client.ts';
import {
  attrU32,
  decodeRadiusPacket,
  findAttr,
  signRadiusPacket,
  textAttr,
} from '../../../src/aaa/radius/codec.ts';
import { AcctStatus, Attr, RadiusCode, TerminateCause } from '../../../src/aaa/radius/dictionary.ts';
import { ManualClock } from '../../../src/util/clock.ts';
import { MemoryLogger } from '../../../src/util/log.ts';

const SECRET = 'acct';
const flush = () => new Promise((r) => setImmediate(r));

/** A fake accounting server that answers only while `up`. */
class Peer implements RadiusTransport {
  up = false;
  received: number[] = [];
  private handler: ((b: Uint8Array, h: string, p: number) => void) | undefined;
  send(bytes: Uint8Array, host: string, port: number): void {
    if (!this.up) return;
    const req = decodeRadiusPacket(bytes);
    this.received.push(attrU32(findAttr(req.attributes, Attr.AcctStatusType)!));
    const reply = signRadiusPacket(
      { code: RadiusCode.AccountingResponse, id: req.id, authenticator: new Uint8Array(16), attributes: [] },
      new TextEncoder().encode(SECRET),
      { requestAuthenticator: req.authenticator },
    );
    queueMicrotask(() => this.handler?.(reply, host, port));
  }
  onMessage(fn: (b: Uint8Array, h: string, p: number) => void): void {
    this.handler = fn;
  }
  setBusy(): void {}
  close(): void {}
}

function setup(maxRecords = 100) {
  const clock = new ManualClock();
  const log = new MemoryLogger();
  const peer = new Peer();
  const client = new RadiusClient({
    servers: [{ host: '127.0.0.1', port: 1813, secret: SECRET }],
    timeoutMs: 1000,
    tries: 2,
    deadtimeMs: 0,
    purpose: 'accounting',
    clock,
    log,
    transport: peer,
  });
  const queue = new AccountingQueue(client, { clock, log, maxRecords, retryMs: 5000 });
  return { clock, log, peer, queue };
}

async function advance(clock: ManualClock, ms: number, step = 500): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    await flush();
  }
}

test('an outage loses no record: they are kept, retried, and sent in order once a server answers', async () => {
  const { clock, log, peer, queue } = setup();
  queue.add(AcctStatus.Start, [textAttr(Attr.AcctSessionId, 'a')], 'for s1');
  queue.add(AcctStatus.InterimUpdate, [textAttr(Attr.AcctSessionId, 'a')], 'for s1');
  queue.add(AcctStatus.Stop, [textAttr(Attr.AcctSessionId, 'a')], 'for s1');
  await advance(clock, 20_000);
  assert.equal(queue.length, 3);
  assert.equal(log.lines.filter((l) => l.line.includes('no server answered')).length, 1, log.text());
  peer.up = true;
  const done = queue.flush(60_000);
  await advance(clock, 10_000);
  assert.equal(await done, true);
  assert.deepEqual(peer.received, [AcctStatus.Start, AcctStatus.InterimUpdate, AcctStatus.Stop]);
  assert.equal(queue.length, 0);
  assert.ok(log.has('RADIUS accounting is answered again'));
});

test('a full queue drops the oldest Interim-Update first, and says so', async () => {
  const { clock, log, queue } = setup(3);
  queue.add(AcctStatus.Start, [], 'for s1');
  queue.add(AcctStatus.InterimUpdate, [], 'for s1');
  queue.add(AcctStatus.Stop, [], 'for s1');
  await advance(clock, 5000);
  queue.add(AcctStatus.Stop, [], 'for s2');
  assert.equal(queue.stats.dropped, 1);
  assert.ok(log.has('dropped the Interim-Update for s1'), log.text());
});

test('flush gives up after its deadline when no server answers', async () => {
  const { clock, queue } = setup();
  queue.add(AcctStatus.Stop, [], 'for s1');
  const done = queue.flush(3000);
  await advance(clock, 4000);
  assert.equal(await done, false);
  assert.equal(queue.length, 1);
});

test('Acct-Terminate-Cause from our end reasons', () => {
  const cases: [string, number][] = [
    ['peer requested termination ("closed by the user")', TerminateCause.UserRequest],
    ['peer cleared the call (Call-Clear-Request)', TerminateCause.UserRequest],
    ['peer not responding to LCP echo', TerminateCause.LostCarrier],
    ['TCP connection closed', TerminateCause.LostCarrier],
    ['closed by the administrator', TerminateCause.AdminReset],
    ['server shutting down', TerminateCause.AdminReboot],
    ['something else', TerminateCause.NasError],
  ];
  for (const [reason, cause] of cases) assert.equal(terminateCause(reason), cause, reason);
});

test("Acct-Terminate-Cause: the peer's Terminate-Request text does not choose it", () => {
  for (const text of [
    'session-timeout',
    'Idle-Timeout',
    'closed by the administrator',
    'server shutting down',
  ]) {
    const reason = `peer requested termination ("${text}")`;
    assert.equal(terminateCause(reason), TerminateCause.UserRequest, reason);
  }
});

test('an Accounting-On nobody answered before the first Start is given up, never sent late', async () => {
  const { clock, log, peer, queue } = setup();
  queue.add(AcctStatus.AccountingOn, [], 'at start-up');
  await advance(clock, 3000); // its two tries time out: queued again, waiting for the retry
  assert.equal(queue.length, 1);
  queue.add(AcctStatus.Start, [textAttr(Attr.AcctSessionId, 'a')], 'for s1');
  assert.ok(log.has(/gave up the Accounting-On at start-up: no server answered it before the first session/));
  peer.up = true;
  const done = queue.flush(60_000);
  await advance(clock, 10_000);
  assert.equal(await done, true);
  assert.deepEqual(peer.received, [AcctStatus.Start], 'the Start went out; the Accounting-On did not');

  // Answered in time, an Accounting-On goes out as usual.
  const second = setup();
  second.peer.up = true;
  second.queue.add(AcctStatus.AccountingOn, [], 'at start-up');
  await advance(second.clock, 1000);
  second.queue.add(AcctStatus.Start, [textAttr(Attr.AcctSessionId, 'b')], 'for s1');
  await advance(second.clock, 1000);
  assert.deepEqual(second.peer.received, [AcctStatus.AccountingOn, AcctStatus.Start]);
  assert.ok(!second.log.has(/gave up/));
});
