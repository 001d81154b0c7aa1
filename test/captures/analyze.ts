/**
 * Decode a real PPTP capture with poptop's own codecs: the TCP 1723 streams (reassembled per
 * direction) through the control framer, every GRE header, every PPP frame and the options of
 * every control packet, CHAP/PAP, and, when the password is known, the MS-CHAPv2 digests, the
 * MPPE keys and every encrypted packet (whose plaintext must be a valid IPv4 datagram).
 *
 * Nothing here throws on a bad packet: each decode failure is recorded in `errors` (with the
 * record number), so the test can assert there are none and show them all when there are.
 */
import { readFileSync } from 'node:fs';
import { checkAuthenticatorResponse, generateNtResponse, ntPasswordHash } from '../../src/crypto/mschap.ts';
import { decodeGreHeader } from '../../src/gre/codec.ts';
import { decodeChapPacket } from '../../src/ppp/auth/chap-codec.ts';
import { MSCHAPV2_OFFSET_NT_RESPONSE, MSCHAPV2_RESPONSE_LENGTH } from '../../src/ppp/auth/mschapv2.ts';
import { decodePapPacket } from '../../src/ppp/auth/pap-codec.ts';
import { CcpOption, MppeBit, mppeValue, strengthsIn } from '../../src/ppp/ccp/mppe-option.ts';
import { PacketCode, PppProtocol } from '../../src/ppp/constants.ts';
import { decodeFrame } from '../../src/ppp/frame.ts';
import { IpcpOption } from '../../src/ppp/ipcp/handler.ts';
import { Ipv6cpOption } from '../../src/ppp/ipv6cp/handler.ts';
import { decodeAuthData, describeLcpOption, LcpOption } from '../../src/ppp/lcp/options.ts';
import { createMppe } from '../../src/ppp/mppe/cipher.ts';
import { mppeKeysFromMschapV2 } from '../../src/ppp/mppe/keys.ts';
import type { MppeBits, MppeDecryptor } from '../../src/ppp/mppe/types.ts';
import { decodeOptions } from '../../src/ppp/options.ts';
import { decodeControlPacket } from '../../src/ppp/packet.ts';
import { ControlFramer } from '../../src/pptp/framer.ts';
import type { ControlMessage } from '../../src/pptp/messages.ts';
import { isProtocolError } from '../../src/wire/errors.ts';
import {
  ieee80211FcsOk,
  ieee80211HasFcs,
  Linktype,
  linkPayload,
  parseIpv4,
  parseTcp,
  readPcap,
  TcpReassembler,
} from '../support/pcap-read.ts';

export const PPTP_PORT = 1723;
const IPPROTO_TCP = 6;
const IPPROTO_GRE = 47;
/** The Callback-Control-Protocol of Microsoft's callback (CBCP), which poptop does not run. */
export const PPP_CBCP = 0xc029;
/** EAP as an LCP Authentication-Protocol (RFC 3748), which poptop Naks. */
const PPP_EAP = 0xc227;

export type Dir = 'c2s' | 's2c';

export interface Credentials {
  user: string;
  password: string;
}

export interface MppeCount {
  /** MPPE packets (PPP protocol 0x00FD) seen, duplicates (same GRE sequence number) included. */
  packets: number;
  unique: number;
  decrypted: number;
  /** Packets of an earlier call whose MS-CHAPv2 exchange is not in the capture (no keys). */
  beforeHandshake: number;
  /** Decrypted packets whose plaintext is an IPv4 datagram with a right header checksum and length. */
  validIp: number;
  /** Plaintexts whose protocol field was sent in full (two octets) despite PFC. */
  fullProtocolField: number;
  /** Header of every packet: A (flushed) and D (encrypted) set, as in stateless mode. */
  flushedAndEncrypted: number;
}

