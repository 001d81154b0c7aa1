import type { DropCounter } from '../../util/counters.ts';

/** MPPE strength in bits (RFC 3078). */
export type MppeBits = 40 | 56 | 128;

/**
 * Start keys for MPPE, produced by MS-CHAPv1/v2 authentication (RFC 3079) and already oriented
 * for this side of the link: `send` encrypts what we send, `recv` decrypts what we receive.
 * (The server's send key is the client's receive key; see RFC 3079 §3.3 magic constants.)
 */
export interface MppeKeySource {
  startKeys(bits: MppeBits): { send: Uint8Array; recv: Uint8Array };
}

/**
 * The MPPE data path for one direction pair (RFC 3078), created when CCP opens with MPPE.
 *
 * Plaintext is a PPP frame's protocol field plus information field. The encryptor is always
 * given a 2-byte protocol field; the decryptor returns what was encrypted, whose protocol field
 * may be 1 byte if the peer compressed it (odd first octet, as Windows may do).
 */
export interface MppeEncryptor {
  /** Encrypt one frame; returns the MPPE packet (2-octet header + ciphertext) for protocol 0x00fd. */
  encrypt(plain: Uint8Array): Uint8Array;
  /**
   * Encrypt one frame into `out` at `offset` (header then ciphertext) without allocating; returns
   * the octets written (plain.length + 2). `plain` may be `out` from offset + 2 (in place).
   */
  encryptInto(plain: Uint8Array, out: Uint8Array, offset: number): number;
  /**
   * Encrypt one frame in place: `buf[offset + 2, offset + 2 + length)` is the plaintext, the header
   * goes at `offset`; returns length + 2. The packet path's form: no view of `buf` is made.
   */
  encryptInPlace(buf: Uint8Array, offset: number, length: number): number;
  /** The peer sent a CCP Reset-Request: stateful mode flushes and marks the next packet (A bit). */
  resetRequested(): void;
}

/** Why the decryptor refused a packet, in words (counter keys and log text). */
export type MppeDropReason =
  | 'packet too short'
  | 'encrypted bit missing'
  | 'compression bits set'
  /** Stateless: every packet must have A. */
  | 'flushed bit missing'
  /** Stateless: the count did not advance, or went back (within the backward half). */
  | 'coherency count late or repeated'
  /** Stateless: more key changes than one packet may cost; caught up over the next packets. */
  | 'coherency count too far ahead'
  /** Stateful: a count with low octet 0xFF must have A. */
  | 'flag packet without flushed bit'
  /** Stateful: the count is not the previous + 1: loss, a Reset-Request is due. */
  | 'coherency count gap'
  /** Stateful: after a gap, every packet until one with A. */
  | 'awaiting flushed packet after loss';

export interface MppeDecryptor {
  /**
   * Decrypt one MPPE packet (header + ciphertext). Returns the plaintext, or null when the packet
   * must be dropped (bad header, stateful loss awaiting a flushed packet, replay in stateless mode).
   */
  decrypt(packet: Uint8Array): Uint8Array | null;
  /**
   * decrypt() without the view: true when `packet[2..]` now holds the plaintext, false when the
   * packet is dropped (untouched). The packet path's form.
   */
  decryptInPlace(packet: Uint8Array): boolean;
  /**
   * Stateful mode: true after loss was detected and until a flushed packet arrives; the link
   * then sends a CCP Reset-Request (once per loss event, see takeResetRequest).
   */
  takeResetRequest(): boolean;
  /** Why the last decrypt() returned null; undefined after a packet was decrypted. */
  readonly lastDrop?: MppeDropReason | undefined;
  /** decrypt() calls in a row that returned null (0 after a success). */
  readonly consecutiveDrops?: number;
  /** Key changes made for received packets so far (the decryptor's work, for statistics). */
  readonly keyChanges?: number;
  /**
   * consecutiveDrops reached MppeSettings.failAfter: decryption keeps failing (keys out of step,
   * or a peer sending garbage). The link should resynchronise (stateful: it already asks with
   * Reset-Requests) or end the session with this as the reason.
   */
  readonly failing?: boolean;
}

export interface MppeSettings {
  bits: MppeBits;
  stateless: boolean;
  /** Where the decryptor counts dropped packets by reason (optional). */
  drops?: DropCounter<MppeDropReason>;
  /** Consecutive drops after which the decryptor reports `failing` (default 512). */
  failAfter?: number;
}

export type MppeFactory = (
  keys: { send: Uint8Array; recv: Uint8Array },
  settings: MppeSettings,
) => { encryptor: MppeEncryptor; decryptor: MppeDecryptor };
