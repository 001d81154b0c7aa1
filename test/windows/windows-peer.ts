/**
 * A test peer with the personality of the Windows built-in PPTP client, modelled packet for packet
 * on the real sessions in ../shared/captures (pptpcrack_test.pcap: Windows 10 era; the john_*
 * captures: Windows 7; asleap_pptp.dump and tcpdump_pptp.pcap: Windows 2000). Built from poptop's
 * codecs and crypto, it plays the PNS and the PPP peer over a real TCP connection and a GRE port
 * of the in-memory network, as a script of what Windows sends and what it expects back:
 *
 * - SCCRQ: framing 1, bearer 1, 0 channels, empty Host Name, vendor "Microsoft" (2000: "Microsoft
 *   Windows NT", firmware 2195); OCRQ: 300..100,000,000 bps, bearer 3, framing 3, window 64.
 * - Set-Link-Info (ACCMs all ones) right after the Outgoing-Call-Reply and again after LCP opens.
 * - LCP: a server Configure-Request that arrives before Windows has sent its own is dropped; own
 *   request MRU 1400, Magic, PFC, ACFC, Callback (op 6) (2000: Magic, PFC, ACFC, Callback, MRRU
 *   1614, Endpoint Discriminator class 1); Rejected options are dropped, Naks taken; EAP is Nak-ed
 *   towards MS-CHAPv2 as Windows does.
 * - Three LCP Identification packets after LCP opens (MSRASV5.x, MSRAS-<n>-<HOST>, 16 octets).
 * - MS-CHAPv2 with a random peer challenge, the bare user name, the S= checked.
 * - CCP: H+128 (Windows 7+) or MPPC+40+56+128 with H (2000); IPCP asking for 0.0.0.0, DNS and
 *   NBNS primary and secondary; an IPv6CP Configure-Request; restart timer 2 s.
 * - MPPE payloads that carry the full 2-octet protocol field (Windows does not compress it).
 * - Teardown: Set-Link-Info, LCP Terminate-Request with binary data, Call-Clear-Request,
 *   Stop-Control-Connection-Request (reason 1).
 *
 * Time: the server runs on a ManualClock; `pump` advances it in small steps while the peer waits,
 * so retransmission timers fire in virtual time and the test never sleeps.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { checkAuthenticatorResponse, generateNtResponse, ntPasswordHash } from '../../src/crypto/mschap.ts';
import { decodeGreHeader, encodeGrePacket } from '../../src/gre/codec.ts';
import type { MemoryGrePort } from '../../src/net/memory.ts';
import { ChapCode, decodeChapPacket, encodeChapPacket } from '../../src/ppp/auth/chap-codec.ts';
import { encodeMschapV2Response } from '../../src/ppp/auth/mschapv2.ts';
import { CcpOption, mppeValue } from '../../src/ppp/ccp/mppe-option.ts';
import { PacketCode, PppProtocol } from '../../src/ppp/constants.ts';
import { decodeFrame, encodeFrame } from '../../src/ppp/frame.ts';
import { IpcpOption } from '../../src/ppp/ipcp/handler.ts';
import { decodeAuthData, LcpOption } from '../../src/ppp/lcp/options.ts';
import { createMppe } from '../../src/ppp/mppe/cipher.ts';
import { mppeKeysFromMschapV2 } from '../../src/ppp/mppe/keys.ts';
import type { MppeDecryptor, MppeEncryptor } from '../../src/ppp/mppe/types.ts';
import {
  type ConfigOption,
  decodeOptions,
  encodeOptions,
  readU32,
  u16Option,
  u32Option,
} from '../../src/ppp/options.ts';
import { decodeControlPacket, encodeControlPacket } from '../../src/ppp/packet.ts';
import { encodeControlMessage } from '../../src/pptp/codec.ts';
import { ControlFramer } from '../../src/pptp/framer.ts';
import type { ControlMessage, ControlMessageName, MessageOf } from '../../src/pptp/messages.ts';
import type { ManualClock } from '../../src/util/clock.ts';
import type { IPv4 } from '../../src/wire/ip.ts';
import { outgoingCallRequest } from '../support/pptp-messages.ts';

export type WindowsVersion = 'win10' | 'win2000';

export interface WindowsPeerOptions {
  version: WindowsVersion;
  clock: ManualClock;
  gre: MemoryGrePort;
  server: IPv4;
  port: number;
  localAddress: string;
  user: string;
  password: string;
}

/** One PPP control packet received, already decoded. */
export interface Received {
  protocol: number;
  code: number;
  id: number;
  data: Uint8Array;
}

