import type { Clock } from '../../util/clock.ts';
import type { Logger } from '../../util/log.ts';
import { extend } from '../../util/objects.ts';
import type { AuthMethod } from '../auth/types.ts';
import { PacketCode, PppProtocol } from '../constants.ts';
import type { ControlProtocolHandler, FsmState } from '../fsm.ts';
import type { ConfigOption, Verdict } from '../options.ts';
import { flagOption, readU16, readU32, u16Option, u32Option, VerdictBuilder } from '../options.ts';
import type { PppPolicy } from '../policy.ts';
import { LcpKeepalive } from './keepalive.ts';
import type { LcpOptionSet } from './options.ts';
import {
  DEFAULT_MRU,
  decodeAuthData,
  describeLcpOption,
  encodeAuthData,
  LcpOption,
  MAX_MRU,
  MIN_MRU,
} from './options.ts';

/** Magic-Number collisions (ours seen from the peer) before the link is declared looped back. */
export const LOOPBACK_LIMIT = 5;

export interface LcpEvents {
  up(): void;
  down(): void;
  finished(reason: string): void;
  /** Negotiation cannot succeed (peer refuses auth, link looped back, peer silent): close the link. */
  fail(reason: string): void;
  /** The peer sent Protocol-Reject for `protocol` (RFC 1661 §5.7). */
  protocolRejected(protocol: number): void;
  /** Send an LCP packet of an extra code (id omitted = a fresh one). */
  send(code: number, data: Uint8Array, id?: number): void;
}

export interface LcpHandlerOptions {
  role: 'server' | 'client';
  policy: PppPolicy;
  clock: Clock;
  log: Logger;
  /** A random 32-bit unsigned number (Magic-Number). */
  random(): number;
  events: LcpEvents;
}

/**
 * The Link Control Protocol's options (RFC 1661 §6, RFC 1662 §7.1) and extra codes (§5.7–5.9).
 * The server requests Authentication-Protocol in its preference order; the client accepts the
 * methods its policy allows and Naks with its own preference otherwise.
 */
export class LcpHandler implements ControlProtocolHandler {
  readonly name = 'LCP' as const;
  readonly protocol = PppProtocol.LCP;
  private readonly opts: LcpHandlerOptions;
  private readonly want: LcpOptionSet;
  /** What we are currently requesting. */
  got: LcpOptionSet;
  /** What the peer requested and we acked. */
  his: LcpOptionSet;
  private authCandidates: AuthMethod[] = [];
  private loops = 0;
  private readonly keepalive: LcpKeepalive;

  constructor(opts: LcpHandlerOptions) {
    this.opts = opts;
    const p = opts.policy;
    this.want = {
      mru: p.mru,
      auth: opts.role === 'server' ? p.auth.require[0] : undefined,
      magic: undefined, // a fresh random one on every reset()
      pfc: p.pfc,
      acfc: p.acfc,
    };
    this.got = { ...this.want };
    this.his = emptySet();
    this.keepalive = new LcpKeepalive({
      clock: opts.clock,
      intervalMs: p.lcpEchoInterval * 1000,
      failures: p.lcpEchoFailure,
      sendEchoRequest: () => opts.events.send(PacketCode.EchoRequest, u32Option(0, this.got.magic ?? 0).data),
      onDead: () => opts.events.fail('peer not responding to LCP echo'),
    });
  }

  /** The largest information field we may send: the peer's MRU (RFC 1661 §6.1 default 1500). */
  get peerMru(): number {
    return this.his.mru ?? DEFAULT_MRU;
  }

  reset(): void {
    this.got = extend(this.want, { magic: this.newMagic() });
    this.authCandidates = this.opts.role === 'server' ? [...this.opts.policy.auth.require] : [];
    this.loops = 0;
  }

