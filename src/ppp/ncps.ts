import type { Clock } from '../util/clock.ts';
import type { DropCounter } from '../util/counters.ts';
import type { Logger } from '../util/log.ts';
import { extend } from '../util/objects.ts';
import type { IPv4 } from '../wire/ip.ts';
import { CcpHandler } from './ccp/handler.ts';
import { PacketCode, PppProtocol } from './constants.ts';
import type { FrameCompression } from './frame.ts';
import { Fsm, type FsmState } from './fsm.ts';
import { IpcpHandler, type IpcpResult } from './ipcp/handler.ts';
import { Ipv6cpHandler, type Ipv6cpResult } from './ipv6cp/handler.ts';
import type { NcpDropReason } from './link-types.ts';
import { MPPE_OVERHEAD, MppeFraming, type MppeFramingDropReason } from './mppe/framing.ts';
import type { MppeDropReason, MppeFactory, MppeKeySource, MppeSettings } from './mppe/types.ts';
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
  policy: Readonly<PppPolicy>;
  clock: Clock;
  log: Logger;
  random(): number;
  drops: DropCounter<NcpDropReason | MppeFramingDropReason | MppeDropReason>;
  mppe: MppeFactory | undefined;
  peerMru(): number;
  sendProtocol(protocol: number, info: Uint8Array): void;
  /** Header compression in force for non-LCP frames, and a raw send for prebuilt frames. */
  compression(): FrameCompression;
  /** A frame for the lower layer; `headroom` free bytes precede it in its buffer. */
  sendFrame(frame: Uint8Array, headroom?: number): void;
  /** Free bytes the lower layer wants in front of a frame (GRE's header), for the copy path. */
  lowerHeadroom: number;
  /** False when the lower layer would drop a frame now (its send queue is full). */
  canSend(): boolean;
  closeLink(reason: string): void;
  networkUp(info: NetworkInfo): void;
  deliverIp(packet: Uint8Array): void;
  deliverIpv6(packet: Uint8Array): void;
}

const SETTLED: ReadonlySet<FsmState> = new Set(['opened', 'initial', 'starting', 'closed', 'stopped']);

/**
 * What the Network phase needs to know of each NCP: `required` — its failure ends the link;
 * `gates` — the other NCPs get their Up only once it is Opened (CCP when MPPE is required, as
 * pppd does, so that no IPCP packet reaches a peer still waiting for CCP).
 */
