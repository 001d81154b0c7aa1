import type { CredentialStore } from '../aaa/credentials.ts';
import type { ConfigIssue } from '../config/issues.ts';
import type { IPv4 } from '../net/ip.ts';
import type { PppPolicy } from '../ppp/policy.ts';
import type { AdmissionLimits } from './admission.ts';

/**
 * Everything the server runs with, resolved from pptpd.conf + pppd options files +
 * chap-secrets (server/load-settings.ts) or from the built-in default configuration. SIGHUP builds a new
 * one; running sessions keep the settings they started with, new sessions get the new ones.
 */
export interface ServerSettings {
  /** TCP 1723 listen address; undefined = all addresses (pptpd `listen`). */
  listen: IPv4 | undefined;
  port: number;
  /** Most concurrent sessions (pptpd `connections`). */
  maxConnections: number;
  /** The server's tunnel address(es) (pptpd `localip`); the first serves every session. */
  localIps: IPv4[];
  /** Client address pool (pptpd `remoteip`). */
  remoteIps: IPv4[];
  /** pptpd `delegate`: addresses only from the secrets file. */
  delegate: boolean;
  /** PPP policy for the server role; localAddress/peerAddress are filled per session. */
  policy: PppPolicy;
  credentials: CredentialStore & { reload?(): ConfigIssue[] };
  /** pppd `name`: matched against the server column of chap-secrets. */
  serverName: string;
  /** Strip "DOMAIN\" from user names (chapms-strip-domain). */
  stripDomain: boolean;
  proxyArp: boolean;
  debug: boolean;
  /** Seconds a new TCP connection may take to send its Start-Control-Connection-Request (pptpd `stimeout`). */
  startTimeoutS: number;
  /** Seconds of control-connection silence before a PPTP Echo-Request. */
  pptpEchoIntervalS: number;
  ipUpScript: string;
  ipDownScript: string;
  /** pppd `ipparam` given to the hooks; by default the client's address (unless `noipparam`). */
  ipparam: string | undefined;
  noipparam: boolean;
  /** Line speed passed to the hooks as pppd's speed argument (pptpd's `speed` has no meaning here). */
  speed: number;
  /** Name of the TUN device shared by all sessions. */
  tunName: string;
  pidfile: string | undefined;
  /** What unauthenticated peers may hold (server/admission.ts); DEFAULT_LIMITS when absent. */
  limits?: AdmissionLimits;
  /** Where the settings came from, for the start-up log line. */
  origin: string;
}
