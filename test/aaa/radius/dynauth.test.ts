import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  attrU32,
  decodeRadiusPacket,
  findAllAttrs,
  findAttr,
  type RadiusAttribute,
  signRadiusPacket,
  textAttr,
  u32Attr,
  verifyRadiusResponse,
} from '../../../src/aaa/radius/codec.ts';
import {
  Attr,
  ErrorCause,
  MikrotikAttr,
  RadiusCode,
  VENDOR_MIKROTIK,
} from '../../../src/aaa/radius/dictionary.ts';
import { DynAuthHandler, type DynAuthSession } from '../../../src/aaa/radius/dynauth.ts';
import { ManualClock } from '../../../src/util/clock.ts';
import { MemoryLogger } from '../../../src/util/log.ts';
import { parseIPv4 } from '../../../src/wire/ip.ts';

const SECRET = 'dae-secret';
const enc = (s: string) => new TextEncoder().encode(s);

function fakeSession(acctSessionId: string, user: string, ip: string) {
  const s = {
    acctSessionId,
    userName: user,
    framedIp: parseIPv4(ip),
    callingStationId: '198.51.100.7',
    nasPort: 7,
    disconnected: undefined as string | undefined,
    limits: [] as unknown[],
    disconnect(reason: string) {
      s.disconnected = reason;
    },
    changeLimits(l: unknown) {
      s.limits.push(l);
    },
  };
  return s;
}

const WALL_NOW_S = 1_800_000_000;

function setup() {
  const log = new MemoryLogger();
  const sessions = [fakeSession('A1', 'alice', '10.0.0.5'), fakeSession('B2', 'bob', '10.0.0.6')];
  const handler = new DynAuthHandler({
    clients: [{ host: '127.0.0.1', secret: SECRET }],
    sessions: () => sessions as DynAuthSession[],
    nasIdentifier: 'vpn1',
    clock: new ManualClock(),
    log,
    wallNow: () => WALL_NOW_S * 1000,
  });
  return { handler, sessions, log };
}

function request(code: number, attributes: RadiusAttribute[], id = 5, secret = SECRET) {
  return signRadiusPacket({ code, id, authenticator: new Uint8Array(16), attributes }, enc(secret), {
    messageAuthenticator: true,
  });
}

function answer(handler: DynAuthHandler, req: Uint8Array) {
  const bytes = handler.handle(req, '127.0.0.1', 40000);
  assert.ok(bytes, 'an answer');
  const reqAuth = req.subarray(4, 20);
  assert.equal(
    verifyRadiusResponse(bytes, reqAuth, enc(SECRET), { requireMessageAuthenticator: true }),
    undefined,
  );
  const p = decodeRadiusPacket(bytes);
  const cause = findAttr(p.attributes, Attr.ErrorCause);
  return { code: p.code, cause: cause ? attrU32(cause) : undefined, packet: p };
}

test('Disconnect-Request by Acct-Session-Id ends that session: ACK, Proxy-State echoed', () => {
  const { handler, sessions, log } = setup();
  const req = request(RadiusCode.DisconnectRequest, [
    textAttr(Attr.AcctSessionId, 'A1'),
    { type: Attr.ProxyState, value: Uint8Array.of(1, 2) },
    { type: Attr.ProxyState, value: Uint8Array.of(3) },
  ]);
  const a = answer(handler, req);
  assert.equal(a.code, RadiusCode.DisconnectAck);
  assert.deepEqual(
    findAllAttrs(a.packet.attributes, Attr.ProxyState).map((x) => [...x.value]),
    [[1, 2], [3]],
  );
  assert.equal(sessions[0]!.disconnected, 'disconnected by RADIUS (Disconnect-Request from 127.0.0.1)');
  assert.equal(sessions[1]!.disconnected, undefined);
  assert.ok(log.has('RADIUS Disconnect-Request from 127.0.0.1: 1 session disconnected'));
  // a retransmission gets the same answer, and acts once
  sessions[0]!.disconnected = undefined;
  assert.deepEqual(handler.handle(req, '127.0.0.1', 40000), handler.handle(req, '127.0.0.1', 40000));
  assert.equal(sessions[0]!.disconnected, undefined);
});

