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
