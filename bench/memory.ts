/**
 * Server memory per session, and what it is made of (root; run `npx tsc -p tsconfig.build.json`
 * first):
 *
 *   node --import tsx bench/memory.ts [N ...] [-c CONCURRENCY] [--breakdown-max N] [--keep-snapshots DIR]
 *
 * For each N (default 1000 5000 10000) it starts `poptop serve` in a fresh namespace, reads its RSS
 * at rest, brings N sessions up with `poptop load` (MS-CHAPv2 + MPPE-128, LCP echo 30 s) from
 * another namespace, reads the RSS again, ends every session (load killed) and reads it once more
 * after they are all gone, then again once the server has run its own full collection (it logs
 * one about ten seconds after a mass disconnect: server/memory-release.ts). Up to
 * --breakdown-max sessions (default 5000) it also asks the server for V8 heap snapshots (node
 * --heapsnapshot-signal) at rest and with the sessions up, and sums the difference by object kind
 * and constructor: bytes per session of each, largest first. With
 * --keep-snapshots the snapshots are copied into DIR (named n<N>-…) for a closer look in a heap
 * viewer; otherwise they are deleted with the run.
 */
import { copyFileSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type NsProcess, type Topology, until } from '../test/e2e/netns.ts';
import { benchArgs, benchLoad, benchServer, benchStatus, inTopology } from './ns-bench.ts';

const { opt, rest: args } = benchArgs(process.argv.slice(2));
const concurrency = Number(opt('-c', '64'));
const breakdownMax = Number(opt('--breakdown-max', '5000'));
const keepDir = opt('--keep-snapshots', '');
const sizes = args.length > 0 ? args.map(Number) : [1000, 5000, 10000];
const TUN = 'ptmem0';

if (process.getuid?.() !== 0) {
  console.error('bench/memory.ts needs root (network namespaces, raw GRE, TUN)');
  process.exit(2);
}

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

function status(topo: Topology, control: string): { sessions: number; memory: Memory } {
  return benchStatus(topo, control);
}

/** The server's memory once a full collection had the chance to run (idle for a while). */
async function settled(topo: Topology, control: string): Promise<Memory> {
  await new Promise((r) => setTimeout(r, 3000));
  return status(topo, control).memory;
}

/** Self sizes summed by "kind constructor" over a .heapsnapshot file. */
function heapByKind(file: string): Map<string, number> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const f = snap.snapshot.meta.node_fields;
  const width = f.length;
  const [iType, iName, iSize] = [f.indexOf('type'), f.indexOf('name'), f.indexOf('self_size')];
  const types = snap.snapshot.meta.node_types[0];
  const out = new Map<string, number>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]!]!;
    const name = snap.strings[snap.nodes[i + iName]!]!;
    // Objects by constructor; strings, code and arrays by kind only (their names are contents).
    const key =
      type === 'object' || type === 'native' || type === 'closure'
        ? `${type} ${name.length > 60 ? `${name.slice(0, 57)}...` : name}`
        : type;
    out.set(key, (out.get(key) ?? 0) + snap.nodes[i + iSize]!);
  }
  return out;
}

/** Signals the server for a heap snapshot and returns its path once written. */
async function snapshot(server: NsProcess, dir: string): Promise<string> {
  const before = new Set(readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot')));
  server.signal('SIGUSR2');
  const file = await until('the heap snapshot file', 120_000, () =>
    readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f)),
  );
  // Complete once it parses (the server writes it in pieces); heapByKind reads it again.
  const path = join(dir, file);
  await until('the heap snapshot written whole', 300_000, () => {
    try {
      JSON.parse(readFileSync(path, 'utf8'));
      return true;
    } catch {
      return undefined;
    }
  });
  return path;
}

interface Row {
  n: number;
  up: number;
  rest: Memory;
  withUp: Memory;
  after: Memory;
  /** heapUsed after everything ended and a full collection (forced by a heap snapshot). */
  heapAfterGc: number;
  /** RSS at that point: what V8 gave back to the system after the collection. */
  rssAfterGc: number;
  /** RSS 3 s after the server's own full collection (NaN: it ran none within 90 s). */
  rssReleased: number;
  /** Seconds from the last session's end to that collection (at most its wait plus 3 s). */
  releasedAfterS: number;
  /** How long the server's collections and trim took, as it logged them (the event loop's pauses). */
  collectMs: string;
  perSessionKb: number;
  breakdown?: Array<[string, number]>;
}

