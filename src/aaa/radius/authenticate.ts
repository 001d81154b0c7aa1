import type { RemoteAuthenticator, RemoteAuthRequest, RemoteVerdict } from '../../ppp/auth/types.ts';
import { mppeKeysFromMschapV1, mppeKeysFromStartKeys } from '../../ppp/mppe/keys.ts';
import type { MppeKeySource } from '../../ppp/mppe/types.ts';
import { quote } from '../../util/escape.ts';
import { isProtocolError, ProtocolError } from '../../wire/errors.ts';
import { formatIPv4, type IPv4 } from '../../wire/ip.ts';
import type { BuildContext, RadiusClient, RadiusReply } from './client.ts';
import {
  attrText,
  attrU32,
  bytesAttr,
  findAllAttrs,
  findAttr,
  hideUserPassword,
  type RadiusAttribute,
  revealHidden,
  saltDecrypt,
  textAttr,
  u32Attr,
} from './codec.ts';
import {
  Attr,
  FRAMED_IP_NAS_CHOOSES,
  FRAMED_IP_USER_CHOOSES,
  FramedProtocol,
  MppePolicy,
  MppeTypes,
  MsAttr,
  NasPortType,
  RadiusCode,
  ServiceType,
  VENDOR_MICROSOFT,
} from './dictionary.ts';
import { type RadiusRateLimit, readRateLimit } from './rate-limit-attrs.ts';

/** How this server names itself to RADIUS (at least one of the two is sent). */
export interface NasIdentity {
  nasIdentifier?: string;
  nasIpAddress?: IPv4;
}

/** The session a login belongs to. */
export interface RadiusSessionContext {
  /** Acct-Session-Id, the same in the Access-Request and in accounting. */
  acctSessionId: string;
  /** NAS-Port: our PPTP call id. */
  nasPort: number;
  /** Calling-Station-Id: the client's address. */
  callingStationId: string;
  /** Called-Station-Id: the address the client connected to, when known. */
  calledStationId?: string;
}

/**
 * What an Access-Accept granted, for the session (RFC 2865 §5, RFC 2869, RFC 2548). Absent fields
 * were not in the reply.
 */
export interface RadiusGrant {
  /** Framed-IP-Address: an address, or 'pool' (255.255.255.254 or 255.255.255.255). */
  framedIp?: IPv4 | 'pool';
  framedPool?: string;
  sessionTimeoutS?: number;
  idleTimeoutS?: number;
  acctInterimIntervalS?: number;
  /** Class attributes, echoed in accounting (RFC 2865 §5.25). */
  classes: Uint8Array[];
  /** MS-Primary/Secondary-DNS-Server, MS-Primary/Secondary-NBNS-Server (undefined when absent). */
  dns: [IPv4 | undefined, IPv4 | undefined];
  nbns: [IPv4 | undefined, IPv4 | undefined];
  /** Framed-Route values as sent ("10.1.0.0/16 0.0.0.0 1"); parsed when the session comes up. */
  framedRoutes: string[];
  /** Mikrotik-Rate-Limit / Filter-Id (rate-limit-attrs.ts). */
  rate: RadiusRateLimit;
  /** Every attribute of the Access-Accept (for the radattr file). */
  attributes: readonly RadiusAttribute[];
  /** MS-MPPE-Encryption-Policy/-Types (RFC 2548 §2.4.4-2.4.5), when sent. */
  mppe?: { required: boolean; allow40: boolean; allow128: boolean };
  /** Reply-Message texts. */
  replyMessages: string[];
  /** The server that answered ("127.0.0.1:1812"). */
  server: string;
}

/** The answer to an MS-CHAP request: the String of MS-CHAP2-Success / MS-CHAP-Error after its Ident octet. */
function msString(a: RadiusAttribute | undefined): string | undefined {
  if (!a || a.value.length < 1) return undefined;
  return new TextDecoder().decode(a.value.subarray(1));
}

