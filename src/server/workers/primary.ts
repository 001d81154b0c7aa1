import type { Socket } from 'node:net';
import type { LeaseHolder } from '../../aaa/leases.ts';
import { connectionLimitReached, LeaseManager } from '../../aaa/leases.ts';
import type { RadiusTransport } from '../../aaa/radius/client.ts';
import type { DynAuthSession } from '../../aaa/radius/dynauth.ts';
import { RadiusService, type RemoteRadiusSession } from '../../aaa/radius/service.ts';
import type { FdReserve } from '../../net/fd-reserve.ts';
import { type ControlListener, TcpListener } from '../../net/listener.ts';
import type { Clock, TimerHandle } from '../../util/clock.ts';
import { DropCounter } from '../../util/counters.ts';
import { quote } from '../../util/escape.ts';
import type { Logger } from '../../util/log.ts';
import { extend } from '../../util/objects.ts';
import { formatIPv4, type IPv4, parseIPv4 } from '../../wire/ip.ts';
import { type AcceptFailure, listenForControl } from '../admission.ts';
import type { ControlReply, ControlRequest } from '../control-socket.ts';
import { type MetricsData, mergeMetrics, radiusMetrics, renderMetrics } from '../metrics.ts';
import type { ReloadTarget } from '../reload.ts';
import { type AuthorizeResult, bySessionNumber, type SessionInfo } from '../session.ts';
import type { ServerSettings } from '../settings.ts';
import { mergeSnapshots, type StatusProvider } from '../status-http.ts';
import type { StatusSnapshot } from '../status-page.ts';
import type { SystemCounters } from '../system.ts';
import {
  type CallRefusal,
  callIdShare,
  type ToPrimary,
  type ToWorker,
  type WorkerIdentity,
  type WorkerRequest,
  workerFor,
} from './messages.ts';

/** A worker process as the primary sees it (a child process; tests use objects in memory). */
export interface WorkerProcess {
  readonly pid: number | undefined;
  /** Sends a message, with a control connection for `connection`; false when the channel is closed. */
  send(message: ToWorker, socket?: Socket): boolean;
  kill(signal: NodeJS.Signals): void;
}

export interface WorkerEvents {
  message(m: ToPrimary): void;
  /** The process ended (code, or the signal that ended it). */
  exit(how: string): void;
}

export type SpawnWorker = (identity: WorkerIdentity, events: WorkerEvents) => WorkerProcess;

/** The primary's own drops: connections it could not hand to a worker. */
export type PrimaryDropReason =
  | 'too many TCP connections'
  | 'too many unauthenticated connections from one address'
  | 'no worker is running'
  | AcceptFailure
  | 'at the file descriptor reserve'
  | 'message from a worker not understood';

/** A worker that ran at least this long was healthy: its next restart is immediate again. */
const HEALTHY_MS = 60_000;
const RESTART_FIRST_MS = 500;
const RESTART_MAX_MS = 30_000;
/** How long a control request may wait for a worker's answer. */
const REQUEST_TIMEOUT_MS = 10_000;

type SlotState = 'starting' | 'ready' | 'restarting' | 'stopped';

interface Slot {
  readonly identity: WorkerIdentity;
  proc: WorkerProcess | undefined;
  state: SlotState;
  /** Control connections handed to it and not yet closed. */
  connections: number;
  /** Its sessions, by id. */
  readonly sessions: Set<string>;
  restarts: number;
  startedAt: number;
  nextDelayMs: number;
  timer: TimerHandle | undefined;
  tun: string | undefined;
}

/** A session as the primary knows it: where it lives, and what it holds globally. */
interface Held extends LeaseHolder {
  readonly id: string;
  readonly worker: number;
  user: string | undefined;
  /** Its RADIUS side, once up (Disconnect/CoA find it; its Stop is sent here if its worker dies). */
  radius?: RemoteRadiusSession;
}

