// PAC and PNS automata against each other, in memory, with a manual clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StopReason } from '../../src/pptp/constants.ts';
import { Pair } from './harness.ts';

function types(msgs: { type: string }[]): string[] {
  return msgs.map((m) => m.type);
}

function assertAllClosed(p: Pair): void {
  for (const side of [p.pac, p.pns]) {
    assert.equal(side.conn.state, 'closed');
    assert.equal(side.ev.closed.length, 1, 'onClosed exactly once');
    assert.equal(side.conn.calls().length, 0);
    assert.equal(side.callIds.size, 0, 'every call id released');
  }
}

test('happy path: SCCRQ → SCCRP → OCRQ → OCRP, the call is up on both sides', () => {
  const p = new Pair(
    { hostName: 'vpn.example', recvWindow: 32 },
    { hostName: 'laptop', vendor: 'poptop-client' },
  );
  p.establish();
  assert.equal(p.pac.conn.state, 'established');
  assert.equal(p.pns.conn.state, 'established');
  assert.deepEqual(p.pac.ev.established, [
    { hostName: 'laptop', vendor: 'poptop-client', protocolVersion: 0x0100 },
  ]);
  assert.deepEqual(p.pns.ev.established, [
    { hostName: 'vpn.example', vendor: 'poptop', protocolVersion: 0x0100 },
  ]);

  const id = p.pns.conn.placeCall('555');
  p.pump();
  assert.deepEqual(types(p.pns.sent), ['start-control-connection-request', 'outgoing-call-request']);
  assert.deepEqual(types(p.pac.sent), ['start-control-connection-reply', 'outgoing-call-reply']);
  const [pacCall] = p.pac.ev.up;
  const [pnsCall] = p.pns.ev.up;
  assert.ok(pacCall && pnsCall);
  assert.equal(pnsCall.localCallId, id);
  assert.equal(pacCall.peerCallId, id);
  assert.equal(pnsCall.peerCallId, pacCall.localCallId);
  assert.equal(pnsCall.peerRecvWindow, 32, 'the PAC announced its window');
  assert.equal(pacCall.peerRecvWindow, 64, 'the PNS default window');
  assert.equal(pacCall.phoneNumber, '555');
  assert.equal(pacCall.serial, pnsCall.serial);
  assert.deepEqual(p.pac.conn.calls(), [pacCall]);
  // The call's ids are debug detail: the session's own "session up" line is what the admin reads.
  assert.ok(!p.pac.log.has(/call up/));
});

test('echo keepalive: silence brings Echo-Requests, the replies keep the connection up', () => {
  const p = new Pair().establish();
  p.pns.conn.placeCall();
  p.pump();
  p.advance(10 * 60_000);
  assert.equal(p.pac.conn.state, 'established');
  assert.equal(p.pns.conn.state, 'established');
  const pacEchoes = p.pac.sent.filter((m) => m.type === 'echo-request').length;
  const pnsReplies = p.pns.sent.filter((m) => m.type === 'echo-reply').length;
  assert.ok(pacEchoes >= 5, `PAC sent ${pacEchoes} Echo-Requests in 10 minutes`);
  assert.equal(pnsReplies, pacEchoes);
  assert.equal(p.pac.conn.drops.total, 0);
});

test('echo timeout: a dead peer is dropped with a reason in words', () => {
  const p = new Pair({ echoIntervalMs: 30_000, echoTimeoutMs: 20_000 }).establish();
  p.pns.conn.placeCall();
  p.pump();
  p.blackhole = true;
  p.advance(49_000);
  assert.equal(p.pac.conn.state, 'established');
  p.advance(2_000);
  assert.equal(p.pac.conn.state, 'closed');
  assert.deepEqual(p.pac.ev.closed, ['peer did not answer Echo-Request for 20 s']);
  assert.equal(p.pac.ev.down[0]?.reason, 'peer did not answer Echo-Request for 20 s');
  assert.equal(p.pac.callIds.size, 0);
  p.blackhole = false;
  p.pump(); // the PNS sees the TCP close
  assertAllClosed(p);
  assert.deepEqual(p.pns.ev.closed, ['TCP connection closed']);
});

test('the PNS stops: StopCCRQ → StopCCRP, both close, calls go down on both sides', () => {
  const p = new Pair().establish();
  p.pns.conn.placeCall();
  p.pump();
  p.pns.conn.stop('user hung up');
  assert.equal(p.pns.conn.state, 'wait-stop-reply');
  p.pump();
  assertAllClosed(p);
  assert.equal(p.pns.ev.down[0]?.reason, 'user hung up');
  assert.equal(p.pns.ev.closed[0], 'user hung up');
  assert.match(p.pac.ev.closed[0]!, /peer stopped the control connection \(reason: none \(1\)\)/);
  assert.deepEqual(types(p.pac.sent).slice(-1), ['stop-control-connection-reply']);
  assert.equal(p.pac.ev.closeCalls, 1);
  assert.equal(p.pns.ev.closeCalls, 1);
});

test('the PAC stops (shutdown): Call-Disconnect-Notify for the call, then StopCCRQ', () => {
  const p = new Pair().establish();
  p.pns.conn.placeCall();
  p.pump();
  p.pac.conn.stop('server shutting down', StopReason.LocalShutdown);
  p.pump();
  assert.deepEqual(types(p.pac.sent).slice(-2), [
    'call-disconnect-notify',
    'stop-control-connection-request',
  ]);
  assertAllClosed(p);
  assert.match(p.pns.ev.down[0]!.reason, /peer disconnected the call: admin shutdown \(3\)/);
  assert.match(p.pns.ev.closed[0]!, /reason: local shutdown \(3\)/);
  assert.equal(p.pac.ev.closed[0], 'server shutting down');
});

