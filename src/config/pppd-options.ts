import type { RateLimit } from '../aaa/rate-limit.ts';
import type { IPv4 } from '../wire/ip.ts';
import type { SourceLocation } from './issues.ts';

/**
 * The pppd options poptop understands, under pppd's names in camelCase (pppd(8)). A field is
 * absent when no file set it: the consumer applies pppd's default. Later settings override
 * earlier ones, as in pppd (/etc/ppp/options first, then the `option` file from pptpd.conf).
 */
export interface PppdOptions {
  /** `name`: our name for authentication; the second column of chap-secrets must match it. */
  name?: string;
  /** `remotename`: the peer's name (client role). */
  remotename?: string;
  /** `user`: the name we authenticate with (client role). */
  user?: string;
  /** `password`: the secret we authenticate with (client role). */
  password?: string;
  /** `auth` (true) / `noauth` (false). */
  auth?: boolean;

  requirePap?: boolean;
  requireChap?: boolean;
  requireMschap?: boolean;
  requireMschapV2?: boolean;
  requireEap?: boolean;
  refusePap?: boolean;
  refuseChap?: boolean;
  refuseMschap?: boolean;
  refuseMschapV2?: boolean;
  refuseEap?: boolean;

  /** `require-mppe` (`+mppe`): MPPE required, 40 or 128 bits. */
  requireMppe?: boolean;
  requireMppe40?: boolean;
  requireMppe128?: boolean;
  /** `nomppe` (`-mppe`): no MPPE at all. */
  nomppe?: boolean;
  nomppe40?: boolean;
  nomppe128?: boolean;
  /** `mppe-stateful` (true) / `nomppe-stateful` (false). pppd requests stateless in any case. */
  mppeStateful?: boolean;
  /**
   * `mppe-stateful-preferred` (poptop extension, not in pppd): ask for stateful MPPE and Nak a
   * stateless request towards it, so a peer that allows stateful (pppd `mppe-stateful`) uses it.
   */
  mppeStatefulPreferred?: boolean;
  /** `noccp` (`-ccp`): no compression control protocol, hence no MPPE. */
  noccp?: boolean;

  /** `ms-dns`, `ms-wins`: up to two each, in order (a third one replaces the second, as pppd). */
  msDns?: IPv4[];
  msWins?: IPv4[];
  proxyarp?: boolean;
  defaultroute?: boolean;
  usepeerdns?: boolean;

  lcpEchoInterval?: number;
  lcpEchoFailure?: number;
  lcpEchoAdaptive?: boolean;
  lcpMaxConfigure?: number;
  lcpMaxTerminate?: number;
  lcpMaxFailure?: number;
  lcpRestart?: number;
  ipcpMaxConfigure?: number;
  ipcpMaxTerminate?: number;
  ipcpMaxFailure?: number;
  ipcpRestart?: number;
  ipcpAcceptLocal?: boolean;
  ipcpAcceptRemote?: boolean;
  chapRestart?: number;
  chapMaxChallenge?: number;
  chapInterval?: number;
  papRestart?: number;
  papMaxAuthreq?: number;
  papTimeout?: number;
  mtu?: number;
  mru?: number;

  /** `local:remote` addresses given as a bare option word. */
  localIp?: IPv4;
  remoteIp?: IPv4;
  netmask?: IPv4;
  noipdefault?: boolean;
  /** `+ipv6` (true) / `noipv6`, `-ipv6` (false). */
  ipv6?: boolean;
  /** `ipv6 <local>,<remote>` interface identifiers, as written (either may be absent). */
  ipv6LocalId?: string;
  ipv6RemoteId?: string;

  /** `debug` (each occurrence adds one level, as pppd). */
  debug?: number;
  dump?: boolean;
  kdebug?: number;
  logfile?: string;
  ipparam?: string;
  ipUpScript?: string;
  ipDownScript?: string;
  /** poptop's `rate-limit DOWN[/UP]`: every user's rate limit unless their secrets entry has one. */
  rateLimit?: RateLimit;
  /** `plugin pptpd-logwtmp.so`: record sessions in wtmp. */
  logwtmp?: boolean;
  idle?: number;
  maxconnect?: number;
  persist?: boolean;
  holdoff?: number;
  maxfail?: number;

  /**
   * `chapms-strip-domain`: drop a leading `DOMAIN\` from the user name an MS-CHAP peer sends
   * (Windows sends `DOMAIN\user`) before looking it up in chap-secrets. Not in upstream pppd:
   * the name of the widely used pppd patch that pptpd's sample options file mentions, so files
   * written for a patched pppd keep working.
   */
  chapmsStripDomain?: boolean;

  /** `plugin radius.so`: authentication and accounting through RADIUS (aaa/radius/). */
  radiusPlugin?: boolean;
  /** Where `plugin radius.so` was given (the message when pptpd.conf configures RADIUS too). */
  radiusPluginAt?: SourceLocation;
  /** `plugin radattr.so`: each RADIUS session's attributes go to a file for ip-up (aaa/radius/radattr.ts). */
  radattrPlugin?: boolean;
  /** radius.so's `radius-config-file`: the radiusclient.conf to read (default /etc/radiusclient/radiusclient.conf). */
  radiusConfigFile?: string;
}

