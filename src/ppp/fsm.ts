import type { Clock, TimerHandle } from '../util/clock.ts';
import { DropCounter } from '../util/counters.ts';
import type { Logger } from '../util/log.ts';
import type { ProtocolLayer } from '../wire/errors.ts';
import { codeName, PacketCode } from './constants.ts';
import type { ConfigOption, Verdict } from './options.ts';
import { bytesEqual, decodeOptions, encodeOptions, optionEqual } from './options.ts';
import { decodeControlPacket, encodeControlPacket } from './packet.ts';

/**
 * The RFC 1661 §4 option-negotiation automaton, written once and shared by LCP, IPCP, IPv6CP and
 * CCP. State names, events (Up, Down, Open, Close, TO±, RCR±, RCA, RCN, RTR, RTA, RUC, RXJ±, RXR)
 * and actions (tlu, tld, tls, tlf, irc, zrc, scr, sca, scn, str, sta, scj, ser) follow §4.1–4.4.
 *
 * ```
 *  Initial ─Up→ Closed ─Open→ Req-Sent ─RCA→ Ack-Rcvd ─RCR+→ Opened
 *     │Open                      │RCR+                          ↑
 *  Starting ─Up→ Req-Sent        └──→ Ack-Sent ──────RCA────────┘
 *  Close in Req-Sent, Ack-Rcvd, Ack-Sent or Opened → Closing ─RTA/TO-→ Closed
 *  RTR or RXJ- in Opened → Stopping ─RTA/TO-→ Stopped
 * ```
 * Each transition sets the new state first, then sends, then calls the this-layer callback, so a
 * callback that re-enters the automaton (e.g. closes the link) sees a consistent state.
 */
export type FsmState =
  | 'initial'
  | 'starting'
  | 'closed'
  | 'stopped'
  | 'closing'
  | 'stopping'
  | 'req-sent'
  | 'ack-rcvd'
  | 'ack-sent'
  | 'opened';

/** What a control protocol supplies: its options and its reaction to the layer's events. */
export interface ControlProtocolHandler {
  readonly name: 'LCP' | 'IPCP' | 'IPV6CP' | 'CCP';
  readonly protocol: number;
  /** Start a fresh negotiation: our request options go back to what we want (lwIP resetci). */
  reset(): void;
  /** The options of our next Configure-Request (lwIP addci). */
  buildRequest(): ConfigOption[];
  /** Judge the peer's Configure-Request; remember what is acked as the peer's options (reqci). */
  checkRequest(opts: ConfigOption[], rejectIfDisagree: boolean): Verdict;
  /** Our request was acked (already checked byte-for-byte); false rejects the Ack as bad. */
  ackReceived(opts: ConfigOption[]): boolean;
  nakReceived(opts: ConfigOption[]): void;
  /** Options proven (by the FSM) to be a subset of our last request. */
  rejectReceived(opts: ConfigOption[]): void;
  /** tlu */
  up(): void;
  /** tld */
  down(): void;
  /** tls */
  started(): void;
  /** tlf, with the reason in words ("no response to 10 Configure-Requests"). */
  finished(reason: string): void;
  /** The peer sent Terminate-Request (RTR); `text` is its data as latin1 text. */
  terminateRequested?(text: string): void;
  /**
   * Codes beyond 1–7 (LCP Echo/Discard/Protocol-Reject, CCP Reset-Request/Ack). Return false
   * for a code the protocol does not know: the FSM then sends Code-Reject (RUC).
   */
  extraCode?(code: number, id: number, data: Uint8Array, state: FsmState): boolean;
  /** "<mru 1400>" for debug logs. */
  describe?(opt: ConfigOption): string;
}

export interface FsmConfig {
  /** Restart timer, ms (pppd lcp-restart/ipcp-restart, default 3 s). */
  restartMs: number;
  /** Configure-Requests sent without answer before giving up (RFC 1661 §4.6, default 10). */
  maxConfigure: number;
  /** Terminate-Requests sent before giving up (default 2). */
  maxTerminate: number;
  /** Configure-Naks sent in a row before Naks become Rejects (default 5). */
  maxFailure: number;
}

