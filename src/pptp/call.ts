/** Why the control connection or a call dropped a message (ids go in the detail). */
export type PptpDropReason =
  | 'Call-Clear-Request for an unknown call id'
  | 'Call-Disconnect-Notify for an unknown call id'
  | 'Outgoing-Call-Reply for no pending call'
  | 'Set-Link-Info for an unknown call id'
  | 'WAN-Error-Notify for an unknown call id'
  | 'call message not expected now'
  | 'Echo-Reply with an unexpected identifier'
  | 'message while stopping'
  | 'request not answered: the peer floods requests'
  | 'unexpected Stop-Control-Connection-Reply';

/**
 * The calls of one established control connection (RFC 2637 §3.2 PAC states, §3.3 PNS states).
 *
 * PNS (client) call:                         PAC (server) call:
 *   placeCall ─OCRQ─> wait-reply               OCRQ ─accept─> OCRP(Connected) ─> established
 *   OCRP(Connected) ─> established                  └refuse─> OCRP(error), no call
 *   OCRP(other) / timeout ─> down              CCRQ ─> CDN(Request) ─> down
 *   clearCall ─CCRQ─> wait-disconnect          clearCall ─> CDN(Admin Shutdown) ─> down
 *   CDN / timeout ─> down
 *
 * Call ID matching, which implementations disagree on: CCRQ carries the PNS's own Call ID and CDN
 * the PAC's own (RFC 2637 §2.12, §2.13; pptpd does this), but some PACs (accel-ppp) put the PNS's ID
 * in CDN, so an incoming CCRQ/CDN is matched against the peer's ID first, then against ours.
 * Set-Link-Info and WAN-Error-Notify carry the receiver's ID. Every path that ends a call releases
 * its ID to the process-wide allocator and reports onCallDown exactly once.
 */
import type { Clock, TimerHandle } from '../util/clock.ts';
import type { DropCounter, RepeatedEvents } from '../util/counters.ts';
import type { Logger } from '../util/log.ts';
import type { CallIdAllocator } from './call-ids.ts';
import {
  BearerType,
  codeName,
  DisconnectResult,
  FramingType,
  GeneralError,
  IncomingCallResult,
  OutgoingCallResult,
} from './constants.ts';
import type { ControlMessage, OutgoingCallReply, OutgoingCallRequest } from './messages.ts';

export interface CallInfo {
  localCallId: number;
  peerCallId: number;
  peerRecvWindow: number;
  peerProcessingDelay: number;
  serial: number;
  phoneNumber?: string;
}

export type CallRequestDecision =
  | { accept: true }
  | { accept: false; resultCode: number; errorCode?: number; reason: string };

export type CallState = 'wait-reply' | 'established' | 'wait-disconnect';

interface Call {
  readonly info: CallInfo;
  state: CallState;
  timer: TimerHandle | undefined;
  /** Why we asked for the call to be cleared (PNS wait-disconnect). */
  clearReason: string;
}

export interface CallContext {
  readonly role: 'pac' | 'pns';
  readonly clock: Clock;
  readonly log: Logger;
  readonly callIds: CallIdAllocator;
  readonly drops: DropCounter<PptpDropReason>;
  /** Peer-repeatable events (refused calls, WAN errors): counted, logged at 1, 10, 100, ... */
  readonly events: RepeatedEvents;
  /**
   * May we answer one more peer-initiated request now (a refusal)? False in a flood: the request
   * is then dropped and counted instead. Absent: always.
   */
  mayAnswer?(what: string): boolean;
  readonly recvWindow: number;
  readonly maxCalls: number;
  readonly callTimeoutMs: number;
  send(msg: ControlMessage): void;
  onCallRequest?(req: OutgoingCallRequest): CallRequestDecision;
  onCallUp?(call: CallInfo): void;
  onCallDown?(call: CallInfo, reason: string): void;
  onSetLinkInfo?(call: CallInfo, sendAccm: number, recvAccm: number): void;
}

/** An Outgoing-Call-Reply refusing the call (RFC 2637 §2.8): no Call ID of ours. */
export function outgoingCallRefusal(
  peerCallId: number,
  resultCode: number,
  errorCode: number,
  recvWindow: number,
): ControlMessage {
  return {
    type: 'outgoing-call-reply',
    callId: 0,
    peerCallId,
    resultCode,
    errorCode,
    causeCode: 0,
    connectSpeed: 0,
    recvWindow,
    processingDelay: 0,
    physicalChannelId: 0,
  };
}

