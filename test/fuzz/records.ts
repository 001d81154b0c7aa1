/**
 * The byte format of fuzz inputs that are sequences of events (frames, TCP chunks, clock steps):
 * records of Tag (1 octet), Length (2 octets, big-endian), Data. A Length past the end takes what is
 * left, so every byte string is a valid input and byte-level mutation keeps most of the structure.
 */
export interface FuzzRecord {
  tag: number;
  data: Uint8Array;
}

export function splitRecords(input: Uint8Array, offset = 0): FuzzRecord[] {
  const out: FuzzRecord[] = [];
  let at = offset;
  while (at < input.length) {
    const tag = input[at]!;
    const length = ((input[at + 1] ?? 0) << 8) | (input[at + 2] ?? 0);
    const start = Math.min(at + 3, input.length);
    const end = Math.min(start + length, input.length);
    out.push({ tag, data: input.subarray(start, end) });
    at = end;
  }
  return out;
}

export function joinRecords(records: readonly FuzzRecord[], prefix: readonly number[] = []): Uint8Array {
  const size = prefix.length + records.reduce((n, r) => n + 3 + r.data.length, 0);
  const out = new Uint8Array(size);
  out.set(prefix);
  let at = prefix.length;
  for (const r of records) {
    if (r.data.length > 0xffff) throw new RangeError(`record of ${r.data.length} octets`);
    out[at] = r.tag;
    out[at + 1] = r.data.length >>> 8;
    out[at + 2] = r.data.length & 0xff;
    out.set(r.data, at + 3);
    at += 3 + r.data.length;
  }
  return out;
}
