import type { Clock, TimerHandle } from '../../util/clock.ts';

export interface KeepaliveOptions {
  clock: Clock;
  /** pppd lcp-echo-interval, in ms; 0 disables. */
  intervalMs: number;
  /** pppd lcp-echo-failure: unanswered Echo-Requests in a row that mean the peer is gone; 0 = never. */
  failures: number;
  sendEchoRequest(): void;
  onDead(): void;
}

/**
 * LCP echo keepalive with pppd's semantics: every interval, if `failures` Echo-Requests are
 * already unanswered the link is dead; otherwise send one more. Any valid Echo-Reply clears the
 * count. One timer per link.
 */
export class LcpKeepalive {
  private readonly opts: KeepaliveOptions;
  private timer: TimerHandle | undefined;
  private pending = 0;

  constructor(opts: KeepaliveOptions) {
    this.opts = opts;
  }

  start(): void {
    this.stop();
    this.pending = 0;
    if (this.opts.intervalMs > 0) this.arm();
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  replyReceived(): void {
    this.pending = 0;
  }

  private arm(): void {
    this.timer = this.opts.clock.setTimer(this.opts.intervalMs, () => this.onIntervalExpired());
  }

  private onIntervalExpired(): void {
    this.timer = undefined;
    if (this.opts.failures > 0 && this.pending >= this.opts.failures) {
      this.opts.onDead();
      return;
    }
    this.pending++;
    this.opts.sendEchoRequest();
    this.arm();
  }
}
