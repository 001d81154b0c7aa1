/**
 * Reassembles PPTP control messages from the TCP byte stream (RFC 2637 §1.4: every message starts
 * with its Length). push() the bytes as they arrive, then call next() until it returns null
 * ("need more bytes"). Bad input throws ProtocolError as soon as the offending header field has
 * arrived (impossible length, wrong PPTP Message Type, bad Magic Cookie, unknown type, Length not the
 * type's size), so at most one partial message (< 220 bytes) is ever held beyond what the caller
 * pushed. After an error the stream cannot be resynchronised: every later next() throws it again.
 */
import { ProtocolError } from '../wire/errors.ts';
import { checkControlHeader, decodeControlMessage } from './codec.ts';
import type { ControlMessage } from './messages.ts';

export class ControlFramer {
  private buf: Uint8Array = new Uint8Array(0);
  private pos = 0;
  /** Whether `buf` is our own copy (else it is the caller's chunk). */
  private owned = true;
  private error: ProtocolError | undefined;

  /** Bytes held and not yet returned as messages. */
  get buffered(): number {
    return this.buf.length - this.pos;
  }

  /** Append bytes received from TCP. The framer keeps no reference to `bytes` beyond the next call. */
  push(bytes: Uint8Array): void {
    if (this.error || bytes.length === 0) return;
    const rest = this.buf.length - this.pos;
    if (rest === 0) {
      this.buf = bytes;
      this.owned = false;
    } else {
      const joined = new Uint8Array(rest + bytes.length);
      joined.set(this.buf.subarray(this.pos));
      joined.set(bytes, rest);
      this.buf = joined;
      this.owned = true;
    }
    this.pos = 0;
  }

  /** The next complete message, or null when more bytes are needed. Throws ProtocolError on bad input. */
  next(): ControlMessage | null {
    if (this.error) throw this.error;
    try {
      const available = this.buf.length - this.pos;
      const length = checkControlHeader(this.buf, this.pos, Math.min(available, 12));
      if (length === undefined || available < length || available < 12) {
        this.retainPartial();
        return null;
      }
      const msg = decodeControlMessage(this.buf, this.pos);
      this.pos += length;
      return msg;
    } catch (e) {
      if (e instanceof ProtocolError) {
        this.error = e;
        this.buf = new Uint8Array(0);
        this.pos = 0;
      }
      throw e;
    }
  }

  /** Keep only the partial message, in our own copy (the caller may reuse or free its chunk). */
  private retainPartial(): void {
    if (this.owned && this.pos === 0) return;
    this.buf = this.buf.slice(this.pos);
    this.pos = 0;
    this.owned = true;
  }
}
