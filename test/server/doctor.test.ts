import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkFirewall,
  checkForwarding,
  checkMtu,
  checkOverlap,
  checkPool,
  checkPort,
  checkProxyArp,
  checkRpFilter,
  checkSecrets,
  checkTun,
  checkTunFilter,
  type DoctorConfig,
  type DoctorHost,
  type Finding,
  formatFindings,
  type HostInterface,
  hasBlocker,
  runDoctor,
} from '../../src/server/doctor.ts';
import { parseIPv4 } from '../../src/wire/ip.ts';

const ip = (s: string) => parseIPv4(s)!;

interface FakeHostInit {
  files?: Record<string, string>;
  stats?: Record<string, { mode: number; uid: number }>;
  commands?: Record<string, { code: number; stdout: string }>;
  interfaces?: HostInterface[];
}

/** A host made of the given /proc files, stats, command outputs (by "cmd args") and addresses. */
function fakeHost(o: FakeHostInit): DoctorHost & { ran: string[] } {
  const ran: string[] = [];
  return {
    ran,
    readFile: (p) => o.files?.[p],
    stat: (p) => o.stats?.[p],
    run: (cmd, args) => {
      const key = [cmd, ...args].join(' ');
      ran.push(key);
      return o.commands?.[key];
    },
    interfaces: () => o.interfaces ?? [],
  };
}

const cfg: DoctorConfig = {
  secretsPath: '/etc/ppp/chap-secrets',
  localIps: [ip('10.77.0.1')],
  remoteIps: [ip('10.77.0.10'), ip('10.77.0.11')],
  maxConnections: 2,
  delegate: false,
  proxyArp: false,
  mtu: 1400,
  mru: 1400,
  tunName: 'poptop0',
  port: 1723,
};

const eth0: HostInterface = { name: 'eth0', address: ip('192.168.0.2'), prefix: 24 };

function levels(f: Finding[]): string[] {
  return f.map((x) => `${x.check}:${x.level}`);
}

test('ip_forward and rp_filter from /proc', () => {
  const off = checkForwarding(fakeHost({ files: { '/proc/sys/net/ipv4/ip_forward': '0\n' } }));
  assert.deepEqual(levels(off), ['ip_forward:warn']);
  assert.match(off[0]!.fix!, /sysctl -w net\.ipv4\.ip_forward=1/);
  assert.deepEqual(levels(checkForwarding(fakeHost({ files: { '/proc/sys/net/ipv4/ip_forward': '1\n' } }))), [
    'ip_forward:ok',
  ]);
  const strict = checkRpFilter(
    fakeHost({
      files: {
        '/proc/sys/net/ipv4/conf/all/rp_filter': '1',
        '/proc/sys/net/ipv4/conf/default/rp_filter': '0',
      },
    }),
    cfg,
  );
  assert.deepEqual(levels(strict), ['rp_filter:warn']);
  assert.match(strict[0]!.fix!, /rp_filter=2/);
  const loose = checkRpFilter(
    fakeHost({
      files: {
        '/proc/sys/net/ipv4/conf/all/rp_filter': '2',
        '/proc/sys/net/ipv4/conf/poptop0/rp_filter': '0',
      },
    }),
    cfg,
  );
  assert.deepEqual(levels(loose), ['rp_filter:ok']);
});

test('proxy ARP: needed when clients sit in a LAN subnet, useless when they do not', () => {
  const lanCfg = { ...cfg, remoteIps: [ip('192.168.0.234')] };
  assert.deepEqual(levels(checkProxyArp(fakeHost({ interfaces: [eth0] }), lanCfg)), ['proxy_arp:warn']);
  const on = { ...lanCfg, proxyArp: true };
  const fwd = { '/proc/sys/net/ipv4/ip_forward': '1' };
  assert.deepEqual(levels(checkProxyArp(fakeHost({ interfaces: [eth0], files: fwd }), on)), ['proxy_arp:ok']);
  const noFwd = checkProxyArp(
    fakeHost({ interfaces: [eth0], files: { '/proc/sys/net/ipv4/ip_forward': '0' } }),
    on,
  );
  assert.match(noFwd[0]!.message, /forwarding is off/);
  const elsewhere = checkProxyArp(fakeHost({ interfaces: [eth0] }), { ...cfg, proxyArp: true });
  assert.match(elsewhere[0]!.message, /proxy ARP does nothing/);
});

