import assert from 'node:assert/strict';
import { test } from 'node:test';
import { textAttr } from '../../../src/aaa/radius/codec.ts';
import { Attr, MikrotikAttr, VENDOR_MIKROTIK } from '../../../src/aaa/radius/dictionary.ts';
import {
  parseFilterIdRate,
  parseMikrotikRateLimit,
  readRateLimit,
} from '../../../src/aaa/radius/rate-limit-attrs.ts';

test('Mikrotik-Rate-Limit: rx is the client upload, tx its download; units k, M, G; bare numbers bit/s', () => {
  const rows: [string, { downBps: number; upBps: number }][] = [
    ['10M/5M', { upBps: 10_000_000, downBps: 5_000_000 }],
    ['512k', { upBps: 512_000, downBps: 512_000 }],
    ['64000/128000', { upBps: 64_000, downBps: 128_000 }],
    ['1G/2.5M', { upBps: 1_000_000_000, downBps: 2_500_000 }],
    ['0/0', { upBps: 0, downBps: 0 }],
    ['2M/1M 4M/2M 1M/500k 8/8 5 256k/128k', { upBps: 2_000_000, downBps: 1_000_000 }],
    ['  1M/2M  ', { upBps: 1_000_000, downBps: 2_000_000 }],
  ];
  for (const [text, expected] of rows) assert.deepEqual(parseMikrotikRateLimit(text), expected, text);
});

test('malformed Mikrotik-Rate-Limit values are refused in words, quoted and escaped', () => {
  for (const text of [
    '',
    'fast',
    '10M/5M/1M',
    '10X',
    '-1M',
    '10M/',
    '1M 2M 3M 4M 5M 6M 7M',
    '1M 2M;rm',
    '200G',
    '1M\n2M',
  ]) {
    const r = parseMikrotikRateLimit(text);
    assert.equal(typeof r, 'string', JSON.stringify(text));
    assert.ok((r as string).startsWith('Mikrotik-Rate-Limit "'), r as string);
    assert.doesNotMatch(r as string, /[\n\u001b]/);
  }
  assert.equal(
    parseMikrotikRateLimit('x\u001b'),
    'Mikrotik-Rate-Limit "x\\x1b" is not "rx[/tx] ..." with rates in bit/s (k, M or G allowed), e.g. "10M/5M"',
  );
});

test("Filter-Id in accel-ppp's form: down[/up] in kbit/s; anything else is a filter name", () => {
  assert.deepEqual(parseFilterIdRate('1000/512'), { downBps: 1_000_000, upBps: 512_000 });
  assert.deepEqual(parseFilterIdRate('2048'), { downBps: 2_048_000, upBps: 2_048_000 });
  assert.deepEqual(parseFilterIdRate('1000,100/512,50'), { downBps: 1_000_000, upBps: 512_000 });
  assert.deepEqual(parseFilterIdRate('1000:512'), { downBps: 1_000_000, upBps: 512_000 });
  for (const name of ['web-only', '10M/5M', '1000/', '', '1/2/3'])
    assert.equal(parseFilterIdRate(name), undefined, name);
});

test('readRateLimit: Mikrotik-Rate-Limit wins over Filter-Id; filter names are reported, not applied', () => {
  const mt = (t: string) => textAttr(MikrotikAttr.RateLimit, t, VENDOR_MIKROTIK);
  const fid = (t: string) => textAttr(Attr.FilterId, t);
  assert.deepEqual(readRateLimit([fid('100/50'), mt('8M/4M')]), {
    notRates: [],
    limit: { upBps: 8_000_000, downBps: 4_000_000 },
    source: 'Mikrotik-Rate-Limit "8M/4M"',
  });
  assert.deepEqual(readRateLimit([fid('web'), fid('100/50')]), {
    notRates: ['"web"'],
    limit: { downBps: 100_000, upBps: 50_000 },
    source: 'Filter-Id "100/50"',
  });
  const bad = readRateLimit([mt('lots'), fid('100/50')]);
  assert.equal(bad.limit, undefined, 'a malformed Mikrotik-Rate-Limit is not replaced by the Filter-Id');
  assert.match(bad.problem ?? '', /^Mikrotik-Rate-Limit "lots" is not/);
  assert.deepEqual(readRateLimit([textAttr(Attr.ReplyMessage, 'hi')]), { notRates: [] });
});
