/**
 * The RADIUS numbers poptop uses: packet codes (RFC 2865 §3, RFC 2866, RFC 5176), standard
 * attributes (RFC 2865 §5, RFC 2866 §5, RFC 2869 §5, RFC 3579, RFC 5176) and the Microsoft
 * vendor-specific attributes (RFC 2548). Built in: a radiusclient `dictionary` file is not needed
 * to encode or decode what poptop sends and understands.
 */

export const RadiusCode = {
  AccessRequest: 1,
  AccessAccept: 2,
  AccessReject: 3,
  AccountingRequest: 4,
  AccountingResponse: 5,
  AccessChallenge: 11,
  StatusServer: 12,
  StatusClient: 13,
  DisconnectRequest: 40,
  DisconnectAck: 41,
  DisconnectNak: 42,
  CoaRequest: 43,
  CoaAck: 44,
  CoaNak: 45,
} as const;

export const CODE_NAMES: Record<number, string> = {
  1: 'Access-Request',
  2: 'Access-Accept',
  3: 'Access-Reject',
  4: 'Accounting-Request',
  5: 'Accounting-Response',
  11: 'Access-Challenge',
  12: 'Status-Server',
  13: 'Status-Client',
  40: 'Disconnect-Request',
  41: 'Disconnect-ACK',
  42: 'Disconnect-NAK',
  43: 'CoA-Request',
  44: 'CoA-ACK',
  45: 'CoA-NAK',
};

/** Codes whose Authenticator is a random Request Authenticator chosen by the sender. */
export const RANDOM_AUTHENTICATOR_CODES: ReadonlySet<number> = new Set([
  RadiusCode.AccessRequest,
  RadiusCode.StatusServer,
]);
/** Requests whose Authenticator is MD5 over the packet with a zero authenticator and the secret. */
export const HASHED_REQUEST_CODES: ReadonlySet<number> = new Set([
  RadiusCode.AccountingRequest,
  RadiusCode.DisconnectRequest,
  RadiusCode.CoaRequest,
]);
/** Replies: their Response Authenticator covers the request's authenticator. */
export const RESPONSE_CODES: ReadonlySet<number> = new Set([
  RadiusCode.AccessAccept,
  RadiusCode.AccessReject,
  RadiusCode.AccessChallenge,
  RadiusCode.AccountingResponse,
  RadiusCode.DisconnectAck,
  RadiusCode.DisconnectNak,
  RadiusCode.CoaAck,
  RadiusCode.CoaNak,
]);

/** Standard attribute types. */
export const Attr = {
  UserName: 1,
  UserPassword: 2,
  ChapPassword: 3,
  NasIpAddress: 4,
  NasPort: 5,
  ServiceType: 6,
  FramedProtocol: 7,
  FramedIpAddress: 8,
  FramedIpNetmask: 9,
  FramedRouting: 10,
  FilterId: 11,
  FramedMtu: 12,
  FramedCompression: 13,
  LoginIpHost: 14,
  LoginService: 15,
  LoginTcpPort: 16,
  ReplyMessage: 18,
  CallbackNumber: 19,
  CallbackId: 20,
  FramedRoute: 22,
  FramedIpxNetwork: 23,
  State: 24,
  Class: 25,
  VendorSpecific: 26,
  SessionTimeout: 27,
  IdleTimeout: 28,
  TerminationAction: 29,
  CalledStationId: 30,
  CallingStationId: 31,
  NasIdentifier: 32,
  ProxyState: 33,
  AcctStatusType: 40,
  AcctDelayTime: 41,
  AcctInputOctets: 42,
  AcctOutputOctets: 43,
  AcctSessionId: 44,
  AcctAuthentic: 45,
  AcctSessionTime: 46,
  AcctInputPackets: 47,
  AcctOutputPackets: 48,
  AcctTerminateCause: 49,
  AcctMultiSessionId: 50,
  AcctInputGigawords: 52,
  AcctOutputGigawords: 53,
  EventTimestamp: 55,
  ChapChallenge: 60,
  NasPortType: 61,
  PortLimit: 62,
  ConnectInfo: 77,
  MessageAuthenticator: 80,
  AcctInterimInterval: 85,
  NasPortId: 87,
  FramedPool: 88,
  ErrorCause: 101,
} as const;

/** Words written in capitals in the dictionaries' attribute names (FreeRADIUS, radiusclient). */
const ACRONYMS: Record<string, string> = {
  Ip: 'IP',
  Ipx: 'IPX',
  Nas: 'NAS',
  Mtu: 'MTU',
  Tcp: 'TCP',
  Chap: 'CHAP',
  Chap2: 'CHAP2',
  Cpw: 'CPW',
  Cpw1: 'CPW-1',
  Cpw2: 'CPW-2',
  Mppe: 'MPPE',
  Dns: 'DNS',
  Nbns: 'NBNS',
  Lm: 'LM',
  Nt: 'NT',
  Pw: 'PW',
  Ras: 'RAS',
  Bap: 'BAP',
  Arap: 'ARAP',
  Eap: 'EAP',
};

/** "FramedIpAddress" → "Framed-IP-Address": the name the dictionaries give. */
function dictionaryName(key: string): string {
  return key
    .split(/(?=[A-Z])/)
    .map((w) => ACRONYMS[w] ?? w)
    .join('-');
}

export const ATTRIBUTE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(Attr).map(([k, v]) => [v, dictionaryName(k)]),
);

/** Microsoft's SMI Network Management Private Enterprise Code (RFC 2548 §2). */
export const VENDOR_MICROSOFT = 311;

