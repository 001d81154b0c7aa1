import { escapeControls } from '../util/escape.ts';
import type { FailureRecord } from './metrics.ts';

/**
 * The live status page: one HTML document rendered with the state at request time (readable
 * without script), then kept up to date by a small script polling /api/status once a second. No
 * build step: the script and the style sheet are the strings below, served as /status.js and
 * /status.css (separate files, so the Content-Security-Policy can forbid inline script).
 *
 * Every string that came from the network (user names above all; the failure details quote
 * what peers sent) is made visible with escapeControls() in the snapshot and HTML-escaped when
 * the server renders it; the script only ever puts text into the page through textContent.
 */

export interface StatusSession {
  id: string;
  user: string | null;
  peer: string;
  ip: string | null;
  auth: string | null;
  mppe: string | null;
  state: string;
  uptimeS: number;
  bytesIn: number;
  bytesOut: number;
  packetsIn: number;
  packetsOut: number;
}

export interface StatusSnapshot {
  /** Milliseconds since the epoch, at the server. */
  now: number;
  startedAt: number;
  sessions: StatusSession[];
  /** Live sessions in all (sessions lists at most MAX_LISTED of them). */
  sessionCount: number;
  sessionLimit: number;
  pool: { size: number; free: number };
  totals: { bytesIn: number; bytesOut: number; packetsIn: number; packetsOut: number };
  failures: FailureRecord[];
  /** The kill button needs a token the page does not carry (non-loopback listener). */
  tokenRequired: boolean;
}

