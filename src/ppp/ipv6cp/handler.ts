import { bytesEqual } from '../../wire/bytes.ts';
import { PppProtocol } from '../constants.ts';
import type { ControlProtocolHandler } from '../fsm.ts';
import type { NcpEvents } from '../ncp.ts';
import type { ConfigOption, Verdict } from '../options.ts';
import { VerdictBuilder } from '../options.ts';

/** IPv6CP Configuration Option types (RFC 5072 §4). */
export const Ipv6cpOption = { InterfaceIdentifier: 1, IPv6CompressionProtocol: 2 } as const;

export const INTERFACE_ID_LENGTH = 8;

export interface Ipv6cpResult {
  /** Our and the peer's 64-bit interface identifiers (link-local fe80::/64 suffixes). */
  localId: Uint8Array;
  peerId: Uint8Array;
}

export interface Ipv6cpHandlerOptions {
  /** A random 32-bit unsigned number. */
  random(): number;
  events: NcpEvents<Ipv6cpResult>;
}

/**
 * IPv6CP (RFC 5072): both sides request a random non-zero Interface-Identifier. A zero
 * identifier from the peer, or one equal to ours, is Nak'd with a fresh suggestion (§4.1);
 * a Nak of ours makes us adopt the peer's suggestion. IPv6 header compression is Rejected.
 */
export class Ipv6cpHandler implements ControlProtocolHandler {
  readonly name = 'IPV6CP' as const;
  readonly protocol = PppProtocol.IPV6CP;
  private readonly opts: Ipv6cpHandlerOptions;
  got: Uint8Array | undefined;
  his: Uint8Array | undefined;

  constructor(opts: Ipv6cpHandlerOptions) {
    this.opts = opts;
  }

  reset(): void {
    this.got = this.newId(this.his);
    this.his = undefined;
  }

  buildRequest(): ConfigOption[] {
    return this.got ? [{ type: Ipv6cpOption.InterfaceIdentifier, data: this.got }] : [];
  }

  checkRequest(opts: ConfigOption[], rejectIfDisagree: boolean): Verdict {
    const v = new VerdictBuilder(rejectIfDisagree);
    let his: Uint8Array | undefined;
    for (const o of opts) {
      if (o.type !== Ipv6cpOption.InterfaceIdentifier || o.data.length !== INTERFACE_ID_LENGTH) {
        v.reject(o);
      } else if (isZero(o.data) || (this.got !== undefined && bytesEqual(o.data, this.got))) {
        v.nak(o, { type: o.type, data: this.newId(this.got) });
      } else {
        his = new Uint8Array(o.data);
      }
    }
    this.his = his;
    return v.finish();
  }

  ackReceived(): boolean {
    return true;
  }

  nakReceived(opts: ConfigOption[]): void {
    for (const o of opts) {
      if (o.type !== Ipv6cpOption.InterfaceIdentifier || o.data.length !== INTERFACE_ID_LENGTH) continue;
      const collides = isZero(o.data) || (this.his !== undefined && bytesEqual(o.data, this.his));
      this.got = collides ? this.newId(this.his) : new Uint8Array(o.data);
    }
  }

  rejectReceived(opts: ConfigOption[]): void {
    if (opts.some((o) => o.type === Ipv6cpOption.InterfaceIdentifier)) this.got = undefined;
  }

  up(): void {
    if (!this.got || !this.his) {
      this.opts.events.fail('IPv6CP: no interface identifiers negotiated');
      return;
    }
    this.opts.events.up({ localId: this.got, peerId: this.his });
  }

  down(): void {
    this.opts.events.down();
  }

  started(): void {}

  finished(reason: string): void {
    this.opts.events.finished(reason);
  }

  describe(o: ConfigOption): string {
    const hex = Buffer.from(o.data).toString('hex');
    return o.type === Ipv6cpOption.InterfaceIdentifier ? `<ifaceid ${hex}>` : `<${o.type} ${hex}>`;
  }

  /** A random non-zero identifier different from `avoid`. */
  private newId(avoid: Uint8Array | undefined): Uint8Array {
    const id = new Uint8Array(INTERFACE_ID_LENGTH);
    const view = new DataView(id.buffer);
    view.setUint32(0, this.opts.random() >>> 0);
    view.setUint32(4, this.opts.random() >>> 0);
    id[0] = id[0]! & ~0x02; // "u" bit clear: a locally assigned, not a global, identifier
    while (isZero(id) || (avoid !== undefined && bytesEqual(id, avoid))) id[7] = (id[7]! + 1) & 0xff;
    return id;
  }
}

function isZero(b: Uint8Array): boolean {
  return b.every((x) => x === 0);
}
