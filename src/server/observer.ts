import type { Session } from './session.ts';

/**
 * What the server tells an observer (metrics, the status page) about sessions as they happen.
 * Every method is called synchronously from the server; an observer only counts and remembers.
 */
export interface ServerObserver {
  /** A TCP connection was refused before it became a session (login lockout, per-source limits...). */
  connectionRefused?(peer: string, reason: string): void;
  /** A session's Outgoing-Call-Request was refused (pool empty, connection limit, shutting down...). */
  callRefused?(session: Session, reason: string): void;
  /** A session's network layer came up. */
  sessionUp?(session: Session): void;
  /** A session is gone; its closeReason says why. */
  sessionClosed?(session: Session): void;
}
