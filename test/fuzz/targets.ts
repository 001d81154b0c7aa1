/**
 * The fuzz targets: one function per codec, automaton or parser, taking arbitrary bytes and throwing
 * only when an invariant is broken (an exception of an undocumented kind escaped, a round trip
 * changed something, a buffer grew past its bound, an automaton broke its contract). Expected errors
 * (ProtocolError from a codec, ConfigError from a parser) are part of the contract and not findings.
 *
 * Each target also names a structure-aware generator (fast-check) and, for text inputs, a dictionary
 * of tokens the mutator splices in. Seeds live in test/fuzz/corpus/<name>/ (scripts/fuzz-seeds.ts).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { parseChapSecrets } from '../../src/config/chap-secrets-file.ts';
import { ConfigError, type ConfigIssue } from '../../src/config/issues.ts';
import { parsePppdOptions } from '../../src/config/options-file.ts';
import { parsePptpdConf } from '../../src/config/pptpd-conf.ts';
import {
  decodeGreHeader,
  encodeGreHeader,
  GRE_FLAGS_RESERVED_MASK,
  GreHeaderError,
} from '../../src/gre/codec.ts';
import { decodeChapPacket, describeChapPacket, encodeChapPacket } from '../../src/ppp/auth/chap-codec.ts';
import { createAuthPeer } from '../../src/ppp/auth/index.ts';
import { describeMsChapFailure, parseMsChapFailure } from '../../src/ppp/auth/ms-common.ts';
import { decodePapPacket, describePapPacket, encodePapPacket } from '../../src/ppp/auth/pap-codec.ts';
import type { AuthMethod } from '../../src/ppp/auth/types.ts';
import { CcpHandler } from '../../src/ppp/ccp/handler.ts';
import { describeMppe, mppeValue } from '../../src/ppp/ccp/mppe-option.ts';
import { PppProtocol } from '../../src/ppp/constants.ts';
import { decodeFrame, encodeFrame } from '../../src/ppp/frame.ts';
import type { ControlProtocolHandler } from '../../src/ppp/fsm-types.ts';
import { IpcpHandler } from '../../src/ppp/ipcp/handler.ts';
import { Ipv6cpHandler } from '../../src/ppp/ipv6cp/handler.ts';
import { LcpHandler } from '../../src/ppp/lcp/handler.ts';
import { decodeAuthData, describeLcpOption } from '../../src/ppp/lcp/options.ts';
import { PppLink } from '../../src/ppp/link.ts';
import { createMppe } from '../../src/ppp/mppe/cipher.ts';
import { decodeOptions, encodeOptions } from '../../src/ppp/options.ts';
import { decodeControlPacket, encodeControlPacket } from '../../src/ppp/packet.ts';
import { defaultPolicy, type PppPolicy } from '../../src/ppp/policy.ts';
import { CallIdAllocator } from '../../src/pptp/call-ids.ts';
import {
  type ControlMessage,
  decodeControlMessage,
  describeControlMessage,
  encodeControlMessage,
} from '../../src/pptp/codec.ts';
import { CONTROL_MESSAGE_LENGTH, MAX_CONTROL_MESSAGE_LENGTH } from '../../src/pptp/constants.ts';
import { ControlFramer } from '../../src/pptp/framer.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { MemoryLogger, nullLogger } from '../../src/util/log.ts';
import { ProtocolError } from '../../src/wire/errors.ts';
import { parseIPv4 } from '../../src/wire/ip.ts';
import { FIXTURE_DIR, parseFixture, recordedServerOptions } from '../interop/record-fixture.ts';
import { Solo } from '../pptp/harness.ts';
import { splitRecords } from './records.ts';

export interface FuzzTarget {
  name: string;
  /** One line: what is fuzzed and which invariants are checked. */
  what: string;
  /** Throws (AssertionError or the escaped exception) when an invariant is broken. */
  run(input: Uint8Array): void;
  /** Inputs built from the structure (valid messages with random fields), mutated by the engine too. */
  generate?: fc.Arbitrary<Uint8Array>;
  /** Tokens spliced in by the mutator (text formats). */
  dictionary?: readonly string[];
  /** Upper bound on the size of random inputs. */
  maxLength: number;
}

