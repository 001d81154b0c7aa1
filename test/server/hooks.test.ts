import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  HOOK_PRESENCE_MS,
  type HookContext,
  hookArguments,
  hookEnvironment,
  runHook,
} from '../../src/server/hooks.ts';
import { MemoryLogger } from '../../src/util/log.ts';

const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

function ctx(over: Partial<HookContext> = {}): HookContext {
  return {
    ifname: 'poptop0',
    localIp: '10.77.0.1',
    remoteIp: '10.77.0.10',
    peerName: 'alice',
    ipparam: '203.0.113.5',
    speed: 115200,
    sessionId: 's3',
    ...over,
  };
}

describe('hook environment and arguments', () => {
  it("pppd's variables, unchanged for ordinary values", () => {
    const env = hookEnvironment(ctx({ peerName: 'CORP\\alice', dns: ['10.0.0.53'] }));
    assert.equal(env.PEERNAME, 'CORP\\alice');
    assert.equal(env.IPREMOTE, '10.77.0.10');
    assert.equal(env.DNS1, '10.0.0.53');
    assert.deepEqual(hookArguments(ctx()), [
      'poptop0',
      'poptop0',
      '115200',
      '10.77.0.1',
      '10.77.0.10',
      '203.0.113.5',
    ]);
  });

  it('a network-supplied name reaches scripts with its control characters escaped', () => {
    const peerName = 'bob\nIPREMOTE=1.2.3.4\u0000\u001b[2J\u0085';
    const env = hookEnvironment(ctx({ peerName, ipparam: 'x\ry' }));
    for (const [k, v] of Object.entries(env))
      assert.equal(CONTROL.test(v), false, `${k}=${JSON.stringify(v)}`);
    assert.equal(env.PEERNAME, 'bob\\nIPREMOTE=1.2.3.4\\x00\\x1b[2J\\x85');
    assert.equal(hookArguments(ctx({ ipparam: 'x\ry' }))[5], 'x\\ry');
  });

  it('runs the script even when the peer name holds a NUL (execve cannot carry one)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'poptop-hook-'));
    try {
      const script = join(dir, 'ip-up');
      const out = join(dir, 'out');
      writeFileSync(script, `#!/bin/sh\nprintf '%s|%s' "$PEERNAME" "$6" > '${out}'\n`);
      chmodSync(script, 0o755);
      const log = new MemoryLogger();
      await runHook(script, ctx({ peerName: 'ev\u0000il', ipparam: 'p\u0000q' }), log);
      assert.equal(readFileSync(out, 'utf8'), 'ev\\x00il|p\\x00q');
      assert.equal(log.has('failed'), false, log.text());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a script added while the server runs is used within HOOK_PRESENCE_MS; one removed is no longer run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'poptop-hook-'));
    try {
      const script = join(dir, 'ip-up');
      const out = join(dir, 'out');
      const log = new MemoryLogger();
      await runHook(script, ctx(), log); // not there
      writeFileSync(script, `#!/bin/sh\necho ran >> '${out}'\n`);
      chmodSync(script, 0o755);
      await new Promise((r) => setTimeout(r, HOOK_PRESENCE_MS + 50));
      await runHook(script, ctx(), log);
      assert.equal(readFileSync(out, 'utf8'), 'ran\n');
      rmSync(script);
      await new Promise((r) => setTimeout(r, HOOK_PRESENCE_MS + 50));
      await runHook(script, ctx(), log);
      assert.equal(readFileSync(out, 'utf8'), 'ran\n', 'not run once removed');
      assert.equal(log.has('failed'), false, log.text());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
