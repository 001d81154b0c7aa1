/**
 * One process's share of `poptop load`: its sessions from its own source addresses. Used in the
 * `poptop load` process itself (startLoad) and, with `--processes P`, in each forked child, which
 * talks to the parent over the IPC channel: `start` in; `progress` every 500 ms and one `report`
 * out; `close` in, then it closes its sessions cleanly and exits.
 */
import { LoadGenerator, type LoadProgress, type LoadReport } from '../client/load.ts';
import { SystemClock } from '../util/clock.ts';
import { consoleLogger, type Logger } from '../util/log.ts';
import type { IPv4 } from '../wire/ip.ts';
import type { ParsedArgs } from './args.ts';
import { clientPolicy } from './connect.ts';
import { openSources } from './load.ts';

export interface LoadShare {
  args: ParsedArgs;
  server: IPv4;
  user: string;
  password: string;
  sessions: number;
  concurrency: number;
  sources: readonly IPv4[];
  log: Logger;
}

export type ParentMessage = ({ type: 'start'; debug: boolean } & Omit<LoadShare, 'log'>) | { type: 'close' };

export type ChildMessage =
  | { type: 'progress'; progress: LoadProgress }
  | { type: 'report'; report: LoadReport; times: number[] };

/** Opens the sockets (throws in words if the kernel refuses) and starts the sessions. */
export function startLoad(s: LoadShare): {
  gen: LoadGenerator;
  done: Promise<LoadReport>;
  close(): Promise<void>;
} {
  const sources = openSources(s.sources, s.log);
  const gen = new LoadGenerator({
    server: s.server,
    user: s.user,
    password: s.password,
    policy: clientPolicy(s.args),
    clock: new SystemClock(),
    log: s.log,
    sources,
    sessions: s.sessions,
    concurrency: s.concurrency,
  });
  return {
    gen,
    done: gen.run(),
    close: async () => {
      await gen.close();
      for (const src of sources) src.gre.close?.();
    },
  };
}

function serveParent(): void {
  const send = (m: ChildMessage) => process.send?.(m);
  let close: (() => Promise<void>) | undefined;
  let closing = false;
  const finish = async () => {
    closing = true;
    await close?.();
    process.exit(0);
  };
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'close') {
      void finish();
      return;
    }
    if (close || closing) return;
    const log = consoleLogger({ debug: m.debug });
    let h: ReturnType<typeof startLoad>;
    try {
      h = startLoad({ ...m, log });
    } catch (e) {
      log.error((e as Error).message);
      process.exit(1);
    }
    close = h.close;
    const timer = setInterval(() => send({ type: 'progress', progress: h.gen.progress() }), 500);
    void h.done.then((report) => {
      clearInterval(timer);
      send({ type: 'progress', progress: h.gen.progress() });
      send({ type: 'report', report, times: [...h.gen.setupTimes()] });
    });
  });
  // The parent went away (killed): close cleanly rather than leave sessions to time out.
  process.on('disconnect', () => void finish());
  // SIGINT reaches the whole process group: the parent decides when to close.
  process.on('SIGINT', () => {});
}

if (process.env.POPTOP_LOAD_WORKER === '1' && process.send) serveParent();
