/**
 * `workers auto` in a control group with a CPU quota, as the kernel keeps it: a process moved into
 * a group of its own (cgroup v2 `cpu.max`, or v1 `cpu.cfs_quota_us` where the cpu controller is
 * still mounted there) reads the quota and counts fewer workers. Needs root.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (control groups)';

before(() => {
  if (!isRoot && process.env.POPTOP_REQUIRE_ROOT_TESTS === '1')
    throw new Error('root suites are required here');
});

/** A new group with the given quota (µs per 100 ms period), in whichever hierarchy has the cpu controller. */
function quotaGroup(name: string, quotaUs: number): { dir: string; remove: () => void } {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    // cgroup v2 only: the cpu controller must be enabled for the root's children.
    const root = '/sys/fs/cgroup';
    if (!readFileSync(join(root, 'cgroup.subtree_control'), 'utf8').includes('cpu')) {
      writeFileSync(join(root, 'cgroup.subtree_control'), '+cpu');
    }
    const dir = join(root, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'cpu.max'), `${quotaUs} 100000`);
    return { dir, remove: () => rmdirSync(dir) };
  }
  const dir = join('/sys/fs/cgroup/cpu', name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'cpu.cfs_period_us'), '100000');
  writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quotaUs));
  return { dir, remove: () => rmdirSync(dir) };
}

test('workers auto counts a CPU quota: half a processor gives one worker, and says why', {
  skip,
}, () => {
  const group = quotaGroup(`poptop-test-${process.pid}`, 50_000);
  const dir = mkdtempSync(join(tmpdir(), 'poptop-quota-'));
  try {
    // The shell moves itself into the group, then runs node there (the group ends with it).
    // What processors.ts reads there, and what `serve --workers auto` makes of it (loadServerSettings).
    const src = join(import.meta.dirname, '..', '..', 'src', 'server');
    writeFileSync(join(dir, 'pptpd.conf'), 'localip 10.0.0.1\nremoteip 10.0.0.100-102\n');
    writeFileSync(join(dir, 'chap-secrets'), 'alice * "pw" *\n', { mode: 0o600 });
    const code = `
      const m = await import(${JSON.stringify(join(src, 'workers', 'processors.ts'))});
      const { loadServerSettings } = await import(${JSON.stringify(join(src, 'load-settings.ts'))});
      const loaded = loadServerSettings({ configPath: ${JSON.stringify(join(dir, 'pptpd.conf'))},
        secretsPath: ${JSON.stringify(join(dir, 'chap-secrets'))}, globalOptionsPath: 'none', workers: 'auto' });
      console.log(JSON.stringify({ quota: m.cgroupCpuQuota(), p: m.processorsForWorkers(),
        workers: loaded.settings.workers ?? 1, notes: loaded.notes }));`;
    const r = spawnSync(
      'sh',
      [
        '-c',
        `echo $$ > "$1/cgroup.procs" && exec "$2" --import tsx --input-type=module -e "$3"`,
        'sh',
        group.dir,
        process.execPath,
        code,
      ],
      { encoding: 'utf8', cwd: join(import.meta.dirname, '..', '..') },
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      quota: number;
      p: { count: number; capped: boolean; why: string };
      workers: number;
      notes: string[];
    };
    assert.equal(out.quota, 0.5);
    const available = availableParallelism();
    assert.equal(out.p.count, 1);
    assert.equal(out.p.capped, available > 1);
    assert.equal(out.workers, 1, 'one process: no workers');
    if (available > 1) {
      assert.equal(out.p.why, `a CPU quota of 0.5 processors (of ${available})`);
      assert.deepEqual(out.notes, [
        `--workers: "workers auto" is 1 here, for a CPU quota of 0.5 processors (of ${available})`,
      ]);
    }
  } finally {
    group.remove();
    rmSync(dir, { recursive: true });
  }
});
