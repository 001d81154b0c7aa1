/**
 * The MPPE data path (RFC 3078): RC4 encryption with a 2-octet header per packet, key changes,
 * the coherency count and the flushed bit, in stateless and stateful (history) mode.
 *
 * Header (RFC 3078 §3): |A|B|C|D| 12-bit coherency count |. A (0x80) = flushed: the key was
 * changed and RC4 re-keyed before this packet. D (0x10) = encrypted (the value pppd, the Linux and
 * the FreeBSD kernels send and require). B and C belong to MPPC compression, which we do not
 * negotiate, so packets with them are dropped.
 *
 * Keys: each direction starts from its start key (RFC 3079); the initial session key is
 * GetNewKeyFromSHA(start, start) reduced to strength; every key change (RFC 3078 §7.3) makes
 * interim = GetNewKeyFromSHA(start, current), encrypts it with RC4 keyed by itself, reduces it,
 * and re-keys RC4 with the new key. The count starts at 0 in both modes.
 *
 *   stateless (RFC 3078 §8.1): a key change before EVERY packet, including the first; A is always
 *     set. The receiver changes keys as many times as the count advanced, so loss costs nothing,
 *     within a bounded amount of work per packet (MPPE_FREE_KEY_CHANGES, MPPE_KEY_CHANGE_CREDIT).
 *   stateful (§8.2), as the Linux kernel's ppp_mppe (pppd) receives it: one RC4 stream, and
 *     A set ⇔ the key changed before this packet. The receiver expects each count to be the
 *     previous + 1; on any other count it drops the packet, asks once for a Reset-Request and
 *     discards every packet until one with A arrives. That packet is taken whatever its count:
 *     first one key change per flag packet missed (per 256-block boundary crossed since the count
 *     expected at the loss), then the change its A announces.
 *     Our sender changes the key only before each "flag" packet (count low octet 0xFF). On a CCP
 *     Reset-Request it skips its count forward to the next flag packet instead of flushing the
 *     packet it was about to send (which Linux does). Its key changes are then a function of the
 *     count alone, so a Linux (or RFC 3078) receiver stays in step even when the A packet answering
 *     a reset is lost or arrives while pppd still waits for the Reset-Ack: with Linux's own sender
 *     that desynchronises the keys for good. The price: a Reset-Request that arrives when the
 *     receiver has already recovered costs it one more loss event.
 */
import { Rc4 } from '../../crypto/rc4.ts';
import { sha1 } from '../../crypto/sha1.ts';
import { initialSessionKey, keyLength, reduceSessionKey, SHA_PAD1, SHA_PAD2 } from './keys.ts';
import type {
  MppeBits,
  MppeDecryptor,
  MppeDropReason,
  MppeEncryptor,
  MppeFactory,
  MppeSettings,
} from './types.ts';

/** Header bits of the first octet (RFC 3078 §3). */
export const MPPE_FLUSHED = 0x80;
export const MPPE_MPPC_BITS = 0x60;
export const MPPE_ENCRYPTED = 0x10;
/** Octets added to each packet. */
export const MPPE_HEADER_LENGTH = 2;
const CCOUNT_MASK = 0x0fff;
/**
 * Stateless mode: largest accepted advance of the coherency count, the forward half of the 12-bit
 * space. A larger distance cannot be told apart from a late or replayed packet, so it is dropped;
 * this also bounds the key changes one packet can cost (2047, a few milliseconds).
 */
export const MAX_CCOUNT_ADVANCE = 2047;
/**
 * Stateless mode: key changes any one packet may cost without drawing on the credit below. A
 * key change (SHA-1 + two RC4 key schedules) costs about a sixth of decrypting a full 1400-octet
 * packet, so 16 keep a packet's work within a few packets' worth and cover any loss burst of 15.
 */
