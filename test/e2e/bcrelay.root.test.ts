/**
 * `bcrelay IF` with the kernel: `poptop serve` in a namespace that also has a LAN (a veth to a
 * "LAN host" namespace); a real `poptop connect` client. UDP broadcasts the LAN host sends
 * (limited, to port 137, and directed, to another port) arrive on the client's TUN device and
 * reach a UDP socket there; a unicast packet, a TTL-1 broadcast and a broadcast the server sends
 * itself do not. A missing interface stops start-up with the keyword's file:line.
 * Needs root (namespaces, raw sockets, TUN).
 */
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type NsProcess, POPTOP, serveArgv, sh, writeServerConfig } from './netns.ts';
import { Scenario } from './scenario.ts';

const LAN_SERVER = '192.168.77.1';
const LAN_HOST = '192.168.77.20';

/** Prints "got PORT FROM TEXT" for every datagram on ports 137 and 40000 (all addresses). */
const RECEIVER = `
const d=require('dgram');let n=0;
for(const port of [137,40000]){const s=d.createSocket({type:'udp4',reuseAddr:true});
s.on('message',(m,r)=>console.log('got '+port+' '+r.address+' '+m));
s.bind(port,'0.0.0.0',()=>{if(++n===2)console.log('receiver ready')});}`;

/** Sends each "TEXT PORT HOST [TTL]" argument as one datagram, in order, from BIND. */
const SENDER = `
const d=require('dgram');const s=d.createSocket('udp4');const [bind,...msgs]=process.argv.slice(1);
s.bind(0,bind,async()=>{s.setBroadcast(true);
for(const m of msgs){const [text,port,host,ttl]=m.split(' ');s.setTTL(+(ttl||64));
await new Promise((ok,ko)=>s.send(text,+port,host,e=>e?ko(e):ok()));}
console.log('sent '+msgs.length);s.close();});`;

let sc: Scenario;
let lanNs: string;
let conf: string;

/** `poptop connect` as alice from the client namespace, with the LAN routed through the tunnel. */
function connectAlice(name: string, tun: string): NsProcess {
  return sc.spawn(name, sc.topo.clients[0]!, [
    process.execPath,
    POPTOP,
    'connect',
    sc.topo.serverAddress,
    '--user',
    'alice',
    '--password',
    'alice-pw',
    '--tun',
    tun,
    '--route',
    '192.168.77.0/24', // the LAN through the tunnel, as a split-tunnel client has it
  ]);
}

function serveArgs(confPath: string, tun: string, control: string): string[] {
  return serveArgv({ conf: confPath, dir: sc.topo.dir, control, tun });
}

before(() => {
  sc = new Scenario(1);
  lanNs = `${sc.topo.server}L`;
  // The LAN: lan0 in the server namespace, eth0 in a LAN host namespace, 192.168.77.0/24.
  sh('ip', ['netns', 'add', lanNs]);
  sh('ip', ['-n', lanNs, 'link', 'set', 'lo', 'up']);
  sh('ip', [
    '-n',
    lanNs,
    'link',
    'add',
    'eth0',
    'type',
    'veth',
    'peer',
    'name',
    'lan0',
    'netns',
    sc.topo.server,
  ]);
  sh('ip', ['-n', lanNs, 'addr', 'add', `${LAN_HOST}/24`, 'dev', 'eth0']);
  sh('ip', ['-n', lanNs, 'link', 'set', 'eth0', 'up']);
  sh('ip', ['-n', sc.topo.server, 'addr', 'add', `${LAN_SERVER}/24`, 'dev', 'lan0']);
  sh('ip', ['-n', sc.topo.server, 'link', 'set', 'lan0', 'up']);
  conf = writeServerConfig(sc.topo.dir, {
    remoteip: '10.77.0.10-11',
    users: [{ user: 'alice', password: 'alice-pw' }],
  });
});

after(async () => {
  await sc?.destroy();
  try {
    if (lanNs) sh('ip', ['netns', 'del', lanNs]);
  } catch {
    /* already gone */
  }
});

test('bcrelay with an interface that does not exist: start-up fails, naming pptpd.conf:line', async () => {
  const bad = join(sc.topo.dir, 'pptpd-bad.conf');
  appendFileSync(
    bad,
    `option ${join(sc.topo.dir, 'options.pptpd')}\nlocalip 10.77.0.1\nremoteip 10.77.0.20-21\nbcrelay nosuch0\n`,
  );
  const p = sc.spawn('bad-server', sc.topo.server, serveArgs(bad, 'pptpbad0', join(sc.topo.dir, 'bad.sock')));
  assert.equal(await p.exited(20_000), 1, p.tail());
  assert.match(
    p.output,
    new RegExp(
      `${bad.replaceAll('.', '\\.')}:4: bcrelay nosuch0: there is no network interface "nosuch0" on this host`,
    ),
  );
});