/** Run `fn`; an exception that is not an instance of one of `allowed` escapes (a finding). */
function expectOnly<T>(fn: () => T, ...allowed: (abstract new (...a: never[]) => Error)[]): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (allowed.some((cls) => e instanceof cls)) return undefined;
    throw e;
  }
}

const textOf = (input: Uint8Array) => Buffer.from(input).toString('utf8');
const bytesOf = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));

// ---------------------------------------------------------------------------------------------
// PPTP control messages

function checkControlMessage(msg: ControlMessage): void {
  describeControlMessage(msg);
  const again = decodeControlMessage(encodeControlMessage(msg));
  assert.deepEqual(again, msg, 'decode(encode(decode(x))) = decode(x)');
}

const pptpCodec: FuzzTarget = {
  name: 'pptp-codec',
  what: 'decodeControlMessage at an offset: ProtocolError only; decode→encode→decode is the identity',
  maxLength: 300,
  run(input) {
    // The first octet picks an offset (0..3) so that decoding at an offset is exercised as well.
    const offset = (input[0] ?? 0) & 3;
    const msg = expectOnly(() => decodeControlMessage(input.subarray(1), offset), ProtocolError);
    if (msg) checkControlMessage(msg);
  },
};

const pptpFramer: FuzzTarget = {
  name: 'pptp-framer',
  what: 'ControlFramer on a chunked stream: ProtocolError only, sticky errors, at most one partial message held, same messages whatever the chunking',
  maxLength: 2000,
  run(input) {
    const chunks = splitRecords(input).map((r) => r.data);
    const framer = new ControlFramer();
    const got: ControlMessage[] = [];
    let error: ProtocolError | undefined;
    for (const chunk of chunks) {
      framer.push(chunk.slice());
      if (error) {
        assert.throws(
          () => framer.next(),
          (e) => e === error,
          'after an error every next() throws it again',
        );
        continue;
      }
      try {
        for (let m = framer.next(); m; m = framer.next()) got.push(m);
        assert.ok(
          framer.buffered < MAX_CONTROL_MESSAGE_LENGTH,
          `framer holds ${framer.buffered} octets, more than one partial message`,
        );
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
        error = e;
        assert.equal(framer.buffered, 0, 'the buffer is freed after an error');
      }
    }
    // The same bytes in one piece give the same messages and the same verdict.
    const whole = new ControlFramer();
    const all = Buffer.concat(chunks);
    whole.push(new Uint8Array(all));
    const again: ControlMessage[] = [];
    let wholeError: unknown;
    try {
      for (let m = whole.next(); m; m = whole.next()) again.push(m);
    } catch (e) {
      wholeError = e;
    }
    assert.deepEqual(again, got, 'messages independent of chunking');
    assert.equal(wholeError === undefined, error === undefined, 'error independent of chunking');
    if (error) assert.equal((wholeError as ProtocolError).code, error.code);
    for (const m of got) checkControlMessage(m);
  },
};

const CONTROL_TYPES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const LENGTHS: Readonly<Record<number, number>> = CONTROL_MESSAGE_LENGTH;

/** A well-formed header of a random type with a random body: past the header checks every time. */
const controlMessageBytes = fc
  .record({
    type: fc.constantFrom(...CONTROL_TYPES),
    body: fc.uint8Array({ minLength: 208, maxLength: 208 }),
  })
  .map(({ type, body }) => {
    const length = LENGTHS[type]!;
    const out = new Uint8Array(length);
    out.set(body.subarray(0, length - 12), 12);
    out.set([length >> 8, length & 0xff, 0, 1, 0x1a, 0x2b, 0x3c, 0x4d, 0, type, 0, 0]);
    return out;
  });

pptpCodec.generate = controlMessageBytes.map((m) => Uint8Array.from([0, ...m]));
pptpFramer.generate = fc.array(fc.tuple(controlMessageBytes, fc.nat(220)), { maxLength: 6 }).map((msgs) => {
  const stream = Buffer.concat(msgs.map(([m]) => m));
  // Cut the stream at the given points, as TCP might.
  const out: number[] = [];
  let at = 0;
  for (const [, cut] of msgs) {
    const end = Math.min(stream.length, at + cut + 1);
    out.push(0, (end - at) >> 8, (end - at) & 0xff, ...stream.subarray(at, end));
    at = end;
  }
  if (at < stream.length)
    out.push(0, (stream.length - at) >> 8, (stream.length - at) & 0xff, ...stream.subarray(at));
  return Uint8Array.from(out);
});