interface NcpDescriptor {
  readonly name: 'IPCP' | 'IPv6CP' | 'CCP';
  readonly required: boolean;
  readonly gates: boolean;
  /** How the link's end reason begins when this required NCP finishes, or gives up negotiating. */
  readonly finished: string;
  readonly failed: string;
}

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
  private crypto: MppeFraming | undefined;
  private reported = false;
  /** Between start() and stop(): NCP failures are acted on. */
  private active = false;
  /** IPCP/IPv6CP get their Up event only when MPPE is up. */
  private waitForCcp = false;
  private readonly ncps = new Map<Fsm, NcpDescriptor>();
  /**
   * The last packet of a gated NCP that arrived before the gate opened (Windows sends its IPCP
   * Configure-Request before CCP is up): replayed when the NCP gets its Up, instead of dropped
   * and retransmitted by the peer 2 s later.
   */
  private readonly deferred = new Map<Fsm, Uint8Array>();

  constructor(host: NetworkHost) {
    this.host = host;
    const cfg = fsmConfig(host.policy, 'ncp');
    const fsmHost = (protocol: number) => ({
      clock: host.clock,
      log: host.log,
      send: (p: Uint8Array) => host.sendProtocol(protocol, p),
      peerMru: () => host.peerMru(),
    });
    const mppeRequired = host.policy.mppe.required;
    const ipcpNcp: NcpDescriptor = {
      name: 'IPCP',
      required: true,
      gates: false,
      finished: 'IPCP failed: ',
      failed: '',
    };
    const ipv6cpNcp: NcpDescriptor = {
      name: 'IPv6CP',
      required: false,
      gates: false,
      finished: '',
      failed: '',
    };
    const ccpNcp: NcpDescriptor = {
      name: 'CCP',
      required: mppeRequired,
      gates: mppeRequired,
      finished: 'MPPE required but CCP failed: ',
      failed: 'MPPE required: ',
    };
    this.ipcpHandler = new IpcpHandler({
      role: host.role,
      policy: host.policy,
      events: this.ncpEvents(
        ipcpNcp,
        () => this.ipcp,
        (r) => {
          this.ipcpResult = r;
        },
      ),
    });
    this.ipcp = new Fsm(this.ipcpHandler, cfg, fsmHost(PppProtocol.IPCP));
    this.ncps.set(this.ipcp, ipcpNcp);
    if (host.policy.ipv6) {
      const h = new Ipv6cpHandler({
        random: host.random,
        events: this.ncpEvents(
          ipv6cpNcp,
          () => this.ipv6cp,
          (r) => {
            this.ipv6Result = r;
          },
        ),
      });
      this.ipv6cp = new Fsm(h, cfg, fsmHost(PppProtocol.IPV6CP));
      this.ncps.set(this.ipv6cp, ipv6cpNcp);
    }
    const ccpEvents = this.ncpEvents<MppeSettings | null>(
      ccpNcp,
      () => this.ccp,
      (s) => this.startMppe(s),
    );
    const ccpHandler = new CcpHandler({
      policy: host.policy,
      log: host.log,
      events: extend(ccpEvents, {
        resetRequested: (id: number) => {
          this.ccp.sendExtra(PacketCode.ResetAck, new Uint8Array(0), id);
          this.crypto?.resetRequested();
        },
      }),
    });
    this.ccp = new Fsm(ccpHandler, cfg, fsmHost(PppProtocol.CCP));
    this.ncps.set(this.ccp, ccpNcp);
  }

  /** Enter the Network phase: open the NCPs. `keys` (from MS-CHAP) enable CCP/MPPE. */
  /**
   * `servers`: DNS/WINS for this session (RADIUS); `localAddress`: ours when it is not the policy's
   * (pptpd's localip pairing).
   */
  start(
    peerAddress: IPv4 | undefined,
    keys: MppeKeySource | undefined,
    servers?: readonly (IPv4 | undefined)[],
    localAddress?: IPv4,
  ): void {
    this.reported = false;
    this.active = true;
    this.deferred.clear();
    if (peerAddress) this.ipcpHandler.allow.address = peerAddress;
    if (localAddress) this.ipcpHandler.setLocalAddress(localAddress);
    servers?.forEach((ip, i) => {
      if (ip !== undefined && i < 4) this.ipcpHandler.allow.servers[i] = ip;
    });
    this.keys = keys;
    this.ccpRunning = keys !== undefined && this.host.mppe !== undefined;
    // A gating NCP (CCP when MPPE is required) first, the others once it is up: a peer still
    // waiting for CCP would answer IPCP with a Terminate-Ack and cost a restart interval.
    const running = this.running();
    this.waitForCcp = running.some((f) => this.ncps.get(f)!.gates);
    for (const fsm of running) {
      fsm.open();
      if (!this.waitForCcp || this.ncps.get(fsm)!.gates) fsm.up();
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
    this.deferred.clear();
  }

  private receiveNcp(fsm: Fsm, info: Uint8Array): void {
    if (this.waitForCcp && this.active && fsm.state === 'starting') this.deferred.set(fsm, info.slice());
    else fsm.receive(info);
  }

  /** A frame for the network phase; false when the protocol is not ours (→ Protocol-Reject). */
  receive(protocol: number, info: Uint8Array): boolean {
    switch (protocol) {
      case PppProtocol.IPCP:
        this.receiveNcp(this.ipcp, info);
        return true;
      case PppProtocol.CCP:
        if (!this.ccpRunning) return false;
        this.ccp.receive(info);
        return true;
      case PppProtocol.IPV6CP:
        if (!this.ipv6cp) return false;
        this.receiveNcp(this.ipv6cp, info);
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

  /** `headroom`: free bytes before `packet` in its buffer, where headers may be written. */
  sendIp(packet: Uint8Array, headroom = 0): void {
    this.send(PppProtocol.IP, packet, this.ipcp, headroom);
  }

  sendIpv6(packet: Uint8Array): void {
    if (this.ipv6cp) this.send(PppProtocol.IPV6, packet, this.ipv6cp);
    else this.host.drops.drop('IPv6 packet with IPv6 disabled');
  }

  private send(protocol: number, packet: Uint8Array, ncp: Fsm, headroom = 0): void {
    if (ncp.state !== 'opened') {
      this.host.drops.drop('outgoing packet while its NCP is not open', ncp.name);
      return;
    }
    if (packet.length > this.mtu()) {
      this.host.drops.drop('outgoing packet larger than the MTU');
      return;
    }
    if (!this.host.canSend()) {
      // Before encryption: a frame dropped after it would still consume a coherency count.
      this.host.drops.drop('outgoing packet with the GRE send queue full');
      return;
    }
    if (this.crypto) {
      const comp = this.host.compression();
      const out = this.crypto.encryptFrame(protocol, packet, comp, headroom, this.host.lowerHeadroom);
      this.host.sendFrame(out.frame, out.headroom);
    } else if (this.host.policy.mppe.required) {
      this.host.drops.drop('outgoing packet before MPPE is up');
    } else {
      this.host.sendProtocol(protocol, packet);
    }
  }

  private receiveEncrypted(info: Uint8Array): void {
    const crypto = this.crypto;
    if (!crypto) {
      this.host.drops.drop('MPPE packet before CCP is up');
      return;
    }
    const inner = crypto.decrypt(info);
    if (!inner) return;
    const { protocol, payload } = inner;
    if (protocol === PppProtocol.IP || (protocol === PppProtocol.IPV6 && this.ipv6cp))
      this.deliver(protocol, payload);
    else crypto.unexpected(protocol);
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
      const cipher = this.host.mppe(this.keys.startKeys(settings.bits), {
        bits: settings.bits,
        stateless: settings.stateless,
        drops: this.host.drops,
      });
      this.crypto = new MppeFraming(
        {
          clock: this.host.clock,
          drops: this.host.drops,
          sendResetRequest: () => this.ccp.sendExtra(PacketCode.ResetRequest, new Uint8Array(0)),
          failed: (reason) => this.host.closeLink(reason),
        },
        cipher,
      );
      this.host.log.debug(`MPPE ${settings.bits}-bit ${settings.stateless ? 'stateless' : 'stateful'} up`);
      if (this.waitForCcp) {
        for (const fsm of this.running()) {
          if (fsm === this.ccp || fsm.state !== 'starting') continue;
          fsm.up();
          const early = this.deferred.get(fsm);
          if (early) fsm.receive(early);
        }
        this.deferred.clear();
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
    this.host.networkUp(
      extend(this.ipcpResult, {
        mppe: this.crypto ? this.mppeSettings : null,
        ipv6: this.ipv6cp?.state === 'opened' ? this.ipv6Result : null,
        mtu: this.mtu(),
      }),
    );
  }

  private ncpEvents<T>(
    ncp: NcpDescriptor,
    fsm: () => Fsm | undefined,
    onUp: (info: T) => void,
  ): NcpEvents<T> {
    return {
      up: (info) => {
        onUp(info);
        this.maybeReport();
      },
      down: () => {
        if (ncp.name === 'CCP') this.crypto = undefined;
        if (ncp.name === 'IPCP') this.reported = false;
      },
      finished: (reason) => {
        if (!this.active) return;
        if (ncp.required) this.host.closeLink(ncp.finished + reason);
        else this.maybeReport();
      },
      fail: (reason) => {
        if (!this.active) return;
        this.host.log.warn(reason);
        if (ncp.required) this.host.closeLink(ncp.failed + reason);
        else fsm()?.close(reason);
      },
    };
  }
}
