import type { IPv4 } from '../wire/ip.ts';
import type { AuthMethod } from './auth/types.ts';
import type { FsmConfig } from './fsm.ts';

/**
 * What one side of a PPP link negotiates. Names follow pppd's options where one exists
 * (pppd(8)); another module maps an options file onto this type.
 */
export interface PppPolicy {
  /** Our MRU, requested from the peer (pppd `mru`). */
  mru: number;
  /** The largest packet we send, further limited by the peer's MRU (pppd `mtu`). */
  mtu: number;
  /** Seconds between LCP Echo-Requests; 0 disables (pppd `lcp-echo-interval`). */
  lcpEchoInterval: number;
  /** Unanswered Echo-Requests in a row before the link is declared dead; 0 = never (`lcp-echo-failure`). */
  lcpEchoFailure: number;
  /** pppd `lcp-max-configure` / `lcp-max-terminate` / `lcp-max-failure` / `lcp-restart` (seconds). */
  lcpMaxConfigure: number;
  lcpMaxTerminate: number;
  lcpMaxFailure: number;
  lcpRestart: number;
  /** The same for IPCP, IPv6CP and CCP (pppd `ipcp-*`). */
  ncpMaxConfigure: number;
  ncpMaxTerminate: number;
  ncpMaxFailure: number;
  ncpRestart: number;
  auth: {
    /**
     * Authenticator: the methods we require of the peer, in order of preference (pppd
     * `require-mschap-v2` etc.). Empty = `noauth`.
     */
    require: AuthMethod[];
    /** Peer: the methods we agree to authenticate ourselves with (pppd `refuse-*` inverted), preferred first. */
    accept: AuthMethod[];
  };
  mppe: {
    /** Terminate the link unless MPPE comes up (pppd `require-mppe`). */
    required: boolean;
    allow40: boolean;
    allow56: boolean;
    allow128: boolean;
    /** Accept stateful (history) mode when the peer asks for it (pppd `mppe-stateful`). */
    statefulAllowed: boolean;
    /**
     * Ask for stateful mode ourselves, and Nak a stateless request towards it (implies
     * statefulAllowed). pppd always asks for stateless; `poptop connect --stateful` and the
     * server option `mppe-stateful-preferred` set this.
     */
    preferStateful?: boolean;
  };
  /** Our IPv4 address (pppd `local:`); 0 = none (a client asks the server for one). */
  localAddress: IPv4;
  /** The peer's address if not supplied on authentication (pppd `:remote`); 0 = none. */
  peerAddress: IPv4;
  /** DNS servers given to the peer (pppd `ms-dns`), at most two. */
  msDns: IPv4[];
  /** NBNS/WINS servers given to the peer (pppd `ms-wins`), at most two. */
  msWins: IPv4[];
  /** Client: ask the server for DNS servers (pppd `usepeerdns`). */
  usePeerDns: boolean;
  /** Run IPv6CP (pppd `+ipv6`). */
  ipv6: boolean;
  /** Request Protocol-Field- / Address-and-Control-Field-Compression (pppd `nopcomp`/`noaccomp` inverted). */
  pfc: boolean;
  acfc: boolean;
}

/**
 * Secure defaults: the server requires MS-CHAPv2 and MPPE-128 stateless; the client accepts only
 * MS-CHAPv2 and requires MPPE-128. Timers are pppd's (3 s restart, 10 / 2 / 5).
 */
export function defaultPolicy(role: 'server' | 'client'): PppPolicy {
  return {
    mru: 1400,
    mtu: 1400,
    lcpEchoInterval: 30,
    lcpEchoFailure: 4,
    lcpMaxConfigure: 10,
    lcpMaxTerminate: 2,
    lcpMaxFailure: 5,
    lcpRestart: 3,
    ncpMaxConfigure: 10,
    ncpMaxTerminate: 2,
    ncpMaxFailure: 5,
    ncpRestart: 3,
    auth: role === 'server' ? { require: ['mschapv2'], accept: [] } : { require: [], accept: ['mschapv2'] },
    mppe: { required: true, allow40: false, allow56: false, allow128: true, statefulAllowed: false },
    localAddress: 0,
    peerAddress: 0,
    msDns: [],
    msWins: [],
    usePeerDns: role === 'client',
    ipv6: false,
    pfc: true,
    acfc: true,
  };
}

/** The FSM timing of LCP or of the network control protocols under `policy`. */
export function fsmConfig(policy: PppPolicy, which: 'lcp' | 'ncp'): FsmConfig {
  return which === 'lcp'
    ? {
        restartMs: policy.lcpRestart * 1000,
        maxConfigure: policy.lcpMaxConfigure,
        maxTerminate: policy.lcpMaxTerminate,
        maxFailure: policy.lcpMaxFailure,
      }
    : {
        restartMs: policy.ncpRestart * 1000,
        maxConfigure: policy.ncpMaxConfigure,
        maxTerminate: policy.ncpMaxTerminate,
        maxFailure: policy.ncpMaxFailure,
      };
}
