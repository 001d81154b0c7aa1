import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type ControlProtocolHandler, Fsm, type FsmState } from '../../src/ppp/fsm.ts';
import {
  type ConfigOption,
  encodeOptions,
  u16Option,
  type Verdict,
  VerdictBuilder,
} from '../../src/ppp/options.ts';
import { decodeControlPacket, encodeControlPacket } from '../../src/ppp/packet.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { MemoryLogger } from '../../src/util/log.ts';

/** A handler with one option (type 1, u16) that it requests and accepts only with value 1000. */
function rig(
  cfg: Partial<{ maxConfigure: number; maxTerminate: number; maxFailure: number; maxExchanges: number }> = {},
) {
  const clock = new ManualClock();
  const rejected: ConfigOption[][] = [];
  const sent: { code: number; id: number; data: Uint8Array }[] = [];
  const calls: string[] = [];
  const h: ControlProtocolHandler = {
    name: 'IPCP',
    protocol: 0x8021,
    reset: () => calls.push('reset'),
    buildRequest: () => [u16Option(1, 1000)],
    checkRequest: (opts: ConfigOption[], rejectIfDisagree: boolean): Verdict => {
      const v = new VerdictBuilder(rejectIfDisagree);
      for (const o of opts) {
        if (o.type !== 1) v.reject(o);
        else if (o.data[0] !== 0x03 || o.data[1] !== 0xe8) v.nak(o, u16Option(1, 1000));
      }
      return v.finish();
    },
    ackReceived: () => true,
    nakReceived: () => calls.push('nak'),
    rejectReceived: (opts) => {
      rejected.push(opts);
      calls.push('rej');
    },
    up: () => calls.push('tlu'),
    down: () => calls.push('tld'),
    started: () => calls.push('tls'),
    finished: (r) => calls.push(`tlf:${r}`),
  };
  const log = new MemoryLogger();
  const fsm = new Fsm(
    h,
    { restartMs: 3000, maxConfigure: 10, maxTerminate: 2, maxFailure: 5, ...cfg },
    {
      clock,
      log,
      send: (p) => sent.push(decodeControlPacket(p, 'ipcp')),
      peerMru: () => 1500,
    },
  );
  const recv = (code: number, id: number, opts: ConfigOption[] | Uint8Array) =>
    fsm.receive(encodeControlPacket(code, id, opts instanceof Uint8Array ? opts : encodeOptions(opts)));
  const last = () => sent.at(-1)!;
  return { clock, sent, calls, rejected, fsm, recv, last, log };
}

const GOOD = [u16Option(1, 1000)];

test('Initial → Starting → Req-Sent → Ack-Rcvd → Opened (tls, scr, irc, sca, tlu)', () => {
  const r = rig();
  r.fsm.open();
  assert.equal(r.fsm.state, 'starting');
  r.fsm.up();
  assert.equal(r.fsm.state, 'req-sent');
  assert.equal(r.last().code, 1);
  r.recv(2, r.last().id, GOOD);
  assert.equal(r.fsm.state, 'ack-rcvd');
  r.recv(1, 77, GOOD);
  assert.equal(r.fsm.state, 'opened');
  assert.deepEqual(r.last(), { code: 2, id: 77, data: encodeOptions(GOOD) });
  assert.deepEqual(r.calls, ['tls', 'reset', 'tlu']);
  assert.equal(r.clock.pending, 0);
});

test('Max-Configure: 10 Configure-Requests, then tlf and Stopped', () => {
  const r = rig();
  r.fsm.up();
  r.fsm.open();
  r.clock.advance(10 * 3000);
  assert.equal(r.sent.filter((s) => s.code === 1).length, 10);
  assert.equal(r.fsm.state, 'stopped');
  assert.deepEqual(r.calls.at(-1), 'tlf:no answer to 10 IPCP Configure-Requests');
});

test('Close: Max-Terminate Terminate-Requests carrying the reason, then Closed', () => {
  const r = rig();
  r.fsm.up();
  r.fsm.open();
  r.fsm.close('bye');
  assert.equal(r.fsm.state, 'closing');
  r.clock.advance(3000 * 3);
  const terms = r.sent.filter((s) => s.code === 5);
  assert.equal(terms.length, 2);
  assert.equal(Buffer.from(terms[0]!.data).toString(), 'bye');
  assert.equal(r.fsm.state, 'closed');
  assert.equal(r.calls.at(-1), 'tlf:bye');
});

