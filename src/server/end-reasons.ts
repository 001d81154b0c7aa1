/**
 * Why sessions end, in two forms: a short code from a fixed list (a metrics label: bounded, so a
 * reason built from network text cannot add label values) and a sentence an administrator reads
 * on the status page. The detailed reason the session logged (which names the user, the method,
 * the peer's words) stays available next to it.
 *
 * The reasons come from every layer as text (pptp/control.ts, pptp/call.ts, ppp/link.ts, the LCP,
 * CCP and IPCP handlers, server/session.ts); classifyEnd() recognises them by their wording.
 */

export type EndCode =
  | 'auth_failed'
  | 'auth_refused'
  | 'locked_out'
  | 'mppe_refused'
  | 'pool_empty'
  | 'connection_limit'
  | 'source_limit'
  | 'gre_never_seen'
  | 'echo_timeout'
  | 'setup_timeout'
  | 'peer_hangup'
  | 'admin_kill'
  | 'shutdown'
  | 'ipcp_failed'
  | 'protocol_error'
  | 'other';

export const END_CODES: readonly EndCode[] = [
  'auth_failed',
  'auth_refused',
  'locked_out',
  'mppe_refused',
  'pool_empty',
  'connection_limit',
  'source_limit',
  'gre_never_seen',
  'echo_timeout',
  'setup_timeout',
  'peer_hangup',
  'admin_kill',
  'shutdown',
  'ipcp_failed',
  'protocol_error',
  'other',
];

export interface EndReason {
  code: EndCode;
  /** A sentence for a person: what happened and, where it helps, what to look at. */
  words: string;
  /** The authentication method named in an authentication failure (mschapv2, chap-md5...). */
  method?: string;
}

const PEER_HANGUP_WORDS = 'the client hung up';

const RULES: { test: RegExp; code: EndCode; words: string }[] = [
  // First: these reasons go on with the peer's own words (a Terminate-Request's text), which must
  // not decide the class ("peer requested termination ("administrator...")" is still a hang-up).
  {
    test: /^(peer requested termination|peer stopped|peer cleared)/i,
    code: 'peer_hangup',
    words: PEER_HANGUP_WORDS,
  },
  {
    test: /locked out/i,
    code: 'locked_out',
    words: 'refused: the client address is locked out after repeated failed logins',
  },
  {
    test: /^authentication failed/i,
    code: 'auth_failed',
    words: 'authentication failed: wrong user name or password (Windows error 691)',
  },
  {
    test: /^session refused for user/,
    code: 'pool_empty',
    words:
      'no address could be given to this user: the remoteip pool is used up, or the address chap-secrets gives the user is taken (Windows 720)',
  },
  {
    test: /refused (all )?(the )?authentication|rejected the authentication|no (authenticator|peer) for/i,
    code: 'auth_refused',
    words: 'the client refused every authentication method the server requires',
  },
  {
    test: /MPPE/,
    code: 'mppe_refused',
    words:
      'encryption settings do not match: the server requires MPPE the client does not offer (Windows 741/742)',
  },
  {
    test: /address pool exhausted|no IPv4 address for the peer|no address/i,
    code: 'pool_empty',
    words: 'no address left for the client: the remoteip pool is used up (Windows 720)',
  },
  {
    test: /from one address/i,
    code: 'source_limit',
    words: 'refused: too many connections or set-ups at once from this client address',
  },
  {
    test: /connection limit reached|too many (TCP|unauthenticated) connections/i,
    code: 'connection_limit',
    words: 'refused: the server is at a connection limit ("connections" or "max-unauth" in pptpd.conf)',
  },
  {
    test: /no answer to \d+ LCP Configure-Requests/,
    code: 'gre_never_seen',
    words:
      'no PPP answer from the client: GRE (IP protocol 47) does not get through; a firewall or a NAT without a PPTP helper between you drops it (Windows 619)',
  },
  {
    test: /LCP echo|no Echo-Reply|Echo-Request/i,
    code: 'echo_timeout',
    words: 'the client stopped answering keep-alives: it vanished or the network between you broke',
  },
  {
    test: /set-up not complete|^no .* within \d+ s|call-deadline|deadline/i,
    code: 'setup_timeout',
    words: 'the client did not finish connecting in time',
  },
  {
    test: /administrator/i,
    code: 'admin_kill',
    words: 'ended by the administrator',
  },
  {
    test: /shutting down/i,
    code: 'shutdown',
    words: 'the server was stopping',
  },
  {
    test: /^TCP connection closed|Call-Disconnect-Notify|hung up/i,
    code: 'peer_hangup',
    words: PEER_HANGUP_WORDS,
  },
  {
    test: /^IPCP|IPv6CP/,
    code: 'ipcp_failed',
    words: 'the client and the server did not agree on addresses (IPCP)',
  },
  {
    test: /protocol violation|not supported|looped back|did not converge|malformed/i,
    code: 'protocol_error',
    words: 'the client broke the protocol; the detail names what it sent',
  },
];

const OTHER_WORDS = 'the session ended; the detail says why';

/** The code and sentence for a session's end reason (as logged in "session closed: ..."). */
export function classifyEnd(reason: string | undefined): EndReason {
  // Quoted parts are the peer's words (a user name, Terminate-Request text): they must not pick the
  // category, or a client called "locked out" would count as a lockout. Reasons quote with quote().
  const text = (reason ?? '').replace(/"(?:[^"\\]|\\.)*"/g, '""');
  for (const r of RULES) {
    if (r.test.test(text)) {
      const out: EndReason = { code: r.code, words: r.words };
      if (r.code === 'auth_failed') {
        const m = /^authentication failed \(([a-z0-9-]+)/.exec(text);
        if (m) out.method = m[1]!;
      }
      return out;
    }
  }
  return { code: 'other', words: OTHER_WORDS };
}
