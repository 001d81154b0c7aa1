import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { ServerMetrics } from '../../src/server/metrics.ts';
import type { SessionInfo } from '../../src/server/session.ts';
import {
  KILL_REASON,
  localStatus,
  STATUS_MAX_CONNECTIONS,
  StatusHttpServer,
  type StatusSource,
} from '../../src/server/status-http.ts';
import { escapeHtml } from '../../src/server/status-page.ts';
import { MemoryLogger } from '../../src/util/log.ts';
import { parseIPv4 } from '../../src/wire/ip.ts';

/** A user name a hostile client could choose: markup, a line feed, a bidi override. */
const HOSTILE = '<img src=x onerror=alert(1)>\n\u202e"bob"';

interface Fake {
  id: string;
  killed: string[];
  info(): SessionInfo;
  kill(reason: string): void;
}

function fakeSession(id: string, user: string): Fake {
  const f: Fake = {
    id,
    killed: [],
    info: () => ({
      id,
      user,
      peer: '198.51.100.7',
      ip: '10.77.0.10',
      auth: 'mschapv2',
      mppe: '128-bit stateless',
      state: 'up',
      uptimeS: 75,
      bytesIn: 2048,
      bytesOut: 4096,
      packetsIn: 3,
      packetsOut: 4,
    }),
    kill: (reason) => f.killed.push(reason),
  };
  return f;
}

function source(sessions: Fake[]): StatusSource & { drops: { snapshot(): Record<string, number> } } {
  return {
    liveSessions: sessions,
    leases: { poolSize: 10, poolFree: 9 },
    currentSettings: { maxConnections: 10 },
    drops: { snapshot: () => ({}) },
  };
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function http(
  port: number,
  o: { method?: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: o.method ?? 'GET', path: o.path, headers: o.headers ?? {} },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

const log = new MemoryLogger();

let loop: { http: StatusHttpServer; port: number; a: Fake; b: Fake; metrics: ServerMetrics };
let open: { http: StatusHttpServer; port: number; a: Fake; metrics: ServerMetrics };

before(async () => {
  const a = fakeSession('s1', HOSTILE);
  const b = fakeSession('s2', 'carol');
  const src = source([a, b]);
  const metrics = new ServerMetrics(
    {
      ...src,
      liveSessions: [],
    },
    { eventLoop: false },
  );
  metrics.connectionRefused('203.0.113.9', 'address locked out after failed logins');
  metrics.callRefused(
    {
      id: 's9',
      peer: parseIPv4('203.0.113.8')!,
      userName: undefined,
      isUp: false,
      state: 'pptp-established',
      closeReason: undefined,
      traffic: { bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0 },
      layerDrops: () => ({}),
    },
    'address pool exhausted: all 10 addresses of remoteip are in use <b>',
  );
  const h = new StatusHttpServer({
    address: { host: '127.0.0.1', port: 0 },
    provider: localStatus(src, metrics),
    log,
    token: 'ab'.repeat(24),
  });
  loop = { http: h, port: await h.listen(), a, b, metrics };

  const oa = fakeSession('s5', 'dave');
  const osrc = source([oa]);
  const ometrics = new ServerMetrics({ ...osrc, liveSessions: [] }, { eventLoop: false });
  const oh = new StatusHttpServer({
    address: { host: '0.0.0.0', port: 0 },
    provider: localStatus(osrc, ometrics),
    log,
  });
  open = { http: oh, port: await oh.listen(), a: oa, metrics: ometrics };
});

after(() => {
  loop?.http.close();
  open?.http.close();
});

function host(port: number): string {
  return `127.0.0.1:${port}`;
}

test('the page: sessions, pool, failures in words; network text escaped; token in a meta element; CSP', async () => {
  const r = await http(loop.port, { path: '/', headers: { Host: host(loop.port) } });
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/html/);
  assert.match(String(r.headers['content-security-policy']), /script-src 'self'/);
  assert.match(String(r.headers['content-security-policy']), /frame-ancestors 'none'/);
  assert.equal(r.headers['x-frame-options'], 'DENY');
  assert.ok(!r.body.includes('<img'), 'markup from a user name is inert');
  assert.ok(r.body.includes(escapeHtml(HOSTILE)));
  assert.ok(r.body.includes('&lt;img src=x onerror=alert(1)&gt;\\n\\u{202e}&quot;bob&quot;'));
  assert.ok(!r.body.includes('\u202e'));
  assert.ok(r.body.includes(`<meta name="poptop-token" content="${'ab'.repeat(24)}">`));
  assert.match(r.body, /198\.51\.100\.7/);
  assert.match(r.body, /10\.77\.0\.10/);
  assert.match(r.body, /128-bit stateless/);
  assert.match(r.body, /2\.0 KiB in \/ 4\.0 KiB out/);
  assert.match(r.body, /1m 15s/);
  assert.match(r.body, /<span id="pool-used">1<\/span> of <span id="pool-size">10<\/span>/);
  assert.match(r.body, /locked out after repeated failed logins/);
  assert.match(r.body, /remoteip pool is used up/);
  assert.ok(r.body.includes('in use &lt;b&gt;'));
  assert.ok(!r.body.includes('in use <b>'));
  const js = await http(loop.port, { path: '/status.js', headers: { Host: host(loop.port) } });
  assert.equal(js.status, 200);
  assert.match(String(js.headers['content-type']), /javascript/);
  assert.ok(!js.body.includes('innerHTML'), 'the script never parses markup');
});

test('/api/status: the same data as JSON, user names with control characters made visible', async () => {
  const r = await http(loop.port, { path: '/api/status', headers: { Host: host(loop.port) } });
  assert.equal(r.status, 200);
  const snap = JSON.parse(r.body) as { sessions: { user: string }[]; sessionCount: number; pool: object };
  assert.equal(snap.sessionCount, 2);
  assert.equal(snap.sessions[0]!.user, '<img src=x onerror=alert(1)>\\n\\u{202e}"bob"');
  assert.deepEqual(snap.pool, { size: 10, free: 9 });
});

test('/metrics is served as the Prometheus text format', async () => {
  const r = await http(loop.port, { path: '/metrics', headers: { Host: host(loop.port) } });
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  assert.match(r.body, /^poptop_session_setup_failures_total\{reason="locked_out"\} 1$/m);
  assert.match(r.body, /^poptop_session_setup_failures_total\{reason="pool_empty"\} 1$/m);
});

test('a loopback listener answers only to its own Host (no DNS rebinding to read the token)', async () => {
  for (const h of ['evil.example', `evil.example:${loop.port}`, `127.0.0.2:${loop.port}`]) {
    const r = await http(loop.port, { path: '/', headers: { Host: h } });
    assert.equal(r.status, 421, h);
    assert.ok(!r.body.includes('ab'.repeat(24)));
  }
  const ok = await http(loop.port, { path: '/', headers: { Host: `localhost:${loop.port}` } });
  assert.equal(ok.status, 200);
});

test('kill: refused across sites, without the token, without JSON; done from the page', async () => {
  const token = 'ab'.repeat(24);
  const good = {
    Host: host(loop.port),
    Origin: `http://${host(loop.port)}`,
    'Content-Type': 'application/json',
    'X-Poptop-Token': token,
    'Sec-Fetch-Site': 'same-origin',
  };
  const body = JSON.stringify({ id: 's2' });
  const attempts: [string, Record<string, string>][] = [
    ['no Origin', { ...good, Origin: '' }],
    ['foreign Origin', { ...good, Origin: 'http://evil.example' }],
    ['cross-site fetch', { ...good, 'Sec-Fetch-Site': 'cross-site' }],
    ['form body', { ...good, 'Content-Type': 'application/x-www-form-urlencoded' }],
    ['no token', { ...good, 'X-Poptop-Token': '' }],
    ['wrong token', { ...good, 'X-Poptop-Token': 'cd'.repeat(24) }],
  ];
  for (const [what, headers] of attempts) {
    const h = Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== ''));
    const r = await http(loop.port, { method: 'POST', path: '/api/kill', headers: h, body });
    assert.equal(r.status, 403, what);
  }
  assert.deepEqual(loop.b.killed, []);
  const get = await http(loop.port, { path: '/api/kill', headers: { Host: host(loop.port) } });
  assert.equal(get.status, 405);
  const r = await http(loop.port, { method: 'POST', path: '/api/kill', headers: good, body });
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { closed: ['s2'] });
  assert.deepEqual(loop.b.killed, [KILL_REASON]);
  assert.deepEqual(loop.a.killed, []);
  const missing = await http(loop.port, {
    method: 'POST',
    path: '/api/kill',
    headers: good,
    body: JSON.stringify({ id: 's77' }),
  });
  assert.equal(missing.status, 404);
  const bad = await http(loop.port, {
    method: 'POST',
    path: '/api/kill',
    headers: good,
    body: '{"id":"carol"}',
  });
  assert.equal(bad.status, 400);
});

