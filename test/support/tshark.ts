// Test support: decode pcap files with tshark (Wireshark's dissectors) as an independent check of
// our encodings. Tests call tsharkSkip() for their `skip` option: tshark missing is a skip on a
// developer machine, but a FAILURE in CI (env CI=true), where .ci/run installs it.
import { spawnSync } from 'node:child_process';

let available: boolean | undefined;

export function tsharkAvailable(): boolean {
  available ??= spawnSync('tshark', ['-v'], { stdio: 'ignore' }).status === 0;
  return available;
}

/** For node:test's `skip`: a reason when tshark is missing outside CI, else false (in CI the test
 *  runs and fails loudly when tshark is missing). */
export function tsharkSkip(): string | false {
  if (tsharkAvailable() || process.env.CI === 'true') return false;
  return 'tshark is not installed (apt-get install tshark)';
}

export interface TsharkOptions {
  /** `-d` decode-as rules, e.g. 'tcp.port==1724,pptp'. */
  decodeAs?: string[];
  /** `-Y` display filter. */
  filter?: string;
  /** `-o name:value` preferences, e.g. { 'ip.check_checksum': 'TRUE' }. */
  preferences?: Record<string, string>;
}

export interface TsharkFieldOptions extends TsharkOptions {
  /** Joins the values of a field that occurs more than once in a packet. @default ',' */
  aggregator?: string;
}

function run(args: string[]): string {
  if (!tsharkAvailable()) throw new Error('tshark is not installed: apt-get install tshark');
  const r = spawnSync('tshark', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`tshark ${args.join(' ')} failed (exit ${r.status}): ${r.stderr}`);
  return r.stdout;
}

function common(pcapPath: string, o: TsharkOptions): string[] {
  const args = ['-r', pcapPath, '-n', '-o', 'tcp.desegment_tcp_streams:TRUE'];
  for (const d of o.decodeAs ?? []) args.push('-d', d);
  for (const [k, v] of Object.entries(o.preferences ?? {})) args.push('-o', `${k}:${v}`);
  if (o.filter) args.push('-Y', o.filter);
  return args;
}

/** A layer of `tshark -T json`: field name → value (string), nested tree, or array when repeated. */
export type TsharkLayer = { [field: string]: string | TsharkLayer | (string | TsharkLayer)[] };

/** Every packet's protocol layers as tshark's JSON shows them (`-T json`). */
export function decodeWithTshark(pcapPath: string, o: TsharkOptions = {}): TsharkLayer[] {
  const json = JSON.parse(run([...common(pcapPath, o), '-T', 'json']) || '[]') as {
    _source: { layers: TsharkLayer };
  }[];
  return json.map((p) => p._source.layers);
}

/** One row per packet with the values of `fields` (`-T fields`; repeated values joined by the
 *  aggregator). */
export function tsharkFields(pcapPath: string, fields: string[], o: TsharkFieldOptions = {}): string[][] {
  const args = [...common(pcapPath, o), '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=a'];
  args.push('-E', `aggregator=${o.aggregator ?? ','}`);
  for (const f of fields) args.push('-e', f);
  return run(args)
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.split('\t'));
}

/** Expert-info messages of severity warning or error, and malformed-packet marks, per the dissectors. */
export function tsharkProblems(pcapPath: string, o: TsharkOptions = {}): string[] {
  const fields = ['frame.number', '_ws.expert.severity', '_ws.expert.message', '_ws.malformed'];
  const rows = tsharkFields(pcapPath, fields, { ...o, aggregator: '\u001e' });
  const problems: string[] = [];
  for (const [frame, severities = '', messages = '', malformed = ''] of rows) {
    const sev = severities.split('\u001e');
    const msg = messages.split('\u001e');
    sev.forEach((s, i) => {
      // Wireshark severities: chat 0x200000, note 0x400000, warn 0x600000, error 0x800000.
      if (Number(s) >= 0x600000) problems.push(`frame ${frame}: ${msg[i] ?? 'expert warning'}`);
    });
    if (malformed) problems.push(`frame ${frame}: malformed packet`);
  }
  return problems;
}
