import { createServer, type Server, type Socket } from 'node:net';
import { formatIPv4, type IPv4 } from '../wire/ip.ts';

/**
 * Where control connections come from: TCP (TcpListener) or, in tests, an in-memory listener
 * (net/memory-stream.ts) that lets a whole server run on a ManualClock. Accepted connections are
 * `net.Socket`s or objects with the same surface.
 */
export interface ControlListener {
  /**
   * Start accepting; resolves with the bound port. Errors are Errors in words. Once listening, a
   * connection that could not be accepted (out of descriptors) is reported to `onAcceptError`.
   */
  listen(
    onConnection: (sock: Socket) => void,
    onAcceptError?: (e: NodeJS.ErrnoException) => void,
  ): Promise<number>;
  close(): void;
}

export class TcpListener implements ControlListener {
  private readonly host: IPv4 | undefined;
  private readonly port: number;
  private server: Server | undefined;
  private readonly pauseOnConnect: boolean;

  /** `pauseOnConnect`: read nothing from accepted sockets (the primary hands them to workers). */
  constructor(host: IPv4 | undefined, port: number, opts: { pauseOnConnect?: boolean } = {}) {
    this.host = host;
    this.port = port;
    this.pauseOnConnect = opts.pauseOnConnect ?? false;
  }

  listen(
    onConnection: (sock: Socket) => void,
    onAcceptError?: (e: NodeJS.ErrnoException) => void,
  ): Promise<number> {
    const server = createServer({ noDelay: true, pauseOnConnect: this.pauseOnConnect }, onConnection);
    this.server = server;
    const host = this.host === undefined ? '0.0.0.0' : formatIPv4(this.host);
    return new Promise((resolve, reject) => {
      let listening = false;
      // One handler for the server's life: an unhandled 'error' (accept EMFILE) would end the process.
      server.on('error', (e: NodeJS.ErrnoException) => {
        if (listening) {
          onAcceptError?.(e);
          return;
        }
        const hint =
          e.code === 'EADDRINUSE'
            ? ' (is pptpd or another poptop already running?)'
            : e.code === 'EACCES'
              ? ' (port 1723 needs root)'
              : e.code === 'EADDRNOTAVAIL'
                ? ' (no interface has this address)'
                : '';
        reject(new Error(`cannot listen on ${host}:${this.port}: ${e.message}${hint}`));
      });
      server.listen(this.port, host, () => {
        listening = true;
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : this.port);
      });
    });
  }

  close(): void {
    this.server?.close();
  }
}
