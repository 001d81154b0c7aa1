import type { Logger } from '../../util/log.ts';
import { PacketCode, PppProtocol } from '../constants.ts';
import type { ControlProtocolHandler, FsmState } from '../fsm.ts';
import type { MppeBits, MppeSettings } from '../mppe/types.ts';
import type { NcpEvents } from '../ncp.ts';
import type { ConfigOption, Verdict } from '../options.ts';
import { VerdictBuilder } from '../options.ts';
import type { PppPolicy } from '../policy.ts';
import type { MppeChoice, MppeOffer } from './mppe-option.ts';
import {
  CcpOption,
  describeMppe,
  describeStrengths,
  encodeMppeOffer,
  encodeMppeOption,
  MppeBit,
  mppeValue,
  strengthsIn,
} from './mppe-option.ts';

export interface CcpEvents extends NcpEvents<MppeSettings | null> {
  /**
   * The peer sent Reset-Request `id` (RFC 1962 §2.1): answer Reset-Ack with the same id, then
   * make MPPE send a flushed packet. The Linux kernel (pppd) keeps dropping every packet it
   * receives until that Reset-Ack arrives, so a flushed packet alone never ends its loss state.
   */
  resetRequested(id: number): void;
}

export interface CcpHandlerOptions {
  policy: PppPolicy;
  log: Logger;
  events: CcpEvents;
}

/**
 * CCP (RFC 1962) limited to MPPE (RFC 3078 §2.1, option 18). Our request offers every strength
 * the policy allows, with the H (stateless) bit, as pppd and RRAS do: the peer Naks it down to the
 * one it takes, and we accept a Nak naming any subset of what we allow. Every other compression
 * option, and the MPPC bit, is refused. Like pppd, we answer a request offering several strengths
 * with a Nak naming the strongest we allow among them, and a request offering none we allow with
 * a Nak naming our own preference; a Nak offering nothing we allow ends the negotiation with the
 * reason in words. Once we have agreed to the peer's strength, our own request narrows to it.
 * Both directions must end with the same settings (one MppeFactory call serves both).
 */
export class CcpHandler implements ControlProtocolHandler {
  readonly name = 'CCP' as const;
  readonly protocol = PppProtocol.CCP;
  private readonly opts: CcpHandlerOptions;
  /** Strengths we allow, strongest first. */
  private readonly allowed: MppeBits[];
  /** What our request offers (narrowed by Naks and by the peer's request). */
  got: MppeOffer | undefined;
  his: MppeChoice | undefined;
  private ourRequestAcked = false;

  constructor(opts: CcpHandlerOptions) {
    this.opts = opts;
    const m = opts.policy.mppe;
    this.allowed = [m.allow128 ? 128 : 0, m.allow56 ? 56 : 0, m.allow40 ? 40 : 0].filter(
      (b): b is MppeBits => b !== 0,
    );
  }

  reset(): void {
    this.got =
      this.allowed.length === 0
        ? undefined
        : { strengths: [...this.allowed], stateless: !this.opts.policy.mppe.preferStateful };
    this.his = undefined;
    this.ourRequestAcked = false;
  }

  buildRequest(): ConfigOption[] {
    return this.got ? [encodeMppeOffer(this.got)] : [];
  }

