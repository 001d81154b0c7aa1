import type { IPv4 } from '../net/ip.ts';
import type { Clock } from '../util/clock.ts';
import type { DropCounter } from '../util/counters.ts';
import type { Logger } from '../util/log.ts';
import { CcpHandler } from './ccp/handler.ts';
import { PacketCode, PppProtocol } from './constants.ts';
import { type FrameCompression, frameHeaderLength, writeFrameHeader } from './frame.ts';
import { Fsm, type FsmState } from './fsm.ts';
import { IpcpHandler, type IpcpResult } from './ipcp/handler.ts';
import { Ipv6cpHandler, type Ipv6cpResult } from './ipv6cp/handler.ts';
import type { MppeDecryptor, MppeEncryptor, MppeFactory, MppeKeySource, MppeSettings } from './mppe/types.ts';
import type { NcpEvents } from './ncp.ts';
import { fsmConfig, type PppPolicy } from './policy.ts';

/** What the link reports when the network phase is up (IPCP, and CCP/IPv6CP when run, settled). */
export interface NetworkInfo extends IpcpResult {
  /** MPPE in use (same settings both ways), or null when CCP did not bring MPPE up. */
  mppe: MppeSettings | null;
  /** IPv6CP result, or null when IPv6CP is disabled or did not open. */
  ipv6: Ipv6cpResult | null;
  /** The largest IP packet we send: our mtu, limited by the peer's MRU less MPPE overhead. */
  mtu: number;
}

export interface NetworkHost {
  role: 'server' | 'client';
  policy: PppPolicy;
  clock: Clock;
  log: Logger;
  random(): number;
  drops: DropCounter;
  mppe: MppeFactory | undefined;
  peerMru(): number;
  sendProtocol(protocol: number, info: Uint8Array): void;
  /** Header compression in force for non-LCP frames, and a raw send for prebuilt frames. */
  compression(): FrameCompression;
  sendFrame(frame: Uint8Array): void;
  closeLink(reason: string): void;
  networkUp(info: NetworkInfo): void;
  deliverIp(packet: Uint8Array): void;
  deliverIpv6(packet: Uint8Array): void;
}

/** Stateful MPPE: a Reset-Request is repeated after this long while packets are still discarded. */
const RESET_REPEAT_MS = 1000;
/** MPPE packet header (2) + a 2-octet protocol field inside the encrypted part (RFC 3078 §3). */
const MPPE_OVERHEAD = 4;
const SETTLED: ReadonlySet<FsmState> = new Set(['opened', 'initial', 'starting', 'closed', 'stopped']);

/**
 * The Network phase (RFC 1661 §3.5): IPCP always, IPv6CP with +ipv6, CCP when authentication gave
 * MPPE keys; and the data path of IPv4/IPv6 through MPPE. When MPPE is required no IP passes
 * unencrypted, and once MPPE is up unencrypted IP from the peer is dropped too.
 */
export class NetworkPhase {
  private readonly host: NetworkHost;
  readonly ipcp: Fsm;
  readonly ipv6cp: Fsm | undefined;
  readonly ccp: Fsm;
  private readonly ipcpHandler: IpcpHandler;
  private ccpRunning = false;
  private keys: MppeKeySource | undefined;
  private ipcpResult: IpcpResult | undefined;
  private ipv6Result: Ipv6cpResult | null = null;
  private mppeSettings: MppeSettings | null = null;
  private crypto: { encryptor: MppeEncryptor; decryptor: MppeDecryptor } | undefined;
  private reported = false;
  /** Between start() and stop(): NCP failures are acted on. */
  private active = false;
  /** IPCP/IPv6CP get their Up event only when MPPE is up. */
  private waitForCcp = false;
  /** Stateful MPPE: when our unanswered Reset-Request went out (no packet decrypted since), or undefined. */
  private resetSentAt: number | undefined;

  constructor(host: NetworkHost) {
    this.host = host;
    const cfg = fsmConfig(host.policy, 'ncp');
    const fsmHost = (protocol: number) => ({
      clock: host.clock,
      log: host.log,
      send: (p: Uint8Array) => host.sendProtocol(protocol, p),
      peerMru: () => host.peerMru(),
    });
    this.ipcpHandler = new IpcpHandler({
      role: host.role,
      policy: host.policy,
      events: this.ncpEvents('IPCP', (r) => {
        this.ipcpResult = r;
      }),
    });
    this.ipcp = new Fsm(this.ipcpHandler, cfg, fsmHost(PppProtocol.IPCP));
    if (host.policy.ipv6) {
      const h = new Ipv6cpHandler({
        random: host.random,
        events: this.ncpEvents('IPv6CP', (r) => {
          this.ipv6Result = r;
        }),
      });
      this.ipv6cp = new Fsm(h, cfg, fsmHost(PppProtocol.IPV6CP));
    }
    const ccpEvents = this.ncpEvents<MppeSettings | null>('CCP', (s) => this.startMppe(s));
    const ccpHandler = new CcpHandler({
      policy: host.policy,
      log: host.log,
      events: {
        ...ccpEvents,
        resetRequested: (id) => {
          this.ccp.sendExtra(PacketCode.ResetAck, new Uint8Array(0), id);
          this.crypto?.encryptor.resetRequested();
        },
      },
    });
    this.ccp = new Fsm(ccpHandler, cfg, fsmHost(PppProtocol.CCP));
  }

