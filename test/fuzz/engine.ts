/**
 * The fuzz engine: fast-check drives the generation (so every run is reproducible from its seed, and
 * a failure is shrunk to a small input), mixing three sources of inputs for a target:
 *   - its seed corpus (test/fuzz/corpus/<target>/, from real captures and fixtures) mutated by
 *     byte-level operations (bit flips, interesting values, inserts, deletes, duplication, splicing
 *     with another seed, dictionary tokens), several per input;
 *   - its structure-aware generator, when it has one (also mutated);
 *   - plain random bytes.
 * No coverage feedback: see the README's Tests section for why (Jazzer.js cannot run here).
 * A failing input is written to test/fuzz/regressions/<target>/ (named by its SHA-1), which the test
 * suite replays on every run.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import type { FuzzTarget } from './targets.ts';

export const FUZZ_DIR = new URL('.', import.meta.url).pathname;
export const corpusDir = (target: string) => join(FUZZ_DIR, 'corpus', target);
export const regressionDir = (target: string) => join(FUZZ_DIR, 'regressions', target);

export interface NamedInput {
  name: string;
  input: Uint8Array;
}

/** The files of a directory as inputs (none when it does not exist), in name order. */
export function readInputs(dir: string): NamedInput[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => !f.startsWith('.') && !f.endsWith('.md'))
    .sort()
    .map((f) => ({ name: join(dir, f), input: new Uint8Array(readFileSync(join(dir, f))) }));
}

export function inputName(input: Uint8Array): string {
  return createHash('sha1').update(input).digest('hex').slice(0, 16);
}

/** Write a failing input for `target` and return its path. */
export function saveRegression(target: string, input: Uint8Array): string {
  const dir = regressionDir(target);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `crash-${inputName(input)}`);
  writeFileSync(path, input);
  return path;
}

// ---------------------------------------------------------------------------------------------
// Mutation

type Op =
  | { k: 'flip'; at: number; bit: number }
  | { k: 'byte'; at: number; v: number }
  | { k: 'word'; at: number; v: number; le: boolean }
  | { k: 'insert'; at: number; bytes: Uint8Array }
  | { k: 'delete'; at: number; n: number }
  | { k: 'truncate'; at: number }
  | { k: 'dup'; at: number; n: number; to: number }
  | { k: 'splice'; other: number; from: number; n: number; at: number }
  | { k: 'dict'; at: number; i: number; replace: boolean };

