import { classifyEnd, type EndCode } from '../../server/end-reasons.ts';
import type { Clock, TimerHandle } from '../../util/clock.ts';
import type { Logger } from '../../util/log.ts';
import { type RadiusClient, RadiusTimeoutError } from './client.ts';
import { type RadiusAttribute, u32Attr } from './codec.ts';
import { AcctStatus, Attr, RadiusCode, TerminateCause, type TerminateCauseValue } from './dictionary.ts';

export interface AccountingQueueOptions {
  clock: Clock;
  log: Logger;
  /** Records kept while no server answers; past it the oldest Interim-Update (else the oldest) goes. */
  maxRecords?: number;
  /** Accounting-Requests in flight at once. */
  concurrency?: number;
  /** Wait after no server answered before trying the queue again. */
  retryMs?: number;
}

interface AccountingRecord {
  status: number;
  attributes: RadiusAttribute[];
  queuedAt: number;
  /** Order of arrival: a record that failed goes back to its place. */
  seq: number;
  /** Words for log lines: "Stop for s3 (alice)". */
  what: string;
}

const STATUS_WORDS: Record<number, string> = {
  [AcctStatus.Start]: 'Start',
  [AcctStatus.Stop]: 'Stop',
  [AcctStatus.InterimUpdate]: 'Interim-Update',
  [AcctStatus.AccountingOn]: 'Accounting-On',
  [AcctStatus.AccountingOff]: 'Accounting-Off',
};

/**
 * Accounting-Requests waiting for a server (RFC 2866): a bounded queue sent in order with a few in
 * flight. A record leaves the queue when a server answered it; when none answers it stays and the
 * queue is tried again after `retryMs` (each attempt carries Acct-Delay-Time, so the server knows
 * when it happened). So an outage loses nothing unless the queue overflows, which drops the oldest
 * Interim-Update first (a later one or the Stop carries newer counters), and is logged.
 * flush() waits for the queue to empty (SIGTERM: the Stops go out before exit).
 */
export class AccountingQueue {
  private readonly client: RadiusClient;
  private readonly opts: Required<AccountingQueueOptions>;
  private readonly queue: AccountingRecord[] = [];
  /** A Start was queued: an Accounting-On not yet answered is no longer sent. */
  private sessionsStarted = false;
  private inFlight = 0;
  private retryTimer: TimerHandle | undefined;
  private waiting: (() => void)[] = [];
  private failing = false;
  private closed = false;
  private seq = 0;
  private dropped = 0;
  private sent = 0;

  constructor(client: RadiusClient, opts: AccountingQueueOptions) {
    this.client = client;
    this.opts = { maxRecords: 4096, concurrency: 16, retryMs: 10_000, ...opts };
  }

  get length(): number {
    return this.queue.length + this.inFlight;
  }

  get stats(): { queued: number; sent: number; dropped: number } {
    return { queued: this.length, sent: this.sent, dropped: this.dropped };
  }

  add(status: number, attributes: RadiusAttribute[], what: string): void {
    if (status === AcctStatus.Start) {
      this.sessionsStarted = true;
      const i = this.queue.findIndex((r) => r.status === AcctStatus.AccountingOn);
      if (i >= 0) this.giveUpAccountingOn(this.queue.splice(i, 1)[0]!);
    }
    if (this.queue.length >= this.opts.maxRecords) {
      let i = this.queue.findIndex((r) => r.status === AcctStatus.InterimUpdate);
      if (i < 0) i = 0;
      const [lost] = this.queue.splice(i, 1);
      this.dropped++;
      if (this.dropped === 1 || this.dropped % 100 === 0) {
        this.opts.log.warn(
          `RADIUS accounting queue full (${this.opts.maxRecords} records): dropped the ${STATUS_WORDS[lost!.status] ?? 'record'} ${lost!.what} (${this.dropped} dropped so far)`,
        );
      }
    }
    this.queue.push({ status, attributes, queuedAt: this.opts.clock.now(), what, seq: this.seq++ });
    this.pump();
  }

  /** Resolves true when the queue is empty, false after `timeoutMs` with records left. */
  flush(timeoutMs: number): Promise<boolean> {
    if (this.length === 0) return Promise.resolve(true);
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    this.pump();
    return new Promise((resolve) => {
      const timer = this.opts.clock.setTimer(timeoutMs, () => {
        this.waiting = this.waiting.filter((w) => w !== done);
        resolve(false);
      });
      const done = () => {
        timer.cancel();
        resolve(true);
      };
      this.waiting.push(done);
    });
  }