export interface WorkerPoolDeps {
  clock: Clock;
  log: Logger;
  spawn: SpawnWorker;
  /** @default TCP on settings.listen:settings.port, paused on accept (the worker reads). */
  listener?: ControlListener;
  fds?: FdReserve;
  /** RADIUS sockets (tests); default UDP. */
  radiusTransport?: (purpose: 'authentication' | 'accounting') => RadiusTransport;
  /**
   * A worker ended: undo on the host what it left behind (on a shared TUN device, its routes:
   * cli/serve-primary.ts). Its sessions' addresses go back to the pool only once this resolves, so
   * another session cannot be given one whose old route is still being removed.
   */
  workerGone?: (index: number) => Promise<void>;
}

/**
 * `workers N`: the primary process. It accepts PPTP control connections on the one listening port
 * and hands each, as a socket, to a worker process; it owns what must be decided once for every
 * worker: the address pool and leases, the `connections` limit and single-session. Each worker
 * (cli/serve.ts in worker mode) runs an ordinary PptpServer with its own TUN device and a GRE
 * socket whose kernel filter passes only its share of call ids, so data never crosses processes.
 *
 * Connections from one client address always go to the same worker while it runs, so the limits
 * and login back-off per address that the worker keeps see all of that address's connections.
 * A worker that ends loses only its own sessions (the primary frees their addresses) and is
 * started again, at once the first time and then with a growing delay.
 */
export class WorkerPool implements ReloadTarget {
  readonly drops: DropCounter<PrimaryDropReason>;
  readonly leases: LeaseManager;
  private settings: ServerSettings;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly spawnWorker: SpawnWorker;
  private readonly listener: ControlListener;
  private readonly fds: FdReserve | undefined;
  private readonly workerGone: ((index: number) => Promise<void>) | undefined;
  private readonly slots: Slot[];
  private readonly sessions = new Map<string, Held>();
  /**
   * Control connections handed to a worker and not yet authenticated nor closed, by number (their
   * session is s<number>), and how many per client address: past twice `max-unauth-per-source`,
   * the primary closes a new connection itself rather than pay a handover for each connection of
   * a flood. Below that the worker refuses with the protocol's answer, as one process does.
   */
  private readonly handed = new Map<number, { peer: IPv4; worker: number }>();
  private readonly unauthBySource = new Map<IPv4, number>();
  /** What the workers were last told of the pool and the limit (updateAdmission). */
  private admission: CallRefusal | undefined;
  /** RADIUS, when configured: Accounting-On/Off, Disconnect/CoA, lost Stops. */
  readonly radius: RadiusService | undefined;
  private readonly byUser = new Map<string, Set<Held>>();
  private readonly pending = new Map<
    number,
    { slot: Slot; done: (reply: ControlReply | undefined) => void }
  >();
  private nextSessionId = 1;
  private nextRequestId = 1;
  private stopping = false;
  private whenAllExited: (() => void) | undefined;

  constructor(settings: ServerSettings, count: number, deps: WorkerPoolDeps) {
    this.settings = settings;
    this.clock = deps.clock;
    this.log = deps.log;
    this.spawnWorker = deps.spawn;
    this.fds = deps.fds;
    this.workerGone = deps.workerGone;
    this.listener =
      deps.listener ?? new TcpListener(settings.listen, settings.port, { pauseOnConnect: true });
    this.drops = new DropCounter<PrimaryDropReason>(deps.log, 'connection');
    this.leases = new LeaseManager(settings.delegate ? [] : settings.remoteIps);
    // RADIUS: each worker authenticates and accounts for its own sessions; the NAS's events
    // (Accounting-On/Off), Disconnect/CoA and the Stops of a dead worker's sessions are here.
    if (settings.radius) {
      this.radius = new RadiusService(settings.radius, {
        clock: deps.clock,
        log: deps.log,
        ...(deps.radiusTransport ? { transport: deps.radiusTransport } : {}),
        sessions: () => this.radiusSessions(),
      });
    }
    this.slots = Array.from({ length: count }, (_, index) => ({
      identity: { index, count, callIds: callIdShare(index, count) },
      proc: undefined,
      state: 'stopped' as SlotState,
      connections: 0,
      sessions: new Set<string>(),
      restarts: 0,
      startedAt: 0,
      nextDelayMs: RESTART_FIRST_MS,
      timer: undefined,
      tun: undefined,
    }));
  }

