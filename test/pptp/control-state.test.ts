// One control connection driven by hand-made messages: wrong-state messages, timeouts, bad input.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CallIdAllocator } from '../../src/pptp/call-ids.ts';
import { type ControlMessage, encodeControlMessage } from '../../src/pptp/codec.ts';
import type { StartControlConnectionRequest } from '../../src/pptp/messages.ts';
import { fromHex } from '../../src/wire/bytes.ts';
import { ocrq, SCCRP, SCCRQ, Solo } from './harness.ts';
import { SAMPLES } from './samples.ts';

function pacEstablished(extra = {}): Solo {
  const s = new Solo('pac', extra);
  s.conn.start();
  s.feed(SCCRQ);
  assert.equal(s.conn.state, 'established');
  s.take();
  return s;
}

test('PAC: the Start-Control-Connection-Reply advertises version 1.0, capabilities and max channels', () => {
  const s = new Solo('pac', { hostName: 'gw', maxCalls: 3, firmwareRevision: 0x0203 });
  s.conn.start();
  assert.equal(s.conn.state, 'wait-ctl-request');
  s.feed(SCCRQ);
  assert.deepEqual(s.take(), [
    {
      type: 'start-control-connection-reply',
      protocolVersion: 0x0100,
      resultCode: 1,
      errorCode: 0,
      framingCapabilities: 3,
      bearerCapabilities: 3,
      maxChannels: 3,
      firmwareRevision: 0x0203,
      hostName: 'gw',
      vendor: 'poptop',
    },
  ]);
});

test('PAC: an unsupported protocol version gets result 5 and the connection is closed', () => {
  const s = new Solo('pac');
  s.conn.start();
  s.feed({ ...SCCRQ, protocolVersion: 0x0200 } as ControlMessage);
  const reply = s.take()[0];
  assert.equal(reply?.type, 'start-control-connection-reply');
  assert.equal((reply as { resultCode: number }).resultCode, 5);
  assert.equal(s.conn.state, 'closed');
  assert.equal(s.ev.closeCalls, 1);
  assert.match(s.ev.closed[0]!, /protocol version 0x200 is not supported/);
});

test('PAC: an Outgoing-Call-Request before SCCRQ gets General Error / Not-Connected, then close', () => {
  const s = new Solo('pac');
  s.conn.start();
  s.feed(ocrq(77));
  const [reply] = s.take();
  assert.deepEqual(reply && { type: reply.type, ...pick(reply, ['peerCallId', 'resultCode', 'errorCode']) }, {
    type: 'outgoing-call-reply',
    peerCallId: 77,
    resultCode: 2,
    errorCode: 1,
  });
  assert.equal(s.conn.state, 'closed');
  assert.match(
    s.ev.closed[0]!,
    /protocol violation: outgoing-call-request before the control connection was established/,
  );
  assert.equal(s.callIds.size, 0);
});

test('PAC: an Incoming-Call-Request before SCCRQ gets General Error / Not-Connected too', () => {
  const s = new Solo('pac');
  s.conn.start();
  s.feed(SAMPLES[8]!);
  assert.deepEqual(pick(s.take()[0]!, ['type', 'resultCode', 'errorCode']), {
    type: 'incoming-call-reply',
    resultCode: 2,
    errorCode: 1,
  });
  assert.equal(s.conn.state, 'closed');
});

test('an Echo-Request is always answered; before establishment with Not-Connected', () => {
  const s = new Solo('pac');
  s.conn.start();
  s.feed({ type: 'echo-request', identifier: 42 });
  assert.deepEqual(s.take(), [{ type: 'echo-reply', identifier: 42, resultCode: 2, errorCode: 1 }]);
  assert.equal(s.conn.state, 'wait-ctl-request');
  s.feed(SCCRQ, { type: 'echo-request', identifier: 43 });
  assert.deepEqual(s.take()[1], { type: 'echo-reply', identifier: 43, resultCode: 1, errorCode: 0 });
});

