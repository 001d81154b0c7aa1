import type { Clock } from '../../util/clock.ts';
import type { DropCounter } from '../../util/counters.ts';
import { PppProtocol } from '../constants.ts';
import { type FrameCompression, frameHeaderLength, writeFrameHeader } from '../frame.ts';
import type { MppeDecryptor, MppeEncryptor } from './types.ts';

/** MPPE packet header (2) + a 2-octet protocol field inside the encrypted part (RFC 3078 §3). */
export const MPPE_OVERHEAD = 4;
/** Stateful MPPE: a Reset-Request is repeated after this long while packets are still discarded. */
const RESET_REPEAT_MS = 1000;

/** Why an MPPE packet was not delivered, beyond the decryptor's own reasons (it counts those). */
export type MppeFramingDropReason =
  | 'MPPE plaintext without protocol'
  | 'MPPE plaintext of an unexpected protocol';

export interface MppeFramingHost {
  clock: Clock;
  drops: DropCounter<MppeFramingDropReason>;
  /** Send a CCP Reset-Request (stateful mode, after loss). */
  sendResetRequest(): void;
  /** Decryption keeps failing (the peer's keys and ours went apart for good): end the link. */
  failed(reason: string): void;
}

/**
 * The MPPE data path of one link (RFC 3078 §3): IP packets in, protocol 0x00FD frames out, and
 * back. Plaintext always carries the 2-octet protocol field; what the peer encrypted may carry
 * a 1-octet one (an odd first octet, as Windows may send). Stateful loss recovery asks for a
 * Reset-Request once per loss event and repeats it while packets are still being discarded.
 */
export class MppeFraming {
  private readonly host: MppeFramingHost;
  private readonly encryptor: MppeEncryptor;
  private readonly decryptor: MppeDecryptor;
  /** When our unanswered Reset-Request went out (no packet decrypted since), or undefined. */
  private resetSentAt: number | undefined;

  constructor(host: MppeFramingHost, crypto: { encryptor: MppeEncryptor; decryptor: MppeDecryptor }) {
    this.host = host;
    this.encryptor = crypto.encryptor;
    this.decryptor = crypto.decryptor;
  }

  /**
   * One PPP frame carrying `packet` of `protocol`, encrypted: frame header, MPPE header, then the
   * protocol field and the packet encrypted in place. With `headroom` free bytes before `packet`
   * (in its buffer) enough for the headers, the frame is written right there: no allocation, no
   * copy. Otherwise one allocation, with `lowerHeadroom` free bytes left in front of the frame for
   * the layer below. Returns the frame and the free bytes before it.
   */
  encryptFrame(
    protocol: number,
    packet: Uint8Array,
    comp: FrameCompression,
    headroom = 0,
    lowerHeadroom = 0,
  ): { frame: Uint8Array; headroom: number } {
    const head = frameHeaderLength(PppProtocol.COMPRESSED, comp);
    const need = head + MPPE_OVERHEAD;
    let frame: Uint8Array;
    let free: number;
    if (headroom >= need) {
      frame = new Uint8Array(packet.buffer, packet.byteOffset - need, need + packet.length);
      free = headroom - need;
    } else {
      const buf = new Uint8Array(lowerHeadroom + need + packet.length);
      buf.set(packet, lowerHeadroom + need);
      frame = buf.subarray(lowerHeadroom);
      free = lowerHeadroom;
    }
    writeFrameHeader(frame, PppProtocol.COMPRESSED, comp);
    frame[head + 2] = protocol >>> 8;
    frame[head + 3] = protocol & 0xff;
    this.encryptor.encryptInPlace(frame, head, packet.length + 2);
    return { frame, headroom: free };
  }

  /** The peer asked for a reset (CCP Reset-Request): stateful mode flushes. */
  resetRequested(): void {
    this.encryptor.resetRequested();
  }

  /**
   * One protocol 0x00FD information field: the inner protocol and packet (a view into `info`,
   * decrypted in place), or undefined when dropped (counted).
   */
  decrypt(info: Uint8Array): { protocol: number; payload: Uint8Array } | undefined {
    const ok = this.decryptor.decryptInPlace(info);
    if (this.decryptor.takeResetRequest()) this.sendResetRequest();
    else if (!ok && this.resetSentAt !== undefined) {
      // Still discarding: the Reset-Request or the flushed packet answering it was lost. Ask again,
      // at most once per RESET_REPEAT_MS, as pppd does (ccp.c: RREQ_REPEAT after RACKTIMEOUT).
      if (this.host.clock.now() - this.resetSentAt >= RESET_REPEAT_MS) this.sendResetRequest();
    }
    if (!ok) {
      // The decryptor counted the drop under its own reason (MppeSettings.drops).
      if (this.decryptor.failing) {
        this.host.failed(
          `MPPE decryption keeps failing: ${this.decryptor.consecutiveDrops} packets in a row (last: ${this.decryptor.lastDrop})`,
        );
      }
      return undefined;
    }
    this.resetSentAt = undefined;
    // The plaintext is info[2..] (MPPE header before it): read in place, one view for the payload.
    const length = info.length - 2;
    const short = length > 0 && (info[2]! & 1) === 1;
    if (length < (short ? 1 : 2)) {
      this.drop('MPPE plaintext without protocol');
      return undefined;
    }
    const protocol = short ? info[2]! : (info[2]! << 8) | info[3]!;
    return { protocol, payload: info.subarray(short ? 3 : 4) };
  }

  /** A decrypted protocol the link cannot deliver. */
  unexpected(protocol: number): void {
    this.drop('MPPE plaintext of an unexpected protocol', () => `0x${protocol.toString(16)}`);
  }

  private sendResetRequest(): void {
    this.resetSentAt = this.host.clock.now();
    this.host.sendResetRequest();
  }

  private drop(reason: MppeFramingDropReason, detail?: string | (() => string)): void {
    this.host.drops.drop(reason, detail);
  }
}