const IPTABLES_CLOSED = `*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
*nat
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 10.77.0.0/24 -o eth0 -j MASQUERADE
COMMIT
`;
const IPTABLES_OPEN = IPTABLES_CLOSED.replace(
  '-A INPUT -i lo -j ACCEPT',
  '-A INPUT -i lo -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 1723 -j ACCEPT\n-A INPUT -p gre -j ACCEPT',
);
const NFT_CLOSED = `table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		tcp dport 22 accept
	}
	chain output {
		type filter hook output priority filter; policy accept;
	}
}
`;
const NFT_OPEN = NFT_CLOSED.replace(
  'tcp dport 22 accept',
  'tcp dport { 22, 1723 } accept\n\t\tmeta l4proto gre accept',
);

test('firewall: iptables and nftables rules that drop TCP 1723 or GRE are errors with the fix', () => {
  const closed = checkFirewall(
    fakeHost({ commands: { 'iptables-save': { code: 0, stdout: IPTABLES_CLOSED } } }),
    cfg,
  );
  assert.deepEqual(levels(closed), ['firewall-tcp:error', 'firewall-gre:error', 'conntrack-pptp:warn']);
  assert.match(closed[0]!.fix!, /iptables -I INPUT -p tcp --dport 1723 -j ACCEPT/);
  assert.match(closed[1]!.message, /619/);
  assert.match(closed[2]!.fix!, /nf_conntrack_pptp/);
  const open = checkFirewall(
    fakeHost({
      commands: { 'iptables-save': { code: 0, stdout: IPTABLES_OPEN } },
      files: { '/proc/modules': 'nf_conntrack_pptp 16384 0 - Live 0x0\nnf_nat 1 0 - Live\n' },
    }),
    cfg,
  );
  assert.deepEqual(levels(open), ['firewall:ok', 'conntrack-pptp:ok']);

  const nftClosed = checkFirewall(
    fakeHost({ commands: { 'nft list ruleset': { code: 0, stdout: NFT_CLOSED } } }),
    cfg,
  );
  assert.deepEqual(levels(nftClosed), ['firewall-tcp:error', 'firewall-gre:error']);
  assert.match(nftClosed[1]!.fix!, /meta l4proto gre accept/);
  const nftOpen = checkFirewall(
    fakeHost({ commands: { 'nft list ruleset': { code: 0, stdout: NFT_OPEN } } }),
    cfg,
  );
  assert.deepEqual(levels(nftOpen), ['firewall:ok']);
  const none = checkFirewall(fakeHost({}), cfg);
  assert.deepEqual(levels(none), ['firewall:info']);
  const unfiltered = checkFirewall(
    fakeHost({ commands: { 'nft list ruleset': { code: 0, stdout: '' } } }),
    cfg,
  );
  assert.deepEqual(levels(unfiltered), ['firewall:ok']);
});