/** Microsoft vendor types (RFC 2548 §2). */
export const MsAttr = {
  ChapResponse: 1,
  ChapError: 2,
  ChapCpw1: 3,
  ChapCpw2: 4,
  ChapLmEncPw: 5,
  ChapNtEncPw: 6,
  MppeEncryptionPolicy: 7,
  MppeEncryptionTypes: 8,
  RasVendor: 9,
  ChapChallenge: 11,
  ChapMppeKeys: 12,
  BapUsage: 13,
  LinkUtilizationThreshold: 14,
  LinkDropTimeLimit: 15,
  MppeSendKey: 16,
  MppeRecvKey: 17,
  RasVersion: 18,
  OldArapPassword: 19,
  NewArapPassword: 20,
  ArapPasswordChangeReason: 21,
  Filter: 22,
  AcctAuthType: 23,
  AcctEapType: 24,
  Chap2Response: 25,
  Chap2Success: 26,
  Chap2Cpw: 27,
  PrimaryDnsServer: 28,
  SecondaryDnsServer: 29,
  PrimaryNbnsServer: 30,
  SecondaryNbnsServer: 31,
} as const;

export const MS_ATTRIBUTE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(MsAttr).map(([k, v]) => [v, `MS-${dictionaryName(k)}`]),
);

/** MikroTik's Private Enterprise Code; its vendor attributes have Microsoft's layout. */
export const VENDOR_MIKROTIK = 14988;

/** MikroTik vendor types (FreeRADIUS dictionary.mikrotik), those a VPN server may be sent. */
export const MikrotikAttr = {
  RecvLimit: 1,
  XmitLimit: 2,
  Group: 3,
  RateLimit: 8,
  Realm: 9,
  HostIp: 10,
  MarkId: 11,
  RecvLimitGigawords: 14,
  XmitLimitGigawords: 15,
  TotalLimit: 17,
  TotalLimitGigawords: 18,
  AddressList: 19,
} as const;

export const MIKROTIK_ATTRIBUTE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(MikrotikAttr).map(([k, v]) => [v, `Mikrotik-${dictionaryName(k)}`]),
);

/**
 * Vendors whose Vendor-Specific attributes are decoded into sub-attributes (RFC 2865 §5.26's
 * suggested layout: Vendor-Type(1) Vendor-Length(1) Value); others stay one raw attribute.
 */
export const SUB_ATTRIBUTE_VENDORS: ReadonlySet<number> = new Set([VENDOR_MICROSOFT, VENDOR_MIKROTIK]);

/** Acct-Status-Type values (RFC 2866 §5.1, RFC 2869 §5.1). */
export const AcctStatus = {
  Start: 1,
  Stop: 2,
  InterimUpdate: 3,
  AccountingOn: 7,
  AccountingOff: 8,
} as const;

/** Acct-Terminate-Cause values (RFC 2866 §5.10). */
export const TerminateCause = {
  UserRequest: 1,
  LostCarrier: 2,
  LostService: 3,
  IdleTimeout: 4,
  SessionTimeout: 5,
  AdminReset: 6,
  AdminReboot: 7,
  PortError: 8,
  NasError: 9,
  NasRequest: 10,
  NasReboot: 11,
  PortUnneeded: 12,
  PortPreempted: 13,
  PortSuspended: 14,
  ServiceUnavailable: 15,
  Callback: 16,
  UserError: 17,
  HostRequest: 18,
} as const;
export type TerminateCauseValue = (typeof TerminateCause)[keyof typeof TerminateCause];

/** Error-Cause values for Disconnect/CoA NAKs (RFC 5176 §3.5). */
export const ErrorCause = {
  ResidualSessionContextRemoved: 201,
  UnsupportedAttribute: 401,
  MissingAttribute: 402,
  NasIdentificationMismatch: 403,
  InvalidRequest: 404,
  UnsupportedService: 405,
  UnsupportedExtension: 406,
  InvalidAttributeValue: 407,
  AdministrativelyProhibited: 501,
  RequestNotRoutable: 502,
  SessionContextNotFound: 503,
  SessionContextNotRemovable: 504,
  OtherProxyProcessingError: 505,
  ResourcesUnavailable: 506,
  RequestInitiated: 507,
  MultipleSessionSelectionUnsupported: 508,
} as const;

export const ServiceType = { Framed: 2 } as const;
export const FramedProtocol = { PPP: 1 } as const;
export const NasPortType = { Virtual: 5 } as const;
export const AcctAuthentic = { Radius: 1, Local: 2 } as const;

/** MS-MPPE-Encryption-Policy (RFC 2548 §2.4.4) and MS-MPPE-Encryption-Types bits (§2.4.5). */
export const MppePolicy = { Allowed: 1, Required: 2 } as const;
export const MppeTypes = { Bits40: 0x2, Bits128: 0x4, Bits56: 0x8 } as const;

/** The Framed-IP-Address that asks the NAS to choose an address (RFC 2865 §5.8). */
export const FRAMED_IP_NAS_CHOOSES = 0xfffffffe;
/** The Framed-IP-Address that lets the user choose (RFC 2865 §5.8): we refuse it. */
export const FRAMED_IP_USER_CHOOSES = 0xffffffff;

export function attributeName(type: number, vendor?: number): string {
  if (vendor === VENDOR_MICROSOFT) return MS_ATTRIBUTE_NAMES[type] ?? `MS-Attr-${type}`;
  if (vendor === VENDOR_MIKROTIK) return MIKROTIK_ATTRIBUTE_NAMES[type] ?? `Mikrotik-Attr-${type}`;
  if (vendor !== undefined) return `Vendor-${vendor}-Attr-${type}`;
  return ATTRIBUTE_NAMES[type] ?? `Attr-${type}`;
}

export function codeName(code: number): string {
  return CODE_NAMES[code] ?? `code ${code}`;
}