const WINDOWS_RESTART_MS = 2000;
const OPTION_CALLBACK_CBCP = 6;

/** Everything the peer saw and did, for the test's assertions. */
export interface PeerLog {
  /** Server LCP Configure-Requests dropped because ours was not sent yet. */
  droppedServerConfReqs: number;
  /** Every PPP control packet received, in order. */
  received: Received[];
  /** Control messages received on TCP. */
  control: ControlMessage[];
  /** Our LCP options as finally acked. */
  lcpAcked: ConfigOption[];
  /** MPPE option value acked for our CCP request. */
  ccpAcked: number | undefined;
  /** IPCP values acked for our request: address and the four servers (0 = rejected). */
  ipcp: { address: number; dns1: number; nbns1: number; dns2: number; nbns2: number } | undefined;
  ipv6cpRejected: boolean;
}

/** A generic Configure-Request negotiation of one protocol, Windows style (2 s restart). */
class Negotiation {
  readonly protocol: number;
  options: ConfigOption[];
  id: number;
  acked = false;
  /** Server's request acked by us. */
  theirsAcked = false;
  sentAt = Number.NEGATIVE_INFINITY;
  stopped = false;
  constructor(protocol: number, options: ConfigOption[], firstId: number) {
    this.protocol = protocol;
    this.options = options;
    this.id = firstId;
  }
}

export class WindowsPeer {
  readonly log: PeerLog = {
    droppedServerConfReqs: 0,
    received: [],
    control: [],
    lcpAcked: [],
    ccpAcked: undefined,
    ipcp: undefined,
    ipv6cpRejected: false,
  };
  private readonly o: WindowsPeerOptions;
  private socket: Socket | undefined;
  private readonly framer = new ControlFramer();
  private readonly controlQueue: ControlMessage[] = [];
  private tcpClosed = false;
  private readonly callId: number;
  private peerCallId = -1;
  private seq = 0;
  private lastSeqReceived: number | undefined;
  private ackPending = false;
  private readonly magic: number;
  private lcpOpen = false;
  private encryptor: MppeEncryptor | undefined;
  private decryptor: MppeDecryptor | undefined;
  /** Decrypted IP datagrams received. */
  readonly ipReceived: Uint8Array[] = [];
  /** Inner protocol field length of every MPPE plaintext the server sent (1 or 2 octets). */
  readonly innerProtocolLengths: number[] = [];
  private ntResponse: Uint8Array | undefined;
  private authDone: 'success' | 'failure' | undefined;
  private identId = 0;

  constructor(o: WindowsPeerOptions) {
    this.o = o;
    this.callId = o.version === 'win2000' ? 0 : 40265; // as in asleap_pptp.dump / pptpcrack_test.pcap
    this.magic = 0x75eb25d5;
    o.gre.onPacket((packet, from) => {
      if (from === o.server) this.onGre(packet);
    });
  }

  /** Advance the server's clock in 1 ms steps, yielding to I/O, until `cond` or `virtualMs` pass. */
  async pump(cond: () => boolean, virtualMs: number, what: string): Promise<void> {
    const until = this.o.clock.now() + virtualMs;
    const realDeadline = Date.now() + 20_000;
    while (!cond()) {
      if (this.o.clock.now() >= until || Date.now() > realDeadline) {
        throw new Error(`Windows peer: no ${what} within ${virtualMs} ms`);
      }
      this.o.clock.advance(1);
      this.maybeRetransmit();
      await new Promise((r) => setImmediate(r));
    }
  }

  // --- PPTP control ---------------------------------------------------------------------------

