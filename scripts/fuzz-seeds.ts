// Writes the fuzz seed corpora, test/fuzz/corpus/<target>/<sha1>, from the real captures in
// ../shared/captures (or the folder given) and the recorded fixtures under test/. Re-run it when the
// captures or fixtures change: `node --import tsx scripts/fuzz-seeds.ts [captures-dir]`.
// Seeds are deduplicated by content and, for the per-packet targets, by shape (message type, header
// flags, protocol and code) so that the corpus stays small and varied.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeGreHeader } from '../src/gre/codec.ts';
import { PppProtocol } from '../src/ppp/constants.ts';
import { decodeFrame } from '../src/ppp/frame.ts';
import { corpusDir, inputName } from '../test/fuzz/engine.ts';
import { type FuzzRecord, joinRecords } from '../test/fuzz/records.ts';
import { FIXTURE_DIR, parseFixture } from '../test/interop/record-fixture.ts';
import { type Ipv4, ipv4Packets, readPcap, type TcpFlow, tcpFlows } from '../test/support/pcap-read.ts';

const root = new URL('..', import.meta.url).pathname;
const capturesDir = process.argv[2] ?? join(root, '..', 'shared', 'captures');

const corpora = new Map<string, Map<string, Uint8Array>>();
const shapes = new Map<string, Map<string, number>>();

/** Add a seed; `shape` (if given) keeps at most `perShape` seeds of one kind. */
function add(target: string, input: Uint8Array, shape?: string, perShape = 2): void {
  let c = corpora.get(target);
  if (!c) {
    c = new Map();
    corpora.set(target, c);
  }
  if (shape !== undefined) {
    let s = shapes.get(target);
    if (!s) {
      s = new Map();
      shapes.set(target, s);
    }
    const n = s.get(shape) ?? 0;
    if (n >= perShape) return;
    s.set(shape, n + 1);
  }
  c.set(inputName(input), input);
}

const u16 = (b: Uint8Array, at: number) => ((b[at] ?? 0) << 8) | (b[at + 1] ?? 0);
const CONTROL_PROTOCOLS = new Set<number>([
  PppProtocol.LCP,
  PppProtocol.IPCP,
  PppProtocol.IPV6CP,
  PppProtocol.CCP,
]);
const LAYER_INDEX: Record<number, number> = {
  [PppProtocol.LCP]: 0,
  [PppProtocol.IPCP]: 1,
  [PppProtocol.IPV6CP]: 2,
  [PppProtocol.CCP]: 3,
};

/** Seeds from one PPP frame (as carried in GRE), sent in direction `dir`. */
function addPppFrame(frame: Uint8Array, dir: 'c>s' | 's>c'): void {
  let f: ReturnType<typeof decodeFrame>;
  try {
    f = decodeFrame(frame);
  } catch {
    return;
  }
  const code = f.info[0] ?? -1;
  add(
    'ppp-frame',
    frame.slice(0, 64),
    `${f.protocol}:${CONTROL_PROTOCOLS.has(f.protocol) ? code : ''}:${frame[0]}`,
  );
  const layer = LAYER_INDEX[f.protocol];
  if (layer !== undefined) {
    // Octet 0: layer, and the role that would receive it (client for s>c).
    const head = layer | (dir === 's>c' ? 4 : 0);
    add('ppp-options', Uint8Array.from([head, ...f.info]), `${layer}:${code}:${dir}`, 3);
  }
  if (f.protocol === PppProtocol.PAP) add('pap', f.info.slice(), `${code}`, 3);
  if (f.protocol === PppProtocol.CHAP) add('chap', f.info.slice(), `${code}:${f.info.length}`, 3);
}

/** One PPTP session (a capture) as a link input: the frames one side received, with clock steps. */
function addLinkSession(frames: Uint8Array[], role: 'server' | 'client'): void {
  // The recorded peer acked its own server's request, not ours: after its first frame a cooperative
  // peer acks our LCP request, and after authentication our CCP and IPCP requests.
  const records: FuzzRecord[] = [];
  for (const [i, f] of frames.slice(0, 60).entries()) {
    records.push({ tag: 0, data: f.length > 200 ? f.slice(0, 200) : f });
    if (i === 0) records.push({ tag: 4, data: Uint8Array.of(0) });
    const protocol = u16(f, f[0] === 0xff ? 2 : 0);
    if (protocol === PppProtocol.CHAP || protocol === PppProtocol.PAP) {
      records.push({ tag: 4, data: Uint8Array.of(3) }, { tag: 4, data: Uint8Array.of(1) });
    }
  }
  records.push({ tag: 1, data: Uint8Array.of(40) }); // 4 s: let retransmissions happen
  const head = role === 'client' ? 0x01 : 0x00;
  add('ppp-link', joinRecords(records, [head]));
  add('ppp-link', joinRecords(records, [head | 0x0e])); // every auth method, MPPE optional, IPv6CP
}

/** "a:1>b:2" for "b:2>a:1". */
function reverse(key: string): string {
  const [a, b] = key.split('>');
  return `${b}>${a}`;
}

/** The Call ID of the first Outgoing-Call-Request in a client's stream (or 1). */
function clientCallId(flow: TcpFlow | undefined): number {
  const stream = flow ? flow.stream.bytes() : new Uint8Array(0);
  for (let at = 0; at + 14 <= stream.length; ) {
    const length = u16(stream, at);
    if (length < 12) break;
    if (u16(stream, at + 8) === 7) return u16(stream, at + 12) || 1;
    at += length;
  }
  return 1;
}