test('our stop times out when no StopCCRP comes', () => {
  const p = new Pair({ stopTimeoutMs: 5_000 }).establish();
  p.blackhole = true;
  p.pac.conn.stop('admin');
  p.advance(4_000);
  assert.equal(p.pac.conn.state, 'wait-stop-reply');
  p.advance(2_000);
  assert.equal(p.pac.ev.closed[0], 'admin (no Stop-Control-Connection-Reply within 5 s)');
});

test('the PNS clears the call: CCRQ → CDN(Request); the connection stays, another call fits', () => {
  const p = new Pair().establish();
  const id = p.pns.conn.placeCall();
  p.pump();
  assert.equal(p.pns.conn.clearCall(id, 'ppp finished'), true);
  p.pump();
  assert.deepEqual(types(p.pns.sent).slice(-1), ['call-clear-request']);
  assert.deepEqual(types(p.pac.sent).slice(-1), ['call-disconnect-notify']);
  assert.equal(p.pns.ev.down[0]?.reason, 'ppp finished');
  assert.equal(p.pac.ev.down[0]?.reason, 'peer cleared the call (Call-Clear-Request)');
  assert.equal(p.pac.callIds.size, 0);
  assert.equal(p.pns.callIds.size, 0);
  assert.equal(p.pac.conn.state, 'established');
  p.pns.conn.placeCall();
  p.pump();
  assert.equal(p.pac.ev.up.length, 2);
  assert.equal(p.pns.conn.clearCall(9999, 'unknown'), false);
});

test('the PAC clears the call: CDN(Admin Shutdown) reaches the PNS', () => {
  const p = new Pair().establish();
  p.pns.conn.placeCall();
  p.pump();
  const pacId = p.pac.ev.up[0]!.localCallId;
  p.pac.conn.clearCall(pacId, 'LCP terminated');
  p.pump();
  assert.equal(p.pac.ev.down[0]?.reason, 'LCP terminated');
  assert.match(p.pns.ev.down[0]!.reason, /admin shutdown/);
  assert.equal(p.pns.conn.calls().length, 0);
  assert.equal(p.pns.callIds.size, 0);
});

test('the PNS gives up on a call whose Call-Disconnect-Notify never comes', () => {
  const p = new Pair({}, { callTimeoutMs: 10_000 }).establish();
  const id = p.pns.conn.placeCall();
  p.pump();
  p.blackhole = true;
  p.pns.conn.clearCall(id, 'bye');
  p.advance(11_000);
  assert.equal(p.pns.ev.down[0]?.reason, 'bye (peer sent no Call-Disconnect-Notify)');
  assert.equal(p.pns.callIds.size, 0);
});

test('max calls: the PAC refuses a second call with General Error / No-Resource', () => {
  const p = new Pair({ maxCalls: 1 }, { maxCalls: 2 }).establish();
  p.pns.conn.placeCall();
  p.pns.conn.placeCall();
  p.pump();
  assert.equal(p.pac.ev.up.length, 1);
  assert.equal(p.pns.ev.up.length, 1);
  assert.match(
    p.pns.ev.down[0]!.reason,
    /peer refused the call: general error \(2\), error no-resource \(4\)/,
  );
  assert.equal(p.pns.callIds.size, 1, 'the refused call id was released');
  p.pns.conn.placeCall();
  assert.throws(() => p.pns.conn.placeCall(), /call limit reached \(2\)/, 'the PNS limit holds too');
});

test('onCallRequest refuses a call with its own result code', () => {
  const p = new Pair({
    onCallRequest: () => ({ accept: false, resultCode: 7, reason: 'maintenance' }),
  }).establish();
  p.pns.conn.placeCall();
  p.pump();
  assert.equal(p.pac.ev.up.length, 0);
  assert.equal(p.pac.callIds.size, 0);
  assert.match(p.pns.ev.down[0]!.reason, /do not accept \(7\)/);
  assert.ok(p.pac.log.has('refusing Outgoing-Call-Request from call id'));
});

test('Set-Link-Info from the PNS reaches the PAC call', () => {
  const p = new Pair().establish();
  p.pns.conn.placeCall();
  p.pump();
  const pacId = p.pac.ev.up[0]!.localCallId;
  p.pac.conn.receive(new Uint8Array(0)); // an empty chunk is harmless
  // The PNS API has no SLI command (the PPP layer sends none for sync framing); inject it as bytes.
  p.pac.conn.receive(
    // Set-Link-Info to the PAC's call id: send ACCM 0, receive ACCM 0xffffffff
    Uint8Array.from([
      0,
      24,
      0,
      1,
      0x1a,
      0x2b,
      0x3c,
      0x4d,
      0,
      15,
      0,
      0,
      pacId >> 8,
      pacId & 255,
      0,
      0,
      0,
      0,
      0,
      0,
      255,
      255,
      255,
      255,
    ]),
  );
  assert.deepEqual(
    p.pac.ev.linkInfo.map((l) => [l.call.localCallId, l.send, l.recv]),
    [[pacId, 0, 0xffffffff]],
  );
});

test('the TCP connection dropping takes the calls down and releases the ids', () => {
  const p = new Pair().establish();
  p.pns.conn.placeCall();
  p.pump();
  p.pac.conn.transportClosed();
  p.pns.conn.transportClosed();
  assertAllClosed(p);
  assert.equal(p.pac.ev.closeCalls, 0, 'close() is not called after transportClosed()');
  p.pac.conn.stop('late');
  p.pac.conn.receive(new Uint8Array(100));
  assert.equal(p.pac.ev.closed.length, 1);
});