  async connect(): Promise<void> {
    // No Nagle: a Set-Link-Info (which has no answer) would hold the next one back until the
    // server's delayed ACK, 40 ms of real time, while the test's clock runs seconds ahead.
    const s = connect({
      host: '127.0.0.1',
      port: this.o.port,
      localAddress: this.o.localAddress,
      noDelay: true,
    });
    this.socket = s;
    s.on('data', (chunk: Buffer) => {
      this.framer.push(new Uint8Array(chunk));
      for (let m = this.framer.next(); m; m = this.framer.next()) {
        this.log.control.push(m);
        if (m.type === 'echo-request') {
          // The PPTP keepalive (RFC 2637 §2.5): answered at once, as Windows does.
          this.sendControl({ type: 'echo-reply', identifier: m.identifier, resultCode: 1, errorCode: 0 });
          continue;
        }
        this.controlQueue.push(m);
      }
    });
    s.on('close', () => {
      this.tcpClosed = true;
    });
    s.on('error', () => {
      this.tcpClosed = true;
    });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
  }

  sendControl(m: ControlMessage): void {
    this.socket!.write(encodeControlMessage(m));
  }

  async expectControl<T extends ControlMessageName>(type: T, virtualMs = 5000): Promise<MessageOf<T>> {
    let found: MessageOf<T> | undefined;
    await this.pump(
      () => {
        const i = this.controlQueue.findIndex((m) => m.type === type);
        if (i >= 0) found = this.controlQueue.splice(i, 1)[0] as MessageOf<T>;
        return found !== undefined;
      },
      virtualMs,
      type,
    );
    return found!;
  }

  async startControl(): Promise<MessageOf<'start-control-connection-reply'>> {
    const win2000 = this.o.version === 'win2000';
    this.sendControl({
      type: 'start-control-connection-request',
      protocolVersion: 0x0100,
      framingCapabilities: 1,
      bearerCapabilities: 1,
      maxChannels: 0,
      firmwareRevision: win2000 ? 2195 : 0,
      hostName: '',
      vendor: win2000 ? 'Microsoft Windows NT' : 'Microsoft',
    });
    return this.expectControl('start-control-connection-reply');
  }

  async call(): Promise<MessageOf<'outgoing-call-reply'>> {
    // As the captures show: window 64, a small serial number, no phone number.
    this.sendControl(outgoingCallRequest(this.callId, { callSerial: 19 }));
    const ocrp = await this.expectControl('outgoing-call-reply');
    this.peerCallId = ocrp.callId;
    this.setLinkInfo();
    return ocrp;
  }

  setLinkInfo(): void {
    this.sendControl({
      type: 'set-link-info',
      peerCallId: this.peerCallId,
      sendAccm: 0xffffffff,
      recvAccm: 0xffffffff,
    });
  }

  // --- GRE and PPP ----------------------------------------------------------------------------

  private onGre(packet: Uint8Array): void {
    const h = decodeGreHeader(packet);
    if (h.callId !== this.callId) return;
    if (h.seq !== undefined) {
      this.lastSeqReceived = h.seq;
      this.ackPending = true;
    }
    if (h.payloadLength === 0) return;
    const frame = decodeFrame(packet.subarray(h.headerLength, h.headerLength + h.payloadLength));
    if (frame.protocol === PppProtocol.COMPRESSED) {
      const plain = this.decryptor?.decrypt(frame.info.slice());
      if (!plain) throw new Error('Windows peer: an MPPE packet from the server did not decrypt');
      const inner = decodeFrame(plain);
      this.innerProtocolLengths.push(plain.length - inner.info.length);
      if (inner.protocol === PppProtocol.IP) this.ipReceived.push(inner.info.slice());
      return;
    }
    if (frame.protocol === PppProtocol.CHAP) {
      this.onChap(frame.info);
      return;
    }
    const p = decodeControlPacket(frame.info, 'lcp');
    const r = { protocol: frame.protocol, code: p.code, id: p.id, data: p.data.slice() };
    this.log.received.push(r);
    this.onControl(r);
  }

  /** Send one PPP frame in GRE (with our next sequence number and a piggy-backed ack). */
  private sendFrame(protocol: number, info: Uint8Array): void {
    // LCP keeps FF03 and the 2-octet protocol; after LCP opens Windows compresses the rest.
    const comp = this.lcpOpen ? { acfc: true, pfc: true } : { acfc: false, pfc: false };
    const frame = encodeFrame(protocol, info, comp);
    const ack = this.ackPending ? this.lastSeqReceived : undefined;
    this.ackPending = false;
    this.o.gre.send(encodeGrePacket({ callId: this.peerCallId, seq: this.seq++, ack }, frame), this.o.server);
  }

