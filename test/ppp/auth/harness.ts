import type { Credential } from '../../../src/aaa/credentials.ts';
import { StaticCredentials } from '../../../src/aaa/credentials.ts';
import type { AuthExchange, AuthFailure, AuthHost, AuthSuccess } from '../../../src/ppp/auth/types.ts';
import { ManualClock } from '../../../src/util/clock.ts';
import { MemoryLogger } from '../../../src/util/log.ts';

/** One side of an in-memory link: records what the exchange sends and how it ended. */
export class FakeHost implements AuthHost {
  readonly clock: ManualClock;
  readonly log: MemoryLogger;
  readonly sent: { protocol: number; packet: Uint8Array }[] = [];
  readonly successes: AuthSuccess[] = [];
  readonly failures: AuthFailure[] = [];
  /** Called for every packet sent (wired to the other side by `connect`). */
  onSend: ((protocol: number, packet: Uint8Array) => void) | undefined;

  constructor(clock: ManualClock, log: MemoryLogger) {
    this.clock = clock;
    this.log = log;
  }
  send(protocol: number, packet: Uint8Array): void {
    this.sent.push({ protocol, packet: packet.slice() });
    this.onSend?.(protocol, packet);
  }
  succeeded(result: AuthSuccess): void {
    this.successes.push(result);
  }
  failed(result: AuthFailure): void {
    this.failures.push(result);
  }
  get outcome(): 'success' | 'failure' | 'pending' {
    if (this.successes.length + this.failures.length > 1) throw new Error('exchange ended twice');
    if (this.successes.length) return 'success';
    return this.failures.length ? 'failure' : 'pending';
  }
}

export interface Pair {
  clock: ManualClock;
  log: MemoryLogger;
  server: FakeHost;
  client: FakeHost;
}

export function makePair(): Pair {
  const clock = new ManualClock();
  const log = new MemoryLogger({ debug: true });
  return {
    clock,
    log,
    server: new FakeHost(clock, log.child('server')),
    client: new FakeHost(clock, log.child('client')),
  };
}

/**
 * Wire two exchanges through the clock with a 1 ms delay each way. `lose(direction, n)` decides
 * whether the n-th packet (from 0) in that direction is lost.
 */
export function connect(
  pair: Pair,
  server: AuthExchange,
  client: AuthExchange,
  lose: (direction: 'to-client' | 'to-server', n: number) => boolean = () => false,
): void {
  let toClient = 0;
  let toServer = 0;
  pair.server.onSend = (_protocol, packet) => {
    if (lose('to-client', toClient++)) return;
    const copy = packet.slice();
    pair.clock.setTimer(1, () => client.receive(copy));
  };
  pair.client.onSend = (_protocol, packet) => {
    if (lose('to-server', toServer++)) return;
    const copy = packet.slice();
    pair.clock.setTimer(1, () => server.receive(copy));
  };
}

/** A deterministic random source (a counter), so runs are reproducible. */
export function countingRandom(seed = 1): (n: number) => Uint8Array {
  let x = seed;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      out[i] = x >>> 16;
    }
    return out;
  };
}

export function store(entries: Partial<Credential>[]): StaticCredentials {
  return new StaticCredentials(
    entries.map((e) => ({
      user: e.user ?? 'alice',
      server: e.server ?? '*',
      secret: e.secret ?? { kind: 'password', password: 'secret' },
      addresses: e.addresses ?? [],
    })),
  );
}
