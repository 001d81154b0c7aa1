/**
 * PPTP control requests as a client sends them, for the test peers (hand-driven control
 * connections, the Windows-personality peer, the namespace attackers). Values are those real
 * clients use (captures: minimum 300 bps, maximum 100 Mbit/s, bearer and framing 3, window 64).
 */
import type { MessageOf } from '../../src/pptp/codec.ts';

export function startControlRequest(
  over: Partial<MessageOf<'start-control-connection-request'>> = {},
): MessageOf<'start-control-connection-request'> {
  return {
    type: 'start-control-connection-request',
    protocolVersion: 0x0100,
    framingCapabilities: 1,
    bearerCapabilities: 1,
    maxChannels: 0,
    firmwareRevision: 0,
    hostName: 'test',
    vendor: 'test',
    ...over,
  };
}

export function outgoingCallRequest(
  callId: number,
  over: Partial<MessageOf<'outgoing-call-request'>> = {},
): MessageOf<'outgoing-call-request'> {
  return {
    type: 'outgoing-call-request',
    callId,
    callSerial: 1,
    minBps: 300,
    maxBps: 100_000_000,
    bearerType: 3,
    framingType: 3,
    recvWindow: 64,
    processingDelay: 0,
    phoneNumber: '',
    subaddress: '',
    ...over,
  };
}