test('CoA-Request changes Session-Timeout of the sessions it identifies (all keys must match)', () => {
  const { handler, sessions } = setup();
  const a = answer(
    handler,
    request(RadiusCode.CoaRequest, [
      textAttr(Attr.UserName, 'bob'),
      u32Attr(Attr.FramedIpAddress, parseIPv4('10.0.0.6')!),
      u32Attr(Attr.SessionTimeout, 600),
    ]),
  );
  assert.equal(a.code, RadiusCode.CoaAck);
  assert.deepEqual(sessions[1]!.limits, [{ sessionTimeoutS: 600 }]);
  assert.deepEqual(sessions[0]!.limits, []);
  const none = answer(
    handler,
    request(
      RadiusCode.CoaRequest,
      [textAttr(Attr.UserName, 'bob'), u32Attr(Attr.FramedIpAddress, parseIPv4('10.0.0.5')!)],
      6,
    ),
  );
  assert.deepEqual([none.code, none.cause], [RadiusCode.CoaNak, ErrorCause.SessionContextNotFound]);
});

test('NAK causes: unsupported attribute, missing identification, another NAS, bad value', () => {
  const { handler } = setup();
  const cases: [RadiusAttribute[], number, number][] = [
    [
      [textAttr(Attr.AcctSessionId, 'A1'), u32Attr(Attr.SessionTimeout, 5)],
      RadiusCode.DisconnectNak,
      ErrorCause.UnsupportedAttribute,
    ],
    [
      [textAttr(Attr.AcctSessionId, 'A1'), { type: 26, vendor: 311, value: new Uint8Array(4) }],
      RadiusCode.DisconnectNak,
      ErrorCause.UnsupportedAttribute,
    ],
    [[textAttr(Attr.NasIdentifier, 'vpn1')], RadiusCode.DisconnectNak, ErrorCause.MissingAttribute],
    [
      [textAttr(Attr.NasIdentifier, 'vpn2'), textAttr(Attr.AcctSessionId, 'A1')],
      RadiusCode.DisconnectNak,
      ErrorCause.NasIdentificationMismatch,
    ],
    [[textAttr(Attr.AcctSessionId, 'nope')], RadiusCode.DisconnectNak, ErrorCause.SessionContextNotFound],
    [
      [{ type: Attr.FramedIpAddress, value: Uint8Array.of(1, 2) }],
      RadiusCode.DisconnectNak,
      ErrorCause.InvalidAttributeValue,
    ],
  ];
  cases.forEach(([attrs, code, cause], i) => {
    const a = answer(handler, request(RadiusCode.DisconnectRequest, attrs, 20 + i));
    assert.deepEqual([a.code, a.cause], [code, cause], `case ${i}`);
  });
});

test('requests from elsewhere, with a wrong secret, or of another code are dropped and counted', () => {
  const { handler } = setup();
  const good = request(RadiusCode.DisconnectRequest, [textAttr(Attr.AcctSessionId, 'A1')]);
  assert.equal(handler.handle(good, '127.0.0.9', 1), undefined);
  assert.equal(
    handler.handle(
      request(RadiusCode.DisconnectRequest, [textAttr(Attr.AcctSessionId, 'A1')], 9, 'wrong'),
      '127.0.0.1',
      1,
    ),
    undefined,
  );
  assert.equal(handler.handle(request(RadiusCode.AccountingRequest, []), '127.0.0.1', 1), undefined);
  assert.equal(handler.handle(good.subarray(0, 10), '127.0.0.1', 1), undefined);
  assert.deepEqual(Object.keys(handler.drops.snapshot()).sort(), [
    'Accounting-Request sent to the Disconnect/CoA port',
    'Disconnect-Request refused: its Request Authenticator is wrong (is the shared secret the same on both sides?)',
    'malformed request: TRUNCATED',
    'request from an address that is not a configured RADIUS server',
  ]);
});