export interface FsmHost {
  clock: Clock;
  log: Logger;
  /** Send one packet of this protocol (starting at Code) in a PPP frame. */
  send(packet: Uint8Array): void;
  /** The most octets of information the peer accepts (its MRU); Code-Rejects are cut to fit. */
  peerMru(): number;
}

const TIMED: ReadonlySet<FsmState> = new Set(['closing', 'stopping', 'req-sent', 'ack-rcvd', 'ack-sent']);

export class Fsm {
  private stateValue: FsmState = 'initial';
  private readonly handler: ControlProtocolHandler;
  private readonly cfg: FsmConfig;
  private readonly host: FsmHost;
  private readonly layer: ProtocolLayer;
  readonly drops: DropCounter;
  private nextId = 1;
  private reqId = -1;
  private lastRequest: Uint8Array = new Uint8Array(0);
  /** An Ack/Nak/Reject for the current request id was already accepted (duplicates dropped). */
  private seenAnswer = false;
  private restartCount = 0;
  private nakLoops = 0;
  private timer: TimerHandle | undefined;
  /** Bumped on every state change, so a transition can notice re-entry from a callback. */
  private generation = 0;
  private reason = '';

  constructor(handler: ControlProtocolHandler, cfg: FsmConfig, host: FsmHost) {
    this.handler = handler;
    this.cfg = cfg;
    this.host = host;
    this.layer = handler.name.toLowerCase() as ProtocolLayer;
    this.drops = new DropCounter(host.log, `${handler.name} packet`);
  }

  get state(): FsmState {
    return this.stateValue;
  }

  get name(): string {
    return this.handler.name;
  }

  // ── Events from the lower layer and the administrator ─────────────────────────────────────

  /** Up: the lower layer can carry packets. */
  up(): void {
    switch (this.stateValue) {
      case 'initial':
        this.setState('closed');
        return;
      case 'starting':
        this.beginNegotiation();
        return;
      default:
        this.host.log.debug(`${this.name}: Up event in state ${this.stateValue} ignored`);
    }
  }

  /** Down: the lower layer is gone. */
  down(): void {
    switch (this.stateValue) {
      case 'closed':
      case 'closing':
        this.setState('initial');
        return;
      case 'stopped':
        this.setState('starting');
        this.handler.started();
        return;
      case 'stopping':
      case 'req-sent':
      case 'ack-rcvd':
      case 'ack-sent':
        this.setState('starting');
        return;
      case 'opened':
        this.setState('starting');
        this.handler.down();
        return;
      case 'initial':
      case 'starting':
        return;
    }
  }

  /** Open: the administrator allows the link to come up. */
  open(): void {
    switch (this.stateValue) {
      case 'initial':
        this.setState('starting');
        this.handler.started();
        return;
      case 'closed':
        this.beginNegotiation();
        return;
      case 'closing':
        this.setState('stopping');
        return;
      default:
        return;
    }
  }

  /** Close: the administrator wants the link down; `reason` goes into the Terminate-Request. */
  close(reason: string): void {
    this.reason = reason;
    switch (this.stateValue) {
      case 'starting':
        this.setState('initial');
        this.handler.finished(reason);
        return;
      case 'stopped':
        this.setState('closed');
        return;
      case 'stopping':
        this.setState('closing');
        return;
      case 'req-sent':
      case 'ack-rcvd':
      case 'ack-sent':
        this.setState('closing');
        this.irc(this.cfg.maxTerminate);
        this.str();
        return;
      case 'opened':
        this.setState('closing');
        this.irc(this.cfg.maxTerminate);
        this.str();
        this.handler.down();
        return;
      case 'initial':
      case 'closed':
      case 'closing':
        return;
    }
  }

  /** RXJ+ / RXJ−: a Code-Reject or (LCP) Protocol-Reject was received; `fatal` is RXJ−. */
  receiveReject(fatal: boolean, what: string): void {
    if (!fatal) {
      if (this.stateValue === 'ack-rcvd') this.setState('req-sent');
      return;
    }
    this.reason = `peer rejected ${what}`;
    switch (this.stateValue) {
      case 'closed':
      case 'closing':
        this.setState('closed');
        this.handler.finished(this.reason);
        return;
      case 'stopped':
      case 'stopping':
      case 'req-sent':
      case 'ack-rcvd':
      case 'ack-sent':
        this.setState('stopped');
        this.handler.finished(this.reason);
        return;
      case 'opened':
        this.setState('stopping');
        this.irc(this.cfg.maxTerminate);
        this.str();
        this.handler.down();
        return;
      case 'initial':
      case 'starting':
        return;
    }
  }