  get currentSettings(): ServerSettings {
    return this.settings;
  }

  /** Starts every worker; resolves when all are ready, rejects with the first one's error. */
  async start(): Promise<void> {
    // Accounting-On before any session, and the Disconnect/CoA listener (for every worker).
    await this.radius?.start();
    return new Promise((resolve, reject) => {
      let waiting = this.slots.length;
      for (const slot of this.slots) {
        this.launch(slot, (error) => {
          if (error !== undefined) reject(new Error(`worker ${slot.identity.index}: ${error}`));
          else if (--waiting === 0) resolve();
        });
      }
    });
  }

  /** Listens for control connections; resolves with the bound port. */
  async listen(): Promise<number> {
    const port = await listenForControl(
      this.listener,
      (sock) => this.accept(sock),
      this.drops,
      this.log,
      this.settings,
      { poolSize: this.leases.poolSize, workers: this.slots.length },
    );
    return port;
  }

  private launch(slot: Slot, started?: (error: string | undefined) => void): void {
    slot.state = 'starting';
    slot.startedAt = this.clock.now();
    slot.tun = undefined;
    let proc: WorkerProcess | undefined;
    const events: WorkerEvents = {
      message: (m) => {
        if (slot.proc !== proc) return;
        if (m.t === 'ready') {
          slot.state = 'ready';
          slot.tun = m.tun;
          this.log.info(`worker ${slot.identity.index} (pid ${proc?.pid}) ready on ${m.tun}`);
          if (this.admission) proc?.send({ t: 'admission', refuse: this.admission });
          started?.(undefined);
          started = undefined;
        } else if (m.t === 'failed') {
          started?.(m.error);
          started = undefined;
        } else this.receive(slot, m);
      },
      exit: (how) => {
        if (slot.proc !== proc) return;
        this.exited(slot, how);
        started?.(`ended before it was ready (${how})`);
        started = undefined;
      },
    };
    proc = this.spawnWorker(slot.identity, events);
    slot.proc = proc;
  }

  private exited(slot: Slot, how: string): void {
    slot.proc = undefined;
    const lost = slot.connections;
    for (const [sid, h] of this.handed) if (h.worker === slot.identity.index) this.authenticatedOrGone(sid);
    const lostSessions = [...slot.sessions];
    for (const sid of lostSessions) {
      const r = this.sessions.get(sid)?.radius;
      if (r) this.radius?.lostSessionStop(r);
    }
    const releaseLost = (): void => {
      for (const sid of lostSessions) this.release(sid);
    };
    const cleaning = this.workerGone?.(slot.identity.index);
    if (!cleaning) releaseLost();
    else
      void cleaning
        .catch((e: Error) => this.log.warn(`after worker ${slot.identity.index}: ${e.message}`))
        .then(releaseLost);
    slot.connections = 0;
    for (const [rid, p] of this.pending) {
      if (p.slot !== slot) continue;
      this.pending.delete(rid);
      p.done(undefined);
    }
    if (this.stopping) {
      slot.state = 'stopped';
      this.log.info(`worker ${slot.identity.index} stopped (${how})`);
      if (this.slots.every((s) => s.state === 'stopped')) this.whenAllExited?.();
      return;
    }
    const wasReady = slot.state === 'ready';
    slot.state = 'restarting';
    if (this.clock.now() - slot.startedAt >= HEALTHY_MS) slot.nextDelayMs = RESTART_FIRST_MS;
    const delay = slot.nextDelayMs;
    slot.nextDelayMs = Math.min(RESTART_MAX_MS, delay * 2);
    slot.restarts++;
    const what = wasReady ? `ended (${how})` : `could not start (${how})`;
    this.log.error(
      `worker ${slot.identity.index} ${what}; its ${lost} session${lost === 1 ? ' is' : 's are'} lost; starting it again in ${delay / 1000} s`,
    );
    slot.timer = this.clock.setTimer(delay, () => {
      slot.timer = undefined;
      if (!this.stopping) this.launch(slot);
    });
  }

