/**
 * The PPTP control messages as a discriminated union, one variant per Control Message Type
 * (RFC 2637 §2.1-§2.15). Fixed text fields are strings of latin1 characters; Reserved fields and the
 * length fields of text (Phone Number Length, Dialed/Dialing Number Length) are not represented:
 * the encoder writes zeros and the text's length, the decoder ignores them.
 */

export interface StartControlConnectionRequest {
  type: 'start-control-connection-request';
  protocolVersion: number;
  framingCapabilities: number;
  bearerCapabilities: number;
  maxChannels: number;
  firmwareRevision: number;
  hostName: string;
  vendor: string;
}

export interface StartControlConnectionReply {
  type: 'start-control-connection-reply';
  protocolVersion: number;
  resultCode: number;
  errorCode: number;
  framingCapabilities: number;
  bearerCapabilities: number;
  maxChannels: number;
  firmwareRevision: number;
  hostName: string;
  vendor: string;
}

export interface StopControlConnectionRequest {
  type: 'stop-control-connection-request';
  reason: number;
}

export interface StopControlConnectionReply {
  type: 'stop-control-connection-reply';
  resultCode: number;
  errorCode: number;
}

export interface EchoRequest {
  type: 'echo-request';
  identifier: number;
}

export interface EchoReply {
  type: 'echo-reply';
  identifier: number;
  resultCode: number;
  errorCode: number;
}

export interface OutgoingCallRequest {
  type: 'outgoing-call-request';
  /** The PNS's Call ID: the GRE Key of packets the PAC sends for this call. */
  callId: number;
  callSerial: number;
  minBps: number;
  maxBps: number;
  bearerType: number;
  framingType: number;
  recvWindow: number;
  processingDelay: number;
  phoneNumber: string;
  subaddress: string;
}

export interface OutgoingCallReply {
  type: 'outgoing-call-reply';
  /** The PAC's Call ID: the GRE Key of packets the PNS sends for this call. */
  callId: number;
  peerCallId: number;
  resultCode: number;
  errorCode: number;
  causeCode: number;
  connectSpeed: number;
  recvWindow: number;
  processingDelay: number;
  physicalChannelId: number;
}

export interface IncomingCallRequest {
  type: 'incoming-call-request';
  callId: number;
  callSerial: number;
  bearerType: number;
  physicalChannelId: number;
  dialedNumber: string;
  dialingNumber: string;
  subaddress: string;
}

export interface IncomingCallReply {
  type: 'incoming-call-reply';
  callId: number;
  peerCallId: number;
  resultCode: number;
  errorCode: number;
  recvWindow: number;
  transmitDelay: number;
}

export interface IncomingCallConnected {
  type: 'incoming-call-connected';
  peerCallId: number;
  connectSpeed: number;
  recvWindow: number;
  transmitDelay: number;
  framingType: number;
}

export interface CallClearRequest {
  type: 'call-clear-request';
  /** The PNS's own Call ID (RFC 2637 §2.12: the PAC's may not be known yet). */
  callId: number;
}

export interface CallDisconnectNotify {
  type: 'call-disconnect-notify';
  /** The PAC's own Call ID (RFC 2637 §2.13). */
  callId: number;
  resultCode: number;
  errorCode: number;
  causeCode: number;
  callStatistics: string;
}

export interface WanErrorNotify {
  type: 'wan-error-notify';
  peerCallId: number;
  crcErrors: number;
  framingErrors: number;
  hardwareOverruns: number;
  bufferOverruns: number;
  timeoutErrors: number;
  alignmentErrors: number;
}

export interface SetLinkInfo {
  type: 'set-link-info';
  /** The receiver's Call ID. */
  peerCallId: number;
  sendAccm: number;
  recvAccm: number;
}

export type ControlMessage =
  | StartControlConnectionRequest
  | StartControlConnectionReply
  | StopControlConnectionRequest
  | StopControlConnectionReply
  | EchoRequest
  | EchoReply
  | OutgoingCallRequest
  | OutgoingCallReply
  | IncomingCallRequest
  | IncomingCallReply
  | IncomingCallConnected
  | CallClearRequest
  | CallDisconnectNotify
  | WanErrorNotify
  | SetLinkInfo;

export type ControlMessageName = ControlMessage['type'];
export type MessageOf<T extends ControlMessageName> = Extract<ControlMessage, { type: T }>;
