/**
 * PPP protocol numbers (RFC 1661 §2, IANA "PPP DLL Protocol Numbers") and the control-packet
 * codes of the RFC 1661 §5 family (LCP uses 1–11, CCP adds 14/15 per RFC 1962 §2).
 */
export const PppProtocol = {
  IP: 0x0021,
  IPV6: 0x0057,
  /** Compressed (here: MPPE-encrypted) datagram, RFC 1962 §1 / RFC 3078 §2. */
  COMPRESSED: 0x00fd,
  IPCP: 0x8021,
  IPV6CP: 0x8057,
  CCP: 0x80fd,
  LCP: 0xc021,
  PAP: 0xc023,
  CHAP: 0xc223,
} as const;

export const PacketCode = {
  ConfigureRequest: 1,
  ConfigureAck: 2,
  ConfigureNak: 3,
  ConfigureReject: 4,
  TerminateRequest: 5,
  TerminateAck: 6,
  CodeReject: 7,
  ProtocolReject: 8,
  EchoRequest: 9,
  EchoReply: 10,
  DiscardRequest: 11,
  Identification: 12,
  TimeRemaining: 13,
  ResetRequest: 14,
  ResetAck: 15,
} as const;

const codeNames: Record<number, string> = {
  1: 'ConfReq',
  2: 'ConfAck',
  3: 'ConfNak',
  4: 'ConfRej',
  5: 'TermReq',
  6: 'TermAck',
  7: 'CodeRej',
  8: 'ProtRej',
  9: 'EchoReq',
  10: 'EchoRep',
  11: 'DiscReq',
  12: 'Ident',
  13: 'TimeRem',
  14: 'ResetReq',
  15: 'ResetAck',
};

/** Short name of a control-packet code for log lines ("ConfReq"), or "code=N". */
export function codeName(code: number): string {
  return codeNames[code] ?? `code=${code}`;
}

/** The PPP header bytes Address (0xff) and Control (0x03), RFC 1662 §3.1. */
export const PPP_ADDRESS = 0xff;
export const PPP_CONTROL = 0x03;
