import { type InterfaceAddress, IpRoute } from '../net/iproute.ts';
import { RawIpSocket } from '../net/raw-ip-socket.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import { formatIPv4 } from '../wire/ip.ts';
import { BroadcastRelay, broadcastFilter, type RelayTargets } from './bcrelay.ts';
import type { ServerSettings } from './settings.ts';

const IPPROTO_UDP = 17;

/** What the relay receives from: a raw socket on IF (a fake in tests). */
export interface RelaySource {
  onPacket(cb: (packet: Uint8Array) => void): void;
  close(): void;
}

export interface StartBroadcastRelayOptions {
  bcrelay: NonNullable<ServerSettings['bcrelay']>;
  /** The server: its sessions and its current settings (the pool and localip). */
  server: RelayTargets & { readonly currentSettings: ServerSettings };
  clock: Clock;
  log: Logger;
  /** Free bytes before each copy (TUNNEL_HEADROOM). */
  headroom: number;
  /** @default new IpRoute() */
  ip?: Pick<IpRoute, 'addresses'>;
  /** @default a RawIpSocket for UDP bound to the interface */
  open?: (ifname: string, filter: Uint8Array) => RelaySource;
}

/**
 * `bcrelay IF` at start-up: reads IF's addresses once (`ip -j addr`), opens a raw UDP socket bound
 * to IF with a kernel filter for its broadcast destinations, and feeds the relay. Rejects with an
 * Error naming the keyword's file:line when IF does not exist or the socket cannot be opened.
 */
export async function startBroadcastRelay(
  o: StartBroadcastRelayOptions,
): Promise<{ relay: BroadcastRelay; close(): void }> {
  const { ifname, at } = o.bcrelay;
  let addrs: InterfaceAddress[];
  try {
    addrs = await (o.ip ?? new IpRoute()).addresses();
  } catch (e) {
    throw new Error(`${at}: bcrelay ${ifname}: cannot read the host's addresses: ${(e as Error).message}`);
  }
  const onIf = addrs.filter((a) => a.ifname === ifname);
  const relay = new BroadcastRelay({
    ifname,
    interfaceAddresses: onIf,
    hostAddresses: [...addrs.map((a) => a.address), ...o.server.currentSettings.localIps],
    clientPool: () => o.server.currentSettings.remoteIps,
    targets: o.server,
    clock: o.clock,
    log: o.log.child('bcrelay:'),
    headroom: o.headroom,
  });
  const open =
    o.open ??
    ((name: string, filter: Uint8Array) =>
      new RawIpSocket({ protocol: IPPROTO_UDP, ifname: name, filter, log: o.log }));
  let source: RelaySource;
  try {
    source = open(ifname, broadcastFilter(relay.destinations));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENODEV') {
      throw new Error(`${at}: bcrelay ${ifname}: there is no network interface "${ifname}" on this host`);
    }
    throw new Error(`${at}: bcrelay ${ifname}: cannot receive broadcasts on it: ${err.message}`);
  }
  source.onPacket((p) => relay.receive(p));
  const to = relay.destinations.map(formatIPv4).join(' and ');
  const noAddress =
    onIf.length === 0 ? ` (${ifname} has no IPv4 address yet: only 255.255.255.255 is relayed)` : '';
  o.log.info(
    `broadcast relay (${at}): UDP broadcasts to ${to} received on ${ifname} go to every connected client, at most ${relay.rate} a second${noAddress}`,
  );
  return { relay, close: () => source.close() };
}
