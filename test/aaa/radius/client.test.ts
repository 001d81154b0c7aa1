import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readdirSync, readlinkSync } from 'node:fs';
import { test } from 'node:test';
import {
  MAX_ID_WAITERS,
  RadiusBusyError,
  RadiusCancelledError,
  RadiusClient,
  type RadiusServer,
  RadiusTimeoutError,
  type RadiusTransport,
} from '../../../src/aaa/radius/client.ts';
import {
  attrU32,
  decodeRadiusPacket,
  findAttr,
  type RadiusAttribute,
  signRadiusPacket,
  textAttr,
  verifyRadiusRequest,
} from '../../../src/aaa/radius/codec.ts';
import { Attr, RadiusCode } from '../../../src/aaa/radius/dictionary.ts';
import { ManualClock, SystemClock } from '../../../src/util/clock.ts';
import { MemoryLogger } from '../../../src/util/log.ts';

const enc = (s: string) => new TextEncoder().encode(s);

/** Datagrams in memory: the test plays the servers. */
class FakeNet implements RadiusTransport {
  sent: { bytes: Uint8Array; host: string; port: number }[] = [];
  busy = false;
  private handler: ((b: Uint8Array, h: string, p: number) => void) | undefined;
  send(bytes: Uint8Array, host: string, port: number): void {
    this.sent.push({ bytes, host, port });
  }
  onMessage(fn: (b: Uint8Array, h: string, p: number) => void): void {
    this.handler = fn;
  }
  setBusy(busy: boolean): void {
    this.busy = busy;
  }
  close(): void {}
  deliver(bytes: Uint8Array, host: string, port: number): void {
    this.handler?.(bytes, host, port);
  }
}

const A: RadiusServer = { host: '127.0.0.1', port: 1812, secret: 'secret-a' };
const B: RadiusServer = { host: '127.0.0.1', port: 11812, secret: 'secret-b' };

function setup(servers = [A, B], tries = 3) {
  const clock = new ManualClock();
  const log = new MemoryLogger();
  const net = new FakeNet();
  const client = new RadiusClient({
    servers,
    timeoutMs: 1000,
    tries,
    deadtimeMs: 60_000,
    purpose: 'authentication',
    clock,
    log,
    transport: net,
  });
  return { clock, log, net, client };
}

const flush = () => new Promise((r) => setImmediate(r));

function accessRequest(user = 'alice') {
  return {
    code: RadiusCode.AccessRequest,
    attributes: (): RadiusAttribute[] => [textAttr(Attr.UserName, user)],
  };
}

/** An Access-Accept/Reject for a request we saw on the fake network. */
function answer(request: Uint8Array, secret: string, code: number = RadiusCode.AccessAccept, ma = true) {
  const req = decodeRadiusPacket(request);
  return signRadiusPacket(
    { code, id: req.id, authenticator: new Uint8Array(16), attributes: [textAttr(Attr.ReplyMessage, 'hi')] },
    enc(secret),
    { requestAuthenticator: req.authenticator, messageAuthenticator: ma },
  );
}

test('an answered Access-Request resolves with the verified reply; requests carry a Message-Authenticator', async () => {
  const { net, client } = setup();
  const p = client.send(accessRequest());
  assert.equal(net.sent.length, 1);
  assert.equal(net.busy, true);
  const sent = net.sent[0]!;
  assert.equal(sent.port, 1812);
  assert.equal(
    verifyRadiusRequest(sent.bytes, enc(A.secret), { requireMessageAuthenticator: true }),
    undefined,
  );
  net.deliver(answer(sent.bytes, A.secret), A.host, A.port);
  const reply = await p;
  assert.equal(reply.packet.code, RadiusCode.AccessAccept);
  assert.equal(reply.server, A);
  await flush();
  assert.equal(net.busy, false);
});

test('retransmission: the same octets every timeout, then fail-over to the next server, logged once', async () => {
  const { clock, log, net, client } = setup();
  const p = client.send(accessRequest());
  for (let i = 1; i < 3; i++) {
    clock.advance(1000);
    await flush();
  }
  assert.equal(net.sent.length, 3);
  assert.deepEqual(net.sent[1]!.bytes, net.sent[0]!.bytes, 'RFC 5080: a retransmission is the same packet');
  assert.deepEqual(net.sent[2]!.bytes, net.sent[0]!.bytes);
  clock.advance(1000);
  await flush();
  assert.equal(net.sent.length, 4);
  assert.equal(net.sent[3]!.port, B.port);
  assert.ok(
    log.has(
      'RADIUS authentication server 127.0.0.1:1812 is not answering (no reply to 3 tries, 1 s each); trying 127.0.0.1:11812 instead',
    ),
    log.text(),
  );
  net.deliver(answer(net.sent[3]!.bytes, B.secret), B.host, B.port);
  assert.equal((await p).server, B);
  // the next request goes straight to B while A is in its dead time, and nothing more is logged
  const lines = log.lines.length;
  const q = client.send(accessRequest('bob'));
  assert.equal(net.sent.at(-1)!.port, B.port);
  net.deliver(answer(net.sent.at(-1)!.bytes, B.secret), B.host, B.port);
  await q;
  assert.equal(log.lines.length, lines);
  assert.deepEqual(client.downServers, ['127.0.0.1:1812']);
  // after the dead time A is tried first again, and its answer is logged once
  clock.advance(60_000);
  const r = client.send(accessRequest('carol'));
  assert.equal(net.sent.at(-1)!.port, A.port);
  net.deliver(answer(net.sent.at(-1)!.bytes, A.secret), A.host, A.port);
  await r;
  assert.ok(log.has('RADIUS authentication server 127.0.0.1:1812 is answering again'));
  assert.deepEqual(client.downServers, []);
});