test('port 1723: free, ours, or held by another process named with its pid', () => {
  const key = 'ss -ltnpH sport = :1723';
  assert.deepEqual(levels(checkPort(fakeHost({ commands: { [key]: { code: 0, stdout: '' } } }), cfg)), [
    'port:ok',
  ]);
  const pptpd = checkPort(
    fakeHost({
      commands: {
        [key]: { code: 0, stdout: 'LISTEN 0 100 0.0.0.0:1723 0.0.0.0:* users:(("pptpd",pid=812,fd=6))\n' },
      },
    }),
    cfg,
  );
  assert.deepEqual(levels(pptpd), ['port:error']);
  assert.match(pptpd[0]!.message, /pptpd \(pid 812\)/);
  assert.match(pptpd[0]!.fix!, /systemctl disable --now pptpd/);
  const ours = checkPort(
    fakeHost({
      commands: { [key]: { code: 0, stdout: 'LISTEN 0 511 *:1723 *:* users:(("node",pid=99,fd=20))\n' } },
      files: { '/proc/99/cmdline': '/usr/bin/node\0/usr/lib/poptop/bin/poptop.js\0serve\0' },
    }),
    cfg,
  );
  assert.deepEqual(levels(ours), ['port:ok']);
  assert.deepEqual(checkPort(fakeHost({}), cfg), [], 'no ss: no finding');
});

test('secrets: missing, readable by others, not root-owned, syntax errors, empty', () => {
  const path = cfg.secretsPath;
  assert.deepEqual(levels(checkSecrets(fakeHost({}), cfg)), ['secrets:error']);
  const good = 'alice * "pw" *\n';
  assert.deepEqual(
    levels(
      checkSecrets(fakeHost({ files: { [path]: good }, stats: { [path]: { mode: 0o100600, uid: 0 } } }), cfg),
    ),
    ['secrets:ok'],
  );
  const loose = checkSecrets(
    fakeHost({ files: { [path]: good }, stats: { [path]: { mode: 0o100644, uid: 1000 } } }),
    cfg,
  );
  assert.deepEqual(levels(loose), ['secrets-mode:warn', 'secrets-owner:warn']);
  assert.match(loose[0]!.message, /every user/);
  assert.match(loose[0]!.fix!, /chmod 600/);
  const bad = checkSecrets(
    fakeHost({
      files: { [path]: 'alice * "pw" 10.0.0.999\n' },
      stats: { [path]: { mode: 0o100600, uid: 0 } },
    }),
    cfg,
  );
  assert.ok(
    bad.some((f) => f.check === 'secrets-syntax' && /chap-secrets:1:/.test(f.message)),
    JSON.stringify(bad),
  );
  const empty = checkSecrets(
    fakeHost({ files: { [path]: '# nobody\n' }, stats: { [path]: { mode: 0o100600, uid: 0 } } }),
    cfg,
  );
  assert.deepEqual(levels(empty), ['secrets-syntax:error']);
});

test('pool vs connections, MTU vs the default route, TUN, address clashes', () => {
  assert.deepEqual(levels(checkPool(cfg)), ['pool:ok']);
  assert.deepEqual(levels(checkPool({ ...cfg, maxConnections: 100 })), ['pool:info']);
  assert.deepEqual(levels(checkPool({ ...cfg, remoteIps: [] })), ['pool:error']);
  assert.deepEqual(checkPool({ ...cfg, remoteIps: [], delegate: true }), []);

  const route = {
    'ip -o -4 route show default': { code: 0, stdout: 'default via 192.168.0.1 dev eth0 proto dhcp\n' },
  };
  const mtu1500 = fakeHost({ commands: route, files: { '/sys/class/net/eth0/mtu': '1500\n' } });
  assert.deepEqual(levels(checkMtu(mtu1500, cfg)), ['mtu:ok']);
  const big = checkMtu(mtu1500, { ...cfg, mtu: 1480 });
  assert.deepEqual(levels(big), ['mtu:warn']);
  assert.match(big[0]!.fix!, /^mtu 1400 /);
  const pppoe = checkMtu(fakeHost({ commands: route, files: { '/sys/class/net/eth0/mtu': '1420\n' } }), cfg);
  assert.deepEqual(levels(pppoe), ['mtu:warn', 'mtu:warn']);
  assert.match(pppoe[1]!.fix!, /^mru 1378 /);

  assert.deepEqual(levels(checkTun(fakeHost({ stats: { '/dev/net/tun': { mode: 0o20666, uid: 0 } } }))), [
    'tun:ok',
  ]);
  assert.match(checkTun(fakeHost({}))[0]!.fix!, /modprobe tun/);

  assert.deepEqual(levels(checkOverlap(fakeHost({ interfaces: [eth0] }), cfg)), ['overlap:ok']);
  const clash = checkOverlap(
    fakeHost({ interfaces: [eth0, { name: 'eth1', address: ip('10.77.0.11'), prefix: 24 }] }),
    cfg,
  );
  assert.deepEqual(levels(clash), ['overlap:error', 'overlap:info']);
  assert.match(clash[0]!.message, /10\.77\.0\.11.*eth1/);
  const ownTun = checkOverlap(
    fakeHost({ interfaces: [{ name: 'poptop0', address: ip('10.77.0.1'), prefix: 32 }] }),
    cfg,
  );
  assert.deepEqual(levels(ownTun), ['overlap:ok'], 'our own TUN device is not a clash');
  const at = (name: string) =>
    levels(checkOverlap(fakeHost({ interfaces: [{ name, address: ip('10.77.0.11'), prefix: 32 }] }), cfg))[0];
  assert.equal(at('poptop0w1'), 'overlap:ok', "a worker's TUN device (workers N) is ours too");
  assert.equal(at('poptop0wan'), 'overlap:error', 'a name that only starts like it is not');
});

