/**
 * Issue 13: the real Linux client (pptp-linux + pppd 2.4.9 + kernel MPPE in a QEMU guest) against
 * `poptop serve` with pppd's `plugin radius.so` and a radiusclient.conf, judged by a real FreeRADIUS
 * started by the test inside the testbed's namespace (on its loopback, where the server reaches it).
 * The server has no local users at all: only RADIUS can let the client in, and only the
 * MS-MPPE-Send/Recv-Key of its Access-Accept can give the MPPE-128 keys the traffic needs.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FreeRadius } from '../aaa/radius/freeradius.ts';
import { type ClientOptions, GuestClient, guestNicStalled } from './guests.ts';
import { Bed, NETNS, PoptopServer, TUNNEL_LOCAL, testbedSkip, until } from './testbed.ts';

const skip = testbedSkip();
const SECRET = 'poptop-interop-radius';
const FRAMED_IP = '172.31.251.120';
let bed: Bed;
let fr: FreeRadius;
let server: PoptopServer;

before(async () => {
  if (skip) return;
  bed = new Bed();
  fr = await FreeRadius.start({
    users: `alice\tCleartext-Password := "alice-radius-pw"\n\tFramed-IP-Address = ${FRAMED_IP}\n`,
    secret: SECRET,
    netns: NETNS,
  });
  const rc = join(bed.work, 'radiusclient.conf');
  writeFileSync(
    rc,
    `authserver 127.0.0.1:${fr.authPort}:${SECRET}\nacctserver 127.0.0.1:${fr.acctPort}:${SECRET}\nradius_timeout 3\nradius_retries 2\nnas-identifier poptop-interop\ndynauth_port 0\n`,
  );
  server = await PoptopServer.start(bed, 'radius', {
    options: [
      'name poptop',
      'refuse-pap',
      'refuse-chap',
      'refuse-mschap',
      'require-mschap-v2',
      'require-mppe-128',
      'plugin radius.so',
      `radius-config-file ${rc}`,
    ],
    remoteip: '172.31.251.100-101',
    users: [],
  });
});

after(async () => {
  await fr?.stop();
  await bed?.down();
});

/** Guest command: wait (bounded) until iperf3 -s is there, then transfer. */
const iperf = (port: number, args: string) =>
  `i=0; until iperf3 -c $REMOTE_IP -p ${port} ${args}; do i=$((i+1)); [ $i -ge 150 ] && break; sleep 0.2; done`;

/** The counters of the server's "session closed" line for `user`. */
function closedCounters(output: string, user: string): { bytesIn: number; bytesOut: number } {
  const re = new RegExp(
    `\\[s\\d+ ${user} [^\\]]*\\] session closed: .*received (\\d+) bytes/\\d+ packets, sent (\\d+) bytes`,
  );
  const m = re.exec(output);
  assert.ok(m, `no "session closed" line for ${user}`);
  return { bytesIn: Number(m[1]), bytesOut: Number(m[2]) };
}

/** A guest run, once more with a fresh guest if the emulated NIC stalled or the link never came up. */
async function guestRun(
  name: string,
  o: ClientOptions,
  note: (s: string) => void,
  expectUp: boolean,
  prepare: () => Promise<unknown> = async () => {},
) {
  await prepare();
  let g = new GuestClient(bed, name, o);
  let r = await g.result();
  if (guestNicStalled(g) || (expectUp && r.ppp_up !== '1')) {
    note(`first attempt: ${guestNicStalled(g) ? 'the guest NIC stalled' : 'no link'}; retrying once`);
    for (const row of server.sessions()) server.kill(row.id);
    await until(() => server.sessions().length === 0, 10_000);
    await prepare();
    g = new GuestClient(bed, `${name}-retry`, o);
    r = await g.result();
  }
  return { g, r };
}