test('Nak loop: after Max-Failure Configure-Naks the option is Rejected; an Ack resets the count', () => {
  const r = rig({ maxFailure: 2 });
  r.fsm.up();
  r.fsm.open();
  const bad = [u16Option(1, 1)];
  r.recv(1, 1, bad);
  r.recv(1, 2, bad);
  assert.equal(r.last().code, 3);
  r.recv(1, 3, bad);
  assert.equal(r.last().code, 4);
  assert.deepEqual(r.last().data, encodeOptions(bad));
  r.recv(1, 4, GOOD);
  assert.equal(r.last().code, 2);
  r.recv(1, 5, bad);
  assert.equal(r.last().code, 3);
});

test('Terminate-Request in Opened: tld, zrc, sta → Stopping, then tlf after one restart interval', () => {
  const r = rig();
  r.fsm.up();
  r.fsm.open();
  r.recv(2, r.last().id, GOOD);
  r.recv(1, 9, GOOD);
  r.recv(5, 33, new Uint8Array(0));
  assert.deepEqual(r.last(), { code: 6, id: 33, data: new Uint8Array(0) });
  assert.equal(r.fsm.state, 'stopping');
  r.clock.advance(3000);
  assert.equal(r.fsm.state, 'stopped');
  assert.deepEqual(r.calls.slice(-2), ['tld', 'tlf:peer requested termination']);
});

test('Code-Reject of an extended code is RXJ+ (Ack-Rcvd → Req-Sent); a duplicate Ack is discarded', () => {
  const r = rig();
  r.fsm.up();
  r.fsm.open();
  const id = r.last().id;
  r.recv(2, id, GOOD);
  r.recv(7, 1, new Uint8Array([14, 1, 0, 4]));
  assert.equal(r.fsm.state, 'req-sent');
  r.recv(2, id, GOOD);
  assert.equal(r.fsm.state, 'req-sent');
  r.clock.advance(3000); // TO+: a new request with a new id
  assert.notEqual(r.last().id, id);
  r.recv(2, r.last().id, GOOD);
  assert.equal(r.fsm.state, 'ack-rcvd');
});

test('received packets while Initial/Starting are dropped; in Closed a request gets Terminate-Ack', () => {
  const r = rig();
  r.recv(1, 1, GOOD);
  assert.equal(r.sent.length, 0);
  r.fsm.up();
  assert.equal(r.fsm.state, 'closed');
  r.recv(1, 2, GOOD);
  assert.deepEqual(r.last(), { code: 6, id: 2, data: new Uint8Array(0) });
});

const EVENTS = [
  'up',
  'down',
  'open',
  'close',
  'tick',
  'rcr+',
  'rcr-',
  'rca',
  'rcn',
  'rtr',
  'rta',
  'ruc',
  'rxj',
  'junk',
];

test('property: any event sequence stays on RFC 1661 states, never throws, and close ends quietly', () => {
  const states: FsmState[] = [
    'initial',
    'starting',
    'closed',
    'stopped',
    'closing',
    'stopping',
    'req-sent',
    'ack-rcvd',
    'ack-sent',
    'opened',
  ];
  fc.assert(
    fc.property(
      fc.array(fc.record({ e: fc.constantFrom(...EVENTS), bytes: fc.uint8Array({ maxLength: 12 }) }), {
        maxLength: 60,
      }),
      (events) => {
        const r = rig();
        for (const { e, bytes } of events) {
          const id = r.sent.filter((s) => s.code === 1).at(-1)?.id ?? 0;
          if (e === 'up') r.fsm.up();
          else if (e === 'down') r.fsm.down();
          else if (e === 'open') r.fsm.open();
          else if (e === 'close') r.fsm.close('x');
          else if (e === 'tick') r.clock.advance(3000);
          else if (e === 'rcr+') r.recv(1, 5, GOOD);
          else if (e === 'rcr-') r.recv(1, 5, [u16Option(1, 2)]);
          else if (e === 'rca') r.recv(2, id, GOOD);
          else if (e === 'rcn') r.recv(3, id, GOOD);
          else if (e === 'rtr') r.recv(5, 9, new Uint8Array(0));
          else if (e === 'rta') r.recv(6, 9, new Uint8Array(0));
          else if (e === 'ruc') r.recv(0x44, 9, new Uint8Array(0));
          else if (e === 'rxj') r.recv(7, 9, bytes);
          else r.fsm.receive(bytes);
          assert.ok(states.includes(r.fsm.state));
        }
        r.fsm.close('end');
        r.clock.advance(60_000);
        assert.ok(['initial', 'closed', 'stopped'].includes(r.fsm.state), r.fsm.state);
        assert.equal(r.clock.pending, 0);
        // tlu and tld alternate: never two ups without a down in between.
        let up = false;
        for (const c of r.calls) {
          if (c === 'tlu') {
            assert.equal(up, false);
            up = true;
          } else if (c === 'tld') {
            assert.equal(up, true);
            up = false;
          }
        }
        assert.equal(up, false);
      },
    ),
    { numRuns: 400 },
  );
});

