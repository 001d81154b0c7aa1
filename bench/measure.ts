/** The timing loop of the benchmarks that time one step many times (bench/datapath.ts, bench/mppe.ts). */

/** Steps run, and the wall and CPU time each took on average. */
export interface Timing {
  n: number;
  wallUs: number;
  cpuUs: number;
}

/**
 * A loop that runs `step` in batches of 256 for at least `ms` or `maxIterations` steps. Each step
 * gets its own loop, compiled from source of its own: one loop calling several steps would make the
 * call polymorphic and keep V8 from inlining any of them, which cost bench/datapath.ts's TS side up
 * to a third.
 */
export function measurer(step: () => void, maxIterations: number): (ms: number) => Timing {
  const loop = new Function(
    'step',
    'maxIterations',
    `return (ms) => {
      const w0 = performance.now();
      const c0 = process.cpuUsage();
      let n = 0;
      let elapsed = 0;
      while (n < maxIterations) {
        for (let k = 0; k < 256; k++) step();
        n += 256;
        elapsed = performance.now() - w0;
        if (elapsed >= ms) break;
      }
      const cpu = process.cpuUsage(c0);
      return { n, wallUs: (elapsed * 1000) / n, cpuUs: (cpu.user + cpu.system) / n };
    };`,
  );
  return loop(step, maxIterations);
}
