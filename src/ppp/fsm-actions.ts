import type { TimerHandle } from '../util/clock.ts';
import { DropCounter } from '../util/counters.ts';
import type { ProtocolLayer } from '../wire/errors.ts';
import { codeName, PacketCode } from './constants.ts';
import type { ControlProtocolHandler, FsmConfig, FsmDropReason, FsmHost, FsmState } from './fsm-types.ts';
import { defaultMaxExchanges } from './fsm-types.ts';
import type { ConfigOption } from './options.ts';
import { decodeOptions, encodeOptions, optionEqual } from './options.ts';
import { encodeControlPacket } from './packet.ts';

const TIMED: ReadonlySet<FsmState> = new Set(['closing', 'stopping', 'req-sent', 'ack-rcvd', 'ack-sent']);

/**
 * The state and the actions of the RFC 1661 §4.4 automaton (irc, zrc, scr, sca/scn via sendPacket,
 * str, sta, scj; the restart timer; identifiers). The events that use them are in fsm.ts.
 */
export abstract class FsmActions {
  protected stateValue: FsmState = 'initial';
  protected readonly handler: ControlProtocolHandler;
  protected readonly cfg: FsmConfig;
  protected readonly host: FsmHost;
  protected readonly layer: ProtocolLayer;
  readonly drops: DropCounter<FsmDropReason>;
  protected nextId = 1;
  protected reqId = -1;
  protected lastRequest: Uint8Array = new Uint8Array(0);
  /** An Ack/Nak/Reject for the current request id was already accepted (duplicates dropped). */
  protected seenAnswer = false;
  protected restartCount = 0;
  /** Configure-Naks we sent in a row (RFC 1661 §4.6 Max-Failure; then our Naks become Rejects). */
  protected nakLoops = 0;
  /** Configure-Naks received for our requests since the last Ack (then treated as Rejects). */
  protected rnakLoops = 0;
  /** Configure-Requests, -Naks and -Rejects sent in this negotiation (bounded by maxExchanges). */
  protected exchanges = 0;
  protected readonly maxExchanges: number;
  protected timer: TimerHandle | undefined;
  /** Bumped on every state change, so a transition can notice re-entry from a callback. */
  protected generation = 0;
  protected reason = '';

  /** Why the automaton is (or was last) going down, in words; '' if it never was. */
  get downReason(): string {
    return this.reason;
  }

  constructor(handler: ControlProtocolHandler, cfg: FsmConfig, host: FsmHost) {
    this.handler = handler;
    this.cfg = cfg;
    this.host = host;
    this.layer = handler.name.toLowerCase() as ProtocolLayer;
    this.drops = new DropCounter<FsmDropReason>(host.log, `${handler.name} packet`);
    this.maxExchanges = cfg.maxExchanges ?? defaultMaxExchanges(cfg);
  }

  /** TO+ / TO−: the restart timer expired (RFC 1661 §4.6). */
  protected abstract onRestartExpired(): void;

  get state(): FsmState {
    return this.stateValue;
  }

  get name(): string {
    return this.handler.name;
  }

  // ── Actions ─────────────────────────────────────────────────────────────────────────────────

  protected beginNegotiation(): void {
    this.setState('req-sent');
    this.handler.reset();
    this.nakLoops = 0;
    this.resetNegotiationBounds();
    this.irc(this.cfg.maxConfigure);
    this.scr();
  }

  /** A new negotiation (or one that reached Opened): the received-Nak and exchange counts restart. */
  protected resetNegotiationBounds(): void {
    this.rnakLoops = 0;
    this.exchanges = 0;
  }

  /** True when this negotiation has used up its Configure exchanges (maxExchanges). */
  protected get exchangesExhausted(): boolean {
    return this.exchanges >= this.maxExchanges;
  }

  /**
   * The negotiation does not converge: Stopped and tlf with the reason in words (like the end of
   * Max-Configure).
   */
  protected giveUp(reason: string): void {
    this.reason = reason;
    this.host.log.warn(`${this.name}: ${reason}`);
    this.setState('stopped');
    this.handler.finished(reason);
  }