test('MS-CHAPv2 through RADIUS: MPPE-128 keys from the Access-Accept, Framed-IP, traffic both ways, Start and Stop with the octets', {
  skip,
}, async (t) => {
  const from = server.proc.output.length;
  const { g, r } = await guestRun(
    'alice-radius',
    {
      user: 'alice',
      password: 'alice-radius-pw',
      run: `${iperf(5301, '-n 2M')}; ${iperf(5302, '-n 2M -R')}`,
      runTimeout: 150,
    },
    (s) => t.diagnostic(s),
    true,
    () => Promise.all([bed.iperfServer(5301), bed.iperfServer(5302)]),
  );
  const log = server.since(from);
  assert.equal(
    r.ppp_up,
    '1',
    `${g.proc.tail(60)}\nserver:\n${log.slice(-4000)}\nFreeRADIUS:\n${fr.log.slice(-3000)}`,
  );
  assert.equal(r.auth, 'MS-CHAPv2');
  assert.equal(r.mppe, '128');
  assert.equal(r.local_ip, FRAMED_IP, "the address is RADIUS's Framed-IP-Address");
  assert.equal(r.remote_ip, TUNNEL_LOCAL);
  assert.equal(r.ping_ok, '1', 'client -> server through the tunnel');
  assert.equal(r.run_rc, '0', `${g.runOutput()}\nserver:\n${log.slice(-4000)}`);
  const sums = [...g.runOutput().matchAll(/([\d.]+) MBytes\s+[\d.]+ [KMG]bits\/sec\s+\d*\s+sender/g)];
  assert.equal(sums.length, 2, `two iperf3 summaries expected:\n${g.runOutput()}`);
  for (const m of sums) assert.ok(Number(m[1]) >= 1.9, `${m[1]} MB arrived`);
  // The keys can only have come from RADIUS: the server has no password for alice.
  assert.match(fr.log, /MS-MPPE-Send-Key = 0x[0-9a-f]{32}/);
  assert.match(fr.log, /MS-MPPE-Recv-Key = 0x[0-9a-f]{32}/);
  assert.match(log, /MPPE 128-bit stateless up/);

  await server.proc.waitFor(/\[s\d+ alice [^\]]*\] session closed/, 15_000);
  const counters = closedCounters(server.since(from), 'alice');
  const stopOf = () =>
    fr
      .detail()
      .find((rec) => rec.get('Acct-Status-Type')?.[0] === 'Stop' && rec.get('User-Name')?.[0] === 'alice');
  assert.ok(
    await until(() => stopOf() !== undefined, 15_000),
    `no Stop in the detail file:\n${fr.log.slice(-3000)}`,
  );
  const records = fr.detail().filter((rec) => rec.get('User-Name')?.[0] === 'alice');
  const start = records.find((rec) => rec.get('Acct-Status-Type')?.[0] === 'Start');
  const stop = stopOf()!;
  assert.ok(start, 'a Start for alice');
  for (const rec of [start, stop]) {
    assert.deepEqual(rec.get('Framed-IP-Address'), [FRAMED_IP]);
    assert.deepEqual(rec.get('NAS-Identifier'), ['poptop-interop']);
    assert.deepEqual(rec.get('Calling-Station-Id'), ['172.31.250.2']);
  }
  assert.equal(start.get('Acct-Session-Id')?.[0], stop.get('Acct-Session-Id')?.[0]);
  // The counters are the server's own, and they cover at least what each iperf3 receiver got
  // (input = from the client). Not a fixed 2 MiB: a sender's last octets may still be in flight
  // when iperf3 ends its test, so what arrives varies a little from run to run.
  assert.deepEqual(stop.get('Acct-Input-Octets'), [String(counters.bytesIn)]);
  assert.deepEqual(stop.get('Acct-Output-Octets'), [String(counters.bytesOut)]);
  const received = [...g.runOutput().matchAll(/([\d.]+) MBytes\s+[\d.]+ [KMG]bits\/sec\s+receiver/g)].map(
    (m) => (Number(m[1]) - 0.005) * 1024 * 1024, // iperf3's MBytes are MiB, shown to 0.01
  );
  assert.equal(received.length, 2, `two iperf3 receiver summaries expected:\n${g.runOutput()}`);
  for (const r of received) assert.ok(r >= 1.5 * 1024 * 1024, `${r} octets received`);
  assert.ok(counters.bytesIn >= received[0]!, `input ${counters.bytesIn} < ${received[0]} received`);
  assert.ok(counters.bytesOut >= received[1]!, `output ${counters.bytesOut} < ${received[1]} received`);
  assert.ok(
    counters.bytesIn < 8 * 1024 * 1024 && counters.bytesOut < 8 * 1024 * 1024,
    JSON.stringify(counters),
  );
  assert.deepEqual(stop.get('Acct-Terminate-Cause'), ['User-Request']);
  assert.ok(Number(stop.get('Acct-Session-Time')?.[0]) >= 1, 'Acct-Session-Time');
  t.diagnostic(`link_s=${r.link_s} in=${counters.bytesIn} out=${counters.bytesOut}`);
  assert.ok(await until(() => server.sessions().length === 0, 10_000));
});

test("a wrong password through RADIUS: the client gets FreeRADIUS's own MS-CHAP-Error", {
  skip,
}, async (t) => {
  const from = server.proc.output.length;
  const { g, r } = await guestRun(
    'alice-wrong',
    { user: 'alice', password: 'not-the-password', noPing: true, linkTimeout: 25 },
    (s) => t.diagnostic(s),
    false,
  );
  assert.equal(r.ppp_up, '0', g.proc.tail(60));
  const pppd = g.pppdLog();
  assert.match(pppd, /MS-CHAP authentication failed/, `pppd log:\n${pppd}\nguest:\n${g.proc.tail(40)}`);
  // FreeRADIUS's answer (with its R=1, its challenge and its words), as pppd received it: the
  // -X output shows it after the Ident octet: escaped when not printable ("\235E=691 R=1 ..."), as
  // itself when it is ("XE=691 R=1 C=0338...f0 V=3 M=Authentication rejected"), \" or \\ for those two.
  const re = /MS-CHAP-Error = "(?:\\\d{3}|\\.|[^"\\])(E=691 [^"]*)"/;
  await until(() => re.test(fr.log), 5000);
  const errors = [...fr.log.matchAll(new RegExp(re.source, 'g'))].map((m) => m[1]!);
  assert.ok(errors.length > 0, `no MS-CHAP-Error in FreeRADIUS's output:\n${fr.log.slice(-3000)}`);
  assert.ok(
    errors.some((e) => pppd.includes(`"${e}"]`) && /R=1 C=[0-9a-f]{32} V=3 M=\S/i.test(e)),
    `pppd did not receive FreeRADIUS's "${errors.at(-1)}":\n${pppd}`,
  );
  assert.match(
    server.since(from),
    new RegExp(`RADIUS server 127\\.0\\.0\\.1:${fr.authPort} rejected "alice"`),
  );
  assert.ok(await until(() => server.sessions().length === 0, 10_000));
});