test('PAC: no SCCRQ within establishTimeoutMs closes the connection', () => {
  const s = new Solo('pac', { establishTimeoutMs: 30_000 });
  s.conn.start();
  s.clock.advance(29_999);
  assert.equal(s.conn.state, 'wait-ctl-request');
  s.clock.advance(1);
  assert.deepEqual(s.ev.closed, ['no Start-Control-Connection-Request within 30 s']);
  assert.equal(s.ev.closeCalls, 1);
});

test('PAC: a second SCCRQ gets "already exists" and changes nothing', () => {
  const s = pacEstablished();
  s.feed(SCCRQ);
  assert.deepEqual(pick(s.take()[0]!, ['type', 'resultCode']), {
    type: 'start-control-connection-reply',
    resultCode: 3,
  });
  assert.equal(s.conn.state, 'established');
});

test('PAC: an SCCRP is a protocol violation: Stop-Control-Connection-Request, then close on the reply', () => {
  const s = pacEstablished();
  s.feed(SCCRP);
  assert.deepEqual(s.take(), [{ type: 'stop-control-connection-request', reason: 1 }]);
  assert.equal(s.conn.state, 'wait-stop-reply');
  s.feed({ type: 'echo-request', identifier: 1 }, ocrq(5));
  assert.equal(s.take().length, 1, 'echo answered while stopping, the call request dropped');
  s.feed({ type: 'stop-control-connection-reply', resultCode: 1, errorCode: 0 });
  assert.equal(s.conn.state, 'closed');
  assert.match(
    s.ev.closed[0]!,
    /protocol violation: unexpected start-control-connection-reply in state established/,
  );
  assert.ok(s.log.has('protocol violation'));
});

test('PAC: Incoming-Call-Request is refused with "do not accept"', () => {
  const s = pacEstablished();
  s.feed(SAMPLES[8]!);
  assert.deepEqual(pick(s.take()[0]!, ['type', 'peerCallId', 'resultCode']), {
    type: 'incoming-call-reply',
    peerCallId: 0x2222,
    resultCode: 3,
  });
  assert.equal(s.conn.state, 'established');
});

test('PAC: unknown call ids in CCRQ/SLI/CDN and unexpected replies are counted and dropped', () => {
  const s = pacEstablished();
  s.feed(
    { type: 'call-clear-request', callId: 999 },
    { type: 'set-link-info', peerCallId: 999, sendAccm: 0, recvAccm: 0 },
    {
      type: 'call-disconnect-notify',
      callId: 999,
      resultCode: 1,
      errorCode: 0,
      causeCode: 0,
      callStatistics: '',
    },
    SAMPLES[7]!, // Outgoing-Call-Reply
    SAMPLES[9]!, // Incoming-Call-Reply
    SAMPLES[10]!, // Incoming-Call-Connected
    { type: 'echo-reply', identifier: 5, resultCode: 1, errorCode: 0 },
    { type: 'stop-control-connection-reply', resultCode: 1, errorCode: 0 },
  );
  assert.deepEqual(s.take(), []);
  assert.equal(s.conn.drops.total, 8);
  assert.equal(s.conn.drops.get('Call-Clear-Request for an unknown call id'), 1);
  assert.ok(s.log.has('dropped PPTP control message: Set-Link-Info for an unknown call id (call id 999)'));
  assert.equal(s.conn.state, 'established');
});

test('PAC: a Call-Clear-Request carrying the PAC call id (some clients) still clears the call', () => {
  const s = pacEstablished();
  s.feed(ocrq(10));
  const ours = (s.take()[0] as { callId: number }).callId;
  s.feed({ type: 'call-clear-request', callId: ours });
  assert.deepEqual(pick(s.take()[0]!, ['type', 'callId', 'resultCode']), {
    type: 'call-disconnect-notify',
    callId: ours,
    resultCode: 4,
  });
  assert.equal(s.callIds.size, 0);
});

test('PNS: a refused SCCRP closes with the result in words', () => {
  const s = new Solo('pns');
  s.conn.start();
  assert.equal(s.take()[0]?.type, 'start-control-connection-request');
  s.feed({ ...SCCRP, resultCode: 4 } as ControlMessage);
  assert.deepEqual(s.ev.closed, ['peer refused the control connection: not authorized (4), error none (0)']);
});