  // ── Received packets ─────────────────────────────────────────────────────────────────────

  /** One received packet of this protocol (starting at Code). Never throws. */
  receive(bytes: Uint8Array): void {
    if (this.stateValue === 'initial' || this.stateValue === 'starting') {
      this.drops.drop('received while the layer is not up');
      return;
    }
    let p: ReturnType<typeof decodeControlPacket>;
    try {
      p = decodeControlPacket(bytes, this.layer);
    } catch (e) {
      this.drops.drop('malformed header', (e as Error).message);
      return;
    }
    if (this.host.log.debugEnabled) this.host.log.debug(`recv [${this.describe(p.code, p.id, p.data)}]`);
    switch (p.code) {
      case PacketCode.ConfigureRequest:
        this.receiveConfigureRequest(p.id, p.data);
        return;
      case PacketCode.ConfigureAck:
        this.receiveConfigureAck(p.id, p.data);
        return;
      case PacketCode.ConfigureNak:
      case PacketCode.ConfigureReject:
        this.receiveConfigureNakOrReject(p.code, p.id, p.data);
        return;
      case PacketCode.TerminateRequest:
        this.receiveTerminateRequest(p.id, p.data);
        return;
      case PacketCode.TerminateAck:
        this.receiveTerminateAck();
        return;
      case PacketCode.CodeReject:
        this.receiveCodeReject(p.data);
        return;
      default:
        if (this.handler.extraCode?.(p.code, p.id, p.data, this.stateValue)) return;
        this.sendCodeReject(bytes.subarray(0, 4 + p.data.length)); // RUC → scj
    }
  }

  private receiveConfigureRequest(id: number, data: Uint8Array): void {
    switch (this.stateValue) {
      case 'closed':
        this.sta(id);
        return;
      case 'closing':
      case 'stopping':
        return;
      default:
    }
    let opts: ConfigOption[];
    try {
      opts = decodeOptions(data, this.layer);
    } catch (e) {
      this.drops.drop('malformed Configure-Request', (e as Error).message);
      return;
    }
    if (this.stateValue === 'opened') {
      // tld, scr, then sca/scn: renegotiation (RFC 1661 §4.3 RCR in Opened).
      if (!this.renegotiate()) return;
    } else if (this.stateValue === 'stopped') {
      this.setState('req-sent');
      this.handler.reset();
      this.irc(this.cfg.maxConfigure);
      this.scr();
    }
    const gen = this.generation;
    const verdict = this.handler.checkRequest(opts, this.nakLoops >= this.cfg.maxFailure);
    if (gen !== this.generation) return; // the handler gave up (e.g. looped-back link)
    if (verdict.kind !== 'ack') {
      this.nakLoops = verdict.kind === 'nak' ? this.nakLoops + 1 : this.nakLoops;
      const code = verdict.kind === 'nak' ? PacketCode.ConfigureNak : PacketCode.ConfigureReject;
      this.sendPacket(code, id, encodeOptions(verdict.options)); // scn
      if (this.stateValue === 'ack-sent') this.setState('req-sent');
      return;
    }
    this.nakLoops = 0;
    this.sendPacket(PacketCode.ConfigureAck, id, data); // sca
    if (this.stateValue === 'ack-rcvd') {
      this.setState('opened');
      this.handler.up();
    } else {
      this.setState('ack-sent');
    }
  }

