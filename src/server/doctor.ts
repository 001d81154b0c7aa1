import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { parseChapSecrets } from '../config/chap-secrets-file.ts';
import { formatIssue } from '../config/issues.ts';
import { probeTunDropList } from '../net/tun-filter.ts';
import { probeTunSteering } from '../net/tun-queues.ts';
import { escapeControls } from '../util/escape.ts';
import { formatIPv4, type IPv4, parseIPv4 } from '../wire/ip.ts';

/**
 * `poptop doctor`: the host checks an administrator used to do by hand from the pptpd FAQ, each
 * finding said in words with its fix. The checks read the host only through DoctorHost (files
 * under /proc and /sys, a few commands), so tests give them any host they like.
 *
 * Levels: "error" would stop clients connecting (the exit status is then 1), "warn" breaks
 * something for some set-ups, "ok" and "info" are for the reader.
 */

export type FindingLevel = 'ok' | 'info' | 'warn' | 'error';

export interface Finding {
  /** Stable name of the check (for --json readers). */
  check: string;
  level: FindingLevel;
  message: string;
  /** What to do about it (absent for "ok"). */
  fix?: string;
}

export interface HostInterface {
  name: string;
  address: IPv4;
  prefix: number;
}

/** How the checks see the host. */
export interface DoctorHost {
  /** A file's text, or undefined when it cannot be read. */
  readFile(path: string): string | undefined;
  /** Mode and owner of a path, or undefined when it does not exist. */
  stat(path: string): { mode: number; uid: number } | undefined;
  /** A command's exit code and output, or undefined when the command is not installed. */
  run(cmd: string, args: string[]): { code: number; stdout: string } | undefined;
  /** The host's IPv4 addresses. */
  interfaces(): HostInterface[];
  /** Whether poptop's eBPF programs (the TUN drop list, the workers' steering) can be set up here: undefined if so, else why not (absent: not checked). */
  tunDropList?(sessions: number): string | undefined;
}

/** What of the configuration the checks look at (server/settings.ts has it, plus the secrets path). */
export interface DoctorConfig {
  secretsPath: string;
  localIps: readonly IPv4[];
  remoteIps: readonly IPv4[];
  maxConnections: number;
  delegate: boolean;
  proxyArp: boolean;
  mtu: number;
  mru: number;
  tunName: string;
  port: number;
}

/** Outer IPv4 (20) + enhanced GRE with sequence and acknowledgement (16) + PPP protocol (2) + MPPE (2) + slack. */
export const PPTP_OVERHEAD = 42;