test('PNS: a PAC speaking version 2 is stopped with Stop-Protocol', () => {
  const s = new Solo('pns');
  s.conn.start();
  s.take();
  s.feed({ ...SCCRP, protocolVersion: 0x0200 } as ControlMessage);
  assert.deepEqual(s.take(), [{ type: 'stop-control-connection-request', reason: 2 }]);
});

test('PNS: an Outgoing-Call-Request from the PAC is refused; WAN-Error-Notify is logged', () => {
  const s = new Solo('pns');
  s.conn.start();
  s.feed(SCCRP);
  s.take();
  s.feed(ocrq(3));
  assert.deepEqual(pick(s.take()[0]!, ['type', 'resultCode']), {
    type: 'outgoing-call-reply',
    resultCode: 7,
  });
  const id = s.conn.placeCall();
  s.take();
  s.feed({ ...SAMPLES[7]!, peerCallId: id } as ControlMessage);
  s.feed({ ...SAMPLES[13]!, peerCallId: id } as ControlMessage);
  assert.ok(s.log.has(/peer reports WAN errors crc=1 framing=2/));
});

test('PNS: no Outgoing-Call-Reply within callTimeoutMs: Call-Clear-Request and the call is down', () => {
  const s = new Solo('pns', { callTimeoutMs: 5_000, echoIntervalMs: 3_600_000 });
  s.conn.start();
  s.feed(SCCRP);
  const id = s.conn.placeCall();
  s.take();
  s.clock.advance(5_000);
  assert.deepEqual(s.take(), [{ type: 'call-clear-request', callId: id }]);
  assert.equal(s.ev.down[0]?.reason, 'peer did not answer Outgoing-Call-Request within 5 s');
  assert.equal(s.callIds.size, 0);
  assert.throws(() => new Solo('pac').conn.placeCall(), /only a PNS/);
});

test('PNS: a CDN that carries our own call id (accel-ppp style) also ends the call', () => {
  const s = new Solo('pns');
  s.conn.start();
  s.feed(SCCRP);
  const id = s.conn.placeCall();
  s.feed({ ...SAMPLES[7]!, peerCallId: id, callId: 500 } as ControlMessage);
  s.feed({
    type: 'call-disconnect-notify',
    callId: id,
    resultCode: 0,
    errorCode: 0,
    causeCode: 0,
    callStatistics: '',
  });
  assert.match(s.ev.down[0]!.reason, /peer disconnected the call: code 0/);
});

test('any received message resets the silence timer', () => {
  const s = pacEstablished({ echoIntervalMs: 60_000, callDeadlineMs: 0 });
  s.clock.advance(50_000);
  s.feed({ type: 'echo-request', identifier: 9 });
  s.take();
  s.clock.advance(50_000);
  assert.deepEqual(s.take(), [], 'only 50 s of silence so far');
  s.clock.advance(10_000);
  assert.equal(s.take()[0]?.type, 'echo-request');
  s.clock.advance(30_000);
  s.feed({ type: 'echo-reply', identifier: 999, resultCode: 1, errorCode: 0 });
  assert.equal(s.conn.drops.get('Echo-Reply with an unexpected identifier'), 1);
  s.clock.advance(30_000);
  assert.match(s.ev.closed[0] ?? '', /peer did not answer Echo-Request for 60 s/);
});

test('malformed input when established: Stop-Control-Connection-Request, log line in words, close', () => {
  const s = pacEstablished();
  s.conn.receive(fromHex('ffff 0001 1a2b3c4d'));
  assert.deepEqual(s.take(), [{ type: 'stop-control-connection-request', reason: 1 }]);
  assert.equal(s.conn.state, 'closed');
  assert.equal(s.ev.closeCalls, 1);
  assert.equal(s.ev.closed[0], 'malformed control message: pptp: control message length 65535 > 220');
  assert.ok(s.log.has('malformed control message'));
});