/**
 * Judges PPP logins through RADIUS (RFC 2865 §5.2-5.3 PAP and CHAP, RFC 2548 §2.3 MS-CHAP),
 * like pppd's radius.so: one Access-Request per login, with the peer's answer relayed as it came
 * (User-Password hidden; CHAP-Password + CHAP-Challenge; MS-CHAP-Challenge + MS-CHAP-Response or
 * MS-CHAP2-Response). An Access-Accept yields the MPPE keys (MS-MPPE-Send-Key/Recv-Key, or
 * MS-CHAP-MPPE-Keys for MS-CHAPv1) and a RadiusGrant; an Access-Reject a failure whose reason
 * quotes the Reply-Message, with MS-CHAP-Error passed to the peer unchanged.
 */
export class RadiusAuthenticator implements RemoteAuthenticator {
  private readonly client: RadiusClient;
  private readonly nas: NasIdentity;
  private readonly session: RadiusSessionContext;

  constructor(client: RadiusClient, nas: NasIdentity, session: RadiusSessionContext) {
    this.client = client;
    this.nas = nas;
    this.session = session;
  }

  verify(req: RemoteAuthRequest, done: (verdict: RemoteVerdict) => void): { cancel(): void } {
    let cancelled = false;
    const abort = new AbortController();
    const finish = (v: RemoteVerdict) => {
      if (!cancelled) {
        cancelled = true;
        done(v);
      }
    };
    const problem = this.checkRequest(req);
    if (problem) {
      queueMicrotask(() => finish({ ok: false, reason: problem }));
    } else {
      this.client
        .send(
          { code: RadiusCode.AccessRequest, attributes: (ctx) => this.attributes(req, ctx) },
          abort.signal,
        )
        .then(
          (reply) => finish(interpretReply(req, reply)),
          (e: unknown) => finish({ ok: false, reason: (e as Error).message }),
        );
    }
    return {
      cancel: () => {
        cancelled = true;
        // Stop retransmitting and free the Identifier: a login abandoned mid-way holds none.
        abort.abort();
      },
    };
  }

  private checkRequest(req: RemoteAuthRequest): string | undefined {
    if (req.name.length > 253) return 'the user name is longer than the 253 octets RADIUS carries';
    if (req.method === 'pap' && req.password.length > 128) {
      return 'the password is longer than the 128 octets a RADIUS User-Password carries';
    }
    if (req.method === 'chap-md5' && req.challenge.length > 253) return 'CHAP challenge too long for RADIUS';
    return undefined;
  }

  private attributes(req: RemoteAuthRequest, ctx: BuildContext): RadiusAttribute[] {
    const out: RadiusAttribute[] = [
      // The octets the peer sent: a name that is not UTF-8 must reach the server unchanged.
      bytesAttr(Attr.UserName, req.name),
      ...sessionAttributes(this.nas, this.session),
    ];
    switch (req.method) {
      case 'pap':
        out.push(bytesAttr(Attr.UserPassword, hideUserPassword(req.password, ctx.secret, ctx.authenticator)));
        break;
      case 'chap-md5':
        out.push(bytesAttr(Attr.ChapPassword, Uint8Array.of(req.id, ...req.response)));
        out.push(bytesAttr(Attr.ChapChallenge, req.challenge));
        break;
      case 'mschap':
      case 'mschapv2': {
        // Our Response Value is 48 octets then Flags(1): MS-CHAP LM-Response(24) NT-Response(24),
        // MS-CHAPv2 Peer-Challenge(16) Reserved(8) NT-Response(24). MS-CHAP-Response and
        // MS-CHAP2-Response are Ident(1) Flags(1) then those 48 octets (RFC 2548 §2.3.2).
        const v = req.response;
        const type = req.method === 'mschap' ? MsAttr.ChapResponse : MsAttr.Chap2Response;
        out.push(bytesAttr(MsAttr.ChapChallenge, req.challenge, VENDOR_MICROSOFT));
        out.push(bytesAttr(type, Uint8Array.of(req.id, v[48]!, ...v.subarray(0, 48)), VENDOR_MICROSOFT));
        break;
      }
    }
    return out;
  }
}

/** NAS-IP-Address and/or NAS-Identifier (RFC 2865 §5.4: at least one). */
/**
 * What every Access-Request and Accounting-Request of a session says about it: the NAS, NAS-Port,
 * a framed PPP service on a virtual port, Calling-Station-Id, Acct-Session-Id (Called-Station-Id
 * when known).
 */
