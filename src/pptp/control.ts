/**
 * The PPTP control connection automaton (RFC 2637 §3.1), for both roles, transport-free: TCP bytes
 * come in through receive(), bytes go out through the injected write(), time through the injected
 * Clock. Calls on the connection are handled by CallManager (call.ts).
 *
 *   PAC:  idle ─start─> wait-ctl-request ─SCCRQ/SCCRP(ok)─> established
 *   PNS:  idle ─start/SCCRQ─> wait-ctl-reply ─SCCRP(ok)─> established
 *   established ─stop/StopCCRQ─> wait-stop-reply ─StopCCRP or timeout─> closed
 *   any ─StopCCRQ received/StopCCRP sent─> closed; any ─TCP closed, timeout, bad input─> closed
 *
 * Keepalive (RFC 2637 §3.1.4): after echoIntervalMs without any received message an Echo-Request
 * goes out; without the matching Echo-Reply within echoTimeoutMs the connection is closed.
 * Bad input never throws out of receive(): a malformed stream ends the connection (after a
 * Stop-Control-Connection-Request when it was established); a message wrong for the state gets the
 * reply the RFC defines (General Error "Not-Connected" before establishment) or is counted and dropped.
 */

import type { Clock, TimerHandle } from '../util/clock.ts';
import { DropCounter, RepeatedEvents } from '../util/counters.ts';
import { quote } from '../util/escape.ts';
import type { Logger } from '../util/log.ts';
import { ProtocolError } from '../wire/errors.ts';
import {
  type CallInfo,
  CallManager,
  type CallRequestDecision,
  incomingCallRefusal,
  outgoingCallRefusal,
  type PptpDropReason,
} from './call.ts';
import type { CallIdAllocator } from './call-ids.ts';
import { describeControlMessage, encodeControlMessage } from './codec.ts';
import {
  BearerCapability,
  codeName,
  EchoResult,
  FramingCapability,
  GeneralError,
  IncomingCallResult,
  OutgoingCallResult,
  PPTP_PROTOCOL_VERSION,
  StartResult,
  StopReason,
  StopResult,
} from './constants.ts';
import { ControlFramer } from './framer.ts';
import { EchoKeepalive } from './keepalive.ts';
import type {
  ControlMessage,
  OutgoingCallRequest,
  StartControlConnectionReply,
  StartControlConnectionRequest,
} from './messages.ts';

export type { CallInfo, CallRequestDecision } from './call.ts';

export interface PeerInfo {
  hostName: string;
  vendor: string;
  protocolVersion: number;
}

export interface ControlConnectionOptions {
  role: 'pac' | 'pns';
  clock: Clock;
  log: Logger;
  /** Shared by every control connection of the process (our Call ID is the GRE Key). */
  callIds: CallIdAllocator;
  /** Bytes for the TCP socket. */
  write(bytes: Uint8Array): void;
  /** Close the TCP socket after the queued writes. Never called after transportClosed(). */
  close(): void;
  /** @default '' */
  hostName?: string;
  /** @default 'poptop' */
  vendor?: string;
  /** @default 1 */
  firmwareRevision?: number;
  /** Our GRE receive window, sent in Outgoing-Call-Request/-Reply. @default 64 */
  recvWindow?: number;
  /** Silence before an Echo-Request. @default 60000 */
  echoIntervalMs?: number;
  /** Wait for the Echo-Reply before closing. @default 60000 */
  echoTimeoutMs?: number;
  /** PAC: the Start-Control-Connection-Request must arrive within this; PNS: the Reply. @default 60000 */
  establishTimeoutMs?: number;
  /** Wait for a Stop-Control-Connection-Reply. @default 10000 */
  stopTimeoutMs?: number;
  /** PNS: wait for an Outgoing-Call-Reply or a Call-Disconnect-Notify. @default 60000 */
  callTimeoutMs?: number;
  /**
   * PAC: a call must be placed (an Outgoing-Call-Request accepted) within this time of start(),
   * and again within it whenever the last call has ended; otherwise Stop-Control-Connection-Request
   * (reason None) with the reason in words. A client that finishes Start-Control-Connection and then
   * only answers echoes does not hold a connection forever. 0 disables it.
   * @default 30000 for a PAC (clients place their call within a second), 0 for a PNS
   */
  callDeadlineMs?: number;
  /**
   * Answers to peer-initiated requests (Echo-Reply, refusals of Outgoing-/Incoming-Call-Requests,
   * "already exists" Start replies): at most this many in a burst, refilled by one per second.
   * Beyond it a request is dropped and counted, so a peer flooding requests and not reading our
   * answers cannot make us queue without bound. @default 20
   */
  answerBurst?: number;
  /** Calls per control connection (pptpd allows one). @default 1 */
  maxCalls?: number;
  /** PAC: accept or refuse an Outgoing-Call-Request. Default: accept. */
  onCallRequest?(req: OutgoingCallRequest): CallRequestDecision;
  onEstablished?(peer: PeerInfo): void;
  /** PAC: Outgoing-Call-Reply (Connected) sent; PNS: received. */
  onCallUp?(call: CallInfo): void;
  /** Exactly once for every call that came up or was placed, whatever ends it. */
  onCallDown?(call: CallInfo, reason: string): void;
  onSetLinkInfo?(call: CallInfo, sendAccm: number, recvAccm: number): void;
  /** Exactly once, whatever the path. */
  onClosed?(reason: string): void;
}