test('bcrelay lan0: LAN broadcasts reach a connected client; unicast, TTL 1 and our own do not', async () => {
  appendFileSync(conf, 'bcrelay lan0\n'); // line 5, after writeServerConfig's `workers 1`
  const server = sc.spawn(
    'server',
    sc.topo.server,
    serveArgs(conf, 'pptpsrv0', join(sc.topo.dir, 'control.sock')),
  );
  sc.server = server;
  await server.waitFor(
    new RegExp(
      `broadcast relay \\(${conf.replaceAll('.', '\\.')}:5\\): UDP broadcasts to 255\\.255\\.255\\.255 and 192\\.168\\.77\\.255 received on lan0 go to every connected client`,
    ),
    15_000,
  );
  await server.waitFor(/listening on/, 15_000);

  const client = connectAlice('client', 'pptpcli0');
  await client.waitFor(/connected: pptpcli0 /, 20_000);
  await server.waitFor(/session up/, 10_000);
  const receiver = sc.spawn('receiver', sc.topo.clients[0]!, [process.execPath, '-e', RECEIVER]);
  await receiver.waitFor(/receiver ready/, 10_000);

  // Not relayed, sent first: unicast to the server, a TTL-1 broadcast, a broadcast of the server's own.
  const send = (ns: string, bind: string, msgs: string[]): Promise<unknown> =>
    sc.spawn('sender', ns, [process.execPath, '-e', SENDER, bind, ...msgs]).waitFor(/sent \d+/, 10_000);
  await send(lanNs, LAN_HOST, [`unicast-137 137 ${LAN_SERVER}`, 'ttl1-137 137 255.255.255.255 1']);
  await send(sc.topo.server, LAN_SERVER, ['own-137 137 192.168.77.255']);
  await server.waitFor(
    /dropped broadcast from lan0: TTL 1: not to be forwarded .*192\.168\.77\.20:\d+ -> 255\.255\.255\.255:137/,
    10_000,
  );
  await server.waitFor(
    /dropped broadcast from lan0: sent by this host .*192\.168\.77\.1:\d+ -> 192\.168\.77\.255:137/,
    10_000,
  );
  // Relayed: NetBIOS name service to the limited broadcast, another port to the directed broadcast.
  await send(lanNs, LAN_HOST, ['bcast-137 137 255.255.255.255', 'bcast-40000 40000 192.168.77.255']);

  await receiver.waitFor(/got 137 192\.168\.77\.20 bcast-137/, 10_000);
  await receiver.waitFor(/got 40000 192\.168\.77\.20 bcast-40000/, 10_000);
  // Everything took the same path in order: had the others been relayed, they would be here already.
  assert.doesNotMatch(receiver.output, /unicast-137|ttl1-137|own-137/);
  assert.equal(receiver.output.match(/^got /gm)?.length, 2, receiver.output);
  assert.equal(client.exitCode, undefined, 'the client is still connected');
  client.signal('SIGTERM');
});

test('bcrelay with workers 2: each worker relays to its own clients (here each on its own TUN device, as where the kernel refuses a shared one)', async () => {
  // The previous test's server holds port 1723.
  sc.server?.signal('SIGTERM');
  await sc.server?.exited(20_000);
  const server = sc.spawn('server-workers', sc.topo.server, [
    'env',
    'POPTOP_SHARED_TUN=off',
    ...serveArgs(conf, 'pptpwrk', join(sc.topo.dir, 'control-workers.sock')),
    '--workers',
    '2',
  ]);
  sc.server = server;
  await server.waitFor(/each worker opens its own TUN device \(pptpwrkw0 to pptpwrkw1\)/, 15_000);
  await server.waitFor(/worker 1 \(pid \d+\) ready on pptpwrkw1/, 15_000);
  await server.waitFor(/w0 broadcast relay .* received on lan0 go to every connected client/, 15_000);
  await server.waitFor(/w1 broadcast relay .* received on lan0 go to every connected client/, 15_000);
  await server.waitFor(/listening on .* for 2 workers/, 15_000);
  const client = connectAlice('client-workers', 'pptpcli1');
  await client.waitFor(/connected: pptpcli1 /, 20_000);
  await server.waitFor(/w0 \[s\d+ alice [^\]]*\] session up/, 10_000); // 10.231.0.2: worker 0
  const receiver = sc.spawn('receiver-workers', sc.topo.clients[0]!, [process.execPath, '-e', RECEIVER]);
  await receiver.waitFor(/receiver ready/, 10_000);
  await sc
    .spawn('sender', lanNs, [process.execPath, '-e', SENDER, LAN_HOST, 'wbcast-137 137 255.255.255.255'])
    .waitFor(/sent 1/, 10_000);
  await receiver.waitFor(/got 137 192\.168\.77\.20 wbcast-137/, 10_000);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(
    receiver.output.match(/wbcast-137/g)?.length,
    1,
    'one copy: worker 1 has no session to send it to',
  );
  client.signal('SIGTERM');
});