test('a non-loopback listener: the page carries no token or names; the API needs the token', async () => {
  const page = await http(open.port, { path: '/', headers: { Host: `192.0.2.1:${open.port}` } });
  assert.equal(page.status, 200);
  assert.ok(!page.body.includes('poptop-token'));
  assert.ok(!page.body.includes(open.http.token));
  assert.ok(!page.body.includes('dave'));
  const anon = await http(open.port, { path: '/api/status', headers: { Host: `192.0.2.1:${open.port}` } });
  assert.equal(anon.status, 401);
  const withToken = await http(open.port, {
    path: '/api/status',
    headers: { Host: `192.0.2.1:${open.port}`, 'X-Poptop-Token': open.http.token },
  });
  assert.equal(withToken.status, 200);
  assert.match(withToken.body, /dave/);
  const headers = {
    Host: `192.0.2.1:${open.port}`,
    Origin: `http://192.0.2.1:${open.port}`,
    'Content-Type': 'application/json',
  };
  const body = JSON.stringify({ id: 's5' });
  const no = await http(open.port, { method: 'POST', path: '/api/kill', headers, body });
  assert.equal(no.status, 403);
  assert.deepEqual(open.a.killed, []);
  const yes = await http(open.port, {
    method: 'POST',
    path: '/api/kill',
    headers: { ...headers, 'X-Poptop-Token': open.http.token },
    body,
  });
  assert.equal(yes.status, 200);
  assert.deepEqual(open.a.killed, [KILL_REASON]);
  const metrics = await http(open.port, { path: '/metrics', headers: { Host: `192.0.2.1:${open.port}` } });
  assert.equal(metrics.status, 200);
});

test('idle connections to the status listener are bounded: past the cap they are closed as they come', async () => {
  const socks: Socket[] = [];
  try {
    const closed: Promise<void>[] = [];
    for (let i = 0; i <= STATUS_MAX_CONNECTIONS; i++) {
      const c = connect({ host: '127.0.0.1', port: open.port });
      socks.push(c);
      closed.push(new Promise((r) => c.once('close', () => r())));
      await new Promise((r) => c.once('connect', r));
    }
    await Promise.race(closed);
    const stillOpen = socks.filter((c) => !c.destroyed).length;
    assert.ok(stillOpen <= STATUS_MAX_CONNECTIONS, `${stillOpen} of ${socks.length} still open`);
  } finally {
    for (const c of socks) c.destroy();
  }
});
