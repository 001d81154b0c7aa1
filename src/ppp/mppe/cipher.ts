/**
 * The MPPE data path (RFC 3078): RC4 encryption with a 2-octet header per packet, key changes,
 * the coherency count and the flushed bit, in stateless and stateful (history) mode.
 *
 * Header (RFC 3078 §3): |A|B|C|D| 12-bit coherency count |. A (0x80) = flushed: RC4 was
 * re-initialised before this packet. D (0x10) = encrypted (the value pppd, the Linux and the
 * FreeBSD kernels send and require). B and C belong to MPPC compression, which we do not
 * negotiate, so packets with them are dropped.
 *
 * Keys: each direction starts from its start key (RFC 3079); the initial session key is
 * GetNewKeyFromSHA(start, start) reduced to strength; every key change (RFC 3078 §7.3) makes
 * interim = GetNewKeyFromSHA(start, current), encrypts it with RC4 keyed by itself, reduces it,
 * and re-keys RC4.
 *
 *   stateless: a key change before EVERY packet, including the first; A is always set. The
 *     receiver changes keys as many times as the count advanced, so loss costs nothing.
 *   stateful:  one RC4 stream; a key change before each "flag" packet (count low octet 0xFF),
 *     which also carries A. After a CCP Reset-Request the sender re-initialises RC4 from the
 *     current key and sets A on its next packet. A receiver that sees a gap drops packets until
 *     a packet with A arrives, and asks the link once per loss event for a Reset-Request.
 *
 * Interop note: in stateful mode the Linux kernel changes the key on every packet with A set,
 * where RFC 3078 and FreeBSD only re-initialise RC4; the two agree except right after a
 * Reset-Request. Stateless mode, which Windows uses for PPTP, is the same everywhere.
 */
import { Rc4 } from '../../crypto/rc4.ts';
import { sha1 } from '../../crypto/sha1.ts';
import { initialSessionKey, keyLength, reduceSessionKey, SHA_PAD1, SHA_PAD2 } from './keys.ts';
import type { MppeBits, MppeDecryptor, MppeEncryptor, MppeFactory, MppeSettings } from './types.ts';

/** Header bits of the first octet (RFC 3078 §3). */
export const MPPE_FLUSHED = 0x80;
export const MPPE_MPPC_BITS = 0x60;
export const MPPE_ENCRYPTED = 0x10;
/** Octets added to each packet. */
export const MPPE_HEADER_LENGTH = 2;
const CCOUNT_MASK = 0x0fff;
/**
 * Largest accepted advance of the coherency count: the forward half of the 12-bit space. A larger
 * distance cannot be told apart from a late or replayed packet, so it is dropped; this also bounds
 * the key changes one packet can cost (2047, a few milliseconds).
 */
export const MAX_CCOUNT_ADVANCE = 2047;

/** One direction's key state: the start key, the current session key and the RC4 stream. */
class SessionKeys {
  readonly rc4: Rc4;
  private readonly bits: MppeBits;
  private readonly len: number;
  /** StartKey ‖ SHApad1 ‖ SessionKey ‖ SHApad2, hashed at each key change. */
  private readonly shaInput: Uint8Array;
  private readonly session: Uint8Array;
  private readonly digest = new Uint8Array(20);
  private readonly scratch: Rc4;

  constructor(startKey: Uint8Array, bits: MppeBits) {
    const len = keyLength(bits);
    if (startKey.length < len) throw new RangeError(`MPPE-${bits} needs a ${len}-octet start key`);
    this.bits = bits;
    this.len = len;
    this.shaInput = new Uint8Array(2 * len + 80);
    this.shaInput.set(startKey.subarray(0, len));
    this.shaInput.set(SHA_PAD1, len);
    this.shaInput.set(SHA_PAD2, 2 * len + 40);
    this.session = initialSessionKey(startKey, bits);
    this.rc4 = new Rc4(this.session);
    this.scratch = new Rc4(this.session);
  }

  /** Key change (RFC 3078 §7.3), leaving RC4 keyed with the new session key. */
  change(): void {
    const len = this.len;
    this.shaInput.set(this.session, len + 40);
    const interim = sha1(this.shaInput, this.digest).subarray(0, len);
    this.scratch.setKey(interim);
    this.scratch.process(interim, this.session);
    reduceSessionKey(this.session, this.bits);
    this.rc4.setKey(this.session);
  }

  /** Re-initialise RC4 from the current session key (the flushed bit without a key change). */
  reinit(): void {
    this.rc4.setKey(this.session);
  }
}

class Encryptor implements MppeEncryptor {
  private readonly keys: SessionKeys;
  private readonly stateless: boolean;
  private ccount = 0;
  private flushNext = false;

  constructor(sendKey: Uint8Array, settings: MppeSettings) {
    this.keys = new SessionKeys(sendKey, settings.bits);
    this.stateless = settings.stateless;
  }

  encrypt(plain: Uint8Array): Uint8Array {
    const out = new Uint8Array(plain.length + MPPE_HEADER_LENGTH);
    this.encryptInto(plain, out, 0);
    return out;
  }

