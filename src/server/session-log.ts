import type { Logger } from '../util/log.ts';

/**
 * A logger whose prefix is computed at each line: a session's lines start with
 * "[s12 alice 203.0.113.5 10.77.0.10]" as soon as the user and the address are known,
 * including the lines of the protocol objects created before they were known.
 */
export class PrefixLogger implements Logger {
  readonly debugEnabled: boolean;
  private readonly base: Logger;
  private readonly prefix: () => string;

  constructor(base: Logger, prefix: () => string) {
    this.base = base;
    this.debugEnabled = base.debugEnabled;
    this.prefix = prefix;
  }

  debug(msg: string): void {
    if (this.debugEnabled) this.base.debug(`${this.prefix()} ${msg}`);
  }
  info(msg: string): void {
    this.base.info(`${this.prefix()} ${msg}`);
  }
  warn(msg: string): void {
    this.base.warn(`${this.prefix()} ${msg}`);
  }
  error(msg: string): void {
    this.base.error(`${this.prefix()} ${msg}`);
  }
  child(prefix: string): Logger {
    return new PrefixLogger(this.base, () => `${this.prefix()} ${prefix}`);
  }
}
