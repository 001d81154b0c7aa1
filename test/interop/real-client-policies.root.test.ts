/**
 * Issue 6, the policy matrix: the real Linux client (pppd 2.4.9 + kernel MPPE in a QEMU guest)
 * against `poptop serve` configured for MPPE-40, stateful MPPE (with 2% loss towards the client,
 * which must recover by CCP Reset-Request), `require-mppe` against a 40-bit-only client, MS-CHAPv1, CHAP-MD5 without MPPE, and a PAP-only
 * client that must be refused. One server per policy, one guest per scenario.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { tsharkFields } from '../support/tshark.ts';
import { clientWithLink, GuestClient, guestWithLinkUp } from './guests.ts';
import { Bed, HOST_IP, NETNS, PoptopServer, TUNNEL_LOCAL, testbedSkip } from './testbed.ts';

const skip = testbedSkip();
let bed: Bed;
let server: PoptopServer | undefined;

before(() => {
  if (!skip) bed = new Bed();
});

after(async () => {
  await bed?.down();
});

const USERS = [{ user: 'alice', password: 'alice-pw' }];

/** Stops the previous server (the TUN device name is reused) and starts one with `options`. */
async function serve(name: string, options: string[]): Promise<PoptopServer> {
  if (server) assert.equal(await server.stop(), 0);
  server = await PoptopServer.start(bed, name, {
    options: ['name poptop', ...options],
    remoteip: '172.31.251.100-109',
    users: USERS,
  });
  return server;
}

/** Guest command: transfer with iperf3 once the server side is up (bounded retries). */
const iperf = (args: string) =>
  `i=0; until iperf3 -c $REMOTE_IP ${args}; do i=$((i+1)); [ $i -ge 150 ] && break; sleep 0.2; done`;

function iperfMbytes(out: string): number {
  const m = out.match(/([\d.]+) MBytes\s+[\d.]+ [KMG]bits\/sec\s+\d*\s+sender/);
  assert.ok(m, `no iperf3 summary in:\n${out}`);
  return Number(m[1]);
}

/**
 * Drop `percent`% of the GRE packets our server sends (towards the guests): `tc netem` on the
 * guest's tap when the kernel has it, else an nftables rule in the namespace. Returns a remover.
 */
function injectLoss(tap: string, percent: number): { how: string; remove(): void } {
  const tc = spawnSync('tc', [
    '-n',
    NETNS,
    'qdisc',
    'add',
    'dev',
    tap,
    'root',
    'netem',
    'loss',
    `${percent}%`,
  ]);
  if (tc.status === 0) {
    return {
      how: `netem on ${tap}`,
      remove: () => spawnSync('tc', ['-n', NETNS, 'qdisc', 'del', 'dev', tap, 'root']),
    };
  }
  const rule = `ip protocol gre numgen random mod 100 < ${percent} counter drop`;
  const rules = `table ip poptoploss {\n chain out {\n type filter hook output priority 0;\n ${rule}\n }\n}\n`;
  const nft = spawnSync('ip', ['netns', 'exec', NETNS, 'nft', '-f', '-'], { input: rules, encoding: 'utf8' });
  assert.equal(
    nft.status,
    0,
    `no way to inject loss: tc netem failed and nft said ${nft.stderr} (apt-get install nftables)`,
  );
  return {
    how: 'nftables output rule',
    remove: () => spawnSync('ip', ['netns', 'exec', NETNS, 'nft', 'delete', 'table', 'ip', 'poptoploss']),
  };
}

test('MS-CHAPv2 + MPPE-40: link, ping, 2 MB', { skip }, async (t) => {
  await serve('mppe40', [
    'refuse-pap',
    'refuse-chap',
    'refuse-mschap',
    'require-mschap-v2',
    'require-mppe-40',
  ]);
  await bed.iperfServer(5201);
  const { g, r } = await clientWithLink(
    bed,
    'mppe40',
    {
      guestIp: '172.31.250.5', // one address per scenario: a guest left by a failure blocks none
      user: 'alice',
      password: 'alice-pw',
      authOptions: 'require-mppe-40',
      run: iperf('-n 2M'),
    },
    (m) => t.diagnostic(m),
  );
  assert.equal(r.ppp_up, '1', g.proc.tail(60));
  assert.equal(r.auth, 'MS-CHAPv2');
  assert.equal(r.mppe, '40');
  assert.equal(r.stateless, '1');
  assert.equal(r.ping_ok, '1');
  assert.equal(r.run_rc, '0', g.runOutput());
  assert.ok(iperfMbytes(g.runOutput()) >= 1.9);
});

