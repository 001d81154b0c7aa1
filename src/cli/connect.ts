import { PptpClient } from '../client/client.ts';
import { RawGreSocket } from '../net/gre-socket.ts';
import { IpRoute } from '../net/iproute.ts';
import { TunInterface } from '../net/tun.ts';
import type { AuthMethod } from '../ppp/auth/types.ts';
import { defaultPolicy, type PppPolicy } from '../ppp/policy.ts';
import { methodName } from '../server/session.ts';
import { TUNNEL_HEADROOM } from '../tunnel/call.ts';
import { SystemClock } from '../util/clock.ts';
import { consoleLogger } from '../util/log.ts';
import { formatIPv4, parseIPv4 } from '../wire/ip.ts';
import { type FlagSpec, flag, has, intFlag, type ParsedArgs, UsageError } from './args.ts';
import { PASSWORD_FLAGS, resolvePassword } from './password.ts';

export const CONNECT_FLAGS = [
  { name: 'user', short: ['u'], value: true },
  ...PASSWORD_FLAGS,
  { name: 'mppe', value: true },
  { name: 'stateful', value: false },
  { name: 'auth', value: true },
  { name: 'tun', value: true },
  { name: 'mtu', value: true },
  { name: 'mru', value: true },
  { name: 'route', value: true, repeat: true },
  { name: 'lcp-echo-interval', value: true },
  { name: 'lcp-echo-failure', value: true },
  { name: 'debug', short: ['d'], value: false },
] as const satisfies readonly FlagSpec[];

const METHODS: Record<string, AuthMethod> = {
  mschapv2: 'mschapv2',
  'mschap-v2': 'mschapv2',
  mschap: 'mschap',
  chap: 'chap-md5',
  'chap-md5': 'chap-md5',
  pap: 'pap',
};

/** The client policy from `poptop connect` flags (secure by default: MS-CHAPv2 + MPPE-128). */
export function clientPolicy(args: ParsedArgs): PppPolicy {
  const p = defaultPolicy('client');
  const auth = flag(args, 'auth');
  if (auth !== undefined) {
    p.auth.accept = auth.split(',').map((m) => {
      const method = METHODS[m.trim().toLowerCase()];
      if (!method) throw new UsageError(`--auth: unknown method "${m}" (mschapv2, mschap, chap, pap)`);
      return method;
    });
  }
  const mppe = flag(args, 'mppe') ?? '128';
  if (mppe === 'none')
    p.mppe = { required: false, allow40: false, allow56: false, allow128: false, statefulAllowed: false };
  else {
    const bits = mppe.split(',');
    if (bits.some((b) => !['40', '56', '128'].includes(b)))
      throw new UsageError('--mppe expects 128, 56, 40 (comma-separated) or none');
    p.mppe = {
      required: true,
      allow40: bits.includes('40'),
      allow56: bits.includes('56'),
      allow128: bits.includes('128'),
      statefulAllowed: has(args, 'stateful'),
      preferStateful: has(args, 'stateful'),
    };
  }
  const mtu = intFlag(args, 'mtu', 576, 1500);
  if (mtu !== undefined) p.mtu = mtu;
  const mru = intFlag(args, 'mru', 576, 1500);
  if (mru !== undefined) p.mru = mru;
  const ei = intFlag(args, 'lcp-echo-interval', 0, 3600);
  if (ei !== undefined) p.lcpEchoInterval = ei;
  const ef = intFlag(args, 'lcp-echo-failure', 0, 100);
  if (ef !== undefined) p.lcpEchoFailure = ef;
  return p;
}

/** `poptop connect SERVER --user U --password-file F` (see password.ts for the sources): resolves with the exit code after disconnecting. */
export async function connect(args: ParsedArgs): Promise<number> {
  const serverText = args.positional[0];
  if (!serverText) throw new UsageError('connect needs the server address');
  const server = parseIPv4(serverText);
  if (server === undefined) throw new UsageError(`connect: "${serverText}" is not an IPv4 address`);
  const user = flag(args, 'user');
  if (!user) throw new UsageError('connect needs --user');
  const policy = clientPolicy(args);
  const routes = (args.flags.get('route') ?? []).map((r) => {
    const [net, len] = r.split('/');
    const ip = parseIPv4(net ?? '');
    const prefix = Number(len ?? '32');
    if (ip === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) {
      throw new UsageError(`--route expects ADDRESS/PREFIX, got "${r}"`);
    }
    return { ip, prefix };
  });
  const password = await resolvePassword(args, 'connect');
  const log = consoleLogger({ debug: has(args, 'debug') });
  let gre: RawGreSocket;
  let tun: TunInterface;
  try {
    gre = new RawGreSocket({ log });
    tun = new TunInterface({ name: flag(args, 'tun') ?? 'pptp%d', headroom: TUNNEL_HEADROOM, log });
  } catch (e) {
    log.error((e as Error).message);
    return 1;
  }
  const ip = new IpRoute();
  let exitCode = 0;
  const client = new PptpClient({
    server,
    user,
    password,
    policy,
    clock: new SystemClock(),
    log,
    gre,
    onUp: (info) => {
      void (async () => {
        try {
          await ip.disableIpv6(tun.name);
          await ip.setMtu(tun.name, info.mtu);
          await ip.addPeerAddress(tun.name, info.localAddress, info.peerAddress);
          await ip.setLinkUp(tun.name);
          for (const r of routes) await ip.addRoute(tun.name, r.ip, r.prefix);
        } catch (e) {
          log.error(`cannot configure ${tun.name}: ${(e as Error).message}`);
        }
        const mppe = info.mppe
          ? `MPPE ${info.mppe.bits}-bit ${info.mppe.stateless ? 'stateless' : 'stateful'}`
          : 'no encryption';
        const dns = info.dns.length ? `; DNS ${info.dns.map(formatIPv4).join(', ')}` : '';
        process.stdout.write(
          `connected: ${tun.name} ${formatIPv4(info.localAddress)} -> ${formatIPv4(info.peerAddress)}, ${methodName(info.method)}, ${mppe}, mtu ${info.mtu}${dns}\n`,
        );
      })();
    },
    onIp: (p) => tun.write(p),
    // While the GRE send queue is full the TUN device is not read: the kernel drops the excess.
    onAccepting: (accepting) => tun.setPaused(!accepting),
    onDown: (reason) => log.info(`disconnected: ${reason}`),
  });
  tun.onPacket((p) => client.sendFromTun(p, tun.headroom));
  return new Promise<number>((resolve) => {
    const finish = (): void => {
      tun.close();
      gre.close();
      resolve(exitCode);
    };
    let stopping = false;
    const stop = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      log.info(`${sig}: disconnecting`);
      void client.close('closed by the user');
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    client.start();
    // Ends on Ctrl-C, or on its own (server hung up, authentication failed).
    void client.done.then(() => {
      exitCode = stopping || client.network ? 0 : 1;
      finish();
    });
  });
}
