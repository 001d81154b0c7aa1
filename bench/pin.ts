/**
 * Runs a benchmark on one processor, with the children it starts (they inherit the affinity).
 *
 * On a shared VM the host slows one virtual processor at a time, for seconds on end. A benchmark
 * that compares our code with a reference in another process (C, OpenSSL) is then comparing the
 * processors as much as the code when the two land on different ones: bench/datapath.ts saw TS/C
 * of one build move between 1.0 and 1.8 from one few-second phase to the next, while each side
 * pinned to either processor kept within a few percent.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

const PINNED = 'POPTOP_BENCH_PINNED';

/**
 * Re-runs this process under `taskset -c CPU` (the last processor) and exits with its status; in
 * the re-run, returns the processor's number. Without taskset, returns a note that it runs unpinned.
 */
export function pinToOneProcessor(): string {
  const pinned = process.env[PINNED];
  if (pinned !== undefined) return pinned;
  const cpu = String(availableParallelism() - 1);
  const again = spawnSync(
    'taskset',
    ['-c', cpu, process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    {
      stdio: 'inherit',
      env: { ...process.env, [PINNED]: cpu },
    },
  );
  if (!again.error) process.exit(again.status ?? 1);
  return `none (taskset: ${again.error.message}; figures are less steady)`;
}
