import type { IPv4 } from '../../wire/ip.ts';
import { formatIPv4 } from '../../wire/ip.ts';
import { PppProtocol } from '../constants.ts';
import type { ControlProtocolHandler } from '../fsm.ts';
import type { NcpEvents } from '../ncp.ts';
import type { ConfigOption, Verdict } from '../options.ts';
import { readU32, u32Option, VerdictBuilder } from '../options.ts';
import type { PppPolicy } from '../policy.ts';

/** IPCP Configuration Option types (RFC 1332 §3, RFC 1877 §1). */
export const IpcpOption = {
  IPAddresses: 1,
  IPCompressionProtocol: 2,
  IPAddress: 3,
  PrimaryDns: 129,
  PrimaryNbns: 130,
  SecondaryDns: 131,
  SecondaryNbns: 132,
} as const;

/** The four RFC 1877 server options, in the order of the `servers` array of IpcpOptionSet. */
const SERVER_OPTIONS = [
  IpcpOption.PrimaryDns,
  IpcpOption.SecondaryDns,
  IpcpOption.PrimaryNbns,
  IpcpOption.SecondaryNbns,
] as const;
const SERVER_NAMES = ['ms-dns', 'ms-dns2', 'ms-wins', 'ms-wins2'] as const;

/** One side's IPCP options: an address and DNS1, DNS2, NBNS1, NBNS2 (undefined = not negotiated). */
export interface IpcpOptionSet {
  address: IPv4 | undefined;
  servers: [IPv4 | undefined, IPv4 | undefined, IPv4 | undefined, IPv4 | undefined];
}

export interface IpcpResult {
  localAddress: IPv4;
  peerAddress: IPv4;
  /** Server: what we gave the peer; client: what the server gave us. */
  dns: IPv4[];
  wins: IPv4[];
}

export interface IpcpHandlerOptions {
  role: 'server' | 'client';
  policy: PppPolicy;
  events: NcpEvents<IpcpResult>;
}

/**
 * IPCP (RFC 1332, RFC 1877). The server requests its own address, assigns the peer's (Nak with the
 * assigned one when the peer asks for 0.0.0.0 or another address) and supplies DNS/NBNS servers
 * it has (Rejects the ones it has not). The client requests 0.0.0.0 (and DNS with usepeerdns) and
 * takes the server's Nak. VJ compression and the deprecated IP-Addresses option are Rejected.
 */
export class IpcpHandler implements ControlProtocolHandler {
  readonly name = 'IPCP' as const;
  readonly protocol = PppProtocol.IPCP;
  private readonly opts: IpcpHandlerOptions;
  private readonly want: IpcpOptionSet;
  /** What we let the peer have; the link sets `allow.address` to the assigned address. */
  readonly allow: IpcpOptionSet;
  got: IpcpOptionSet;
  his: IpcpOptionSet;

  constructor(opts: IpcpHandlerOptions) {
    this.opts = opts;
    const p = opts.policy;
    const server = opts.role === 'server';
    const ask = !server && p.usePeerDns ? 0 : undefined;
    this.want = {
      address: server && p.localAddress === 0 ? undefined : p.localAddress,
      servers: [ask, ask, undefined, undefined],
    };
    this.allow = {
      address: p.peerAddress || undefined,
      servers: [p.msDns[0], p.msDns[1], p.msWins[0], p.msWins[1]],
    };
    this.got = copySet(this.want);
    this.his = emptySet();
  }

  reset(): void {
    this.got = copySet(this.want);
  }

  /** Our address for this link, set before IPCP starts (a server pairs localip with remoteip). */
  setLocalAddress(ip: IPv4): void {
    this.want.address = ip;
    this.got = copySet(this.want);
  }

  buildRequest(): ConfigOption[] {
    const o: ConfigOption[] = [];
    if (this.got.address !== undefined) o.push(u32Option(IpcpOption.IPAddress, this.got.address));
    this.got.servers.forEach((v, i) => {
      if (v !== undefined) o.push(u32Option(SERVER_OPTIONS[i]!, v));
    });
    return o;
  }