async function run(n: number, tag: string, breakdown: boolean): Promise<Row> {
  return inTopology(tag, async (topo, keep) => {
    const { server, control } = await benchServer(topo, n, {
      tun: TUN,
      pool: 79,
      nodeArgs: ['--heapsnapshot-signal=SIGUSR2'],
    });
    keep(server);
    const rest = await settled(topo, control);
    const restSnap = breakdown ? await snapshot(server, topo.dir) : undefined;
    const gen = benchLoad(topo, n, concurrency);
    keep(gen);
    const m = await gen.waitFor(/^\{"requested".*\}$/m, 600_000);
    const up = (JSON.parse(m[0]) as { up: number }).up;
    const withUp = await settled(topo, control);
    let rows: Array<[string, number]> | undefined;
    if (restSnap) {
      const a = heapByKind(restSnap);
      const b = heapByKind(await snapshot(server, topo.dir));
      rows = [...b.entries()]
        .map(([k, v]) => [k, (v - (a.get(k) ?? 0)) / Math.max(1, up)] as [string, number])
        .filter(([, v]) => v >= 16)
        .sort((x, y) => y[1] - x[1]);
    }
    gen.signal('SIGKILL');
    await gen.exited(10_000);
    await until('every session ended', 300_000, () =>
      status(topo, control).sessions === 0 ? true : undefined,
    );
    const ended = Date.now();
    const after = await settled(topo, control);
    // The server's own full collection once most sessions have ended (server/memory-release.ts).
    const collected = await until('the server to give memory back', 90_000, () =>
      /memory: \d+ of \d+ sessions ended; two full garbage collections/.test(server.output)
        ? true
        : undefined,
    ).catch(() => false);
    const releasedAfterS = collected ? (Date.now() - ended) / 1000 : Number.NaN;
    // "(first + second + trim ms": the event loop's pauses, one at a time.
    const collectMs = /heap trim \((\d+ \+ \d+ \+ \d+) ms/.exec(server.output)?.[1] ?? '?';
    const released = collected ? await settled(topo, control) : undefined;
    await snapshot(server, topo.dir);
    const afterGc = status(topo, control).memory;
    const heapAfterGc = afterGc.heapUsed;
    server.signal('SIGTERM');
    await server.exited(30_000).catch(() => undefined);
    for (const f of readdirSync(topo.dir)) {
      if (!f.endsWith('.heapsnapshot')) continue;
      if (keepDir) copyFileSync(join(topo.dir, f), join(keepDir, `n${n}-${f}`));
      rmSync(join(topo.dir, f));
    }
    return {
      n,
      up,
      rest,
      withUp,
      after,
      heapAfterGc,
      rssReleased: released?.rss ?? Number.NaN,
      releasedAfterS,
      collectMs,
      rssAfterGc: afterGc.rss,
      perSessionKb: (withUp.rss - rest.rss) / 1024 / Math.max(1, up),
      ...(rows ? { breakdown: rows } : {}),
    };
  });
}

const results: Row[] = [];
let k = 0;
for (const n of sizes) {
  const row = await run(n, `${process.pid % 10000}m${k++}`, false);
  results.push(row);
  console.log(JSON.stringify(row));
}
// The breakdown in a run of its own: a snapshot costs the server memory it keeps (RSS).
// --breakdown-max 0: none.
const small = Math.min(...sizes, breakdownMax);
const detail = small > 0 ? await run(small, `${process.pid % 10000}m${k++}`, true) : undefined;
const mb = (bytes: number): string => (bytes / 1048576).toFixed(0);
const kbPer = (a: number, b: number, n: number): string => ((b - a) / 1024 / Math.max(1, n)).toFixed(1);
console.log(
  '\n| N | up | RSS at rest | RSS with N up | RSS per session | V8 heap per session | RSS after all ended | RSS after the server gave it back (s after the end; its pause) | RSS after a full GC (snapshot) | heap at rest / after, full GC |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of results)
  console.log(
    `| ${r.n} | ${r.up} | ${mb(r.rest.rss)} MB | ${mb(r.withUp.rss)} MB | ${kbPer(r.rest.rss, r.withUp.rss, r.up)} KB | ${kbPer(r.rest.heapUsed, r.withUp.heapUsed, r.up)} KB | ${mb(r.after.rss)} MB | ${mb(r.rssReleased)} MB (${r.releasedAfterS.toFixed(0)} s; ${r.collectMs} ms) | ${mb(r.rssAfterGc)} MB | ${mb(r.rest.heapUsed)} / ${mb(r.heapAfterGc)} MB |`,
  );
if (detail) {
  const total = (detail.breakdown ?? []).reduce((s, [, v]) => s + v, 0);
  console.log(`\nV8 heap per session at N=${detail.n}, live objects only (${(total / 1024).toFixed(1)} KB):`);
  for (const [key, v] of (detail.breakdown ?? []).slice(0, 25))
    console.log(`  ${(v / 1024).toFixed(2).padStart(7)} KB  ${key}`);
}