export type ControlState =
  | 'idle'
  | 'wait-ctl-request'
  | 'wait-ctl-reply'
  | 'established'
  | 'wait-stop-reply'
  | 'closed';

const EXPECTED_DROPS: readonly PptpDropReason[] = ['message while stopping'];

export class ControlConnection {
  readonly drops: DropCounter<PptpDropReason>;
  private readonly opts: ControlConnectionOptions;
  private readonly log: Logger;
  private readonly framer = new ControlFramer();
  private readonly callManager: CallManager;
  private readonly keepalive: EchoKeepalive;
  private currentState: ControlState = 'idle';
  private phaseTimer: TimerHandle | undefined;
  /** Why we sent a Stop-Control-Connection-Request: the reason reported when it completes. */
  private stopText = '';
  /** Peer-repeatable events, summarised (RepeatedEvents). */
  readonly events: RepeatedEvents;
  private deadlineTimer: TimerHandle | undefined;
  private answerTokens: number;
  private answerRefilledAt = 0;

  constructor(opts: ControlConnectionOptions) {
    this.opts = opts;
    this.log = opts.log;
    // A message of the peer's that crosses our Stop-Control-Connection-Request (its Call-Clear-Request
    // when both ends hang up at once) is normal: counted, but not a warning.
    this.drops = new DropCounter<PptpDropReason>(opts.log, 'PPTP control message', undefined, {
      expected: EXPECTED_DROPS,
    });
    this.events = new RepeatedEvents(opts.log);
    this.answerTokens = this.answerBurst;
    this.keepalive = new EchoKeepalive({
      clock: opts.clock,
      intervalMs: opts.echoIntervalMs ?? 60_000,
      timeoutMs: opts.echoTimeoutMs ?? 60_000,
      sendEchoRequest: (identifier) => this.send({ type: 'echo-request', identifier }),
      onDead: (reason) => this.finish(reason, true),
    });
    this.callManager = new CallManager({
      role: opts.role,
      clock: opts.clock,
      log: opts.log,
      callIds: opts.callIds,
      drops: this.drops,
      events: this.events,
      mayAnswer: (what) => this.mayAnswer(what),
      recvWindow: opts.recvWindow ?? 64,
      maxCalls: opts.maxCalls ?? 1,
      callTimeoutMs: opts.callTimeoutMs ?? 60_000,
      send: (msg) => this.send(msg),
      onCallRequest: (req) => opts.onCallRequest?.(req) ?? { accept: true },
      onCallUp: (call) => {
        this.cancelDeadline();
        opts.onCallUp?.(call);
      },
      onCallDown: (call, reason) => {
        if (this.currentState === 'established' && this.callManager.size === 0)
          this.armDeadline('of the last call ending');
        opts.onCallDown?.(call, reason);
      },
      onSetLinkInfo: (call, s, r) => opts.onSetLinkInfo?.(call, s, r),
    });
  }

  get state(): ControlState {
    return this.currentState;
  }

  calls(): CallInfo[] {
    return this.callManager.list();
  }

