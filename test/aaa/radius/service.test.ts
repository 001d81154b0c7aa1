import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RadiusTransport } from '../../../src/aaa/radius/client.ts';
import { RadiusService } from '../../../src/aaa/radius/service.ts';
import { ManualClock } from '../../../src/util/clock.ts';
import { MemoryLogger } from '../../../src/util/log.ts';

const quiet: RadiusTransport = { send() {}, onMessage() {}, setBusy() {}, close() {} };

test('a Session-Timeout longer than a Node timer can hold (2^31 ms) does not fire early', () => {
  const clock = new ManualClock();
  const service = new RadiusService(
    {
      authServers: [{ host: '127.0.0.1', port: 1812, secret: 's' }],
      acctServers: [],
      timeoutS: 1,
      tries: 1,
      deadtimeS: 0,
      origin: 'test',
      dynauthPort: 0,
    },
    { clock, log: new MemoryLogger(), transport: () => quiet },
  );
  let fired = 0;
  const fourBillionSeconds = (2 ** 32 - 1) * 1000;
  service.timer(fourBillionSeconds, () => fired++);
  clock.advance(2 ** 31);
  assert.equal(fired, 0);
  clock.advance(fourBillionSeconds - 2 ** 31 - 1);
  assert.equal(fired, 0);
  clock.advance(1);
  assert.equal(fired, 1);
  const t = service.timer(2 ** 33, () => fired++);
  clock.advance(2 ** 32);
  t.cancel();
  clock.advance(2 ** 33);
  assert.equal(fired, 1, 'cancel works across steps');
});
