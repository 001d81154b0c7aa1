import { quote } from '../util/escape.ts';
import { bytesEqual } from '../wire/bytes.ts';
import { codeName, PacketCode } from './constants.ts';
import { FsmActions } from './fsm-actions.ts';
import type { ConfigOption } from './options.ts';
import { decodeOptions } from './options.ts';
import { decodeControlPacket } from './packet.ts';

export type { ControlProtocolHandler, FsmConfig, FsmHost, FsmState } from './fsm-types.ts';

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
export class Fsm extends FsmActions {
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
      if (this.exchangesExhausted) {
        this.giveUp(this.notConvergingReason());
        return;
      }
      this.nakLoops = verdict.kind === 'nak' ? this.nakLoops + 1 : this.nakLoops;
      const code = verdict.kind === 'nak' ? PacketCode.ConfigureNak : PacketCode.ConfigureReject;
      this.scnOrScj(code, id, verdict.options);
      if (this.stateValue === 'ack-sent') this.setState('req-sent');
      return;
    }
    this.nakLoops = 0;
    this.sendPacket(PacketCode.ConfigureAck, id, data); // sca
    if (this.stateValue === 'ack-rcvd') {
      this.setState('opened');
      this.resetNegotiationBounds();
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
    this.rnakLoops = 0; // the peer agreed to our request
    switch (this.stateValue) {
      case 'req-sent':
        this.setState('ack-rcvd');
        this.irc(this.cfg.maxConfigure);
        return;
      case 'ack-rcvd': // crossed connection
        this.setState('req-sent');
        if (this.exchangesExhausted) {
          this.giveUp(this.notConvergingReason());
          return;
        }
        this.scr();
        return;
      case 'ack-sent':
        this.setState('opened');
        this.irc(this.cfg.maxConfigure);
        this.resetNegotiationBounds();
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
    const nak = code === PacketCode.ConfigureNak;
    if (id !== this.reqId || this.seenAnswer) {
      this.drops.drop(
        nak
          ? 'Configure-Nak not matching our Configure-Request'
          : 'Configure-Reject not matching our Configure-Request',
        `id ${id}`,
      );
      return;
    }
    let opts: ConfigOption[];
    try {
      opts = decodeOptions(data, this.layer);
    } catch (e) {
      this.drops.drop(nak ? 'malformed Configure-Nak' : 'malformed Configure-Reject', (e as Error).message);
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
    if (code === PacketCode.ConfigureReject) this.handler.rejectReceived(opts);
    else if (++this.rnakLoops < this.cfg.maxFailure) this.handler.nakReceived(opts);
    else this.treatNakAsReject(opts);
    if (gen !== this.generation) return; // the handler gave up (e.g. closed the link)
    if (this.exchangesExhausted) {
      this.giveUp(this.notConvergingReason());
      return;
    }
    this.irc(this.cfg.maxConfigure); // RFC: irc except in Ack-Rcvd/Opened; lwIP always, so do we
    this.scr();
  }

  /**
   * Max-Failure Configure-Naks received without an Ack (RFC 1661 §4.6, pppd's rnakloops): the
   * peer will not agree to the values it Naks, so the Nak'd options we sent are handled as if
   * the peer had rejected them. The handler either stops requesting them or fails the link with
   * a reason (e.g. a required Authentication-Protocol). Naks of options we did not request
   * change nothing; maxExchanges ends such a peer.
   */
  private treatNakAsReject(naked: ConfigOption[]): void {
    let sent: ConfigOption[];
    try {
      sent = decodeOptions(this.lastRequest, this.layer);
    } catch {
      return; // cannot happen: our own request
    }
    const types = new Set(naked.map((o) => o.type));
    const given = sent.filter((o) => types.has(o.type));
    if (given.length === 0) return;
    const what = given.map((o) => this.describeOption(o)).join(' ');
    this.host.log.info(
      `${this.name}: peer sent ${this.rnakLoops} Configure-Naks without agreeing; no longer requesting ${what}`,
    );
    this.handler.rejectReceived(given);
  }

  private notConvergingReason(): string {
    return `${this.name} negotiation did not converge: ${this.exchanges} Configure-Requests, Naks and Rejects sent without agreement`;
  }

  private receiveTerminateRequest(id: number, data: Uint8Array): void {
    switch (this.stateValue) {
      case 'req-sent':
      case 'ack-rcvd':
      case 'ack-sent':
        this.setState('req-sent');
        this.sta(id);
        return;
      case 'opened':
        // The peer's words, quoted and escaped: they are the peer's, never ours.
        this.reason = `peer requested termination${data.length > 0 ? ` (${quote(Buffer.from(data).toString('latin1'))})` : ''}`;
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

  protected override onRestartExpired(): void {
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
          if (this.exchangesExhausted) {
            this.giveUp(this.notConvergingReason());
            return;
          }
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
}