function sysctl(host: DoctorHost, name: string): string | undefined {
  return host.readFile(`/proc/sys/${name.replace(/\./g, '/')}`)?.trim();
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

function inSubnet(ip: IPv4, iface: HostInterface): boolean {
  const m = mask(iface.prefix);
  return (ip & m) >>> 0 === (iface.address & m) >>> 0;
}

// ---- the checks ----

export function checkForwarding(host: DoctorHost): Finding[] {
  const v = sysctl(host, 'net.ipv4.ip_forward');
  if (v === undefined) return [];
  if (v === '1') return [{ check: 'ip_forward', level: 'ok', message: 'IPv4 forwarding is on' }];
  return [
    {
      check: 'ip_forward',
      level: 'warn',
      message:
        'IPv4 forwarding is off: clients can reach this host only, not the LAN or the Internet behind it',
      fix: 'sysctl -w net.ipv4.ip_forward=1 (and net.ipv4.ip_forward=1 in /etc/sysctl.d/ to keep it)',
    },
  ];
}

export function checkRpFilter(host: DoctorHost, cfg: DoctorConfig): Finding[] {
  const all = sysctl(host, 'net.ipv4.conf.all.rp_filter');
  const tun =
    sysctl(host, `net.ipv4.conf.${cfg.tunName}.rp_filter`) ?? sysctl(host, 'net.ipv4.conf.default.rp_filter');
  const strict = all === '1' || tun === '1';
  if (all === undefined && tun === undefined) return [];
  if (!strict)
    return [{ check: 'rp_filter', level: 'ok', message: 'reverse-path filtering is loose or off' }];
  return [
    {
      check: 'rp_filter',
      level: 'warn',
      message:
        'strict reverse-path filtering (rp_filter=1) drops packets that arrive on another interface than the route back to their source: traffic routed asymmetrically through the tunnel (a client routing a LAN behind it) is dropped',
      fix: `sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.${cfg.tunName}.rp_filter=2 (loose mode)`,
    },
  ];
}

export function checkProxyArp(host: DoctorHost, cfg: DoctorConfig): Finding[] {
  if (cfg.delegate || cfg.remoteIps.length === 0) return [];
  const lan = host
    .interfaces()
    .filter(
      (i) => !isOurTun(i.name, cfg.tunName) && i.name !== 'lo' && cfg.remoteIps.some((ip) => inSubnet(ip, i)),
    );
  const out: Finding[] = [];
  if (cfg.proxyArp) {
    if (lan.length === 0) {
      out.push({
        check: 'proxy_arp',
        level: 'warn',
        message:
          'proxyarp is set, but no interface has the client addresses (remoteip) in its subnet: proxy ARP does nothing here',
        fix: 'take remoteip from the LAN subnet, or drop proxyarp and route the remoteip range to this host',
      });
    } else if (sysctl(host, 'net.ipv4.ip_forward') === '0') {
      out.push({
        check: 'proxy_arp',
        level: 'warn',
        message: `proxyarp answers for the clients on ${lan[0]!.name}, but IPv4 forwarding is off: LAN hosts' packets to the clients are not passed on`,
        fix: 'sysctl -w net.ipv4.ip_forward=1',
      });
    } else {
      out.push({ check: 'proxy_arp', level: 'ok', message: `proxy ARP for the clients on ${lan[0]!.name}` });
    }
  } else if (lan.length > 0) {
    out.push({
      check: 'proxy_arp',
      level: 'warn',
      message: `the client addresses (remoteip) are inside the subnet of ${lan[0]!.name}, but proxyarp is off: LAN hosts look for them on the LAN, find nobody, and cannot answer them`,
      fix: 'add proxyarp to the pppd options file, or take remoteip from a subnet of its own',
    });
  }
  return out;
}

/** What a firewall dump says about TCP 1723 and GRE on input: blocked or not. */
interface FirewallVerdict {
  tool: string;
  filters: boolean;
  tcpAccepted: boolean;
  greAccepted: boolean;
  nat: boolean;
  dnat1723: boolean;
}

export function readIptables(dump: string): FirewallVerdict {
  let table = '';
  let policyDrop = false;
  let catchAllDrop = false;
  let tcp = false;
  let gre = false;
  let nat = false;
  let dnat1723 = false;
  for (const raw of dump.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) table = line.slice(1);
    else if (table === 'filter' && /^:INPUT (DROP|REJECT)/.test(line)) policyDrop = true;
    else if (table === 'filter' && line.startsWith('-A INPUT ')) {
      const accept = / -j ACCEPT\b/.test(line);
      if (accept && /-p tcp\b/.test(line) && /--dports? (\S*,)?1723\b/.test(line)) tcp = true;
      if (accept && /-p (gre|47)\b/.test(line)) gre = true;
      if (accept && !/ -[pmsdi] /.test(line.replace('-A INPUT ', ' '))) {
        // "-A INPUT -j ACCEPT": everything is accepted from here on.
        if (!catchAllDrop) {
          tcp = true;
          gre = true;
        }
      }
      if (/ -j (DROP|REJECT)\b/.test(line) && !/ -[pmsdi] /.test(line.replace('-A INPUT ', ' ')))
        catchAllDrop = true;
    } else if (table === 'nat') {
      if (/-j (MASQUERADE|SNAT)\b/.test(line)) nat = true;
      if (/-j DNAT\b/.test(line) && /1723/.test(line)) dnat1723 = true;
    }
  }
  return {
    tool: 'iptables',
    filters: policyDrop || catchAllDrop,
    tcpAccepted: tcp,
    greAccepted: gre,
    nat,
    dnat1723,
  };
}