/** Most sessions a snapshot lists (the page is for reading; `poptop sessions --json` lists all). */
export const MAX_LISTED = 1000;

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text for an HTML element or a quoted attribute: control characters made visible, markup inert. */
export function escapeHtml(s: string): string {
  return escapeControls(s).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export function formatUptime(s: number): string {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  return `${m}m ${String(s % 60).padStart(2, '0')}s`;
}

function row(s: StatusSession): string {
  const cells = [
    s.user ?? '-',
    s.peer,
    s.ip ?? '-',
    s.auth ?? '-',
    s.mppe ?? 'none',
    s.state === 'up' ? formatUptime(s.uptimeS) : s.state,
    `${formatBytes(s.bytesIn)} in / ${formatBytes(s.bytesOut)} out`,
  ];
  const td = cells.map((c, i) => `<td class="c${i}">${escapeHtml(c)}</td>`).join('');
  const id = escapeHtml(s.id);
  return `<tr data-id="${id}">${td}<td class="graph"><svg class="spark" viewBox="0 0 120 28" aria-hidden="true"></svg></td><td><button type="button" class="kill" data-id="${id}">kill</button></td></tr>`;
}

function failureItem(f: FailureRecord): string {
  const who = `${f.user ?? '-'} from ${f.peer}`;
  const at = new Date(f.at).toISOString().replace('T', ' ').slice(0, 19);
  return `<li><time>${escapeHtml(at)}</time> <b>${escapeHtml(who)}</b>: ${escapeHtml(f.words)}<br><small>${escapeHtml(f.detail)}</small></li>`;
}

/** The whole page for `snap`; `token` goes into a meta element when the page may carry it. */
export function renderStatusPage(snap: StatusSnapshot, token: string | undefined): string {
  const used = snap.pool.size - snap.pool.free;
  const pct = snap.pool.size > 0 ? Math.round((used / snap.pool.size) * 100) : 0;
  const rows = snap.sessions.map(row).join('\n');
  const more =
    snap.sessionCount > snap.sessions.length
      ? `<p class="note">showing ${snap.sessions.length} of ${snap.sessionCount} sessions</p>`
      : '';
  const failures = snap.failures.length
    ? snap.failures.slice().reverse().map(failureItem).join('\n')
    : '<li class="none">none since start</li>';
  const meta = token !== undefined ? `<meta name="poptop-token" content="${escapeHtml(token)}">` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${meta}
<title>poptop status</title>
<link rel="stylesheet" href="/status.css">
<script src="/status.js" defer></script>
</head>
<body>
<header><h1>poptop</h1><span id="updated">as of ${escapeHtml(new Date(snap.now).toISOString())}</span></header>
<section class="summary">
  <div class="card"><h2>sessions</h2><p><span id="session-count">${snap.sessionCount}</span> / ${snap.sessionLimit}</p></div>
  <div class="card"><h2>address pool</h2><p><span id="pool-used">${used}</span> of <span id="pool-size">${snap.pool.size}</span> in use</p>
    <progress id="pool-bar" max="${snap.pool.size}" value="${used}">${pct}%</progress></div>
  <div class="card wide"><h2>traffic, all sessions</h2><p id="total-traffic">${formatBytes(snap.totals.bytesIn)} in / ${formatBytes(snap.totals.bytesOut)} out</p>
    <svg id="total-graph" class="spark big" viewBox="0 0 120 28" aria-label="total traffic, last minute"></svg></div>
</section>
<section>
<h2>sessions</h2>
<table id="sessions">
<thead><tr><th>user</th><th>client address</th><th>tunnel address</th><th>auth</th><th>MPPE</th><th>uptime</th><th>traffic</th><th>last minute</th><th></th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
${more}
<p id="message" role="status"></p>
</section>
<section>
<h2>last failed connections</h2>
<ul id="failures">
${failures}
</ul>
</section>
</body>
</html>
`;
}

export const STATUS_CSS = `
:root { --fg:#1d2433; --muted:#6b7385; --line:#dde1ea; --in:#2f7bd8; --out:#e07b24; --bg:#f6f7fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display:flex; align-items:baseline; gap:1em; padding: 12px 20px; background:#1d2433; color:#fff; }
header h1 { margin:0; font-size: 20px; }
header span { color:#b8bfcc; font-size: 12px; }
section { padding: 8px 20px; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); margin: 8px 0; }
.summary { display:flex; flex-wrap: wrap; gap: 12px; }
.card { background:#fff; border:1px solid var(--line); border-radius:6px; padding: 8px 14px; min-width: 180px; }
.card.wide { min-width: 320px; }
.card p { margin: 4px 0; font-size: 18px; }
progress { width: 100%; height: 8px; accent-color: var(--in); }
table { border-collapse: collapse; width: 100%; background:#fff; border:1px solid var(--line); }
th, td { text-align:left; padding: 5px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
td.c0 { font-weight: 600; max-width: 18em; overflow: hidden; text-overflow: ellipsis; }
svg.spark { width: 120px; height: 28px; display:block; background: #fafbfd; }
svg.spark.big { width: 300px; height: 60px; }
svg.spark polyline { fill: none; stroke-width: 1.2; vector-effect: non-scaling-stroke; }
svg.spark polyline.in { stroke: var(--in); }
svg.spark polyline.out { stroke: var(--out); }
button.kill { border:1px solid #c9302c; color:#c9302c; background:#fff; border-radius:4px; cursor:pointer; }
button.kill:hover { background:#c9302c; color:#fff; }
#failures { list-style:none; padding:0; margin:0; }
#failures li { background:#fff; border:1px solid var(--line); border-left: 3px solid #c9302c; margin: 4px 0; padding: 4px 10px; }
#failures li.none { border-left-color: var(--line); color: var(--muted); }
#failures small { color: var(--muted); }
#failures time { color: var(--muted); font-variant-numeric: tabular-nums; }
#message { color: #c9302c; min-height: 1.4em; }
.note { color: var(--muted); }
`;

/**
 * The page's script: polls /api/status, keeps a minute of byte rates per session and in total,
 * draws them as SVG polylines, and sends kills with the token and JSON (so a cross-site form
 * cannot imitate them). All text goes in through textContent.
 */
export const STATUS_JS = `'use strict';
(function () {
  var POINTS = 60;
  var meta = document.querySelector('meta[name="poptop-token"]');
  var token = meta ? meta.getAttribute('content') : '';
  var fromHash = /(?:^#|&)token=([0-9a-f]+)/.exec(location.hash);
  if (fromHash) { token = fromHash[1]; try { sessionStorage.setItem('poptop-token', token); } catch (e) {} }
  if (!token) { try { token = sessionStorage.getItem('poptop-token') || ''; } catch (e) {} }
  var history = new Map();
  var total = { last: null, rin: [], rout: [] };
  var lastAt = null;

  function bytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    if (n < 1073741824) return (n / 1048576).toFixed(1) + ' MiB';
    return (n / 1073741824).toFixed(2) + ' GiB';
  }
  function uptime(s) {
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d > 0) return d + 'd ' + h + 'h';
    if (h > 0) return h + 'h ' + String(m).padStart(2, '0') + 'm';
    return m + 'm ' + String(s % 60).padStart(2, '0') + 's';
  }
  function push(list, v) { list.push(v); if (list.length > POINTS) list.shift(); }
  function rate(prev, cur, dt) { return prev === null || dt <= 0 || cur < prev ? 0 : (cur - prev) / dt; }

  function draw(svg, rin, rout) {
    var max = 1;
    rin.concat(rout).forEach(function (v) { if (v > max) max = v; });
    [['in', rin], ['out', rout]].forEach(function (p) {
      var line = svg.querySelector('polyline.' + p[0]);
      if (!line) {
        line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
        line.setAttribute('class', p[0]);
        svg.appendChild(line);
      }
      var pts = p[1].map(function (v, i) {
        var x = (120 * (i + POINTS - p[1].length)) / (POINTS - 1);
        return x.toFixed(1) + ',' + (27 - (26 * v) / max).toFixed(1);
      });
      line.setAttribute('points', pts.join(' '));
    });
    svg.setAttribute('data-samples', String(rin.length));
  }

  function cell(tr, cls, text) {
    var td = tr.querySelector('td.' + cls);
    if (td.textContent !== text) td.textContent = text;
  }

  function newRow(s) {
    var tr = document.createElement('tr');
    tr.setAttribute('data-id', s.id);
    for (var i = 0; i < 7; i++) { var td = document.createElement('td'); td.className = 'c' + i; tr.appendChild(td); }
    var g = document.createElement('td'); g.className = 'graph';
    var svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('class', 'spark'); svg.setAttribute('viewBox', '0 0 120 28');
    g.appendChild(svg); tr.appendChild(g);
    var k = document.createElement('td');
    var b = document.createElement('button'); b.type = 'button'; b.className = 'kill'; b.textContent = 'kill';
    b.setAttribute('data-id', s.id);
    k.appendChild(b); tr.appendChild(k);
    return tr;
  }

  function renderFailures(list) {
    var ul = document.getElementById('failures');
    ul.textContent = '';
    if (list.length === 0) {
      var none = document.createElement('li'); none.className = 'none'; none.textContent = 'none since start'; ul.appendChild(none);
      return;
    }
    list.slice().reverse().forEach(function (f) {
      var li = document.createElement('li');
      var t = document.createElement('time'); t.textContent = new Date(f.at).toISOString().replace('T', ' ').slice(0, 19);
      var b = document.createElement('b'); b.textContent = (f.user === null ? '-' : f.user) + ' from ' + f.peer;
      var small = document.createElement('small'); small.textContent = f.detail;
      li.appendChild(t); li.appendChild(document.createTextNode(' ')); li.appendChild(b);
      li.appendChild(document.createTextNode(': ' + f.words)); li.appendChild(document.createElement('br')); li.appendChild(small);
      ul.appendChild(li);
    });
  }

  function update(snap) {
    var dt = lastAt === null ? 0 : (snap.now - lastAt) / 1000;
    lastAt = snap.now;
    document.getElementById('updated').textContent = 'as of ' + new Date(snap.now).toISOString();
    document.getElementById('session-count').textContent = String(snap.sessionCount);
    var used = snap.pool.size - snap.pool.free;
    document.getElementById('pool-used').textContent = String(used);
    document.getElementById('pool-size').textContent = String(snap.pool.size);
    var bar = document.getElementById('pool-bar');
    bar.max = snap.pool.size || 1; bar.value = used;
    document.getElementById('total-traffic').textContent = bytes(snap.totals.bytesIn) + ' in / ' + bytes(snap.totals.bytesOut) + ' out';
    var t = snap.totals;
    push(total.rin, rate(total.last && total.last.bytesIn, t.bytesIn, dt));
    push(total.rout, rate(total.last && total.last.bytesOut, t.bytesOut, dt));
    total.last = t;
    draw(document.getElementById('total-graph'), total.rin, total.rout);

    var tbody = document.querySelector('#sessions tbody');
    var seen = new Set();
    snap.sessions.forEach(function (s) {
      seen.add(s.id);
      var h = history.get(s.id);
      if (!h) { h = { lastIn: null, lastOut: null, rin: [], rout: [] }; history.set(s.id, h); }
      push(h.rin, rate(h.lastIn, s.bytesIn, dt));
      push(h.rout, rate(h.lastOut, s.bytesOut, dt));
      h.lastIn = s.bytesIn; h.lastOut = s.bytesOut;
      var tr = tbody.querySelector('tr[data-id="' + CSS.escape(s.id) + '"]');
      if (!tr) { tr = newRow(s); tbody.appendChild(tr); }
      cell(tr, 'c0', s.user === null ? '-' : s.user);
      cell(tr, 'c1', s.peer);
      cell(tr, 'c2', s.ip === null ? '-' : s.ip);
      cell(tr, 'c3', s.auth === null ? '-' : s.auth);
      cell(tr, 'c4', s.mppe === null ? 'none' : s.mppe);
      cell(tr, 'c5', s.state === 'up' ? uptime(s.uptimeS) : s.state);
      cell(tr, 'c6', bytes(s.bytesIn) + ' in / ' + bytes(s.bytesOut) + ' out');
      draw(tr.querySelector('svg.spark'), h.rin, h.rout);
    });
    Array.prototype.slice.call(tbody.querySelectorAll('tr')).forEach(function (tr) {
      var id = tr.getAttribute('data-id');
      if (!seen.has(id)) { tr.remove(); history.delete(id); }
    });
    renderFailures(snap.failures);
  }

  function headers() {
    var h = { 'Content-Type': 'application/json' };
    if (token) h['X-Poptop-Token'] = token;
    return h;
  }
  function say(text) { document.getElementById('message').textContent = text; }

  function poll() {
    fetch('/api/status', { headers: headers(), cache: 'no-store' })
      .then(function (r) {
        if (r.status === 401) { say('this listener needs the token: open the page as /#token=... (the token is in the file the log names)'); return null; }
        return r.json();
      })
      .then(function (snap) { if (snap) update(snap); })
      .catch(function (e) { say('cannot reach the server: ' + e.message); })
      .finally(function () { setTimeout(poll, 1000); });
  }

  document.addEventListener('click', function (ev) {
    var b = ev.target.closest && ev.target.closest('button.kill');
    if (!b) return;
    var id = b.getAttribute('data-id');
    var tr = b.closest('tr');
    var who = tr ? tr.querySelector('td.c0').textContent : id;
    if (!window.confirm('End session ' + id + ' (' + who + ')?')) return;
    b.disabled = true;
    fetch('/api/kill', { method: 'POST', headers: headers(), body: JSON.stringify({ id: id }) })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j }; }); })
      .then(function (x) { say(x.ok ? 'closing ' + x.j.closed.join(', ') : 'kill refused: ' + x.j.error); })
      .catch(function (e) { say('kill failed: ' + e.message); b.disabled = false; });
  });

  poll();
})();
`;
