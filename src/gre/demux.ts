import type { Clock } from '../util/clock.ts';
import type { DropCounter } from '../util/counters.ts';
import { formatIPv4, type IPv4 } from '../wire/ip.ts';
import { GRE_DROP_WORDS, type GreHeader, readGreHeader } from './codec.ts';

/** Why the demultiplexer dropped a packet (the specifics go in the detail). */
export type GreDemuxDropReason =
  | 'GRE header malformed'
  | 'GRE for an unknown call id'
  | 'GRE for a call that just ended'
  | 'GRE from the wrong address';

/**
 * Reasons that are part of normal operation: a peer's last GRE (typically an acknowledgement
 * without data for our last packet, sent after its ack delay) arriving once the call has ended.
 * Counted, logged at debug only: a mass disconnect would otherwise log warnings for every call.
 */
export const GRE_DEMUX_EXPECTED: readonly GreDemuxDropReason[] = ['GRE for a call that just ended'];

/** How long after a call ended its peer's GRE for it is "just ended" rather than unknown. */
export const ENDED_CALL_GRACE_MS = 10_000;

/** Whatever takes a call's GRE packets: a server session or a client, keyed by our call id. */
export interface GreEndpoint {
  /** The only address GRE for this call may come from (the control connection's peer). */
  readonly peer: IPv4;
  /** One packet for this call, header decoded; `packet` is only valid during the call. */
  receiveGre(packet: Uint8Array, header: GreHeader): void;
}

/**
 * The one receive demultiplexer of GRE, shared by the server, the client and the load
 * generator: decode the header once, find the call by our call id (the GRE key), check the
 * source address, hand on. Every drop is counted by reason; nothing throws.
 */
export class GreDemux {
  private readonly calls = new Map<number, GreEndpoint>();
  /**
   * Call ids whose call ended within ENDED_CALL_GRACE_MS, oldest first, with the peer's address:
   * at most one entry per call id, and only calls of ours put one here.
   */
  private readonly ended = new Map<number, { at: number; peer: IPv4 }>();
  private readonly drops: DropCounter<GreDemuxDropReason>;
  private readonly clock: Clock;

  constructor(drops: DropCounter<GreDemuxDropReason>, clock: Clock) {
    this.drops = drops;
    this.clock = clock;
  }

  get size(): number {
    return this.calls.size;
  }

  /** GRE keyed `callId` now belongs to `endpoint`. */
  bind(callId: number, endpoint: GreEndpoint): void {
    this.calls.set(callId, endpoint);
    this.ended.delete(callId);
  }

  /**
   * Stop delivering `callId` (only if it is still `endpoint`'s, when given). Its peer's GRE for it
   * is then "just ended" for ENDED_CALL_GRACE_MS.
   */
  unbind(callId: number, endpoint?: GreEndpoint): void {
    const current = this.calls.get(callId);
    if (current === undefined || (endpoint !== undefined && current !== endpoint)) return;
    this.calls.delete(callId);
    const now = this.clock.now();
    this.forgetEnded(now);
    // Deleted first, so that the map stays in the order the calls ended.
    this.ended.delete(callId);
    this.ended.set(callId, { at: now, peer: current.peer });
  }

  receive(packet: Uint8Array, from: IPv4): void {
    const header = readGreHeader(packet);
    if (typeof header === 'string') {
      this.drop('GRE header malformed', () => `${GRE_DROP_WORDS[header]}, from ${formatIPv4(from)}`);
      return;
    }
    const endpoint = this.calls.get(header.callId);
    if (!endpoint) {
      const detail = () => `call id ${header.callId} from ${formatIPv4(from)}`;
      if (this.justEnded(header.callId, from)) this.drop('GRE for a call that just ended', detail);
      else this.drop('GRE for an unknown call id', detail);
      return;
    }
    if (endpoint.peer !== from) {
      this.drop(
        'GRE from the wrong address',
        () =>
          `call id ${header.callId} belongs to ${formatIPv4(endpoint.peer)}, packet from ${formatIPv4(from)}`,
      );
      return;
    }
    endpoint.receiveGre(packet, header);
  }

  /** Whether `callId`'s call ended within the grace period and `from` was its peer. */
  private justEnded(callId: number, from: IPv4): boolean {
    if (this.ended.size === 0) return false;
    this.forgetEnded(this.clock.now());
    return this.ended.get(callId)?.peer === from;
  }

  /** Drops the calls that ended longer ago than the grace period (the oldest come first). */
  private forgetEnded(now: number): void {
    for (const [callId, e] of this.ended) {
      if (now - e.at < ENDED_CALL_GRACE_MS) return;
      this.ended.delete(callId);
    }
  }

  private drop(reason: GreDemuxDropReason, detail: () => string): void {
    this.drops.drop(reason, detail);
  }
}