test('require-mppe on poptop vs require-mppe-40 on pppd settles on 40-bit (issue 11.1)', {
  skip,
}, async (t) => {
  const s = await serve('mppeany', [
    'refuse-pap',
    'refuse-chap',
    'refuse-mschap',
    'require-mschap-v2',
    'require-mppe',
  ]);
  const from = s.proc.output.length;
  const { g, r } = await clientWithLink(
    bed,
    'mppeany',
    {
      guestIp: '172.31.250.12', // one address per scenario: a guest left by a failure blocks none
      user: 'alice',
      password: 'alice-pw',
      authOptions: 'require-mppe-40',
    },
    (m) => t.diagnostic(m),
  );
  assert.equal(r.ppp_up, '1', `${g.proc.tail(60)}\n${s.since(from)}`);
  assert.equal(r.mppe, '40');
  assert.equal(r.stateless, '1');
  assert.equal(r.ping_ok, '1');
  const log = s.since(from);
  // Our request offers both strengths; pppd Naks it down to the one it takes.
  assert.match(log, /sent \[CCP ConfReq id=\d+ <mppe \+H -M \+S \+L -D -C>\]/);
  assert.match(log, /recv \[CCP ConfNak id=\d+ <mppe \+H -M -S \+L -D -C>\]/);
  assert.match(log, /MPPE 40-bit stateless up/);
});

