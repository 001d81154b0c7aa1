import type { CredentialStore } from '../aaa/credentials.ts';
import { DEFAULT_LOGIN_THROTTLE, type LoginThrottleSettings } from '../aaa/login-throttle.ts';
import type { RadiusSettings } from '../aaa/radius/service.ts';
import type { RateLimit } from '../aaa/rate-limit.ts';
import type { ConfigIssue } from '../config/issues.ts';
import { GUARD_DEFAULTS, type GuardLimits } from '../config/pptpd-conf.ts';
import type { StatusAddress } from '../config/status-address.ts';
import type { PppPolicy } from '../ppp/policy.ts';
import type { IPv4 } from '../wire/ip.ts';

/**
 * Everything the server runs with, resolved from pptpd.conf + pppd options files +
 * chap-secrets (server/load-settings.ts) or from the built-in default configuration. SIGHUP builds a new
 * one; running sessions keep the settings they started with, new sessions get the new ones.
 */
/**
 * Limits on what peers that have not finished setting up may hold: the pptpd.conf keywords
 * max-unauth-per-source, max-setups-per-source, max-unauth, call-deadline, setup-deadline,
 * control-write-buffer (config/pptpd-conf.ts GuardLimits, enforced by server/admission.ts).
 */
export type GuardSettings = Readonly<GuardLimits>;

export interface ServerSettings extends GuardSettings {
  /** TCP 1723 listen address; undefined = all addresses (pptpd `listen`). */
  readonly listen: IPv4 | undefined;
  readonly port: number;
  /** Most concurrent sessions (pptpd `connections`). */
  readonly maxConnections: number;
  /** The server's tunnel address(es) (pptpd `localip`); the first serves every session. */
  readonly localIps: readonly IPv4[];
  /** Client address pool (pptpd `remoteip`). */
  readonly remoteIps: readonly IPv4[];
  /** pptpd `delegate`: addresses only from the secrets file. */
  readonly delegate: boolean;
  /** PPP policy for the server role; localAddress/peerAddress are filled per session. */
  readonly policy: Readonly<PppPolicy>;
  readonly credentials: CredentialStore & { reload?(): ConfigIssue[] };
  /** pppd `name`: matched against the server column of chap-secrets. */
  readonly serverName: string;
  /** Strip "DOMAIN\" from user names (chapms-strip-domain). */
  readonly stripDomain: boolean;
  readonly proxyArp: boolean;
  readonly debug: boolean;
  /** Seconds a new TCP connection may take to send its Start-Control-Connection-Request (pptpd `stimeout`). */
  readonly startTimeoutS: number;
  /** Seconds of control-connection silence before a PPTP Echo-Request. */
  readonly pptpEchoIntervalS: number;
  readonly ipUpScript: string;
  readonly ipDownScript: string;
  /** pppd `ipparam` given to the hooks; by default the client's address (unless `noipparam`). */
  readonly ipparam: string | undefined;
  readonly noipparam: boolean;
  /** Line speed passed to the hooks as pppd's speed argument (pptpd's `speed` has no meaning here). */
  readonly speed: number;
  /** Name of the TUN device shared by all sessions (of this process: a worker has its own). */
  readonly tunName: string;
  /**
   * `workers`: processes sharing the sessions (server/workers/); 1 or absent: this process serves
   * them all. Resolved from "auto" when loaded.
   */
  readonly workers?: number;
  /**
   * Set when `workers` is "auto" because nothing set it (the default): where the kernel refuses
   * the workers a shared TUN device, one process serves instead, so the device keeps its name.
   */
  readonly workersByDefault?: boolean;
  readonly pidfile: string | undefined;
  /** pppd `idle`: end a session after this many seconds without IP packets either way; 0 = never. */
  readonly idleS: number;
  /** pppd `maxconnect`: end a session this many seconds after it came up; 0 = never. */
  readonly maxConnectS: number;
  /** `rate-limit` in the options file: every user's rate limit (a secrets entry's own wins). */
  readonly rateLimit?: RateLimit;
  /** pptpd `logwtmp`: record sessions in wtmp. */
  readonly logwtmp: boolean;
  /** `single-session`: one session per user name (refuse the new one, or replace the old one). */
  readonly singleSession: 'off' | 'deny' | 'replace';
  /**
   * pptpd `bcrelay IF`: UDP broadcasts received on LAN interface `ifname` are relayed to every
   * client (server/bcrelay.ts); `at` is the keyword's "file:line" for messages. Absent: off.
   */
  readonly bcrelay?: { readonly ifname: string; readonly at: string };
  /** Metrics and status page listener (`--status`, pptpd.conf `status`); absent: off. */
  readonly status?: StatusAddress;
  /** Where the settings came from, for the start-up log line. */
  readonly origin: string;
  /** RADIUS (pppd `plugin radius.so` + radiusclient.conf); undefined: chap-secrets only. */
  readonly radius?: RadiusSettings | undefined;

  /** Login back-off (`auth-fail-limit`, `auth-lockout`, `auth-fail-window`; the rest fixed). */
  readonly loginThrottle: Readonly<LoginThrottleSettings>;
}

/** The guard limits and login back-off with their defaults, for settings built in code (tests, tools). */
export function defaultGuardSettings(
  connections = 100,
): GuardSettings & Pick<ServerSettings, 'loginThrottle'> {
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
