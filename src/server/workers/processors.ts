/**
 * How many processors `workers auto` may count on: the ones the process may run on
 * (`availableParallelism()`: the CPU affinity mask), and no more than its control groups' CPU
 * quota allows. A container started with `--cpus 1.5` on a 32-processor host sees all 32 in its
 * affinity mask, but the kernel lets it run for 1.5 processors' worth of time: 32 workers would
 * each wait their turn and hold their memory for nothing, so `auto` gives 2 there.
 *
 * The quota is read as the kernel keeps it. cgroup v2: `cpu.max` ("QUOTA PERIOD", or "max PERIOD"
 * without a quota) in the process's group (the "0::PATH" line of /proc/self/cgroup) and in each
 * group above it, the smallest applying. cgroup v1: `cpu.cfs_quota_us` (-1 without a quota) and
 * `cpu.cfs_period_us` in the hierarchy whose line names the "cpu" controller. Within a cgroup
 * namespace (a container) the paths start at its own root, which is where /sys/fs/cgroup is
 * mounted.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Reads a file as text; undefined when it cannot be read. */
export type ReadText = (path: string) => string | undefined;

const readText: ReadText = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** Processors' worth of time in a v2 `cpu.max` ("150000 100000" is 1.5); undefined for "max" or unreadable text. */
export function parseCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  if (quota === 'max') return undefined;
  return share(Number(quota), Number(period ?? 100_000));
}

/** Processors' worth of time from v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us`; undefined for -1. */
export function parseCfsQuota(quotaText: string, periodText: string): number | undefined {
  return share(Number(quotaText.trim()), Number(periodText.trim()));
}

function share(quota: number, period: number): number | undefined {
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return undefined;
  return quota / period;
}

/** The group's path and each path above it, up to the root ("/a/b" gives "/a/b", "/a", ""). */
function groupAndParents(path: string): string[] {
  const parts = path.split('/').filter(Boolean);
  const out: string[] = [];
  for (let n = parts.length; n >= 0; n--)
    out.push(
      parts
        .slice(0, n)
        .map((p) => `/${p}`)
        .join(''),
    );
  return out;
}

/**
 * The smallest CPU quota, in processors' worth of time, of the control groups this process runs
 * in (see the file's comment); undefined when none has a quota or nothing can be read.
 */
export function cgroupCpuQuota(read: ReadText = readText, root = '/sys/fs/cgroup'): number | undefined {
  const membership = read('/proc/self/cgroup');
  if (membership === undefined) return undefined;
  let least: number | undefined;
  const consider = (q: number | undefined): void => {
    if (q !== undefined && (least === undefined || q < least)) least = q;
  };
  for (const line of membership.split('\n')) {
    // "ID:CONTROLLERS:PATH"; the path may itself hold colons.
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (line.slice(0, first) === '0' && controllers === '') {
      for (const group of groupAndParents(path)) {
        const text = read(`${root}${group}/cpu.max`);
        if (text !== undefined) consider(parseCpuMax(text));
      }
    } else if (controllers.split(',').includes('cpu')) {
      const dir = `${root}/${controllers}`;
      for (const group of groupAndParents(path)) {
        const quota = read(`${dir}${group}/cpu.cfs_quota_us`);
        const period = read(`${dir}${group}/cpu.cfs_period_us`);
        if (quota !== undefined && period !== undefined) consider(parseCfsQuota(quota, period));
      }
    }
  }
  return least;
}

/** What `workers auto` counts: the processors it may run on, capped by a CPU quota (rounded up). */
export function processorsForWorkers(
  available = availableParallelism(),
  quota: number | undefined = cgroupCpuQuota(),
): { count: number; capped: boolean; why: string } {
  if (quota === undefined || Math.ceil(quota) >= available) {
    return { count: available, capped: false, why: `${available} processor${available === 1 ? '' : 's'}` };
  }
  const count = Math.max(1, Math.ceil(quota));
  return {
    count,
    capped: true,
    why: `a CPU quota of ${Number(quota.toFixed(2))} processor${quota === 1 ? '' : 's'} (of ${available})`,
  };
}