test('stateful MPPE with 2% loss towards the client recovers by CCP Reset-Request', { skip }, async (t) => {
  const s = await serve('stateful', [
    'refuse-pap',
    'refuse-chap',
    'refuse-mschap',
    'require-mschap-v2',
    'require-mppe-128',
    'mppe-stateful-preferred',
  ]);
  const from = s.proc.output.length;
  const { g, tap } = await guestWithLinkUp(bed, 'stateful', {
    guestIp: '172.31.250.6', // one address per scenario: a guest left by a failure blocks none
    user: 'alice',
    password: 'alice-pw',
    options: 'mppe-stateful',
    run: iperf('-n 2M -R'),
    runTimeout: 150,
  });
  const loss = injectLoss(tap, 2);
  try {
    await bed.iperfServer(5201);
    const r = await g.result();
    assert.equal(r.ppp_up, '1', g.proc.tail(60));
    assert.equal(r.mppe, '128');
    assert.equal(r.stateless, '0', 'pppd with mppe-stateful took our Nak towards stateful');
    assert.equal(r.run_rc, '0', `transfer did not complete:\n${g.runOutput()}\n${g.pppdLog().slice(-3000)}`);
    assert.ok(iperfMbytes(g.runOutput()) >= 1.9);
  } finally {
    loss.remove();
  }
  const log = s.since(from);
  const resets = (log.match(/recv \[CCP ResetReq/g) ?? []).length;
  const acks = (log.match(/sent \[CCP ResetAck/g) ?? []).length;
  assert.match(log, /MPPE 128-bit stateful up/);
  assert.ok(resets > 0, 'the client asked for resets');
  assert.equal(acks, resets, 'every Reset-Request answered with a Reset-Ack');
  assert.doesNotMatch(g.pppdLog(), /Unsupported protocol/, 'the client never decrypted garbage');
  t.diagnostic(`loss by ${loss.how}; ${resets} Reset-Requests from the client, all acked`);
});

test('MS-CHAPv1 + MPPE-128 (require-mschap, refuse-mschap-v2)', { skip }, async (t) => {
  await serve('mschap1', [
    'refuse-pap',
    'refuse-chap',
    'refuse-mschap-v2',
    'require-mschap',
    'require-mppe-128',
  ]);
  const { g, r } = await clientWithLink(
    bed,
    'mschap1',
    {
      guestIp: '172.31.250.7', // one address per scenario: a guest left by a failure blocks none
      user: 'alice',
      password: 'alice-pw',
      permissive: true,
      authOptions: 'require-mppe-128 refuse-pap refuse-chap refuse-mschap-v2',
    },
    (m) => t.diagnostic(m),
  );
  assert.equal(r.ppp_up, '1', g.proc.tail(60));
  assert.equal(r.auth, 'MS-CHAPv1');
  assert.equal(r.mppe, '128');
  assert.equal(r.ping_ok, '1');
});

test('CHAP-MD5 without MPPE when the policy allows it', { skip }, async (t) => {
  const s = await serve('chapmd5', ['refuse-pap', 'refuse-mschap', 'refuse-mschap-v2', 'require-chap']);
  const from = s.proc.output.length;
  const { g, r } = await clientWithLink(
    bed,
    'chapmd5',
    {
      guestIp: '172.31.250.8', // one address per scenario: a guest left by a failure blocks none
      user: 'alice',
      password: 'alice-pw',
      permissive: true,
      authOptions: 'noccp refuse-pap refuse-mschap refuse-mschap-v2',
    },
    (m) => t.diagnostic(m),
  );
  assert.equal(r.ppp_up, '1', g.proc.tail(60));
  assert.equal(r.auth, 'CHAP');
  assert.equal(r.mppe, '0');
  assert.equal(r.ping_ok, '1');
  assert.equal(r.remote_ip, TUNNEL_LOCAL);
  assert.match(s.since(from), /session up: CHAP[^,]*, no encryption/);
});

test('a PAP-only client is refused when the policy refuses PAP; the log says why', { skip }, async () => {
  const s = await serve('nopap', [
    'refuse-pap',
    'refuse-chap',
    'refuse-mschap',
    'require-mschap-v2',
    'require-mppe-128',
  ]);
  const from = s.proc.output.length;
  const g = new GuestClient(bed, 'paponly', {
    guestIp: '172.31.250.9', // one address per scenario: a guest left by a failure blocks none
    user: 'alice',
    password: 'alice-pw',
    permissive: true,
    authOptions: 'noccp refuse-chap refuse-mschap refuse-mschap-v2',
    options: 'password alice-pw',
    linkTimeout: 30,
    noPing: true,
  });
  const r = await g.result();
  assert.equal(r.ppp_up, '0', g.proc.tail(60));
  const log = s.since(from);
  assert.match(log, /recv \[LCP ConfNak id=\d+ <auth pap>\]/, 'the client asked for PAP');
  assert.match(log, /closing link: peer refused all authentication methods we require \(mschapv2\)/);
  assert.ok(s.sessions().length === 0);
});

test('lcp-echo-interval 2: the real pppd receives and answers our LCP Echo-Request every 2 s (issue 11.2)', {
  skip,
}, async (t) => {
  const s = await serve('echo', [
    'refuse-pap',
    'refuse-chap',
    'refuse-mschap',
    'require-mschap-v2',
    'require-mppe-128',
    'lcp-echo-interval 2',
    'lcp-echo-failure 4',
  ]);
  const guestIp = '172.31.250.13'; // one address per scenario: a guest left by a failure blocks none
  const pcap = join(bed.work, 'echo.pcap');
  const dump = bed.spawn('tcpdump', [
    'tcpdump',
    '-i',
    'pptbr0',
    '-U',
    '-w',
    pcap,
    `ip proto 47 and host ${guestIp}`,
  ]);
  await dump.waitFor(/listening on pptbr0/, 10_000);
  const from = s.proc.output.length;
  // pppd's `debug` once (the peers file has it) logs no LCP Echo-Request or -Reply once the first
  // NCP is up: dump_packet() skips them at debug level 1 when `unsuccess` is 0, which np_up() sets.
  // So the client gets `debug` a second time, and pppd logs every echo in both directions.
  const { g, r } = await clientWithLink(
    bed,
    'echo',
    { guestIp, user: 'alice', password: 'alice-pw', options: 'debug', run: 'sleep 11' },
    (m) => t.diagnostic(m),
  );
  dump.signal('SIGTERM');
  await dump.exited(10_000);
  assert.equal(r.ppp_up, '1', g.proc.tail(60));
  assert.equal(r.run_rc, '0');

  // The link-up period in pppd's log: from the addresses to the SIGTERM of the guest.
  const log = g.pppdLog();
  const up = log.slice(log.indexOf('remote IP address'), log.indexOf('Terminating on signal'));
  assert.ok(up.length > 0, log);
  const magic = log.match(/rcvd \[LCP ConfReq id=0x[0-9a-f]+ [^\]]*<magic (0x[0-9a-f]+)>/)?.[1];
  assert.ok(magic, `our Magic-Number in pppd's log:\n${log}`);
  const ids = [...up.matchAll(/rcvd \[LCP EchoReq id=(0x[0-9a-f]+) magic=(0x[0-9a-f]+)\]/g)].map((m) => {
    assert.equal(m[2], magic, 'the Echo-Request carries our Magic-Number');
    return m[1]!;
  });
  // 11 s of link at one request every 2 s is 5; 4 leaves room for a slow guest.
  assert.ok(ids.length >= 4, `pppd received ${ids.length} Echo-Requests in 11 s of link:\n${up}`);
  for (const id of ids) assert.match(up, new RegExp(`sent \\[LCP EchoRep id=${id} `), `pppd answered ${id}`);
  assert.equal(new Set(ids).size, ids.length, 'a fresh identifier each time');

  // On the wire: plain LCP (ff 03 c0 21, not MPPE) from us, each answered by the client.
  const rows = tsharkFields(pcap, ['ip.src', 'ppp.code', 'ppp.identifier', 'ppp.address'], { filter: 'lcp' });
  const lcp = (src: string, code: string) =>
    rows.filter(([a, c]) => a === src && c === code).map(([, , id]) => Number(id));
  const ours = rows.filter(([a, c]) => a === HOST_IP && c === '9');
  assert.ok(
    ours.every((row) => row[3] === '0xff'),
    `Address/Control kept on every Echo-Request: ${JSON.stringify(ours)}`,
  );
  const wireIds = ids.map((id) => Number(id));
  for (const id of wireIds) {
    assert.ok(lcp(HOST_IP, '9').includes(id), `Echo-Request ${id} captured as LCP`);
    assert.ok(lcp(guestIp, '10').includes(id), `Echo-Reply ${id} captured`);
  }
  t.diagnostic(
    `pppd received ${ids.length} Echo-Requests (${ids.join(' ')}); ${s.since(from).match(/sent \[LCP EchoReq/g)?.length ?? 0} sent`,
  );
});