  /** Enter the Network phase: open the NCPs. `keys` (from MS-CHAP) enable CCP/MPPE. */
  start(peerAddress: IPv4 | undefined, keys: MppeKeySource | undefined): void {
    this.reported = false;
    this.active = true;
    if (peerAddress) this.ipcpHandler.allow.address = peerAddress;
    this.keys = keys;
    this.ccpRunning = keys !== undefined && this.host.mppe !== undefined;
    // As pppd does when MPPE is required: CCP first, the other NCPs once MPPE is up, so that no
    // IPCP packet reaches a peer that is itself still waiting for CCP (it would answer with a
    // Terminate-Ack and cost a restart interval).
    this.waitForCcp = this.ccpRunning && this.host.policy.mppe.required;
    for (const fsm of this.running()) {
      fsm.open();
      if (!this.waitForCcp || fsm === this.ccp) fsm.up();
    }
  }

  /** LCP left Opened (tld): every NCP sees Down. */
  lowerDown(): void {
    for (const fsm of this.running()) fsm.down();
  }

  /** The link is finished: close every NCP so that no timer is left. */
  stop(): void {
    this.active = false;
    this.crypto = undefined;
    for (const fsm of this.running()) {
      fsm.down();
      fsm.close('link down');
    }
  }

  /** A frame for the network phase; false when the protocol is not ours (→ Protocol-Reject). */
  receive(protocol: number, info: Uint8Array): boolean {
    switch (protocol) {
      case PppProtocol.IPCP:
        this.ipcp.receive(info);
        return true;
      case PppProtocol.CCP:
        if (!this.ccpRunning) return false;
        this.ccp.receive(info);
        return true;
      case PppProtocol.IPV6CP:
        if (!this.ipv6cp) return false;
        this.ipv6cp.receive(info);
        return true;
      case PppProtocol.COMPRESSED:
        if (!this.ccpRunning) return false;
        this.receiveEncrypted(info);
        return true;
      case PppProtocol.IP:
        if (this.host.policy.mppe.required || this.crypto)
          this.host.drops.drop('unencrypted IPv4 with MPPE on');
        else this.deliver(protocol, info);
        return true;
      case PppProtocol.IPV6:
        if (!this.ipv6cp) return false;
        if (this.host.policy.mppe.required || this.crypto)
          this.host.drops.drop('unencrypted IPv6 with MPPE on');
        else this.deliver(protocol, info);
        return true;
      default:
        return false;
    }
  }

  /** The peer Protocol-Rejected `protocol`: stop sending it (RFC 1661 §5.7). */
  protocolRejected(protocol: number): void {
    if (protocol === PppProtocol.IPCP || protocol === PppProtocol.IP) {
      this.host.closeLink(`peer rejected ${protocol === PppProtocol.IP ? 'IPv4' : 'IPCP'}`);
    } else if (protocol === PppProtocol.CCP || protocol === PppProtocol.COMPRESSED) {
      if (this.host.policy.mppe.required) this.host.closeLink('MPPE is required but the peer rejected CCP');
      else this.ccp.down();
    } else if ((protocol === PppProtocol.IPV6CP || protocol === PppProtocol.IPV6) && this.ipv6cp) {
      this.ipv6cp.down();
    }
    this.maybeReport();
  }

  sendIp(packet: Uint8Array): void {
    this.send(PppProtocol.IP, packet, this.ipcp);
  }

  sendIpv6(packet: Uint8Array): void {
    if (this.ipv6cp) this.send(PppProtocol.IPV6, packet, this.ipv6cp);
    else this.host.drops.drop('IPv6 packet with IPv6 disabled');
  }

  private send(protocol: number, packet: Uint8Array, ncp: Fsm): void {
    if (ncp.state !== 'opened') {
      this.host.drops.drop(`${ncp.name} not open: outgoing packet`);
      return;
    }
    if (packet.length > this.mtu()) {
      this.host.drops.drop('outgoing packet larger than the MTU');
      return;
    }
    if (this.crypto) {
      // One allocation: frame header, MPPE header, then protocol + packet encrypted in place.
      const comp = this.host.compression();
      const head = frameHeaderLength(PppProtocol.COMPRESSED, comp);
      const frame = new Uint8Array(head + 2 + 2 + packet.length);
      writeFrameHeader(frame, PppProtocol.COMPRESSED, comp);
      frame[head + 2] = protocol >>> 8;
      frame[head + 3] = protocol & 0xff;
      frame.set(packet, head + 4);
      this.crypto.encryptor.encryptInto(frame.subarray(head + 2), frame, head);
      this.host.sendFrame(frame);
    } else if (this.host.policy.mppe.required) {
      this.host.drops.drop('outgoing packet before MPPE is up');
    } else {
      this.host.sendProtocol(protocol, packet);
    }
  }