  // ---- connections ----

  private accept(sock: Socket): void {
    const peer = parseIPv4((sock.remoteAddress ?? '').replace(/^::ffff:/, ''));
    if (peer === undefined || this.stopping) {
      sock.destroy();
      return;
    }
    const short = this.fds?.check();
    if (short) {
      this.drops.drop('at the file descriptor reserve', `connection from ${formatIPv4(peer)} closed`);
      sock.destroy();
      return;
    }
    // The workers' hard caps, summed: a flood of connections cannot exhaust their descriptors.
    let open = 0;
    for (const s of this.slots) open += s.connections;
    if (open >= this.settings.maxConnections * 2 + 16) {
      this.drops.drop('too many TCP connections', `from ${formatIPv4(peer)}`);
      sock.destroy();
      return;
    }
    const unauth = this.unauthBySource.get(peer) ?? 0;
    if (unauth >= 2 * this.settings.maxUnauthPerSource) {
      this.drops.drop(
        'too many unauthenticated connections from one address',
        `connection from ${formatIPv4(peer)} closed by the primary`,
      );
      sock.destroy();
      return;
    }
    const slot = this.slotFor(peer);
    if (!slot) {
      this.drops.drop('no worker is running', `connection from ${formatIPv4(peer)} closed`);
      sock.destroy();
      return;
    }
    const sid = this.nextSessionId++;
    slot.connections++;
    this.handed.set(sid, { peer, worker: slot.identity.index });
    this.unauthBySource.set(peer, unauth + 1);
    if (!slot.proc!.send({ t: 'connection', sid }, sock)) {
      this.authenticatedOrGone(sid);
      slot.connections--;
      this.drops.drop('no worker is running', `connection from ${formatIPv4(peer)} closed`);
      sock.destroy();
    }
  }

  /** Connection `sid` no longer counts as unauthenticated (it logged in, or it is closed). */
  private authenticatedOrGone(sid: number): void {
    const h = this.handed.get(sid);
    if (!h) return;
    this.handed.delete(sid);
    const n = (this.unauthBySource.get(h.peer) ?? 1) - 1;
    if (n > 0) this.unauthBySource.set(h.peer, n);
    else this.unauthBySource.delete(h.peer);
  }

  /** The worker for `peer`'s address, or the next running one while it is down. */
  private slotFor(peer: IPv4): Slot | undefined {
    const n = this.slots.length;
    const home = workerFor(peer, n);
    for (let k = 0; k < n; k++) {
      const slot = this.slots[(home + k) % n]!;
      if (slot.state === 'ready' && slot.proc) return slot;
    }
    return undefined;
  }

  // ---- what workers ask and tell ----

  private receive(slot: Slot, m: ToPrimary): void {
    switch (m.t) {
      case 'authorize': {
        this.authenticatedOrGone(Number(m.sid.slice(1)));
        const answer = this.authorize(slot, m);
        slot.proc?.send({ t: 'authorized', rid: m.rid, answer });
        return;
      }
      case 'up':
        this.leases.confirm(this.held(slot, m.sid));
        return;
      case 'radius-up': {
        const h = this.sessions.get(m.sid);
        if (h && h.worker === slot.identity.index) h.radius = m.radius;
        return;
      }
      case 'closed':
        this.release(m.sid);
        return;
      case 'gone':
        this.authenticatedOrGone(m.sid);
        if (slot.connections > 0) slot.connections--;
        return;
      case 'login-failed':
        // The brake per user name covers every worker (the addresses are each one worker's).
        for (const other of this.slots)
          if (other !== slot && other.state === 'ready')
            other.proc?.send({ t: 'login-failed', source: m.source, user: m.user });
        return;
      case 'reply': {
        const p = this.pending.get(m.rid);
        if (!p || p.slot !== slot) return;
        this.pending.delete(m.rid);
        p.done(m.reply);
        return;
      }
      default:
        this.drops.drop('message from a worker not understood', `worker ${slot.identity.index}`);
    }
  }