  private pump(): void {
    if (this.retryTimer || this.closed) return;
    while (this.inFlight < this.opts.concurrency && this.queue.length > 0) {
      const record = this.queue.shift()!;
      this.inFlight++;
      this.client
        .send({
          code: RadiusCode.AccountingRequest,
          attributes: () => [
            u32Attr(Attr.AcctStatusType, record.status),
            ...record.attributes,
            u32Attr(Attr.AcctDelayTime, Math.floor((this.opts.clock.now() - record.queuedAt) / 1000)),
          ],
        })
        .then(
          () => this.settled(record, true),
          (e: unknown) => {
            if (!(e instanceof RadiusTimeoutError))
              this.opts.log.error(`RADIUS accounting: ${(e as Error).message}`);
            this.settled(record, false);
          },
        );
    }
  }

  private settled(record: AccountingRecord, ok: boolean): void {
    this.inFlight--;
    if (ok) {
      this.sent++;
      if (this.failing) {
        this.failing = false;
        this.opts.log.info(`RADIUS accounting is answered again; ${this.length} records still queued`);
      }
    } else if (record.status === AcctStatus.AccountingOn && this.sessionsStarted) {
      this.giveUpAccountingOn(record);
    } else {
      // Back in its place (order of arrival), and the queue waits before the next attempt.
      const at = this.queue.findIndex((r) => r.seq > record.seq);
      this.queue.splice(at < 0 ? this.queue.length : at, 0, record);
      if (!this.failing) {
        this.failing = true;
        this.opts.log.warn(
          `RADIUS accounting: no server answered the ${STATUS_WORDS[record.status] ?? 'record'} ${record.what}; ` +
            `keeping ${this.length} records and trying again every ${this.opts.retryMs / 1000} s`,
        );
      }
      // Never again at once: the next attempt waits (a flush too: its deadline ends the wait).
      if (!this.retryTimer && !this.closed) {
        this.retryTimer = this.opts.clock.setTimer(this.opts.retryMs, () => {
          this.retryTimer = undefined;
          this.pump();
        });
      }
    }
    if (this.length === 0) {
      const waiting = this.waiting;
      this.waiting = [];
      for (const w of waiting) w();
    } else if (ok) this.pump();
  }

  /**
   * An Accounting-On tells the server every session of this NAS has ended (sqlippool frees their
   * addresses). Sent after sessions began here, it would free theirs too: once a Start is queued, an
   * unanswered Accounting-On is given up rather than sent late.
   */
  private giveUpAccountingOn(record: AccountingRecord): void {
    this.dropped++;
    this.opts.log.warn(
      `RADIUS accounting: gave up the Accounting-On ${record.what}: no server answered it before the first session started, and sent later it would end that session's records (and free its address) on the server`,
    );
  }

  /** Stop sending: records still queued are given up (the caller logs how many). */
  close(): void {
    this.closed = true;
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
  }
}

/** Acct-Terminate-Cause (RFC 2866 §5.10) for each way a session can end (server/end-reasons.ts). */
const CAUSE_BY_END: Record<EndCode, TerminateCauseValue> = {
  auth_failed: TerminateCause.NasError,
  auth_refused: TerminateCause.NasError,
  locked_out: TerminateCause.NasError,
  mppe_refused: TerminateCause.ServiceUnavailable,
  pool_empty: TerminateCause.NasError,
  connection_limit: TerminateCause.NasError,
  source_limit: TerminateCause.NasError,
  gre_never_seen: TerminateCause.NasError,
  echo_timeout: TerminateCause.LostCarrier,
  setup_timeout: TerminateCause.LostCarrier,
  peer_hangup: TerminateCause.UserRequest,
  admin_kill: TerminateCause.AdminReset,
  shutdown: TerminateCause.AdminReboot,
  ipcp_failed: TerminateCause.NasError,
  protocol_error: TerminateCause.NasError,
  other: TerminateCause.NasError,
};

/**
 * Acct-Terminate-Cause for the reason a session ended, from its classification (classifyEnd), so
 * that words the peer put in its reason (a Terminate-Request's text) cannot choose it. The
 * TCP connection closing without a PPTP or PPP goodbye is Lost-Carrier, not a User-Request.
 * RADIUS's own ends (Session-Timeout, Idle-Timeout, Disconnect-Request) are given by RadiusSession.
 */
export function terminateCause(reason: string): TerminateCauseValue {
  const code = classifyEnd(reason).code;
  if (code === 'peer_hangup' && reason.startsWith('TCP connection closed')) return TerminateCause.LostCarrier;
  return CAUSE_BY_END[code];
}