// ---------------------------------------------------------------------------------------------
// PPTP control connection automaton

/**
 * Input: octet 0 picks the role (bit 0: PAC or PNS) and the call limit (bits 1-2); octets 1-2 are the
 * first Call ID our allocator hands out (so that a recorded peer's replies match our call); then records:
 * tag % 8 = 0 TCP bytes, 1 clock step of data[0] × 1 s, 2 placeCall (PNS), 3 clearCall of the first
 * call, 4 stop(), 5 TCP closed; others also TCP bytes.
 */
const pptpControl: FuzzTarget = {
  name: 'pptp-control',
  what: 'ControlConnection driven by TCP bytes, time and API calls: receive never throws, no internal error, no write after close, onClosed once, every call down once and its ID released',
  maxLength: 3000,
  run(input) {
    const head = input[0] ?? 0;
    const role = head & 1 ? 'pns' : 'pac';
    const maxCalls = 1 + ((head >> 1) & 3);
    let next = ((input[1] ?? 0) << 8) | (input[2] ?? 0);
    const callIds = new CallIdAllocator(() => {
      const id = next;
      next = ((Math.imul(next, 75) + 74) % 65537) & 0xffff;
      return id;
    });
    const solo = new Solo(role, { maxCalls, echoIntervalMs: 30_000, echoTimeoutMs: 10_000 }, callIds);
    solo.conn.start();
    const placed = new Set<number>();
    const api = (fn: () => void) => {
      try {
        fn();
      } catch (e) {
        // placeCall documents an Error when not established; anything else escaping is a finding.
        if (
          !(e instanceof Error && /cannot place a call|only a PNS|call limit reached|Call ID/.test(e.message))
        )
          throw e;
      }
    };
    for (const { tag, data } of splitRecords(input, 3)) {
      switch (tag % 8) {
        case 1:
          solo.clock.advance((data[0] ?? 0) * 1000 + 1);
          break;
        case 2:
          if (role === 'pns') api(() => placed.add(solo.conn.placeCall('')));
          else solo.conn.receive(data.slice());
          break;
        case 3: {
          const first = solo.conn.calls()[0];
          if (first) solo.conn.clearCall(first.localCallId, 'fuzz');
          break;
        }
        case 4:
          solo.conn.stop('fuzz stop');
          break;
        case 5:
          solo.conn.transportClosed();
          break;
        default:
          solo.conn.receive(data.slice());
      }
      assert.ok(solo.conn.calls().length <= maxCalls, `more than ${maxCalls} calls`);
      assert.ok(solo.ev.closed.length <= 1, 'onClosed more than once');
    }
    solo.conn.stop('fuzz end');
    solo.clock.advance(120_000);
    if (solo.conn.state !== 'closed') solo.conn.transportClosed();
    assert.equal(solo.conn.state, 'closed');
    assert.equal(solo.ev.closed.length, 1, 'onClosed exactly once');
    assert.ok(solo.ev.closeCalls <= 1, 'close() at most once');
    assert.ok(!solo.log.has('internal error'), solo.log.text());
    assert.equal(solo.callIds.size, 0, 'every call ID released');
    // Every call that came up (or was placed) went down exactly once.
    const downs = new Map<number, number>();
    for (const d of solo.ev.down) downs.set(d.call.localCallId, (downs.get(d.call.localCallId) ?? 0) + 1);
    for (const [id, n] of downs) assert.equal(n, 1, `call ${id} went down ${n} times`);
    for (const c of solo.ev.up)
      assert.equal(downs.get(c.localCallId), 1, `call ${c.localCallId} never went down`);
    for (const id of placed) assert.equal(downs.get(id), 1, `placed call ${id} never went down`);
  },
};

// ---------------------------------------------------------------------------------------------
// GRE