test('no server answers: RadiusTimeoutError naming them; each down server logged once', async () => {
  const { clock, log, client } = setup([A, B], 2);
  const p = client.send(accessRequest());
  const outcome = p.then(
    () => 'resolved',
    (e: unknown) => e,
  );
  for (let i = 0; i < 4; i++) {
    clock.advance(1000);
    await flush();
  }
  const e = await outcome;
  assert.ok(e instanceof RadiusTimeoutError);
  assert.match(
    e.message,
    /no RADIUS authentication server answered \(127\.0\.0\.1:1812, 127\.0\.0\.1:11812; 2 tries of 1 s each\)/,
  );
  assert.ok(
    log.has(
      'server 127.0.0.1:11812 is not answering (no reply to 2 tries, 1 s each); no other server is answering',
    ),
  );
  // a second failing request logs nothing new
  const before = log.lines.length;
  const q = client.send(accessRequest()).catch((x: unknown) => x);
  for (let i = 0; i < 4; i++) {
    clock.advance(1000);
    await flush();
  }
  assert.ok((await q) instanceof RadiusTimeoutError);
  assert.equal(log.lines.length, before);
});

test('replies that fail a check are dropped and counted; the request still waits for a good one', async () => {
  const { net, log, client } = setup();
  const p = client.send(accessRequest());
  const req = net.sent[0]!.bytes;
  // wrong secret
  net.deliver(answer(req, 'not-the-secret'), A.host, A.port);
  // no Message-Authenticator (BlastRADIUS)
  net.deliver(answer(req, A.secret, RadiusCode.AccessAccept, false), A.host, A.port);
  // from another port
  net.deliver(answer(req, A.secret), A.host, 9999);
  // an Accounting-Response to an Access-Request
  net.deliver(answer(req, A.secret, RadiusCode.AccountingResponse), A.host, A.port);
  // truncated
  net.deliver(answer(req, A.secret).subarray(0, 30), A.host, A.port);
  // another identifier
  const other = answer(req, A.secret);
  other[1] = (other[1]! + 1) & 0xff;
  net.deliver(other, A.host, A.port);
  assert.deepEqual(client.drops.snapshot(), {
    'Access-Accept refused: its Response Authenticator is wrong (is the shared secret the same on both sides?)': 1,
    'Access-Accept refused: it has no Message-Authenticator, which is required': 1,
    'datagram from an address that is not a configured server': 1,
    'Accounting-Response in answer to Access-Request': 1,
    'malformed reply: TRUNCATED': 1,
    'reply that answers no pending request (late or duplicate)': 1,
  });
  assert.ok(log.has('Response Authenticator is wrong'));
  net.deliver(answer(req, A.secret, RadiusCode.AccessReject), A.host, A.port);
  assert.equal((await p).packet.code, RadiusCode.AccessReject);
});

test('accounting: each retransmission has a new Identifier and a fresh authenticator over its attributes', async () => {
  const clock = new ManualClock();
  const net = new FakeNet();
  const client = new RadiusClient({
    servers: [A],
    timeoutMs: 2000,
    tries: 3,
    deadtimeMs: 0,
    purpose: 'accounting',
    clock,
    log: new MemoryLogger(),
    transport: net,
  });
  const p = client.send({
    code: RadiusCode.AccountingRequest,
    attributes: (ctx) => [
      textAttr(Attr.AcctSessionId, 'x'),
      { type: Attr.AcctDelayTime, value: u32(Math.floor(ctx.elapsedMs / 1000)) },
    ],
  });
  clock.advance(2000);
  await flush();
  const [first, second] = net.sent.map((s) => s.bytes);
  assert.notEqual(first![1], second![1]);
  for (const b of [first!, second!]) assert.equal(verifyRadiusRequest(b, enc(A.secret)), undefined);
  assert.equal(attrU32(findAttr(decodeRadiusPacket(second!).attributes, Attr.AcctDelayTime)!), 2);
  const req = decodeRadiusPacket(second!);
  const resp = signRadiusPacket(
    { code: RadiusCode.AccountingResponse, id: req.id, authenticator: new Uint8Array(16), attributes: [] },
    enc(A.secret),
    { requestAuthenticator: req.authenticator },
  );
  net.deliver(resp, A.host, A.port);
  assert.equal((await p).packet.code, RadiusCode.AccountingResponse);
});