export const MPPE_FREE_KEY_CHANGES = 16;
/**
 * Stateless mode: a bank of key changes for longer loss bursts, refilled by one per packet
 * decrypted. A burst of up to 16 + 256 lost packets costs nothing more than the changes; a
 * longer jump (an outage, or a peer advancing its count by 2047 per packet to burn our CPU) is
 * caught up MPPE_FREE_KEY_CHANGES per packet on a separate key state while its packets are
 * dropped as 'coherency count too far ahead'. The work stays at most 16 + 256 changes for one
 * packet and 17 per packet on average. The current key state is untouched until the catch-up
 * reaches a packet, and a packet that continues the current count abandons the catch-up, so
 * far packets injected into a live flow are never adopted.
 */
export const MPPE_KEY_CHANGE_CREDIT = 256;
/** Consecutive drops after which `failing` is true (stateful waits up to 256 for a flag packet). */
export const MPPE_FAILING_AFTER = 512;

/**
 * The RC4 that encrypts the interim key at each key change: keyed afresh for every change, which
 * runs to completion, so one serves every session (it is 256 octets fewer per direction each).
 */
const KEY_CHANGE_RC4 = new Rc4(new Uint8Array(1));

/** One direction's key state: the start key, the current session key and the RC4 stream. */
class SessionKeys {
  readonly rc4: Rc4;
  private readonly bits: MppeBits;
  private readonly len: number;
  /** StartKey ‖ SHApad1 ‖ SessionKey ‖ SHApad2, hashed at each key change. */
  private readonly shaInput: Uint8Array;
  private readonly session: Uint8Array;
  private readonly digest = new Uint8Array(20);
  /** The first `len` octets of the digest: the interim key of each change. */
  private readonly interim: Uint8Array;

  constructor(startKey: Uint8Array, bits: MppeBits) {
    const len = keyLength(bits);
    if (startKey.length < len) throw new RangeError(`MPPE-${bits} needs a ${len}-octet start key`);
    this.bits = bits;
    this.len = len;
    this.shaInput = new Uint8Array(2 * len + 80);
    this.shaInput.set(startKey.subarray(0, len));
    this.shaInput.set(SHA_PAD1, len);
    this.shaInput.set(SHA_PAD2, 2 * len + 40);
    this.interim = this.digest.subarray(0, len);
    this.session = initialSessionKey(startKey, bits);
    this.rc4 = new Rc4(this.session);
  }

  /** Take `other`'s session key, RC4 freshly keyed with it (stateless mode's state after a change). */
  copyFrom(other: SessionKeys): void {
    this.session.set(other.session);
    this.rc4.setKey(this.session);
  }

  /** Key change (RFC 3078 §7.3), leaving RC4 keyed with the new session key. */
  change(): void {
    this.shaInput.set(this.session, this.len + 40);
    sha1(this.shaInput, this.digest);
    const interim = this.interim;
    KEY_CHANGE_RC4.setKey(interim);
    KEY_CHANGE_RC4.process(interim, this.session);
    reduceSessionKey(this.session, this.bits);
    this.rc4.setKey(this.session);
  }
}