  private sendControlPacket(protocol: number, code: number, id: number, data: Uint8Array): void {
    this.sendFrame(protocol, encodeControlPacket(code, id, data));
  }

  // --- LCP and the NCPs: a reactive negotiation, Windows style -------------------------------

  private readonly negotiations = new Map<number, Negotiation>();

  private startNegotiation(protocol: number, options: ConfigOption[], firstId: number): Negotiation {
    const n = new Negotiation(protocol, options, firstId);
    this.negotiations.set(protocol, n);
    this.sendRequest(n);
    return n;
  }

  private sendRequest(n: Negotiation): void {
    n.sentAt = this.o.clock.now();
    this.sendControlPacket(n.protocol, PacketCode.ConfigureRequest, n.id, encodeOptions(n.options));
  }

  private maybeRetransmit(): void {
    for (const n of this.negotiations.values()) {
      if (n.acked || n.stopped) continue;
      if (this.o.clock.now() - n.sentAt >= WINDOWS_RESTART_MS) {
        n.id = (n.id + 1) & 0xff;
        this.sendRequest(n);
      }
    }
  }

  private onControl(r: Received): void {
    const n = this.negotiations.get(r.protocol);
    if (r.protocol === PppProtocol.LCP && r.code === PacketCode.ProtocolReject) {
      const rejected = (r.data[0]! << 8) | r.data[1]!;
      const m = this.negotiations.get(rejected);
      if (m) m.stopped = true;
      if (rejected === PppProtocol.IPV6CP) this.log.ipv6cpRejected = true;
      return;
    }
    if (r.protocol === PppProtocol.LCP && r.code === PacketCode.EchoRequest && this.lcpOpen) {
      // Windows answers the server's keepalive with its own Magic-Number and the same data.
      const reply = r.data.slice();
      reply.set(u32Option(0, this.magic).data, 0);
      this.sendControlPacket(PppProtocol.LCP, PacketCode.EchoReply, r.id, reply);
      return;
    }
    if (r.protocol === PppProtocol.LCP && r.code === PacketCode.TerminateRequest) {
      this.sendControlPacket(PppProtocol.LCP, PacketCode.TerminateAck, r.id, new Uint8Array(0));
      return;
    }
    switch (r.code) {
      case PacketCode.ConfigureRequest: {
        if (!n) {
          // Windows drops a server Configure-Request that arrives before its own (LCP).
          if (r.protocol === PppProtocol.LCP) this.log.droppedServerConfReqs++;
          return;
        }
        this.answerServerRequest(n, r);
        return;
      }
      case PacketCode.ConfigureAck:
        if (n && r.id === n.id) {
          n.acked = true;
          this.onAcked(n);
        }
        return;
      case PacketCode.ConfigureNak:
      case PacketCode.ConfigureReject: {
        if (!n || r.id !== n.id) return;
        const answer = decodeOptions(r.data, 'lcp');
        if (r.code === PacketCode.ConfigureReject) {
          n.options = n.options.filter((o) => !answer.some((a) => a.type === o.type));
        } else {
          n.options = n.options.map((o) => answer.find((a) => a.type === o.type) ?? o);
        }
        n.id = (n.id + 1) & 0xff;
        this.sendRequest(n);
        return;
      }
      case PacketCode.TerminateAck:
        // pppd answers an IPCP request sent before CCP is up with Terminate-Ack; Windows retries.
        return;
      default:
        return;
    }
  }

  /** Ack the server's request, or Nak EAP towards MS-CHAPv2 as Windows does. */
  private answerServerRequest(n: Negotiation, r: Received): void {
    const options = decodeOptions(r.data, 'lcp');
    if (r.protocol === PppProtocol.LCP) {
      const auth = options.find((o) => o.type === LcpOption.AuthProtocol);
      if (auth && decodeAuthData(auth.data) !== 'mschapv2') {
        const want = { type: LcpOption.AuthProtocol, data: new Uint8Array([0xc2, 0x23, 0x81]) };
        this.sendControlPacket(r.protocol, PacketCode.ConfigureNak, r.id, encodeOptions([want]));
        return;
      }
    }
    this.sendControlPacket(r.protocol, PacketCode.ConfigureAck, r.id, r.data);
    n.theirsAcked = true;
    if (r.protocol === PppProtocol.LCP) this.checkLcpOpen();
  }

