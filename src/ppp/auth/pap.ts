import type { Secret } from '../../aaa/credentials.ts';
import { ntPasswordHash } from '../../crypto/mschap.ts';
import type { TimerHandle } from '../../util/clock.ts';
import type { DropCounter } from '../../util/counters.ts';
import { quote } from '../../util/escape.ts';
import { extend } from '../../util/objects.ts';
import {
  assessLogin,
  DEFAULT_MAX_REQUESTS,
  DEFAULT_RETRY_MS,
  DEFAULT_TIMEOUT_MS,
  decodeOrDrop,
  decodeText,
  dropCounter,
  encodeText,
  lockedOutReason,
  logAuthenticatorFailure,
  lookupUser,
  randomSource,
  recordLogin,
  reportAuthenticatorFailure,
  safeEqual,
  unknownUser,
  wrongPassword,
} from './common.ts';
import { decodePapPacket, describePapPacket, encodePapPacket, PapCode, type PapPacket } from './pap-codec.ts';
import type { AuthDropReason } from './types.ts';
import {
  type AuthExchange,
  type AuthenticatorOptions,
  type AuthHost,
  type AuthPeerOptions,
  PPP_PAP,
  type RemoteAuthRequest,
} from './types.ts';

/** Messages in our Ack/Nak (pppd's wording). The Nak never says which of name or password was wrong. */
export const PAP_ACK_MESSAGE = 'Login ok';
export const PAP_NAK_MESSAGE = 'Login incorrect';

/**
 * Do the password octets the peer offered match the stored secret? Constant time. A clear secret is
 * compared as UTF-8 octets; an NT hash against the hash of the offered password read as UTF-8.
 */
export function papPasswordMatches(secret: Secret, offered: Uint8Array): boolean {
  if (secret.kind === 'nthash') return safeEqual(ntPasswordHash(decodeText(offered)), secret.hash);
  return safeEqual(offered, encodeText(secret.password));
}

/**
 * PAP authenticator (RFC 1334 §2): waits up to `timeoutMs` for an Authenticate-Request and answers
 * it with Ack or Nak. The first request decides (pppd does the same: no second try after a Nak);
 * a repeated request (our answer was lost) gets the same answer again, with its own Identifier.
 *
 * With a `throttle` (login back-off) the answer may be held back (`deciding`; retransmissions meanwhile
 * are answered once, when it goes out), and a locked-out address gets the Nak without its password
 * being checked.
 *
 *   start ──> listen ──AuthReq ok──> [deciding] ──> accepted   (Ack; repeats answered with Ack)
 *                    ──AuthReq bad─> [deciding] ──> refused    (Nak; repeats answered with Nak)
 *                    ──timeout────> refused    (no packet sent)
 */
export class PapAuthenticator implements AuthExchange {
  readonly method = 'pap' as const;
  readonly protocol = PPP_PAP;
  readonly drops: DropCounter<AuthDropReason>;
  private readonly host: AuthHost;
  private readonly cfg: AuthenticatorOptions;
  private state: 'idle' | 'listen' | 'deciding' | 'accepted' | 'refused' | 'stopped' = 'idle';
  private timer: TimerHandle | undefined;
  /** Identifier of the latest Authenticate-Request, answered when a held-back answer goes out. */
  private lastId: number | undefined;
  /** A question to the remote authenticator (RADIUS) not yet answered. */
  private asking: { cancel(): void } | undefined;

