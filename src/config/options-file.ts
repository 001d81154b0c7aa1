import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseRateLimit } from '../aaa/rate-limit.ts';
import { formatIPv4, type IPv4, parseIPv4 } from '../wire/ip.ts';
import { type ConfigIssue, didYouMean, IssueList, type SourceLocation } from './issues.ts';
import {
  FLAG_OPTIONS,
  IGNORED_OPTIONS,
  mppePolicy,
  NUMERIC_OPTIONS,
  type PppdOptions,
  STRING_OPTIONS,
  UNSUPPORTED_OPTIONS,
} from './pppd-options.ts';
import { splitPppdWords, type Word } from './words.ts';

export { mppePolicy, type PppdOptions } from './pppd-options.ts';

/** Deepest chain of `file`/`call` includes followed before giving up (pppd has no limit). */
export const MAX_INCLUDE_DEPTH = 10;

export interface PppdOptionsInit {
  /** Reads an included file (`file`, `call`); default: fs.readFileSync as UTF-8. */
  readFile?: (path: string) => string;
  /** Start from these options (the result of an earlier file: pppd reads several in order). */
  base?: PppdOptions;
}

/**
 * Parses a pppd options file (pppd(8) "OPTIONS FILES"): words as in words.ts; each option is a
 * word, followed by its argument word when it takes one, wherever that word is (pppd reads the
 * next word even from a later line; we warn when it does). Later options override earlier ones.
 * - An unknown option is an error naming the file and line, with a did-you-mean (pppd also
 *   refuses to start). So is an option missing its argument or with a malformed one.
 * - Serial-line and other options without meaning here are accepted with a note
 *   (IGNORED_OPTIONS); options we cannot honour safely are errors (UNSUPPORTED_OPTIONS).
 * - `file <path>` includes another options file; a relative path is taken from the including
 *   file's folder (pppd uses its working directory, "/" under pptpd). `call <name>` includes
 *   /etc/ppp/peers/<name>. Issues in included files name those files.
 * - `local:remote` (either side may be empty) sets the addresses, as on pppd's command line;
 *   a bare number (line speed) or /dev/ path (device) is accepted with a note.
 * Throws ConfigError listing every error; returns the notes and warnings.
 */
export function parsePppdOptions(
  text: string,
  fileName: string,
  init: PppdOptionsInit = {},
): { options: PppdOptions; notes: ConfigIssue[] } {
  const options: PppdOptions = structuredClone(init.base ?? {});
  const ctx: ParseContext = {
    options,
    issues: new IssueList(),
    readFile: init.readFile ?? ((path) => readFileSync(path, 'utf8')),
    stack: [],
    sources: new Map(),
  };
  parseInto(text, fileName, ctx);
  validate(ctx);
  return { options, notes: ctx.issues.finish() };
}

/** Parses several options files in order into one set (e.g. /etc/ppp/options, then pptpd's). */
export function loadPppdOptionFiles(
  paths: string[],
  init: PppdOptionsInit = {},
): { options: PppdOptions; notes: ConfigIssue[] } {
  const readFile = init.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  let options: PppdOptions = init.base ?? {};
  const notes: ConfigIssue[] = [];
  for (const path of paths) {
    const r = parsePppdOptions(readFile(path), path, { readFile, base: options });
    options = r.options;
    notes.push(...r.notes);
  }
  return { options, notes };
}

interface ParseContext {
  options: PppdOptions;
  issues: IssueList;
  readFile: (path: string) => string;
  /** Files being parsed, outermost first (loop detection). */
  stack: string[];
  /** Where selected options were set, for cross-option checks. */
  sources: Map<string, SourceLocation>;
}