const gre: FuzzTarget = {
  name: 'gre',
  what: 'decodeGreHeader at an offset: GreHeaderError only; the header re-encodes to the same bytes (reserved flags aside) and decodes the same',
  maxLength: 80,
  run(input) {
    const offset = (input[0] ?? 0) & 3;
    const packet = input.subarray(1);
    const h = expectOnly(() => decodeGreHeader(packet, offset), GreHeaderError);
    if (!h) return;
    assert.ok(h.headerLength + h.payloadLength <= packet.length - offset, 'payload inside the packet');
    const out = new Uint8Array(h.headerLength);
    const n = encodeGreHeader(out, 0, h);
    assert.equal(n, h.headerLength);
    const original = packet.slice(offset, offset + n);
    original[1]! &= ~GRE_FLAGS_RESERVED_MASK;
    assert.deepEqual(out, original, 'encode(decode(x)) = x with the reserved flags cleared');
    const again = new Uint8Array(n + h.payloadLength);
    again.set(out);
    assert.deepEqual(decodeGreHeader(again), h);
  },
};

gre.generate = fc
  .record({
    flags: fc.constantFrom(0x2001, 0x3001, 0x2081, 0x3081, 0x3079, 0x30f9),
    callId: fc.nat(0xffff),
    seq: fc.nat(),
    ack: fc.nat(),
    payload: fc.uint8Array({ maxLength: 24 }),
    extra: fc.integer({ min: -2, max: 2 }),
  })
  .map(({ flags, callId, seq, ack, payload, extra }) => {
    const len = Math.max(0, payload.length + extra);
    return Uint8Array.from([
      0,
      flags >> 8,
      flags & 0xff,
      0x88,
      0x0b,
      len >> 8,
      len & 0xff,
      callId >> 8,
      callId & 0xff,
      ...(flags & 0x1000 ? [seq >>> 24, (seq >>> 16) & 0xff, (seq >>> 8) & 0xff, seq & 0xff] : []),
      ...(flags & 0x80 ? [ack >>> 24, (ack >>> 16) & 0xff, (ack >>> 8) & 0xff, ack & 0xff] : []),
      ...payload,
    ]);
  });

// ---------------------------------------------------------------------------------------------
// PPP frames, control packets, options

const pppFrame: FuzzTarget = {
  name: 'ppp-frame',
  what: 'decodeFrame: ProtocolError only; encodeFrame(decodeFrame(x)) decodes the same with and without ACFC/PFC',
  maxLength: 64,
  run(input) {
    const f = expectOnly(() => decodeFrame(input), ProtocolError);
    if (!f) return;
    assert.ok(f.protocol & 1, 'a valid protocol number is odd');
    for (const comp of [
      undefined,
      { acfc: true, pfc: true },
      { acfc: true, pfc: false },
      { acfc: false, pfc: true },
    ]) {
      const again = decodeFrame(encodeFrame(f.protocol, f.info, comp));
      assert.equal(again.protocol, f.protocol);
      assert.deepEqual(again.info, f.info);
    }
  },
};

const LAYERS = ['lcp', 'ipcp', 'ipv6cp', 'ccp'] as const;

function handlerFor(layer: (typeof LAYERS)[number], role: 'server' | 'client', policy: PppPolicy) {
  const ncp = { up: () => {}, down: () => {}, finished: () => {}, fail: () => {} };
  let seed = 5;
  const random = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed;
  };
  switch (layer) {
    case 'lcp':
      return new LcpHandler({
        role,
        policy,
        clock: new ManualClock(),
        log: nullLogger,
        random,
        events: { ...ncp, protocolRejected: () => {}, send: () => {} },
      });
    case 'ipcp':
      return new IpcpHandler({ role, policy, events: ncp });
    case 'ipv6cp':
      return new Ipv6cpHandler({ random, events: ncp });
    case 'ccp':
      return new CcpHandler({ policy, log: nullLogger, events: { ...ncp, resetRequested: () => {} } });
  }
}

/**
 * Input: octet 0 picks the layer (bits 0-1), the role (bit 2) and rejectIfDisagree (bit 3); the rest
 * is a control packet. Its options go through the handler as a Configure-Request, then as a Nak,
 * a Reject (of our own request's options) and an Ack of our request.
 */