const INTERESTING_8 = [0, 1, 2, 3, 4, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING_16 = [0, 1, 4, 12, 16, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff];

function opArbitrary(dictionarySize: number): fc.Arbitrary<Op> {
  const at = fc.nat();
  const ops: fc.Arbitrary<Op>[] = [
    fc.record({ k: fc.constant('flip' as const), at, bit: fc.nat(7) }),
    fc.record({
      k: fc.constant('byte' as const),
      at,
      v: fc.oneof(fc.constantFrom(...INTERESTING_8), fc.nat(255)),
    }),
    fc.record({
      k: fc.constant('word' as const),
      at,
      v: fc.constantFrom(...INTERESTING_16),
      le: fc.boolean(),
    }),
    fc.record({
      k: fc.constant('insert' as const),
      at,
      bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
    }),
    fc.record({ k: fc.constant('delete' as const), at, n: fc.integer({ min: 1, max: 32 }) }),
    fc.record({ k: fc.constant('truncate' as const), at }),
    fc.record({ k: fc.constant('dup' as const), at, n: fc.integer({ min: 1, max: 64 }), to: fc.nat() }),
    fc.record({
      k: fc.constant('splice' as const),
      other: fc.nat(),
      from: fc.nat(),
      n: fc.integer({ min: 1, max: 256 }),
      at,
    }),
  ];
  if (dictionarySize > 0) {
    ops.push(
      fc.record({
        k: fc.constant('dict' as const),
        at,
        i: fc.nat(dictionarySize - 1),
        replace: fc.boolean(),
      }),
    );
  }
  return fc.oneof(...ops);
}

function splice(base: Uint8Array, at: number, remove: number, insert: Uint8Array): Uint8Array {
  const out = new Uint8Array(base.length - remove + insert.length);
  out.set(base.subarray(0, at));
  out.set(insert, at);
  out.set(base.subarray(at + remove), at + insert.length);
  return out;
}

export function applyOps(
  input: Uint8Array,
  ops: readonly Op[],
  pool: readonly Uint8Array[],
  dictionary: readonly Uint8Array[],
  maxLength: number,
): Uint8Array {
  let b: Uint8Array = input.slice();
  for (const op of ops) {
    const pos = (n: number) => (b.length === 0 ? 0 : n % b.length);
    switch (op.k) {
      case 'flip':
        if (b.length) b[pos(op.at)]! ^= 1 << op.bit;
        break;
      case 'byte':
        if (b.length) b[pos(op.at)] = op.v;
        break;
      case 'word':
        if (b.length >= 2) {
          const i = op.at % (b.length - 1);
          b[i] = op.le ? op.v & 0xff : op.v >>> 8;
          b[i + 1] = op.le ? op.v >>> 8 : op.v & 0xff;
        }
        break;
      case 'insert':
        b = splice(b, op.at % (b.length + 1), 0, op.bytes);
        break;
      case 'delete': {
        const i = pos(op.at);
        b = splice(b, i, Math.min(op.n, b.length - i), new Uint8Array(0));
        break;
      }
      case 'truncate':
        b = b.slice(0, op.at % (b.length + 1));
        break;
      case 'dup': {
        const i = pos(op.at);
        const piece = b.slice(i, i + op.n);
        b = splice(b, op.to % (b.length + 1), 0, piece);
        break;
      }
      case 'splice': {
        const other = pool[op.other % pool.length]!;
        if (other.length === 0) break;
        const from = op.from % other.length;
        b = splice(b, op.at % (b.length + 1), 0, other.subarray(from, from + op.n));
        break;
      }
      case 'dict': {
        const token = dictionary[op.i]!;
        const i = op.at % (b.length + 1);
        b = splice(b, i, op.replace ? Math.min(token.length, b.length - i) : 0, token);
        break;
      }
    }
  }
  return b.length > maxLength ? b.slice(0, maxLength) : b;
}

/** Every input the engine feeds `target`, given its seeds. */
export function inputArbitrary(target: FuzzTarget, seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const dictionary = (target.dictionary ?? []).map((s) => new Uint8Array(Buffer.from(s, 'utf8')));
  // Seeds can be longer than random inputs (whole sessions): allow them their size.
  const limit = Math.max(target.maxLength, ...seeds.map((s) => s.length + 64));
  const pool = seeds.length > 0 ? seeds : [new Uint8Array(0)];
  const ops = fc.array(opArbitrary(dictionary.length), { minLength: 1, maxLength: 8 });
  const random = fc.uint8Array({ maxLength: target.maxLength });
  const fromSeed = fc
    .tuple(fc.nat(pool.length - 1), ops)
    .map(([i, o]) => applyOps(pool[i]!, o, pool, dictionary, limit));
  const sources: { weight: number; arbitrary: fc.Arbitrary<Uint8Array> }[] = [
    { weight: 1, arbitrary: random },
    { weight: seeds.length > 0 ? 6 : 1, arbitrary: fromSeed },
  ];
  if (target.generate) {
    const generated = target.generate;
    sources.push({ weight: 2, arbitrary: generated });
    sources.push({
      weight: 2,
      arbitrary: fc.tuple(generated, ops).map(([g, o]) => applyOps(g, o, pool, dictionary, limit)),
    });
  }
  return fc.oneof(...sources);
}

// ---------------------------------------------------------------------------------------------
// Running

export interface FuzzOptions {
  seed: number;
  /** Stop after this many inputs ... */
  runs?: number;
  /** ... or after this many milliseconds, whichever comes first. */
  timeMs?: number;
  /** Write a failing (shrunk) input to the target's regression folder. @default true */
  save?: boolean;
}

export interface FuzzFailure {
  input: Uint8Array;
  error: unknown;
  savedAs: string | undefined;
}

export interface FuzzResult {
  target: string;
  runs: number;
  ms: number;
  failure: FuzzFailure | undefined;
}

/** The seed corpus of a target plus its regression inputs (the latter are seeds too). */
export function seedsOf(target: FuzzTarget): Uint8Array[] {
  return [...readInputs(corpusDir(target.name)), ...readInputs(regressionDir(target.name))].map(
    (x) => x.input,
  );
}

/** Run every file of the corpus and the regressions through the target; the failures. */
export function replay(target: FuzzTarget): { name: string; error: unknown }[] {
  const failures: { name: string; error: unknown }[] = [];
  for (const { name, input } of [
    ...readInputs(corpusDir(target.name)),
    ...readInputs(regressionDir(target.name)),
  ]) {
    try {
      target.run(input);
    } catch (error) {
      failures.push({ name, error });
    }
  }
  return failures;
}

export function fuzz(target: FuzzTarget, opts: FuzzOptions): FuzzResult {
  const started = performance.now();
  let runs = 0;
  const property = fc.property(inputArbitrary(target, seedsOf(target)), (input) => {
    runs++;
    target.run(input);
  });
  const details = fc.check(property, {
    seed: opts.seed,
    numRuns: opts.runs ?? Number.MAX_SAFE_INTEGER,
    ...(opts.timeMs !== undefined
      ? { interruptAfterTimeLimit: opts.timeMs, markInterruptAsFailure: false }
      : {}),
  });
  let failure: FuzzFailure | undefined;
  if (details.failed && details.counterexample) {
    const input = details.counterexample[0];
    // The error of the shrunk input (fast-check reports the last failure it saw).
    let error: unknown = details.errorInstance;
    try {
      target.run(input);
    } catch (e) {
      error = e;
    }
    failure = { input, error, savedAs: opts.save === false ? undefined : saveRegression(target.name, input) };
  }
  return { target: target.name, runs, ms: performance.now() - started, failure };
}

export function describeFailure(target: string, f: FuzzFailure): string {
  const err = f.error instanceof Error ? (f.error.stack ?? f.error.message) : String(f.error);
  const hex = Buffer.from(f.input).toString('hex');
  return [
    `fuzz target ${target} failed on ${f.input.length} octets${f.savedAs ? ` (saved as ${f.savedAs})` : ''}:`,
    `  input: ${hex.length > 400 ? `${hex.slice(0, 400)}...` : hex}`,
    `  ${err.split('\n').join('\n  ')}`,
  ].join('\n');
}
