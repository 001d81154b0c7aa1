/**
 * The attackers of test/e2e/hostile.root.test.ts: one process per attack, started with
 * `ip netns exec <ns> node --import tsx hostile-attacker.ts <mode> '<json args>'` in an attacker
 * namespace (or, for `sniff`, in the server's). Built on our own codecs, client and raw GRE socket.
 * Every loop is bounded in count and in time; the process prints one `RESULT {json}` line and exits.
 * Traffic goes only to the addresses it is given (the test's namespaces).
 */
import { type Socket, connect as tcpConnect } from 'node:net';
import { PptpClient } from '../../src/client/client.ts';
import { encodeGrePacket, readGreHeader } from '../../src/gre/codec.ts';
import { GreDemux } from '../../src/gre/demux.ts';
import { RawGreSocket } from '../../src/net/gre-socket.ts';
import { defaultPolicy } from '../../src/ppp/policy.ts';
import { CallIdAllocator } from '../../src/pptp/call-ids.ts';
import { type ControlMessage, encodeControlMessage } from '../../src/pptp/codec.ts';
import { ControlFramer } from '../../src/pptp/framer.ts';
import { SystemClock } from '../../src/util/clock.ts';
import { DropCounter } from '../../src/util/counters.ts';
import { consoleLogger, nullLogger } from '../../src/util/log.ts';
import { outgoingCallRequest, startControlRequest } from '../support/pptp-messages.ts';

type Args = Record<string, unknown>;
const mode = process.argv[2] ?? '';
const args = JSON.parse(process.argv[3] ?? '{}') as Args;
const str = (k: string, d?: string): string => (args[k] as string | undefined) ?? d ?? '';
const num = (k: string, d: number): number => (args[k] as number | undefined) ?? d;

/** Dotted quad → the number the codecs use (no import of net/ip.ts: that module is moving). */
const ip4 = (s: string): number => s.split('.').reduce((acc, o) => acc * 256 + Number(o), 0) >>> 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const result = (o: unknown): void => {
  process.stdout.write(`RESULT ${JSON.stringify(o)}\n`);
};

/** A hand-driven PPTP control connection from `local` (any address if absent). */
class Ctl {
  readonly sock: Socket;
  readonly received: ControlMessage[] = [];
  readonly t0 = Date.now();
  closedAt: number | undefined;
  error: string | undefined;
  onMessage: ((m: ControlMessage) => void) | undefined;
  readonly ready: Promise<boolean>;
  private readonly framer = new ControlFramer();

  constructor(server: string, local?: string) {
    this.sock = tcpConnect({
      host: server,
      port: 1723,
      noDelay: true,
      ...(local ? { localAddress: local } : {}),
    });
    this.ready = new Promise((resolve) => {
      this.sock.once('connect', () => resolve(true));
      this.sock.once('close', () => resolve(false));
    });
    this.sock.on('error', (e) => {
      this.error ??= (e as NodeJS.ErrnoException).code ?? e.message;
    });
    this.sock.on('close', () => {
      this.closedAt ??= Date.now() - this.t0;
    });
    this.sock.on('data', (d: Buffer) => {
      try {
        this.framer.push(d);
        for (let m = this.framer.next(); m; m = this.framer.next()) {
          this.received.push(m);
          this.onMessage?.(m);
        }
      } catch {
        this.sock.destroy();
      }
    });
  }

  get closed(): boolean {
    return this.closedAt !== undefined;
  }

  send(msg: ControlMessage): boolean {
    if (this.sock.destroyed) return false;
    return this.sock.write(encodeControlMessage(msg));
  }

  start(hostName = 'hostile', vendor = 'test'): void {
    this.send(startControlRequest({ hostName, vendor }));
  }

  find<T extends ControlMessage['type']>(type: T): Extract<ControlMessage, { type: T }> | undefined {
    return this.received.find((m) => m.type === type) as Extract<ControlMessage, { type: T }> | undefined;
  }
}

const outgoingCall = (callId: number): ControlMessage => outgoingCallRequest(callId, { callSerial: callId });