export interface CaptureReport {
  file: string;
  linktype: number;
  records: number;
  /** Records without an IPv4 packet, by reason (802.11 control frames, ARP, ...). */
  nonIp: Map<string, number>;
  /** 802.11 frames dropped for a wrong FCS (a corrupted frame, retransmitted by the sender). */
  badFcs: number;
  /** The server's address (TCP 1723 side, or given). */
  server: string | undefined;
  control: Record<Dir, ControlMessage[]>;
  /** TCP segments (or parts) repeating bytes already seen, per direction. */
  tcpDuplicates: number;
  gre: {
    packets: Record<Dir, number>;
    /** Packets without a payload (acknowledgement only). */
    ackOnly: Record<Dir, number>;
    /** Repeated sequence numbers (802.11 duplicates, duplicated IP packets). */
    duplicates: number;
    firstSeq: Partial<Record<Dir, number>>;
    firstAck: Partial<Record<Dir, number>>;
    callIds: Set<number>;
  };
  /** PPP frames by protocol, duplicates excluded. */
  frames: Map<number, number>;
  /** Option types seen in Configure-Request/Ack/Nak/Reject, by protocol. */
  optionTypes: Map<number, Set<number>>;
  /** LCP Authentication-Protocol values (hex protocol [+ algorithm]) seen in options. */
  authOptions: Set<string>;
  /** Control packet codes seen, by protocol. */
  codes: Map<number, Set<number>>;
  /** LCP Identification messages (code 12): text after the magic number. */
  identifications: string[];
  chap: {
    challenges: number;
    responses: number;
    successes: string[];
    failures: string[];
    names: string[];
    /** With a known password: the NT-Response of each Response was recomputed and matched. */
    ntResponseOk: boolean[];
    /** With a known password: the S= of each Success was checked. */
    authenticatorOk: boolean[];
  };
  pap: { requests: string[]; acks: number };
  /** The MPPE option value of every CCP Configure-Ack. */
  ccpAcked: number[];
  mppe: Record<Dir, MppeCount>;
  /** Unencrypted IPv4 datagrams in PPP (protocol 0x21). */
  plainIp: number;
  /** Every decode failure, with the record number. */
  errors: string[];
}

const dirs = <T>(f: () => T): Record<Dir, T> => ({ c2s: f(), s2c: f() });

function newMppeCount(): MppeCount {
  return {
    packets: 0,
    unique: 0,
    decrypted: 0,
    beforeHandshake: 0,
    validIp: 0,
    fullProtocolField: 0,
    flushedAndEncrypted: 0,
  };
}