const KNOWN = new Set([
  ...Object.keys(FLAG_OPTIONS),
  ...Object.keys(STRING_OPTIONS),
  ...Object.keys(NUMERIC_OPTIONS),
  ...Object.keys(IGNORED_OPTIONS),
  ...Object.keys(UNSUPPORTED_OPTIONS),
  'ms-dns',
  'ms-wins',
  'netmask',
  'ipv6',
  'debug',
  'mppe',
  'plugin',
  'file',
  'call',
  'radius-config-file',
  'rate-limit',
]);

/** Options that take an argument, besides the tables' ones. */
const SPECIAL_WITH_ARG = new Set([
  'ms-dns',
  'ms-wins',
  'netmask',
  'ipv6',
  'mppe',
  'plugin',
  'file',
  'call',
  'radius-config-file',
  'rate-limit',
]);

function takesArgument(name: string): boolean {
  if (name in STRING_OPTIONS || name in NUMERIC_OPTIONS || SPECIAL_WITH_ARG.has(name)) return true;
  if (name in IGNORED_OPTIONS) return IGNORED_OPTIONS[name]!;
  if (name in UNSUPPORTED_OPTIONS) return UNSUPPORTED_OPTIONS[name]!.arg;
  return false;
}

function parseInto(text: string, file: string, ctx: ParseContext): void {
  const { words, problems } = splitPppdWords(text);
  for (const p of problems) ctx.issues.warning({ file, line: p.line }, p.message);
  ctx.stack.push(file);
  let i = 0;
  while (i < words.length) {
    const word = words[i++]!;
    const at = { file, line: word.line };
    const name = word.text;
    if (!KNOWN.has(name)) {
      if (name.includes(':') && applyAddressPair(name, at, ctx)) continue;
      if (/^\d+$/.test(name) || name.startsWith('/dev/')) {
        ctx.issues.note(
          at,
          `"${name}" (a serial line ${name.startsWith('/') ? 'device' : 'speed'}) has no effect in poptop; ignored`,
        );
        continue;
      }
      ctx.issues.error(at, `unknown option "${name}"${didYouMean(name, KNOWN)}`);
      continue;
    }
    let arg: Word | undefined;
    if (takesArgument(name)) {
      arg = words[i++];
      if (arg === undefined) {
        ctx.issues.error(at, `option "${name}" needs an argument, but the file ends here`);
        break;
      }
      if (arg.line !== word.line) {
        ctx.issues.warning(at, `option "${name}" takes its argument "${arg.text}" from line ${arg.line}`);
      }
    }
    applyOption(name, arg?.text ?? '', at, ctx);
  }
  ctx.stack.pop();
}

function applyOption(name: string, arg: string, at: SourceLocation, ctx: ParseContext): void {
  const o = ctx.options;
  const flag = FLAG_OPTIONS[name];
  if (flag) {
    (o as Record<string, unknown>)[flag[0]] = flag[1];
    ctx.sources.set(flag[0], at);
    return;
  }
  const str = STRING_OPTIONS[name];
  if (str) {
    o[str] = arg;
    return;
  }
  const num = NUMERIC_OPTIONS[name as keyof typeof NUMERIC_OPTIONS];
  if (num) {
    const v = parseNumber(arg);
    if (v === undefined || v < num.min || v > num.max) {
      ctx.issues.error(at, `option "${name}" needs a number from ${num.min} to ${num.max}, got "${arg}"`);
    } else {
      o[num.field] = v;
    }
    return;
  }
  if (name in IGNORED_OPTIONS) {
    ctx.issues.note(at, `"${name}" has no effect in poptop; ignored`);
    return;
  }
  const unsupported = UNSUPPORTED_OPTIONS[name];
  if (unsupported) {
    ctx.issues.error(at, `option "${name}" is not supported: ${unsupported.why}`);
    return;
  }
  applySpecial(name, arg, at, ctx);
}

