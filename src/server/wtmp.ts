import { appendFile } from 'node:fs/promises';
import { escapeControls } from '../util/escape.ts';

/**
 * wtmp records (utmp(5)), so `last` shows VPN sessions as pptpd's logwtmp plugin made it do: a
 * USER_PROCESS record when a session comes up (line, user, client address) and a DEAD_PROCESS
 * record on the same line when it ends. glibc's `struct utmp` layout, which differs by
 * architecture only in the width of ut_session and ut_tv.
 */

/** ut_type values (utmp.h). */
const USER_PROCESS = 7;
const DEAD_PROCESS = 8;

const LINE = 8;
const LINE_SIZE = 32;
const ID = 40;
const USER = 44;
const USER_SIZE = 32;
const HOST = 76;
const HOST_SIZE = 256;
const SESSION = 336;

interface Layout {
  size: number;
  /** ut_session, ut_tv.tv_sec, ut_tv.tv_usec: 4 or 8 octets each. */
  wide: boolean;
  addrV6: number;
}

/** x86_64 keeps 32-bit session and time fields (__WORDSIZE_TIME64_COMPAT32); 64-bit ABIs without it widen them. */
const LAYOUTS: Partial<Record<NodeJS.Architecture, Layout>> = {
  x64: { size: 384, wide: false, addrV6: 348 },
  arm64: { size: 400, wide: true, addrV6: 360 },
};

/** The record layout of this machine, or undefined where we do not know it. */
export function wtmpLayout(arch: NodeJS.Architecture = process.arch): Layout | undefined {
  return LAYOUTS[arch];
}

export interface WtmpEntry {
  /** The session's line (unique per session: matched by `last` between login and logout). */
  line: string;
  /** Empty for a logout. */
  user: string;
  /** The client's address, for a login. */
  host: string;
  /** IPv4 of the client (host order), or 0. */
  address: number;
  pid: number;
  timeMs: number;
}

function putText(buf: Buffer, offset: number, size: number, text: string): void {
  // Truncated to the field; NUL padding is already there. Control characters (C0, C1, bidi
  // overrides) never reach the file: `last` prints these fields to a terminal.
  buf.write(escapeControls(text), offset, size, 'utf8');
}

/** One record; `login` false makes the DEAD_PROCESS record that closes `line`. */
export function wtmpRecord(entry: WtmpEntry, login: boolean, layout: Layout): Buffer {
  const b = Buffer.alloc(layout.size);
  b.writeInt16LE(login ? USER_PROCESS : DEAD_PROCESS, 0);
  b.writeInt32LE(entry.pid, 4);
  putText(b, LINE, LINE_SIZE, entry.line);
  putText(b, ID, 4, entry.line.slice(-4));
  if (login) {
    putText(b, USER, USER_SIZE, entry.user);
    putText(b, HOST, HOST_SIZE, entry.host);
  }
  const sec = Math.floor(entry.timeMs / 1000);
  const usec = Math.floor((entry.timeMs % 1000) * 1000);
  if (layout.wide) {
    b.writeBigInt64LE(0n, SESSION);
    b.writeBigInt64LE(BigInt(sec), SESSION + 8);
    b.writeBigInt64LE(BigInt(usec), SESSION + 16);
  } else {
    b.writeInt32LE(0, SESSION);
    b.writeInt32LE(sec | 0, SESSION + 4);
    b.writeInt32LE(usec, SESSION + 8);
  }
  // ut_addr_v6[0] holds an IPv4 address in network order.
  if (login) b.writeUInt32BE(entry.address >>> 0, layout.addrV6);
  return b;
}

/** Appends records to a wtmp file (O_APPEND: each record lands whole). */
export class WtmpWriter {
  private readonly path: string;
  private readonly layout: Layout;

  constructor(path: string, layout: Layout) {
    this.path = path;
    this.layout = layout;
  }

  login(entry: WtmpEntry): Promise<void> {
    return appendFile(this.path, wtmpRecord(entry, true, this.layout));
  }

  logout(entry: WtmpEntry): Promise<void> {
    return appendFile(this.path, wtmpRecord(entry, false, this.layout));
  }
}
