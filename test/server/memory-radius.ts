/**
 * A RADIUS server played by the test, in memory, and the settings of a server that asks it (PAP
 * logins, no MPPE: the RADIUS side is what these tests are about). FreeRADIUS itself is in
 * test/aaa/radius/freeradius.test.ts.
 */

import { StaticCredentials } from '../../src/aaa/credentials.ts';
import type { RadiusTransport } from '../../src/aaa/radius/client.ts';
import {
  attrText,
  attrU32,
  decodeRadiusPacket,
  findAttr,
  type RadiusAttribute,
  signRadiusPacket,
} from '../../src/aaa/radius/codec.ts';
import { Attr, RadiusCode } from '../../src/aaa/radius/dictionary.ts';
import type { ServerSettings } from '../../src/server/settings.ts';
import { serverSettings } from './harness.ts';

/** One accounting record the server received. */
export interface AccountingRecord {
  status: number;
  sessionId: string;
  user?: string;
  cause?: number;
}

/**
 * Accepts every Access-Request with the attributes `replies` gives for its user, answers and
 * records every Accounting-Request. Each process (a primary, each worker) gets its own transport.
 */
export class MemoryRadius {
  readonly accounting: AccountingRecord[] = [];
  readonly secret: string;
  private readonly replies: (user: string) => RadiusAttribute[];

  constructor(secret: string, replies: (user: string) => RadiusAttribute[] = () => []) {
    this.secret = secret;
    this.replies = replies;
  }

  /** A process's socket; it sends nothing while `alive` says false (a crashed worker). */
  transport(alive = () => true): RadiusTransport {
    let handler: ((b: Uint8Array, h: string, p: number) => void) | undefined;
    return {
      send: (bytes, host, port) => {
        if (!alive()) return;
        const req = decodeRadiusPacket(bytes);
        const user = findAttr(req.attributes, Attr.UserName);
        let code: number = RadiusCode.AccountingResponse;
        let attributes: RadiusAttribute[] = [];
        if (req.code === RadiusCode.AccessRequest) {
          code = RadiusCode.AccessAccept;
          attributes = user ? this.replies(attrText(user)) : [];
        } else {
          const cause = findAttr(req.attributes, Attr.AcctTerminateCause);
          this.accounting.push({
            status: attrU32(findAttr(req.attributes, Attr.AcctStatusType)!),
            sessionId: attrText(findAttr(req.attributes, Attr.AcctSessionId)!),
            ...(user ? { user: attrText(user) } : {}),
            ...(cause ? { cause: attrU32(cause) } : {}),
          });
        }
        const reply = signRadiusPacket(
          { code, id: req.id, authenticator: new Uint8Array(16), attributes },
          new TextEncoder().encode(this.secret),
          { requestAuthenticator: req.authenticator, messageAuthenticator: code === RadiusCode.AccessAccept },
        );
        setImmediate(() => handler?.(reply, host, port));
      },
      onMessage: (fn) => {
        handler = fn;
      },
      setBusy: () => {},
      close: () => {},
    };
  }

  /** The Acct-Status-Type of every record (of `user`'s only, when given), in order. */
  statuses(user?: string): number[] {
    return this.accounting.filter((a) => user === undefined || a.user === user).map((a) => a.status);
  }
}

/**
 * Server settings that authenticate by `radius` (accounting too unless `accounting` is false),
 * with PAP required and MPPE not, and no local secrets.
 */
export function radiusPapSettings(
  radius: MemoryRadius,
  opts: { accounting?: boolean; radattr?: boolean } = {},
): Partial<ServerSettings> {
  const base = serverSettings();
  return {
    credentials: new StaticCredentials([]),
    radius: {
      authServers: [{ host: '127.0.0.1', port: 1812, secret: radius.secret }],
      acctServers:
        opts.accounting === false ? [] : [{ host: '127.0.0.1', port: 1813, secret: radius.secret }],
      timeoutS: 2,
      tries: 1,
      deadtimeS: 0,
      origin: 'test',
      dynauthPort: 0,
      ...(opts.radattr ? { radattr: true } : {}),
    },
    policy: {
      ...base.policy,
      auth: { ...base.policy.auth, require: ['pap'] },
      mppe: { ...base.policy.mppe, required: false },
    },
  };
}