  checkRequest(opts: ConfigOption[], rejectIfDisagree: boolean): Verdict {
    const v = new VerdictBuilder(rejectIfDisagree);
    let his: MppeChoice | undefined;
    for (const o of opts) {
      const value = mppeValue(o);
      const preferred = this.allowed[0];
      if (value === undefined || preferred === undefined) {
        v.reject(o); // MPPC-only, Deflate, BSD, Predictor, ...: we only encrypt
        continue;
      }
      const offered = strengthsIn(value).filter((b) => this.allowed.includes(b));
      if (offered.length === 0) {
        this.opts.log.info(
          `peer offers MPPE ${describeStrengths(strengthsIn(value))}; we allow ${describeStrengths(this.allowed)}`,
        );
        v.nak(o, encodeMppeOption({ bits: preferred, stateless: true }));
        continue;
      }
      const got = this.got;
      const bits = offered.find((b) => got?.strengths.includes(b)) ?? offered[0]!;
      const m = this.opts.policy.mppe;
      const stateless = m.preferStateful ? false : (value & MppeBit.H) !== 0 || !m.statefulAllowed;
      const choice = { bits, stateless };
      const exact = encodeMppeOption(choice);
      if (mppeValue(exact) === value) his = choice;
      else v.nak(o, exact);
      if (this.got && !this.ourRequestAcked) {
        // Ask for what we just agreed to, so both directions end equal.
        this.got = { strengths: [bits], stateless: this.got.stateless && stateless };
      }
    }
    this.his = his;
    return v.finish();
  }

  ackReceived(): boolean {
    this.ourRequestAcked = true;
    return true;
  }

  nakReceived(opts: ConfigOption[]): void {
    for (const o of opts) {
      const value = mppeValue(o);
      if (value === undefined || !this.got) continue;
      const suggested = strengthsIn(value).filter((b) => this.allowed.includes(b));
      if (suggested.length === 0) {
        const peer = describeStrengths(strengthsIn(value));
        this.opts.events.fail(`peer offers MPPE ${peer} only; we allow ${describeStrengths(this.allowed)}`);
        return;
      }
      const stateless = (value & MppeBit.H) !== 0;
      const m = this.opts.policy.mppe;
      if (!stateless && !m.statefulAllowed && !m.preferStateful) {
        this.opts.events.fail('peer wants stateful MPPE, which we refuse (nomppe-stateful)');
        return;
      }
      // A subset of what we allow: offer exactly that (still narrowed by what we offered before).
      const kept = suggested.filter((b) => this.got?.strengths.includes(b));
      this.got = { strengths: kept.length > 0 ? kept : suggested, stateless };
    }
  }

  rejectReceived(opts: ConfigOption[]): void {
    if (!opts.some((o) => o.type === CcpOption.MPPE)) return;
    this.got = undefined;
    if (this.opts.policy.mppe.required) this.opts.events.fail('peer rejected MPPE');
  }

  up(): void {
    const { got, his } = this;
    if (!got && !his) {
      this.opts.events.up(null);
      return;
    }
    // Our acked request may still name several strengths (a peer that Acks rather than Naks):
    // the peer's request then picks among them.
    if (got && his && got.strengths.includes(his.bits) && got.stateless === his.stateless) {
      this.opts.events.up({ bits: his.bits, stateless: his.stateless });
      return;
    }
    this.opts.events.fail(
      `MPPE differs by direction (our request ${describe(got)}, peer's ${describe(his)})`,
    );
  }

  down(): void {
    this.opts.events.down();
  }

  started(): void {}

  finished(reason: string): void {
    this.opts.events.finished(reason);
  }

  /** Reset-Request / Reset-Ack (RFC 1962 §2.1, §2.2). */
  extraCode(code: number, id: number, _data: Uint8Array, state: FsmState): boolean {
    if (code === PacketCode.ResetRequest) {
      if (state === 'opened') this.opts.events.resetRequested(id);
      return true;
    }
    return code === PacketCode.ResetAck;
  }

  describe(o: ConfigOption): string {
    const value = mppeValue(o);
    if (value !== undefined) return describeMppe(value);
    const names: Record<number, string> = { 21: 'bsd', 26: 'deflate', 1: 'pred1', 2: 'pred2' };
    return `<${names[o.type] ?? o.type} ${Buffer.from(o.data).toString('hex')}>`;
  }
}

function describe(c: MppeChoice | MppeOffer | undefined): string {
  if (!c) return 'none';
  const bits = 'bits' in c ? `${c.bits}-bit` : describeStrengths(c.strengths);
  return `${bits} ${c.stateless ? 'stateless' : 'stateful'}`;
}
