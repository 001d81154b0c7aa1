/**
 * One process's share of `poptop load`: its sessions from its own source addresses. Used in the
 * `poptop load` process itself (startLoad) and, with `--processes P`, in each forked child, which
 * talks to the parent over the IPC channel: `start` in; `progress` every 500 ms and one `report`
 * out; `close` in, then it closes its sessions cleanly and exits.
 */
import { connect } from 'node:net';
import { LoadGenerator, type LoadProgress, type LoadReport, type LoadSource } from '../client/load.ts';
import { RawGreSocket } from '../net/gre-socket.ts';
import { SystemClock } from '../util/clock.ts';
import { consoleLogger, type Logger } from '../util/log.ts';
import { extend } from '../util/objects.ts';
import { formatIPv4, type IPv4 } from '../wire/ip.ts';
import type { ParsedArgs } from './args.ts';
import { clientPolicy } from './connect.ts';

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

export type ParentMessage =
  | ({ type: 'start'; debug: boolean } & Omit<LoadShare, 'log'>)
  /** Start no more sessions (Ctrl-C during the set-up); the report follows. */
  | { type: 'stop' }
  | { type: 'close' };

export type ChildMessage =
  | { type: 'progress'; progress: LoadProgress }
  | { type: 'report'; report: LoadReport; times: number[] };

/** One GRE socket per source address, TCP connecting from it; [any address] when none is given. */
export function openSources(addresses: readonly IPv4[], log: Logger): LoadSource[] {
  if (addresses.length === 0) return [{ gre: new RawGreSocket({ log }) }];
  return addresses.map((a) => ({
    gre: new RawGreSocket({ log, localAddress: a }),
    connectTcp: (host: string, port: number) =>
      connect({ host, port, localAddress: formatIPv4(a), noDelay: true }),
  }));
}

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
  // The parent may be gone (killed): a send then would raise an unhandled 'error' and end us
  // before our sessions are closed.
  const send = (m: ChildMessage) => {
    if (process.connected) process.send?.(m, () => {});
  };
  let h: ReturnType<typeof startLoad> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closing = false;
  const finish = async () => {
    if (closing) return;
    closing = true;
    clearInterval(timer);
    h?.gen.stop();
    await h?.close();
    process.exit(0);
  };
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'close') {
      void finish();
      return;
    }
    if (m.type === 'stop') {
      h?.gen.stop();
      return;
    }
    if (h || closing) return;
    const log = consoleLogger({ debug: m.debug });
    try {
      h = startLoad(extend(m, { log }));
    } catch (e) {
      log.error((e as Error).message);
      process.exit(1);
    }
    const gen = h.gen;
    timer = setInterval(() => send({ type: 'progress', progress: gen.progress() }), 500);
    void h.done.then((report) => {
      clearInterval(timer);
      send({ type: 'progress', progress: gen.progress() });
      send({ type: 'report', report, times: [...gen.setupTimes()] });
    });
  });
  // The parent went away (killed): close cleanly rather than leave sessions to time out.
  process.on('disconnect', () => void finish());
  // SIGINT reaches the whole process group: the parent decides when to stop and close.
  process.on('SIGINT', () => {});
}

if (process.env.POPTOP_LOAD_WORKER === '1' && process.send) serveParent();