  private held(slot: Slot, sid: string): Held {
    let h = this.sessions.get(sid);
    if (!h) {
      h = { id: sid, worker: slot.identity.index, user: undefined };
      this.sessions.set(sid, h);
      slot.sessions.add(sid);
    }
    return h;
  }

  /**
   * After a worker's session authenticated: single-session across workers, the `connections` limit
   * and the address, as one process would decide them.
   */
  private authorize(slot: Slot, m: Extract<ToPrimary, { t: 'authorize' }>): AuthorizeResult {
    const h = this.held(slot, m.sid);
    const { user } = m;
    const settings = this.settings;
    if (!m.again && settings.singleSession !== 'off') {
      const others = [...(this.byUser.get(user) ?? [])].filter((o) => o !== h);
      if (others.length > 0 && settings.singleSession === 'deny')
        return {
          refuse: `already connected (session ${others.map((o) => o.id).join(', ')}; single-session deny)`,
        };
      for (const old of others) {
        this.slots[old.worker]?.proc?.send({
          t: 'kill',
          sid: old.id,
          reason: `replaced by a new session of ${quote(user)} (${h.id}; single-session replace)`,
        });
      }
    }
    if (!this.leases.leaseOf(h) && this.leases.count >= settings.maxConnections)
      return { refuse: connectionLimitReached(settings.maxConnections) };
    const answer: AuthorizeResult = m.radius
      ? this.leases.leaseFromRadiusNamingHolder(h, user, m.radius.ip)
      : this.leases.lease(h, user, m.entry ?? undefined);
    if ('lease' in answer && h.user === undefined) {
      h.user = user;
      let set = this.byUser.get(user);
      if (!set) {
        set = new Set();
        this.byUser.set(user, set);
      }
      set.add(h);
    }
    this.updateAdmission();
    return answer;
  }

  private release(sid: string): void {
    const h = this.sessions.get(sid);
    if (!h) return;
    this.sessions.delete(sid);
    this.slots[h.worker]?.sessions.delete(sid);
    this.leases.release(h);
    if (h.user !== undefined) {
      const set = this.byUser.get(h.user);
      if (set?.delete(h) && set.size === 0) this.byUser.delete(h.user);
    }
    this.updateAdmission();
  }

  /**
   * Whether new calls fit (the pool has an address, the `connections` limit is not reached), told
   * to every worker when it changes: while it does not, they refuse calls in the
   * Outgoing-Call-Reply, before any login, as one process does.
   */
  private updateAdmission(): void {
    const pool = this.leases.admission();
    const max = this.settings.maxConnections;
    const refuse: CallRefusal | undefined =
      'refuse' in pool
        ? { reason: pool.refuse, busy: false }
        : this.leases.count >= max
          ? { reason: connectionLimitReached(max), busy: true }
          : undefined;
    if (refuse?.reason === this.admission?.reason) return;
    this.admission = refuse;
    for (const slot of this.slots)
      if (slot.state === 'ready') slot.proc?.send({ t: 'admission', ...(refuse ? { refuse } : {}) });
  }

  /** The RADIUS sessions of every worker, as Disconnect/CoA act on them: by a message to the worker. */
  private radiusSessions(): DynAuthSession[] {
    const out: DynAuthSession[] = [];
    for (const h of this.sessions.values()) {
      const r = h.radius;
      if (!r) continue;
      const send = (m: ToWorker) => this.slots[h.worker]?.proc?.send(m);
      out.push({
        acctSessionId: r.acctSessionId,
        userName: r.userName,
        framedIp: r.framedIp,
        callingStationId: r.callingStationId,
        nasPort: r.nasPort,
        disconnect: (reason) => send({ t: 'dynauth', sid: h.id, change: { disconnect: reason } }),
        changeLimits: (limits) => send({ t: 'dynauth', sid: h.id, change: { limits } }),
      });
    }
    return out;
  }