class Encryptor implements MppeEncryptor {
  private readonly keys: SessionKeys;
  private readonly stateless: boolean;
  private ccount = 0;
  private skipToFlag = false;

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
    return this.encryptAt(plain, 0, plain.length, out, offset);
  }

  encryptInPlace(buf: Uint8Array, offset: number, length: number): number {
    return this.encryptAt(buf, offset + MPPE_HEADER_LENGTH, length, buf, offset);
  }

  /** `src[start, start + plainLength)` encrypted into `out` at `offset`, after the header. */
  private encryptAt(
    src: Uint8Array,
    start: number,
    plainLength: number,
    out: Uint8Array,
    offset: number,
  ): number {
    const length = plainLength + MPPE_HEADER_LENGTH;
    if (offset < 0 || offset + length > out.length) throw new RangeError('MPPE output buffer too small');
    // Stateful, after a Reset-Request: this packet becomes the next flag packet (see the file comment).
    const cc = this.skipToFlag ? this.ccount | 0xff : this.ccount;
    this.skipToFlag = false;
    let flags = MPPE_ENCRYPTED;
    // Stateless: every packet. Stateful: flag packets.
    if (this.stateless || (cc & 0xff) === 0xff) {
      this.keys.change();
      flags |= MPPE_FLUSHED;
    }
    out[offset] = flags | (cc >>> 8);
    out[offset + 1] = cc & 0xff;
    this.keys.rc4.processAt(src, start, out, offset + MPPE_HEADER_LENGTH, plainLength);
    this.ccount = (cc + 1) & CCOUNT_MASK;
    return length;
  }

  resetRequested(): void {
    // Stateless packets are all flushed already. Several Reset-Requests before our next packet
    // still mean one skip to one flag packet (RFC 1962 §2.1: a Reset-Request may be retransmitted).
    if (!this.stateless) this.skipToFlag = true;
  }
}

class Decryptor implements MppeDecryptor {
  private keys: SessionKeys;
  private readonly recvKey: Uint8Array;
  private readonly stateless: boolean;
  private readonly settings: MppeSettings;
  private readonly failAfter: number;
  /**
   * Stateless, and stateful in normal state: the count of the last packet accepted (4095 at first,
   * so that 0 comes next). Stateful while discarding: the count that was expected at the loss.
   */
  private ccount = CCOUNT_MASK;
  /** Stateful: a loss was seen and no flushed packet has arrived since. */
  private discarding = false;
  private resetWanted = false;
  /** Stateless: key changes beyond MPPE_FREE_KEY_CHANGES still available (MPPE_KEY_CHANGE_CREDIT). */
  private credit = MPPE_KEY_CHANGE_CREDIT;
  /** Stateless catch-up: the key state `cursorAhead` changes ahead of `keys` (0 = none). */
  private cursor: SessionKeys | undefined;
  private cursorAhead = 0;
  lastDrop: MppeDropReason | undefined;
  consecutiveDrops = 0;
  keyChanges = 0;

  constructor(recvKey: Uint8Array, settings: MppeSettings) {
    this.keys = new SessionKeys(recvKey, settings.bits);
    this.recvKey = recvKey.slice();
    this.stateless = settings.stateless;
    this.settings = settings;
    this.failAfter = Math.max(1, settings.failAfter ?? MPPE_FAILING_AFTER);
  }

  get failing(): boolean {
    return this.consecutiveDrops >= this.failAfter;
  }

  /**
   * Decrypts IN PLACE: on success the ciphertext octets of `packet` are overwritten and the
   * returned plaintext is a view of `packet` from offset 2. On a drop `packet` is untouched.
   */
  decrypt(packet: Uint8Array): Uint8Array | null {
    return this.decryptInPlace(packet) ? packet.subarray(MPPE_HEADER_LENGTH) : null;
  }

  decryptInPlace(packet: Uint8Array): boolean {
    if (packet.length <= MPPE_HEADER_LENGTH) return this.drop('packet too short');
    const b0 = packet[0]!;
    if ((b0 & MPPE_ENCRYPTED) === 0) return this.drop('encrypted bit missing');
    if ((b0 & MPPE_MPPC_BITS) !== 0) return this.drop('compression bits set');
    const cc = ((b0 & 0x0f) << 8) | packet[1]!;
    const flushed = (b0 & MPPE_FLUSHED) !== 0;
    const reason = this.stateless ? this.syncStateless(cc, flushed) : this.syncStateful(cc, flushed);
    if (reason !== null) return this.drop(reason);
    const n = packet.length - MPPE_HEADER_LENGTH;
    this.keys.rc4.processAt(packet, MPPE_HEADER_LENGTH, packet, MPPE_HEADER_LENGTH, n);
    this.lastDrop = undefined;
    this.consecutiveDrops = 0;
    return true;
  }

