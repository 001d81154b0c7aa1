/**
 * PPTP control-protocol constants (RFC 2637 §1.3-§2.16). Numbers come from the RFC; names follow its
 * message and field names. Each group is an `as const` object plus the union type of its values.
 */

/** TCP port of the control connection (RFC 2637 §1.3.1). */
export const PPTP_TCP_PORT = 1723;
/** Magic Cookie carried by every control message (RFC 2637 §1.4). */
export const PPTP_MAGIC_COOKIE = 0x1a2b3c4d;
/** Protocol version 1.0: major in the high byte, revision in the low byte (RFC 2637 §2.1). */
export const PPTP_PROTOCOL_VERSION = 0x0100;
/** Header common to all control messages: Length, PPTP Message Type, Magic Cookie, Control Message
 *  Type, Reserved0 (RFC 2637 §1.4). */
export const CONTROL_HEADER_LENGTH = 12;

/** PPTP Message Type (RFC 2637 §1.4): only control messages are defined on the wire. */
export const PptpMessageType = {
  Control: 1,
  Management: 2,
} as const;

/** Control Message Type (RFC 2637 §1.4). */
export const ControlType = {
  StartControlConnectionRequest: 1,
  StartControlConnectionReply: 2,
  StopControlConnectionRequest: 3,
  StopControlConnectionReply: 4,
  EchoRequest: 5,
  EchoReply: 6,
  OutgoingCallRequest: 7,
  OutgoingCallReply: 8,
  IncomingCallRequest: 9,
  IncomingCallReply: 10,
  IncomingCallConnected: 11,
  CallClearRequest: 12,
  CallDisconnectNotify: 13,
  WanErrorNotify: 14,
  SetLinkInfo: 15,
} as const;
export type ControlTypeCode = (typeof ControlType)[keyof typeof ControlType];

/** The exact Length of each control message, header included (RFC 2637 §2.1-§2.15 layouts). */
export const CONTROL_MESSAGE_LENGTH: Readonly<Record<ControlTypeCode, number>> = {
  1: 156,
  2: 156,
  3: 16,
  4: 16,
  5: 16,
  6: 20,
  7: 168,
  8: 32,
  9: 220,
  10: 24,
  11: 28,
  12: 16,
  13: 148,
  14: 40,
  15: 24,
};
/** Smallest and largest control message: anything outside is rejected before it is buffered. */
export const MIN_CONTROL_MESSAGE_LENGTH = 16;
export const MAX_CONTROL_MESSAGE_LENGTH = 220;

/** The RFC's name of each control message, for logs. */
export const CONTROL_TYPE_NAME: Readonly<Record<ControlTypeCode, string>> = {
  1: 'Start-Control-Connection-Request',
  2: 'Start-Control-Connection-Reply',
  3: 'Stop-Control-Connection-Request',
  4: 'Stop-Control-Connection-Reply',
  5: 'Echo-Request',
  6: 'Echo-Reply',
  7: 'Outgoing-Call-Request',
  8: 'Outgoing-Call-Reply',
  9: 'Incoming-Call-Request',
  10: 'Incoming-Call-Reply',
  11: 'Incoming-Call-Connected',
  12: 'Call-Clear-Request',
  13: 'Call-Disconnect-Notify',
  14: 'WAN-Error-Notify',
  15: 'Set-Link-Info',
};

export function isControlTypeCode(n: number): n is ControlTypeCode {
  return Number.isInteger(n) && n >= 1 && n <= 15;
}

/** General Error Codes (RFC 2637 §2.16), carried in the Error Code field of replies. */
export const GeneralError = {
  None: 0,
  /** No control connection exists yet for this PAC-PNS pair. */
  NotConnected: 1,
  /** Length is wrong or Magic Cookie value is incorrect. */
  BadFormat: 2,
  /** One of the field values was out of range or a reserved field was non-zero. */
  BadValue: 3,
  /** Insufficient resources to handle this command now. */
  NoResource: 4,
  /** The Call ID is invalid in this context. */
  BadCallId: 5,
  /** A generic vendor-specific error occurred in the PAC. */
  PacError: 6,
} as const;
export type GeneralErrorCode = (typeof GeneralError)[keyof typeof GeneralError];