  private sendResetRequest(): void {
    this.resetSentAt = this.host.clock.now();
    this.ccp.sendExtra(PacketCode.ResetRequest, new Uint8Array(0));
  }

  private receiveEncrypted(info: Uint8Array): void {
    const crypto = this.crypto;
    if (!crypto) {
      this.host.drops.drop('MPPE packet before CCP is up');
      return;
    }
    const plain = crypto.decryptor.decrypt(info);
    if (crypto.decryptor.takeResetRequest()) this.sendResetRequest();
    else if (!plain && this.resetSentAt !== undefined) {
      // Still discarding: the Reset-Request or the flushed packet answering it was lost. Ask again,
      // at most once per RESET_REPEAT_MS, as pppd does (ccp.c: RREQ_REPEAT after RACKTIMEOUT).
      if (this.host.clock.now() - this.resetSentAt >= RESET_REPEAT_MS) this.sendResetRequest();
    }
    if (plain) this.resetSentAt = undefined;
    if (!plain) {
      this.host.drops.drop('MPPE packet refused by the decryptor');
      return;
    }
    // The inner protocol field may be compressed to one octet (odd first octet).
    const short = plain.length > 0 && (plain[0]! & 1) === 1;
    if (plain.length < (short ? 1 : 2)) {
      this.host.drops.drop('MPPE plaintext without protocol');
      return;
    }
    const protocol = short ? plain[0]! : (plain[0]! << 8) | plain[1]!;
    const payload = plain.subarray(short ? 1 : 2);
    if (protocol === PppProtocol.IP || (protocol === PppProtocol.IPV6 && this.ipv6cp))
      this.deliver(protocol, payload);
    else this.host.drops.drop('MPPE plaintext of an unexpected protocol', `0x${protocol.toString(16)}`);
  }

  private deliver(protocol: number, packet: Uint8Array): void {
    if (protocol === PppProtocol.IP) {
      if (this.ipcp.state === 'opened') this.host.deliverIp(packet);
      else this.host.drops.drop('IPv4 before IPCP is open');
    } else if (this.ipv6cp?.state === 'opened') {
      this.host.deliverIpv6(packet);
    } else {
      this.host.drops.drop('IPv6 before IPv6CP is open');
    }
  }

  private startMppe(settings: MppeSettings | null): void {
    this.mppeSettings = settings;
    if (settings && this.keys && this.host.mppe) {
      this.resetSentAt = undefined;
      this.crypto = this.host.mppe(this.keys.startKeys(settings.bits), {
        bits: settings.bits,
        stateless: settings.stateless,
      });
      this.host.log.info(`MPPE ${settings.bits}-bit ${settings.stateless ? 'stateless' : 'stateful'} up`);
      if (this.waitForCcp) {
        for (const fsm of this.running()) if (fsm !== this.ccp && fsm.state === 'starting') fsm.up();
      }
    } else if (this.host.policy.mppe.required) {
      this.host.closeLink('MPPE is required but CCP opened without it');
    }
  }

  private mtu(): number {
    return Math.min(this.host.policy.mtu, this.host.peerMru() - (this.crypto ? MPPE_OVERHEAD : 0));
  }

  private running(): Fsm[] {
    const list = [this.ipcp];
    if (this.ipv6cp) list.push(this.ipv6cp);
    if (this.ccpRunning) list.push(this.ccp);
    return list;
  }

  /** Report onNetworkUp once IPCP is open and every other NCP has settled (open or given up). */
  private maybeReport(): void {
    if (this.reported || this.ipcp.state !== 'opened' || !this.ipcpResult) return;
    if (this.running().some((f) => !SETTLED.has(f.state))) return;
    if (this.host.policy.mppe.required && !this.crypto) return;
    this.reported = true;
    this.host.networkUp({
      ...this.ipcpResult,
      mppe: this.crypto ? this.mppeSettings : null,
      ipv6: this.ipv6cp?.state === 'opened' ? this.ipv6Result : null,
      mtu: this.mtu(),
    });
  }

  private ncpEvents<T>(name: string, onUp: (info: T) => void): NcpEvents<T> {
    return {
      up: (info) => {
        onUp(info);
        this.maybeReport();
      },
      down: () => {
        if (name === 'CCP') this.crypto = undefined;
        if (name === 'IPCP') this.reported = false;
      },
      finished: (reason) => {
        if (!this.active) return;
        if (name === 'IPCP') this.host.closeLink(`IPCP failed: ${reason}`);
        else if (name === 'CCP' && this.host.policy.mppe.required) {
          this.host.closeLink(`MPPE required but CCP failed: ${reason}`);
        } else this.maybeReport();
      },
      fail: (reason) => {
        if (!this.active) return;
        this.host.log.warn(reason);
        if (name === 'IPCP') this.host.closeLink(reason);
        else if (name === 'CCP' && this.host.policy.mppe.required)
          this.host.closeLink(`MPPE required: ${reason}`);
        else (name === 'CCP' ? this.ccp : this.ipv6cp)?.close(reason);
      },
    };
  }
}