const pppOptions: FuzzTarget = {
  name: 'ppp-options',
  what: 'control packet + option codecs (LCP, IPCP, IPv6CP, CCP) and the handlers judging them: ProtocolError only, exact option round trip, verdicts encodable',
  maxLength: 128,
  run(input) {
    const head = input[0] ?? 0;
    const layer = LAYERS[head & 3]!;
    const role = head & 4 ? 'client' : 'server';
    const body = input.subarray(1);
    const p = expectOnly(() => decodeControlPacket(body, layer), ProtocolError);
    if (!p) return;
    const again = decodeControlPacket(encodeControlPacket(p.code, p.id, p.data), layer);
    assert.deepEqual(again, p);
    const opts = expectOnly(() => decodeOptions(p.data, layer), ProtocolError);
    if (!opts) return;
    assert.deepEqual(encodeOptions(opts), p.data, 'encodeOptions(decodeOptions(x)) = x');
    for (const o of opts) {
      if (layer === 'lcp') {
        describeLcpOption(o);
        if (o.type === 3) decodeAuthData(o.data);
      }
      if (layer === 'ccp') {
        const v = mppeValue(o);
        if (v !== undefined) describeMppe(v);
      }
    }
    const policy = defaultPolicy(role);
    policy.localAddress = 0x0a000001;
    policy.peerAddress = 0x0a000064;
    policy.msDns = [0x08080808];
    const h: ControlProtocolHandler = handlerFor(layer, role, policy);
    h.reset();
    const request = h.buildRequest();
    encodeOptions(request);
    const verdict = h.checkRequest(opts, (head & 8) !== 0);
    if (verdict.kind !== 'ack') {
      const encoded = encodeOptions(verdict.options);
      assert.deepEqual(
        decodeOptions(encoded, layer).length,
        verdict.options.length,
        'verdict options re-encode',
      );
    }
    if (verdict.kind === 'reject') {
      for (const r of verdict.options) {
        assert.ok(
          opts.some((o) => o.type === r.type && Buffer.from(o.data).equals(Buffer.from(r.data))),
          'a Configure-Reject holds options as received',
        );
      }
    }
    h.describe?.(opts[0] ?? { type: 0, data: new Uint8Array(0) });
    h.nakReceived(opts);
    // The FSM passes on a Reject only when it is a subset of our request: model that.
    const ours = h.buildRequest();
    h.rejectReceived(ours.filter((o) => opts.some((x) => x.type === o.type)));
    h.ackReceived(h.buildRequest());
  },
};

pppOptions.generate = fc
  .record({
    head: fc.nat(15),
    code: fc.integer({ min: 1, max: 4 }),
    id: fc.nat(255),
    options: fc.array(
      fc.record({
        type: fc.oneof(fc.integer({ min: 0, max: 8 }), fc.constantFrom(18, 26, 129, 130, 131, 132)),
        data: fc.uint8Array({ maxLength: 10 }),
      }),
      { maxLength: 6 },
    ),
  })
  .map(({ head, code, id, options }) =>
    Uint8Array.from([head, ...encodeControlPacket(code, id, encodeOptions(options))]),
  );

// ---------------------------------------------------------------------------------------------
// PAP and CHAP

const pap: FuzzTarget = {
  name: 'pap',
  what: 'decodePapPacket: ProtocolError only; decode→encode→decode is the identity',
  maxLength: 96,
  run(input) {
    const p = expectOnly(() => decodePapPacket(input), ProtocolError);
    if (!p) return;
    describePapPacket(p);
    assert.deepEqual(decodePapPacket(encodePapPacket(p)), p);
  },
};

const chap: FuzzTarget = {
  name: 'chap',
  what: 'decodeChapPacket: ProtocolError only; encode(decode(x)) = x up to Length; MS-CHAP Failure text parsing',
  maxLength: 128,
  run(input) {
    const p = expectOnly(() => decodeChapPacket(input), ProtocolError);
    if (!p) return;
    describeChapPacket(p);
    const length = (input[2]! << 8) | input[3]!;
    assert.deepEqual(encodeChapPacket(p), input.slice(0, length), 'encode(decode(x)) = x[0, Length)');
    if (p.code === 4) {
      const text = Buffer.from(p.message).toString('latin1');
      parseMsChapFailure(text);
      describeMsChapFailure(text);
    }
  },
};

