import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RadiusAuthenticator } from '../../../src/aaa/radius/authenticate.ts';
import { RadiusClient, type RadiusTransport } from '../../../src/aaa/radius/client.ts';
import { decodeRadiusPacket, findAttr } from '../../../src/aaa/radius/codec.ts';
import { Attr } from '../../../src/aaa/radius/dictionary.ts';
import type { RemoteAuthRequest } from '../../../src/ppp/auth/types.ts';
import { ManualClock } from '../../../src/util/clock.ts';
import { MemoryLogger } from '../../../src/util/log.ts';

/** The Access-Request a login makes (nobody answers). */
function accessRequest(req: RemoteAuthRequest) {
  const sent: Uint8Array[] = [];
  const net: RadiusTransport = { send: (b) => sent.push(b), onMessage() {}, setBusy() {}, close() {} };
  const client = new RadiusClient({
    servers: [{ host: '127.0.0.1', port: 1812, secret: 's' }],
    timeoutMs: 1000,
    tries: 1,
    deadtimeMs: 0,
    purpose: 'authentication',
    clock: new ManualClock(),
    log: new MemoryLogger(),
    transport: net,
  });
  const auth = new RadiusAuthenticator(
    client,
    { nasIdentifier: 'vpn1' },
    {
      acctSessionId: 'A1',
      nasPort: 7,
      callingStationId: '192.0.2.7',
    },
  );
  const pending = auth.verify(req, () => {});
  pending.cancel();
  client.close();
  assert.equal(sent.length, 1);
  return decodeRadiusPacket(sent[0]!);
}

// "a", an octet that is not UTF-8, "b": decoded, the name would become "a\uFFFDb".
const NAME = Uint8Array.of(0x61, 0xff, 0x62);
const DECODED = new TextDecoder().decode(NAME);

test('User-Name carries the octets the peer sent, even when they are not UTF-8 (MS-CHAPv2)', () => {
  const p = accessRequest({
    method: 'mschapv2',
    rawUser: DECODED,
    user: DECODED,
    id: 1,
    challenge: new Uint8Array(16),
    response: new Uint8Array(49),
    name: NAME,
  });
  assert.deepEqual(findAttr(p.attributes, Attr.UserName)?.value, NAME);
});

test('User-Name carries the octets the peer sent, even when they are not UTF-8 (PAP)', () => {
  const p = accessRequest({
    method: 'pap',
    rawUser: DECODED,
    user: DECODED,
    name: NAME,
    password: new TextEncoder().encode('pw'),
  });
  assert.deepEqual(findAttr(p.attributes, Attr.UserName)?.value, NAME);
});