test('runDoctor: all checks; a blocker makes the result fail; the text names each fix', () => {
  const host = fakeHost({
    files: { '/proc/sys/net/ipv4/ip_forward': '1', [cfg.secretsPath]: 'alice * pw *\n' },
    stats: { '/dev/net/tun': { mode: 0o20666, uid: 0 }, [cfg.secretsPath]: { mode: 0o100600, uid: 0 } },
    commands: { 'iptables-save': { code: 0, stdout: IPTABLES_CLOSED } },
    interfaces: [eth0],
  });
  const findings = runDoctor(host, cfg);
  assert.ok(hasBlocker(findings));
  const text = formatFindings(findings);
  assert.match(text, /^ERROR .*TCP port 1723/m);
  assert.match(text, /^ {6}fix: iptables -I INPUT -p gre -j ACCEPT$/m);
  assert.ok(host.ran.includes('ss -ltnpH sport = :1723'));
  const open = fakeHost({
    files: { '/proc/sys/net/ipv4/ip_forward': '1', [cfg.secretsPath]: 'alice * pw *\n' },
    stats: { '/dev/net/tun': { mode: 0o20666, uid: 0 }, [cfg.secretsPath]: { mode: 0o100600, uid: 0 } },
    interfaces: [eth0],
  });
  assert.ok(!hasBlocker(runDoctor(open, cfg)));
});

test('tun-filter: the eBPF drop filter available is ok; refused is a note with the capability to add, never a blocker', () => {
  let asked: number | undefined;
  const ok = checkTunFilter(
    {
      ...fakeHost({}),
      tunDropList: (sessions) => {
        asked = sessions;
        return undefined;
      },
    },
    241,
  );
  assert.equal(asked, 241, 'probed for the sessions the configuration allows');
  assert.deepEqual(
    ok.map((f) => [f.check, f.level]),
    [['tun-filter', 'ok']],
  );
  const refused = checkTunFilter(
    {
      ...fakeHost({}),
      tunDropList: () => 'eBPF needs root or CAP_BPF (bpf BPF_MAP_CREATE: Operation not permitted)',
    },
    241,
  );
  assert.equal(refused.length, 1);
  assert.equal(refused[0]!.level, 'info');
  assert.match(
    refused[0]!.message,
    /^no eBPF drop filter \(eBPF needs root or CAP_BPF .*\): a flood towards one client/,
  );
  assert.match(refused[0]!.fix ?? '', /CAP_BPF/);
  assert.ok(!hasBlocker(refused));
  assert.deepEqual(checkTunFilter(fakeHost({}), 241), [], 'not checked where the host cannot tell');
});
