import type { Socket } from 'node:net';
import type { ControlListener } from '../net/listener.ts';
import { encodeControlMessage } from '../pptp/codec.ts';
import { GeneralError, PPTP_PROTOCOL_VERSION, StartResult } from '../pptp/constants.ts';
import { ControlFramer } from '../pptp/framer.ts';
import type { Clock, TimerHandle } from '../util/clock.ts';
import type { DropCounter } from '../util/counters.ts';
import type { Logger } from '../util/log.ts';
import { formatIPv4, type IPv4 } from '../wire/ip.ts';
import type { GuardSettings, ServerSettings } from './settings.ts';

/**
 * What one source address, and everyone together, may hold before authentication (pptpd.conf
 * keywords, docs/configuration.md). Many real users share one address (a whole office behind
 * NAT): authenticated sessions are limited only by `connections`; these limits bound what an
 * unauthenticated peer can make us hold. Deadlines are in seconds: TCP accept → accepted
 * Outgoing-Call-Request, and call → network layer up.
 */
export type AdmissionLimits = GuardSettings;

/** Why a connection or call was refused by admission (counted under these words). */
export type AdmissionRefusal =
  | 'address locked out after failed logins'
  | 'too many unauthenticated connections from one address'
  | 'too many unauthenticated connections'
  | 'too many set-ups in progress from one address'
  | 'at the file descriptor reserve';

interface SourceCounts {
  unauth: number;
  setups: number;
}

/**
 * Per-source and global counts of what is not yet authenticated or not yet up. Entries exist only
 * while something is counted, so the table is bounded by the connections themselves.
 */
export class SourceTable {
  private readonly bySource = new Map<IPv4, SourceCounts>();
  private unauthTotal = 0;

  get unauthenticated(): number {
    return this.unauthTotal;
  }

  /** Sources with something counted (tests, status). */
  get sources(): number {
    return this.bySource.size;
  }

  /** Whether a new connection from `ip` fits; the refusal in words when it does not. */
  admitConnection(ip: IPv4, limits: AdmissionLimits): AdmissionRefusal | undefined {
    if ((this.bySource.get(ip)?.unauth ?? 0) >= limits.maxUnauthPerSource)
      return 'too many unauthenticated connections from one address';
    if (this.unauthTotal >= limits.maxUnauth) return 'too many unauthenticated connections';
    return undefined;
  }

  admitSetup(ip: IPv4, limits: AdmissionLimits): AdmissionRefusal | undefined {
    if ((this.bySource.get(ip)?.setups ?? 0) >= limits.maxSetupsPerSource)
      return 'too many set-ups in progress from one address';
    return undefined;
  }

  add(ip: IPv4, what: keyof SourceCounts, n: 1 | -1): void {
    let c = this.bySource.get(ip);
    if (!c) {
      if (n < 0) return;
      c = { unauth: 0, setups: 0 };
      this.bySource.set(ip, c);
    }
    if (n < 0 && c[what] === 0) return;
    c[what] += n;
    if (what === 'unauth') this.unauthTotal += n;
    if (c.unauth === 0 && c.setups === 0) this.bySource.delete(ip);
  }
}

/** How long a refused connection may take to send its Start-Control-Connection-Request. */
const REFUSE_WAIT_MS = 5000;
/** Refusals waiting for their request at once; beyond it a refused connection is simply closed. */
const MAX_REFUSING = 64;

/**
 * Answers a control connection we will not serve with the protocol's refusal rather than a reset:
 * wait (briefly) for its Start-Control-Connection-Request, reply with Result General Error /
 * No-Resource (or Not-Authorized for an address locked out by the login back-off), close.
 * Bounded in time and in number; each refusal is counted under its reason.
 */
export class ConnectionRefuser {
  private readonly clock: Clock;
  private readonly drops: DropCounter<AdmissionRefusal>;
  private waiting = 0;

