import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import type { ConfigOption, Verdict } from './options.ts';

/** The ten states of the RFC 1661 §4.2 automaton. */
export type FsmState =
  | 'initial'
  | 'starting'
  | 'closed'
  | 'stopped'
  | 'closing'
  | 'stopping'
  | 'req-sent'
  | 'ack-rcvd'
  | 'ack-sent'
  | 'opened';

/** What a control protocol supplies: its options and its reaction to the layer's events. */
export interface ControlProtocolHandler {
  readonly name: 'LCP' | 'IPCP' | 'IPV6CP' | 'CCP';
  readonly protocol: number;
  /** Start a fresh negotiation: our request options go back to what we want (lwIP resetci). */
  reset(): void;
  /** The options of our next Configure-Request (lwIP addci). */
  buildRequest(): ConfigOption[];
  /** Judge the peer's Configure-Request; remember what is acked as the peer's options (reqci). */
  checkRequest(opts: ConfigOption[], rejectIfDisagree: boolean): Verdict;
  /** Our request was acked (already checked byte-for-byte); false rejects the Ack as bad. */
  ackReceived(opts: ConfigOption[]): boolean;
  nakReceived(opts: ConfigOption[]): void;
  /** Options proven (by the FSM) to be a subset of our last request. */
  rejectReceived(opts: ConfigOption[]): void;
  /** tlu */
  up(): void;
  /** tld */
  down(): void;
  /** tls */
  started(): void;
  /** tlf, with the reason in words ("no response to 10 Configure-Requests"). */
  finished(reason: string): void;
  /**
   * Codes beyond 1–7 (LCP Echo/Discard/Protocol-Reject, CCP Reset-Request/Ack). Return false
   * for a code the protocol does not know: the FSM then sends Code-Reject (RUC).
   */
  extraCode?(code: number, id: number, data: Uint8Array, state: FsmState): boolean;
  /** "<mru 1400>" for debug logs. */
  describe?(opt: ConfigOption): string;
}

export interface FsmConfig {
  /** Restart timer, ms (pppd lcp-restart/ipcp-restart, default 3 s). */
  restartMs: number;
  /** Configure-Requests sent without answer before giving up (RFC 1661 §4.6, default 10). */
  maxConfigure: number;
  /** Terminate-Requests sent before giving up (default 2). */
  maxTerminate: number;
  /**
   * Configure-Naks sent in a row before our Naks become Rejects, and Configure-Naks received for
   * our requests without an Ack before we treat them as Rejects of the Nak'd options (default 5).
   */
  maxFailure: number;
  /**
   * The most Configure-Requests, Configure-Naks and Configure-Rejects we send in one negotiation
   * that does not reach Opened, whatever the peer answers; then the layer finishes (tlf) with a
   * reason in words. Max-Configure counts only unanswered requests, so this is what ends a peer
   * that answers everything and agrees to nothing. Default: `defaultMaxExchanges(cfg)`.
   */
  maxExchanges?: number;
}

/**
 * 3 × (Max-Configure + Max-Failure), 45 with pppd's defaults: a genuine negotiation needs a few
 * exchanges per option plus Max-Configure retransmissions on loss; three times both is generous.
 */
export function defaultMaxExchanges(cfg: Pick<FsmConfig, 'maxConfigure' | 'maxFailure'>): number {
  return 3 * (cfg.maxConfigure + cfg.maxFailure);
}

export interface FsmHost {
  clock: Clock;
  log: Logger;
  /** Send one packet of this protocol (starting at Code) in a PPP frame. */
  send(packet: Uint8Array): void;
  /** The most octets of information the peer accepts (its MRU); Code-Rejects are cut to fit. */
  peerMru(): number;
}

/** Why the automaton dropped a packet (DropCounter reasons; ids and errors go in the detail). */
export type FsmDropReason =
  | 'received while the layer is not up'
  | 'malformed header'
  | 'malformed Configure-Request'
  | 'malformed Configure-Nak'
  | 'malformed Configure-Reject'
  | 'Configure-Ack not matching our Configure-Request'
  | 'Configure-Nak not matching our Configure-Request'
  | 'Configure-Reject not matching our Configure-Request'
  | 'Configure-Ack refused by the option handler'
  | 'Configure-Reject with options we did not send as sent'
  | 'empty Code-Reject';