export function readNft(ruleset: string): FirewallVerdict {
  let filters = false;
  let inInput = false;
  let tcp = false;
  let gre = false;
  let nat = false;
  let dnat1723 = false;
  let depth = 0;
  let inputDepth = -1;
  for (const raw of ruleset.split('\n')) {
    const line = raw.trim();
    if (/\bhook input\b/.test(line)) {
      inInput = true;
      inputDepth = depth - 1;
      if (/policy drop/.test(line)) filters = true;
    }
    if (inInput) {
      if (/policy drop/.test(line)) filters = true;
      const accept = /\baccept\b/.test(line);
      if (accept && /tcp dport (\{[^}]*\b1723\b[^}]*\}|1723\b)/.test(line)) tcp = true;
      if (accept && /(ip protocol|meta l4proto) (\{[^}]*\b(gre|47)\b[^}]*\}|gre\b|47\b)/.test(line))
        gre = true;
      if (/^(drop|reject)\b/.test(line) || /^counter (packets \d+ bytes \d+ )?(drop|reject)\b/.test(line))
        filters = true;
    }
    if (/\b(masquerade|snat)\b/.test(line)) nat = true;
    if (/\bdnat\b/.test(line) && /1723/.test(line)) dnat1723 = true;
    depth += (line.match(/\{/g) ?? []).length - (line.match(/\}/g) ?? []).length;
    if (inInput && depth <= inputDepth) inInput = false;
  }
  return { tool: 'nftables', filters, tcpAccepted: tcp, greAccepted: gre, nat, dnat1723 };
}

export function checkFirewall(host: DoctorHost, cfg: DoctorConfig): Finding[] {
  const verdicts: FirewallVerdict[] = [];
  const nft = host.run('nft', ['list', 'ruleset']);
  if (nft && nft.code === 0) verdicts.push(readNft(nft.stdout));
  const ipt = host.run('iptables-save', []);
  if (ipt && ipt.code === 0 && ipt.stdout.includes('*')) verdicts.push(readIptables(ipt.stdout));
  const out: Finding[] = [];
  if (verdicts.length === 0) {
    return [
      {
        check: 'firewall',
        level: 'info',
        message: 'no firewall rules could be read (neither nft nor iptables-save answered)',
      },
    ];
  }
  for (const v of verdicts) {
    if (!v.filters) {
      out.push({ check: 'firewall', level: 'ok', message: `${v.tool}: input is not filtered` });
      continue;
    }
    if (!v.tcpAccepted) {
      out.push({
        check: 'firewall-tcp',
        level: 'error',
        message: `${v.tool} drops incoming connections and has no rule accepting TCP port ${cfg.port}: clients cannot reach the server (Windows error 800)`,
        fix:
          v.tool === 'nftables'
            ? `nft add rule inet filter input tcp dport ${cfg.port} accept (use your table and chain names)`
            : `iptables -I INPUT -p tcp --dport ${cfg.port} -j ACCEPT`,
      });
    }
    if (!v.greAccepted) {
      out.push({
        check: 'firewall-gre',
        level: 'error',
        message: `${v.tool} drops incoming packets and has no rule accepting GRE (IP protocol 47): the call comes up, then PPP never hears the client (Windows error 619, "LCP: timeout sending Config-Requests")`,
        fix:
          v.tool === 'nftables'
            ? 'nft add rule inet filter input meta l4proto gre accept (use your table and chain names)'
            : 'iptables -I INPUT -p gre -j ACCEPT',
      });
    }
    if (v.tcpAccepted && v.greAccepted) {
      out.push({ check: 'firewall', level: 'ok', message: `${v.tool} accepts TCP ${cfg.port} and GRE` });
    }
  }
  const nat = verdicts.some((v) => v.nat || v.dnat1723);
  if (nat) {
    const modules = host.readFile('/proc/modules') ?? '';
    const helper = /^nf_conntrack_pptp\b/m.test(modules);
    const natHelper = /^nf_nat_pptp\b/m.test(modules);
    const dnat = verdicts.some((v) => v.dnat1723);
    if (!helper || (dnat && !natHelper)) {
      out.push({
        check: 'conntrack-pptp',
        level: 'warn',
        message: `this host does NAT${dnat ? ` and forwards TCP ${cfg.port}` : ''}, and the PPTP connection-tracking helper is not loaded: PPTP through this NAT loses its GRE (only one client works at a time, or none)`,
        fix: 'modprobe nf_conntrack_pptp nf_nat_pptp, and assign the helper to TCP 1723 (kernels since 4.7 do not do it by themselves): iptables -t raw -A PREROUTING -p tcp --dport 1723 -j CT --helper pptp',
      });
    } else {
      out.push({
        check: 'conntrack-pptp',
        level: 'ok',
        message: 'the PPTP connection-tracking helper is loaded',
      });
    }
  }
  return out;
}