test('malformed input before establishment: just close', () => {
  const s = new Solo('pac');
  s.conn.start();
  s.conn.receive(fromHex('0010 0001 00000000'));
  assert.deepEqual(s.take(), []);
  assert.match(s.ev.closed[0]!, /magic cookie 0x00000000 is wrong/);
});

test('truncated input then TCP close: nothing decoded, closed once', () => {
  const s = pacEstablished();
  s.conn.receive(encodeControlMessage(ocrq(1)).subarray(0, 100));
  assert.equal(s.ev.up.length, 0);
  s.conn.transportClosed();
  assert.deepEqual(s.ev.closed, ['TCP connection closed']);
  assert.equal(s.ev.closeCalls, 0);
});

test('a callback that throws closes the connection instead of escaping receive()', () => {
  const s = new Solo('pac', {
    onCallUp: () => {
      throw new Error('boom');
    },
  });
  s.conn.start();
  s.feed(SCCRQ);
  assert.doesNotThrow(() => s.feed(ocrq(1)));
  assert.equal(s.conn.state, 'closed');
  assert.match(s.ev.closed[0]!, /internal error .*boom/);
  assert.equal(s.callIds.size, 0);
});

test('property: random bytes never throw, close at most once, and leave no call id behind', () => {
  fc.assert(
    fc.property(
      fc.constantFrom<'pac' | 'pns'>('pac', 'pns'),
      fc.boolean(),
      fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 12 }),
      (role, establishFirst, chunks) => {
        const s = new Solo(role);
        s.conn.start();
        if (establishFirst) s.feed(role === 'pac' ? SCCRQ : SCCRP);
        for (const c of chunks) s.conn.receive(c);
        s.clock.advance(200_000);
        s.conn.transportClosed();
        assert.equal(s.ev.closed.length, 1);
        assert.ok(s.ev.closeCalls <= 1);
        assert.equal(s.callIds.size, 0);
      },
    ),
    { numRuns: 500 },
  );
});

test('property: random valid message sequences keep the invariants (call limit, ids released)', () => {
  const shared = new CallIdAllocator();
  const msgArb = fc.oneof(
    fc.constantFrom(...SAMPLES),
    fc.integer({ min: 1, max: 6 }).map((id) => ocrq(id)),
    fc.integer({ min: 1, max: 6 }).map((id): ControlMessage => ({ type: 'call-clear-request', callId: id })),
  );
  fc.assert(
    fc.property(
      fc.constantFrom<'pac' | 'pns'>('pac', 'pns'),
      fc.array(msgArb, { maxLength: 25 }),
      (role, msgs) => {
        const s = new Solo(role, { maxCalls: 2 }, shared);
        const placed: number[] = [];
        s.conn.start();
        s.feed(role === 'pac' ? SCCRQ : SCCRP);
        for (const m of msgs) {
          s.feed(m);
          assert.ok(s.conn.calls().length <= 2);
          if (role === 'pns' && s.conn.state === 'established' && s.conn.calls().length < 2) {
            placed.push(s.conn.placeCall());
          }
        }
        s.conn.stop('end of test');
        s.conn.transportClosed();
        assert.equal(s.ev.closed.length, 1);
        // Every call placed (PNS) or brought up (PAC) went down exactly once.
        const started = role === 'pns' ? placed : s.ev.up.map((c) => c.localCallId);
        const ended = s.ev.down.map((d) => d.call.localCallId);
        assert.deepEqual([...ended].sort(), [...started].sort());
        assert.equal(shared.size, 0);
      },
    ),
    { numRuns: 300 },
  );
});

test('call ids are unique across all connections sharing an allocator, and not reused while alive', () => {
  let n = 0;
  const colliding = new CallIdAllocator(() => [7, 7, 9, 7, 9, 11][n++ % 6]!);
  const rigs = Array.from({ length: 40 }, () => new Solo('pac', {}, colliding));
  const ids = new Set<number>();
  for (const [i, s] of rigs.entries()) {
    s.conn.start();
    s.feed(SCCRQ, ocrq(i + 1));
    const rep = s.take()[1] as { callId: number; resultCode: number };
    assert.equal(rep.resultCode, 1);
    assert.ok(!ids.has(rep.callId), `id ${rep.callId} handed out twice`);
    ids.add(rep.callId);
  }
  assert.equal(colliding.size, 40);
  for (const s of rigs) s.conn.transportClosed();
  assert.equal(colliding.size, 0);
});