  checkRequest(opts: ConfigOption[], rejectIfDisagree: boolean): Verdict {
    const v = new VerdictBuilder(rejectIfDisagree);
    const his = emptySet();
    for (const o of opts) {
      const index = SERVER_OPTIONS.indexOf(o.type as (typeof SERVER_OPTIONS)[number]);
      if (o.data.length !== 4 || (o.type !== IpcpOption.IPAddress && index < 0)) {
        v.reject(o); // IP-Addresses (1), IP-Compression-Protocol (2, VJ), unknown, or bad length
        continue;
      }
      const value = readU32(o.data);
      if (o.type === IpcpOption.IPAddress) {
        const assigned = this.allow.address;
        if (assigned === undefined) {
          if (value === 0)
            v.reject(o); // nothing to give, and the peer has none
          else his.address = value;
        } else if (value !== assigned) v.nak(o, u32Option(o.type, assigned));
        else his.address = value;
        continue;
      }
      const ours = this.allow.servers[index];
      if (ours === undefined) v.reject(o);
      else if (value !== ours) v.nak(o, u32Option(o.type, ours));
      else his.servers[index] = value;
    }
    this.his = his;
    return v.finish();
  }

  ackReceived(): boolean {
    return true;
  }

  nakReceived(opts: ConfigOption[]): void {
    for (const o of opts) {
      if (o.data.length !== 4) continue;
      const value = readU32(o.data);
      if (o.type === IpcpOption.IPAddress) {
        // Only an address we asked to be given (0.0.0.0) may be changed by the peer (pppd without
        // ipcp-accept-local): a server keeps its own.
        if (this.got.address !== undefined && this.want.address === 0 && value !== 0)
          this.got.address = value;
        continue;
      }
      const index = SERVER_OPTIONS.indexOf(o.type as (typeof SERVER_OPTIONS)[number]);
      if (index >= 0 && this.got.servers[index] !== undefined) this.got.servers[index] = value;
    }
  }

  rejectReceived(opts: ConfigOption[]): void {
    for (const o of opts) {
      if (o.type === IpcpOption.IPAddress) this.got.address = undefined;
      const index = SERVER_OPTIONS.indexOf(o.type as (typeof SERVER_OPTIONS)[number]);
      if (index >= 0) this.got.servers[index] = undefined;
    }
  }

  up(): void {
    const local = this.got.address ?? 0;
    const peer = this.his.address ?? this.allow.address ?? 0;
    if (local === 0) {
      this.opts.events.fail('IPCP: the peer did not give us an IPv4 address');
      return;
    }
    if (peer === 0) {
      this.opts.events.fail('IPCP: no IPv4 address for the peer');
      return;
    }
    const source = this.opts.role === 'server' ? this.his.servers : this.got.servers;
    const known = (xs: (IPv4 | undefined)[]): IPv4[] =>
      xs.filter((x): x is IPv4 => x !== undefined && x !== 0);
    this.opts.events.up({
      localAddress: local,
      peerAddress: peer,
      dns: known(source.slice(0, 2)),
      wins: known(source.slice(2, 4)),
    });
  }

  down(): void {
    this.opts.events.down();
  }

  started(): void {}

  finished(reason: string): void {
    this.opts.events.finished(reason);
  }

  describe(o: ConfigOption): string {
    const value = o.data.length === 4 ? formatIPv4(readU32(o.data)) : Buffer.from(o.data).toString('hex');
    if (o.type === IpcpOption.IPAddress) return `<addr ${value}>`;
    if (o.type === IpcpOption.IPCompressionProtocol)
      return `<compress ${Buffer.from(o.data).toString('hex')}>`;
    const index = SERVER_OPTIONS.indexOf(o.type as (typeof SERVER_OPTIONS)[number]);
    return index >= 0 ? `<${SERVER_NAMES[index]} ${value}>` : `<${o.type} ${value}>`;
  }
}

function emptySet(): IpcpOptionSet {
  return { address: undefined, servers: [undefined, undefined, undefined, undefined] };
}

function copySet(s: IpcpOptionSet): IpcpOptionSet {
  return { address: s.address, servers: [...s.servers] };
}