export function checkPort(host: DoctorHost, cfg: DoctorConfig): Finding[] {
  const r = host.run('ss', ['-ltnpH', `sport = :${cfg.port}`]);
  if (r?.code !== 0) return [];
  const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) return [{ check: 'port', level: 'ok', message: `TCP port ${cfg.port} is free` }];
  const users = [...r.stdout.matchAll(/\("([^"]*)",pid=(\d+)/g)].map((m) => ({
    name: m[1]!,
    pid: Number(m[2]),
  }));
  const ours = users.filter((u) =>
    /poptop/.test(host.readFile(`/proc/${u.pid}/cmdline`)?.replace(/\0/g, ' ') ?? ''),
  );
  if (users.length > 0 && ours.length === users.length) {
    return [
      { check: 'port', level: 'ok', message: `poptop is listening on TCP ${cfg.port} (pid ${ours[0]!.pid})` },
    ];
  }
  const who = users.length
    ? users.map((u) => `${escapeControls(u.name)} (pid ${u.pid})`).join(', ')
    : 'a process this user cannot see';
  return [
    {
      check: 'port',
      level: 'error',
      message: `TCP port ${cfg.port} is already in use by ${who}: poptop cannot listen for clients`,
      fix: users.some((u) => u.name === 'pptpd')
        ? 'stop pptpd first: systemctl disable --now pptpd'
        : `stop that process, or give poptop another address with listen in pptpd.conf`,
    },
  ];
}

export function checkSecrets(host: DoctorHost, cfg: DoctorConfig): Finding[] {
  const st = host.stat(cfg.secretsPath);
  const text = host.readFile(cfg.secretsPath);
  if (!st || text === undefined) {
    return [
      {
        check: 'secrets',
        level: 'error',
        message: `the secrets file ${cfg.secretsPath} ${st ? 'cannot be read' : 'does not exist'}: nobody can log in`,
        fix: `create it (client server secret addresses, one user per line), chmod 600 ${cfg.secretsPath}`,
      },
    ];
  }
  const out: Finding[] = [];
  if ((st.mode & 0o077) !== 0) {
    out.push({
      check: 'secrets-mode',
      level: 'warn',
      message: `${cfg.secretsPath} can be read by ${st.mode & 0o007 ? 'every user' : 'its group'} (mode ${(st.mode & 0o777).toString(8)}): the passwords in it are exposed`,
      fix: `chmod 600 ${cfg.secretsPath}`,
    });
  }
  if (st.uid !== 0) {
    out.push({
      check: 'secrets-owner',
      level: 'warn',
      message: `${cfg.secretsPath} belongs to uid ${st.uid}, not root: that user can change who may log in`,
      fix: `chown root: ${cfg.secretsPath}`,
    });
  }
  const { entries, issues } = parseChapSecrets(text, cfg.secretsPath);
  for (const i of issues) {
    out.push({
      check: 'secrets-syntax',
      level: i.severity === 'error' ? 'error' : 'warn',
      message: formatIssue(i),
      fix: 'correct that line (see docs/configuration.md, chap-secrets)',
    });
  }
  if (entries.length === 0 && !issues.some((i) => i.severity === 'error')) {
    out.push({
      check: 'secrets-syntax',
      level: 'error',
      message: `${cfg.secretsPath} has no users: nobody can log in`,
      fix: 'add a line: client server "password" *',
    });
  }
  if (out.length === 0)
    out.push({
      check: 'secrets',
      level: 'ok',
      message: `${cfg.secretsPath}: ${entries.length} users, mode 600`,
    });
  return out;
}