  private onAcked(n: Negotiation): void {
    if (n.protocol === PppProtocol.LCP) {
      this.log.lcpAcked = n.options;
      this.checkLcpOpen();
    } else if (n.protocol === PppProtocol.CCP) {
      const o = n.options.find((x) => x.type === CcpOption.MPPE);
      this.log.ccpAcked = o ? mppeValue(o) : undefined;
    } else if (n.protocol === PppProtocol.IPCP) {
      const v = (t: number) => {
        const o = n.options.find((x) => x.type === t);
        return o ? readU32(o.data) : 0;
      };
      this.log.ipcp = {
        address: v(IpcpOption.IPAddress),
        dns1: v(IpcpOption.PrimaryDns),
        nbns1: v(IpcpOption.PrimaryNbns),
        dns2: v(IpcpOption.SecondaryDns),
        nbns2: v(IpcpOption.SecondaryNbns),
      };
    }
  }

  private checkLcpOpen(): void {
    const lcp = this.negotiations.get(PppProtocol.LCP);
    if (lcp?.acked && lcp.theirsAcked) this.lcpOpen = true;
  }

  /** LCP until opened; then the second Set-Link-Info and the three Identification packets. */
  async lcp(): Promise<void> {
    // The server's first Configure-Request comes right after the OCRP: Windows drops it.
    await this.pump(() => this.log.droppedServerConfReqs > 0, 5000, 'server LCP Configure-Request');
    const win2000 = this.o.version === 'win2000';
    const options: ConfigOption[] = [
      ...(win2000 ? [] : [u16Option(LcpOption.MRU, 1400)]),
      u32Option(LcpOption.MagicNumber, this.magic),
      { type: LcpOption.PFC, data: new Uint8Array(0) },
      { type: LcpOption.ACFC, data: new Uint8Array(0) },
      { type: LcpOption.Callback, data: new Uint8Array([OPTION_CALLBACK_CBCP]) },
      ...(win2000
        ? [
            u16Option(LcpOption.MRRU, 1614),
            { type: LcpOption.EndpointDiscriminator, data: new Uint8Array([1, ...randomBytes(20)]) },
          ]
        : []),
    ];
    this.startNegotiation(PppProtocol.LCP, options, 0);
    await this.pump(() => this.lcpOpen, 15_000, 'LCP to open');
    this.setLinkInfo();
    const host = win2000 ? 'MSRAS-1-PC-4' : 'MSRAS-0-WIN-PEER';
    for (const text of [
      new TextEncoder().encode(win2000 ? 'MSRASV5.00' : 'MSRASV5.20'),
      new TextEncoder().encode(host),
      ...(win2000 ? [] : [randomBytes(16)]),
    ]) {
      const data = new Uint8Array(4 + text.length);
      data.set(u32Option(0, this.magic).data, 0);
      data.set(text, 4);
      this.sendControlPacket(PppProtocol.LCP, PacketCode.Identification, ++this.identId, data);
    }
  }

  // --- MS-CHAPv2 ------------------------------------------------------------------------------

  private onChap(info: Uint8Array): void {
    const p = decodeChapPacket(info);
    if (p.code === ChapCode.Challenge) {
      const peerChallenge = randomBytes(16);
      const hash = ntPasswordHash(this.o.password);
      const nt = generateNtResponse(p.value, peerChallenge, this.o.user, hash);
      this.ntResponse = nt;
      this.chapState = { challenge: p.value.slice(), peerChallenge };
      this.sendFrame(
        PppProtocol.CHAP,
        encodeChapPacket({
          code: ChapCode.Response,
          id: p.id,
          value: encodeMschapV2Response(peerChallenge, nt),
          name: new TextEncoder().encode(this.o.user),
        }),
      );
    } else if (p.code === ChapCode.Success && this.chapState && this.ntResponse) {
      const text = Buffer.from(p.message).toString('latin1');
      const ok = checkAuthenticatorResponse(
        ntPasswordHash(this.o.password),
        this.ntResponse,
        this.chapState.peerChallenge,
        this.chapState.challenge,
        this.o.user,
        text.slice(0, 42),
      );
      this.authDone = ok ? 'success' : 'failure';
    } else if (p.code === ChapCode.Failure) {
      this.authDone = 'failure';
    }
  }