  private receiveConfigureAck(id: number, data: Uint8Array): void {
    if (this.stateValue === 'closed' || this.stateValue === 'stopped') {
      this.sta(id);
      return;
    }
    if (this.stateValue === 'closing' || this.stateValue === 'stopping') return;
    if (id !== this.reqId || this.seenAnswer || !bytesEqual(data, this.lastRequest)) {
      this.drops.drop('Configure-Ack not matching our Configure-Request', `id ${id}`);
      return;
    }
    let opts: ConfigOption[];
    try {
      opts = decodeOptions(data, this.layer);
    } catch {
      return; // cannot happen: our own request decoded
    }
    if (!this.handler.ackReceived(opts)) {
      this.drops.drop('Configure-Ack refused by the option handler');
      return;
    }
    this.seenAnswer = true;
    switch (this.stateValue) {
      case 'req-sent':
        this.setState('ack-rcvd');
        this.irc(this.cfg.maxConfigure);
        return;
      case 'ack-rcvd': // crossed connection
        this.setState('req-sent');
        this.scr();
        return;
      case 'ack-sent':
        this.setState('opened');
        this.irc(this.cfg.maxConfigure);
        this.handler.up();
        return;
      case 'opened':
        this.renegotiate();
        return;
      default:
    }
  }

  private receiveConfigureNakOrReject(code: number, id: number, data: Uint8Array): void {
    if (this.stateValue === 'closed' || this.stateValue === 'stopped') {
      this.sta(id);
      return;
    }
    if (this.stateValue === 'closing' || this.stateValue === 'stopping') return;
    const what = code === PacketCode.ConfigureNak ? 'Configure-Nak' : 'Configure-Reject';
    if (id !== this.reqId || this.seenAnswer) {
      this.drops.drop(`${what} not matching our Configure-Request`, `id ${id}`);
      return;
    }
    let opts: ConfigOption[];
    try {
      opts = decodeOptions(data, this.layer);
    } catch (e) {
      this.drops.drop(`malformed ${what}`, (e as Error).message);
      return;
    }
    if (code === PacketCode.ConfigureReject && !this.isSubsetOfRequest(opts)) {
      this.drops.drop('Configure-Reject with options we did not send as sent');
      return;
    }
    this.seenAnswer = true;
    const wasOpened = this.stateValue === 'opened';
    const gen = this.setState(this.stateValue === 'ack-sent' ? 'ack-sent' : 'req-sent');
    if (wasOpened) this.handler.down();
    if (gen !== this.generation) return;
    if (code === PacketCode.ConfigureNak) this.handler.nakReceived(opts);
    else this.handler.rejectReceived(opts);
    if (gen !== this.generation) return; // the handler gave up (e.g. closed the link)
    this.irc(this.cfg.maxConfigure); // RFC: irc except in Ack-Rcvd/Opened; lwIP always, so do we
    this.scr();
  }

  private receiveTerminateRequest(id: number, data: Uint8Array): void {
    const text = Buffer.from(data).toString('latin1');
    switch (this.stateValue) {
      case 'req-sent':
      case 'ack-rcvd':
      case 'ack-sent':
        this.setState('req-sent');
        this.sta(id);
        return;
      case 'opened':
        this.reason = `peer requested termination${text ? ` ("${text}")` : ''}`;
        this.handler.terminateRequested?.(text);
        this.setState('stopping');
        this.restartCount = 0; // zrc: wait one restart interval, then tlf
        this.armTimer();
        this.sta(id);
        this.handler.down();
        return;
      default:
        this.sta(id);
    }
  }

  private receiveTerminateAck(): void {
    switch (this.stateValue) {
      case 'closing':
        this.setState('closed');
        this.handler.finished(this.reason);
        return;
      case 'stopping':
        this.setState('stopped');
        this.handler.finished(this.reason);
        return;
      case 'ack-rcvd':
        this.setState('req-sent');
        return;
      case 'opened':
        this.renegotiate();
        return;
      default:
    }
  }

  private receiveCodeReject(data: Uint8Array): void {
    const rejected = data[0];
    if (rejected === undefined) {
      this.drops.drop('empty Code-Reject');
      return;
    }
    this.host.log.info(`${this.name}: peer rejected code ${codeName(rejected)}`);
    // Codes 1–7 are what the automaton needs; without them it cannot work (RXJ−).
    this.receiveReject(rejected >= 1 && rejected <= 7, `${this.name} code ${codeName(rejected)}`);
  }

  // ── Timer ───────────────────────────────────────────────────────────────────────────────────