  /** PNS: send the Start-Control-Connection-Request; PAC: wait for it. Both within establishTimeoutMs. */
  start(): void {
    if (this.currentState !== 'idle') return;
    const ms = this.opts.establishTimeoutMs ?? 60_000;
    const what =
      this.opts.role === 'pac' ? 'Start-Control-Connection-Request' : 'Start-Control-Connection-Reply';
    this.phaseTimer = this.opts.clock.setTimer(ms, () =>
      this.finish(`no ${what} within ${ms / 1000} s`, true),
    );
    this.armDeadline('of the control connection starting');
    if (this.opts.role === 'pac') {
      this.currentState = 'wait-ctl-request';
      return;
    }
    this.currentState = 'wait-ctl-reply';
    this.send({ type: 'start-control-connection-request', ...this.startFields(), maxChannels: 0 });
  }

  /** TCP bytes from the peer. Never throws. */
  receive(bytes: Uint8Array): void {
    if (this.currentState === 'closed') return;
    try {
      this.framer.push(bytes);
      // dispatch() may close the connection: the bytes after that are ignored.
      while (this.state !== 'closed') {
        const msg = this.framer.next();
        if (!msg) return;
        this.keepalive.received();
        if (this.log.debugEnabled) this.log.debug(`recv ${describeControlMessage(msg)}`);
        this.dispatch(msg);
      }
    } catch (e) {
      this.receiveFailed(e);
    }
  }

  /** The TCP socket closed or failed. */
  transportClosed(): void {
    this.finish('TCP connection closed', false);
  }

  /** PNS: place a call (Outgoing-Call-Request); returns our Call ID. Throws unless established. */
  placeCall(phoneNumber = ''): number {
    if (this.opts.role !== 'pns') throw new Error('only a PNS places calls');
    if (this.currentState !== 'established')
      throw new Error(`cannot place a call in state ${this.currentState}`);
    return this.callManager.place(phoneNumber);
  }

  /** Clear a call: PNS sends Call-Clear-Request, PAC Call-Disconnect-Notify. False if unknown. */
  clearCall(localCallId: number, reason: string): boolean {
    if (this.currentState !== 'established') return false;
    return this.callManager.clear(localCallId, reason);
  }

  /** Stop-Control-Connection-Request (RFC 2637 §2.3), then close on the Reply or after stopTimeoutMs.
   *  Before establishment the TCP connection is simply closed. */
  stop(reason: string, stopReason: number = StopReason.None): void {
    switch (this.currentState) {
      case 'established':
        this.callManager.downAll(reason, true);
        // A call's onCallDown may have stopped us already (a session ends its connection with
        // its last call): one Stop-Control-Connection-Request, not two.
        if (this.currentState === 'established') this.sendStop(stopReason, reason);
        return;
      case 'idle':
      case 'wait-ctl-request':
      case 'wait-ctl-reply':
        this.finish(reason, true);
        return;
      case 'wait-stop-reply':
      case 'closed':
        return;
    }
  }

  private dispatch(msg: ControlMessage): void {
    switch (msg.type) {
      case 'echo-request': {
        if (!this.mayAnswer('Echo-Request')) return;
        const ok = this.currentState === 'established' || this.currentState === 'wait-stop-reply';
        this.send({
          type: 'echo-reply',
          identifier: msg.identifier,
          resultCode: ok ? EchoResult.Ok : EchoResult.GeneralError,
          errorCode: ok ? GeneralError.None : GeneralError.NotConnected,
        });
        return;
      }
      case 'echo-reply':
        if (!this.keepalive.replyReceived(msg.identifier)) {
          this.drops.drop('Echo-Reply with an unexpected identifier', `identifier ${msg.identifier}`);
        }
        return;
      case 'stop-control-connection-request': {
        // RFC 2637 §2.3: always answered, also when our own request crossed it (wait-stop-reply):
        // then both sides answer and close, and our reason stays the one reported.
        const crossed = this.currentState === 'wait-stop-reply';
        this.send({
          type: 'stop-control-connection-reply',
          resultCode: StopResult.Ok,
          errorCode: GeneralError.None,
        });
        const theirs = `reason: ${codeName('stopReason', msg.reason)}`;
        this.finish(
          crossed
            ? `${this.stopText} (crossed with the peer's Stop-Control-Connection-Request, ${theirs})`
            : `peer stopped the control connection (${theirs})`,
          true,
        );
        return;
      }
      case 'stop-control-connection-reply':
        if (this.currentState === 'wait-stop-reply') this.finish(this.stopText, true);
        else this.drops.drop('unexpected Stop-Control-Connection-Reply');
        return;
      case 'start-control-connection-request':
        if (this.currentState === 'wait-ctl-request') this.receiveStartRequest(msg);
        else this.unexpectedStart(msg);
        return;
      case 'start-control-connection-reply':
        if (this.currentState === 'wait-ctl-reply') this.receiveStartReply(msg);
        else this.unexpectedStart(msg);
        return;
      default:
        if (this.currentState === 'established') this.callManager.receive(msg);
        else if (this.currentState === 'wait-stop-reply') this.drops.drop('message while stopping', msg.type);
        else this.notConnected(msg);
        return;
    }
  }

