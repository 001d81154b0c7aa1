/**
 * The end-to-end scenario of `npm run demo` and test/e2e/tunnel.root.test.ts: the real
 * `poptop serve` in one network namespace, real `poptop connect` clients in others, with the
 * raw GRE socket, TUN devices and routes of the kernel. Each step returns what it measured;
 * the test asserts on it, the demo prints it.
 */
import { join } from 'node:path';
import {
  createTopology,
  NsProcess,
  POPTOP,
  poptopIn,
  type SessionRow,
  serveArgv,
  sessionsIn,
  sh,
  type Topology,
  writeServerConfig,
} from './netns.ts';

export interface StepResult {
  step: string;
  ok: boolean;
  detail: string;
}

const TUNNEL_SERVER = '10.77.0.1';

/** A Node one-liner: a TCP sink on HOST:PORT printing "sha256 <hex> <bytes>" per connection. */
const SINK = `
const net=require('net'),c=require('crypto');
net.createServer(s=>{const h=c.createHash('sha256');let n=0;s.on('data',d=>{h.update(d);n+=d.length});
s.on('end',()=>{console.log('sha256 '+h.digest('hex')+' '+n);s.end()})}).listen(+process.argv[2],process.argv[1],()=>console.log('sink ready'));`;

/** Sends N bytes of pseudo-random data to HOST:PORT and prints "sent sha256 <hex> <bytes>". */
const SOURCE = `
const net=require('net'),c=require('crypto');const total=+process.argv[3];const h=c.createHash('sha256');
const s=net.connect(+process.argv[2],process.argv[1],()=>{let sent=0;const chunk=c.randomBytes(65536);
const pump=()=>{while(sent<total){const n=Math.min(chunk.length,total-sent);const b=chunk.subarray(0,n);chunk[0]^=sent&255;
h.update(b);sent+=n;if(!s.write(b))return s.once('drain',pump)}s.end();console.log('sent sha256 '+h.digest('hex')+' '+sent)};pump()});
s.setTimeout(60000,()=>{console.log('timeout');process.exit(3)});`;

export class Scenario {
  readonly topo: Topology;
  readonly results: StepResult[] = [];
  server: NsProcess | undefined;
  private readonly procs: NsProcess[] = [];
  private readonly control: string;

  constructor(clients = 3) {
    this.topo = createTopology(clients);
    this.control = join(this.topo.dir, 'control.sock');
  }

  record(step: string, ok: boolean, detail: string): StepResult {
    const r = { step, ok, detail };
    this.results.push(r);
    return r;
  }

  /**
   * Starts `poptop serve` in the server namespace; `extraArgs` are appended to its command line,
   * `confLines` to its pptpd.conf. `o.defaultWorkers` leaves `workers` unset (see
   * writeServerConfig); `o.wrapper` runs it under another command (e.g. setpriv).
   */
  startServer(
    extraArgs: string[] = [],
    confLines: string[] = [],
    o: { defaultWorkers?: boolean; wrapper?: string[] } = {},
  ): Promise<RegExpMatchArray> {
    const conf = writeServerConfig(this.topo.dir, {
      remoteip: '10.77.0.10-11',
      ...(o.defaultWorkers ? { defaultWorkers: true } : {}),
      conf: confLines,
      users: [
        { user: 'alice', password: 'alice-pw' },
        { user: 'carol', password: 'carol-pw' },
        { user: 'bob', password: 'bob-pw', ip: '10.77.0.200' },
      ],
    });
    this.server = this.spawn('server', this.topo.server, [
      ...(o.wrapper ?? []),
      ...serveArgv({ conf, dir: this.topo.dir, control: this.control, tun: 'pptpsrv0', extra: extraArgs }),
    ]);
    return this.server.waitFor(/listening on/, 15_000);
  }

  connect(i: number, user: string, password: string): NsProcess {
    return this.spawn(`client${i}:${user}`, this.topo.clients[i]!, [
      process.execPath,
      POPTOP,
      'connect',
      this.topo.serverAddress,
      '--user',
      user,
      '--password',
      password,
      '--tun',
      'pptpcli0',
      '--lcp-echo-interval',
      '1',
      '--lcp-echo-failure',
      '3',
    ]);
  }

  spawn(name: string, ns: string, argv: string[]): NsProcess {
    const p = new NsProcess(name, ns, argv);
    this.procs.push(p);
    return p;
  }

  /** Take client i's interface down (the client vanishes from the network). */
  cutClient(i: number): void {
    sh('ip', ['-n', this.topo.clients[i]!, 'link', 'set', 'eth0', 'down']);
  }

  restoreClient(i: number): void {
    sh('ip', ['-n', this.topo.clients[i]!, 'link', 'set', 'eth0', 'up']);
  }

  ping(ns: string, target: string): boolean {
    try {
      sh('ip', ['netns', 'exec', ns, 'ping', '-c', '3', '-i', '0.2', '-W', '2', target]);
      return true;
    } catch {
      return false;
    }
  }

  async sessions(): Promise<SessionRow[]> {
    return sessionsIn(this.topo.server, this.control);
  }

  kill(target: string): string {
    return poptopIn(this.topo.server, ['kill', target, '--control-socket', this.control]);
  }

  /** Sends `bytes` from client namespace `i` to a sink on the server's tunnel address; returns both hashes. */
  async transfer(i: number, bytes: number): Promise<{ sent: string; received: string; seconds: number }> {
    const port = 5001 + i;
    const sink = this.spawn('sink', this.topo.server, [
      process.execPath,
      '-e',
      SINK,
      TUNNEL_SERVER,
      String(port),
    ]);
    await sink.waitFor(/sink ready/, 10_000);
    const start = Date.now();
    const src = this.spawn('source', this.topo.clients[i]!, [
      process.execPath,
      '-e',
      SOURCE,
      TUNNEL_SERVER,
      String(port),
      String(bytes),
    ]);
    const sent = await src.waitFor(/sent sha256 ([0-9a-f]+) (\d+)/, 120_000);
    const got = await sink.waitFor(/^sha256 ([0-9a-f]+) (\d+)/m, 30_000);
    sink.signal('SIGTERM');
    return {
      sent: `${sent[1]} ${sent[2]}`,
      received: `${got[1]} ${got[2]}`,
      seconds: (Date.now() - start) / 1000,
    };
  }

  /** Stop every process we started (by PID), then remove the namespaces. */
  async destroy(): Promise<void> {
    for (const p of this.procs) p.signal('SIGKILL');
    await Promise.all(this.procs.map((p) => p.exited(5000).catch(() => null)));
    this.topo.destroy();
  }
}
