#!/usr/bin/env node
// Test entry point (npm test): type check, lint/format check, then every test file under test/
// with node:test through the tsx loader. `--unit` skips the checks and the root-only suites.
// Root-only suites (test/**/*.root.test.ts: network namespaces, TUN, raw sockets, the QEMU
// testbed) run when we are root, and are REQUIRED when CI=true or POPTOP_REQUIRE_ROOT_TESTS=1:
// then a missing capability is a failure, never a silent skip.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const filters = args.filter((a) => !a.startsWith('--'));
const root = new URL('..', import.meta.url).pathname;

function run(cmd, argv, env = {}) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, env: { ...process.env, ...env } });
  if (r.status !== 0) {
    console.error(`\n✗ ${cmd} ${argv.join(' ')} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out.sort();
}

const bin = join(root, 'node_modules', '.bin');
if (!unitOnly && filters.length === 0) {
  run(join(bin, 'tsc'), ['-p', 'tsconfig.json', '--noEmit']);
  run(join(bin, 'biome'), ['check', '.']);
}

let files = findTests(join(root, 'test'));
if (filters.length > 0) files = files.filter((f) => filters.some((x) => f.includes(x)));
const isRoot = process.getuid?.() === 0;
const required = process.env.CI === 'true' || process.env.POPTOP_REQUIRE_ROOT_TESTS === '1';
const rootSuites = files.filter((f) => f.includes('.root.test.ts'));
const unitSuites = files.filter((f) => !f.includes('.root.test.ts'));
if (rootSuites.length > 0 && !unitOnly) {
  if (!isRoot && required) {
    console.error('✗ root-only test suites are required here (CI) but we are not root');
    process.exit(1);
  }
}
if (unitSuites.length > 0)
  run(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...unitSuites]);
if (!unitOnly && rootSuites.length > 0) {
  if (isRoot) {
    // The root suites run the real `poptop` executable: compile src/ to dist/ first.
    run(join(bin, 'tsc'), ['-p', 'tsconfig.build.json']);
    // Root suites touch shared kernel state (namespaces, the QEMU testbed): run them one file at a time.
    run(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...rootSuites],
      {
        POPTOP_REQUIRE_ROOT_TESTS: required ? '1' : (process.env.POPTOP_REQUIRE_ROOT_TESTS ?? ''),
      },
    );
  } else {
    console.log(`(skipping ${rootSuites.length} root-only suites: not root and not required)`);
  }
}