  constructor(host: AuthHost, cfg: AuthenticatorOptions) {
    this.host = host;
    this.cfg = cfg;
    this.drops = dropCounter(host, cfg, 'PAP packet');
  }

  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'listen';
    this.timer = this.host.clock.setTimer(this.cfg.timeoutMs ?? DEFAULT_TIMEOUT_MS, () =>
      this.onWaitExpired(),
    );
  }

  stop(): void {
    this.timer?.cancel();
    this.asking?.cancel();
    this.asking = undefined;
    this.state = 'stopped';
  }

  receive(packet: Uint8Array): void {
    if (this.state === 'idle' || this.state === 'stopped') return;
    const p = decodeOrDrop(decodePapPacket, packet, this.drops);
    if (!p) return;
    if (p.code !== PapCode.AuthenticateRequest) {
      this.drops.drop('Authenticate-Ack/Nak sent to the authenticator');
      return;
    }
    if (this.host.log.debugEnabled) this.host.log.debug(`recv ${describePapPacket(p)}`);
    if (this.state === 'deciding') {
      // A retransmission while the answer is held back: answered once, with its Identifier.
      this.lastId = p.id;
      return;
    }
    if (this.state === 'accepted') this.answer(PapCode.AuthenticateAck, p.id, PAP_ACK_MESSAGE);
    else if (this.state === 'refused') this.answer(PapCode.AuthenticateNak, p.id, PAP_NAK_MESSAGE);
    else this.verify(p.id, p.peerId, p.password);
  }

  private verify(id: number, name: Uint8Array, password: Uint8Array): void {
    this.timer?.cancel();
    const rawUser = decodeText(name);
    const { user, credential } = lookupUser(this.cfg, rawUser);
    const gate = assessLogin(this.cfg, user);
    let reason: string | undefined;
    if (!gate.locked && this.cfg.remote) {
      this.verifyRemotely(
        id,
        { method: 'pap', rawUser, user, name: name.slice(), password: password.slice() },
        gate.delayMs,
      );
      return;
    }
    if (gate.locked) reason = lockedOutReason(this.cfg.peerAddress ?? '');
    else {
      const ok = credential !== undefined && papPasswordMatches(credential.secret, password);
      recordLogin(this.cfg, user, ok);
      if (!ok) reason = credential ? wrongPassword(user) : unknownUser(user);
    }
    if (reason !== undefined) {
      const failure = { method: 'pap' as const, user, reason };
      logAuthenticatorFailure(this.host, this.cfg, failure, gate.locked);
      this.decide(gate.delayMs, () => {
        this.state = 'refused';
        this.answer(PapCode.AuthenticateNak, this.lastId ?? id, PAP_NAK_MESSAGE);
        this.host.failed(extend(failure, { logged: true }));
      });
      return;
    }
    this.decide(gate.delayMs, () => {
      this.state = 'accepted';
      this.answer(PapCode.AuthenticateAck, this.lastId ?? id, PAP_ACK_MESSAGE);
      this.host.log.debug(`PAP: peer authenticated as ${quote(user)}`);
      this.host.succeeded({ method: 'pap', user, rawUser, credential: credential! });
    });
  }

  /**
   * Ask the remote authenticator (RADIUS); the answer is held (`deciding`, retransmissions noted)
   * until it replies, then for the rest of the back-off delay.
   */
  private verifyRemotely(id: number, request: RemoteAuthRequest & { method: 'pap' }, delayMs: number): void {
    const { rawUser, user } = request;
    const remote = this.cfg.remote!;
    this.state = 'deciding';
    this.lastId = id;
    this.asking = remote.verify(request, (verdict) => {
      this.asking = undefined;
      if (this.state !== 'deciding') return;
      recordLogin(this.cfg, user, verdict.ok);
      if (!verdict.ok) {
        const failure = { method: 'pap' as const, user, reason: verdict.reason };
        logAuthenticatorFailure(this.host, this.cfg, failure);
        this.decide(delayMs, () => {
          this.state = 'refused';
          this.answer(PapCode.AuthenticateNak, this.lastId ?? id, PAP_NAK_MESSAGE);
          this.host.failed(extend(failure, { logged: true }));
        });
        return;
      }
      this.decide(delayMs, () => {
        this.state = 'accepted';
        this.answer(PapCode.AuthenticateAck, this.lastId ?? id, PAP_ACK_MESSAGE);
        this.host.log.debug(`PAP: peer authenticated as ${quote(user)}`);
        this.host.succeeded({
          method: 'pap',
          user,
          rawUser,
          ...(verdict.grant !== undefined ? { grant: verdict.grant } : {}),
        });
      });
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

  private answer(
    code: typeof PapCode.AuthenticateAck | typeof PapCode.AuthenticateNak,
    id: number,
    text: string,
  ) {
    const p: PapPacket = { code, id, message: encodeText(text) };
    if (this.host.log.debugEnabled) this.host.log.debug(`sent ${describePapPacket(p)}`);
    this.host.send(PPP_PAP, encodePapPacket(p));
  }

  private onWaitExpired(): void {
    if (this.state !== 'listen') return;
    this.state = 'refused';
    const seconds = (this.cfg.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000;
    reportAuthenticatorFailure(this.host, this.cfg, {
      method: 'pap',
      reason: `no Authenticate-Request from the peer within ${seconds} s`,
    });
  }
}

/**
 * PAP peer (RFC 1334 §2): sends Authenticate-Request every `retryMs` until an Ack or Nak arrives,
 * at most `maxRequests` times. Each retransmission carries a new Identifier (as pppd does); an answer
 * to any of them is accepted.
 */
export class PapPeer implements AuthExchange {
  readonly method = 'pap' as const;
  readonly protocol = PPP_PAP;
  readonly drops: DropCounter<AuthDropReason>;
  private readonly host: AuthHost;
  private readonly cfg: AuthPeerOptions;
  private state: 'idle' | 'requesting' | 'done' = 'idle';
  private timer: TimerHandle | undefined;
  private nextId: number;
  private sent = 0;
  private readonly sentIds = new Set<number>();
  private request: { peerId: Uint8Array; password: Uint8Array } | undefined;

  constructor(host: AuthHost, cfg: AuthPeerOptions) {
    this.host = host;
    this.cfg = cfg;
    this.drops = dropCounter(host, cfg, 'PAP packet');
    this.nextId = randomSource(cfg)(1)[0] ?? 0;
  }

  start(): void {
    if (this.state !== 'idle') return;
    const peerId = encodeText(this.cfg.user);
    const password = encodeText(this.cfg.password);
    if (peerId.length > 255 || password.length > 255) {
      this.finishFailed('the user name or password is longer than the 255 octets PAP can carry');
      return;
    }
    this.request = { peerId, password };
    this.state = 'requesting';
    this.sendRequest();
  }

  stop(): void {
    this.timer?.cancel();
    this.state = 'done';
  }

  receive(packet: Uint8Array): void {
    if (this.state !== 'requesting') return;
    const p = decodeOrDrop(decodePapPacket, packet, this.drops);
    if (!p) return;
    if (p.code === PapCode.AuthenticateRequest) {
      this.drops.drop('Authenticate-Request sent to the peer');
      return;
    }
    if (!this.sentIds.has(p.id)) {
      this.drops.drop('Authenticate-Ack/Nak with an Identifier we did not send');
      return;
    }
    if (this.host.log.debugEnabled) this.host.log.debug(`recv ${describePapPacket(p)}`);
    this.timer?.cancel();
    this.state = 'done';
    const message = decodeText(p.message);
    if (p.code === PapCode.AuthenticateNak) {
      this.finishFailed(`authenticator refused us${message ? `: ${quote(message)}` : ''}`);
      return;
    }
    this.host.log.info(`PAP: authenticated as ${quote(this.cfg.user)}`);
    this.host.succeeded({ method: 'pap', user: this.cfg.user, rawUser: this.cfg.user });
  }

  private sendRequest(): void {
    if (!this.request) return;
    const id = this.nextId;
    this.nextId = (this.nextId + 1) & 0xff;
    this.sentIds.add(id);
    this.sent++;
    const p: PapPacket = { code: PapCode.AuthenticateRequest, id, ...this.request };
    this.timer = this.host.clock.setTimer(this.cfg.retryMs ?? DEFAULT_RETRY_MS, () => this.onRetryExpired());
    if (this.host.log.debugEnabled) this.host.log.debug(`sent ${describePapPacket(p)}`);
    this.host.send(PPP_PAP, encodePapPacket(p));
  }

  private onRetryExpired(): void {
    if (this.state !== 'requesting') return;
    if (this.sent < (this.cfg.maxRequests ?? DEFAULT_MAX_REQUESTS)) {
      this.sendRequest();
      return;
    }
    this.state = 'done';
    this.finishFailed(`no answer to ${this.sent} Authenticate-Requests`);
  }

  private finishFailed(reason: string): void {
    this.state = 'done';
    this.host.log.warn(`PAP: authentication failed: ${reason}`);
    this.host.failed({ method: 'pap', user: this.cfg.user, reason });
  }
}