  /** PAC: RFC 2637 §2.1-§2.2. Any 1.x version is accepted; we answer 1.0. */
  private receiveStartRequest(req: StartControlConnectionRequest): void {
    this.phaseTimer?.cancel();
    const maxChannels = Math.min(this.opts.maxCalls ?? 1, 0xffff);
    if (req.protocolVersion >> 8 !== PPTP_PROTOCOL_VERSION >> 8) {
      this.sendStartReply(StartResult.VersionNotSupported, maxChannels);
      this.finish(`peer's protocol version 0x${req.protocolVersion.toString(16)} is not supported`, true);
      return;
    }
    this.sendStartReply(StartResult.Successful, maxChannels);
    this.established(req);
  }

  /** PNS: RFC 2637 §2.2. */
  private receiveStartReply(rep: StartControlConnectionReply): void {
    this.phaseTimer?.cancel();
    if (rep.resultCode !== StartResult.Successful) {
      const why = `peer refused the control connection: ${codeName('start', rep.resultCode)}, error ${codeName('error', rep.errorCode)}`;
      this.finish(why, true);
      return;
    }
    if (rep.protocolVersion >> 8 !== PPTP_PROTOCOL_VERSION >> 8) {
      const why = `peer's protocol version 0x${rep.protocolVersion.toString(16)} is not supported`;
      this.log.warn(why);
      this.sendStop(StopReason.StopProtocol, why);
      return;
    }
    this.established(rep);
  }

  private established(peer: StartControlConnectionRequest | StartControlConnectionReply): void {
    this.currentState = 'established';
    // Host name and vendor are the peer's bytes: quoted and escaped, never pasted raw.
    this.log.info(
      `control connection established with host ${quote(peer.hostName)}, vendor ${quote(peer.vendor)}, ` +
        `protocol version 0x${peer.protocolVersion.toString(16).padStart(4, '0')}`,
    );
    this.keepalive.start();
    this.opts.onEstablished?.({
      hostName: peer.hostName,
      vendor: peer.vendor,
      protocolVersion: peer.protocolVersion,
    });
  }

  /** A Start message when none is expected: a duplicate request gets "already exists" (RFC 2637 §2.2
   *  result 3); anything else is a protocol violation that ends the connection. */
  private unexpectedStart(msg: ControlMessage): void {
    if (msg.type === 'start-control-connection-request' && this.currentState === 'established') {
      this.events.note(
        'Start-Control-Connection-Request repeated',
        'peer repeated its Start-Control-Connection-Request: answered "already exists"',
      );
      if (this.mayAnswer('Start-Control-Connection-Request'))
        this.sendStartReply(StartResult.AlreadyExists, 0);
      return;
    }
    this.violation(`unexpected ${msg.type} in state ${this.currentState}`);
  }

  /** A call message before the connection is established: answer General Error "Not-Connected"
   *  (RFC 2637 §2.16 code 1) where the message has a reply, then close. */
  private notConnected(msg: ControlMessage): void {
    const error = GeneralError.NotConnected;
    if (msg.type === 'outgoing-call-request') {
      this.send(outgoingCallRefusal(msg.callId, OutgoingCallResult.GeneralError, error, 0));
    } else if (msg.type === 'incoming-call-request') {
      this.send(incomingCallRefusal(msg.callId, IncomingCallResult.GeneralError, error));
    }
    this.violation(`${msg.type} before the control connection was established`);
  }

  /** Protocol violation: log in words; Stop-Control-Connection if established, else just close. */
  private violation(what: string): void {
    this.log.warn(`protocol violation: ${what}`);
    if (this.currentState === 'established') this.stop(`protocol violation: ${what}`);
    else this.finish(`protocol violation: ${what}`, true);
  }