  // ---- administration ----

  /** Asks every running worker; undefined for one that did not answer in time. */
  private ask(req: WorkerRequest): Promise<(ControlReply | undefined)[]> {
    return Promise.all(
      this.slots.map(
        (slot) =>
          new Promise<ControlReply | undefined>((resolve) => {
            if (slot.state !== 'ready' || !slot.proc) {
              resolve(undefined);
              return;
            }
            const rid = this.nextRequestId++;
            const timer = this.clock.setTimer(REQUEST_TIMEOUT_MS, () => {
              this.pending.delete(rid);
              resolve(undefined);
            });
            this.pending.set(rid, {
              slot,
              done: (reply) => {
                timer.cancel();
                resolve(reply);
              },
            });
            if (!slot.proc.send({ t: 'request', rid, req })) {
              this.pending.delete(rid);
              timer.cancel();
              resolve(undefined);
            }
          }),
      ),
    );
  }

  /** `poptop sessions`, `status` and `kill` over every worker. */
  async request(req: ControlRequest): Promise<ControlReply> {
    const replies = await this.ask(req);
    switch (req.cmd) {
      case 'sessions':
        // Each row says which worker holds it (`poptop sessions --json`).
        return {
          ok: true,
          data: replies
            .flatMap((r, worker) =>
              r?.ok ? (r.data as SessionInfo[]).map((row) => extend(row, { worker })) : [],
            )
            .sort(bySessionNumber),
        };
      case 'kill': {
        const ids = replies.flatMap((r) => (r?.ok ? (r.data as string[]) : []));
        return ids.length > 0
          ? { ok: true, data: ids }
          : { ok: false, error: `no session matches "${req.target}"` };
      }
      case 'status':
        return { ok: true, data: this.mergeStatus(replies) };
      case 'reload':
        return { ok: false, error: 'reload is answered by the primary' };
    }
  }

  private mergeStatus(replies: (ControlReply | undefined)[]): Record<string, unknown> {
    const drops: Record<string, number> = { ...this.drops.snapshot() };
    const system: SystemCounters = { hostRoutes: 0, framedRoutes: 0, proxyArp: 0, failures: 0 };
    let sessions = 0;
    const memory = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
    const own = process.memoryUsage();
    for (const k of Object.keys(memory) as (keyof typeof memory)[]) memory[k] += own[k];
    const workers = this.slots.map((slot, i) => {
      const data = replies[i]?.ok ? (replies[i].data as WorkerStatus) : undefined;
      if (data) {
        sessions += data.sessions;
        for (const [reason, n] of Object.entries(data.drops ?? {})) drops[reason] = (drops[reason] ?? 0) + n;
        for (const k of Object.keys(system) as (keyof SystemCounters)[]) system[k] += data.system?.[k] ?? 0;
        for (const k of Object.keys(memory) as (keyof typeof memory)[]) memory[k] += data.memory?.[k] ?? 0;
      }
      return {
        index: slot.identity.index,
        pid: slot.proc?.pid ?? null,
        state: slot.state,
        tun: slot.tun ?? null,
        callIds: `${slot.identity.callIds.first}-${slot.identity.callIds.last}`,
        restarts: slot.restarts,
        sessions: data?.sessions ?? null,
        connections: slot.connections,
        ...(data?.fds ? { fds: data.fds } : {}),
        ...(data?.memory ? { rssBytes: data.memory.rss } : {}),
      };
    });
    return {
      sessions,
      poolSize: this.leases.poolSize,
      poolFree: this.leases.poolFree,
      drops,
      system,
      memory,
      workers,
    };
  }