test('Max-Failure Naks received: the Nak-ed option we sent is handled as rejected (pppd rnakloops)', () => {
  const r = rig({ maxFailure: 3 });
  r.fsm.up();
  r.fsm.open();
  for (let i = 0; i < 3; i++) r.recv(3, r.last().id, [u16Option(1, 7)]);
  assert.deepEqual(r.calls.slice(-3), ['nak', 'nak', 'rej']);
  assert.deepEqual(r.rejected, [GOOD]); // our option as we sent it, not the peer's value
  assert.match(r.log.text(), /3 Configure-Naks without agreeing; no longer requesting/);
  assert.equal(r.last().code, 1);
  // An Ack of our request is agreement: the count starts again.
  r.recv(2, r.last().id, GOOD);
  r.clock.advance(3000); // TO+ in Ack-Rcvd: a new request
  r.recv(3, r.last().id, [u16Option(1, 7)]);
  assert.equal(r.calls.at(-1), 'nak');
});

test('a peer that Naks forever (options we never requested): the negotiation ends, bounded, with a reason', () => {
  const r = rig({ maxConfigure: 10, maxFailure: 5 });
  r.fsm.up();
  r.fsm.open();
  for (let i = 0; i < 1000 && r.fsm.state === 'req-sent'; i++) r.recv(3, r.last().id, [u16Option(9, i)]);
  assert.equal(r.fsm.state, 'stopped');
  assert.equal(r.sent.filter((s) => s.code === 1).length, 45); // 3 × (Max-Configure + Max-Failure)
  assert.match(
    r.calls.at(-1)!,
    /^tlf:IPCP negotiation did not converge: 45 Configure-Requests, Naks and Rejects/,
  );
  assert.equal(r.clock.pending, 0);
});

test('a peer that acks us but sends disagreeing requests forever: bounded too', () => {
  const r = rig({ maxExchanges: 20 });
  r.fsm.up();
  r.fsm.open();
  r.recv(2, r.last().id, GOOD);
  assert.equal(r.fsm.state, 'ack-rcvd');
  const state = (): string => r.fsm.state;
  for (let i = 0; i < 1000 && state() !== 'stopped'; i++) r.recv(1, i & 0xff, [u16Option(1, 1)]);
  assert.equal(r.fsm.state, 'stopped');
  const answers = r.sent.filter((s) => s.code === 3 || s.code === 4).length;
  assert.equal(answers, 19); // plus our one Configure-Request: 20 exchanges
  assert.match(r.calls.at(-1)!, /did not converge/);
});

test('a converging negotiation after a few Naks and the loss of some packets opens; Opened resets the bound', () => {
  const r = rig({ maxExchanges: 6 });
  r.fsm.up();
  r.fsm.open();
  r.clock.advance(3000);
  r.recv(3, r.last().id, [u16Option(1, 7)]);
  r.recv(1, 1, [u16Option(1, 1)]); // Nak'd
  const req = r.sent.filter((x) => x.code === 1).at(-1)!;
  r.recv(1, 2, GOOD);
  r.recv(2, req.id, GOOD);
  assert.equal(r.fsm.state, 'opened');
  r.recv(1, 3, GOOD); // renegotiation from Opened gets the full bound again
  for (let i = 0; i < 4; i++) r.recv(3, r.sent.filter((x) => x.code === 1).at(-1)!.id, [u16Option(9, i)]);
  assert.equal(r.fsm.state, 'ack-sent');
  assert.equal(r.sent.filter((x) => x.code === 1).length, 8);
});
