import { escapeControls } from './escape.ts';

/**
 * Logging: one line per event, in words, each prefixed with the context it concerns
 * (e.g. "[s12 alice 203.0.113.5 10.0.0.2]"). Protocol objects receive a Logger; they never
 * print themselves.
 *
 * Every line is passed through escapeControls() before it reaches the sink: a line feed, NUL,
 * escape sequence or other control character in a message (network-supplied text that a caller
 * did not quote) is written as a visible backslash escape, so no message can split into two lines,
 * forge a line, or reach a terminal raw. A message that really has several lines should be logged
 * as several calls. Use quote() from escape.ts to delimit network strings inside a message.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  readonly debugEnabled: boolean;
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** A logger whose lines start with `prefix` (nested prefixes accumulate). */
  child(prefix: string): Logger;
}

export type LogSink = (level: LogLevel, line: string) => void;

export class BasicLogger implements Logger {
  readonly debugEnabled: boolean;
  private readonly sink: LogSink;
  private readonly prefix: string;

  constructor(sink: LogSink, opts: { debug?: boolean; prefix?: string } = {}) {
    this.sink = sink;
    this.debugEnabled = opts.debug ?? false;
    this.prefix = opts.prefix ?? '';
  }

  private emit(level: LogLevel, msg: string): void {
    this.sink(level, escapeControls(this.prefix ? `${this.prefix} ${msg}` : msg));
  }
  debug(msg: string): void {
    if (this.debugEnabled) this.emit('debug', msg);
  }
  info(msg: string): void {
    this.emit('info', msg);
  }
  warn(msg: string): void {
    this.emit('warn', msg);
  }
  error(msg: string): void {
    this.emit('error', msg);
  }
  child(prefix: string): Logger {
    return new BasicLogger(this.sink, {
      debug: this.debugEnabled,
      prefix: this.prefix ? `${this.prefix} ${prefix}` : prefix,
    });
  }
}

/**
 * Writes "2026-11-21T06:20:00.123Z info  message" lines to stderr, stamped when logged and written
 * together at most LOG_BATCH_MS after the first of them (or at 64 KiB), so a burst of set-ups costs
 * one write system call per batch rather than one per line: writes to a pipe or journald's socket
 * are synchronous and each wakes the reader. What is pending is written before the process exits.
 */
export function consoleLogger(opts: { debug?: boolean; shared?: boolean } = {}): Logger {
  const write = (text: string | Uint8Array) => process.stderr.write(text);
  return new BasicLogger(
    opts.shared ? batchedSink(write, { atomicWrites: true }) : batchedSink(write),
    opts.debug === undefined ? {} : { debug: opts.debug },
  );
}

/**
 * The most bytes one write may carry and still reach a pipe in one piece (PIPE_BUF): a worker
 * shares its stderr with the primary and the other workers, so its lines must not interleave.
 */
export const ATOMIC_WRITE = 4096;

const BATCH_LIMIT = 64 * 1024;
/** How long a logged line may wait for others to share its write. */
export const LOG_BATCH_MS = 20;
let exitFlushes: (() => void)[] | undefined;

/**
 * A sink that stamps each line and hands `write` the lines of LOG_BATCH_MS at once. With
 * `atomicWrites` (a destination other processes write to as well) each write is whole lines of at
 * most ATOMIC_WRITE bytes, which the kernel never interleaves with another writer's.
 */
export function batchedSink(
  write: (text: string | Uint8Array) => void,
  opts: { atomicWrites?: boolean } = {},
): LogSink {
  let pending = '';
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending === '') return;
    const text = pending;
    pending = '';
    if (opts.atomicWrites) writeWholeLines(text, write);
    else write(text);
  };
  if (!exitFlushes) {
    const list: (() => void)[] = [];
    exitFlushes = list;
    process.on('exit', () => {
      for (const f of list) f();
    });
  }
  exitFlushes.push(flush);
  return (level, line) => {
    pending += `${new Date().toISOString()} ${level.padEnd(5)} ${line}\n`;
    if (pending.length >= BATCH_LIMIT) flush();
    else if (!scheduled) {
      scheduled = true;
      setTimeout(flush, LOG_BATCH_MS).unref();
    }
  };
}

/** `text` in writes of whole lines, each at most ATOMIC_WRITE bytes (a longer line alone). */
function writeWholeLines(text: string, write: (bytes: Uint8Array) => void): void {
  const bytes = Buffer.from(text);
  let start = 0;
  while (start < bytes.length) {
    let end = bytes.length;
    if (end - start > ATOMIC_WRITE) {
      const cut = bytes.lastIndexOf(0x0a, start + ATOMIC_WRITE - 1);
      end = cut >= start ? cut + 1 : bytes.indexOf(0x0a, start) + 1 || bytes.length;
    }
    write(bytes.subarray(start, end));
    start = end;
  }
}

/** Collects lines in memory (tests). */
export class MemoryLogger extends BasicLogger {
  readonly lines: { level: LogLevel; line: string }[];
  constructor(opts: { debug?: boolean; prefix?: string; lines?: { level: LogLevel; line: string }[] } = {}) {
    const lines = opts.lines ?? [];
    super((level, line) => lines.push({ level, line }), opts);
    this.lines = lines;
  }
  override child(prefix: string): MemoryLogger {
    return new MemoryLogger({
      debug: this.debugEnabled,
      prefix: this.prefixText ? `${this.prefixText} ${prefix}` : prefix,
      lines: this.lines,
    });
  }
  private get prefixText(): string {
    return (this as unknown as { prefix: string }).prefix;
  }
  has(re: RegExp | string): boolean {
    return this.lines.some((l) => (typeof re === 'string' ? l.line.includes(re) : re.test(l.line)));
  }
  text(): string {
    return this.lines.map((l) => `${l.level} ${l.line}`).join('\n');
  }
}

/**
 * `log` with only its warnings and errors: for the many sessions of a load generator, whose
 * outcomes are counted and reported, so that 60,000 set-ups do not print 200,000 lines.
 */
export function warningsOnly(log: Logger): Logger {
  return {
    debugEnabled: false,
    debug: () => {},
    info: () => {},
    warn: (msg) => log.warn(msg),
    error: (msg) => log.error(msg),
    child: (prefix) => warningsOnly(log.child(prefix)),
  };
}

export const nullLogger: Logger = new BasicLogger(() => {});
