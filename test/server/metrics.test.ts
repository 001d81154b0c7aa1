import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyEnd } from '../../src/server/end-reasons.ts';
import {
  escapeLabelValue,
  LIVE_DROPS_PER_SCRAPE,
  type MetricsSession,
  type MetricsSource,
  ServerMetrics,
} from '../../src/server/metrics.ts';
import { KILL_REASON } from '../../src/server/status-http.ts';
import { formatIPv4 } from '../../src/wire/ip.ts';
import { ip, serverSettings, startClient, startServer, udpPacket, waitFor, within } from './harness.ts';

/** The value of one series (name and exact label text) in an exposition, or undefined. */
function value(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

/** Every line is a comment or `name{labels} value` with well-formed quoted label values. */
function assertWellFormed(text: string): void {
  assert.ok(text.endsWith('\n'));
  const sample =
    /^[a-z_:][a-z0-9_:]*(\{[a-z_]+="(?:[^"\\\n]|\\[\\"n])*"(?:,[a-z_]+="(?:[^"\\\n]|\\[\\"n])*")*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/;
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    assert.match(line, sample, `malformed line: ${JSON.stringify(line)}`);
  }
}

test('session end reasons: a code for the metrics and a sentence for a person', () => {
  const cases: [string, string, string?][] = [
    ['authentication failed (mschapv2 user "alice"): wrong password for "alice"', 'auth_failed', 'mschapv2'],
    [
      'authentication failed (pap user "x"): address 1.2.3.4 is locked out after repeated failed logins (password not checked)',
      'locked_out',
    ],
    ['peer offers MPPE 40-bit only; we allow 128-bit', 'mppe_refused'],
    ['address pool exhausted: all 2 addresses of remoteip are in use', 'pool_empty'],
    ['session refused for user "bob"', 'pool_empty'],
    ['no answer to 10 LCP Configure-Requests', 'gre_never_seen'],
    ['peer not responding to LCP echo', 'echo_timeout'],
    ['peer requested termination ("User request")', 'peer_hangup'],
    ['peer requested termination ("locked out by the administrator, shutting down")', 'peer_hangup'],
    ['TCP connection closed', 'peer_hangup'],
    ['peer stopped the control connection (reason: None)', 'peer_hangup'],
    ['closed by the administrator', 'admin_kill'],
    [KILL_REASON, 'admin_kill'],
    ['server shutting down', 'shutdown'],
    ['server is shutting down', 'shutdown'],
    ['set-up not complete within 60 s of the call (LCP, authentication, CCP, IPCP)', 'setup_timeout'],
    ['no Start-Control-Connection-Request within 10 s', 'setup_timeout'],
    ['too many set-ups in progress from one address', 'source_limit'],
    ['connection limit reached (100, pptpd.conf "connections")', 'connection_limit'],
    ['protocol violation: Outgoing-Call-Request before Start-Control-Connection', 'protocol_error'],
    ['something new', 'other'],
  ];
  for (const [reason, code, method] of cases) {
    const r = classifyEnd(reason);
    assert.equal(r.code, code, reason);
    assert.equal(r.method, method, reason);
    assert.ok(r.words.length > 10);
  }
  assert.match(classifyEnd('no answer to 10 LCP Configure-Requests').words, /GRE \(IP protocol 47\)/);
});

test("the peer's quoted words never pick the category", () => {
  const cases: [string, string][] = [
    ['authentication failed (pap user "locked out"): unknown user "locked out"', 'auth_failed'],
    ['peer requested termination ("the administrator is shutting down; MPPE")', 'peer_hangup'],
    ['peer requested termination ("say \\"locked out\\" twice")', 'peer_hangup'],
    ['refused: address locked out after failed logins', 'locked_out'],
  ];
  for (const [reason, code] of cases) assert.equal(classifyEnd(reason).code, code, reason);
});

test('label values: network text cannot break a line or a quoted value', () => {
  assert.equal(escapeLabelValue('plain'), 'plain');
  assert.equal(escapeLabelValue('a"b\\c'), 'a\\"b\\\\c');
  assert.equal(escapeLabelValue('x\ny'), 'x\\\\ny');
  assert.equal(escapeLabelValue('\u202eevil'), '\\\\u{202e}evil');
  const hostile = 'bad "reason"\n# TYPE fake counter\r\u0000';
  const metrics = new ServerMetrics(fakeSource([], { [hostile]: 3 }), { eventLoop: false });
  const text = metrics.render();
  assertWellFormed(text);
  assert.ok(!text.includes('\n# TYPE fake'));
  assert.equal(value(text, `poptop_drops_total{layer="server",reason="${escapeLabelValue(hostile)}"}`), 3);
});

interface FakeSession extends MetricsSession {
  dropReads: number;
}

function fakeSession(n: number, state: string, drops: Record<string, number> = {}): FakeSession {
  const s: FakeSession = {
    id: `s${n}`,
    peer: ip('192.0.2.1') + n,
    userName: `u${n}`,
    isUp: state === 'up',
    state,
    closeReason: undefined,
    traffic: { bytesIn: 10, bytesOut: 20, packetsIn: 1, packetsOut: 2 },
    dropReads: 0,
    layerDrops() {
      s.dropReads++;
      return { pptp: {}, gre: drops };
    },
  };
  return s;
}

function fakeSource(sessions: MetricsSession[], serverDrops: Record<string, number> = {}): MetricsSource {
  return {
    liveSessions: sessions,
    leases: { poolSize: 100_000, poolFree: 40_000 },
    drops: { snapshot: () => serverDrops },
    currentSettings: { maxConnections: 65_000 },
  };
}

test('60,000 sessions: one pass of counters per scrape, drop tables read round-robin', () => {
  const sessions: FakeSession[] = [];
  for (let i = 0; i < 60_000; i++) {
    const s = fakeSession(i, i % 10 === 0 ? 'ppp-authenticate' : 'up', i === 59_999 ? { duplicate: 2 } : {});
    sessions.push(s);
  }
  const metrics = new ServerMetrics(fakeSource(sessions), { eventLoop: false });
  const first = metrics.render();
  assertWellFormed(first);
  assert.equal(value(first, 'poptop_sessions{state="up"}'), 54_000);
  assert.equal(value(first, 'poptop_sessions{state="ppp-authenticate"}'), 6000);
  assert.equal(value(first, 'poptop_tunnel_bytes_total{direction="in"}'), 600_000);
  assert.equal(value(first, 'poptop_tunnel_packets_total{direction="out"}'), 120_000);
  assert.equal(value(first, 'poptop_pool_free_addresses'), 40_000);
  const reads = sessions.reduce((n, s) => n + s.dropReads, 0);
  assert.equal(reads, LIVE_DROPS_PER_SCRAPE);
  // The last session's drops show once the round reaches it, and stay.
  let text = first;
  for (let i = 0; i < Math.ceil(60_000 / LIVE_DROPS_PER_SCRAPE); i++) text = metrics.render();
  assert.equal(value(text, 'poptop_drops_total{layer="gre",reason="duplicate"}'), 2);
  for (const s of sessions) assert.ok(s.dropReads <= 2, 'no session read more than once per round');
  text = metrics.render();
  assert.equal(value(text, 'poptop_drops_total{layer="gre",reason="duplicate"}'), 2);
});

test('metrics of a real server: set-ups, failures by reason, auth failures, traffic, drops, ends', async () => {
  const bench = await startServer(serverSettings({ remoteIps: [ip('10.77.0.10')] }));
  const metrics = new ServerMetrics(bench.server, { eventLoop: true });
  bench.server.observer = metrics;
  try {
    // A wrong password first (the pool has one address: a call is refused once it is taken).
    const wrong = startClient(bench, { user: 'bob', password: 'nope', localAddress: '127.0.0.3' });
    await within(wrong.down, 8000, 'the wrong password refused');
    await waitFor(() => bench.server.list().length === 0, 3000, 'the refused session to close');
    const alice = startClient(bench, { user: 'alice', password: 'alice-secret' });
    const info = await within(alice.up, 5000, 'alice up');
    const aliceIp = formatIPv4(info.localAddress);
    assert.equal(aliceIp, '10.77.0.10');
    alice.tun.inject(udpPacket(ip(aliceIp), ip('192.0.2.99'), new Uint8Array(100)));
    bench.tun.inject(udpPacket(ip('192.0.2.99'), ip(aliceIp), new Uint8Array(50)));
    bench.tun.inject(udpPacket(ip('192.0.2.99'), ip('10.77.0.99'), new Uint8Array(50)));
    await waitFor(() => alice.tun.written.length > 0 && bench.tun.written.length > 0, 2000, 'packets');

    let text = metrics.render();
    assertWellFormed(text);
    assert.equal(value(text, 'poptop_sessions{state="up"}'), 1);
    assert.equal(value(text, 'poptop_session_setups_total'), 1);
    assert.equal(value(text, 'poptop_tunnel_bytes_total{direction="in"}'), 128);
    assert.equal(value(text, 'poptop_tunnel_bytes_total{direction="out"}'), 78);
    assert.equal(value(text, 'poptop_tunnel_packets_total{direction="in"}'), 1);
    assert.equal(value(text, 'poptop_pool_addresses'), 1);
    assert.equal(value(text, 'poptop_pool_free_addresses'), 0);
    assert.equal(
      value(text, 'poptop_drops_total{layer="server",reason="TUN packet for an address without a session"}'),
      1,
    );
    assert.ok(value(text, 'poptop_event_loop_lag_seconds{stat="max"}')! >= 0);

    // A client the full pool refuses.
    const third = startClient(bench, { user: 'alice', password: 'alice-secret', localAddress: '127.0.0.4' });
    await within(third.down, 8000, 'the pool refusal');
    await waitFor(() => bench.server.list().length === 1, 3000, 'the refused sessions to close');
    text = metrics.render();
    assert.equal(value(text, 'poptop_session_setup_failures_total{reason="auth_failed"}'), 1);
    assert.equal(value(text, 'poptop_auth_failures_total{method="mschapv2"}'), 1);
    assert.equal(value(text, 'poptop_session_setup_failures_total{reason="pool_empty"}'), 1);
    assert.equal(value(text, 'poptop_session_setups_total'), 1);
    const failures = metrics.recentFailures();
    assert.equal(failures.length, 2);
    assert.equal(failures[0]!.code, 'auth_failed');
    assert.match(failures[0]!.words, /wrong user name or password/);
    assert.match(failures[0]!.detail, /wrong password for "bob"/);
    assert.equal(failures[1]!.code, 'pool_empty');

    // The administrator ends alice's session: counted as such; her traffic stays in the totals.
    assert.equal(bench.server.kill('alice').length, 1);
    await within(alice.down, 5000, 'alice down');
    await waitFor(() => bench.server.list().length === 0, 3000, 'the session to close');
    text = metrics.render();
    assert.equal(value(text, 'poptop_session_ends_total{reason="admin_kill"}'), 1);
    assert.equal(value(text, 'poptop_sessions{state="up"}'), 0);
    assert.equal(value(text, 'poptop_tunnel_bytes_total{direction="in"}'), 128);
    assert.equal(value(text, 'poptop_tunnel_bytes_total{direction="out"}'), 78);
  } finally {
    metrics.close();
    await bench.close();
  }
});

test('RADIUS request, reply, timeout and failure counters per purpose, when RADIUS is configured', () => {
  const plain = new ServerMetrics(fakeSource([]), { eventLoop: false }).render();
  assert.doesNotMatch(plain, /poptop_radius_/, 'no RADIUS families without RADIUS');
  const source: MetricsSource = {
    ...fakeSource([]),
    radius: {
      clientStats: () => [
        {
          purpose: 'authentication',
          stats: { transmissions: 7, replies: 5, timeouts: 2, failed: 0 },
          down: 0,
        },
        { purpose: 'accounting', stats: { transmissions: 4, replies: 1, timeouts: 3, failed: 1 }, down: 1 },
      ],
    },
  };
  const text = new ServerMetrics(source, { eventLoop: false }).render();
  assert.match(text, /^poptop_radius_requests_total\{purpose="authentication"\} 7$/m);
  assert.match(text, /^poptop_radius_timeouts_total\{purpose="accounting"\} 3$/m);
  assert.match(text, /^poptop_radius_failed_total\{purpose="accounting"\} 1$/m);
  assert.match(text, /^poptop_radius_servers_down\{purpose="accounting"\} 1$/m);
  assert.match(text, /^# TYPE poptop_radius_replies_total counter$/m);
});
