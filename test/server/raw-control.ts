/**
 * A hand-driven PPTP control connection for hostile-client tests: send any message, read what the
 * server answers, or stop reading altogether. Built on our codec and framer.
 */
import { connect, type Socket } from 'node:net';
import { type ControlMessage, encodeControlMessage } from '../../src/pptp/codec.ts';
import { ControlFramer } from '../../src/pptp/framer.ts';

export class RawControl {
  readonly sock: Socket;
  readonly received: ControlMessage[] = [];
  closed = false;
  private readonly framer = new ControlFramer();
  readonly ready: Promise<void>;

  constructor(port: number, localAddress: string) {
    this.sock = connect({ host: '127.0.0.1', port, localAddress, noDelay: true });
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
    this.send({
      type: 'start-control-connection-request',
      protocolVersion: 0x0100,
      framingCapabilities: 1,
      bearerCapabilities: 1,
      maxChannels: 0,
      firmwareRevision: 0,
      hostName,
      vendor: 'test',
    });
  }

  placeCall(callId: number): void {
    this.send({
      type: 'outgoing-call-request',
      callId,
      callSerial: 1,
      minBps: 300,
      maxBps: 100_000_000,
      bearerType: 3,
      framingType: 3,
      recvWindow: 64,
      processingDelay: 0,
      phoneNumber: '',
      subaddress: '',
    });
  }

  find<T extends ControlMessage['type']>(type: T): Extract<ControlMessage, { type: T }> | undefined {
    return this.received.find((m) => m.type === type) as Extract<ControlMessage, { type: T }> | undefined;
  }

  close(): void {
    this.sock.destroy();
  }
}
