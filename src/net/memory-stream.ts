import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { ControlListener } from './listener.ts';

/**
 * One end of an in-memory byte stream that stands in for a TCP socket: what one end writes, the
 * other reads, asynchronously (never inside write()). It has the surface of `net.Socket` that
 * the server and client use (remoteAddress/remotePort, setKeepAlive, setNoDelay, setTimeout).
 */
export class MemoryStream extends Duplex {
  readonly remoteAddress: string;
  readonly remotePort: number;
  peer: MemoryStream | undefined;

  constructor(remoteAddress: string, remotePort: number) {
    super({ allowHalfOpen: false });
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    const peer = this.peer;
    setImmediate(() => {
      if (peer && !peer.destroyed) peer.push(chunk);
      done();
    });
  }

  override _final(done: (e?: Error | null) => void): void {
    const peer = this.peer;
    setImmediate(() => {
      if (peer && !peer.destroyed) peer.push(null);
      done();
    });
  }

  override _destroy(err: Error | null, done: (e?: Error | null) => void): void {
    const peer = this.peer;
    if (peer && !peer.destroyed) setImmediate(() => peer.destroy());
    done(err);
  }

  setKeepAlive(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
}

/** Two connected ends: `client` (at clientAddress) and `server` (seeing clientAddress as remote). */
export function memoryStreamPair(
  clientAddress: string,
  serverAddress: string,
): { client: Socket; server: Socket } {
  const client = new MemoryStream(serverAddress, 1723);
  const server = new MemoryStream(clientAddress, 40000 + Math.floor(Math.random() * 20000));
  client.peer = server;
  server.peer = client;
  return { client: client as unknown as Socket, server: server as unknown as Socket };
}

/** A ControlListener whose connections are made by connect() (tests on a ManualClock). */
export class MemoryListener implements ControlListener {
  private onConnection: ((sock: Socket) => void) | undefined;
  private readonly serverAddress: string;

  constructor(serverAddress = '127.0.0.1') {
    this.serverAddress = serverAddress;
  }

  listen(onConnection: (sock: Socket) => void): Promise<number> {
    this.onConnection = onConnection;
    return Promise.resolve(1723);
  }

  /** A new connection from `clientAddress`; returns the client's end (already "connected"). */
  connect(clientAddress: string): Socket {
    const { client, server } = memoryStreamPair(clientAddress, this.serverAddress);
    const accept = this.onConnection;
    setImmediate(() => {
      if (accept) accept(server);
      else server.destroy();
      client.emit('connect');
    });
    return client;
  }

  close(): void {
    this.onConnection = undefined;
  }
}
