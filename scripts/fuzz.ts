// Long fuzz runs on demand: `npm run fuzz -- [target] [seconds] [--seed N]`.
//   npm run fuzz               every target, 60 s each
//   npm run fuzz -- gre 600    one target for 10 minutes
//   npm run fuzz -- all 300    every target, 5 minutes each
// Inputs that break an invariant are shrunk and written to test/fuzz/regressions/<target>/, which
// `npm test` replays from then on; the run goes on with a fresh seed until its time is up.
import { describeFailure, fuzz } from '../test/fuzz/engine.ts';
import { TARGETS, targetByName } from '../test/fuzz/targets.ts';

const args = process.argv.slice(2);
const seedAt = args.indexOf('--seed');
let seed = seedAt >= 0 ? Number(args.splice(seedAt, 2)[1]) : Date.now() % 2 ** 31;
const [which = 'all', secondsText = '60'] = args;
const seconds = Number(secondsText);
if (!Number.isFinite(seconds) || seconds <= 0) {
  console.error(
    `usage: npm run fuzz -- [${['all', ...TARGETS.map((t) => t.name)].join('|')}] [seconds] [--seed N]`,
  );
  process.exit(2);
}
const targets = which === 'all' ? TARGETS : [targetByName(which)];
let failed = 0;
for (const target of targets) {
  const deadline = performance.now() + seconds * 1000;
  let runs = 0;
  const seen = new Set<string>();
  console.log(`${target.name}: ${target.what}`);
  const started = performance.now();
  while (performance.now() < deadline) {
    const r = fuzz(target, { seed, timeMs: Math.max(1, deadline - performance.now()) });
    runs += r.runs;
    if (r.failure) {
      const key =
        r.failure.error instanceof Error ? r.failure.error.message.split('\n')[0]! : String(r.failure.error);
      if (!seen.has(key)) {
        seen.add(key);
        failed++;
        console.log(`  seed ${seed}: ${describeFailure(target.name, r.failure)}`);
      }
    }
    seed = (seed + 1) % 2 ** 31;
  }
  const s = (performance.now() - started) / 1000;
  console.log(
    `  ${runs} inputs in ${s.toFixed(1)} s (${Math.round(runs / s)}/s), ${seen.size} distinct failure(s)`,
  );
}
process.exit(failed > 0 ? 1 : 0);