  private receiveFailed(e: unknown): void {
    if (e instanceof ProtocolError) {
      const why = `malformed control message: ${e.message}`;
      this.log.warn(why);
      // The stream cannot be resynchronised, so no Stop-Control-Connection-Reply could be read.
      if (this.currentState === 'established') this.sendStop(StopReason.None, why);
      this.finish(why, true);
      return;
    }
    const why = `internal error while handling a control message: ${e instanceof Error ? e.message : String(e)}`;
    this.log.error(why);
    this.finish(why, true);
  }

  /** PAC (or when set): the call deadline counts from now; `since` completes "within N s ...". */
  private armDeadline(since: string): void {
    const ms = this.opts.callDeadlineMs ?? (this.opts.role === 'pac' ? 30_000 : 0);
    this.cancelDeadline();
    if (!(ms > 0)) return;
    this.deadlineTimer = this.opts.clock.setTimer(ms, () => {
      this.deadlineTimer = undefined;
      const why = `no call placed within ${ms / 1000} s ${since}`;
      if (this.currentState === 'established') {
        this.log.warn(`stopping the control connection: ${why}`);
        this.sendStop(StopReason.None, why);
      } else if (this.currentState !== 'wait-stop-reply') {
        this.finish(why, true);
      }
    });
  }

  private cancelDeadline(): void {
    this.deadlineTimer?.cancel();
    this.deadlineTimer = undefined;
  }

  private get answerBurst(): number {
    return Math.max(1, this.opts.answerBurst ?? 20);
  }

  /** Token bucket for answers to peer-initiated requests: answerBurst, one more per second. */
  private mayAnswer(what: string): boolean {
    const now = this.opts.clock.now();
    const refill = Math.floor((now - this.answerRefilledAt) / 1000);
    if (refill > 0) {
      this.answerTokens = Math.min(this.answerBurst, this.answerTokens + refill);
      this.answerRefilledAt += refill * 1000;
    }
    if (this.answerTokens === this.answerBurst) this.answerRefilledAt = now;
    if (this.answerTokens > 0) {
      this.answerTokens--;
      return true;
    }
    this.drops.drop('request not answered: the peer floods requests', what);
    return false;
  }

  private sendStop(reason: number, text: string): void {
    this.keepalive.stop();
    this.cancelDeadline();
    this.currentState = 'wait-stop-reply';
    this.stopText = text;
    this.send({ type: 'stop-control-connection-request', reason });
    const ms = this.opts.stopTimeoutMs ?? 10_000;
    this.phaseTimer?.cancel();
    this.phaseTimer = this.opts.clock.setTimer(ms, () =>
      this.finish(`${text} (no Stop-Control-Connection-Reply within ${ms / 1000} s)`, true),
    );
  }

  private sendStartReply(resultCode: number, maxChannels: number): void {
    this.send({
      type: 'start-control-connection-reply',
      ...this.startFields(),
      resultCode,
      errorCode: GeneralError.None,
      maxChannels,
    });
  }

  private startFields() {
    return {
      protocolVersion: PPTP_PROTOCOL_VERSION,
      framingCapabilities: FramingCapability.Async | FramingCapability.Sync,
      bearerCapabilities: BearerCapability.Analog | BearerCapability.Digital,
      firmwareRevision: this.opts.firmwareRevision ?? 1,
      hostName: this.opts.hostName ?? '',
      vendor: this.opts.vendor ?? 'poptop',
    };
  }

  private send(msg: ControlMessage): void {
    if (this.currentState === 'closed') return;
    if (this.log.debugEnabled) this.log.debug(`send ${describeControlMessage(msg)}`);
    this.opts.write(encodeControlMessage(msg));
  }

  /** The one way to the closed state: timers off, calls down (IDs released), socket closed, onClosed. */
  private finish(reason: string, closeTransport: boolean): void {
    if (this.currentState === 'closed') return;
    this.keepalive.stop();
    this.cancelDeadline();
    this.phaseTimer?.cancel();
    this.phaseTimer = undefined;
    this.currentState = 'closed';
    this.callManager.downAll(reason, false);
    if (closeTransport) this.opts.close();
    this.log.debug(`control connection closed: ${reason}`);
    this.opts.onClosed?.(reason);
  }
}
