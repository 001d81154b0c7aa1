import { LoadGenerator } from '../client/load.ts';
import { RawGreSocket } from '../net/gre-socket.ts';
import { SystemClock } from '../util/clock.ts';
import { escapeControls } from '../util/escape.ts';
import { consoleLogger } from '../util/log.ts';
import { parseIPv4 } from '../wire/ip.ts';
import { type FlagSpec, flag, has, intFlag, type ParsedArgs, UsageError } from './args.ts';
import { CONNECT_FLAGS, clientPolicy } from './connect.ts';
import { resolvePassword } from './password.ts';

export const LOAD_FLAGS = [
  ...CONNECT_FLAGS.filter((f) => f.name !== 'tun' && f.name !== 'route'),
  { name: 'sessions', short: ['n'], value: true },
  { name: 'concurrency', short: ['c'], value: true },
  { name: 'hold', value: true },
  { name: 'json', value: false },
] as const satisfies readonly FlagSpec[];

/**
 * `poptop load SERVER --user U --password P -n 1000 -c 64 [--hold S]`: open many sessions from
 * this host (no TUN device each; one raw GRE socket), report the set-up rate and failures, hold
 * them for S seconds, then disconnect them all cleanly.
 */
export async function load(args: ParsedArgs): Promise<number> {
  const server = parseIPv4(args.positional[0] ?? '');
  if (server === undefined) throw new UsageError('load needs the server IPv4 address');
  const user = flag(args, 'user');
  if (!user) throw new UsageError('load needs --user');
  const password = await resolvePassword(args, 'load');
  const sessions = intFlag(args, 'sessions', 1, 19_000) ?? 100;
  const concurrency = intFlag(args, 'concurrency', 1, 1000) ?? 32;
  const holdS = intFlag(args, 'hold', 0, 86_400) ?? 0;
  const log = consoleLogger({ debug: has(args, 'debug') });
  let gre: RawGreSocket;
  try {
    gre = new RawGreSocket({ log });
  } catch (e) {
    log.error((e as Error).message);
    return 1;
  }
  const clock = new SystemClock();
  const gen = new LoadGenerator({
    server,
    user,
    password,
    policy: clientPolicy(args),
    clock,
    log,
    gre,
    sessions,
    concurrency,
  });
  const report = await gen.run();
  if (has(args, 'json')) process.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    process.stdout.write(
      `${report.up}/${report.requested} sessions up in ${report.setupSeconds.toFixed(2)} s ` +
        `(${(report.up / Math.max(report.setupSeconds, 1e-6)).toFixed(0)}/s; set-up p50 ${report.p50Ms.toFixed(0)} ms, p99 ${report.p99Ms.toFixed(0)} ms)\n`,
    );
    for (const [reason, n] of Object.entries(report.reasons))
      process.stdout.write(`  ${n} × ${escapeControls(reason)}\n`);
  }
  if (holdS > 0) await new Promise((r) => setTimeout(r, holdS * 1000));
  await gen.close();
  gre.close();
  return report.failed === 0 ? 0 : 1;
}