/** An Incoming-Call-Reply refusing the call (RFC 2637 §2.10). */
export function incomingCallRefusal(
  peerCallId: number,
  resultCode: number,
  errorCode: number,
): ControlMessage {
  return {
    type: 'incoming-call-reply',
    callId: 0,
    peerCallId,
    resultCode,
    errorCode,
    recvWindow: 0,
    transmitDelay: 0,
  };
}

export class CallManager {
  private readonly ctx: CallContext;
  private readonly calls = new Map<number, Call>();
  private nextSerial = 1;

  constructor(ctx: CallContext) {
    this.ctx = ctx;
  }

  get size(): number {
    return this.calls.size;
  }

  list(): CallInfo[] {
    return [...this.calls.values()].map((c) => ({ ...c.info }));
  }

  /** PNS: send Outgoing-Call-Request (RFC 2637 §2.7) and return our Call ID. Throws when the call
   *  limit is reached or no Call ID is free. */
  place(phoneNumber: string): number {
    if (this.calls.size >= this.ctx.maxCalls) throw new Error(`call limit reached (${this.ctx.maxCalls})`);
    const id = this.ctx.callIds.allocate();
    if (id === null) throw new Error('no free call id');
    const serial = this.nextSerial;
    this.nextSerial = (this.nextSerial % 0xffff) + 1;
    const call = this.add(
      { localCallId: id, peerCallId: 0, peerRecvWindow: 0, peerProcessingDelay: 0, serial, phoneNumber },
      'wait-reply',
    );
    const seconds = this.ctx.callTimeoutMs / 1000;
    call.timer = this.ctx.clock.setTimer(this.ctx.callTimeoutMs, () => {
      this.ctx.send({ type: 'call-clear-request', callId: id });
      this.down(call, `peer did not answer Outgoing-Call-Request within ${seconds} s`);
    });
    this.ctx.send({
      type: 'outgoing-call-request',
      callId: id,
      callSerial: serial,
      minBps: 300,
      maxBps: 100_000_000,
      bearerType: BearerType.Any,
      framingType: FramingType.Any,
      recvWindow: this.ctx.recvWindow,
      processingDelay: 0,
      phoneNumber,
      subaddress: '',
    });
    return id;
  }

  /** Clear one call. PAC: Call-Disconnect-Notify now. PNS: Call-Clear-Request, then the call goes down
   *  on the peer's Call-Disconnect-Notify or after callTimeoutMs. Returns false for an unknown ID. */
  clear(localCallId: number, reason: string): boolean {
    const call = this.calls.get(localCallId);
    if (!call) return false;
    if (this.ctx.role === 'pac') {
      this.sendDisconnect(call, DisconnectResult.AdminShutdown);
      this.down(call, reason);
    } else if (call.state !== 'wait-disconnect') {
      call.timer?.cancel();
      call.state = 'wait-disconnect';
      call.clearReason = reason;
      this.ctx.send({ type: 'call-clear-request', callId: localCallId });
      call.timer = this.ctx.clock.setTimer(this.ctx.callTimeoutMs, () =>
        this.down(call, `${reason} (peer sent no Call-Disconnect-Notify)`),
      );
    }
    return true;
  }

  /** End every call (control connection going away). The PAC tells the peer with a
   *  Call-Disconnect-Notify per call when `notifyPeer` (RFC 2637 §2.3: a Stop clears all calls). */
  downAll(reason: string, notifyPeer: boolean): void {
    for (const call of [...this.calls.values()]) {
      if (notifyPeer && this.ctx.role === 'pac') this.sendDisconnect(call, DisconnectResult.AdminShutdown);
      this.down(call, reason);
    }
  }