export function checkPool(cfg: DoctorConfig): Finding[] {
  if (cfg.delegate) return [];
  const n = cfg.remoteIps.length;
  if (n === 0) {
    return [
      {
        check: 'pool',
        level: 'error',
        message: 'remoteip gives no addresses: every client would be refused (Windows error 720)',
        fix: 'remoteip 192.168.1.10-100 in pptpd.conf',
      },
    ];
  }
  if (n < cfg.maxConnections) {
    return [
      {
        check: 'pool',
        level: 'info',
        message: `remoteip has ${n} addresses, fewer than connections (${cfg.maxConnections}): at most ${n} clients at once`,
        fix: 'widen remoteip if more clients must connect',
      },
    ];
  }
  return [
    { check: 'pool', level: 'ok', message: `${n} client addresses for ${cfg.maxConnections} connections` },
  ];
}

export function checkMtu(host: DoctorHost, cfg: DoctorConfig): Finding[] {
  const route = host.run('ip', ['-o', '-4', 'route', 'show', 'default']);
  const dev = route && route.code === 0 ? /\bdev (\S+)/.exec(route.stdout)?.[1] : undefined;
  if (!dev) return [];
  const pathMtu = Number(host.readFile(`/sys/class/net/${dev}/mtu`)?.trim());
  if (!Number.isFinite(pathMtu) || pathMtu <= 0) return [];
  const room = pathMtu - PPTP_OVERHEAD;
  const out: Finding[] = [];
  for (const [name, v] of [
    ['mtu', cfg.mtu],
    ['mru', cfg.mru],
  ] as const) {
    if (v > room) {
      out.push({
        check: 'mtu',
        level: 'warn',
        message: `${name} ${v} plus PPTP's ${PPTP_OVERHEAD} bytes of headers is more than the ${pathMtu}-byte MTU of ${dev}: full-size packets are fragmented or lost (pages that stall half-loaded)`,
        fix: `${name} ${Math.min(1400, room)} in the pppd options file`,
      });
    }
  }
  if (out.length === 0)
    out.push({
      check: 'mtu',
      level: 'ok',
      message: `mtu ${cfg.mtu}/mru ${cfg.mru} fit the ${pathMtu}-byte MTU of ${dev}`,
    });
  return out;
}

export function checkTun(host: DoctorHost): Finding[] {
  if (host.stat('/dev/net/tun')) return [{ check: 'tun', level: 'ok', message: '/dev/net/tun is there' }];
  return [
    {
      check: 'tun',
      level: 'error',
      message: '/dev/net/tun is missing: poptop cannot create its tunnel device',
      fix: 'modprobe tun; in a container, pass the device (docker run --device /dev/net/tun --cap-add NET_ADMIN)',
    },
  ];
}

/**
 * poptop's eBPF programs on its TUN device: the drop list (net/tun-filter.ts) and the workers'
 * steering (net/tun-queues.ts). Without them the server still works, at more CPU under a flood,
 * and workers need a device each (unset, `workers` is then one process).
 */
export function checkTunFilter(host: DoctorHost, sessions: number): Finding[] {
  if (!host.tunDropList) return [];
  const why = host.tunDropList(sessions);
  if (why === undefined)
    return [
      {
        check: 'tun-filter',
        level: 'ok',
        message:
          "the kernel takes poptop's eBPF programs: a flood towards one client is dropped before it is read, and the workers share one TUN device",
      },
    ];
  return [
    {
      check: 'tun-filter',
      level: 'info',
      message: `no eBPF drop filter (${why}): a flood towards one client, or beyond its rate limit, is read before it is dropped (more CPU, and the TUN queue all sessions share can fill); workers cannot share one TUN device, so unless \`workers\` is set one process serves`,
      fix: 'run as root or with CAP_BPF (Docker: --cap-add BPF; before Linux 5.8, --cap-add SYS_ADMIN)',
    },
  ];
}