pap.generate = fc
  .record({
    code: fc.integer({ min: 1, max: 3 }),
    id: fc.nat(255),
    a: fc.uint8Array({ maxLength: 12 }),
    b: fc.uint8Array({ maxLength: 12 }),
  })
  .map(({ code, id, a, b }) => {
    const body = code === 1 ? [a.length, ...a, b.length, ...b] : [a.length, ...a];
    return Uint8Array.from([code, id, 0, 4 + body.length, ...body]);
  });
chap.generate = fc
  .oneof(
    fc.record({
      code: fc.constantFrom(1, 2),
      id: fc.nat(255),
      value: fc.uint8Array({ minLength: 1, maxLength: 49 }),
      name: fc.uint8Array({ maxLength: 8 }),
    }),
    fc.record({
      code: fc.constantFrom(3, 4),
      id: fc.nat(255),
      text: fc.constantFrom(
        'E=691 R=1 C=0123456789ABCDEF0123456789ABCDEF V=3 M=x',
        'E=649 R=0 V=3',
        'S=0123456789ABCDEF0123456789ABCDEF01234567 M=ok',
        'E= R= C= V=',
      ),
    }),
  )
  .map((p) =>
    encodeChapPacket(
      'value' in p
        ? { code: p.code as 1 | 2, id: p.id, value: p.value, name: p.name }
        : { code: p.code as 3 | 4, id: p.id, message: bytesOf(p.text) },
    ),
  );

// ---------------------------------------------------------------------------------------------
// The PPP link automaton

const replay = parseFixture(readFileSync(join(FIXTURE_DIR, 'mschapv2-mppe128.hex'), 'utf8'));

/** The recorded server's random choices and secret, so that the recorded client's frames authenticate. */
const RECORDED = recordedServerOptions(replay);
const ALL_METHODS: AuthMethod[] = ['mschapv2', 'mschap', 'chap-md5', 'pap'];
const ACKABLE = [PppProtocol.LCP, PppProtocol.IPCP, PppProtocol.IPV6CP, PppProtocol.CCP];
const CONTROL = new Set<number>([PppProtocol.LCP, PppProtocol.IPCP, PppProtocol.IPV6CP, PppProtocol.CCP]);

/**
 * Input: octet 0 picks the role (bit 0: server/client) and policy variants (bit 1: every auth method;
 * bit 2: MPPE optional, 40/56-bit and stateful allowed; bit 3: IPv6CP; bit 4: LCP echo every 5 s;
 * bit 5: no ACFC/PFC); then records: tag % 8 = 1 a clock step of data[0] × 100 ms, 2 an IP packet
 * to send, 3 close() (tag & 8) or abort(), 4 a cooperative peer's Configure-Ack of the last
 * Configure-Request we sent of protocol data[0] % 4 (LCP, IPCP, IPv6CP, CCP), so that inputs get past
 * the negotiation whatever Magic-Number we chose; anything else a PPP frame.
 */