function applySpecial(name: string, arg: string, at: SourceLocation, ctx: ParseContext): void {
  const o = ctx.options;
  switch (name) {
    case 'ms-dns':
    case 'ms-wins': {
      const ip = needIp(name, arg, at, ctx);
      if (ip === undefined) return;
      const field = name === 'ms-dns' ? 'msDns' : 'msWins';
      const list = o[field] ?? [];
      if (list.length === 2) {
        ctx.issues.warning(
          at,
          `a third "${name}": pppd keeps two, the first and the last; ${formatIPv4(list[1]!)} is replaced`,
        );
        list[1] = ip;
      } else {
        list.push(ip);
      }
      o[field] = list;
      return;
    }
    case 'netmask': {
      const ip = needIp(name, arg, at, ctx);
      if (ip !== undefined) o.netmask = ip;
      return;
    }
    case 'debug':
      o.debug = (o.debug ?? 0) + 1;
      return;
    case 'ipv6':
      applyIpv6(arg, at, ctx);
      return;
    case 'mppe':
      applyOldMppe(arg, at, ctx);
      return;
    case 'plugin':
      applyPlugin(arg, at, ctx);
      return;
    case 'radius-config-file':
      // An option of radius.so: pppd knows it only once the plugin is loaded.
      if (!o.radiusPlugin) {
        ctx.issues.error(at, 'option "radius-config-file" needs "plugin radius.so" before it');
        return;
      }
      o.radiusConfigFile = isAbsolute(arg) ? arg : resolve(dirname(ctx.stack.at(-1)!), arg);
      return;
    case 'rate-limit': {
      const r = parseRateLimit(arg);
      if (typeof r === 'string') ctx.issues.error(at, r);
      else o.rateLimit = r;
      return;
    }
    case 'file':
      include(isAbsolute(arg) ? arg : resolve(dirname(ctx.stack.at(-1)!), arg), at, ctx);
      return;
    case 'call':
      if (arg === '' || arg.startsWith('/') || arg.split('/').includes('..')) {
        ctx.issues.error(
          at,
          `option "call" needs a peer name without "/" at the start or "..", got "${arg}"`,
        );
        return;
      }
      include(`/etc/ppp/peers/${arg}`, at, ctx);
      return;
    default:
      throw new Error(`options-file: no handler for "${name}"`);
  }
}

function needIp(name: string, arg: string, at: SourceLocation, ctx: ParseContext): IPv4 | undefined {
  const ip = parseIPv4(arg);
  if (ip === undefined) ctx.issues.error(at, `option "${name}" needs an IPv4 address, got "${arg}"`);
  return ip;
}

/** pppd numbers: decimal, 0x hex or 0 octal (strtoul base 0). */
function parseNumber(text: string): number | undefined {
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) return Number.parseInt(text.slice(2), 16);
  if (/^0[0-7]+$/.test(text)) return Number.parseInt(text, 8);
  if (/^\d+$/.test(text)) return Number(text);
  return undefined;
}

/** `10.0.0.1:10.0.0.2`, `10.0.0.1:` or `:10.0.0.2`; false when the word is not such a pair. */
function applyAddressPair(word: string, at: SourceLocation, ctx: ParseContext): boolean {
  const m = /^([^:]*):([^:]*)$/.exec(word);
  if (!m || (m[1] === '' && m[2] === '')) return false;
  const local = m[1] === '' ? undefined : parseIPv4(m[1]!);
  const remote = m[2] === '' ? undefined : parseIPv4(m[2]!);
  if ((m[1] !== '' && local === undefined) || (m[2] !== '' && remote === undefined)) {
    ctx.issues.error(
      at,
      `"${word}" is not an address pair like 10.0.0.1:10.0.0.2 (host names are not supported)`,
    );
    return true;
  }
  if (local !== undefined) ctx.options.localIp = local;
  if (remote !== undefined) ctx.options.remoteIp = remote;
  return true;
}

