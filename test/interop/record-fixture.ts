/**
 * Extract the PPP negotiation (LCP, PAP, CHAP, CCP, IPCP, IPv6CP) of one PPTP session from a
 * tcpdump capture on the testbed bridge, and write it as a fixture for
 * test/ppp/real-client-replay.test.ts:
 *
 *   node --import tsx test/interop/record-fixture.ts CAPTURE.pcap [OUT.hex]
 *
 * (OUT defaults to test/fixtures/real-client/mschapv2-mppe128.hex). The interop suite
 * (real-client.root.test.ts) captures such a session; with POPTOP_RECORD_FIXTURES=1 it rewrites
 * the fixture itself. Encrypted data (protocol 0x00fd) is left out.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StaticCredentials } from '../../src/aaa/credentials.ts';
import { createAuthenticator } from '../../src/ppp/auth/index.ts';
import { decodeFrame } from '../../src/ppp/frame.ts';
import type { PppLinkOptions } from '../../src/ppp/link-types.ts';
import { decodeOptions } from '../../src/ppp/options.ts';
import { decodeControlPacket } from '../../src/ppp/packet.ts';

/** PPP control protocols kept in the fixture, with their names for the comments. */
export const CONTROL_PROTOCOLS: Record<number, string> = {
  49185: 'LCP',
  49187: 'PAP',
  49699: 'CHAP',
  33021: 'CCP',
  32801: 'IPCP',
  32855: 'IPv6CP',
};

export interface CapturedFrame {
  /** 'c>s': the client sent it; 's>c': the server did. */
  dir: 'c>s' | 's>c';
  /** The PPP frame as carried in GRE (address/control and protocol field as sent). */
  frame: Uint8Array;
  protocol: number;
}

/**
 * The PPP control frames of the GRE packets in a pcap file (link type Ethernet or raw IPv4),
 * in capture order. `client` is the PPTP client's IPv4 address (dotted), which gives the direction.
 */
export function extractPppFrames(pcap: Uint8Array, client: string): CapturedFrame[] {
  const v = new DataView(pcap.buffer, pcap.byteOffset, pcap.byteLength);
  if (pcap.length < 24) throw new Error('not a pcap file: too short');
  const magic = v.getUint32(0, true);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && v.getUint32(0, false) !== 0xa1b2c3d4 && v.getUint32(0, false) !== 0xa1b23c4d) {
    throw new Error('not a pcap file (pcapng is not supported: use tcpdump -w)');
  }
  const linktype = v.getUint32(20, le);
  const l2 = linktype === 1 ? 14 : linktype === 101 ? 0 : -1;
  if (l2 < 0) throw new Error(`pcap link type ${linktype} is not Ethernet (1) or raw IPv4 (101)`);
  const out: CapturedFrame[] = [];
  for (let at = 24; at + 16 <= pcap.length; ) {
    const caplen = v.getUint32(at + 8, le);
    const rec = pcap.subarray(at + 16, at + 16 + caplen);
    at += 16 + caplen;
    const f = greFrame(rec, l2, client);
    if (f && CONTROL_PROTOCOLS[f.protocol] !== undefined) out.push(f);
  }
  return out;
}

function greFrame(rec: Uint8Array, l2: number, client: string): CapturedFrame | undefined {
  if (l2 === 14 && (rec[12] !== 0x08 || rec[13] !== 0x00)) return undefined; // not IPv4
  const ip = rec.subarray(l2);
  if (ip.length < 20 || ip[0]! >> 4 !== 4 || ip[9] !== 47) return undefined;
  const src = `${ip[12]}.${ip[13]}.${ip[14]}.${ip[15]}`;
  const gre = ip.subarray((ip[0]! & 0x0f) * 4);
  if (gre.length < 8 || gre[2] !== 0x88 || gre[3] !== 0x0b) return undefined; // enhanced GRE, PPP
  const payloadLength = (gre[4]! << 8) | gre[5]!;
  let hdr = 8;
  if (gre[0]! & 0x10) hdr += 4; // sequence number present
  if (gre[1]! & 0x80) hdr += 4; // acknowledgment number present
  if (payloadLength === 0 || gre.length < hdr + payloadLength) return undefined;
  const frame = gre.slice(hdr, hdr + payloadLength);
  try {
    const { protocol } = decodeFrame(frame);
    return { dir: src === client ? 'c>s' : 's>c', frame, protocol };
  } catch {
    return undefined;
  }
}

const NCP_CODES = [
  '',
  'ConfReq',
  'ConfAck',
  'ConfNak',
  'ConfRej',
  'TermReq',
  'TermAck',
  'CodeRej',
  'ProtRej',
];
const LCP_CODES = [...NCP_CODES, 'EchoReq', 'EchoRep', 'DiscReq'];
const CCP_CODES = [...NCP_CODES, '', '', '', '', '', 'ResetReq', 'ResetAck'];
const AUTH_CODES = ['', 'Challenge', 'Response', 'Success', 'Failure'];