const pppLink: FuzzTarget = {
  name: 'ppp-link',
  what: 'PppLink (real MS-CHAP/PAP exchanges and MPPE) driven by frames, time and API calls: never throws, no internal error, every frame it sends parses, onDown exactly once after close',
  maxLength: 3000,
  run(input) {
    const head = input[0] ?? 0;
    const role = head & 1 ? 'client' : 'server';
    const policy = defaultPolicy(role);
    policy.lcpEchoInterval = head & 16 ? 5 : 0;
    if (role === 'server') {
      policy.localAddress = parseIPv4('172.31.251.1')!;
      policy.peerAddress = parseIPv4('172.31.251.100')!;
      if (head & 2) policy.auth.require = [...ALL_METHODS];
    } else if (head & 2) policy.auth.accept = [...ALL_METHODS];
    if (head & 4)
      policy.mppe = { required: false, allow40: true, allow56: true, allow128: true, statefulAllowed: true };
    policy.ipv6 = (head & 8) !== 0;
    if (head & 32) {
      policy.acfc = false;
      policy.pfc = false;
    }
    const clock = new ManualClock();
    const log = new MemoryLogger({ prefix: role });
    const down: string[] = [];
    const sent: Uint8Array[] = [];
    const link = new PppLink({
      role,
      clock,
      log,
      policy,
      ...RECORDED,
      sendFrame: (f) => sent.push(f.slice()),
      authPeer: (method, host) =>
        createAuthPeer(method, host, {
          user: 'alice',
          password: 'alice-pw',
          random: (n) => new Uint8Array(n).fill(7),
        }),
      mppe: createMppe,
      events: { onDown: (r) => down.push(r) },
    });
    const lastRequest = new Map<number, Uint8Array>();
    const checkSent = () => {
      for (const f of sent.splice(0)) {
        const frame = decodeFrame(f);
        if (!CONTROL.has(frame.protocol)) continue;
        const p = decodeControlPacket(frame.info, 'ppp');
        if (p.code === 1) lastRequest.set(frame.protocol, frame.info.slice());
        assert.equal(4 + p.data.length, frame.info.length, 'no padding after a control packet we send');
        if (p.code >= 1 && p.code <= 4) decodeOptions(p.data, 'ppp');
      }
    };
    link.open();
    clock.advance(1);
    for (const { tag, data } of splitRecords(input, 1)) {
      switch (tag % 8) {
        case 1:
          clock.advance((data[0] ?? 0) * 100 + 1);
          break;
        case 2:
          link.sendIp(data.slice());
          break;
        case 3:
          if (tag & 8) link.close('fuzz close');
          else link.abort('fuzz abort');
          break;
        case 4: {
          const protocol = ACKABLE[(data[0] ?? 0) % 4]!;
          const request = lastRequest.get(protocol);
          if (request) {
            const ack = request.slice();
            ack[0] = 2;
            link.receiveFrame(encodeFrame(protocol, ack));
            clock.advance(1);
          }
          break;
        }
        default:
          link.receiveFrame(data.slice());
          clock.advance(1);
      }
      checkSent();
      assert.ok(down.length <= 1, 'onDown more than once');
    }
    link.close('fuzz end');
    clock.advance(120_000);
    checkSent();
    assert.equal(link.phase, 'dead', 'close() reaches Dead');
    assert.equal(down.length, 1, 'onDown exactly once');
    assert.equal(link.stats.drops['internal error'], undefined, log.text());
    assert.ok(!log.has('internal error'), log.text());
  },
};

// ---------------------------------------------------------------------------------------------
// Configuration parsers: a result, or ConfigError whose issues name the file and a line in it.

function checkIssues(issues: readonly ConfigIssue[], files: ReadonlyMap<string, string>): void {
  for (const i of issues) {
    const text = files.get(i.file);
    assert.ok(text !== undefined, `issue names an unknown file ${JSON.stringify(i.file)}: ${i.message}`);
    const lines = text.split('\n').length;
    assert.ok(
      Number.isInteger(i.line) && i.line >= 0 && i.line <= lines,
      `line ${i.line} outside ${i.file} (${lines} lines)`,
    );
    assert.ok(i.message.length > 0);
  }
}

function configRun(parse: () => ConfigIssue[], files: ReadonlyMap<string, string>): void {
  try {
    checkIssues(parse(), files);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    assert.ok(e.errors.length > 0, 'a ConfigError has at least one error');
    for (const err of e.errors) assert.ok(err.line > 0 || err.message.length > 0);
    checkIssues(e.issues, files);
  }
}

