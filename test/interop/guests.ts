/**
 * The testbed's guests as objects: guest-client.sh (real pptp + pppd client) and guest-server.sh
 * (real pptpd). Each runs as an NsProcess of a Bed, so it is stopped by PID (SIGTERM: the guest
 * shuts down cleanly and the script removes its tap).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NsProcess } from '../e2e/netns.ts';
import { type Bed, HOST_IP, sh } from './testbed.ts';

/** The RESULT line's fields (`ppp_up`, `pppd_rc`, `auth`, `mppe`, ...) and the script's exit code. */
export type GuestResult = Record<string, string> & { exitCode: string };

function parseResult(output: string, code: number | null): GuestResult {
  const lines = output.split('\n').filter((l) => l.startsWith('RESULT: '));
  const last = lines.at(-1);
  if (!last) throw new Error(`no RESULT line (exit ${code}):\n${output.slice(-3000)}`);
  const fields: Record<string, string> = {};
  for (const w of last.slice(8).split(' ')) {
    const eq = w.indexOf('=');
    if (eq > 0) fields[w.slice(0, eq)] = w.slice(eq + 1);
  }
  return { ...fields, exitCode: String(code) };
}

export interface ClientOptions {
  user: string;
  password: string;
  /** pppd options appended to the peers file (`--options`). */
  options?: string;
  /** Replaces the default `require-mppe-128` (`--auth-options`). */
  authOptions?: string;
  /** Shell commands in the guest once the link is up ($REMOTE_IP, $LOCAL_IP, $IFNAME). */
  run?: string;
  runTimeout?: number;
  linkTimeout?: number;
  guestIp?: string;
  noPing?: boolean;
  /**
   * Replace Debian's /etc/ppp/options.pptp (refuse-pap refuse-chap refuse-mschap ...) by one
   * without refuse-* lines, so that `--auth-options` alone decides what the client accepts.
   * pppd has no option that undoes a refuse-*.
   */
  permissive?: boolean;
}

export class GuestClient {
  readonly proc: NsProcess;
  readonly startedAt = Date.now();

  constructor(bed: Bed, name: string, o: ClientOptions) {
    const args = [
      join(bed.dir, 'guest-client.sh'),
      '--server',
      HOST_IP,
      '--user',
      o.user,
      '--password',
      o.password,
    ];
    if (o.options) args.push('--options', o.options);
    if (o.authOptions !== undefined) args.push('--auth-options', o.authOptions);
    if (o.run) args.push('--run', o.run, '--run-timeout', String(o.runTimeout ?? 120));
    if (o.linkTimeout) args.push('--link-timeout', String(o.linkTimeout));
    if (o.guestIp) args.push('--guest-ip', o.guestIp);
    if (o.noPing) args.push('--no-ping');
    this.proc = bed.spawn(`guest:${name}`, args, { PPTB_INITRD: clientInitrd(bed, o.permissive === true) });
  }

  /** Resolves when pppd's interface has both its addresses: the guest's and the server's tunnel addresses. */
  async linkUp(ms = 60_000): Promise<{ local: string; remote: string; seconds: number }> {
    const m = await this.proc.waitFor(/LINK_UP if=\S+ local=(\S+) remote=(\S*)/, ms);
    return { local: m[1]!, remote: m[2]!, seconds: (Date.now() - this.startedAt) / 1000 };
  }

  /** The guest's tap in the namespace (for tc). */
  async tap(ms = 30_000): Promise<string> {
    return (await this.proc.waitFor(/ on (pptbt\d+)/, ms))[1]!;
  }

  /**
   * Waits for the script to end and returns its RESULT line. A guest whose NIC stalled
   * (guestNicStalled) sends nothing more for the rest of its life: it is stopped at once (SIGTERM:
   * it still writes its RESULT line) instead of running into its own timeouts, up to minutes.
   */
  async result(ms = 240_000): Promise<GuestResult> {
    let stopped = false;
    const watch = setInterval(() => {
      if (!stopped && guestNicStalled(this)) {
        stopped = true;
        this.proc.signal('SIGTERM');
      }
    }, 1000);
    try {
      const code = await this.proc.exited(ms);
      return parseResult(this.proc.output, code);
    } finally {
      clearInterval(watch);
    }
  }

  /** What the --run commands printed. */
  runOutput(): string {
    const m = this.proc.output.match(/----- --run output begin -----\n([\s\S]*?)----- --run output end/);
    return m?.[1] ?? '';
  }

  /** The guest's syslog lines of pppd. */
  pppdLog(): string {
    return this.proc.output
      .split('\n')
      .filter((l) => /pppd\[\d+\]/.test(l))
      .join('\n');
  }
}

/**
 * Whether the guest kernel's transmit watchdog fired on its virtio NIC ("NETDEV WATCHDOG: ...
 * transmit queue 0 timed out"): the emulated NIC stopped sending, so nothing the guest sent
 * afterwards (acks, echo replies, data) left the VM. Seen under TCG now and then, mid-transfer,
 * for the rest of the guest's life. No peer can cause it: QEMU no longer takes the guest's frames.
 */
export function guestNicStalled(g: GuestClient): boolean {
  return /NETDEV WATCHDOG: .*transmit queue \d+ timed out/.test(g.proc.output);
}

/**
 * Whether the guest's pptp sent its Outgoing-Call-Request but the server (logging at debug) never
 * received one from `guestIp`: the request and every TCP retransmission of it were lost between
 * the guest and the host. Seen once under TCG with no watchdog line: the guest had received the
 * Start-Control-Connection-Reply, and the server's log had nothing more from it for 24 s. Our side
 * cannot lose bytes of a TCP stream it reads, so this tells an emulation fault from a server fault.
 */