test('a cancelled request stops retransmitting at once and frees its Identifier', async () => {
  const { clock, net, client, log } = setup([A], 3);
  const abort = new AbortController();
  const p = client.send(accessRequest(), abort.signal).catch((e: unknown) => e);
  assert.equal(net.sent.length, 1);
  abort.abort();
  clock.advance(10_000);
  await flush();
  assert.ok((await p) instanceof RadiusCancelledError);
  assert.equal(net.sent.length, 1, 'no retransmission after the cancel');
  assert.deepEqual(client.downServers, [], 'a cancel says nothing about the server');
  assert.equal(log.has('is not answering'), false);
  // the late answer to the cancelled request matches nothing
  net.deliver(answer(net.sent[0]!.bytes, A.secret), A.host, A.port);
  assert.equal(client.drops.snapshot()['reply that answers no pending request (late or duplicate)'], 1);
  await flush();
  assert.equal(net.busy, false);
});

test('256 requests outstanding to a server: the next waits for a free Identifier instead of failing', async () => {
  const { clock, net, client } = setup([A], 3);
  const first = Array.from({ length: 256 }, (_, i) => client.send(accessRequest(`u${i}`)));
  assert.equal(net.sent.length, 256);
  const ids = new Set(net.sent.map((x) => x.bytes[1]));
  assert.equal(ids.size, 256);
  const abort = new AbortController();
  const cancelled = client.send(accessRequest('gone'), abort.signal).catch((e: unknown) => e);
  const waiting = client.send(accessRequest('later'));
  await flush();
  assert.equal(net.sent.length, 256, 'no Identifier free: nothing sent yet');
  abort.abort();
  assert.ok((await cancelled) instanceof RadiusCancelledError);
  // one answer frees its Identifier, which the waiting request takes
  net.deliver(answer(net.sent[7]!.bytes, A.secret), A.host, A.port);
  await first[7];
  await flush();
  assert.equal(net.sent.length, 257);
  const later = net.sent[256]!.bytes;
  assert.equal(later[1], net.sent[7]!.bytes[1]);
  net.deliver(answer(later, A.secret), A.host, A.port);
  assert.equal((await waiting).packet.code, RadiusCode.AccessAccept);
  client.close();
  clock.runAll();
  await Promise.allSettled(first);
});

test('too many requests waiting for an Identifier: refused in words, the server not skipped', async () => {
  const { clock, net, client } = setup([A, B], 3);
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < 256 + MAX_ID_WAITERS; i++)
    all.push(client.send(accessRequest(`u${i}`)).catch(() => {}));
  const e = await client.send(accessRequest('one-too-many')).catch((x: unknown) => x);
  assert.ok(e instanceof RadiusBusyError);
  assert.match(
    e.message,
    /all 256 RADIUS authentication request identifiers for 127\.0\.0\.1:1812 are in use and 1024 more requests are already waiting for one/,
  );
  assert.ok(
    net.sent.every((x) => x.port === A.port),
    'B is not tried because A is busy',
  );
  client.close();
  clock.runAll();
  await Promise.all(all);
});

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

test('over real UDP on loopback: a peer that answers the second transmission; no socket before the first request', async () => {
  // Sockets among this process's descriptors (Linux /proc), ref'd or not.
  const sockets = () =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
      } catch {
        return false; // closed meanwhile (the directory's own descriptor)
      }
    }).length;
  const before = sockets();
  const peer = createSocket('udp4');
  await new Promise<void>((r) => peer.bind(0, '127.0.0.1', () => r()));
  const port = peer.address().port;
  let seen = 0;
  peer.on('message', (msg, rinfo) => {
    if (++seen < 2) return; // the first is "lost"
    peer.send(answer(new Uint8Array(msg), 'udp-secret'), rinfo.port, rinfo.address);
  });
  const client = new RadiusClient({
    servers: [{ host: '127.0.0.1', port, secret: 'udp-secret' }],
    timeoutMs: 200,
    tries: 5,
    deadtimeMs: 1000,
    purpose: 'authentication',
    clock: new SystemClock(),
    log: new MemoryLogger(),
  });
  try {
    // A client that has sent nothing holds no socket (the primary of `workers N` never does).
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(sockets(), before + 1, 'only the peer has a socket');
    const reply = await client.send(accessRequest());
    assert.equal(reply.packet.code, RadiusCode.AccessAccept);
    assert.equal(seen, 2);
    assert.equal(sockets(), before + 2);
  } finally {
    client.close();
    peer.close();
  }
});
