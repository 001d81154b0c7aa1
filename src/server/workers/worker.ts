import type { Socket } from 'node:net';
import type { RemoteRadiusSession } from '../../aaa/radius/service.ts';
import type { Logger } from '../../util/log.ts';
import type { ControlReply } from '../control-socket.ts';
import type { PptpServer } from '../server.ts';
import type { AddressAuthority, AuthorizeRequest, AuthorizeResult, Session } from '../session.ts';
import type { ToPrimary, ToWorker, WorkerRequest } from './messages.ts';

/**
 * A worker's end of the channel to the primary, as its server's AddressAuthority: authorization
 * requests wait for the primary's answer; session up / closed are told. When the channel closes
 * (the primary is gone) every waiting request fails, refusing those sessions.
 */
export class PrimaryChannel implements AddressAuthority {
  private readonly post: (m: ToPrimary) => boolean;
  private readonly log: Logger;
  private readonly waiting = new Map<number, { resolve(a: AuthorizeResult): void; reject(e: Error): void }>();
  private nextId = 1;
  private closed = false;

  constructor(post: (m: ToPrimary) => boolean, log: Logger) {
    this.post = post;
    this.log = log;
  }

  authorize(session: Session, req: AuthorizeRequest): Promise<AuthorizeResult> {
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
  authorized(rid: number, answer: AuthorizeResult): void {
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

  radiusUp(session: Session, radius: RemoteRadiusSession): void {
    this.post({ t: 'radius-up', sid: session.id, radius });
  }

  loginFailed(source: string, user: string): void {
    this.post({ t: 'login-failed', source, user });
  }

  /** The channel is closed: nothing more will be answered. */
  close(): void {
    this.closed = true;
    for (const w of this.waiting.values()) w.reject(new Error('the primary process is gone'));
    this.waiting.clear();
  }
}

/** What a worker's message handling works with (cli/serve-worker.ts; in-memory tests). */
export interface WorkerSide {
  readonly server: PptpServer;
  readonly channel: PrimaryChannel;
  post(m: ToPrimary): boolean;
  /** The answer to a request of the primary (sessions, status, kill, reload; metrics, page, end). */
  answer(req: WorkerRequest): ControlReply;
  /** Close every session and end the worker. */
  stop(graceMs: number): void;
  readonly stopping: boolean;
}

/**
 * One message of the primary: a control connection (the socket that came with it) becomes a
 * session here and is reported gone when it closes; an address decision reaches the session
 * waiting for it; a kill, a request or the order to stop is carried out.
 */
export function receiveFromPrimary(w: WorkerSide, m: ToWorker, socket: Socket | undefined): void {
  switch (m.t) {
    case 'connection': {
      if (!socket) return;
      socket.once('close', () => w.post({ t: 'gone', sid: m.sid }));
      if (w.stopping) socket.destroy();
      else w.server.acceptHandedOver(socket, m.sid);
      return;
    }
    case 'authorized':
      w.channel.authorized(m.rid, m.answer);
      return;
    case 'kill':
      w.server.killSession(m.sid, m.reason);
      return;
    case 'dynauth':
      w.server.dynauth(m.sid, m.change);
      return;
    case 'login-failed':
      w.server.loginThrottle.failedElsewhere(m.source, m.user);
      return;
    case 'request':
      w.post({ t: 'reply', rid: m.rid, reply: w.answer(m.req) });
      return;
    case 'admission':
      w.server.globalAdmission = m.refuse;
      return;
    case 'stop':
      w.stop(m.graceMs);
      return;
  }
}
