import { GreDemux, type GreDemuxDropReason } from '../gre/demux.ts';
import { CallIdAllocator } from '../pptp/call-ids.ts';
import { DropCounter } from '../util/counters.ts';
import { type ClientOptions, PptpClient } from './client.ts';

/** What every generated session shares, as for one client; plus how many and how fast. */
export type LoadOptions = Pick<
  ClientOptions,
  'server' | 'port' | 'user' | 'password' | 'policy' | 'clock' | 'log' | 'gre' | 'connectTcp'
> & {
  sessions: number;
  /** Set-ups in flight at once. */
  concurrency: number;
};

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

  constructor(o: LoadOptions) {
    this.o = o;
    this.demux = new GreDemux(new DropCounter<GreDemuxDropReason>(o.log, 'packet'));
    o.gre.onPacket((packet, from) => this.demux.receive(packet, from));
  }

  /** Open the sessions; resolves when every one is up or has failed. */
  async run(): Promise<LoadReport> {
    const { o } = this;
    const times: number[] = [];
    const reasons: Record<string, number> = {};
    let next = 0;
    let failed = 0;
    const started = o.clock.now();
    const one = async (): Promise<void> => {
      const t0 = o.clock.now();
      const up = await new Promise<boolean>((resolve) => {
        const client = new PptpClient({
          server: o.server,
          ...(o.port !== undefined ? { port: o.port } : {}),
          ...(o.connectTcp ? { connectTcp: o.connectTcp } : {}),
          user: o.user,
          password: o.password,
          policy: o.policy,
          clock: o.clock,
          log: o.log.child(`[load ${this.clients.length + 1}]`),
          gre: o.gre,
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
      if (up) times.push(o.clock.now() - t0);
      else failed++;
    };
    const worker = async (): Promise<void> => {
      while (next < o.sessions) {
        next++;
        await one();
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, worker));
    times.sort((a, b) => a - b);
    const pct = (p: number): number => times[Math.min(times.length - 1, Math.floor(times.length * p))] ?? 0;
    return {
      requested: o.sessions,
      up: times.length,
      failed,
      reasons,
      setupSeconds: (o.clock.now() - started) / 1000,
      p50Ms: pct(0.5),
      p99Ms: pct(0.99),
    };
  }

  /** Disconnect every session cleanly. */
  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close('load test finished')));
  }
}
