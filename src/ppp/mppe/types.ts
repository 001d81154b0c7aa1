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
  /** The peer sent a CCP Reset-Request: stateful mode flushes and marks the next packet (A bit). */
  resetRequested(): void;
}

export interface MppeDecryptor {
  /**
   * Decrypt one MPPE packet (header + ciphertext). Returns the plaintext, or null when the packet
   * must be dropped (bad header, stateful loss awaiting a flushed packet, replay in stateless mode).
   */
  decrypt(packet: Uint8Array): Uint8Array | null;
  /**
   * Stateful mode: true after loss was detected and until a flushed packet arrives; the link
   * then sends a CCP Reset-Request (once per loss event, see takeResetRequest).
   */
  takeResetRequest(): boolean;
}

export interface MppeSettings {
  bits: MppeBits;
  stateless: boolean;
  /** Where the decryptor counts dropped packets by reason (optional). */
  drops?: DropCounter;
}

export type MppeFactory = (
  keys: { send: Uint8Array; recv: Uint8Array },
  settings: MppeSettings,
) => { encryptor: MppeEncryptor; decryptor: MppeDecryptor };
