import type { FramedRoute } from '../aaa/radius/framed-route.ts';
import type { Logger } from '../util/log.ts';
import { extend } from '../util/objects.ts';
import { formatIPv4, type IPv4 } from '../wire/ip.ts';
import type { HookContext } from './hooks.ts';
import type { SystemOps } from './system.ts';

/** Packets from the peer held until the host route exists (a reply before it would be lost). */
const HELD_LIMIT = 64;

/** What a session adds on the host besides its own route (RADIUS sessions). */
export interface AttachmentExtras {
  /** Subnets behind the client (Framed-Route), added after its own route, with its MTU. */
  framedRoutes?: readonly FramedRoute[];
  /** Told about a framed route the host refused (the session then stops routing it). */
  onFramedRouteRefused?: (route: FramedRoute) => void;
  /** The RADIUS attributes file (`plugin radattr.so`): written before ip-up, removed after ip-down. */
  radattr?: { path: string; text: string };
}

/**
 * What a session holds on the host once its network layer is up: the host route to the client
 * (with a smaller MTU when the session needs one), the routes to subnets behind it (RADIUS
 * Framed-Route), the RADIUS attributes file, proxy ARP on the LAN, and the ip-up / ip-down
 * hooks. Kernel operations run one after another per session, so a release that comes while the
 * route is still being added removes it afterwards instead of racing it; `release()` is safe to
 * call any number of times, and ip-down always sees the address ip-up saw.
 *
 * Packets from the client that arrive before the route is in place are held (up to HELD_LIMIT)
 * and handed on when it is: the kernel would otherwise answer them into a missing route.
 */
export class HostAttachment {
  private readonly system: SystemOps;
  private readonly log: Logger;
  private readonly proxyArp: boolean;
  private chain: Promise<void> = Promise.resolve();
  private ip: IPv4 | undefined;
  private lanIf: string | undefined;
  private routed = false;
  private released = false;
  /** From release() on: resolves once the kernel has no route or proxy ARP entry of ours left. */
  private detached: Promise<void> | undefined;
  private upRan = false;
  private upContext: HookContext | undefined;
  /** Framed routes the host accepted (what release() removes). */
  private framed: FramedRoute[] = [];
  private radattrPath: string | undefined;
  private held: Uint8Array[] = [];
  private forward: ((packet: Uint8Array) => void) | undefined;
  private heldDropped = 0;

  constructor(system: SystemOps, log: Logger, opts: { proxyArp: boolean }) {
    this.system = system;
    this.log = log;
    this.proxyArp = opts.proxyArp;
  }

  /** True from attach() until release(). */
  get attached(): boolean {
    return this.ip !== undefined && !this.released;
  }

  /**
   * Routes, the radattr file, proxy ARP, then ip-up with `ctx` (this call's own object: its
   * `radattr` is dropped if the file cannot be written). `forward` writes a packet from the client to the
   * host; it is used by pass() once the route exists. Only the first call does anything.
   */
  attach(
    ip: IPv4,
    mtu: number | undefined,
    ctx: HookContext,
    forward: (packet: Uint8Array) => void,
    extras: AttachmentExtras = {},
  ): void {
    if (this.ip !== undefined || this.released) return;
    this.ip = ip;
    this.upContext = ctx;
    this.forward = forward;
    const { system, log } = this;
    this.chain = this.chain
      .then(() => system.addClientRoute(ip, log, mtu))
      .then(() => {
        if (this.released) return;
        this.routed = true;
        const held = this.held;
        this.held = [];
        for (const p of held) forward(p);
      })
      .then(async () => {
        for (const r of extras.framedRoutes ?? []) {
          if (this.released) return;
          if (await system.addFramedRoute(r, log, mtu)) this.framed.push(r);
          else extras.onFramedRouteRefused?.(r);
        }
        const file = extras.radattr;
        if (file && !this.released) {
          if (await system.writeRadattr(file.path, file.text, log)) this.radattrPath = file.path;
          else delete ctx.radattr; // no RADATTR naming a file that is not there
        }
      })
      .then(async () => {
        if (!this.proxyArp || this.released) return;
        this.lanIf = await system.addProxyArp(ip, log);
      })
      .then(() => {
        if (this.released) return;
        this.upRan = true;
        void system.runHook('ip-up', ctx, log);
      });
  }

  /** A packet from the client for the host: forwarded now, or held until the route exists. */
  pass(packet: Uint8Array): void {
    if (this.routed && !this.released) {
      this.forward?.(packet);
      return;
    }
    if (this.released || this.ip === undefined) return;
    if (this.held.length < HELD_LIMIT) this.held.push(packet.slice());
    else if (++this.heldDropped === 1) {
      this.log.warn(
        `more than ${HELD_LIMIT} packets from the client before its route was in place; dropping`,
      );
    }
  }

  /**
   * ip-down (with `ctx`, on the address ip-up had), routes and proxy ARP removed, and the RADIUS
   * attributes file once ip-down has finished with it. Idempotent. Returns undefined when nothing
   * was ever attached, else a promise (never rejected) that resolves once the routes and proxy ARP
   * entry are gone from the kernel: until then the address and subnets are not free for another
   * session, whose route the late deletion would otherwise remove. ip-down is not waited for.
   */
  release(ctx: HookContext): Promise<void> | undefined {
    if (this.released) return this.detached;
    this.released = true;
    this.held = [];
    const ip = this.ip;
    if (ip === undefined) return undefined;
    const { system, log } = this;
    let detached!: () => void;
    this.detached = new Promise((resolve) => {
      detached = resolve;
    });
    const step = async (): Promise<void> => {
      // After attach's steps (the chain is sequential): ip-down only when ip-up ran.
      const downCtx = extend(ctx, { remoteIp: this.upContext!.remoteIp });
      if (this.radattrPath === undefined) delete downCtx.radattr;
      const down = this.upRan ? system.runHook('ip-down', downCtx, log) : undefined;
      try {
        for (const r of this.framed.splice(0)) await system.delFramedRoute(r, log);
        await system.delClientRoute(ip, log);
        if (this.lanIf) await system.delProxyArp(ip, this.lanIf, log);
      } finally {
        detached();
      }
      this.lanIf = undefined;
      const file = this.radattrPath;
      this.radattrPath = undefined;
      if (file !== undefined) {
        await down;
        await system.removeRadattr(file, log);
      }
    };
    // The SystemOps calls log their failures and resolve; should an earlier step have thrown anyway,
    // the deletions are still tried, and the address is freed whatever happens.
    this.chain = this.chain
      .then(step, step)
      .catch((e: Error) => log.warn(`releasing ${formatIPv4(ip)} from the host: ${e.message}`))
      .finally(detached);
    return this.detached;
  }

  /** Resolves when every kernel operation started so far has finished (tests, shutdown). */
  settled(): Promise<void> {
    return this.chain;
  }
}
