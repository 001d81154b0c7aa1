/**
 * In-memory PPP test bench: two PppLinks joined by a wire that delivers each frame 1 ms later on
 * a ManualClock (no recursion, deterministic), with optional loss; a trivial fake authentication
 * exchange and an XOR "MPPE" so the link logic is tested without the real auth/MPPE modules.
 */

import type { AuthExchange, AuthHost, AuthMethod } from '../../src/ppp/auth/types.ts';
import { PacketCode, PppProtocol } from '../../src/ppp/constants.ts';
import { decodeFrame, encodeFrame } from '../../src/ppp/frame.ts';
import { PppLink, type PppLinkOptions } from '../../src/ppp/link.ts';
import type { MppeFactory, MppeKeySource } from '../../src/ppp/mppe/types.ts';
import type { NetworkInfo } from '../../src/ppp/ncps.ts';
import { type ConfigOption, decodeOptions, encodeOptions } from '../../src/ppp/options.ts';
import { decodeControlPacket, encodeControlPacket } from '../../src/ppp/packet.ts';
import { defaultPolicy, type PppPolicy } from '../../src/ppp/policy.ts';
import { ManualClock } from '../../src/util/clock.ts';
import { MemoryLogger } from '../../src/util/log.ts';

export const SERVER_IP = 0x0a000001; // 10.0.0.1
export const CLIENT_IP = 0x0a000064; // 10.0.0.100

/** Keys as an MS-CHAP exchange would give them: the server's send key is the client's recv key. */
function fakeKeys(role: 'server' | 'client'): MppeKeySource {
  return {
    startKeys: (bits) => {
      const a = new Uint8Array([0x11, bits]);
      const b = new Uint8Array([0x22, bits]);
      return role === 'server' ? { send: a, recv: b } : { send: b, recv: a };
    },
  };
}

/** XOR "encryption" with a 2-octet header; enough to prove frames go through the factory. */
export const fakeMppe: MppeFactory = (keys) => {
  const encryptInto = (plain: Uint8Array, out: Uint8Array, offset: number) => {
    for (let i = plain.length - 1; i >= 0; i--) out[offset + 2 + i] = plain[i]! ^ keys.send[0]!;
    out[offset] = 0x90;
    out[offset + 1] = 0;
    return plain.length + 2;
  };
  return {
    encryptor: {
      encrypt: (plain) => {
        const out = new Uint8Array(2 + plain.length);
        encryptInto(plain, out, 0);
        return out;
      },
      encryptInto,
      encryptInPlace: (buf, offset, length) =>
        encryptInto(buf.slice(offset + 2, offset + 2 + length), buf, offset),
      resetRequested: () => {
        resets.count++;
      },
    },
    decryptor: {
      decrypt: (packet) => (packet.length < 2 ? null : packet.subarray(2).map((x) => x ^ keys.recv[0]!)),
      decryptInPlace: (packet) => {
        if (packet.length < 2) return false;
        for (let i = 2; i < packet.length; i++) packet[i] = packet[i]! ^ keys.recv[0]!;
        return true;
      },
      takeResetRequest: () => false,
    },
  };
};
export const resets = { count: 0 };

/**
 * Fake exchange: the authenticator sends a "challenge" (code 1) every second until a "response"
 * (code 2) with the right password arrives, then answers every response with "success" (3). The
 * peer answers each challenge and repeats its response every second until success.
 */
export function fakeAuth(
  side: 'authenticator' | 'peer',
  opts: { password?: string; keys?: boolean } = {},
): (method: AuthMethod, host: AuthHost) => AuthExchange {
  return (method, host) => {
    const protocol = method === 'pap' ? PppProtocol.PAP : PppProtocol.CHAP;
    const password = opts.password ?? 'secret';
    const withKeys = opts.keys ?? method.startsWith('mschap');
    let timer: { cancel(): void } | undefined;
    let done = false;
    const every = (fn: () => void) => {
      fn();
      timer = host.clock.setTimer(1000, () => every(fn));
    };
    const pkt = (code: number, text = '') => encodeControlPacket(code, 7, new Uint8Array(Buffer.from(text)));
    const result = (role: 'server' | 'client') => ({
      method,
      user: 'alice',
      rawUser: 'alice',
      ...(withKeys ? { mppeKeys: fakeKeys(role) } : {}),
    });
    return {
      method,
      protocol,
      start: () => {
        if (side === 'authenticator') every(() => host.send(protocol, pkt(1)));
      },
      receive: (packet) => {
        const code = packet[0];
        if (side === 'authenticator' && code === 2) {
          timer?.cancel();
          const text = Buffer.from(packet.subarray(4)).toString();
          if (text !== 'secret') return host.failed({ method, user: 'alice', reason: 'wrong password' });
          host.send(protocol, pkt(3));
          if (!done) host.succeeded(result('server'));
          done = true;
        } else if (side === 'peer' && code === 1 && !done) {
          timer?.cancel();
          every(() => host.send(protocol, pkt(2, password)));
        } else if (side === 'peer' && code === 3 && !done) {
          timer?.cancel();
          done = true;
          host.succeeded(result('client'));
        }
      },
      stop: () => timer?.cancel(),
    };
  };
}

