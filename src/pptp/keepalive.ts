/**
 * The control connection's keepalive (RFC 2637 §3.1.4, "Keep-alive timer"): after `intervalMs`
 * without ANY received message an Echo-Request goes out; if the Echo-Reply with its Identifier does
 * not come within `timeoutMs`, the peer is declared dead. Receiving a message only stamps the time:
 * the one timer re-arms itself lazily, so a busy connection costs no timer churn.
 */
import type { Clock, TimerHandle } from '../util/clock.ts';

export interface KeepaliveOptions {
  clock: Clock;
  intervalMs: number;
  timeoutMs: number;
  sendEchoRequest(identifier: number): void;
  onDead(reason: string): void;
}

export class EchoKeepalive {
  private readonly opts: KeepaliveOptions;
  private lastReceived = 0;
  private identifier = 0;
  private pending: number | undefined;
  private timer: TimerHandle | undefined;

  constructor(opts: KeepaliveOptions) {
    this.opts = opts;
  }

  /** Begin watching (the connection is established). */
  start(): void {
    this.lastReceived = this.opts.clock.now();
    this.arm(this.opts.intervalMs);
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = this.pending = undefined;
  }

  /** Any message arrived from the peer. */
  received(): void {
    this.lastReceived = this.opts.clock.now();
  }

  /** An Echo-Reply arrived; false when its Identifier is not the one we wait for. */
  replyReceived(identifier: number): boolean {
    if (this.pending === undefined || identifier !== this.pending) return false;
    this.pending = undefined;
    this.arm(this.opts.intervalMs);
    return true;
  }

  private arm(ms: number): void {
    this.timer?.cancel();
    this.timer = this.opts.clock.setTimer(ms, () => this.onIntervalExpired());
  }

  private onIntervalExpired(): void {
    const { clock, intervalMs, timeoutMs } = this.opts;
    const silent = clock.now() - this.lastReceived;
    if (silent < intervalMs) {
      this.arm(intervalMs - silent);
      return;
    }
    this.identifier = (this.identifier + 1) >>> 0;
    this.pending = this.identifier;
    this.timer = clock.setTimer(timeoutMs, () => {
      this.timer = undefined;
      this.opts.onDead(`peer did not answer Echo-Request for ${timeoutMs / 1000} s`);
    });
    this.opts.sendEchoRequest(this.pending);
  }
}
