import type { TimerHandle } from '../../util/clock.ts';
import type { DropCounter } from '../../util/counters.ts';
import { quote } from '../../util/escape.ts';
import { extend } from '../../util/objects.ts';
import {
  ChapCode,
  type ChapPacket,
  decodeChapPacket,
  describeChapPacket,
  encodeChapPacket,
} from './chap-codec.ts';
import type { ChapAnswer, ChapDigest } from './chap-digest.ts';
import {
  assessLogin,
  DEFAULT_MAX_CHALLENGES,
  DEFAULT_RETRY_MS,
  DEFAULT_TIMEOUT_MS,
  decodeOrDrop,
  decodeText,
  dropCounter,
  encodeText,
  lockedOutReason,
  logAuthenticatorFailure,
  lookupUser,
  METHOD_NAMES,
  randomSource,
  recordLogin,
  reportAuthenticatorFailure,
  safeEqual,
  unknownUser,
} from './common.ts';
import type { AuthDropReason } from './types.ts';
import {
  type AuthExchange,
  type AuthenticatorOptions,
  type AuthHost,
  type AuthPeerOptions,
  PPP_CHAP,
} from './types.ts';

const CODE_WORDS: Record<number, string> = { 1: 'Challenge', 2: 'Response', 3: 'Success', 4: 'Failure' };

/**
 * CHAP authenticator (RFC 1994 §4): sends a Challenge and retransmits it (same Identifier, same
 * value) every `retryMs` until a Response with that Identifier arrives, at most `maxChallenges` times.
 * The first well-formed Response decides; there is no second try (pppd behaves the same, and our
 * MS-CHAP Failure messages say R=0). A repeated Response (our Success/Failure was lost) gets the same
 * answer again (RFC 1994 §4.2). Responses with another Identifier are dropped and counted.
 *
 * With a `throttle` (login back-off), a Response from a locked-out address gets the Failure a wrong
 * password gets, without its password being checked; and the answer may be held back for a while
 * (`deciding`), whatever it is, so its timing tells nothing.
 *
 *   start ──> challenging ──Response ok──> [deciding: back-off] ──> accepted   (Success)
 *               │  ↺ timer: resend       ──Response bad─> [deciding: back-off] ──> refused (Failure)
 *               └──maxChallenges sent──> refused (no packet)
 */
export class ChapAuthenticator implements AuthExchange {
  readonly method;
  readonly protocol = PPP_CHAP;
  readonly drops: DropCounter<AuthDropReason>;
  private readonly host: AuthHost;
  private readonly cfg: AuthenticatorOptions;
  private readonly digest: ChapDigest;
  private readonly random: (n: number) => Uint8Array;
  private state: 'idle' | 'challenging' | 'deciding' | 'accepted' | 'refused' | 'stopped' = 'idle';
  private timer: TimerHandle | undefined;
  private id = 0;
  private challenge: Uint8Array = new Uint8Array(0);
  private challengesSent = 0;
  private result: Uint8Array | undefined;
  /** A question to the remote authenticator (RADIUS) not yet answered. */
  private asking: { cancel(): void } | undefined;