  private chapState: { challenge: Uint8Array; peerChallenge: Uint8Array } | undefined;

  async authenticate(): Promise<'success' | 'failure'> {
    await this.pump(() => this.authDone !== undefined, 10_000, 'MS-CHAPv2 to finish');
    return this.authDone!;
  }

  // --- NCPs -----------------------------------------------------------------------------------

  /** CCP, IPCP (asked at once, as Windows does) and IPv6CP; resolves when CCP and IPCP are acked both ways. */
  async ncps(): Promise<void> {
    const offer = this.o.version === 'win2000' ? 0x010000e1 : 0x01000040;
    this.startNegotiation(PppProtocol.CCP, [u32Option(CcpOption.MPPE, offer)], 5);
    const zero = (t: number) => u32Option(t, 0);
    this.startNegotiation(
      PppProtocol.IPCP,
      [
        zero(IpcpOption.IPAddress),
        zero(IpcpOption.PrimaryDns),
        zero(IpcpOption.PrimaryNbns),
        zero(IpcpOption.SecondaryDns),
        zero(IpcpOption.SecondaryNbns),
      ],
      6,
    );
    if (this.o.version === 'win10') {
      this.startNegotiation(PppProtocol.IPV6CP, [{ type: 1, data: randomBytes(8) }], 4);
    }
    const done = (p: number) => {
      const n = this.negotiations.get(p);
      return !!n && n.acked && n.theirsAcked;
    };
    await this.pump(() => done(PppProtocol.CCP) && done(PppProtocol.IPCP), 20_000, 'CCP and IPCP');
    const keys = mppeKeysFromMschapV2(ntPasswordHash(this.o.password), this.ntResponse!, 'client').startKeys(
      128,
    );
    const mppe = createMppe(keys, { bits: 128, stateless: true });
    this.encryptor = mppe.encryptor;
    this.decryptor = mppe.decryptor;
  }

  /** Send an IP datagram, encrypted, with the full 2-octet protocol field inside (as Windows does). */
  sendIp(datagram: Uint8Array): void {
    const plain = new Uint8Array(2 + datagram.length);
    plain[1] = PppProtocol.IP;
    plain.set(datagram, 2);
    this.sendFrame(PppProtocol.COMPRESSED, this.encryptor!.encrypt(plain));
  }

  // --- Teardown -------------------------------------------------------------------------------

  /** Set-Link-Info, LCP Terminate-Request (binary data as in the captures), Call-Clear, Stop-CCRQ. */
  async hangUp(): Promise<{
    termAck: boolean;
    cdn: MessageOf<'call-disconnect-notify'>;
    stop: MessageOf<'stop-control-connection-reply'>;
  }> {
    this.setLinkInfo();
    const termData = new Uint8Array([0x16, 0x2a, 0x1f, 0x3a, 0x00, 0x3c, 0xcd, 0x74, 0, 0, 0, 0]);
    const termId = 9;
    const acksBefore = this.log.received.length;
    this.sendControlPacket(PppProtocol.LCP, PacketCode.TerminateRequest, termId, termData);
    let termAck = false;
    await this.pump(
      () =>
        (termAck = this.log.received
          .slice(acksBefore)
          .some(
            (r) => r.protocol === PppProtocol.LCP && r.code === PacketCode.TerminateAck && r.id === termId,
          )),
      5000,
      'LCP Terminate-Ack',
    );
    this.sendControl({ type: 'call-clear-request', callId: this.callId });
    const cdn = await this.expectControl('call-disconnect-notify');
    this.sendControl({ type: 'stop-control-connection-request', reason: 1 });
    const stop = await this.expectControl('stop-control-connection-reply');
    this.socket!.end();
    await this.pump(() => this.tcpClosed, 5000, 'TCP close');
    return { termAck, cdn, stop };
  }

  get ourCallId(): number {
    return this.callId;
  }

  /** After a failed step: the TCP connection closed at once, so nothing keeps the test process alive. */
  destroy(): void {
    this.socket?.destroy();
  }
}