  /** Handle a call-management message received on an established connection. */
  receive(msg: ControlMessage): void {
    switch (msg.type) {
      case 'outgoing-call-request':
        if (this.ctx.role === 'pac') this.receiveOutgoingCallRequest(msg);
        else this.refuseOutgoingCall(msg, OutgoingCallResult.DoNotAccept, GeneralError.None);
        return;
      case 'outgoing-call-reply':
        this.receiveOutgoingCallReply(msg);
        return;
      case 'incoming-call-request':
        // RFC 2637 §2.10: we place no incoming (dial-in) calls in either role.
        this.ctx.events.note(
          'Incoming-Call-Request refused',
          `refusing Incoming-Call-Request ${msg.callId}: incoming calls are not supported`,
        );
        if (this.mayAnswer('Incoming-Call-Request'))
          this.ctx.send(incomingCallRefusal(msg.callId, IncomingCallResult.DoNotAccept, GeneralError.None));
        return;
      case 'call-clear-request': {
        const call = this.ctx.role === 'pac' ? this.findByEitherId(msg.callId) : undefined;
        if (!call) {
          this.ctx.drops.drop('Call-Clear-Request for an unknown call id', `call id ${msg.callId}`);
          return;
        }
        this.sendDisconnect(call, DisconnectResult.Request);
        this.down(call, 'peer cleared the call (Call-Clear-Request)');
        return;
      }
      case 'call-disconnect-notify': {
        const call = this.findByEitherId(msg.callId);
        if (!call) {
          this.ctx.drops.drop('Call-Disconnect-Notify for an unknown call id', `call id ${msg.callId}`);
          return;
        }
        // MS-PTPT §3.2.5.5: Windows PACs send Result Code 0, so the result is only reported.
        const why =
          call.state === 'wait-disconnect'
            ? call.clearReason
            : `peer disconnected the call: ${codeName('disconnect', msg.resultCode)}, error ${codeName('error', msg.errorCode)}`;
        this.down(call, why);
        return;
      }
      case 'set-link-info': {
        const call = this.calls.get(msg.peerCallId);
        if (!call) {
          this.ctx.drops.drop('Set-Link-Info for an unknown call id', `call id ${msg.peerCallId}`);
          return;
        }
        this.ctx.log.debug(
          `call ${call.info.localCallId}: send ACCM 0x${hex32(msg.sendAccm)}, receive ACCM 0x${hex32(msg.recvAccm)}`,
        );
        this.ctx.onSetLinkInfo?.({ ...call.info }, msg.sendAccm, msg.recvAccm);
        return;
      }
      case 'wan-error-notify': {
        const call = this.calls.get(msg.peerCallId);
        if (!call) {
          this.ctx.drops.drop('WAN-Error-Notify for an unknown call id', `call id ${msg.peerCallId}`);
          return;
        }
        this.ctx.events.note(
          'WAN-Error-Notify',
          () =>
            `call ${call.info.localCallId}: peer reports WAN errors crc=${msg.crcErrors} framing=${msg.framingErrors} ` +
            `hardware-overruns=${msg.hardwareOverruns} buffer-overruns=${msg.bufferOverruns} ` +
            `timeouts=${msg.timeoutErrors} alignment=${msg.alignmentErrors}`,
        );
        return;
      }
      default:
        // Incoming-Call-Reply/-Connected answer an Incoming-Call-Request we never send.
        this.ctx.drops.drop('call message not expected now', msg.type);
        return;
    }
  }

