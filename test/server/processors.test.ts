import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cgroupCpuQuota,
  parseCfsQuota,
  parseCpuMax,
  processorsForWorkers,
} from '../../src/server/workers/processors.ts';

/** A file system of these files only. */
const files =
  (map: Record<string, string>) =>
  (path: string): string | undefined =>
    map[path];

test('cpu.max and cfs quota: processors worth of time; no quota, zero or nonsense is undefined', () => {
  assert.equal(parseCpuMax('150000 100000\n'), 1.5);
  assert.equal(parseCpuMax('50000 100000'), 0.5);
  assert.equal(parseCpuMax('max 100000\n'), undefined);
  assert.equal(parseCpuMax(''), undefined);
  assert.equal(parseCpuMax('0 100000'), undefined);
  assert.equal(parseCpuMax('lots 100000'), undefined);
  assert.equal(parseCfsQuota('200000\n', '100000\n'), 2);
  assert.equal(parseCfsQuota('-1\n', '100000\n'), undefined);
  assert.equal(parseCfsQuota('100000', '0'), undefined);
});

test('cgroup v2: the smallest cpu.max of the group and the groups above it', () => {
  const read = files({
    '/proc/self/cgroup': '0::/system.slice/box.service\n',
    '/sys/fs/cgroup/system.slice/box.service/cpu.max': 'max 100000\n',
    '/sys/fs/cgroup/system.slice/cpu.max': '250000 100000\n',
    '/sys/fs/cgroup/cpu.max': '400000 100000\n',
  });
  assert.equal(cgroupCpuQuota(read), 2.5);
  // Inside a container's cgroup namespace the group is the root of what it sees.
  assert.equal(
    cgroupCpuQuota(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '150000 100000\n' })),
    1.5,
  );
  assert.equal(
    cgroupCpuQuota(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': 'max 100000\n' })),
    undefined,
  );
});

test('cgroup v1: the cpu hierarchy of a hybrid layout (with colons in a path), others ignored', () => {
  const read = files({
    '/proc/self/cgroup':
      '12:memory:/docker/abc\n4:cpu,cpuacct:/docker/a:b\n1:name=systemd:/docker/abc\n0::/docker/abc\n',
    '/sys/fs/cgroup/cpu,cpuacct/docker/a:b/cpu.cfs_quota_us': '100000\n',
    '/sys/fs/cgroup/cpu,cpuacct/docker/a:b/cpu.cfs_period_us': '100000\n',
    '/sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_quota_us': '-1\n',
    '/sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_period_us': '100000\n',
    '/sys/fs/cgroup/memory/docker/abc/cpu.cfs_quota_us': '1000\n',
    '/sys/fs/cgroup/memory/docker/abc/cpu.cfs_period_us': '100000\n',
  });
  assert.equal(cgroupCpuQuota(read), 1);
  assert.equal(cgroupCpuQuota(files({})), undefined, 'no /proc: no quota known');
});

test('workers auto: the processors, capped by a quota rounded up, never below one', () => {
  assert.deepEqual(processorsForWorkers(8, undefined), { count: 8, capped: false, why: '8 processors' });
  assert.deepEqual(processorsForWorkers(8, 8), { count: 8, capped: false, why: '8 processors' });
  assert.deepEqual(processorsForWorkers(32, 1.5), {
    count: 2,
    capped: true,
    why: 'a CPU quota of 1.5 processors (of 32)',
  });
  assert.deepEqual(processorsForWorkers(4, 0.25), {
    count: 1,
    capped: true,
    why: 'a CPU quota of 0.25 processors (of 4)',
  });
  assert.equal(processorsForWorkers(1, undefined).why, '1 processor');
  // This machine: whatever it has, a count from 1 to what node sees.
  const here = processorsForWorkers();
  assert.ok(here.count >= 1);
});