  private onRestartExpired(): void {
    this.timer = undefined;
    const more = this.restartCount > 0;
    switch (this.stateValue) {
      case 'closing':
      case 'stopping':
        if (more) {
          this.str();
          return;
        }
        this.setState(this.stateValue === 'closing' ? 'closed' : 'stopped');
        this.handler.finished(this.reason);
        return;
      case 'req-sent':
      case 'ack-rcvd':
      case 'ack-sent':
        if (more) {
          if (this.stateValue === 'ack-rcvd') this.setState('req-sent');
          this.scr();
          return;
        }
        this.reason = `no answer to ${this.cfg.maxConfigure} ${this.name} Configure-Requests`;
        this.setState('stopped');
        this.handler.finished(this.reason);
        return;
      default:
    }
  }

  // ── Actions ─────────────────────────────────────────────────────────────────────────────────

  private beginNegotiation(): void {
    this.setState('req-sent');
    this.handler.reset();
    this.nakLoops = 0;
    this.irc(this.cfg.maxConfigure);
    this.scr();
  }

  /**
   * Opened → Req-Sent: tld, then scr (RCR/RCA/RTA in Opened). The counter is reset first, as
   * lwIP does, so a renegotiation gets the full Max-Configure. False when tld re-entered us.
   */
  private renegotiate(): boolean {
    const gen = this.setState('req-sent');
    this.handler.down();
    if (gen !== this.generation) return false;
    this.irc(this.cfg.maxConfigure);
    this.scr();
    return true;
  }

  private irc(count: number): void {
    this.restartCount = count;
  }

  private scr(): void {
    this.restartCount--;
    this.reqId = this.takeId();
    this.seenAnswer = false;
    this.lastRequest = encodeOptions(this.handler.buildRequest());
    this.sendPacket(PacketCode.ConfigureRequest, this.reqId, this.lastRequest);
    this.armTimer();
  }

  private str(): void {
    this.restartCount--;
    this.sendPacket(
      PacketCode.TerminateRequest,
      this.takeId(),
      new Uint8Array(Buffer.from(this.reason, 'latin1')),
    );
    this.armTimer();
  }

  private sta(id: number): void {
    this.sendPacket(PacketCode.TerminateAck, id, new Uint8Array(0));
  }

  private sendCodeReject(packet: Uint8Array): void {
    const room = Math.max(0, this.host.peerMru() - 4);
    this.sendPacket(PacketCode.CodeReject, this.takeId(), packet.subarray(0, room));
  }

  /** Send a packet of an extra code (Echo, Protocol-Reject, Reset-Request): `id` or a fresh one. */
  sendExtra(code: number, data: Uint8Array, id: number = this.takeId()): void {
    this.sendPacket(code, id, data);
  }

  private sendPacket(code: number, id: number, data: Uint8Array): void {
    if (this.host.log.debugEnabled) this.host.log.debug(`sent [${this.describe(code, id, data)}]`);
    this.host.send(encodeControlPacket(code, id, data));
  }

  private takeId(): number {
    const id = this.nextId;
    this.nextId = (this.nextId + 1) & 0xff;
    return id;
  }

  private armTimer(): void {
    this.timer?.cancel();
    this.timer = this.host.clock.setTimer(this.cfg.restartMs, () => this.onRestartExpired());
  }

  private setState(next: FsmState): number {
    this.stateValue = next;
    if (!TIMED.has(next) && this.timer) {
      this.timer.cancel();
      this.timer = undefined;
    }
    return ++this.generation;
  }

  /** Rejected options must be ones we sent, unmodified and in order (RFC 1661 §5.4). */
  private isSubsetOfRequest(opts: ConfigOption[]): boolean {
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

  private describe(code: number, id: number, data: Uint8Array): string {
    const head = `${this.name} ${codeName(code)} id=${id}`;
    if (code < PacketCode.ConfigureRequest || code > PacketCode.ConfigureReject) return head;
    try {
      const opts = decodeOptions(data, this.layer);
      const d = this.handler.describe?.bind(this.handler);
      return [
        head,
        ...opts.map((o) => (d ? d(o) : `<${o.type} ${Buffer.from(o.data).toString('hex')}>`)),
      ].join(' ');
    } catch {
      return `${head} <malformed>`;
    }
  }
}