  /**
   * RFC 3078 §8.1: one key change per count advanced, within a bounded amount of work per packet
   * (MPPE_FREE_KEY_CHANGES, MPPE_KEY_CHANGE_CREDIT). Returns a drop reason, or null to decrypt.
   */
  private syncStateless(cc: number, flushed: boolean): MppeDropReason | null {
    if (!flushed) return 'flushed bit missing';
    const advance = (cc - this.ccount) & CCOUNT_MASK;
    if (advance === 0 || advance > MAX_CCOUNT_ADVANCE) return 'coherency count late or repeated';
    const allowance = MPPE_FREE_KEY_CHANGES + this.credit;
    const fromCursor = this.cursor !== undefined && this.cursorAhead > 0 && this.cursorAhead <= advance;
    const todo = advance - (fromCursor ? this.cursorAhead : 0);
    if (todo <= allowance) {
      this.credit -= Math.max(0, todo - MPPE_FREE_KEY_CHANGES);
      if (fromCursor) {
        const cursor = this.cursor!;
        for (let i = 0; i < todo; i++) cursor.change();
        this.keyChanges += todo;
        this.cursor = this.keys; // the old state becomes the spare for the next catch-up
        this.keys = cursor;
        this.cursorAhead = 0;
      } else {
        for (let i = 0; i < todo; i++) this.keys.change();
        this.keyChanges += todo;
        // The current count goes on: a catch-up towards far packets is dropped, so that packets
        // injected far ahead while the peer's own flow continues are never adopted.
        this.cursorAhead = 0;
      }
      this.credit = Math.min(MPPE_KEY_CHANGE_CREDIT, this.credit + 1);
      this.ccount = cc;
      return null;
    }
    // Too far for one packet: catch up on the cursor, leaving the current state alone.
    if (!fromCursor) {
      this.cursor ??= new SessionKeys(this.recvKey, this.settings.bits);
      this.cursor.copyFrom(this.keys);
      this.cursorAhead = 0;
    }
    for (let i = 0; i < allowance; i++) this.cursor!.change();
    this.keyChanges += allowance;
    this.cursorAhead += allowance;
    this.credit = 0;
    return 'coherency count too far ahead';
  }

  /**
   * RFC 3078 §8.2 as Linux ppp_mppe does it (see the file comment): follow the sender's key
   * changes. At most 16 key changes per packet (15 flag packets missed, then the one A announces).
   * Returns a drop reason, or null to decrypt.
   */
  private syncStateful(cc: number, flushed: boolean): MppeDropReason | null {
    if ((cc & 0xff) === 0xff && !flushed) return 'flag packet without flushed bit';
    if (!this.discarding) {
      this.ccount = (this.ccount + 1) & CCOUNT_MASK;
      if (cc !== this.ccount) {
        this.discarding = true;
        this.resetWanted = true;
        return 'coherency count gap';
      }
    } else {
      if (!flushed) return 'awaiting flushed packet after loss';
      // One key change for each flag packet missed: each 256-block boundary crossed.
      while ((cc & 0xf00) !== (this.ccount & 0xf00)) {
        this.keys.change();
        this.keyChanges++;
        this.ccount = (this.ccount + 0x100) & CCOUNT_MASK;
      }
      this.discarding = false;
      this.ccount = cc;
    }
    if (flushed) {
      this.keys.change();
      this.keyChanges++;
    }
    return null;
  }

  takeResetRequest(): boolean {
    const wanted = this.resetWanted;
    this.resetWanted = false;
    return wanted;
  }

  private drop(reason: MppeDropReason): false {
    this.lastDrop = reason;
    this.consecutiveDrops++;
    this.settings.drops?.drop(reason);
    return false;
  }
}

/** Create both directions of an MPPE data path from start keys oriented for this side. */
export const createMppe: MppeFactory = (keys, settings) => ({
  encryptor: new Encryptor(keys.send, settings),
  decryptor: new Decryptor(keys.recv, settings),
});