  buildRequest(): ConfigOption[] {
    const o: ConfigOption[] = [];
    const g = this.got;
    if (g.mru !== undefined) o.push(u16Option(LcpOption.MRU, g.mru));
    if (g.auth !== undefined) o.push({ type: LcpOption.AuthProtocol, data: encodeAuthData(g.auth) });
    if (g.magic !== undefined) o.push(u32Option(LcpOption.MagicNumber, g.magic));
    if (g.pfc) o.push(flagOption(LcpOption.PFC));
    if (g.acfc) o.push(flagOption(LcpOption.ACFC));
    return o;
  }

  checkRequest(opts: ConfigOption[], rejectIfDisagree: boolean): Verdict {
    const v = new VerdictBuilder(rejectIfDisagree);
    const his = emptySet();
    for (const o of opts) {
      switch (o.type) {
        case LcpOption.MRU:
          if (o.data.length !== 2) v.reject(o);
          else this.checkMru(o, v, his);
          break;
        case LcpOption.ACCM: // meaningless on PPTP (no HDLC): acked and ignored
          if (o.data.length !== 4) v.reject(o);
          break;
        case LcpOption.AuthProtocol:
          this.checkAuth(o, v, his);
          break;
        case LcpOption.MagicNumber:
          if (o.data.length !== 4) v.reject(o);
          else this.checkMagic(o, v, his);
          break;
        case LcpOption.PFC:
        case LcpOption.ACFC:
          if (o.data.length !== 0) v.reject(o);
          else if (o.type === LcpOption.PFC) his.pfc = true;
          else his.acfc = true;
          break;
        default:
          v.reject(o);
      }
    }
    this.his = his;
    if (this.loops >= LOOPBACK_LIMIT)
      this.opts.events.fail('link is looped back (peer echoes our Magic-Number)');
    return v.finish();
  }

  private checkMru(o: ConfigOption, v: VerdictBuilder, his: LcpOptionSet): void {
    const mru = readU16(o.data);
    if (mru < MIN_MRU) v.nak(o, u16Option(LcpOption.MRU, MIN_MRU));
    else if (mru > MAX_MRU) v.nak(o, u16Option(LcpOption.MRU, MAX_MRU));
    else his.mru = mru;
  }

  private checkAuth(o: ConfigOption, v: VerdictBuilder, his: LcpOptionSet): void {
    const accept = this.opts.role === 'client' ? this.opts.policy.auth.accept : [];
    const preferred = accept[0];
    if (preferred === undefined) {
      // we authenticate ourselves with nothing
      v.reject(o);
      return;
    }
    const method = decodeAuthData(o.data);
    if (method !== undefined && accept.includes(method)) his.auth = method;
    else v.nak(o, { type: LcpOption.AuthProtocol, data: encodeAuthData(preferred) });
  }

  /** RFC 1661 §6.4: zero is illegal and always Nak'd; our own value back may mean a loop. */
  private checkMagic(o: ConfigOption, v: VerdictBuilder, his: LcpOptionSet): void {
    const magic = readU32(o.data);
    if (magic !== 0 && magic !== this.got.magic) {
      his.magic = magic;
      return;
    }
    if (magic !== 0) {
      this.loops++;
      this.got.magic = this.newMagic();
    }
    v.nak(o, u32Option(LcpOption.MagicNumber, this.newMagic()));
  }

  ackReceived(): boolean {
    return true;
  }

  nakReceived(opts: ConfigOption[]): void {
    for (const o of opts) {
      switch (o.type) {
        case LcpOption.MRU:
          if (this.got.mru !== undefined && o.data.length === 2) {
            const mru = readU16(o.data);
            if (mru >= MIN_MRU && mru <= Math.max(this.opts.policy.mru, DEFAULT_MRU)) this.got.mru = mru;
          }
          break;
        case LcpOption.AuthProtocol:
          if (this.got.auth !== undefined) this.nextAuthMethod(decodeAuthData(o.data));
          break;
        case LcpOption.MagicNumber:
          if (this.got.magic !== undefined) {
            this.got.magic = this.newMagic();
            if (++this.loops >= LOOPBACK_LIMIT)
              this.opts.events.fail('link is looped back (Magic-Number Naks)');
          }
          break;
        default: // Naks of flag options or hints for options we do not request: nothing to change
      }
    }
  }