const PPTPD_WORDS = [
  'option ',
  'localip ',
  'remoteip ',
  'listen ',
  'connections ',
  'stimeout ',
  'speed ',
  'pidfile ',
  'bcrelay ',
  'ppp ',
  'debug',
  'noipparam',
  'logwtmp',
  'delegate',
  'nobsdcomp',
  '192.168.0.1',
  '10.0.0.1-254',
  ',',
  '-',
  '.',
  '\n',
  '#',
  ' ',
  '\t',
  '\r\n',
  '255',
  '65535',
  '0x10',
  '/etc/ppp/options',
];
const PPPD_WORDS = [
  'require-mschap-v2',
  'require-mppe-128',
  'refuse-pap',
  'refuse-chap',
  'ms-dns ',
  'ms-wins ',
  'netmask ',
  'mtu ',
  'mru ',
  'lcp-echo-interval ',
  'file ',
  'call ',
  'plugin ',
  'mppe ',
  'ipv6 ',
  'name ',
  'debug',
  'noauth',
  'proxyarp',
  'nobsdcomp',
  '10.0.0.1:10.0.0.2',
  '::1,::2',
  'required,stateless,no40',
  '"',
  "'",
  '\\',
  '\\\n',
  '#',
  '\n',
  ' ',
  '0x',
  '07',
  '4294967296',
  '/dev/ttyS0',
  '115200',
  'pptpd-logwtmp.so',
];
const SECRETS_WORDS = [
  'alice',
  '*',
  '"pass word"',
  '$NT$8846F7EAEE8FB117AD06BDD830B7586C',
  '$NT$',
  '@/etc/secret',
  '192.168.0.5',
  '10.0.0.0/24',
  '!10.0.0.1',
  '-',
  '--',
  'require-mppe',
  '"',
  '\\',
  '\\\n',
  '#',
  '\n',
  ' ',
  '\t',
];

const pptpdConf: FuzzTarget = {
  name: 'pptpd-conf',
  what: 'parsePptpdConf on arbitrary text: a result or ConfigError, every issue at file:line inside the file',
  maxLength: 600,
  dictionary: PPTPD_WORDS,
  run(input) {
    const text = textOf(input);
    configRun(() => parsePptpdConf(text, '/etc/pptpd.conf').warnings, new Map([['/etc/pptpd.conf', text]]));
  },
};

/** Input: the options file; `file inc` (relative) and `call peer` include the same text once more. */
const pppdOptions: FuzzTarget = {
  name: 'pppd-options',
  what: 'parsePppdOptions on arbitrary text (with includes): a result or ConfigError, every issue at file:line inside a file read',
  maxLength: 600,
  dictionary: PPPD_WORDS,
  run(input) {
    const text = textOf(input);
    const files = new Map([
      ['/etc/ppp/pptpd-options', text],
      ['/etc/ppp/inc', 'require-mppe-128\nms-dns 10.0.0.1\n'],
      ['/etc/ppp/peers/peer', text],
    ]);
    const readFile = (path: string) => {
      const t = files.get(path);
      if (t === undefined) throw new Error(`ENOENT: ${path}`);
      return t;
    };
    const known = new Map(files);
    // Included paths that do not exist are reported at the including line: also allowed.
    configRun(() => parsePppdOptions(text, '/etc/ppp/pptpd-options', { readFile }).notes, known);
  },
};

const chapSecrets: FuzzTarget = {
  name: 'chap-secrets',
  what: 'parseChapSecrets on arbitrary text: never throws, every issue at file:line inside the file, entries well-formed',
  maxLength: 600,
  dictionary: SECRETS_WORDS,
  run(input) {
    const text = textOf(input);
    const r = parseChapSecrets(text, '/etc/ppp/chap-secrets', {
      readFile: (path) => {
        if (path === '/etc/secret') return 'from-file extra\n';
        throw new Error(`ENOENT: ${path}`);
      },
    });
    checkIssues(r.issues, new Map([['/etc/ppp/chap-secrets', text]]));
    for (const c of r.entries) {
      assert.equal(typeof c.user, 'string');
      assert.equal(typeof c.server, 'string');
      assert.ok(c.secret.kind === 'password' || c.secret.kind === 'nthash');
      if (c.secret.kind === 'nthash') assert.equal(c.secret.hash.length, 16);
    }
  },
};

export const TARGETS: readonly FuzzTarget[] = [
  pptpCodec,
  pptpFramer,
  pptpControl,
  gre,
  pppFrame,
  pppOptions,
  pap,
  chap,
  pppLink,
  pptpdConf,
  pppdOptions,
  chapSecrets,
];

export function targetByName(name: string): FuzzTarget {
  const t = TARGETS.find((x) => x.name === name);
  if (!t) throw new Error(`unknown fuzz target "${name}"; targets: ${TARGETS.map((x) => x.name).join(', ')}`);
  return t;
}

export { bytesOf };