  /** PAC: RFC 2637 §2.7-§2.8, the call limit first, then the policy hook, then a Call ID. */
  private receiveOutgoingCallRequest(req: OutgoingCallRequest): void {
    if (this.calls.size >= this.ctx.maxCalls) {
      this.ctx.events.note(
        'Outgoing-Call-Request refused: call limit',
        `refusing Outgoing-Call-Request: already ${this.calls.size} call(s), the limit`,
        'warn',
      );
      this.refuseOutgoingCall(req, OutgoingCallResult.GeneralError, GeneralError.NoResource);
      return;
    }
    if (this.ctx.mayAnswer && !this.ctx.mayAnswer('Outgoing-Call-Request')) return;
    const decision = this.ctx.onCallRequest?.(req) ?? { accept: true };
    if (!decision.accept) {
      this.ctx.events.note(
        `Outgoing-Call-Request refused: ${decision.reason}`,
        `refusing Outgoing-Call-Request from call id ${req.callId}: ${decision.reason}`,
      );
      this.ctx.send(
        outgoingCallRefusal(
          req.callId,
          decision.resultCode,
          decision.errorCode ?? GeneralError.None,
          this.ctx.recvWindow,
        ),
      );
      return;
    }
    const id = this.ctx.callIds.allocate();
    if (id === null) {
      this.ctx.events.note(
        'Outgoing-Call-Request refused: no call id',
        'refusing Outgoing-Call-Request: no free call id in this process',
        'warn',
      );
      this.ctx.send(
        outgoingCallRefusal(
          req.callId,
          OutgoingCallResult.GeneralError,
          GeneralError.NoResource,
          this.ctx.recvWindow,
        ),
      );
      return;
    }
    const info: CallInfo = {
      localCallId: id,
      peerCallId: req.callId,
      peerRecvWindow: req.recvWindow,
      peerProcessingDelay: req.processingDelay,
      serial: req.callSerial,
      phoneNumber: req.phoneNumber,
    };
    this.add(info, 'established');
    this.ctx.send({
      type: 'outgoing-call-reply',
      callId: id,
      peerCallId: req.callId,
      resultCode: OutgoingCallResult.Connected,
      errorCode: GeneralError.None,
      causeCode: 0,
      connectSpeed: req.maxBps,
      recvWindow: this.ctx.recvWindow,
      processingDelay: 0,
      physicalChannelId: 0,
    });
    this.up(info);
  }

  /** A refusal, within the answer budget (mayAnswer). */
  private refuseOutgoingCall(req: OutgoingCallRequest, resultCode: number, errorCode: number): void {
    if (!this.mayAnswer('Outgoing-Call-Request')) return;
    this.ctx.send(outgoingCallRefusal(req.callId, resultCode, errorCode, this.ctx.recvWindow));
  }

  private mayAnswer(what: string): boolean {
    return this.ctx.mayAnswer?.(what) ?? true;
  }

  /** PNS: RFC 2637 §2.8, the reply's Peer's Call ID is ours. */
  private receiveOutgoingCallReply(rep: OutgoingCallReply): void {
    const call = this.ctx.role === 'pns' ? this.calls.get(rep.peerCallId) : undefined;
    if (call?.state !== 'wait-reply') {
      this.ctx.drops.drop('Outgoing-Call-Reply for no pending call', `peer's call id ${rep.peerCallId}`);
      return;
    }
    if (rep.resultCode !== OutgoingCallResult.Connected) {
      const why = `peer refused the call: ${codeName('outgoing', rep.resultCode)}, error ${codeName('error', rep.errorCode)}`;
      this.down(call, why);
      return;
    }
    call.timer?.cancel();
    call.timer = undefined;
    call.state = 'established';
    call.info.peerCallId = rep.callId;
    call.info.peerRecvWindow = rep.recvWindow;
    call.info.peerProcessingDelay = rep.processingDelay;
    this.up(call.info);
  }

  private add(info: CallInfo, state: CallState): Call {
    const call: Call = { info, state, timer: undefined, clearReason: '' };
    this.calls.set(info.localCallId, call);
    return call;
  }

  private up(info: CallInfo): void {
    this.ctx.log.debug(
      `call up: our call id ${info.localCallId}, peer's ${info.peerCallId}, peer window ${info.peerRecvWindow}`,
    );
    this.ctx.onCallUp?.({ ...info });
  }

  private down(call: Call, reason: string): void {
    if (this.calls.get(call.info.localCallId) !== call) return;
    this.calls.delete(call.info.localCallId);
    call.timer?.cancel();
    this.ctx.callIds.release(call.info.localCallId);
    this.ctx.log.debug(
      `call down: our call id ${call.info.localCallId}, peer's ${call.info.peerCallId}: ${reason}`,
    );
    this.ctx.onCallDown?.({ ...call.info }, reason);
  }

  private sendDisconnect(call: Call, resultCode: number): void {
    this.ctx.send({
      type: 'call-disconnect-notify',
      callId: call.info.localCallId,
      resultCode,
      errorCode: GeneralError.None,
      causeCode: 0,
      callStatistics: '',
    });
  }

  private findByEitherId(id: number): Call | undefined {
    for (const call of this.calls.values())
      if (call.info.peerCallId === id && call.state !== 'wait-reply') return call;
    return this.calls.get(id);
  }
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, '0');
}