/** The options whose value is a number of some unit, with pppd's bounds (inclusive). */
export const NUMERIC_OPTIONS = {
  'lcp-echo-interval': { field: 'lcpEchoInterval', min: 0, max: 86400 },
  'lcp-echo-failure': { field: 'lcpEchoFailure', min: 0, max: 1000 },
  'lcp-max-configure': { field: 'lcpMaxConfigure', min: 1, max: 1000 },
  'lcp-max-terminate': { field: 'lcpMaxTerminate', min: 1, max: 1000 },
  'lcp-max-failure': { field: 'lcpMaxFailure', min: 1, max: 1000 },
  'lcp-restart': { field: 'lcpRestart', min: 1, max: 3600 },
  'ipcp-max-configure': { field: 'ipcpMaxConfigure', min: 1, max: 1000 },
  'ipcp-max-terminate': { field: 'ipcpMaxTerminate', min: 1, max: 1000 },
  'ipcp-max-failure': { field: 'ipcpMaxFailure', min: 1, max: 1000 },
  'ipcp-restart': { field: 'ipcpRestart', min: 1, max: 3600 },
  'chap-restart': { field: 'chapRestart', min: 1, max: 3600 },
  'chap-max-challenge': { field: 'chapMaxChallenge', min: 1, max: 1000 },
  'chap-interval': { field: 'chapInterval', min: 0, max: 86400 },
  'pap-restart': { field: 'papRestart', min: 1, max: 3600 },
  'pap-max-authreq': { field: 'papMaxAuthreq', min: 1, max: 1000 },
  'pap-timeout': { field: 'papTimeout', min: 0, max: 3600 },
  mtu: { field: 'mtu', min: 128, max: 16384 },
  mru: { field: 'mru', min: 128, max: 16384 },
  kdebug: { field: 'kdebug', min: 0, max: 7 },
  idle: { field: 'idle', min: 0, max: 2 ** 31 - 1 },
  maxconnect: { field: 'maxconnect', min: 0, max: 2 ** 31 - 1 },
  holdoff: { field: 'holdoff', min: 0, max: 2 ** 31 - 1 },
  maxfail: { field: 'maxfail', min: 0, max: 2 ** 31 - 1 },
} as const satisfies Record<string, { field: keyof PppdOptions; min: number; max: number }>;

type BooleanField = {
  [K in keyof PppdOptions]-?: NonNullable<PppdOptions[K]> extends boolean ? K : never;
}[keyof PppdOptions];

/** Options without an argument that set a boolean field; aliases as in pppd. */
export const FLAG_OPTIONS: Record<string, [BooleanField, boolean]> = {
  auth: ['auth', true],
  noauth: ['auth', false],
  'require-pap': ['requirePap', true],
  '+pap': ['requirePap', true],
  'require-chap': ['requireChap', true],
  '+chap': ['requireChap', true],
  'require-mschap': ['requireMschap', true],
  '+mschap': ['requireMschap', true],
  'require-mschap-v2': ['requireMschapV2', true],
  '+mschap-v2': ['requireMschapV2', true],
  'require-eap': ['requireEap', true],
  'refuse-pap': ['refusePap', true],
  '-pap': ['refusePap', true],
  'refuse-chap': ['refuseChap', true],
  '-chap': ['refuseChap', true],
  'refuse-mschap': ['refuseMschap', true],
  '-mschap': ['refuseMschap', true],
  'refuse-mschap-v2': ['refuseMschapV2', true],
  '-mschap-v2': ['refuseMschapV2', true],
  'refuse-eap': ['refuseEap', true],
  'require-mppe': ['requireMppe', true],
  '+mppe': ['requireMppe', true],
  'require-mppe-40': ['requireMppe40', true],
  '+mppe-40': ['requireMppe40', true],
  'require-mppe-128': ['requireMppe128', true],
  '+mppe-128': ['requireMppe128', true],
  nomppe: ['nomppe', true],
  '-mppe': ['nomppe', true],
  'nomppe-40': ['nomppe40', true],
  '-mppe-40': ['nomppe40', true],
  'nomppe-128': ['nomppe128', true],
  '-mppe-128': ['nomppe128', true],
  'mppe-stateful': ['mppeStateful', true],
  'nomppe-stateful': ['mppeStateful', false],
  'mppe-stateful-preferred': ['mppeStatefulPreferred', true],
  noccp: ['noccp', true],
  '-ccp': ['noccp', true],
  proxyarp: ['proxyarp', true],
  noproxyarp: ['proxyarp', false],
  '-proxyarp': ['proxyarp', false],
  defaultroute: ['defaultroute', true],
  nodefaultroute: ['defaultroute', false],
  '-defaultroute': ['defaultroute', false],
  usepeerdns: ['usepeerdns', true],
  'lcp-echo-adaptive': ['lcpEchoAdaptive', true],
  'ipcp-accept-local': ['ipcpAcceptLocal', true],
  'ipcp-accept-remote': ['ipcpAcceptRemote', true],
  noipdefault: ['noipdefault', true],
  '+ipv6': ['ipv6', true],
  noipv6: ['ipv6', false],
  '-ipv6': ['ipv6', false],
  dump: ['dump', true],
  persist: ['persist', true],
  nopersist: ['persist', false],
  'chapms-strip-domain': ['chapmsStripDomain', true],
};