  /**
   * What the status listener shows (pptpd.conf `status`), gathered from every worker: their
   * metrics summed and their sessions listed, with the pool, the limit and the primary's own
   * drops from here. A worker that does not answer in time is left out of that answer.
   */
  statusProvider(): StatusProvider {
    const startedAt = Date.now();
    const answered = <T>(replies: (ControlReply | undefined)[]): T[] =>
      replies.flatMap((r) => (r?.ok ? [r.data as T] : []));
    return {
      metrics: async () =>
        renderMetrics(
          mergeMetrics(answered<MetricsData>(await this.ask({ cmd: 'metrics' })), {
            startedAt,
            limit: this.settings.maxConnections,
            pool: { size: this.leases.poolSize, free: this.leases.poolFree },
            drops: { primary: this.drops.snapshot() },
            ...(this.radius ? { radius: radiusMetrics(this.radius.clientStats()) } : {}),
          }),
        ),
      snapshot: async (tokenRequired) =>
        mergeSnapshots(answered<StatusSnapshot>(await this.ask({ cmd: 'page' })), {
          now: Date.now(),
          startedAt,
          sessionLimit: this.settings.maxConnections,
          pool: { size: this.leases.poolSize, free: this.leases.poolFree },
          tokenRequired,
        }),
      kill: async (id, reason) => answered<string[]>(await this.ask({ cmd: 'end', id, reason })).length > 0,
    };
  }

  /** The sessions the primary knows of (reload counts them; `sessions` asks the workers). */
  list(): SessionInfo[] {
    return [...this.sessions.values()].map((h) => ({
      id: h.id,
      user: h.user ?? null,
      peer: '',
      ip: (() => {
        const ip = this.leases.leaseOf(h)?.ip;
        return ip === undefined ? null : formatIPv4(ip);
      })(),
      auth: null,
      mppe: null,
      state: '',
      uptimeS: 0,
      bytesIn: 0,
      bytesOut: 0,
      packetsIn: 0,
      packetsOut: 0,
    }));
  }

  /** New settings (the pool keeps live leases); each worker reads the files again itself. */
  reload(settings: ServerSettings): void {
    this.leases.reload(settings.delegate ? [] : settings.remoteIps);
    this.settings = settings;
    this.updateAdmission();
    void this.ask({ cmd: 'reload' }).then((replies) => {
      replies.forEach((r, i) => {
        if (r && !r.ok) this.log.error(`worker ${i} did not reload: ${r.error}`);
      });
    });
  }

  /**
   * Every worker closes its sessions (telling each client) and exits; resolves when all have and,
   * with RADIUS, Accounting-Off (after the workers' Stops) is answered or `graceMs` is up.
   */
  async shutdown(graceMs = 5000): Promise<void> {
    await this.stopWorkers(graceMs);
    await this.radius?.stop(graceMs);
  }

  private stopWorkers(graceMs: number): Promise<void> {
    this.stopping = true;
    this.listener.close();
    return new Promise((resolve) => {
      const done = (): void => {
        timer.cancel();
        this.whenAllExited = undefined;
        resolve();
      };
      // Past the workers' own grace: whoever is still running is ended.
      const timer = this.clock.setTimer(graceMs + 3000, () => {
        for (const slot of this.slots) slot.proc?.kill('SIGKILL');
        done();
      });
      this.whenAllExited = done;
      for (const slot of this.slots) {
        slot.timer?.cancel();
        slot.timer = undefined;
        if (!slot.proc) slot.state = 'stopped';
        else slot.proc.send({ t: 'stop', graceMs });
      }
      if (this.slots.every((s) => s.state === 'stopped')) done();
    });
  }
}

/** What a worker answers to `status` (cli/serve.ts). */
interface WorkerStatus {
  sessions: number;
  drops?: Record<string, number>;
  system?: SystemCounters;
  fds?: unknown;
  memory?: Record<string, number>;
}
