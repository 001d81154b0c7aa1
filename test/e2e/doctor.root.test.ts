/**
 * `poptop doctor` on a real host: a network namespace with an nftables ruleset that drops input,
 * then one that lets PPTP in, then a process holding TCP 1723. Needs root (namespaces, nft).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createTopology, NsProcess, POPTOP, sh, type Topology, writeServerConfig } from './netns.ts';

let topo: Topology;
let conf: string;

before(() => {
  topo = createTopology(0, `d${process.pid % 10000}`);
  conf = writeServerConfig(topo.dir, {
    remoteip: '10.77.0.10-11',
    users: [{ user: 'alice', password: 'pw' }],
  });
});

after(() => topo?.destroy());

interface Report {
  ok: boolean;
  findings: { check: string; level: string; message: string; fix?: string }[];
}

function doctor(): { code: number | null; report: Report } {
  const r = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      topo.server,
      process.execPath,
      POPTOP,
      'doctor',
      '--json',
      '-c',
      conf,
      '--global-options',
      'none',
      '--secrets',
      join(topo.dir, 'chap-secrets'),
    ],
    { encoding: 'utf8' },
  );
  return { code: r.status, report: JSON.parse(r.stdout) as Report };
}

function nft(rules: string): void {
  const file = join(topo.dir, 'rules.nft');
  writeFileSync(file, `flush ruleset\n${rules}`);
  sh('ip', ['netns', 'exec', topo.server, 'nft', '-f', file]);
}

const has = (r: Report, check: string, level: string): boolean =>
  r.findings.some((f) => f.check === check && f.level === level);

test('doctor in a namespace: a closing firewall is a blocker, an open one is not; port 1723 held by another process', async () => {
  nft(`table inet filter {
  chain input { type filter hook input priority filter; policy drop; iif "lo" accept; tcp dport 22 accept; }
}
`);
  const closed = doctor();
  assert.equal(closed.code, 1, JSON.stringify(closed.report, null, 2));
  assert.equal(closed.report.ok, false);
  assert.ok(has(closed.report, 'firewall-tcp', 'error'));
  assert.ok(has(closed.report, 'firewall-gre', 'error'));
  assert.ok(has(closed.report, 'ip_forward', 'warn'), 'a new namespace does not forward');
  assert.ok(has(closed.report, 'secrets', 'ok'));
  assert.ok(has(closed.report, 'tun', 'ok'));
  assert.ok(has(closed.report, 'tun-filter', 'ok'), 'root may load the eBPF drop filter');

  nft(`table inet filter {
  chain input { type filter hook input priority filter; policy drop; iif "lo" accept; tcp dport { 22, 1723 } accept; meta l4proto gre accept; }
}
`);
  const open = doctor();
  assert.equal(open.code, 0, JSON.stringify(open.report, null, 2));
  assert.ok(has(open.report, 'firewall', 'ok'));
  assert.ok(has(open.report, 'port', 'ok'));

  const holder = new NsProcess('holder', topo.server, [
    process.execPath,
    '-e',
    "require('net').createServer().listen(1723, () => console.log('holding'))",
  ]);
  try {
    await holder.waitFor(/holding/, 10_000);
    const busy = doctor();
    assert.equal(busy.code, 1);
    const port = busy.report.findings.find((f) => f.check === 'port');
    assert.equal(port?.level, 'error');
    assert.match(port!.message, new RegExp(`node \\(pid ${holder.child.pid}\\)`));
  } finally {
    holder.signal('SIGKILL');
    await holder.exited(5000).catch(() => null);
  }
});