export function callRequestLost(g: GuestClient, serverLog: string, guestIp: string): boolean {
  const sent = /Sent control packet type is 7 'Outgoing-Call-Request'/.test(g.proc.output);
  const ip = guestIp.replaceAll('.', '\\.');
  const received = new RegExp(`\\[s\\d+ \\S+ ${ip}\\] pptp: recv \\[Outgoing-Call-Request`).test(serverLog);
  return sent && !received;
}

/**
 * A client guest that must bring the link up. Under TCG a guest now and then stalls before its
 * link comes up for reasons of the emulation, not of the peer (seen once in a full CI-like run,
 * and never reproduced alone); one retry with a fresh guest tells such a stall from a real failure,
 * which fails twice. The first attempt's RESULT line is reported through `note`.
 */
export async function clientWithLink(
  bed: Bed,
  name: string,
  o: ClientOptions,
  note: (text: string) => void,
): Promise<{ g: GuestClient; r: GuestResult }> {
  const first = new GuestClient(bed, name, o);
  const r1 = await first.result();
  if (r1.ppp_up === '1' && !guestNicStalled(first)) return { g: first, r: r1 };
  const line =
    first.proc.output
      .split('\n')
      .filter((l) => l.startsWith('RESULT: '))
      .at(-1) ?? '(no RESULT line)';
  const why = guestNicStalled(first)
    ? 'the guest NIC stalled (NETDEV WATCHDOG)'
    : 'did not bring the link up';
  note(`first attempt: ${why}, retrying once: ${line}`);
  const g = new GuestClient(bed, `${name}-retry`, o);
  return { g, r: await g.result() };
}

/** A client guest whose link is up, and its tap. */
export async function guestWithLinkUp(
  bed: Bed,
  name: string,
  o: ClientOptions,
): Promise<{ g: GuestClient; tap: string; up: Awaited<ReturnType<GuestClient['linkUp']>> }> {
  const g = new GuestClient(bed, name, o);
  const tap = await g.tap();
  const up = await g.linkUp();
  return { g, tap, up };
}

/**
 * The testbed's guest polls `ip addr` every 0.1 s for pppd's interface, and took the first `inet`
 * line as the link being up. pppd sets the interface's address and its peer's address in two
 * ioctls, so now and then (seen in CI, in several tests) the poll caught the line in between: the
 * guest then reported `local_ip=A/32`, no remote address, and its ping and `--run` had no peer to
 * use. The client guests run with the same /init, whose poll waits for the line with `peer`. The
 * line is replaced by its exact text: a testbed whose /init changed fails here, not in a test.
 */
const POLL_LINE = "grep -E '^[0-9]+: ppp[0-9]+ +inet ' | head -1";
const POLL_WITH_PEER = "grep -E '^[0-9]+: ppp[0-9]+ +inet [0-9.]+ peer ' | head -1";

/**
 * The base initramfs + an archive that replaces /init (the poll above) and, when `permissive`,
 * /etc/ppp/options.pptp by one without refuse-* lines. Built once per Bed and kind; the kernel
 * unpacks the archives in order, so the later files replace the earlier.
 */
function clientInitrd(bed: Bed, permissive: boolean): string {
  const kind = permissive ? 'client-permissive' : 'client';
  const out = join(bed.work, `initrd-${kind}.img`);
  if (existsSync(out)) return out;
  const cache = process.env.PPTB_CACHE ?? '/var/cache/pptp-testbed';
  const base = process.env.PPTB_INITRD ?? join(cache, 'initramfs.cpio.gz');
  const init = readFileSync(join(bed.dir, 'guest', 'init'), 'utf8');
  if (init.split(POLL_LINE).length !== 2) {
    throw new Error(`the testbed's guest/init no longer polls with: ${POLL_LINE}`);
  }
  const root = join(bed.work, `overlay-${kind}`);
  sh('mkdir', ['-p', permissive ? join(root, 'etc/ppp') : root]);
  writeFileSync(join(root, 'init'), init.replace(POLL_LINE, POLL_WITH_PEER), { mode: 0o755 });
  if (permissive) {
    writeFileSync(join(root, 'etc/ppp/options.pptp'), 'lock\nnoauth\nrefuse-eap\nnobsdcomp\nnodeflate\n');
  }
  const script = `cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -1 > "$2.overlay" && cat "$3" "$2.overlay" > "$2"`;
  sh('sh', ['-c', script, 'sh', root, out, base]);
  return out;
}

export interface ServerGuestOptions {
  users: string;
  hold?: number;
  run?: string;
  guestIp?: string;
}

/** guest-server.sh: the real pptpd 1.4.0 + pppd 2.4.9 (MS-CHAPv2, MPPE-128 required). */
export class GuestServer {
  readonly proc: NsProcess;

  constructor(bed: Bed, name: string, o: ServerGuestOptions) {
    const args = [join(bed.dir, 'guest-server.sh'), '--hold', String(o.hold ?? 600), '--users', o.users];
    if (o.run) args.push('--run', o.run);
    if (o.guestIp) args.push('--guest-ip', o.guestIp);
    this.proc = bed.spawn(`pptpd:${name}`, args);
  }

  /** Resolves with the server's address once pptpd listens. */
  async ready(ms = 90_000): Promise<string> {
    const ip = await this.proc.waitFor(/^SERVER_IP=(\S+)/m, ms);
    await this.proc.waitFor(/^SERVER_READY=1/m, ms);
    return ip[1]!;
  }

  /** SIGTERM: pptpd terminates its pppd sessions and the guest powers off; returns its RESULT. */
  async stop(ms = 60_000): Promise<GuestResult> {
    this.proc.signal('SIGTERM');
    const code = await this.proc.exited(ms);
    return parseResult(this.proc.output, code);
  }
}
