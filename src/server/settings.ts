import type { CredentialStore } from '../aaa/credentials.ts';
import { DEFAULT_LOGIN_THROTTLE, type LoginThrottleSettings } from '../aaa/login-throttle.ts';
import type { RadiusSettings } from '../aaa/radius/service.ts';
import type { ConfigIssue } from '../config/issues.ts';
import { GUARD_DEFAULTS } from '../config/pptpd-conf.ts';
import type { PppPolicy } from '../ppp/policy.ts';
import type { IPv4 } from '../wire/ip.ts';

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
  /** Where the settings came from, for the start-up log line. */
  origin: string;
  /** RADIUS (pppd `plugin radius.so` + radiusclient.conf); undefined: chap-secrets only. */
  radius?: RadiusSettings | undefined;

  // Limits on connections that have not finished setting up (pptpd.conf, poptop's own keywords).
  /** Control connections from one address not yet authenticated (`max-unauth-per-source`, 8). */
  readonly maxUnauthPerSource: number;
  /** Calls being set up (call placed, IPCP not yet up) from one address (`max-setups-per-source`, 4). */
  readonly maxSetupsPerSource: number;
  /** Unauthenticated control connections in all (`max-unauth`; default max(256, connections)). */
  readonly maxUnauth: number;
  /** Seconds from TCP accept to a placed call (`call-deadline`, 30). */
  readonly callDeadlineS: number;
  /** Seconds from the call to IPCP up (`setup-deadline`, 60). */
  readonly setupDeadlineS: number;
  /** Bytes queued for one control connection before we stop reading / drop it (`control-write-buffer`, 64 KiB). */
  readonly controlWriteBufferBytes: number;
  /** Login back-off (`auth-fail-limit`, `auth-lockout`, `auth-fail-window`; the rest fixed). */
  readonly loginThrottle: Readonly<LoginThrottleSettings>;
}

/** The guard limits and login back-off with their defaults, for settings built in code (tests, tools). */
export function defaultGuardSettings(
  connections = 100,
): Pick<
  ServerSettings,
  | 'maxUnauthPerSource'
  | 'maxSetupsPerSource'
  | 'maxUnauth'
  | 'callDeadlineS'
  | 'setupDeadlineS'
  | 'controlWriteBufferBytes'
  | 'loginThrottle'
> {
  return {
    maxUnauthPerSource: GUARD_DEFAULTS['max-unauth-per-source'],
    maxSetupsPerSource: GUARD_DEFAULTS['max-setups-per-source'],
    maxUnauth: Math.max(GUARD_DEFAULTS['max-unauth'], connections),
    callDeadlineS: GUARD_DEFAULTS['call-deadline'],
    setupDeadlineS: GUARD_DEFAULTS['setup-deadline'],
    controlWriteBufferBytes: GUARD_DEFAULTS['control-write-buffer'],
    loginThrottle: DEFAULT_LOGIN_THROTTLE,
  };
}
