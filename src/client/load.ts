import { GRE_DEMUX_EXPECTED, GreDemux, type GreDemuxDropReason } from '../gre/demux.ts';
import type { GrePort } from '../net/interfaces.ts';
import { CallIdAllocator } from '../pptp/call-ids.ts';
import { DropCounter } from '../util/counters.ts';
import { warningsOnly } from '../util/log.ts';
import { type ClientOptions, PptpClient } from './client.ts';

/** One local address sessions start from: its GRE socket and how TCP connects from it. */
export interface LoadSource {
  gre: GrePort;
  connectTcp?: ClientOptions['connectTcp'];
}

/** What every generated session shares, as for one client; plus where from, how many and how fast. */
export type LoadOptions = Pick<
  ClientOptions,
  'server' | 'port' | 'user' | 'password' | 'policy' | 'clock' | 'log'
> & {
  /**
   * Local addresses (at least one): sessions take them in turn (round robin), so that per-source
   * limits and the ephemeral port range of one address do not cap a run.
   */
  sources: readonly LoadSource[];
  sessions: number;
  /** Set-ups in flight at once. */
  concurrency: number;
};

/** How far a run is, at any moment (for progress lines). */
export interface LoadProgress {
  requested: number;
  up: number;
  failed: number;
  /** Set-ups started and not yet up or failed. */
  inFlight: number;
  reasons: Record<string, number>;
  /** Seconds since run() started. */
  seconds: number;
}

export interface LoadReport {
  requested: number;
  up: number;
  failed: number;
  /** Distinct failure reasons with their counts. */
  reasons: Record<string, number>;
  setupSeconds: number;
  /** Set-up times (TCP connect → IPCP up), milliseconds. */
  p50Ms: number;
  p99Ms: number;
}

/**
 * The load generator behind `poptop load`: many client sessions from one process, without a TUN
 * device each, sharing one raw GRE socket. Holds the sessions until `close()`.
 */
export class LoadGenerator {
  private readonly o: LoadOptions;
  private readonly callIds = new CallIdAllocator();
  private readonly demux: GreDemux;
  private readonly clients: PptpClient[] = [];
  private readonly times: number[] = [];
  private readonly reasons: Record<string, number> = {};
  private failed = 0;
  private inFlight = 0;
  private startedAt: number | undefined;
  private stopped = false;

  constructor(o: LoadOptions) {
    this.o = o;
    this.demux = new GreDemux(
      new DropCounter<GreDemuxDropReason>(o.log, 'packet', undefined, { expected: GRE_DEMUX_EXPECTED }),
      o.clock,
    );
    if (o.sources.length === 0) throw new RangeError('the load generator needs a source');
    // One demultiplexer: call ids are unique across the process, whichever socket a packet came in on.
    for (const src of o.sources) src.gre.onPacket((packet, from) => this.demux.receive(packet, from));
  }

  /** Start no more sessions: run() resolves once those in flight are up or failed. */
  stop(): void {
    this.stopped = true;
  }

  /** Where the run is now. */
  progress(): LoadProgress {
    return {
      requested: this.o.sessions,
      up: this.times.length,
      failed: this.failed,
      inFlight: this.inFlight,
      reasons: { ...this.reasons },
      seconds: this.startedAt === undefined ? 0 : (this.o.clock.now() - this.startedAt) / 1000,
    };
  }

  /** Every set-up time so far (TCP connect → IPCP up), milliseconds, in the order they came up. */
  setupTimes(): readonly number[] {
    return this.times;
  }

  /** Open the sessions; resolves when every one is up or has failed. */
  async run(): Promise<LoadReport> {
    const { o, times, reasons } = this;
    let next = 0;
    const started = o.clock.now();
    this.startedAt = started;
    const one = async (index: number): Promise<void> => {
      const t0 = o.clock.now();
      const src = o.sources[index % o.sources.length]!;
      this.inFlight++;
      const up = await new Promise<boolean>((resolve) => {
        const client = new PptpClient({
          server: o.server,
          ...(o.port !== undefined ? { port: o.port } : {}),
          ...(src.connectTcp ? { connectTcp: src.connectTcp } : {}),
          user: o.user,
          password: o.password,
          policy: o.policy,
          clock: o.clock,
          // Each session's steps only with --debug: outcomes are counted in the report.
          log: (o.log.debugEnabled ? o.log : warningsOnly(o.log)).child(`[load ${this.clients.length + 1}]`),
          gre: src.gre,
          callIds: this.callIds,
          demux: this.demux,
          onUp: () => resolve(true),
          onDown: (reason) => {
            reasons[reason] = (reasons[reason] ?? 0) + 1;
            resolve(false);
          },
        });
        this.clients.push(client);
        client.start();
      });
      this.inFlight--;
      if (up) times.push(o.clock.now() - t0);
      else this.failed++;
    };
    const worker = async (): Promise<void> => {
      while (!this.stopped && next < o.sessions) await one(next++);
    };
    await Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, worker));
    const sorted = [...times].sort((a, b) => a - b);
    return {
      requested: o.sessions,
      up: times.length,
      failed: this.failed,
      reasons: { ...reasons },
      setupSeconds: (o.clock.now() - started) / 1000,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
    };
  }

  /** Disconnect every session cleanly. */
  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close('load test finished')));
  }
}

/** The p-quantile of ascending `sorted` (nearest rank); 0 when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}