  /** The peer Nak'd our authentication method: use its suggestion if we allow it, else our next one. */
  private nextAuthMethod(suggested: AuthMethod | undefined): void {
    this.authCandidates = this.authCandidates.filter((m) => m !== this.got.auth);
    const next =
      suggested !== undefined && this.authCandidates.includes(suggested) ? suggested : this.authCandidates[0];
    if (next === undefined) {
      const wanted = this.opts.policy.auth.require.join(', ');
      this.opts.events.fail(`peer refused all authentication methods we require (${wanted})`);
      return;
    }
    this.opts.log.info(`peer refused ${this.got.auth}; trying ${next}`);
    this.got.auth = next;
  }

  rejectReceived(opts: ConfigOption[]): void {
    for (const o of opts) {
      switch (o.type) {
        case LcpOption.MRU:
          this.got.mru = undefined;
          break;
        case LcpOption.AuthProtocol:
          this.opts.events.fail('peer refused to authenticate (rejected Authentication-Protocol)');
          return;
        case LcpOption.MagicNumber:
          this.got.magic = undefined;
          break;
        case LcpOption.PFC:
          this.got.pfc = false;
          break;
        case LcpOption.ACFC:
          this.got.acfc = false;
          break;
        default:
      }
    }
  }

  up(): void {
    this.keepalive.start();
    this.opts.events.up();
  }

  down(): void {
    this.keepalive.stop();
    this.opts.events.down();
  }

  started(): void {}

  finished(reason: string): void {
    this.keepalive.stop();
    this.opts.events.finished(reason);
  }

  /** Echo-Request/Reply, Discard-Request (§5.8), Protocol-Reject (§5.7), Identification, Time-Remaining. */
  extraCode(code: number, id: number, data: Uint8Array, state: FsmState): boolean {
    switch (code) {
      case PacketCode.EchoRequest:
        if (state === 'opened' && data.length >= 4 && !this.isOurMagic(data)) {
          const reply = new Uint8Array(data);
          reply.set(u32Option(0, this.got.magic ?? 0).data, 0);
          this.opts.events.send(PacketCode.EchoReply, reply, id);
        }
        return true;
      case PacketCode.EchoReply:
        if (state === 'opened' && data.length >= 4 && !this.isOurMagic(data)) {
          const magic = readU32(data);
          if (this.his.magic === undefined || magic === this.his.magic) this.keepalive.replyReceived();
        }
        return true;
      case PacketCode.ProtocolReject:
        if (state === 'opened' && data.length >= 2) this.opts.events.protocolRejected(readU16(data));
        return true;
      case PacketCode.DiscardRequest:
      case PacketCode.Identification: // RFC 1570, sent by Windows ("MSRASV5.20"): nothing to do
      case PacketCode.TimeRemaining:
        return true;
      default:
        return false;
    }
  }

  /** Our own Magic-Number in an Echo: the link is looped back; drop it (pppd does the same). */
  private isOurMagic(data: Uint8Array): boolean {
    const magic = readU32(data);
    if (this.got.magic === undefined || magic !== this.got.magic) return false;
    this.opts.log.warn('received our own LCP Echo Magic-Number: link may be looped back');
    return true;
  }

  describe(o: ConfigOption): string {
    return describeLcpOption(o);
  }

  /** A random Magic-Number, never zero and never equal to ours or the peer's. */
  private newMagic(): number {
    let m = this.opts.random() >>> 0;
    while (m === 0 || m === this.his.magic || m === this.got.magic) m = (m + 0x9e3779b9) >>> 0;
    return m;
  }
}

function emptySet(): LcpOptionSet {
  return { mru: undefined, auth: undefined, magic: undefined, pfc: false, acfc: false };
}