test('an Event-Timestamp more than 300 s from now is a replay: silently discarded and counted (RFC 5176 §6.3)', () => {
  const { handler, sessions } = setup();
  const at = (t: number, id: number) =>
    request(
      RadiusCode.DisconnectRequest,
      [textAttr(Attr.AcctSessionId, 'A1'), u32Attr(Attr.EventTimestamp, t)],
      id,
    );
  assert.equal(handler.handle(at(WALL_NOW_S - 301, 1), '127.0.0.1', 1), undefined);
  assert.equal(handler.handle(at(WALL_NOW_S + 301, 2), '127.0.0.1', 1), undefined);
  assert.equal(sessions[0]!.disconnected, undefined);
  assert.deepEqual(handler.drops.snapshot(), {
    'Disconnect-Request with an Event-Timestamp not within 300 s of now (a replay?)': 2,
  });
  // within the window it is carried out
  assert.equal(answer(handler, at(WALL_NOW_S - 299, 3)).code, RadiusCode.DisconnectAck);
  assert.ok(sessions[0]!.disconnected);
});

test('CoA-Request with Mikrotik-Rate-Limit: ACK, and the sessions get the new rates (rx = upload)', () => {
  const { handler, sessions, log } = setup();
  const a = answer(
    handler,
    request(RadiusCode.CoaRequest, [
      textAttr(Attr.UserName, 'alice'),
      textAttr(MikrotikAttr.RateLimit, '10M/5M', VENDOR_MIKROTIK),
    ]),
  );
  assert.equal(a.code, RadiusCode.CoaAck);
  assert.deepEqual(sessions[0]!.limits, [
    { rate: { limit: { upBps: 10_000_000, downBps: 5_000_000 }, source: 'Mikrotik-Rate-Limit "10M/5M"' } },
  ]);
  assert.deepEqual(sessions[1]!.limits, []);
  assert.ok(
    log.has(
      'RADIUS CoA-Request from 127.0.0.1: 1 session changed (rate limit 5 Mbit/s down, 10 Mbit/s up (Mikrotik-Rate-Limit "10M/5M"))',
    ),
    log.text(),
  );
  // accel-ppp's Filter-Id form, with a Session-Timeout in the same request
  const b = answer(
    handler,
    request(
      RadiusCode.CoaRequest,
      [
        textAttr(Attr.AcctSessionId, 'B2'),
        textAttr(Attr.FilterId, '2048/512'),
        u32Attr(Attr.SessionTimeout, 60),
      ],
      8,
    ),
  );
  assert.equal(b.code, RadiusCode.CoaAck);
  assert.deepEqual(sessions[1]!.limits, [
    {
      sessionTimeoutS: 60,
      rate: { limit: { downBps: 2_048_000, upBps: 512_000 }, source: 'Filter-Id "2048/512"' },
    },
  ]);
});

test('CoA-Request with a rate limit it cannot apply: NAK 407 and nothing changed; a Disconnect with one: 401', () => {
  const { handler, sessions, log } = setup();
  const cases: [RadiusAttribute, number][] = [
    [textAttr(MikrotikAttr.RateLimit, 'fast\r\n', VENDOR_MIKROTIK), ErrorCause.InvalidAttributeValue],
    [textAttr(Attr.FilterId, 'web-only'), ErrorCause.InvalidAttributeValue],
    [textAttr(MikrotikAttr.Group, 'gold', VENDOR_MIKROTIK), ErrorCause.UnsupportedAttribute],
  ];
  cases.forEach(([attr, cause], i) => {
    const a = answer(
      handler,
      request(
        RadiusCode.CoaRequest,
        [textAttr(Attr.UserName, 'alice'), attr, u32Attr(Attr.IdleTimeout, 9)],
        30 + i,
      ),
    );
    assert.deepEqual([a.code, a.cause], [RadiusCode.CoaNak, cause], `case ${i}`);
  });
  assert.deepEqual(sessions[0]!.limits, [], 'a refused request changes nothing, not even its Idle-Timeout');
  assert.match(log.text(), /refused: Mikrotik-Rate-Limit "fast\\r\\n" is not "rx\[\/tx\] \.\.\."/);
  assert.match(log.text(), /refused: Filter-Id "web-only" is not a rate DOWN\[\/UP\] in kbit\/s/);
  const d = answer(
    handler,
    request(
      RadiusCode.DisconnectRequest,
      [textAttr(Attr.UserName, 'alice'), textAttr(MikrotikAttr.RateLimit, '1M', VENDOR_MIKROTIK)],
      40,
    ),
  );
  assert.deepEqual([d.code, d.cause], [RadiusCode.DisconnectNak, ErrorCause.UnsupportedAttribute]);
  assert.equal(sessions[0]!.disconnected, undefined);
});