/** Start-Control-Connection-Reply Result Code (RFC 2637 §2.2). */
export const StartResult = {
  Successful: 1,
  GeneralError: 2,
  AlreadyExists: 3,
  NotAuthorized: 4,
  VersionNotSupported: 5,
} as const;

/** Stop-Control-Connection-Request Reason (RFC 2637 §2.3). */
export const StopReason = {
  None: 1,
  /** Stop-Protocol: cannot support the peer's version of the protocol. */
  StopProtocol: 2,
  /** Stop-Local-Shutdown: the requester is being shut down. */
  LocalShutdown: 3,
} as const;

/** Stop-Control-Connection-Reply Result Code (RFC 2637 §2.4). */
export const StopResult = {
  Ok: 1,
  GeneralError: 2,
} as const;

/** Echo-Reply Result Code (RFC 2637 §2.6). */
export const EchoResult = {
  Ok: 1,
  GeneralError: 2,
} as const;

/** Outgoing-Call-Reply Result Code (RFC 2637 §2.8). */
export const OutgoingCallResult = {
  Connected: 1,
  GeneralError: 2,
  NoCarrier: 3,
  Busy: 4,
  NoDialTone: 5,
  TimeOut: 6,
  DoNotAccept: 7,
} as const;

/** Incoming-Call-Reply Result Code (RFC 2637 §2.10). */
export const IncomingCallResult = {
  Accept: 1,
  GeneralError: 2,
  DoNotAccept: 3,
} as const;

/** Call-Disconnect-Notify Result Code (RFC 2637 §2.13). */
export const DisconnectResult = {
  LostCarrier: 1,
  GeneralError: 2,
  AdminShutdown: 3,
  /** Disconnected because of a Call-Clear-Request. */
  Request: 4,
} as const;

/** Framing Capabilities bits of the Start-Control-Connection messages (RFC 2637 §2.1). */
export const FramingCapability = {
  Async: 0x1,
  Sync: 0x2,
} as const;

/** Bearer Capabilities bits of the Start-Control-Connection messages (RFC 2637 §2.1). */
export const BearerCapability = {
  Analog: 0x1,
  Digital: 0x2,
} as const;

/** Bearer Type of an Outgoing-/Incoming-Call-Request (RFC 2637 §2.7, §2.9). */
export const BearerType = {
  Analog: 1,
  Digital: 2,
  Any: 3,
} as const;

/** Framing Type of an Outgoing-Call-Request / Incoming-Call-Connected (RFC 2637 §2.7, §2.11). */
export const FramingType = {
  Async: 1,
  Sync: 2,
  Any: 3,
} as const;

/** Fixed text field widths (RFC 2637 §2.1, §2.7, §2.9, §2.13). */
export const HOST_NAME_LENGTH = 64;
export const VENDOR_LENGTH = 64;
export const PHONE_NUMBER_LENGTH = 64;
export const SUBADDRESS_LENGTH = 64;
export const CALL_STATISTICS_LENGTH = 128;

const NAMES = {
  start: [
    '',
    'successful',
    'general error',
    'control connection already exists',
    'not authorized',
    'protocol version not supported',
  ],
  stopReason: ['', 'none', 'stop-protocol', 'local shutdown'],
  stop: ['', 'ok', 'general error'],
  outgoing: [
    '',
    'connected',
    'general error',
    'no carrier',
    'busy',
    'no dial tone',
    'time-out',
    'do not accept',
  ],
  incoming: ['', 'accept', 'general error', 'do not accept'],
  disconnect: ['', 'lost carrier', 'general error', 'admin shutdown', 'request'],
  error: ['none', 'not-connected', 'bad-format', 'bad-value', 'no-resource', 'bad-call-id', 'pac-error'],
} as const;

/** Words for a result/reason/error code in logs: "busy (4)", "code 9" when unknown. */
export function codeName(kind: keyof typeof NAMES, code: number): string {
  const list: readonly string[] = NAMES[kind];
  const name = list[code];
  return name ? `${name} (${code})` : `code ${code}`;
}