let captures = 0;
for (const name of readdirSync(capturesDir).sort()) {
  if (!/\.(pcap|dump|cap)$/.test(name)) continue;
  let packets: Ipv4[];
  try {
    packets = ipv4Packets(readPcap(new Uint8Array(readFileSync(join(capturesDir, name)))));
  } catch (e) {
    console.warn(`${name}: ${(e as Error).message}`);
    continue;
  }
  captures++;
  const flows = tcpFlows(packets, 1723);
  // The PPTP client: whoever sends to TCP port 1723.
  const clients = new Set(flows.filter((f) => f.dir === 'c>s').map((f) => f.src));

  // PPTP control: each direction's stream, cut where TCP cut it.
  for (const flow of flows) {
    const segments = flow.stream.segments();
    const stream = flow.stream.bytes();
    add('pptp-framer', joinRecords(segments.map((data) => ({ tag: 0, data }))));
    // The PAC receives the client's stream, the PNS the server's; with clock steps between segments.
    // A PNS places its call after the first segment (the Start-Control-Connection-Reply), with the
    // Call ID the recorded client used, so that the recorded server's answers match it.
    const role = flow.dir === 'c>s' ? 0 : 1;
    const recs: FuzzRecord[] = [];
    for (const [i, data] of segments.entries()) {
      recs.push({ tag: 0, data });
      recs.push({ tag: 1, data: Uint8Array.of(1) });
      if (role === 1 && i === 0) recs.push({ tag: 2, data: new Uint8Array(0) });
    }
    const peerStream = flows.find((f) => f.dir === 'c>s' && f.key === reverse(flow.key));
    const callId = role === 1 ? clientCallId(peerStream) : 0x1234;
    add('pptp-control', joinRecords(recs, [role, callId >> 8, callId & 0xff]));
    for (let at = 0; at + 12 <= stream.length; ) {
      const length = u16(stream, at);
      if (length < 12 || at + length > stream.length) break;
      const msg = stream.subarray(at, at + length);
      add('pptp-codec', Uint8Array.from([0, ...msg]), `${u16(msg, 8)}`);
      at += length;
    }
  }

  // GRE and the PPP frames inside.
  const sessionFrames = { 'c>s': [] as Uint8Array[], 's>c': [] as Uint8Array[] };
  for (const p of packets.filter((p) => p.protocol === 47 && !p.fragment)) {
    const g = p.payload;
    let h: ReturnType<typeof decodeGreHeader>;
    try {
      h = decodeGreHeader(g);
    } catch {
      add('gre', Uint8Array.from([0, ...g.subarray(0, 48)]), `bad:${u16(g, 0)}`);
      continue;
    }
    const payload = g.subarray(h.headerLength, h.headerLength + h.payloadLength);
    // Keep GRE seeds short: at most 32 octets of payload, with the length field to match.
    const keep = Math.min(32, payload.length);
    const seed = Uint8Array.from([0, ...g.subarray(0, h.headerLength), ...payload.subarray(0, keep)]);
    seed[5] = keep >> 8;
    seed[6] = keep & 0xff;
    add('gre', seed, `${u16(g, 0)}:${payload.length > 0}`);
    if (payload.length === 0) continue;
    const dir = clients.size === 0 || clients.has(p.src) ? 'c>s' : 's>c';
    addPppFrame(payload, dir);
    sessionFrames[dir].push(payload.slice());
  }
  if (clients.size > 0) {
    if (sessionFrames['c>s'].length > 0) addLinkSession(sessionFrames['c>s'], 'server');
    if (sessionFrames['s>c'].length > 0) addLinkSession(sessionFrames['s>c'], 'client');
  }
}

// The recorded real-client negotiation: the session the ppp-link server replays to Network phase.
const fixture = parseFixture(readFileSync(join(FIXTURE_DIR, 'mschapv2-mppe128.hex'), 'utf8'));
for (const f of fixture) addPppFrame(f.frame, f.dir);
for (const [role, dir] of [
  ['server', 'c>s'],
  ['client', 's>c'],
] as const) {
  const frames = fixture.filter((f) => f.dir === dir).map((f) => f.frame);
  const records: FuzzRecord[] = frames.map((data) => ({ tag: 0, data }));
  add('ppp-link', joinRecords(records, [role === 'client' ? 1 : 0]));
  // The same, then IP packets both ways and a clock step past a few LCP echoes.
  records.push({
    tag: 2,
    data: Uint8Array.from([0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]),
  });
  records.push({ tag: 0, data: Uint8Array.from([0x00, 0xfd, 0x90, 0x00, 1, 2, 3, 4]) });
  records.push({ tag: 1, data: Uint8Array.of(255) });
  add('ppp-link', joinRecords(records, [(role === 'client' ? 1 : 0) | 0x10]));
}

// Configuration fixtures.
const configDir = join(root, 'test', 'config', 'fixtures');
for (const name of readdirSync(configDir).sort()) {
  const text = new Uint8Array(readFileSync(join(configDir, name)));
  if (name === 'pptpd.conf') add('pptpd-conf', text);
  else if (name === 'chap-secrets') add('chap-secrets', text);
  else add('pppd-options', text);
}
// The built-in defaults the server writes, as further config seeds.
add(
  'chap-secrets',
  new Uint8Array(
    Buffer.from(
      '# client server secret addresses\npoptop * "7kQm pass" *\nbob pptpd $NT$8846F7EAEE8FB117AD06BDD830B7586C 10.77.0.20\n',
    ),
  ),
);

for (const [target, inputs] of [...corpora].sort()) {
  const dir = corpusDir(target);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [name, input] of inputs) writeFileSync(join(dir, name), input);
  console.log(`${target}: ${inputs.size} seeds`);
}
console.log(`from ${captures} captures and the fixtures`);