  encryptInto(plain: Uint8Array, out: Uint8Array, offset: number): number {
    const length = plain.length + MPPE_HEADER_LENGTH;
    if (offset < 0 || offset + length > out.length) throw new RangeError('MPPE output buffer too small');
    const cc = this.ccount;
    let flags = MPPE_ENCRYPTED;
    if (this.stateless) {
      this.keys.change();
      flags |= MPPE_FLUSHED;
    } else {
      if (this.flushNext) {
        this.keys.reinit();
        this.flushNext = false;
        flags |= MPPE_FLUSHED;
      }
      if ((cc & 0xff) === 0xff) {
        this.keys.change();
        flags |= MPPE_FLUSHED;
      }
    }
    out[offset] = flags | (cc >>> 8);
    out[offset + 1] = cc & 0xff;
    this.keys.rc4.process(plain, out.subarray(offset + MPPE_HEADER_LENGTH, offset + length));
    this.ccount = (cc + 1) & CCOUNT_MASK;
    return length;
  }

  resetRequested(): void {
    // Stateless packets are all flushed already. Several Reset-Requests before our next packet
    // still mean one re-initialisation (RFC 1962 §2.1 Reset-Request may be retransmitted).
    if (!this.stateless) this.flushNext = true;
  }
}

class Decryptor implements MppeDecryptor {
  private readonly keys: SessionKeys;
  private readonly stateless: boolean;
  private readonly settings: MppeSettings;
  /** The count of the last packet accepted; 4095 so that the first expected is 0. */
  private last = CCOUNT_MASK;
  /** Stateful: a loss was seen and no flushed packet has arrived since. */
  private discarding = false;
  private resetWanted = false;

  constructor(recvKey: Uint8Array, settings: MppeSettings) {
    this.keys = new SessionKeys(recvKey, settings.bits);
    this.stateless = settings.stateless;
    this.settings = settings;
  }

  /**
   * Decrypts IN PLACE: on success the ciphertext octets of `packet` are overwritten and the
   * returned plaintext is a view of `packet` from offset 2. On a drop `packet` is untouched.
   */
  decrypt(packet: Uint8Array): Uint8Array | null {
    if (packet.length <= MPPE_HEADER_LENGTH) return this.drop('packet shorter than header + protocol');
    const b0 = packet[0]!;
    if ((b0 & MPPE_ENCRYPTED) === 0) return this.drop('encrypted bit (D) not set');
    if ((b0 & MPPE_MPPC_BITS) !== 0) return this.drop('MPPC compression bits set (not negotiated)');
    const cc = ((b0 & 0x0f) << 8) | packet[1]!;
    const flushed = (b0 & MPPE_FLUSHED) !== 0;
    const advance = (cc - this.last) & CCOUNT_MASK;
    // While resynchronising in stateful mode any flushed packet is taken as the way forward
    // (a long outage may cover more than half the count space); otherwise stay in the window.
    const resyncing = this.discarding && flushed;
    if (advance === 0 || (advance > MAX_CCOUNT_ADVANCE && !resyncing)) {
      return this.drop('late, repeated or out-of-window count');
    }
    if (this.stateless) {
      if (!flushed) return this.drop('flushed bit (A) not set in stateless mode');
      for (let i = 0; i < advance; i++) this.keys.change();
    } else if (!this.syncStateful(cc, advance, flushed)) {
      return null;
    }
    this.last = cc;
    const body = packet.subarray(MPPE_HEADER_LENGTH);
    this.keys.rc4.process(body, body);
    return body;
  }

  /** Stateful mode: follow the sender's key changes; false = drop the packet. */
  private syncStateful(cc: number, advance: number, flushed: boolean): boolean {
    if (!flushed) {
      if (this.discarding) {
        this.drop('awaiting a flushed packet after loss');
        return false;
      }
      if (advance !== 1) {
        this.discarding = true;
        this.resetWanted = true;
        this.drop('coherency count gap (packet loss or reordering)');
        return false;
      }
    } else {
      // Catch up on the key changes of the flag packets we never saw, then restart RC4.
      for (let n = 1; n < advance; n++) {
        if (((this.last + n) & 0xff) === 0xff) this.keys.change();
      }
      this.keys.reinit();
      this.discarding = false;
    }
    if ((cc & 0xff) === 0xff) {
      if (!flushed) {
        this.drop('flag packet without the flushed bit');
        return false;
      }
      this.keys.change();
    }
    return true;
  }

  takeResetRequest(): boolean {
    const wanted = this.resetWanted;
    this.resetWanted = false;
    return wanted;
  }

  private drop(reason: string): null {
    this.settings.drops?.drop(reason);
    return null;
  }
}

/** Create both directions of an MPPE data path from start keys oriented for this side. */
export const createMppe: MppeFactory = (keys, settings) => ({
  encryptor: new Encryptor(keys.send, settings),
  decryptor: new Decryptor(keys.recv, settings),
});
