#!/usr/bin/env node
// The `poptop` executable: runs the compiled CLI (npm install builds dist/ and the native addon).
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    'poptop: dist/ is missing; run `npm install` (or `npm run build`) in the poptop directory first\n',
  );
  process.exit(1);
}
const { run } = await import(main.href);
process.exitCode = await run(process.argv.slice(2));
