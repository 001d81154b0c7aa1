import type { CoaChanges } from '../../aaa/radius/dynauth.ts';
import type { RemoteRadiusSession } from '../../aaa/radius/service.ts';
import type { ControlReply, ControlRequest } from '../control-socket.ts';
import type { AuthorizeRequest, AuthorizeResult } from '../session.ts';

/**
 * What the primary and its workers say to each other over the IPC channel Node opens between them
 * (JSON, in order). A control connection travels with a `connection` message as the socket itself.
 */

/** Primary → worker. */
export type ToWorker =
  /** The socket sent with this message is a control connection for session `sid` (its number). */
  | { t: 'connection'; sid: number }
  | { t: 'authorized'; rid: number; answer: AuthorizeResult }
  /** A Disconnect-Request or CoA-Request the primary's listener accepted for session `sid`. */
  | { t: 'dynauth'; sid: string; change: { disconnect: string } | { limits: CoaChanges } }
  /** Single-session replace: another worker's session of the same user took over. */
  | { t: 'kill'; sid: string; reason: string }
  /** `poptop sessions` / `status` / `kill` / `reload`, or the status listener's, answered with a `reply`. */
  | { t: 'request'; rid: number; req: WorkerRequest }
  /** A failed login another worker saw: it counts against the user name here too. */
  | { t: 'login-failed'; source: string; user: string }
  /**
   * The primary's pool or `connections` limit became full (`refuse`), or has room again (none):
   * the worker refuses calls in the Outgoing-Call-Reply meanwhile, as one process does.
   */
  | { t: 'admission'; refuse?: CallRefusal }
  /** Close every session and exit. */
  | { t: 'stop'; graceMs: number };

/** Why every new call is refused for now: the pool is empty, or the limit is reached (`busy`). */
export interface CallRefusal {
  reason: string;
  busy: boolean;
}

/**
 * What the primary asks a worker: the control socket's requests, and the status listener's (which
 * the primary serves for all of them): the worker's metrics as data, its page snapshot, and the
 * end of one session by its exact id.
 */
export type WorkerRequest =
  | ControlRequest
  | { cmd: 'metrics' }
  | { cmd: 'page' }
  | { cmd: 'end'; id: string; reason: string };

/** Worker → primary. */
export type ToPrimary =
  /** The TUN device (or its queue of the shared one) and GRE socket are open: connections may come. */
  | { t: 'ready'; tun: string }
  /** A worker that cannot start says why before it exits. */
  | { t: 'failed'; error: string }
  | ({ t: 'authorize'; rid: number; sid: string } & AuthorizeRequest)
  | { t: 'up'; sid: string }
  /** Session `sid`'s RADIUS side is up: what the primary needs for Disconnect/CoA and a lost Stop. */
  | { t: 'radius-up'; sid: string; radius: RemoteRadiusSession }
  | { t: 'closed'; sid: string }
  /** The control connection of session `sid` is closed: its descriptor is free. */
  | { t: 'gone'; sid: number }
  | { t: 'reply'; rid: number; reply: ControlReply }
  | { t: 'login-failed'; source: string; user: string };

/**
 * Environment variable that makes `poptop serve` a worker: "INDEX/COUNT FIRST-LAST" (call ids),
 * and " tun Q S [D]" when it inherited a queue of the shared TUN device: the descriptors of the
 * queue, the steering map and the drop list's map (net/tun-queues.ts).
 */
export const WORKER_ENV = 'POPTOP_WORKER';

export interface WorkerIdentity {
  index: number;
  count: number;
  callIds: { first: number; last: number };
  /** The shared device's descriptors, as the worker has them. */
  shared?: { queueFd: number; steeringFd: number; dropFd?: number };
}

export function formatWorkerEnv(w: WorkerIdentity): string {
  const base = `${w.index}/${w.count} ${w.callIds.first}-${w.callIds.last}`;
  if (!w.shared) return base;
  const { queueFd, steeringFd, dropFd } = w.shared;
  return `${base} tun ${queueFd} ${steeringFd}${dropFd === undefined ? '' : ` ${dropFd}`}`;
}

export function parseWorkerEnv(text: string | undefined): WorkerIdentity | undefined {
  const m = /^(\d+)\/(\d+) (\d+)-(\d+)(?: tun (\d+) (\d+)(?: (\d+))?)?$/.exec(text ?? '');
  if (!m) return undefined;
  const [index, count, first, last] = m.slice(1, 5).map(Number) as [number, number, number, number];
  if (index >= count || first < 1 || first > last || last > 0xffff) return undefined;
  const out: WorkerIdentity = { index, count, callIds: { first, last } };
  if (m[5] !== undefined && m[6] !== undefined) {
    out.shared = { queueFd: Number(m[5]), steeringFd: Number(m[6]) };
    if (m[7] !== undefined) out.shared.dropFd = Number(m[7]);
  }
  return out;
}

/** Worker `index` of `count`: its share of call ids 1..65535, in one contiguous range. */
export function callIdShare(index: number, count: number): { first: number; last: number } {
  const size = Math.floor(0xffff / count);
  const first = 1 + index * size;
  return { first, last: index === count - 1 ? 0xffff : first + size - 1 };
}

/**
 * Which worker serves connections from `peer`: always the same one for an address, so the limits
 * and the login back-off per address (held by that worker) see all of that address's connections.
 * Consecutive addresses go to consecutive workers.
 */
export function workerFor(peer: number, count: number): number {
  return (peer >>> 0) % count;
}
