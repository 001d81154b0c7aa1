import { quote } from '../../util/escape.ts';
import { MAX_BPS, parseRate, type RateLimit } from '../rate-limit.ts';
import { attrText, findAllAttrs, findAttr, type RadiusAttribute } from './codec.ts';
import { Attr, MikrotikAttr, VENDOR_MIKROTIK } from './dictionary.ts';

/**
 * Rate limits a RADIUS server sets, in an Access-Accept or a CoA-Request, in the two forms
 * deployments use:
 *
 * - Mikrotik-Rate-Limit (vendor 14988, type 8): `rx[/tx] [burst fields...]`, rates in bits per
 *   second with an optional k (1000), M (1000000) or G suffix; as MikroTik defines it, from the
 *   server's side: rx is what the server receives (the client's upload), tx what it sends (the
 *   client's download). "10M/5M" is 10 Mbit/s up, 5 Mbit/s down; a lone rate is both. The burst,
 *   threshold, time, priority and minimum fields after it are accepted and not used: poptop polices
 *   with one token bucket per direction.
 * - Filter-Id in accel-ppp's shaper form: `down[/up]` in kbit/s (also with `\` or `:` between,
 *   and `,burst` after a rate, not used). Any other Filter-Id is the name of a filter list, which
 *   poptop does not have.
 *
 * Mikrotik-Rate-Limit wins when both are present. 0 means unlimited in both.
 */
export interface RadiusRateLimit {
  /** What to apply; undefined when the attributes set none. */
  limit?: RateLimit;
  /** The attribute and value it came from, for log lines (quoted and escaped). */
  source?: string;
  /** A malformed value, in words (quoted and escaped): nothing is applied. */
  problem?: string;
  /** Filter-Id values that are not rates (filter names), quoted and escaped. */
  notRates: string[];
}

/** Mikrotik-Rate-Limit → limits, or the problem in words. */
export function parseMikrotikRateLimit(text: string): RateLimit | string {
  const bad = `Mikrotik-Rate-Limit ${quote(text, 80)} is not "rx[/tx] ..." with rates in bit/s (k, M or G allowed), e.g. "10M/5M"`;
  const fields = text.trim().split(/[ \t]+/);
  const [rates = '', ...rest] = fields;
  // At most the 6 fields MikroTik defines, each made of rates, times and slashes.
  if (fields.length > 6 || rest.some((f) => !/^[0-9.kKmMgGs/]{1,40}$/.test(f))) return bad;
  const [rxText = '', txText, extra] = rates.split('/');
  if (extra !== undefined) return bad;
  // MikroTik rates: a bare number is bit/s.
  const rx = parseRate(rxText, 1);
  const tx = txText === undefined ? rx : parseRate(txText, 1);
  if (rx === undefined || tx === undefined) return bad;
  return { upBps: rx, downBps: tx };
}

/** Filter-Id as accel-ppp's shaper reads it: "down[/up]" in kbit/s; undefined when it is not one. */
export function parseFilterIdRate(text: string): RateLimit | undefined {
  const m = /^(\d{1,9})(?:,\d{1,9})?(?:[/\\:](\d{1,9})(?:,\d{1,9})?)?$/.exec(text.trim());
  if (!m) return undefined;
  const down = Number(m[1]) * 1000;
  const up = m[2] === undefined ? down : Number(m[2]) * 1000;
  return down <= MAX_BPS && up <= MAX_BPS ? { downBps: down, upBps: up } : undefined;
}

/** The rate limit the attributes of an Access-Accept or a CoA-Request set. */
export function readRateLimit(attrs: readonly RadiusAttribute[]): RadiusRateLimit {
  const out: RadiusRateLimit = { notRates: [] };
  const mikrotik = findAttr(attrs, MikrotikAttr.RateLimit, VENDOR_MIKROTIK);
  if (mikrotik) {
    const text = attrText(mikrotik);
    const r = parseMikrotikRateLimit(text);
    if (typeof r === 'string') out.problem = r;
    else {
      out.limit = r;
      out.source = `Mikrotik-Rate-Limit ${quote(text, 80)}`;
    }
  }
  for (const a of findAllAttrs(attrs, Attr.FilterId)) {
    const text = attrText(a);
    const r = parseFilterIdRate(text);
    if (!r) out.notRates.push(quote(text, 80));
    else if (!mikrotik && !out.limit) {
      out.limit = r;
      out.source = `Filter-Id ${quote(text, 80)}`;
    }
  }
  return out;
}