function pick(m: ControlMessage, keys: string[]): Record<string, unknown> {
  const r = m as unknown as Record<string, unknown>;
  return Object.fromEntries(keys.map((k) => [k, r[k]]));
}

test('call deadline: a PAC connection with no call placed within callDeadlineMs is stopped with the reason', () => {
  const s = pacEstablished(); // the default: 30 s for a PAC
  s.clock.advance(29_999);
  assert.deepEqual(s.take(), []);
  s.clock.advance(1);
  assert.deepEqual(s.take(), [{ type: 'stop-control-connection-request', reason: 1 }]);
  s.feed({ type: 'stop-control-connection-reply', resultCode: 1, errorCode: 0 });
  assert.deepEqual(s.ev.closed, ['no call placed within 30 s of the control connection starting']);
  assert.ok(s.log.has('stopping the control connection: no call placed within 30 s'));
});

test('call deadline: a peer that only answers echoes does not stay; counted from start, not from SCCRQ', () => {
  const s = new Solo('pac', { callDeadlineMs: 10_000, echoIntervalMs: 1_000 });
  s.conn.start();
  s.clock.advance(4_000);
  s.feed(SCCRQ);
  for (let t = 0; t < 5_000; t += 1_000) {
    s.clock.advance(1_000);
    const echo = s.take().find((m) => m.type === 'echo-request');
    if (echo?.type === 'echo-request')
      s.feed({ type: 'echo-reply', identifier: echo.identifier, resultCode: 1, errorCode: 0 });
  }
  assert.equal(s.conn.state, 'established');
  s.clock.advance(1_000);
  assert.equal(s.conn.state, 'wait-stop-reply');
  s.clock.advance(10_000); // no Stop-Control-Connection-Reply either
  assert.match(s.ev.closed[0]!, /^no call placed within 10 s of the control connection starting/);
});

test('call deadline: a placed call cancels it; it counts again after the last call ends; 0 disables it', () => {
  const s = pacEstablished({ callDeadlineMs: 10_000 });
  s.feed(ocrq(5));
  s.clock.advance(60_000);
  assert.equal(s.conn.state, 'established');
  s.feed({ type: 'call-clear-request', callId: 5 });
  s.take();
  s.clock.advance(10_000);
  assert.deepEqual(s.take(), [{ type: 'stop-control-connection-request', reason: 1 }]);
  s.feed({ type: 'stop-control-connection-reply', resultCode: 1, errorCode: 0 });
  assert.deepEqual(s.ev.closed, ['no call placed within 10 s of the last call ending']);
  const off = pacEstablished({ callDeadlineMs: 0, echoIntervalMs: 600_000 });
  off.clock.advance(300_000);
  assert.equal(off.conn.state, 'established');
  assert.equal(off.clock.pending, 1, 'only the keepalive timer');
});

test('a session that stops with its last call sends one Stop-Control-Connection-Request, not two', () => {
  const s: Solo = new Solo('pac', { onCallDown: (_c, r) => s.conn.stop(r) });
  s.conn.start();
  s.feed(SCCRQ, ocrq(5));
  s.take();
  s.conn.stop('admin');
  assert.deepEqual(
    s.take().map((m) => m.type),
    ['call-disconnect-notify', 'stop-control-connection-request'],
  );
});