export function sessionAttributes(nas: NasIdentity, session: RadiusSessionContext): RadiusAttribute[] {
  const out = [
    ...nasAttributes(nas),
    u32Attr(Attr.NasPort, session.nasPort),
    u32Attr(Attr.NasPortType, NasPortType.Virtual),
    u32Attr(Attr.ServiceType, ServiceType.Framed),
    u32Attr(Attr.FramedProtocol, FramedProtocol.PPP),
    textAttr(Attr.CallingStationId, session.callingStationId),
    textAttr(Attr.AcctSessionId, session.acctSessionId),
  ];
  if (session.calledStationId) out.push(textAttr(Attr.CalledStationId, session.calledStationId));
  return out;
}

export function nasAttributes(nas: NasIdentity): RadiusAttribute[] {
  const out: RadiusAttribute[] = [];
  if (nas.nasIpAddress !== undefined) out.push(u32Attr(Attr.NasIpAddress, nas.nasIpAddress));
  if (nas.nasIdentifier !== undefined || nas.nasIpAddress === undefined) {
    out.push(textAttr(Attr.NasIdentifier, nas.nasIdentifier ?? 'poptop'));
  }
  return out;
}

/** The verdict an Access-Accept/Reject/Challenge gives for `req`. */
export function interpretReply(req: RemoteAuthRequest, reply: RadiusReply): RemoteVerdict {
  const attrs = reply.packet.attributes;
  const server = `${reply.server.host}:${reply.server.port}`;
  const replyMessages = findAllAttrs(attrs, Attr.ReplyMessage).map(attrText);
  const said = replyMessages.length ? `: ${quote(replyMessages.join(' '))}` : '';
  const ms = req.method === 'mschap' || req.method === 'mschapv2';
  if (reply.packet.code === RadiusCode.AccessReject) {
    const msError = ms ? msString(findAttr(attrs, MsAttr.ChapError, VENDOR_MICROSOFT)) : undefined;
    return {
      ok: false,
      reason: `RADIUS server ${server} rejected ${quote(req.user)}${said}`,
      ...(msError !== undefined ? { message: msError } : {}),
    };
  }
  if (reply.packet.code !== RadiusCode.AccessAccept) {
    return {
      ok: false,
      reason: `RADIUS server ${server} sent an Access-Challenge for ${quote(req.user)}, which a PPP login cannot answer${said}`,
    };
  }
  try {
    const grant = readGrant(attrs, server, replyMessages);
    let message: string | undefined;
    let mppeKeys: MppeKeySource | undefined;
    if (req.method === 'mschapv2') {
      message = msString(findAttr(attrs, MsAttr.Chap2Success, VENDOR_MICROSOFT));
      if (message === undefined) {
        return {
          ok: false,
          reason: `RADIUS server ${server} accepted ${quote(req.user)} without an MS-CHAP2-Success, so the client could not verify the server`,
        };
      }
    } else if (req.method === 'mschap' || req.method === 'chap-md5') message = 'Access granted';
    if (ms) mppeKeys = readMppeKeys(req, reply);
    return {
      ok: true,
      grant,
      ...(message !== undefined ? { message } : {}),
      ...(mppeKeys ? { mppeKeys } : {}),
    };
  } catch (e) {
    if (!isProtocolError(e)) throw e;
    return {
      ok: false,
      reason: `RADIUS server ${server} sent an Access-Accept that cannot be used: ${e.message}`,
    };
  }
}