  constructor(digest: ChapDigest, host: AuthHost, cfg: AuthenticatorOptions) {
    this.digest = digest;
    this.method = digest.method;
    this.host = host;
    this.cfg = cfg;
    this.random = randomSource(cfg);
    this.drops = dropCounter(host, cfg, `${METHOD_NAMES[digest.method]} packet`);
  }

  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'challenging';
    this.id = this.random(1)[0] ?? 0;
    this.challenge = this.random(this.digest.challengeLength);
    this.sendChallenge();
  }

  stop(): void {
    this.timer?.cancel();
    this.asking?.cancel();
    this.asking = undefined;
    this.state = 'stopped';
  }

  receive(packet: Uint8Array): void {
    if (this.state === 'idle' || this.state === 'stopped') return;
    const p = decodeOrDrop(decodeChapPacket, packet, this.drops);
    if (!p) return;
    if (p.code !== ChapCode.Response) {
      this.drops.drop('CHAP Challenge, Success or Failure sent to the authenticator', CODE_WORDS[p.code]);
      return;
    }
    if (p.id !== this.id) {
      this.drops.drop(
        'Response with an Identifier that is not our Challenge',
        `id ${p.id}, expected ${this.id}`,
      );
      return;
    }
    if (this.host.log.debugEnabled) this.host.log.debug(`recv ${describeChapPacket(p)}`);
    if (this.state === 'deciding') {
      // The peer repeated its Response while the answer is held back: it gets the answer once.
      if (this.host.log.debugEnabled) this.host.log.debug('repeated Response while the answer is held back');
      return;
    }
    if (this.state !== 'challenging') {
      if (this.result) {
        if (this.host.log.debugEnabled) this.host.log.debug(`sent the same answer again (id=${this.id})`);
        this.host.send(PPP_CHAP, this.result);
      } else this.drops.drop('Response after the exchange timed out');
      return;
    }
    const problem = this.digest.checkResponseValue(p.value);
    if (problem !== undefined) {
      this.drops.drop('malformed Response', `${METHOD_NAMES[this.method]}: ${problem}`);
      return;
    }
    this.timer?.cancel();
    this.judge(p.value, p.name);
  }

  private judge(response: Uint8Array, name: Uint8Array): void {
    const rawUser = decodeText(name);
    const { user, credential } = lookupUser(this.cfg, rawUser);
    const base = { challenge: this.challenge, random: this.random };
    const gate = assessLogin(this.cfg, user);
    if (gate.locked) {
      // The password is not checked: the answer is the one a wrong password gets.
      const reason = lockedOutReason(this.cfg.peerAddress ?? '');
      this.refuse(user, reason, this.digest.failureMessage(base), gate.delayMs, true);
      return;
    }
    if (this.cfg.remote) {
      this.judgeRemotely(response, name, rawUser, user, gate.delayMs);
      return;
    }
    if (!credential) {
      recordLogin(this.cfg, user, false);
      this.refuse(user, unknownUser(user), this.digest.failureMessage(base), gate.delayMs);
      return;
    }
    const verdict = this.digest.verify(
      extend(base, { id: this.id, response, name, rawUser, user, credential }),
    );
    recordLogin(this.cfg, user, verdict.ok);
    if (!verdict.ok) {
      this.refuse(user, verdict.reason, verdict.message, gate.delayMs);
      return;
    }
    this.decide(gate.delayMs, () => {
      this.state = 'accepted';
      this.sendResult(ChapCode.Success, verdict.message);
      this.host.log.debug(`${METHOD_NAMES[this.method]}: peer authenticated as ${quote(user)}`);
      this.host.succeeded({
        method: this.method,
        user,
        rawUser,
        credential,
        ...(verdict.mppeKeys ? { mppeKeys: verdict.mppeKeys } : {}),
      });
    });
  }

  /**
   * Ask the remote authenticator (RADIUS); the answer is held (`deciding`) until it replies, then
   * for the rest of the back-off delay. Its Success/Failure message (MS-CHAP2-Success,
   * MS-CHAP-Error) goes to the peer unchanged.
   */
  private judgeRemotely(
    response: Uint8Array,
    name: Uint8Array,
    rawUser: string,
    user: string,
    delayMs: number,
  ): void {
    const remote = this.cfg.remote!;
    this.state = 'deciding';
    const base = { challenge: this.challenge, random: this.random };
    const method = this.method as 'chap-md5' | 'mschap' | 'mschapv2';
    const request = { method, rawUser, user, id: this.id, challenge: this.challenge, response, name };
    this.asking = remote.verify(request, (verdict) => {
      this.asking = undefined;
      if (this.state !== 'deciding') return;
      recordLogin(this.cfg, user, verdict.ok);
      if (!verdict.ok) {
        this.refuse(user, verdict.reason, verdict.message ?? this.digest.failureMessage(base), delayMs);
        return;
      }
      this.decide(delayMs, () => {
        this.state = 'accepted';
        this.sendResult(ChapCode.Success, verdict.message ?? '');
        this.host.log.debug(`${METHOD_NAMES[this.method]}: peer authenticated as ${quote(user)}`);
        this.host.succeeded({
          method: this.method,
          user,
          rawUser,
          ...(verdict.mppeKeys ? { mppeKeys: verdict.mppeKeys } : {}),
          ...(verdict.grant !== undefined ? { grant: verdict.grant } : {}),
        });
      });
    });
  }

  /**
   * Refuse: the failure is logged now (one line; a debug line for a locked-out address), the
   * Failure is sent and the failure reported after `delayMs` (the back-off).
   */
  private refuse(user: string, reason: string, message: string, delayMs: number, quiet = false): void {
    const failure = { method: this.method, user, reason };
    logAuthenticatorFailure(this.host, this.cfg, failure, quiet);
    this.decide(delayMs, () => {
      this.state = 'refused';
      this.sendResult(ChapCode.Failure, message);
      this.host.failed(extend(failure, { logged: true }));
    });
  }

  /** Run `answer` now, or after `delayMs` in the `deciding` state (stop() cancels it). */
  private decide(delayMs: number, answer: () => void): void {
    if (delayMs <= 0) {
      answer();
      return;
    }
    this.state = 'deciding';
    if (this.host.log.debugEnabled) this.host.log.debug(`answer held back ${delayMs} ms (login back-off)`);
    this.timer = this.host.clock.setTimer(delayMs, () => {
      if (this.state === 'deciding') answer();
    });
  }

  private sendChallenge(): void {
    const p: ChapPacket = {
      code: ChapCode.Challenge,
      id: this.id,
      value: this.challenge,
      name: encodeText(this.cfg.serverName),
    };
    this.challengesSent++;
    this.timer = this.host.clock.setTimer(this.cfg.retryMs ?? DEFAULT_RETRY_MS, () =>
      this.onChallengeExpired(),
    );
    if (this.host.log.debugEnabled) this.host.log.debug(`sent ${describeChapPacket(p)}`);
    this.host.send(PPP_CHAP, encodeChapPacket(p));
  }

  private sendResult(code: typeof ChapCode.Success | typeof ChapCode.Failure, message: string): void {
    const p: ChapPacket = { code, id: this.id, message: encodeText(message) };
    if (this.host.log.debugEnabled) this.host.log.debug(`sent ${describeChapPacket(p)}`);
    this.result = encodeChapPacket(p);
    this.host.send(PPP_CHAP, this.result);
  }

  private onChallengeExpired(): void {
    if (this.state !== 'challenging') return;
    if (this.challengesSent < (this.cfg.maxChallenges ?? DEFAULT_MAX_CHALLENGES)) {
      this.sendChallenge();
      return;
    }
    this.state = 'refused';
    reportAuthenticatorFailure(this.host, this.cfg, {
      method: this.method,
      reason: `peer sent no Response to ${this.challengesSent} Challenges`,
    });
  }
}