/** "LCP ConfReq id=1" for a control frame. */
export function describeControl(f: CapturedFrame): string {
  const info = decodeFrame(f.frame).info;
  const code = info[0] ?? 0;
  const table = f.protocol === 0xc021 ? LCP_CODES : f.protocol === 0x80fd ? CCP_CODES : NCP_CODES;
  const name = (f.protocol === 0xc223 || f.protocol === 0xc023 ? AUTH_CODES : table)[code] || `code ${code}`;
  return `${CONTROL_PROTOCOLS[f.protocol]} ${name} id=${info[1] ?? '?'}`;
}

/** The fixture text: a header comment, then `<dir> <hex>  # <protocol> <code> id=<id>` per frame. */
export function formatFixture(frames: CapturedFrame[], header: string[]): string {
  const lines = header.map((h) => `# ${h}`);
  for (const f of frames)
    lines.push(`${f.dir} ${Buffer.from(f.frame).toString('hex')}  # ${describeControl(f)}`);
  return `${lines.join('\n')}\n`;
}

/** Parse a fixture written by formatFixture. */
export function parseFixture(text: string): CapturedFrame[] {
  const out: CapturedFrame[] = [];
  for (const line of text.split('\n')) {
    const m = line.match(/^(c>s|s>c) ([0-9a-f]+)/);
    if (!m) continue;
    const frame = Uint8Array.from(Buffer.from(m[2]!, 'hex'));
    out.push({ dir: m[1] as 'c>s' | 's>c', frame, protocol: decodeFrame(frame).protocol });
  }
  return out;
}

/** The recorded server's random choices: its LCP Magic-Number, CHAP Identifier and challenge. */
interface RecordedRandom {
  magic: number;
  chapId: number;
  challenge: Uint8Array;
}

function recordedServerRandom(frames: readonly CapturedFrame[]): RecordedRandom {
  const sent = (what: string) => {
    const f = frames.find((x) => x.dir === 's>c' && describeControl(x).startsWith(what));
    if (!f) throw new Error(`the fixture has no s>c ${what}`);
    return decodeControlPacket(decodeFrame(f.frame).info, 'ppp');
  };
  const magic = decodeOptions(sent('LCP ConfReq').data, 'lcp').find((o) => o.type === 5)!.data;
  const challenge = sent('CHAP Challenge');
  return {
    magic: Buffer.from(magic).readUInt32BE(0),
    chapId: challenge.id,
    challenge: challenge.data.slice(1, 1 + challenge.data[0]!),
  };
}

/**
 * PppLink options that make our link choose what the recorded server chose (Magic-Number, CHAP
 * Identifier and challenge) and authenticate with the fixture's secret (alice, alice-pw), so
 * that the recorded client's frames authenticate.
 */
export function recordedServerOptions(
  frames: readonly CapturedFrame[],
): Required<Pick<PppLinkOptions, 'random' | 'authenticator'>> {
  const r = recordedServerRandom(frames);
  const credentials = new StaticCredentials([
    { user: 'alice', server: '*', secret: { kind: 'password', password: 'alice-pw' }, addresses: ['*'] },
  ]);
  return {
    random: () => r.magic,
    authenticator: (method, host) =>
      createAuthenticator(method, host, {
        credentials,
        serverName: 'poptop',
        stripDomain: true,
        random: (n) => (n === 1 ? Uint8Array.of(r.chapId) : r.challenge.slice(0, n)),
      }),
  };
}

export const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/real-client/', import.meta.url));
export const FIXTURE_HEADER = [
  'PPP negotiation of one real session: Debian 12 pptp-linux 1.10 + pppd 2.4.9 + Linux 6.1 ppp_mppe',
  '(the QEMU testbed client, Debian options.pptp + require-mppe-128) against poptop serve',
  '(name poptop, require-mschap-v2, require-mppe-128, localip 172.31.251.1, remoteip 172.31.251.100-101).',
  'chap-secrets: alice * "alice-pw" *. Client 172.31.250.2 (c>s), server 172.31.250.1 (s>c).',
  'Regenerate: node --import tsx test/interop/record-fixture.ts CAPTURE.pcap',
  'Each line: direction, the PPP frame as carried in GRE (hex), # protocol and code.',
];

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [pcapPath, outPath = join(FIXTURE_DIR, 'mschapv2-mppe128.hex')] = process.argv.slice(2);
  if (!pcapPath) {
    process.stderr.write('usage: record-fixture.ts CAPTURE.pcap [OUT.hex]\n');
    process.exit(2);
  }
  const frames = extractPppFrames(readFileSync(pcapPath), '172.31.250.2');
  writeFileSync(outPath, formatFixture(frames, FIXTURE_HEADER));
  process.stdout.write(`${frames.length} frames written to ${outPath}\n`);
}