  constructor(clock: Clock, drops: DropCounter<AdmissionRefusal>) {
    this.clock = clock;
    this.drops = drops;
  }

  /**
   * `atMost`: refusals waiting at once past which this one is simply closed (fewer than
   * MAX_REFUSING where each holds a descriptor the server is short of).
   */
  refuse(sock: Socket, peer: IPv4, reason: AdmissionRefusal, hostName: string, atMost = MAX_REFUSING): void {
    this.drops.drop(reason, `connection from ${formatIPv4(peer)}`);
    if (this.waiting >= Math.min(atMost, MAX_REFUSING)) {
      sock.destroy();
      return;
    }
    // Counted until the socket is really gone, not just answered: a peer that keeps trickling bytes
    // after the reply must not hold sockets beyond MAX_REFUSING, and is cut REFUSE_WAIT_MS after it.
    this.waiting++;
    const framer = new ControlFramer();
    let done = false;
    let linger: TimerHandle | undefined;
    const finish = (reply: boolean): void => {
      if (done) return;
      done = true;
      timer.cancel();
      sock.removeAllListeners('data');
      sock.pause();
      if (reply && !sock.destroyed) {
        sock.end(
          encodeControlMessage({
            type: 'start-control-connection-reply',
            protocolVersion: PPTP_PROTOCOL_VERSION,
            ...(reason === 'address locked out after failed logins'
              ? { resultCode: StartResult.NotAuthorized, errorCode: GeneralError.None }
              : { resultCode: StartResult.GeneralError, errorCode: GeneralError.NoResource }),
            framingCapabilities: 0,
            bearerCapabilities: 0,
            maxChannels: 0,
            firmwareRevision: 0,
            hostName,
            vendor: 'poptop',
          }),
        );
        linger = this.clock.setTimer(REFUSE_WAIT_MS, () => sock.destroy());
      } else sock.destroy();
    };
    const timer = this.clock.setTimer(REFUSE_WAIT_MS, () => finish(false));
    sock.on('error', () => finish(false));
    sock.once('close', () => {
      this.waiting--;
      linger?.cancel();
      finish(false);
    });
    sock.on('data', (d: Buffer) => {
      try {
        framer.push(d);
        const msg = framer.next();
        if (msg === null) {
          if (framer.buffered > 256) finish(false);
          return;
        }
        finish(msg.type === 'start-control-connection-request');
      } catch {
        finish(false);
      }
    });
  }
}

/** Why a connection could not be accepted, in the servers' words (the primary's and a server's). */
export type AcceptFailure = 'connection not accepted: no file descriptor left' | 'connection not accepted';

/**
 * Listens on `listener` for control connections, counting in `drops` those the kernel could not
 * give us (libuv accepts and closes them), and logs the "listening on" line with `what` after the
 * address (the pool, the limit). Resolves with the bound port.
 */
export async function listenForControl(
  listener: ControlListener,
  accept: (sock: Socket) => void,
  drops: { drop(reason: AcceptFailure, detail?: string): void },
  log: Logger,
  settings: Pick<ServerSettings, 'listen' | 'delegate' | 'maxConnections'>,
  o: { poolSize: number; workers?: number },
): Promise<number> {
  const port = await listener.listen(accept, (e) =>
    drops.drop(
      e.code === 'EMFILE' || e.code === 'ENFILE'
        ? 'connection not accepted: no file descriptor left'
        : 'connection not accepted',
      e.code ? `error code ${e.code}` : undefined,
    ),
  );
  const host = settings.listen === undefined ? '0.0.0.0' : formatIPv4(settings.listen);
  const addresses = settings.delegate ? 'addresses from the secrets file' : `${o.poolSize} client addresses`;
  const workers = o.workers === undefined ? '' : ` for ${o.workers} workers`;
  log.info(
    `listening on ${host}:${port}${workers}; ${addresses}, at most ${settings.maxConnections} sessions`,
  );
  return port;
}
