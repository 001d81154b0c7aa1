/**
 * A hand-driven PPTP control connection for hostile-client tests: send any message, read what the
 * server answers, or stop reading altogether. Built on our codec and framer.
 */
import { connect, type Socket } from 'node:net';
import { type ControlMessage, encodeControlMessage } from '../../src/pptp/codec.ts';
import { ControlFramer } from '../../src/pptp/framer.ts';
import { outgoingCallRequest, startControlRequest } from '../support/pptp-messages.ts';

export class RawControl {
  readonly sock: Socket;
  readonly received: ControlMessage[] = [];
  closed = false;
  private readonly framer = new ControlFramer();
  readonly ready: Promise<void>;

  /** `halfOpen`: our side stays open after the server's FIN (a peer that never closes). */
  constructor(port: number, localAddress: string, o: { halfOpen?: boolean } = {}) {
    this.sock = connect({
      host: '127.0.0.1',
      port,
      localAddress,
      noDelay: true,
      allowHalfOpen: o.halfOpen ?? false,
    });
    this.ready = new Promise((resolve, reject) => {
      this.sock.once('connect', () => resolve());
      this.sock.once('error', reject);
    });
    this.sock.on('error', () => {});
    this.sock.on('close', () => {
      this.closed = true;
    });
    this.sock.on('data', (d: Buffer) => {
      this.framer.push(d);
      for (let m = this.framer.next(); m; m = this.framer.next()) this.received.push(m);
    });
  }

  send(msg: ControlMessage): void {
    if (!this.sock.destroyed) this.sock.write(encodeControlMessage(msg));
  }

  start(hostName = 'hostile'): void {
    this.send(startControlRequest({ hostName }));
  }

  placeCall(callId: number): void {
    this.send(outgoingCallRequest(callId));
  }

  find<T extends ControlMessage['type']>(type: T): Extract<ControlMessage, { type: T }> | undefined {
    return this.received.find((m) => m.type === type) as Extract<ControlMessage, { type: T }> | undefined;
  }

  close(): void {
    this.sock.destroy();
  }
}
