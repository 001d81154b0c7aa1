import { bytesEqual } from '../wire/bytes.ts';
import type { ProtocolLayer } from '../wire/errors.ts';
import { ProtocolError } from '../wire/errors.ts';

/**
 * Configuration Options (RFC 1661 §6): Type (1), Length (2 + data, ≥ 2), Data. Used by every
 * control protocol's Configure-Request/Ack/Nak/Reject.
 */
export interface ConfigOption {
  type: number;
  /** The option's data (Length − 2 octets); a view into the packet when decoded. */
  data: Uint8Array;
}

/**
 * Decode a list of options. A Length below 2 or running past the end of the packet makes the
 * whole packet malformed: the caller drops it (RFC 1661 §6 gives such a packet no meaning; we
 * do not guess where the next option starts).
 */
export function decodeOptions(bytes: Uint8Array, layer: ProtocolLayer): ConfigOption[] {
  const out: ConfigOption[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const type = bytes[pos]!;
    const len = bytes[pos + 1];
    if (len === undefined) throw new ProtocolError(layer, 'TRUNCATED', `option ${type} has no length octet`);
    if (len < 2) throw new ProtocolError(layer, 'BAD_LENGTH', `option ${type} has length ${len} < 2`);
    if (pos + len > bytes.length) {
      throw new ProtocolError(
        layer,
        'TRUNCATED',
        `option ${type} length ${len} > ${bytes.length - pos} left`,
      );
    }
    out.push({ type, data: bytes.subarray(pos + 2, pos + len) });
    pos += len;
  }
  return out;
}

export function encodeOptions(opts: readonly ConfigOption[]): Uint8Array {
  let size = 0;
  for (const o of opts) size += 2 + o.data.length;
  const out = new Uint8Array(size);
  let pos = 0;
  for (const o of opts) {
    out[pos] = o.type;
    out[pos + 1] = 2 + o.data.length;
    out.set(o.data, pos + 2);
    pos += 2 + o.data.length;
  }
  return out;
}

export function optionEqual(a: ConfigOption, b: ConfigOption): boolean {
  return a.type === b.type && bytesEqual(a.data, b.data);
}

/** Option data helpers (big-endian, RFC 1700 network order). */
export function u16Option(type: number, v: number): ConfigOption {
  return { type, data: new Uint8Array([v >>> 8, v & 0xff]) };
}
export function u32Option(type: number, v: number): ConfigOption {
  return { type, data: new Uint8Array([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]) };
}
export function flagOption(type: number): ConfigOption {
  return { type, data: new Uint8Array(0) };
}
export function readU16(data: Uint8Array): number {
  return (data[0]! << 8) | data[1]!;
}
export function readU32(data: Uint8Array): number {
  return ((data[0]! << 24) | (data[1]! << 16) | (data[2]! << 8) | data[3]!) >>> 0;
}

/**
 * The answer to a Configure-Request (RFC 1661 §5.1–5.4): Ack the whole request, or Nak the
 * options whose values we would change (with our suggestion), or Reject the options we do not
 * recognise or cannot accept at all. Reject wins over Nak.
 */
export type Verdict =
  | { kind: 'ack' }
  | { kind: 'nak'; options: ConfigOption[] }
  | { kind: 'reject'; options: ConfigOption[] };

/**
 * Collects per-option answers into a Verdict. With `rejectIfDisagree` (set by the FSM after
 * Max-Failure Configure-Naks in a row, RFC 1661 §4.6), every Nak becomes a Reject of the
 * option as received, so a peer that never converges is made to drop the option.
 */
export class VerdictBuilder {
  private readonly naks: ConfigOption[] = [];
  private readonly rejects: ConfigOption[] = [];
  private readonly rejectIfDisagree: boolean;

  constructor(rejectIfDisagree: boolean) {
    this.rejectIfDisagree = rejectIfDisagree;
  }

  /** Nak `received` and suggest `suggested` (same type) instead. */
  nak(received: ConfigOption, suggested: ConfigOption): void {
    if (this.rejectIfDisagree) this.rejects.push(received);
    else this.naks.push(suggested);
  }

  reject(received: ConfigOption): void {
    this.rejects.push(received);
  }

  get disagrees(): boolean {
    return this.naks.length > 0 || this.rejects.length > 0;
  }

  finish(): Verdict {
    if (this.rejects.length > 0) return { kind: 'reject', options: this.rejects };
    if (this.naks.length > 0) return { kind: 'nak', options: this.naks };
    return { kind: 'ack' };
  }
}
