/** Runs the real CLI (src/cli/main.ts through tsx) in a child process: exit code, stdout, stderr. */
import { execFile } from 'node:child_process';

const ROOT = new URL('../..', import.meta.url).pathname;

export function runCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const script =
    "const m = await import('./src/cli/main.ts'); process.exitCode = await m.run(process.argv.slice(1));";
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script, '--', ...args],
      { cwd: ROOT, timeout: 30_000 },
      (err, out, errText) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, out, err: errText });
      },
    );
  });
}