export interface Side {
  link: PppLink;
  log: MemoryLogger;
  up: NetworkInfo[];
  down: string[];
  ip: Uint8Array[];
  ipv6: Uint8Array[];
}

export interface Frame {
  from: 'server' | 'client';
  bytes: Uint8Array;
}

export interface BenchOptions {
  server?: (p: PppPolicy) => void;
  client?: (p: PppPolicy) => void;
  /** Return true to lose this frame (`n` counts every frame sent, from 1). */
  lose?: (n: number, f: Frame) => boolean;
  serverLink?: Partial<PppLinkOptions>;
  clientLink?: Partial<PppLinkOptions>;
}

/** Two links on one wire. Nothing happens until `open()` and `clock.advance()`. */
export function bench(opts: BenchOptions = {}) {
  const clock = new ManualClock();
  const frames: Frame[] = [];
  const lost: Frame[] = [];
  const sides = {} as Record<'server' | 'client', Side>;
  let n = 0;
  const make = (role: 'server' | 'client'): Side => {
    const policy = defaultPolicy(role);
    policy.lcpEchoInterval = 0;
    if (role === 'server') {
      policy.localAddress = SERVER_IP;
      policy.peerAddress = CLIENT_IP;
    }
    (role === 'server' ? opts.server : opts.client)?.(policy);
    const log = new MemoryLogger({ prefix: role });
    const extra = role === 'server' ? opts.serverLink : opts.clientLink;
    const side: Side = { log, up: [], down: [], ip: [], ipv6: [], link: undefined as unknown as PppLink };
    let seed = role === 'server' ? 0x1234567 : 0x7654321;
    side.link = new PppLink({
      role,
      clock,
      log,
      policy,
      random: () => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return seed;
      },
      sendFrame: (bytes) => {
        // A copy: the receiver may decrypt in place, and `frames` keeps what crossed the wire.
        const f: Frame = { from: role, bytes: bytes.slice() };
        n++;
        if (opts.lose?.(n, f)) return void lost.push(f);
        frames.push(f);
        const other = role === 'server' ? 'client' : 'server';
        clock.setTimer(1, () => sides[other].link.receiveFrame(bytes));
      },
      authenticator: fakeAuth('authenticator'),
      authPeer: fakeAuth('peer'),
      mppe: fakeMppe,
      ...extra,
      events: {
        onNetworkUp: (i) => side.up.push(i),
        onDown: (r) => side.down.push(r),
        onIp: (p) => side.ip.push(p),
        onIpv6: (p) => side.ipv6.push(p),
        ...extra?.events,
      },
    });
    return side;
  };
  sides.server = make('server');
  sides.client = make('client');
  return {
    clock,
    frames,
    lost,
    server: sides.server,
    client: sides.client,
    open() {
      sides.server.link.open();
      sides.client.link.open();
    },
  };
}

/** A decoded control packet as sent by a link (for raw-peer tests). */
export interface Sent {
  protocol: number;
  code: number;
  id: number;
  data: Uint8Array;
  options: ConfigOption[] | undefined;
}

export function parseSent(frame: Uint8Array): Sent {
  const f = decodeFrame(frame);
  const p = decodeControlPacket(f.info, 'ppp');
  let options: ConfigOption[] | undefined;
  if (p.code >= 1 && p.code <= 4) options = decodeOptions(p.data, 'ppp');
  return { protocol: f.protocol, code: p.code, id: p.id, data: p.data, options };
}

/** One control frame: ff 03, protocol, Code, Id, Length, options. */
export function controlFrame(protocol: number, code: number, id: number, opts: ConfigOption[] | Uint8Array) {
  const data = opts instanceof Uint8Array ? opts : encodeOptions(opts);
  return encodeFrame(protocol, encodeControlPacket(code, id, data));
}

/** A single link driven by hand: every frame it sends is collected in `out`. */
export function lone(
  role: 'server' | 'client',
  tweak?: (p: PppPolicy) => void,
  extra?: Partial<PppLinkOptions>,
) {
  const clock = new ManualClock();
  const out: Sent[] = [];
  const raw: Uint8Array[] = [];
  const policy = defaultPolicy(role);
  policy.lcpEchoInterval = 0;
  tweak?.(policy);
  const log = new MemoryLogger({ prefix: role });
  const down: string[] = [];
  let seed = 99;
  const link = new PppLink({
    role,
    clock,
    log,
    policy,
    random: () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed;
    },
    sendFrame: (f) => {
      raw.push(f);
      try {
        out.push(parseSent(f));
      } catch {
        out.push({ protocol: decodeFrame(f).protocol, code: -1, id: -1, data: f, options: undefined });
      }
    },
    authenticator: fakeAuth('authenticator'),
    authPeer: fakeAuth('peer'),
    mppe: fakeMppe,
    events: { onDown: (r) => down.push(r) },
    ...extra,
  });
  return { clock, out, raw, link, log, down, policy };
}

export const {
  ConfigureRequest,
  ConfigureAck,
  ConfigureNak,
  ConfigureReject,
  TerminateRequest,
  TerminateAck,
} = PacketCode;