/**
 * CHAP peer (RFC 1994 §4): answers each Challenge with a Response named `user`. A retransmitted
 * Challenge (same Identifier and value) gets the very same Response again, so a lost Response costs
 * one retransmission interval. Success is judged by the digest (MS-CHAPv2 verifies the authenticator
 * response: mutual authentication); Failure ends the exchange. If no Challenge, or no Success/Failure
 * after our Response, arrives within `timeoutMs`, the exchange fails.
 */
export class ChapPeer implements AuthExchange {
  readonly method;
  readonly protocol = PPP_CHAP;
  readonly drops: DropCounter<AuthDropReason>;
  private readonly host: AuthHost;
  private readonly cfg: AuthPeerOptions;
  private readonly digest: ChapDigest;
  private readonly random: (n: number) => Uint8Array;
  private state: 'idle' | 'waiting' | 'responded' | 'accepted' | 'stopped' = 'idle';
  private timer: TimerHandle | undefined;
  private last: { id: number; challenge: Uint8Array; answer: ChapAnswer; packet: Uint8Array } | undefined;

  constructor(digest: ChapDigest, host: AuthHost, cfg: AuthPeerOptions) {
    this.digest = digest;
    this.method = digest.method;
    this.host = host;
    this.cfg = cfg;
    this.random = randomSource(cfg);
    this.drops = dropCounter(host, cfg, `${METHOD_NAMES[digest.method]} packet`);
  }

  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'waiting';
    this.armTimer('no Challenge from the authenticator');
  }

  stop(): void {
    this.timer?.cancel();
    this.state = 'stopped';
  }

  receive(packet: Uint8Array): void {
    if (this.state === 'idle' || this.state === 'stopped') return;
    const p = decodeOrDrop(decodeChapPacket, packet, this.drops);
    if (!p) return;
    if (this.host.log.debugEnabled && p.code !== ChapCode.Response) {
      this.host.log.debug(`recv ${describeChapPacket(p)}`);
    }
    switch (p.code) {
      case ChapCode.Challenge:
        this.receiveChallenge(p.id, p.value);
        return;
      case ChapCode.Response:
        this.drops.drop('CHAP Response sent to the peer');
        return;
      case ChapCode.Success:
      case ChapCode.Failure:
        this.receiveResult(p.code, p.id, decodeText(p.message));
        return;
    }
  }

  private receiveChallenge(id: number, challenge: Uint8Array): void {
    const problem = this.digest.checkChallengeValue(challenge);
    if (problem !== undefined) {
      this.drops.drop('malformed Challenge', `${METHOD_NAMES[this.method]}: ${problem}`);
      return;
    }
    if (this.last && this.last.id === id && safeEqual(this.last.challenge, challenge)) {
      if (this.host.log.debugEnabled) this.host.log.debug(`sent the same Response again (id=${id})`);
      this.host.send(PPP_CHAP, this.last.packet);
      return;
    }
    const answer = this.digest.respond({
      id,
      challenge,
      user: this.cfg.user,
      password: this.cfg.password,
      random: this.random,
    });
    const p: ChapPacket = {
      code: ChapCode.Response,
      id,
      value: answer.value,
      name: encodeText(this.cfg.user),
    };
    const bytes = encodeChapPacket(p);
    this.last = { id, challenge: challenge.slice(), answer, packet: bytes };
    if (this.state === 'waiting' || this.state === 'responded') {
      this.state = 'responded';
      this.armTimer('no Success or Failure from the authenticator');
    }
    if (this.host.log.debugEnabled) this.host.log.debug(`sent ${describeChapPacket(p)}`);
    this.host.send(PPP_CHAP, bytes);
  }

  private receiveResult(
    code: typeof ChapCode.Success | typeof ChapCode.Failure,
    id: number,
    message: string,
  ): void {
    if (!this.last || id !== this.last.id) {
      this.drops.drop(
        'CHAP Success or Failure that answers no Response of ours',
        `${CODE_WORDS[code]}, id ${id}`,
      );
      return;
    }
    if (this.state !== 'responded') return; // a repeated Success after a re-challenge: already up
    this.timer?.cancel();
    if (code === ChapCode.Failure) {
      this.finishFailed(this.last.answer.describeFailure(message));
      return;
    }
    const judged = this.last.answer.checkSuccess(message);
    if (!judged.ok) {
      this.finishFailed(judged.reason);
      return;
    }
    this.state = 'accepted';
    this.host.log.info(`${METHOD_NAMES[this.method]}: authenticated as ${quote(this.cfg.user)}`);
    this.host.succeeded({
      method: this.method,
      user: this.cfg.user,
      rawUser: this.cfg.user,
      ...(judged.mppeKeys ? { mppeKeys: judged.mppeKeys } : {}),
    });
  }

  private armTimer(what: string): void {
    this.timer?.cancel();
    this.timer = this.host.clock.setTimer(this.cfg.timeoutMs ?? DEFAULT_TIMEOUT_MS, () =>
      this.onWaitExpired(what),
    );
  }

  private onWaitExpired(what: string): void {
    if (this.state !== 'waiting' && this.state !== 'responded') return;
    this.finishFailed(`${what} within ${(this.cfg.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000} s`);
  }

  private finishFailed(reason: string): void {
    this.timer?.cancel();
    this.state = 'stopped';
    this.host.log.warn(`${METHOD_NAMES[this.method]}: authentication failed: ${reason}`);
    this.host.failed({ method: this.method, user: this.cfg.user, reason });
  }
}
