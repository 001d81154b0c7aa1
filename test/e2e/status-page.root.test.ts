/**
 * The status page end to end: the real `poptop serve --status 127.0.0.1:9100` in a network
 * namespace, a real `poptop connect` client, and Debian's Chromium (headless, driven by
 * playwright-core) inside the server's namespace. The page must show the live session, its graph
 * and the total one must move when traffic flows, and the kill button must end the session.
 * Needs root; required (not skipped) when CI=true: a missing /usr/bin/chromium is then a failure.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { Scenario } from './scenario.ts';

const CHROMIUM = '/usr/bin/chromium';
const STATUS = '127.0.0.1:9100';
const required = process.env.POPTOP_REQUIRE_ROOT_TESTS === '1' || process.env.CI === 'true';
const haveChromium = existsSync(CHROMIUM);

let sc: Scenario | undefined;
let browser: Browser | undefined;
const shots = mkdtempSync(join(tmpdir(), 'poptop-status-page-'));

before(async () => {
  if (!haveChromium) {
    if (required) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (.ci/run does)`);
    return;
  }
  sc = new Scenario(1);
  await sc.startServer(['--status', STATUS]);
  await sc.server!.waitFor(/status page on http:\/\/127\.0\.0\.1:9100\//, 10_000);
  // Chromium runs in the server's namespace, where the listener is; playwright talks to it over a pipe.
  const wrapper = join(sc.topo.dir, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${sc.topo.server} ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  browser = await chromium.launch({
    executablePath: wrapper,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 60_000,
  });
});

after(async () => {
  await browser?.close();
  await sc?.destroy();
});

/**
 * The `points` of the polylines of an SVG graph (in, then out). Read through locators: the page's
 * Content-Security-Policy forbids eval, so page.evaluate/waitForFunction with strings cannot run.
 */
async function graphPoints(page: Page, selector: string): Promise<string> {
  const lines = page.locator(`${selector} polyline`);
  const out: string[] = [];
  for (let i = 0; i < (await lines.count()); i++) out.push((await lines.nth(i).getAttribute('points')) ?? '');
  return out.join(' | ');
}

/** Poll `read` until `ok` holds for its value; fail after `ms` naming `what`. */
async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms: number, what: string): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() - start > ms) throw new Error(`no ${what} within ${ms} ms (last: ${String(v)})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** True when some point of the graph is above the baseline (a non-zero rate is drawn). */
function hasRise(points: string): boolean {
  return points
    .split(/[ |]+/)
    .filter(Boolean)
    .some((p) => Number(p.split(',')[1]) < 26.5);
}

test('status page: a live session, moving graphs, a screenshot, and the kill button', {
  skip: !haveChromium && !required,
}, async (t) => {
  const scn = sc!;
  const alice = scn.connect(0, 'alice', 'alice-pw');
  const up = await alice.waitFor(/connected: \S+ (\S+) -> (\S+), MS-CHAPv2, MPPE 128-bit stateless/, 20_000);
  const aliceIp = up[1]!;

  const context = await browser!.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(`http://${STATUS}/`);

  // The session, as the server rendered it and as the script keeps it.
  const row = page.locator('#sessions tbody tr', { hasText: 'alice' });
  await row.waitFor({ timeout: 10_000 });
  const cells = await row.locator('td').allTextContents();
  assert.equal(cells[0], 'alice');
  assert.equal(cells[1], scn.topo.clientAddress(0));
  assert.equal(cells[2], aliceIp);
  assert.equal(cells[3], 'mschapv2');
  assert.equal(cells[4], '128-bit stateless');
  assert.match(cells[5]!, /^\d+m \d\ds$/);
  assert.equal(await page.locator('#session-count').textContent(), '1');
  assert.equal(await page.locator('#pool-used').textContent(), '1');

  // The script has drawn the graphs; traffic through the tunnel makes them rise.
  await until(
    () => page.locator('#total-graph').getAttribute('data-samples'),
    (n) => Number(n) >= 2,
    10_000,
    'two samples drawn in the total graph',
  );
  const sessionGraph = '#sessions tbody tr svg.spark';
  const before = {
    session: await graphPoints(page, sessionGraph),
    total: await graphPoints(page, '#total-graph'),
  };
  const transfer = await scn.transfer(0, 4 * 1024 * 1024);
  assert.equal(transfer.received, transfer.sent);
  const afterTraffic = await until(
    async () => ({
      session: await graphPoints(page, sessionGraph),
      total: await graphPoints(page, '#total-graph'),
    }),
    (g) => hasRise(g.session) && hasRise(g.total),
    15_000,
    'rise in the session graph and the total graph',
  );
  assert.notEqual(afterTraffic.session, before.session);
  assert.notEqual(afterTraffic.total, before.total);
  assert.ok(hasRise(afterTraffic.session) && hasRise(afterTraffic.total));
  assert.match((await row.locator('td.c6').textContent()) ?? '', /MiB in/);

  // A screenshot of the page, kept in a temporary directory.
  const shot = join(shots, 'status-page.png');
  await page.screenshot({ path: shot, fullPage: true });
  const png = readFileSync(shot);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG file');
  assert.equal(png.subarray(12, 16).toString('latin1'), 'IHDR');
  assert.ok(png.readUInt32BE(16) >= 1280 && png.readUInt32BE(20) >= 400, 'the page size');
  assert.ok(statSync(shot).size > 10_000, 'a real picture, not an empty one');

  // The kill button: confirmed in the dialog, the session ends and the client hears why.
  page.on('dialog', (d) => void d.accept());
  await row.locator('button.kill').click();
  assert.equal(await alice.exited(15_000), 0);
  assert.match(alice.output, /disconnected: .*administrator/);
  await scn.server!.waitFor(/status page: closing s\d+/, 5000);
  await scn.server!.waitFor(
    /\[s\d+ alice [^\]]*\] session closed: closed by the administrator \(status page\)/,
    10_000,
  );
  await row.waitFor({ state: 'detached', timeout: 10_000 });
  assert.equal(await page.locator('#session-count').textContent(), '0');

  // The metrics of the same listener agree.
  const metrics = (await (await page.goto(`http://${STATUS}/metrics`))?.text()) ?? '';
  assert.match(metrics, /^poptop_session_setups_total 1$/m);
  assert.match(metrics, /^poptop_session_ends_total\{reason="admin_kill"\} 1$/m);
  assert.match(metrics, /^poptop_sessions\{state="up"\} 0$/m);
  assert.deepEqual(errors, []);
  t.diagnostic(`screenshot: ${shot} (${png.length} bytes)`);
  await context.close();
});