function readGrant(attrs: RadiusAttribute[], server: string, replyMessages: string[]): RadiusGrant {
  const u32 = (type: number, vendor?: number) => {
    const a = findAttr(attrs, type, vendor);
    return a ? attrU32(a) : undefined;
  };
  const grant: RadiusGrant = {
    classes: findAllAttrs(attrs, Attr.Class).map((a) => a.value),
    dns: [u32(MsAttr.PrimaryDnsServer, VENDOR_MICROSOFT), u32(MsAttr.SecondaryDnsServer, VENDOR_MICROSOFT)],
    nbns: [
      u32(MsAttr.PrimaryNbnsServer, VENDOR_MICROSOFT),
      u32(MsAttr.SecondaryNbnsServer, VENDOR_MICROSOFT),
    ],
    framedRoutes: findAllAttrs(attrs, Attr.FramedRoute).map(attrText),
    rate: readRateLimit(attrs),
    attributes: attrs,
    replyMessages,
    server,
  };
  const ip = u32(Attr.FramedIpAddress);
  if (ip !== undefined) {
    grant.framedIp = ip === FRAMED_IP_NAS_CHOOSES || ip === FRAMED_IP_USER_CHOOSES ? 'pool' : ip;
    if (grant.framedIp !== 'pool' && (ip === 0 || ip >>> 28 >= 14)) {
      throw badReply(`Framed-IP-Address ${formatIPv4(ip)} is not a usable client address`);
    }
  }
  const pool = findAttr(attrs, Attr.FramedPool);
  if (pool) grant.framedPool = attrText(pool);
  const st = u32(Attr.SessionTimeout);
  if (st !== undefined) grant.sessionTimeoutS = st;
  const it = u32(Attr.IdleTimeout);
  if (it !== undefined) grant.idleTimeoutS = it;
  const ii = u32(Attr.AcctInterimInterval);
  if (ii !== undefined) grant.acctInterimIntervalS = ii;
  const policy = u32(MsAttr.MppeEncryptionPolicy, VENDOR_MICROSOFT);
  const types = u32(MsAttr.MppeEncryptionTypes, VENDOR_MICROSOFT);
  if (policy !== undefined || types !== undefined) {
    grant.mppe = {
      required: policy === MppePolicy.Required,
      allow40: types === undefined || (types & MppeTypes.Bits40) !== 0,
      allow128: types === undefined || (types & MppeTypes.Bits128) !== 0,
    };
  }
  return grant;
}

/** A problem with the reply's contents (interpretReply reports it in words). */
function badReply(message: string): ProtocolError {
  return new ProtocolError('radius', 'BAD_FIELD', message);
}

/**
 * MPPE start keys from the Access-Accept: MS-MPPE-Send-Key / MS-MPPE-Recv-Key (salt-encrypted,
 * RFC 2548 §2.4.2-2.4.3; the Send-Key is ours for sending), or for MS-CHAPv1 MS-CHAP-MPPE-Keys
 * (RFC 2548 §2.4.1: LM-Key(8) NT-Key(16) hidden like a User-Password, the NT-Key being the hash of
 * the NT password hash; the start key is SHA-1(NT-Key ‖ NT-Key ‖ challenge), RFC 3079 §2.4).
 * Undefined when the server sent none (the link then refuses a required MPPE, in words).
 */
function readMppeKeys(req: RemoteAuthRequest, reply: RadiusReply): MppeKeySource | undefined {
  const attrs = reply.packet.attributes;
  const send = findAttr(attrs, MsAttr.MppeSendKey, VENDOR_MICROSOFT);
  const recv = findAttr(attrs, MsAttr.MppeRecvKey, VENDOR_MICROSOFT);
  if (send && recv) {
    const s = saltDecrypt(send.value, reply.secret, reply.requestAuthenticator);
    const r = saltDecrypt(recv.value, reply.secret, reply.requestAuthenticator);
    if (s.length < 16 || r.length < 16) {
      throw badReply(`MS-MPPE keys of ${s.length} and ${r.length} octets (16 needed)`);
    }
    return mppeKeysFromStartKeys(s, r);
  }
  const legacy = findAttr(attrs, MsAttr.ChapMppeKeys, VENDOR_MICROSOFT);
  if (legacy && req.method === 'mschap') {
    if (legacy.value.length !== 32) {
      throw badReply(`MS-CHAP-MPPE-Keys of ${legacy.value.length} octets (must be 32)`);
    }
    const plain = revealHidden(legacy.value, reply.secret, reply.requestAuthenticator);
    return mppeKeysFromMschapV1({ passwordHashHash: plain.subarray(8, 24) }, req.challenge);
  }
  return undefined;
}