test('crossed Stop-Control-Connection-Requests (RFC 2637 §2.3): the PAC answers with a Reply, result 1, then closes', () => {
  const s: Solo = new Solo('pac', { onCallDown: (_c, r) => s.conn.stop(r) });
  s.conn.start();
  s.feed(SCCRQ, ocrq(5));
  s.take();
  // The PAC ends the connection after its last call; the PNS's own Stop crosses ours.
  s.conn.clearCall([...s.conn.calls()][0]!.localCallId, 'idle timeout');
  assert.equal(s.conn.state, 'wait-stop-reply');
  s.feed({ type: 'stop-control-connection-request', reason: 1 });
  assert.deepEqual(s.take().slice(-2), [
    { type: 'stop-control-connection-request', reason: 1 },
    { type: 'stop-control-connection-reply', resultCode: 1, errorCode: 0 },
  ]);
  assert.equal(s.conn.state, 'closed');
  assert.equal(s.ev.closeCalls, 1);
  assert.deepEqual(s.ev.closed, [
    "idle timeout (crossed with the peer's Stop-Control-Connection-Request, reason: none (1))",
  ]);
});

test('floods of Outgoing-Call-Requests, WAN-Error-Notify and Incoming-Call-Requests: summarised, answers bounded', () => {
  const s = pacEstablished();
  s.feed(ocrq(5));
  const call = s.take()[0]!;
  assert.equal(call.type, 'outgoing-call-reply');
  const wan: ControlMessage = {
    type: 'wan-error-notify',
    peerCallId: call.type === 'outgoing-call-reply' ? call.callId : 0,
    crcErrors: 1,
    framingErrors: 2,
    hardwareOverruns: 0,
    bufferOverruns: 0,
    timeoutErrors: 0,
    alignmentErrors: 0,
  };
  const icrq: ControlMessage = {
    type: 'incoming-call-request',
    callId: 9,
    callSerial: 1,
    bearerType: 1,
    physicalChannelId: 0,
    dialedNumber: '',
    dialingNumber: '',
    subaddress: '',
  };
  const flood = Buffer.concat(
    Array.from({ length: 3000 }, (_, i) => encodeControlMessage([ocrq(6 + (i % 100)), wan, icrq][i % 3]!)),
  );
  const before = s.log.lines.length;
  s.conn.receive(flood);
  const lines = s.log.lines.slice(before).map((l) => l.line);
  assert.ok(lines.length <= 20, `${lines.length} log lines:\n${lines.join('\n')}`);
  assert.ok(
    lines.some((l) =>
      /refusing Outgoing-Call-Request: already 1 call\(s\), the limit \(1000 times so far\)/.test(l),
    ),
  );
  assert.ok(lines.some((l) => /peer reports WAN errors crc=1 framing=2 .*\(1000 times so far\)/.test(l)));
  assert.ok(lines.some((l) => /refusing Incoming-Call-Request 9.*\(1000 times so far\)/.test(l)));
  const answers = s.take();
  assert.equal(answers.length, 19, 'the answer burst (20, one spent on the accepted call), then drops');
  assert.equal(s.conn.state, 'established');
  assert.equal(
    s.conn.drops.get('request not answered: the peer floods requests'),
    1981,
    '990 Outgoing- and 991 Incoming-Call-Requests',
  );
  s.clock.advance(5_000);
  s.feed(ocrq(7), ocrq(8));
  assert.equal(s.take().length, 2, 'the budget refills at one answer per second');
});

test('an Echo-Request flood is answered within the budget, the rest counted', () => {
  const s = pacEstablished({ answerBurst: 5 });
  s.conn.receive(
    Buffer.concat(
      Array.from({ length: 100 }, (_, i) => encodeControlMessage({ type: 'echo-request', identifier: i })),
    ),
  );
  assert.equal(s.take().length, 5);
  assert.equal(s.conn.drops.get('request not answered: the peer floods requests'), 95);
});

test('peer strings reach the log quoted and escaped, never raw', () => {
  const s = new Solo('pac');
  s.conn.start();
  s.feed({
    ...(SCCRQ as StartControlConnectionRequest),
    hostName: 'evil\nwarn  forged line "x"',
    vendor: 'v\u001b[31m',
  });
  const line = s.log.lines.find((l) => l.line.includes('control connection established'))!.line;
  assert.ok(!line.includes('\n') && !line.includes('\u001b'), line);
  assert.ok(line.includes('host "evil\\nwarn  forged line \\"x\\""'), line);
  assert.ok(line.includes('vendor "v\\x1b[31m"'), line); // quote(): the same escapes as every other log line
});
