import type { LeaseAnswer } from '../../aaa/leases.ts';
import type { Logger } from '../../util/log.ts';
import type { AddressAuthority, AuthorizeRequest, Session } from '../session.ts';
import type { ToPrimary } from './messages.ts';

/**
 * A worker's end of the channel to the primary, as its server's AddressAuthority: authorization
 * requests wait for the primary's answer; session up / closed are told. When the channel closes
 * (the primary is gone) every waiting request fails, refusing those sessions.
 */
export class PrimaryChannel implements AddressAuthority {
  private readonly post: (m: ToPrimary) => boolean;
  private readonly log: Logger;
  private readonly waiting = new Map<number, { resolve(a: LeaseAnswer): void; reject(e: Error): void }>();
  private nextId = 1;
  private closed = false;

  constructor(post: (m: ToPrimary) => boolean, log: Logger) {
    this.post = post;
    this.log = log;
  }

  authorize(session: Session, req: AuthorizeRequest): Promise<LeaseAnswer> {
    if (this.closed) return Promise.reject(new Error('the primary process is gone'));
    const rid = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(rid, { resolve, reject });
      if (!this.post({ t: 'authorize', rid, sid: session.id, ...req })) {
        this.waiting.delete(rid);
        reject(new Error('the primary process is gone'));
      }
    });
  }

  /** The primary's answer to an authorize request. */
  authorized(rid: number, answer: LeaseAnswer): void {
    const w = this.waiting.get(rid);
    if (!w) {
      this.log.warn(`an answer from the primary for no request (${rid}) ignored`);
      return;
    }
    this.waiting.delete(rid);
    w.resolve(answer);
  }

  sessionUp(session: Session): void {
    this.post({ t: 'up', sid: session.id });
  }

  sessionClosed(session: Session): void {
    this.post({ t: 'closed', sid: session.id });
  }

  /** The channel is closed: nothing more will be answered. */
  close(): void {
    this.closed = true;
    for (const w of this.waiting.values()) w.reject(new Error('the primary process is gone'));
    this.waiting.clear();
  }
}
