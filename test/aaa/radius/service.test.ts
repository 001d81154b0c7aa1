import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RadiusTransport } from '../../../src/aaa/radius/client.ts';
import { attrU32, decodeRadiusPacket, findAttr } from '../../../src/aaa/radius/codec.ts';
import { AcctStatus, Attr, TerminateCause } from '../../../src/aaa/radius/dictionary.ts';
import {
  RadiusService,
  type RadiusSession,
  type RadiusSessionHandle,
} from '../../../src/aaa/radius/service.ts';
import { ManualClock } from '../../../src/util/clock.ts';
import { MemoryLogger } from '../../../src/util/log.ts';
import { parseIPv4 } from '../../../src/wire/ip.ts';

const quiet: RadiusTransport = { send() {}, onMessage() {}, setBusy() {}, close() {} };

test('the Stop of an end RADIUS caused carries its cause, whatever the words of the reason', async () => {
  const clock = new ManualClock();
  const sent: Uint8Array[] = [];
  const acct: RadiusTransport = { send: (b) => sent.push(b), onMessage() {}, setBusy() {}, close() {} };
  const service = new RadiusService(
    {
      authServers: [{ host: '127.0.0.1', port: 1812, secret: 's' }],
      acctServers: [{ host: '127.0.0.1', port: 1813, secret: 's' }],
      timeoutS: 1,
      tries: 1,
      deadtimeS: 0,
      origin: 'test',
      dynauthPort: 0,
    },
    { clock, log: new MemoryLogger(), transport: (p) => (p === 'accounting' ? acct : quiet) },
  );
  const causes: (number | undefined)[] = [];
  const session = (id: string, end: (s: RadiusSession) => void) => {
    let s: RadiusSession;
    const handle: RadiusSessionHandle = {
      id,
      peer: parseIPv4('192.0.2.7')!,
      log: new MemoryLogger(),
      kill: (reason) => s.closed(reason),
      info: () => ({ bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0 }),
      setRateLimit() {},
    };
    s = service.session(handle);
    s.up(parseIPv4('10.0.0.9')!, undefined);
    end(s);
  };
  session('s1', (s) => s.changeLimits({ sessionTimeoutS: 5 }));
  session('s2', (s) => s.changeLimits({ idleTimeoutS: 4 }));
  session('s3', (s) => s.disconnect('gone for good'));
  clock.advance(10_000);
  await new Promise((r) => setImmediate(r));
  for (const b of sent) {
    const p = decodeRadiusPacket(b);
    if (attrU32(findAttr(p.attributes, Attr.AcctStatusType)!) !== AcctStatus.Stop) continue;
    const c = findAttr(p.attributes, Attr.AcctTerminateCause);
    causes.push(c ? attrU32(c) : undefined);
  }
  assert.deepEqual(
    causes.sort(),
    [TerminateCause.IdleTimeout, TerminateCause.SessionTimeout, TerminateCause.AdminReset].sort(),
  );
});
