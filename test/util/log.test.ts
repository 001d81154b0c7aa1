import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { ATOMIC_WRITE, BasicLogger, batchedSink, LOG_BATCH_MS } from '../../src/util/log.ts';

const LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (info |warn |error|debug) /;

test('the lines logged within LOG_BATCH_MS reach the writer in one write, stamped and in order', async () => {
  const writes: string[] = [];
  const log = new BasicLogger(batchedSink((t) => writes.push(String(t))));
  log.info('one');
  log.warn('two');
  log.error('three');
  await new Promise((r) => setImmediate(r));
  assert.equal(writes.length, 0, 'nothing is written before the batch time');
  await new Promise((r) => setTimeout(r, LOG_BATCH_MS + 5));
  assert.equal(writes.length, 1);
  const lines = writes[0]!.split('\n');
  assert.equal(lines.pop(), '', 'every line ends in a line feed');
  assert.deepEqual(
    lines.map((l) => l.replace(LINE, '$1|')),
    ['info |one', 'warn |two', 'error|three'],
  );
  log.info('four');
  await new Promise((r) => setTimeout(r, LOG_BATCH_MS + 5));
  assert.equal(writes.length, 2, 'a later batch gets its own write');
  assert.match(writes[1]!, /info {2}four\n$/);
});

test('a batch of more than 64 KiB is written in pieces as it goes, nothing lost', async () => {
  const writes: string[] = [];
  const log = new BasicLogger(batchedSink((t) => writes.push(String(t))));
  const n = 2000;
  for (let i = 0; i < n; i++) log.info(`line ${i} ${'x'.repeat(60)}`);
  assert.ok(writes.length >= 1, 'written before the batch time');
  assert.ok(writes.every((w) => w.length < 64 * 1024 + 200));
  await new Promise((r) => setTimeout(r, LOG_BATCH_MS + 5));
  const all = writes.join('').split('\n').slice(0, -1);
  assert.equal(all.length, n);
  assert.ok(all.every((l, i) => l.includes(`line ${i} `)));
});

test('atomicWrites: whole lines, at most ATOMIC_WRITE bytes a write (multi-byte text counted in bytes)', async () => {
  const writes: Uint8Array[] = [];
  const log = new BasicLogger(
    batchedSink((t) => writes.push(typeof t === 'string' ? Buffer.from(t) : t), { atomicWrites: true }),
  );
  const n = 500;
  for (let i = 0; i < n; i++) log.info(`line ${i} ${'é'.repeat(i % 50)}`);
  log.info('y'.repeat(ATOMIC_WRITE + 100));
  await new Promise((r) => setTimeout(r, LOG_BATCH_MS + 5));
  assert.ok(writes.length > 1);
  for (const w of writes) {
    assert.equal(w.at(-1), 0x0a, 'ends with a whole line');
    const lines = Buffer.from(w).toString().split('\n').length - 1;
    assert.ok(w.length <= ATOMIC_WRITE || lines === 1, `${w.length} bytes in ${lines} lines`);
  }
  const all = Buffer.concat(writes).toString().split('\n').slice(0, -1);
  assert.equal(all.length, n + 1);
  assert.ok(all.slice(0, n).every((l, i) => l.includes(`line ${i} `)));
});

test('lines still pending when the process exits are written', () => {
  const script = `
    import { consoleLogger } from './src/util/log.ts';
    const log = consoleLogger();
    log.info('last words');
    process.exit(3);
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    cwd: new URL('../..', import.meta.url).pathname,
  });
  assert.equal(r.status, 3);
  assert.match(r.stderr, /info {2}last words\n/);
});