function add<K>(m: Map<K, Set<number>>, k: K, v: number): void {
  const s = m.get(k) ?? new Set<number>();
  m.set(k, s);
  s.add(v);
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** A valid IPv4 datagram: version 4, header checksum right, Total Length = the bytes present. */
export function isValidIpv4Datagram(p: Uint8Array): boolean {
  try {
    const ip = parseIpv4(p);
    return ip.checksumOk && ip.header.length + ip.payload.length === p.length;
  } catch {
    return false;
  }
}

export interface AnalyzeOptions {
  /** Password of the MS-CHAPv2 exchange: check the digests and decrypt MPPE. */
  credentials?: Credentials;
  /** The server's address when the capture has no TCP 1723 handshake to tell. */
  server?: string;
}

export function analyzeCapture(path: string, opts: AnalyzeOptions = {}): CaptureReport {
  const pcap = readPcap(readFileSync(path));
  const r: CaptureReport = {
    file: path,
    linktype: pcap.linktype,
    records: pcap.records.length,
    nonIp: new Map(),
    badFcs: 0,
    server: opts.server,
    control: dirs(() => []),
    tcpDuplicates: 0,
    gre: {
      packets: dirs(() => 0),
      ackOnly: dirs(() => 0),
      duplicates: 0,
      firstSeq: {},
      firstAck: {},
      callIds: new Set(),
    },
    frames: new Map(),
    optionTypes: new Map(),
    authOptions: new Set(),
    codes: new Map(),
    identifications: [],
    chap: {
      challenges: 0,
      responses: 0,
      successes: [],
      failures: [],
      names: [],
      ntResponseOk: [],
      authenticatorOk: [],
    },
    pap: { requests: [], acks: 0 },
    ccpAcked: [],
    mppe: dirs(newMppeCount),
    plainIp: 0,
    errors: [],
  };
  const streams = new Map<string, TcpReassembler>();
  const seenSeq = dirs(() => new Set<number>());
  // MS-CHAPv2 state for key derivation.
  let challenge: Uint8Array | undefined;
  let response: { peerChallenge: Uint8Array; ntResponse: Uint8Array; name: Uint8Array } | undefined;
  let decryptors: Record<Dir, MppeDecryptor> | undefined;
  let mppeBits: MppeBits = 128;
  let stateless = true;

  const fail = (index: number, what: string, e: unknown) => {
    const msg = e instanceof Error ? e.message : String(e);
    r.errors.push(`#${index + 1}: ${what}: ${msg}`);
  };

  // The server is the TCP 1723 end; without TCP (GRE-only captures) it must be given.
  if (!r.server) {
    for (const rec of pcap.records) {
      const l = linkPayload(pcap.linktype, rec.data);
      if (l.kind !== 'ipv4') continue;
      const ip = parseIpv4(l.ip);
      if (ip.protocol !== IPPROTO_TCP) continue;
      const t = parseTcp(ip.payload);
      if (t.dstPort === PPTP_PORT) r.server = ip.dst;
      else if (t.srcPort === PPTP_PORT) r.server = ip.src;
      if (r.server) break;
    }
  }

  const keysReady = () => {
    if (!opts.credentials || !challenge || !response || decryptors) return;
    const hash = ntPasswordHash(opts.credentials.password);
    const server = mppeKeysFromMschapV2(hash, response.ntResponse, 'server').startKeys(mppeBits);
    const client = mppeKeysFromMschapV2(hash, response.ntResponse, 'client').startKeys(mppeBits);
    decryptors = {
      c2s: createMppe(server, { bits: mppeBits, stateless }).decryptor,
      s2c: createMppe(client, { bits: mppeBits, stateless }).decryptor,
    };
  };

  const controlPacket = (protocol: number, info: Uint8Array) => {
    const layer = protocol === PppProtocol.LCP ? 'lcp' : protocol === PppProtocol.CCP ? 'ccp' : 'ipcp';
    const p = decodeControlPacket(info, layer);
    add(r.codes, protocol, p.code);
    if (protocol === PPP_CBCP) return; // CBCP's own codes and options: not negotiated by poptop
    if (p.code >= PacketCode.ConfigureRequest && p.code <= PacketCode.ConfigureReject) {
      const options = decodeOptions(p.data, layer);
      for (const o of options) {
        add(r.optionTypes, protocol, o.type);
        if (protocol === PppProtocol.LCP) {
          describeLcpOption(o);
          if (o.type === LcpOption.AuthProtocol) {
            const proto = (o.data[0]! << 8) | o.data[1]!;
            if (decodeAuthData(o.data) === undefined && proto !== PPP_EAP) {
              throw new Error(`unknown authentication protocol ${hex(o.data)}`);
            }
            r.authOptions.add(hex(o.data));
          }
        }
        if (protocol === PppProtocol.CCP && o.type === CcpOption.MPPE) {
          const value = mppeValue(o);
          if (value === undefined) throw new Error(`MPPE option of ${o.data.length} octets`);
          if (p.code === PacketCode.ConfigureAck) {
            r.ccpAcked.push(value);
            const s = strengthsIn(value);
            if (s.length === 1) mppeBits = s[0]!;
            stateless = (value & MppeBit.H) !== 0;
          }
        }
      }
    }
    if (protocol === PppProtocol.LCP && p.code === PacketCode.Identification) {
      if (p.data.length < 4) throw new Error('LCP Identification without a magic number');
      r.identifications.push(Buffer.from(p.data.subarray(4)).toString('latin1'));
    }
  };

  const pppFrame = (dir: Dir, bytes: Uint8Array) => {
    const f = decodeFrame(bytes);
    r.frames.set(f.protocol, (r.frames.get(f.protocol) ?? 0) + 1);
    switch (f.protocol) {
      case PppProtocol.LCP:
      case PppProtocol.IPCP:
      case PppProtocol.IPV6CP:
      case PppProtocol.CCP:
      case PPP_CBCP:
        controlPacket(f.protocol, f.info);
        return;
      case PppProtocol.PAP: {
        const p = decodePapPacket(f.info);
        if ('peerId' in p) r.pap.requests.push(Buffer.from(p.peerId).toString('latin1'));
        else if (p.code === 2) r.pap.acks++;
        return;
      }
      case PppProtocol.CHAP: {
        const p = decodeChapPacket(f.info);
        if (p.code === 1) {
          r.chap.challenges++;
          challenge = p.value.slice();
        } else if (p.code === 2) {
          r.chap.responses++;
          r.chap.names.push(Buffer.from(p.name).toString('latin1'));
          if (p.value.length !== MSCHAPV2_RESPONSE_LENGTH) return;
          response = {
            peerChallenge: p.value.slice(0, 16),
            ntResponse: p.value.slice(MSCHAPV2_OFFSET_NT_RESPONSE, MSCHAPV2_OFFSET_NT_RESPONSE + 24),
            name: p.name.slice(),
          };
          if (opts.credentials && challenge) {
            const expect = generateNtResponse(
              challenge,
              response.peerChallenge,
              response.name,
              ntPasswordHash(opts.credentials.password),
            );
            r.chap.ntResponseOk.push(hex(expect) === hex(response.ntResponse));
          }
        } else if (p.code === 3) {
          const text = Buffer.from(p.message).toString('latin1');
          r.chap.successes.push(text);
          if (opts.credentials && challenge && response) {
            r.chap.authenticatorOk.push(
              checkAuthenticatorResponse(
                ntPasswordHash(opts.credentials.password),
                response.ntResponse,
                response.peerChallenge,
                challenge,
                response.name,
                text.slice(0, 42),
              ),
            );
          }
        } else if (p.code === 4) {
          r.chap.failures.push(Buffer.from(p.message).toString('latin1'));
        }
        return;
      }
      case PppProtocol.COMPRESSED: {
        const m = r.mppe[dir];
        m.unique++;
        if ((f.info[0]! & 0x90) === 0x90) m.flushedAndEncrypted++;
        keysReady();
        if (!decryptors) {
          m.beforeHandshake++;
          return;
        }
        const plain = decryptors[dir].decrypt(f.info.slice());
        if (!plain) throw new Error(`MPPE packet not decrypted (header ${hex(f.info.subarray(0, 2))})`);
        m.decrypted++;
        const inner = decodeFrame(plain);
        if (plain[0] === 0x00) m.fullProtocolField++;
        if (inner.protocol !== PppProtocol.IP) {
          throw new Error(`decrypted protocol 0x${inner.protocol.toString(16)} (not IP)`);
        }
        if (!isValidIpv4Datagram(inner.info)) throw new Error('decrypted IPv4 datagram is invalid');
        m.validIp++;
        return;
      }
      case PppProtocol.IP:
        if (!isValidIpv4Datagram(f.info)) throw new Error('IPv4 datagram in PPP is invalid');
        r.plainIp++;
        return;
      default:
        throw new Error(`PPP protocol 0x${f.protocol.toString(16)} not expected`);
    }
  };

  const fcs = pcap.linktype === Linktype.IEEE802_11 && ieee80211HasFcs(pcap.records);
  for (const rec of pcap.records) {
    if (fcs && !ieee80211FcsOk(rec.data)) {
      r.badFcs++;
      continue;
    }
    const l = linkPayload(pcap.linktype, rec.data);
    if (l.kind !== 'ipv4') {
      r.nonIp.set(l.why, (r.nonIp.get(l.why) ?? 0) + 1);
      continue;
    }
    let ip: ReturnType<typeof parseIpv4>;
    try {
      ip = parseIpv4(l.ip);
    } catch (e) {
      fail(rec.index, 'IPv4', e);
      continue;
    }
    if (ip.fragment) {
      fail(rec.index, 'IPv4', 'fragment');
      continue;
    }
    const dir: Dir = ip.dst === r.server ? 'c2s' : 's2c';
    if (ip.protocol === IPPROTO_TCP) {
      const t = parseTcp(ip.payload);
      if (t.srcPort !== PPTP_PORT && t.dstPort !== PPTP_PORT) continue;
      const key = `${ip.src}:${t.srcPort}>${ip.dst}:${t.dstPort}`;
      const s = streams.get(key) ?? new TcpReassembler();
      streams.set(key, s);
      s.add(t);
    } else if (ip.protocol === IPPROTO_GRE) {
      let h: ReturnType<typeof decodeGreHeader>;
      try {
        h = decodeGreHeader(ip.payload);
      } catch (e) {
        fail(rec.index, 'GRE', e);
        continue;
      }
      r.gre.callIds.add(h.callId);
      if (h.seq !== undefined) {
        if (seenSeq[dir].has(h.seq)) {
          r.gre.duplicates++;
          if (h.payloadLength > 0) r.mppe[dir].packets += isMppe(ip.payload, h) ? 1 : 0;
          continue;
        }
        seenSeq[dir].add(h.seq);
        r.gre.firstSeq[dir] ??= h.seq;
      }
      if (h.ack !== undefined) r.gre.firstAck[dir] ??= h.ack;
      r.gre.packets[dir]++;
      if (h.payloadLength === 0) {
        r.gre.ackOnly[dir]++;
        continue;
      }
      const payload = ip.payload.subarray(h.headerLength, h.headerLength + h.payloadLength);
      if (isMppe(ip.payload, h)) r.mppe[dir].packets++;
      try {
        pppFrame(dir, payload);
      } catch (e) {
        fail(rec.index, `PPP ${dir}`, e);
      }
    }
  }

  for (const [key, s] of streams) {
    r.tcpDuplicates += s.duplicates;
    if (s.stranded > 0) r.errors.push(`TCP ${key}: ${s.stranded} bytes behind a gap`);
    const dir: Dir = key.endsWith(`>${r.server}:${PPTP_PORT}`) ? 'c2s' : 's2c';
    const framer = new ControlFramer();
    try {
      for (const chunk of s.segments()) {
        framer.push(chunk);
        for (let m = framer.next(); m; m = framer.next()) r.control[dir].push(m);
      }
      if (framer.buffered > 0) r.errors.push(`TCP ${key}: ${framer.buffered} bytes of a partial message`);
    } catch (e) {
      r.errors.push(`PPTP ${key}: ${isProtocolError(e) ? `${e.code} ${e.message}` : String(e)}`);
    }
  }
  return r;
}

function isMppe(gre: Uint8Array, h: { headerLength: number; payloadLength: number }): boolean {
  if (h.payloadLength === 0) return false;
  try {
    return (
      decodeFrame(gre.subarray(h.headerLength, h.headerLength + h.payloadLength)).protocol ===
      PppProtocol.COMPRESSED
    );
  } catch {
    return false;
  }
}

/** Every option type poptop knows by name, per protocol (negotiated or deliberately refused). */
export const KNOWN_OPTION_TYPES = new Map<number, Set<number>>([
  [PppProtocol.LCP, new Set<number>(Object.values(LcpOption))],
  [PppProtocol.IPCP, new Set<number>(Object.values(IpcpOption))],
  [PppProtocol.IPV6CP, new Set<number>(Object.values(Ipv6cpOption))],
  [PppProtocol.CCP, new Set<number>(Object.values(CcpOption))],
]);
