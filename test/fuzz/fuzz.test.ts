/**
 * Every fuzz target, briefly, on every `npm test`: the seed corpus (real captures and fixtures) and
 * the saved regression inputs are replayed, then a fixed number of generated inputs (fixed seed, so a
 * failure here reproduces) run through the target. Long runs: `npm run fuzz` (scripts/fuzz.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { corpusDir, describeFailure, fuzz, readInputs, replay } from './engine.ts';
import { TARGETS } from './targets.ts';

/** Inputs per target: about 1-2 s each (measured rates: `npm run fuzz`); about 25 s in all. */
const RUNS: Record<string, number> = {
  'pptp-codec': 30_000,
  'pptp-framer': 15_000,
  'pptp-control': 20_000,
  'ppp-link': 6_000,
  'pptpd-conf': 20_000,
  'pppd-options': 10_000,
};
const DEFAULT_RUNS = 50_000;

for (const target of TARGETS) {
  test(`fuzz ${target.name}: ${target.what}`, async (t) => {
    await t.test('seed corpus and regressions replay cleanly', () => {
      assert.ok(readInputs(corpusDir(target.name)).length > 0, `no seed corpus for ${target.name}`);
      const failures = replay(target);
      assert.deepEqual(
        failures.map((f) => `${f.name}: ${f.error instanceof Error ? f.error.message : String(f.error)}`),
        [],
      );
    });
    await t.test('generated and mutated inputs', () => {
      const r = fuzz(target, { seed: 20_250_601, runs: RUNS[target.name] ?? DEFAULT_RUNS });
      assert.equal(r.failure, undefined, r.failure && describeFailure(target.name, r.failure));
    });
  });
}