type StringField =
  | 'name'
  | 'remotename'
  | 'user'
  | 'password'
  | 'logfile'
  | 'ipparam'
  | 'ipUpScript'
  | 'ipDownScript';

/** Options whose argument is kept as written. */
export const STRING_OPTIONS: Record<string, StringField> = {
  name: 'name',
  remotename: 'remotename',
  user: 'user',
  password: 'password',
  logfile: 'logfile',
  ipparam: 'ipparam',
  'ip-up-script': 'ipUpScript',
  'ip-down-script': 'ipDownScript',
};

/**
 * pppd options that mean nothing for PPTP over a userspace stack (serial lines, kernel tuning,
 * compressors other than MPPE, IPX, multilink...): accepted and ignored with a note. The value
 * is whether the option takes an argument.
 */
export const IGNORED_OPTIONS: Record<string, boolean> = {
  lock: false,
  nolock: false,
  modem: false,
  local: false,
  crtscts: false,
  nocrtscts: false,
  '-crtscts': false,
  cdtrcts: false,
  nocdtrcts: false,
  xonxoff: false,
  asyncmap: true,
  'default-asyncmap': false,
  '-am': false,
  escape: true,
  nobsdcomp: false,
  '-bsdcomp': false,
  bsdcomp: true,
  nodeflate: false,
  '-deflate': false,
  deflate: true,
  nodeflatedraft: false,
  nopredictor1: false,
  predictor1: false,
  novj: false,
  '-vj': false,
  novjccomp: false,
  '-vjccomp': false,
  'vj-max-slots': true,
  nopcomp: false,
  '-pc': false,
  noaccomp: false,
  '-ac': false,
  nomagic: false,
  passive: false,
  silent: false,
  nologfd: false,
  logfd: true,
  'hide-password': false,
  'show-password': false,
  noipx: false,
  '-ipx': false,
  nomultilink: false,
  noendpoint: false,
  'default-mru': false,
  nodetach: false,
  updetach: false,
  ktune: false,
  noktune: false,
  usehostname: false,
  'nomppe-56': false,
  '-mppe-56': false,
  nomppc: false,
  'ipv6cp-use-ipaddr': false,
  'ipv6cp-accept-local': false,
  'ipv6cp-use-persistent': false,
  connect: true,
  disconnect: true,
  init: true,
  'connect-delay': true,
  linkname: true,
  unit: true,
  ifname: true,
};

/** pppd options we refuse because ignoring them would change security or behaviour silently. */
export const UNSUPPORTED_OPTIONS: Record<string, { arg: boolean; why: string }> = {
  'require-mppe-56': { arg: false, why: '56-bit MPPE is not supported (use require-mppe-128)' },
  '+mppe-56': { arg: false, why: '56-bit MPPE is not supported (use require-mppe-128)' },
  login: { arg: false, why: 'checking passwords against the system password database is not supported' },
  papcrypt: { arg: false, why: 'crypt()ed PAP secrets are not supported' },
  multilink: { arg: false, why: 'multilink PPP is not supported' },
  mrru: { arg: true, why: 'multilink PPP is not supported' },
  demand: { arg: false, why: 'dial on demand does not apply to a PPTP server' },
  pty: { arg: true, why: 'poptop carries PPP itself; pty is not supported' },
  noip: { arg: false, why: 'IPCP cannot be disabled' },
  allow_ip: { arg: true, why: 'allow-ip lists are not supported (use the address column of chap-secrets)' },
  'allow-ip': { arg: true, why: 'allow-ip lists are not supported (use the address column of chap-secrets)' },
};

/** What the MPPE options amount to, pppd's way (ccp.c). */
export interface MppePolicy {
  /** The link must be encrypted: CCP must agree on MPPE or the link is closed. */
  required: boolean;
  allow40: boolean;
  allow128: boolean;
  /** Stateful mode allowed if the peer insists (pppd always asks for stateless first). */
  allowStateful: boolean;
}

/**
 * `require-mppe` asks for 40 or 128 bits; `require-mppe-40`/`-128` add just that strength;
 * `nomppe-40`/`-128` then remove one; `nomppe` and `noccp` switch MPPE off. Without any
 * require-*, MPPE is allowed (40 and 128 unless removed) when the peer asks for it.
 */
export function mppePolicy(o: PppdOptions): MppePolicy {
  const required = Boolean(o.requireMppe || o.requireMppe40 || o.requireMppe128);
  const off = Boolean(o.nomppe || o.noccp);
  let allow40 = required ? Boolean(o.requireMppe || o.requireMppe40) : true;
  let allow128 = required ? Boolean(o.requireMppe || o.requireMppe128) : true;
  if (o.nomppe40 || off) allow40 = false;
  if (o.nomppe128 || off) allow128 = false;
  return { required: required && !off, allow40, allow128, allowStateful: o.mppeStateful === true };
}
