import type { Logger } from '../../util/log.ts';
import { PacketCode, PppProtocol } from '../constants.ts';
import type { ControlProtocolHandler, FsmState } from '../fsm.ts';
import type { MppeBits, MppeSettings } from '../mppe/types.ts';
import type { NcpEvents } from '../ncp.ts';
import type { ConfigOption, Verdict } from '../options.ts';
import { VerdictBuilder } from '../options.ts';
import type { PppPolicy } from '../policy.ts';
import type { MppeChoice } from './mppe-option.ts';
import {
  CcpOption,
  describeMppe,
  describeStrengths,
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
 * CCP (RFC 1962) limited to MPPE (RFC 3078 §2.1, option 18). Each side requests exactly one
 * strength and the H (stateless) bit; every other compression option, and the MPPC bit, is
 * refused. Like pppd, a side answers a request offering several strengths with a Nak naming its
 * preferred one among them, and a request offering none it allows with a Nak naming its own
 * preference; a Nak offering nothing we allow ends the negotiation with the reason in words.
 * Both directions must end with the same settings (one MppeFactory call serves both).
 */
export class CcpHandler implements ControlProtocolHandler {
  readonly name = 'CCP' as const;
  readonly protocol = PppProtocol.CCP;
  private readonly opts: CcpHandlerOptions;
  /** Strengths we allow, strongest first. */
  private readonly allowed: MppeBits[];
  got: MppeChoice | undefined;
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
    const bits = this.allowed[0];
    this.got = bits === undefined ? undefined : { bits, stateless: !this.opts.policy.mppe.preferStateful };
    this.his = undefined;
    this.ourRequestAcked = false;
  }

  buildRequest(): ConfigOption[] {
    return this.got ? [encodeMppeOption(this.got)] : [];
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
      const bits = this.got && offered.includes(this.got.bits) ? this.got.bits : offered[0]!;
      const m = this.opts.policy.mppe;
      const stateless = m.preferStateful ? false : (value & MppeBit.H) !== 0 || !m.statefulAllowed;
      const choice = { bits, stateless };
      const exact = encodeMppeOption(choice);
      if (mppeValue(exact) === value) his = choice;
      else v.nak(o, exact);
      if (this.got && !this.ourRequestAcked) {
        // Ask for what we just agreed to, so both directions end equal.
        this.got = { bits, stateless: this.got.stateless && stateless };
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
      this.got = { bits: suggested.includes(this.got.bits) ? this.got.bits : suggested[0]!, stateless };
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
    if (got && his && got.bits === his.bits && got.stateless === his.stateless) {
      this.opts.events.up({ bits: got.bits, stateless: got.stateless });
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

function describe(c: MppeChoice | undefined): string {
  return c ? `${c.bits}-bit ${c.stateless ? 'stateless' : 'stateful'}` : 'none';
}