  /**
   * Opened → Req-Sent: tld, then scr (RCR/RCA/RTA in Opened). The counter is reset first, as
   * lwIP does, so a renegotiation gets the full Max-Configure. False when tld re-entered us.
   */
  protected renegotiate(): boolean {
    const gen = this.setState('req-sent');
    this.handler.down();
    if (gen !== this.generation) return false;
    this.irc(this.cfg.maxConfigure);
    this.scr();
    return true;
  }

  protected irc(count: number): void {
    this.restartCount = count;
  }

  protected scr(): void {
    this.restartCount--;
    this.exchanges++;
    this.reqId = this.takeId();
    this.seenAnswer = false;
    this.lastRequest = encodeOptions(this.handler.buildRequest());
    this.sendPacket(PacketCode.ConfigureRequest, this.reqId, this.lastRequest);
    this.armTimer();
  }

  protected str(): void {
    this.restartCount--;
    this.sendPacket(
      PacketCode.TerminateRequest,
      this.takeId(),
      new Uint8Array(Buffer.from(this.reason, 'latin1')),
    );
    this.armTimer();
  }

  /** scn / scj: a Configure-Nak or Configure-Reject of the peer's request. */
  protected scnOrScj(code: number, id: number, opts: ConfigOption[]): void {
    this.exchanges++;
    this.sendPacket(code, id, encodeOptions(opts));
  }

  protected sta(id: number): void {
    this.sendPacket(PacketCode.TerminateAck, id, new Uint8Array(0));
  }

  protected sendCodeReject(packet: Uint8Array): void {
    const room = Math.max(0, this.host.peerMru() - 4);
    this.sendPacket(PacketCode.CodeReject, this.takeId(), packet.subarray(0, room));
  }

  /** Send a packet of an extra code (Echo, Protocol-Reject, Reset-Request): `id` or a fresh one. */
  sendExtra(code: number, data: Uint8Array, id: number = this.takeId()): void {
    this.sendPacket(code, id, data);
  }

  protected sendPacket(code: number, id: number, data: Uint8Array): void {
    if (this.host.log.debugEnabled) this.host.log.debug(`sent [${this.describe(code, id, data)}]`);
    this.host.send(encodeControlPacket(code, id, data));
  }

  protected takeId(): number {
    const id = this.nextId;
    this.nextId = (this.nextId + 1) & 0xff;
    return id;
  }

  protected armTimer(): void {
    this.timer?.cancel();
    this.timer = this.host.clock.setTimer(this.cfg.restartMs, () => this.onRestartExpired());
  }

  protected setState(next: FsmState): number {
    this.stateValue = next;
    if (!TIMED.has(next) && this.timer) {
      this.timer.cancel();
      this.timer = undefined;
    }
    return ++this.generation;
  }

  /** Rejected options must be ones we sent, unmodified and in order (RFC 1661 §5.4). */
  protected isSubsetOfRequest(opts: ConfigOption[]): boolean {
    let sent: ConfigOption[];
    try {
      sent = decodeOptions(this.lastRequest, this.layer);
    } catch {
      return false;
    }
    let i = 0;
    for (const o of opts) {
      while (i < sent.length && !optionEqual(sent[i]!, o)) i++;
      if (i === sent.length) return false;
      i++;
    }
    return true;
  }

  protected describeOption(o: ConfigOption): string {
    return this.handler.describe?.(o) ?? `<${o.type} ${Buffer.from(o.data).toString('hex')}>`;
  }

  protected describe(code: number, id: number, data: Uint8Array): string {
    const head = `${this.name} ${codeName(code)} id=${id}`;
    if (code < PacketCode.ConfigureRequest || code > PacketCode.ConfigureReject) return head;
    try {
      const opts = decodeOptions(data, this.layer);
      return [head, ...opts.map((o) => this.describeOption(o))].join(' ');
    } catch {
      return `${head} <malformed>`;
    }
  }
}
