/**
 * A malformed message. Codecs throw this (and only this) for bad input; "need more bytes" is
 * never an exception (stream framers return null instead). The caller maps the error to the
 * protocol's answer (a Stop-Control-Connection, a Configure-Reject, a Code-Reject) or to a
 * counted drop.
 */
export type ProtocolErrorCode =
  | 'TRUNCATED'
  | 'BAD_LENGTH'
  | 'BAD_MAGIC'
  | 'BAD_VERSION'
  | 'UNKNOWN_TYPE'
  | 'BAD_FIELD'
  | 'TOO_LARGE';

export type ProtocolLayer =
  | 'pptp'
  | 'gre'
  | 'ppp'
  | 'lcp'
  | 'ipcp'
  | 'ipv6cp'
  | 'ccp'
  | 'pap'
  | 'chap'
  | 'mppe'
  | 'radius';

export class ProtocolError extends Error {
  readonly layer: ProtocolLayer;
  readonly code: ProtocolErrorCode;
  constructor(layer: ProtocolLayer, code: ProtocolErrorCode, message: string) {
    super(`${layer}: ${message}`);
    this.name = 'ProtocolError';
    this.layer = layer;
    this.code = code;
  }
}

export function isProtocolError(e: unknown): e is ProtocolError {
  return e instanceof ProtocolError;
}
