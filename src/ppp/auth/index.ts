import { ChapAuthenticator, ChapPeer } from './chap.ts';
import type { ChapDigest } from './chap-digest.ts';
import { chapMd5 } from './chap-md5.ts';
import { mschapV1 } from './mschap.ts';
import { mschapV2 } from './mschapv2.ts';
import { PapAuthenticator, PapPeer } from './pap.ts';
import type { AuthExchange, AuthenticatorOptions, AuthHost, AuthMethod, AuthPeerOptions } from './types.ts';

export type { ChapDigest } from './chap-digest.ts';
export { MsChapError } from './ms-common.ts';
export * from './types.ts';

/** The CHAP digests by method (lwIP's chap_digest_type table). */
export const CHAP_DIGESTS: Record<Exclude<AuthMethod, 'pap'>, ChapDigest> = {
  'chap-md5': chapMd5,
  mschap: mschapV1,
  mschapv2: mschapV2,
};

/**
 * The authenticator (server) side of `method`, as negotiated by LCP. Call start() when the
 * Authenticate phase begins; feed it the packets of its `protocol`.
 */
export function createAuthenticator(
  method: AuthMethod,
  host: AuthHost,
  cfg: AuthenticatorOptions,
): AuthExchange {
  return method === 'pap'
    ? new PapAuthenticator(host, cfg)
    : new ChapAuthenticator(CHAP_DIGESTS[method], host, cfg);
}

/** The peer (client) side of `method`, as negotiated by LCP. */
export function createAuthPeer(method: AuthMethod, host: AuthHost, cfg: AuthPeerOptions): AuthExchange {
  return method === 'pap' ? new PapPeer(host, cfg) : new ChapPeer(CHAP_DIGESTS[method], host, cfg);
}
