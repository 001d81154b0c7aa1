import type { DropCounter } from '../util/counters.ts';
import { formatIPv4, type IPv4 } from '../wire/ip.ts';
import { GRE_DROP_WORDS, type GreHeader, readGreHeader } from './codec.ts';

/** Why the demultiplexer dropped a packet (the specifics go in the detail). */
export type GreDemuxDropReason =
  | 'GRE header malformed'
  | 'GRE for an unknown call id'
  | 'GRE from the wrong address';

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
  private readonly drops: DropCounter<GreDemuxDropReason>;

  constructor(drops: DropCounter<GreDemuxDropReason>) {
    this.drops = drops;
  }

  get size(): number {
    return this.calls.size;
  }

  /** GRE keyed `callId` now belongs to `endpoint`. */
  bind(callId: number, endpoint: GreEndpoint): void {
    this.calls.set(callId, endpoint);
  }

  /** Stop delivering `callId` (only if it is still `endpoint`'s, when given). */
  unbind(callId: number, endpoint?: GreEndpoint): void {
    if (endpoint === undefined || this.calls.get(callId) === endpoint) this.calls.delete(callId);
  }

  receive(packet: Uint8Array, from: IPv4): void {
    const header = readGreHeader(packet);
    if (typeof header === 'string') {
      this.drop('GRE header malformed', () => `${GRE_DROP_WORDS[header]}, from ${formatIPv4(from)}`);
      return;
    }
    const endpoint = this.calls.get(header.callId);
    if (!endpoint) {
      this.drop('GRE for an unknown call id', () => `call id ${header.callId} from ${formatIPv4(from)}`);
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

  private drop(reason: GreDemuxDropReason, detail: () => string): void {
    this.drops.drop(reason, detail);
  }
}