/** Our TUN device, or one of our workers' (NAME + "w" + index, server/load-settings.ts). */
function isOurTun(name: string, tunName: string): boolean {
  return name === tunName || (name.startsWith(`${tunName}w`) && /^\d+$/.test(name.slice(tunName.length + 1)));
}

export function checkOverlap(host: DoctorHost, cfg: DoctorConfig): Finding[] {
  const ifs = host.interfaces().filter((i) => !isOurTun(i.name, cfg.tunName));
  const out: Finding[] = [];
  for (const ip of cfg.remoteIps) {
    const taken = ifs.find((i) => i.address === ip);
    if (taken) {
      out.push({
        check: 'overlap',
        level: 'error',
        message: `remoteip includes ${formatIPv4(ip)}, which is this host's address on ${taken.name}: a client given it would take the host's address`,
        fix: `remove ${formatIPv4(ip)} from remoteip`,
      });
    }
  }
  for (const ip of cfg.localIps.slice(0, 1)) {
    const taken = ifs.find((i) => i.address === ip);
    if (taken) {
      out.push({
        check: 'overlap',
        level: 'warn',
        message: `localip ${formatIPv4(ip)} is also the address of ${taken.name}: it works, but routes and proxy ARP for it become ambiguous`,
        fix: 'give localip an address of its own',
      });
    }
    const lan = ifs.find((i) => i.name !== 'lo' && i.address !== ip && inSubnet(ip, i));
    if (lan && !cfg.proxyArp) {
      out.push({
        check: 'overlap',
        level: 'info',
        message: `localip ${formatIPv4(ip)} lies in the subnet of ${lan.name} and proxyarp is off: hosts on that LAN look for it there and do not find it`,
      });
    }
  }
  if (out.length === 0)
    out.push({
      check: 'overlap',
      level: 'ok',
      message: "localip and remoteip do not clash with the host's addresses",
    });
  return out;
}

export interface DoctorOptions {
  /** Skip the port check (serve runs the checks while it is about to listen itself). */
  skipPort?: boolean;
}

/** Every check, in the order a reader wants them. */
export function runDoctor(host: DoctorHost, cfg: DoctorConfig, o: DoctorOptions = {}): Finding[] {
  return [
    ...checkTun(host),
    ...checkTunFilter(host, cfg.maxConnections),
    ...(o.skipPort ? [] : checkPort(host, cfg)),
    ...checkFirewall(host, cfg),
    ...checkSecrets(host, cfg),
    ...checkPool(cfg),
    ...checkOverlap(host, cfg),
    ...checkForwarding(host),
    ...checkRpFilter(host, cfg),
    ...checkProxyArp(host, cfg),
    ...checkMtu(host, cfg),
  ];
}

/** True when a finding would stop clients connecting. */
export function hasBlocker(findings: readonly Finding[]): boolean {
  return findings.some((f) => f.level === 'error');
}

const MARK: Record<FindingLevel, string> = { ok: 'ok   ', info: 'note ', warn: 'WARN ', error: 'ERROR' };

export function formatFindings(findings: readonly Finding[]): string {
  return findings
    .map((f) => `${MARK[f.level]} ${f.message}${f.fix ? `\n      fix: ${f.fix}` : ''}`)
    .join('\n')
    .concat('\n');
}

/** The real host: files, stat, commands with a short timeout, os.networkInterfaces(). */
export const realHost: DoctorHost = {
  readFile(path) {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return undefined;
    }
  },
  stat(path) {
    try {
      const s = statSync(path);
      return { mode: s.mode, uid: s.uid };
    } catch {
      return undefined;
    }
  },
  run(cmd, args) {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { code: r.status ?? 1, stdout: r.stdout ?? '' };
  },
  tunDropList: (sessions) => probeTunDropList() ?? probeTunSteering(sessions),
  interfaces() {
    const out: HostInterface[] = [];
    for (const [name, addrs] of Object.entries(networkInterfaces())) {
      for (const a of addrs ?? []) {
        if (a.family !== 'IPv4') continue;
        const ip = parseIPv4(a.address);
        const prefix = Number(a.cidr?.split('/')[1] ?? 32);
        if (ip !== undefined) out.push({ name, address: ip, prefix });
      }
    }
    return out;
  },
};