function applyIpv6(arg: string, at: SourceLocation, ctx: ParseContext): void {
  const m = /^([^,]*),?([^,]*)$/.exec(arg);
  const idOk = (s: string) => s === '' || /^::[0-9a-fA-F:]+$/.test(s) || /^[0-9a-fA-F:]+$/.test(s);
  if (!m || !idOk(m[1]!) || !idOk(m[2]!)) {
    ctx.issues.error(
      at,
      `option "ipv6" needs interface identifiers "<local>,<remote>" like ::1,::2, got "${arg}"`,
    );
    return;
  }
  if (m[1] !== '') ctx.options.ipv6LocalId = m[1]!;
  if (m[2] !== '') ctx.options.ipv6RemoteId = m[2]!;
  ctx.options.ipv6 = true;
}

/** The MPPE-MPPC patch's `mppe required,stateless,no40,no56,no128`. */
function applyOldMppe(arg: string, at: SourceLocation, ctx: ParseContext): void {
  const o = ctx.options;
  for (const item of arg.split(',')) {
    switch (item) {
      case 'required':
        o.requireMppe = true;
        ctx.sources.set('requireMppe', at);
        break;
      case 'stateless':
        o.mppeStateful = false;
        break;
      case 'stateful':
        o.mppeStateful = true;
        break;
      case 'no40':
        o.nomppe40 = true;
        break;
      case 'no128':
        o.nomppe128 = true;
        break;
      case 'no56':
        break;
      default:
        ctx.issues.error(
          at,
          `option "mppe" takes a comma-separated list of required, stateless, stateful, no40, no56, no128; "${item}" is not one`,
        );
    }
  }
}

function applyPlugin(arg: string, at: SourceLocation, ctx: ParseContext): void {
  const base = arg.split('/').at(-1) ?? arg;
  if (base === 'pptpd-logwtmp.so') {
    // What pptpd's `logwtmp` passes to pppd: sessions are recorded in wtmp (server/wtmp.ts).
    ctx.options.logwtmp = true;
  } else if (base === 'radius.so') {
    ctx.options.radiusPlugin = true;
    ctx.options.radiusPluginAt ??= at;
  } else if (base === 'radattr.so') {
    if (!ctx.options.radiusPlugin) {
      ctx.issues.error(at, 'plugin "radattr.so" needs "plugin radius.so" before it');
      return;
    }
    ctx.options.radattrPlugin = true;
  } else {
    ctx.issues.error(at, `plugin "${arg}" is not supported: poptop loads no pppd plugins`);
  }
}

function include(path: string, at: SourceLocation, ctx: ParseContext): void {
  if (ctx.stack.includes(path)) {
    ctx.issues.error(at, `"${path}" includes itself (${[...ctx.stack, path].join(' -> ')})`);
    return;
  }
  if (ctx.stack.length > MAX_INCLUDE_DEPTH) {
    ctx.issues.error(at, `options files are nested more than ${MAX_INCLUDE_DEPTH} deep at "${path}"`);
    return;
  }
  let text: string;
  try {
    text = ctx.readFile(path);
  } catch (e) {
    ctx.issues.error(at, `cannot read included options file "${path}": ${(e as Error).message}`);
    return;
  }
  parseInto(text, path, ctx);
}

/** Combinations pppd accepts but that cannot work. */
function validate(ctx: ParseContext): void {
  const o = ctx.options;
  const policy = mppePolicy(o);
  const required =
    ctx.sources.get('requireMppe128') ?? ctx.sources.get('requireMppe40') ?? ctx.sources.get('requireMppe');
  if (required && o.refuseMschap && o.refuseMschapV2) {
    ctx.issues.warning(
      required,
      'MPPE is required but MS-CHAP and MS-CHAPv2 are both refused: MPPE keys come from MS-CHAP, so no client can connect',
    );
  }
  if (required && (o.nomppe || o.noccp || (!policy.allow40 && !policy.allow128))) {
    ctx.issues.warning(
      required,
      'MPPE is required but the other options leave no MPPE strength allowed: no client can connect',
    );
  }
}
