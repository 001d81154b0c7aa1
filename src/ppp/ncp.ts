/** What a network control protocol handler (IPCP, IPv6CP, CCP) reports to the link. */
export interface NcpEvents<Info> {
  /** tlu: the protocol is Opened with the negotiated `info`. */
  up(info: Info): void;
  /** tld */
  down(): void;
  /** tlf */
  finished(reason: string): void;
  /** Negotiation cannot succeed; the link closes this protocol (or the link, if it is required). */
  fail(reason: string): void;
}
