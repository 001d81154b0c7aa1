/**
 * MPPE data-path benchmark: `node --import tsx bench/mppe.ts [maxMs]`.
 *
 * Reports MPPE encrypt+decrypt rates for 1400-byte packets (128-bit, stateless and stateful,
 * 40-bit stateless), and the raw RC4 rate of src/crypto/rc4.ts next to OpenSSL's RC4 measured in
 * a child `node --openssl-legacy-provider` over the same buffer size, as a ratio in the same run.
 * Each case runs for at most MAX_ITERATIONS or `maxMs` (default 1000 ms), whichever comes first.
 */
import { spawnSync } from 'node:child_process';
import { Rc4 } from '../src/crypto/rc4.ts';
import { createMppe } from '../src/ppp/mppe/cipher.ts';
import type { MppeBits } from '../src/ppp/mppe/types.ts';
import { measurer } from './measure.ts';
import { pinToOneProcessor } from './pin.ts';

const PACKET = 1400;
const RC4_CHUNK = 64 * 1024;
const MAX_ITERATIONS = 2_000_000;
const maxMs = Number(process.argv[2] ?? 1000);

/** Runs `step` (after a warm-up) in its own loop until maxMs or MAX_ITERATIONS; returns steps per second. */
function measure(step: () => void): { rate: number; usPer: number } {
  for (let i = 0; i < 2000; i++) step();
  const { wallUs } = measurer(step, MAX_ITERATIONS)(maxMs);
  return { rate: 1e6 / wallUs, usPer: wallUs };
}

function report(name: string, rate: number, usPer: number): void {
  const gbit = (rate * PACKET * 8) / 1e9;
  console.log(
    `${name.padEnd(44)} ${Math.round(rate).toLocaleString('en').padStart(9)} pkt/s  ` +
      `${usPer.toFixed(2).padStart(6)} µs/pkt  ${gbit.toFixed(2)} Gbit/s`,
  );
}

/** Encrypt into a reused buffer (as the link does, with headroom), then decrypt it in place. */
function mppeCase(bits: MppeBits, stateless: boolean): void {
  const key = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
  const a = createMppe({ send: key, recv: key }, { bits, stateless });
  const b = createMppe({ send: key, recv: key }, { bits, stateless });
  const plain = new Uint8Array(PACKET);
  plain[1] = 0x21;
  const wire = new Uint8Array(PACKET + 2);
  const mode = stateless ? 'stateless' : 'stateful';
  const enc = measure(() => a.encryptor.encryptInto(plain, wire, 0));
  report(`MPPE-${bits} ${mode} encrypt ${PACKET} B`, enc.rate, enc.usPer);
  const c = createMppe({ send: key, recv: key }, { bits, stateless });
  let lost = 0;
  const both = measure(() => {
    c.encryptor.encryptInto(plain, wire, 0);
    if (b.decryptor.decrypt(wire) === null) lost++;
  });
  report(`MPPE-${bits} ${mode} encrypt+decrypt ${PACKET} B`, both.rate, both.usPer);
  if (lost > 0) console.log(`  ${lost} packets failed to decrypt!`);
}

function ourRc4MBps(): number {
  const rc4 = new Rc4(Uint8Array.from({ length: 16 }, (_, i) => i));
  const buf = new Uint8Array(RC4_CHUNK);
  const { rate } = measure(() => rc4.process(buf, buf));
  return (rate * RC4_CHUNK) / 1e6;
}

/** OpenSSL's RC4 through node:crypto in a child with the legacy provider; null if unavailable. */
function opensslRc4MBps(): number | null {
  const script = `
    const c = require('node:crypto').createCipheriv('rc4', Buffer.alloc(16, 1), null);
    const buf = Buffer.alloc(${RC4_CHUNK});
    for (let i = 0; i < 200; i++) c.update(buf);
    const start = performance.now(); let n = 0, ms = 0;
    while (n < ${MAX_ITERATIONS}) { for (let k = 0; k < 64; k++) c.update(buf); n += 64;
      ms = performance.now() - start; if (ms >= ${maxMs}) break; }
    console.log((n * ${RC4_CHUNK}) / (ms / 1000) / 1e6);`;
  const child = spawnSync(process.execPath, ['--openssl-legacy-provider', '-e', script], {
    encoding: 'utf8',
    timeout: maxMs * 5 + 5000,
  });
  const value = Number(child.stdout.trim());
  return child.status === 0 && Number.isFinite(value) ? value : null;
}

// OpenSSL's side runs in a child: both on one processor (bench/pin.ts).
const pinnedTo = pinToOneProcessor();
console.log(`processor ${pinnedTo}`);
mppeCase(128, true);
mppeCase(128, false);
mppeCase(40, true);
const ours = ourRc4MBps();
const openssl = opensslRc4MBps();
console.log(`RC4 (src/crypto/rc4.ts)          ${ours.toFixed(0).padStart(6)} MB/s`);
if (openssl === null) {
  console.log('RC4 (OpenSSL, legacy provider)   unavailable in this Node build');
} else {
  console.log(`RC4 (OpenSSL, legacy provider)   ${openssl.toFixed(0).padStart(6)} MB/s`);
  console.log(`ratio ours / OpenSSL             ${(ours / openssl).toFixed(2)}`);
}