/** Row 1: Echo-Requests as fast as the socket takes them, never reading a reply. */
async function echoFlood(): Promise<void> {
  const c = new Ctl(str('server'), args.local as string | undefined);
  if (!(await c.ready)) return result({ error: `connect failed: ${c.error}` });
  c.sock.pause();
  c.start();
  const chunk = new Uint8Array(16 * 4096);
  const v = new DataView(chunk.buffer);
  for (let i = 0; i < 4096; i++) {
    v.setUint16(i * 16, 16);
    v.setUint16(i * 16 + 2, 1);
    v.setUint32(i * 16 + 4, 0x1a2b3c4d);
    v.setUint16(i * 16 + 8, 5);
    v.setUint32(i * 16 + 12, i);
  }
  const limitMs = num('seconds', 8) * 1000;
  const maxBytes = num('maxBytes', 64 << 20);
  let written = 0;
  while (!c.closed && c.error === undefined && Date.now() - c.t0 < limitMs) {
    // Past maxBytes, one Echo-Request every 100 ms: enough to notice a server that let go.
    const piece = written < maxBytes ? chunk : chunk.subarray(0, 16);
    const ok = c.sock.write(piece);
    written += piece.length;
    if (written >= maxBytes) await sleep(100);
    if (!ok) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        c.sock.once('drain', () => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  const endedAfterMs = c.closed || c.error !== undefined ? Date.now() - c.t0 : undefined;
  c.sock.destroy();
  // The server ending the connection under our writes (it destroys a closed control connection
  // that does not read) shows as EPIPE or ECONNRESET: an end, not a failure of the attacker.
  const reset = c.error === 'EPIPE' || c.error === 'ECONNRESET';
  result({
    written,
    messages: written / 16,
    endedAfterMs,
    endedBy: c.error,
    error: reset ? undefined : c.error,
  });
}

/**
 * Row 2: `n` control connections from one address that complete Start-Control-Connection and
 * then only answer the server's Echo-Requests (and its Stop request), never placing a call.
 */
async function holdStart(): Promise<void> {
  const n = num('n', 60);
  const limitMs = num('seconds', 12) * 1000;
  const conns: Ctl[] = [];
  const stopAt = new Map<Ctl, number>();
  for (let i = 0; i < n; i++) {
    const c = new Ctl(str('server'), args.local as string | undefined);
    c.onMessage = (m) => {
      if (m.type === 'echo-request')
        c.send({ type: 'echo-reply', identifier: m.identifier, resultCode: 1, errorCode: 0 });
      else if (m.type === 'stop-control-connection-request') {
        stopAt.set(c, Date.now() - c.t0);
        c.send({ type: 'stop-control-connection-reply', resultCode: 1, errorCode: 0 });
      }
    };
    conns.push(c);
    void c.ready.then((ok) => ok && c.start());
  }
  const t0 = Date.now();
  let held = false;
  while (Date.now() - t0 < limitMs && conns.some((c) => !c.closed)) {
    if (!held && conns.every((c) => c.closed || c.find('start-control-connection-reply'))) {
      held = true;
      process.stdout.write(`HELD ${conns.filter((c) => !c.closed).length}\n`);
    }
    await sleep(50);
  }
  const reply = (c: Ctl) => c.find('start-control-connection-reply');
  const accepted = conns.filter((c) => reply(c)?.resultCode === 1);
  const refused = conns.filter((c) => reply(c)?.resultCode === 2 && reply(c)?.errorCode === 4);
  result({
    n,
    accepted: accepted.length,
    refused: refused.length,
    noReply: conns.filter((c) => !reply(c)).length,
    acceptedStopMs: accepted.map((c) => stopAt.get(c) ?? null),
    acceptedClosedMs: accepted.map((c) => c.closedAt ?? null),
    refusedClosedMaxMs: Math.max(0, ...refused.map((c) => c.closedAt ?? limitMs)),
    stillOpen: conns.filter((c) => !c.closed).length,
  });
  for (const c of conns) c.sock.destroy();
}

/** Row 3: silent TCP connections (nothing sent), each re-opened as soon as the server drops it. */
async function silentTcp(): Promise<void> {
  const total = num('total', 2000);
  const concurrent = num('concurrent', 200);
  const limitMs = num('seconds', 20) * 1000;
  const locals = (args.locals as string[] | undefined) ?? [undefined];
  let opened = 0;
  let closedByServer = 0;
  let errors = 0;
  let open = 0;
  let maxOpen = 0;
  const live = new Set<Socket>();
  const t0 = Date.now();
  let finishing = false;
  const one = (): void => {
    if (finishing || opened >= total || Date.now() - t0 > limitMs) return;
    const local = locals[opened % locals.length];
    opened++;
    open++;
    maxOpen = Math.max(maxOpen, open);
    const s = tcpConnect({ host: str('server'), port: 1723, ...(local ? { localAddress: local } : {}) });
    live.add(s);
    s.on('error', () => {
      errors++;
    });
    s.on('data', () => {});
    s.on('close', () => {
      live.delete(s);
      open--;
      if (!finishing) {
        closedByServer++;
        one();
      }
    });
  };
  for (let i = 0; i < concurrent; i++) one();
  while (Date.now() - t0 < limitMs && (opened < total || open > 0)) await sleep(50);
  finishing = true;
  const stillOpen = live.size;
  for (const s of live) s.destroy();
  result({ opened, closedByServer, errors, maxOpen, stillOpen, ms: Date.now() - t0 });
}

/** Row 7 helper (in the server's namespace): the call id and sequence of GRE from `from`. */
async function sniff(): Promise<void> {
  const from = ip4(str('from'));
  const gre = new RawGreSocket({ log: nullLogger });
  const found = await new Promise<{ callId: number; seq: number } | undefined>((resolve) => {
    const t = setTimeout(() => resolve(undefined), num('seconds', 5) * 1000);
    gre.onPacket((p, src) => {
      if (src !== from) return;
      const h = readGreHeader(p);
      if (typeof h === 'string' || h.seq === undefined) return;
      clearTimeout(t);
      resolve({ callId: h.callId, seq: h.seq });
    });
  });
  gre.close();
  result(found ?? { error: 'no GRE seen' });
}

/** Row 7: `count` forged GRE packets from the victim's address (bound locally), call id given. */
async function forge(): Promise<void> {
  const gre = new RawGreSocket({ localAddress: ip4(str('bind')), log: nullLogger });
  gre.onPacket(() => {});
  // A PPP frame the victim's link would take: address/control, protocol 0x00fd (MPPE), garbage.
  const payload = Uint8Array.from([0xff, 0x03, 0x00, 0xfd, 0x90, 0x05, 1, 2, 3, 4, 5, 6, 7, 8]);
  const count = num('count', 1);
  for (let i = 0; i < count; i++) {
    const seq = (num('seq', 0) + i) >>> 0;
    gre.send(
      encodeGrePacket({ callId: num('callId', 0), seq, ack: num('ack', 0) }, payload),
      ip4(str('server')),
    );
  }
  await sleep(100);
  gre.close();
  result({ sent: count });
}

/** Malformed GRE headers of every kind the decoder refuses, plus valid headers for unknown calls. */
function garbagePackets(): Uint8Array[] {
  const valid = (): Uint8Array =>
    encodeGrePacket(
      { callId: 0xfffe, seq: 1, ack: 0 },
      Uint8Array.from([0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4]),
    );
  const mutate = (f: (p: Uint8Array) => void): Uint8Array => {
    const p = valid();
    f(p);
    return p;
  };
  return [
    mutate((p) => (p[0]! |= 0x80)), // checksum
    mutate((p) => (p[0]! |= 0x40)), // routing
    mutate((p) => (p[0]! |= 0x08)), // strict source route
    mutate((p) => (p[0]! |= 0x03)), // recursion
    mutate((p) => (p[0]! &= ~0x20)), // key absent
    mutate((p) => (p[1]! &= ~0x07)), // version 0
    mutate((p) => {
      p[2] = 0x08;
      p[3] = 0x00;
    }), // protocol IPv4
    mutate((p) => (p[4] = 0xff)), // payload length beyond the packet
    Uint8Array.from([0x30, 0x81, 0x88]), // truncated
    new Uint8Array(0),
    valid(), // a call id nobody has
  ];
}

/** Row 9: malformed GRE at a high rate, in batches; bounded by count and time. */
async function garbage(): Promise<void> {
  const gre = new RawGreSocket({ log: nullLogger });
  gre.onPacket(() => {});
  const kinds = garbagePackets();
  const to = ip4(str('server'));
  const count = num('count', 100_000);
  const limitMs = num('seconds', 4) * 1000;
  const perMs = num('perMs', 30);
  const batch = 64;
  const packets = Array.from({ length: batch }, (_, i) => kinds[i % kinds.length]!);
  /** The last kind is well-formed (for an unknown call id); the others are malformed. */
  const validPerBatch = packets.filter((p) => p === kinds[kinds.length - 1]).length;
  let sent = 0;
  const t0 = Date.now();
  while (sent < count && Date.now() - t0 < limitMs) {
    // One sendto each: the batched send's API is changing with the native addon (zero-copy path).
    for (const p of packets) gre.send(p, to);
    sent += batch;
    // Pace to about perMs packets per millisecond.
    const ahead = sent / perMs - (Date.now() - t0);
    if (ahead > 1) await sleep(ahead);
    else if (sent % (batch * 16) === 0) await new Promise((r) => setImmediate(r));
  }
  const ms = Date.now() - t0;
  gre.close();
  result({
    sent,
    valid: (sent / batch) * validPerBatch,
    malformed: sent - (sent / batch) * validPerBatch,
    ms,
  });
}

/** Row 10 (and 11: host name and vendor): Outgoing-Call, WAN-Error-Notify and Incoming-Call floods. */
async function floods(): Promise<void> {
  const c = new Ctl(str('server'), args.local as string | undefined);
  if (!(await c.ready)) return result({ error: `connect failed: ${c.error}` });
  c.start(str('hostName', 'hostile'), str('vendor', 'test'));
  const t0 = Date.now();
  while (!c.find('start-control-connection-reply') && !c.closed && Date.now() - t0 < 3000) await sleep(20);
  const n = num('n', 2000);
  const parts: Uint8Array[] = [];
  for (let i = 0; i < n; i++) parts.push(encodeControlMessage(outgoingCall(100 + i)));
  for (let i = 0; i < n; i++)
    parts.push(
      encodeControlMessage({
        type: 'wan-error-notify',
        peerCallId: i & 0xffff,
        crcErrors: i,
        framingErrors: 1,
        hardwareOverruns: 2,
        bufferOverruns: 3,
        timeoutErrors: 4,
        alignmentErrors: 5,
      }),
    );
  for (let i = 0; i < n; i++)
    parts.push(
      encodeControlMessage({
        type: 'incoming-call-request',
        callId: 5000 + i,
        callSerial: i,
        bearerType: 1,
        physicalChannelId: 0,
        dialedNumber: '\x1b[2J123',
        dialingNumber: '456\r\n',
        subaddress: '',
      }),
    );
  c.sock.write(Buffer.concat(parts));
  const limit = Date.now() + num('seconds', 3) * 1000;
  while (!c.closed && Date.now() < limit) await sleep(50);
  const replies: Record<string, number> = {};
  for (const m of c.received) replies[m.type] = (replies[m.type] ?? 0) + 1;
  c.sock.destroy();
  result({ sentMessages: 3 * n, replies, closedByServer: c.closed });
}

/**
 * A real client (our PptpClient over a raw GRE socket, no TUN) logging in from `local`:
 * rows 5 (guesses), 6 (LCP renegotiation), 11 (user name and Terminate-Request text).
 */
async function login(): Promise<void> {
  const local = args.local as string | undefined;
  const gre = new RawGreSocket({ log: nullLogger, ...(local ? { localAddress: ip4(local) } : {}) });
  const log = process.env.POPTOP_TEST_DEBUG === '1' ? consoleLogger({ debug: true }) : nullLogger;
  let resolveUp: (ip: string) => void = () => {};
  const up = new Promise<string>((resolve) => {
    resolveUp = resolve;
  });
  const client = new PptpClient({
    server: ip4(str('server')),
    user: str('user'),
    password: str('password'),
    policy: defaultPolicy('client'),
    clock: new SystemClock(),
    log,
    gre,
    connectTcp: (host, port) =>
      tcpConnect({ host, port, noDelay: true, ...(local ? { localAddress: local } : {}) }),
    onUp: (i) => resolveUp(fmt(i.localAddress)),
  });
  client.start();
  const t0 = Date.now();
  const first = await Promise.race([up.then((ip) => ({ ip })), client.done.then((reason) => ({ reason }))]);
  if ('reason' in first) {
    gre.close();
    return result({ up: false, reason: first.reason, ms: Date.now() - t0 });
  }
  process.stdout.write(`UP ${first.ip}\n`);
  const renegotiations = num('renegotiate', 0);
  for (let i = 0; i < renegotiations; i++) {
    const lcp = (client as unknown as { tunnel: { link: { lcp: { renegotiate(): boolean } } } }).tunnel.link
      .lcp;
    lcp.renegotiate();
    await sleep(num('renegotiateGapMs', 1500));
  }
  if (renegotiations > 0) process.stdout.write(`RENEGOTIATED ${renegotiations}\n`);
  const terminate = args.rawTerminate as string | undefined;
  if (terminate !== undefined) {
    // An LCP Terminate-Request carrying `terminate`, straight onto the call's GRE channel: the
    // server ends the link with the peer's text as the reason (our own close would follow it
    // with a Call-Clear-Request that becomes the reason instead).
    const text = Buffer.from(terminate, 'latin1');
    const frame = new Uint8Array(8 + text.length);
    frame.set([0xff, 0x03, 0xc0, 0x21, 5, 0x42, (4 + text.length) >> 8, (4 + text.length) & 0xff]);
    frame.set(text, 8);
    const channel = (client as unknown as { tunnel?: { channel?: { send(f: Uint8Array): void } } }).tunnel
      ?.channel;
    if (!channel) return result({ error: 'cannot reach the GRE channel (client internals changed)' });
    channel.send(frame);
    const reason = await Promise.race([client.done, sleep(8000).then(() => 'still up')]);
    gre.close();
    return result({ up: true, ip: first.ip, afterTerminate: reason, ms: Date.now() - t0 });
  }
  await sleep(num('holdMs', 0));
  const reason = str('closeReason', 'closed by the user');
  await Promise.race([client.close(reason), sleep(5000)]);
  gre.close();
  result({ up: true, ip: first.ip, ms: Date.now() - t0 });
}

const fmt = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

/**
 * Row 8: a logged-in user whose MPPE coherency count jumps by `skip` (2047) per packet, at `pps`
 * packets per second; when the server ends the session it logs in again, until `seconds` pass.
 */
async function mppeSkip(): Promise<void> {
  const local = args.local as string | undefined;
  const gre = new RawGreSocket({ log: nullLogger, ...(local ? { localAddress: ip4(local) } : {}) });
  const demux = new GreDemux(new DropCounter(nullLogger, 'GRE packet'), new SystemClock());
  gre.onPacket((p, from) => demux.receive(p, from));
  const callIds = new CallIdAllocator();
  const limitMs = num('seconds', 5) * 1000;
  const pps = num('pps', 2000);
  const skip = num('skip', 2047);
  const t0 = Date.now();
  let sessions = 0;
  let packets = 0;
  const reasons: Record<string, number> = {};
  while (Date.now() - t0 < limitMs) {
    let upResolve: () => void = () => {};
    const up = new Promise<void>((r) => {
      upResolve = r;
    });
    const client = new PptpClient({
      server: ip4(str('server')),
      user: str('user'),
      password: str('password'),
      policy: defaultPolicy('client'),
      clock: new SystemClock(),
      log: nullLogger,
      gre,
      demux,
      callIds,
      connectTcp: (host, port) =>
        tcpConnect({ host, port, noDelay: true, ...(local ? { localAddress: local } : {}) }),
      onUp: () => upResolve(),
    });
    client.start();
    let down = false;
    void client.done.then((r) => {
      down = true;
      reasons[r] = (reasons[r] ?? 0) + 1;
    });
    await Promise.race([up, client.done, sleep(10_000)]);
    if (down) {
      await sleep(200);
      continue;
    }
    sessions++;
    // The encryptor inside the client: tunnel → link → network phase → MPPE framing → encryptor.
    const enc = (
      client as unknown as {
        tunnel?: { link?: { network?: { crypto?: { encryptor?: { ccount?: number } } } } };
      }
    ).tunnel?.link?.network?.crypto?.encryptor;
    if (typeof enc?.ccount !== 'number') {
      result({ error: 'cannot reach the MPPE encryptor (client internals changed)' });
      process.exit(2);
    }
    const body = new Uint8Array(92);
    body[0] = 0x45;
    body[9] = 17;
    while (!down && Date.now() - t0 < limitMs) {
      for (let i = 0; i < pps / 100 && !down; i++) {
        enc.ccount = ((enc.ccount ?? 0) + skip - 1) & 0xfff; // encrypt() adds the last 1
        client.sendIp(body);
        packets++;
      }
      await sleep(10);
    }
    if (!down) await Promise.race([client.close('attack over'), sleep(3000)]);
  }
  gre.close();
  result({ sessions, packets, reasons, ms: Date.now() - t0 });
}

/**
 * Control connections that complete Start-Control-Connection and then never read again, nor
 * close: `rounds` rounds of `n` from one address, `gapMs` apart (the server's call deadline
 * passes in between). With `writeEveryMs`, each also sends an Echo-Request that often.
 */
async function zombie(): Promise<void> {
  const conns: Ctl[] = [];
  const limitMs = num('seconds', 30) * 1000;
  const t0 = Date.now();
  for (let round = 0; round < num('rounds', 2); round++) {
    if (round > 0) await sleep(num('gapMs', 9000));
    for (let i = 0; i < num('n', 4); i++) {
      const c = new Ctl(str('server'), args.local as string | undefined);
      conns.push(c);
      if (await c.ready) {
        c.start();
        await sleep(100);
        c.sock.pause();
      }
    }
    const accepted = conns.filter((c) => c.find('start-control-connection-reply')?.resultCode === 1).length;
    process.stdout.write(`ROUND ${round + 1} ${conns.length} ${accepted}\n`);
  }
  const every = num('writeEveryMs', 0);
  while (Date.now() - t0 < limitMs && !process.stdin.readableEnded) {
    if (every > 0)
      for (const c of conns)
        if (!c.sock.destroyed) c.sock.write(encodeControlMessage({ type: 'echo-request', identifier: 7 }));
    await sleep(every > 0 ? every : 100);
    if (stdinSaid('stop')) break;
  }
  result({
    opened: conns.length,
    accepted: conns.filter((c) => c.find('start-control-connection-reply')?.resultCode === 1).length,
    errors: conns.filter((c) => c.error !== undefined).length,
  });
  for (const c of conns) c.sock.destroy();
}

let stdinText = '';
process.stdin.on('data', (d: Buffer) => {
  stdinText += d.toString();
});
process.stdin.on('error', () => {});
const stdinSaid = (word: string): boolean => stdinText.includes(word);

const modes: Record<string, () => Promise<void>> = {
  'echo-flood': echoFlood,
  hold: holdStart,
  silent: silentTcp,
  sniff,
  forge,
  garbage,
  floods,
  login,
  'mppe-skip': mppeSkip,
  zombie,
};

const run = modes[mode];
if (!run) {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
// Whatever happens, the process ends: a hard limit above every mode's own.
setTimeout(() => {
  result({ error: 'hard time limit' });
  process.exit(3);
}, 60_000).unref();
run().then(
  () => process.exit(0),
  (e: unknown) => {
    result({ error: String((e as Error)?.stack ?? e) });
    process.exit(1);
  },
);
