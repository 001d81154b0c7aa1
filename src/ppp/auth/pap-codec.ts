import { ByteReader, ByteWriter } from '../../wire/bytes.ts';
import { ProtocolError } from '../../wire/errors.ts';

/** PAP codes (RFC 1334 §2.2). */
export const PapCode = { AuthenticateRequest: 1, AuthenticateAck: 2, AuthenticateNak: 3 } as const;

export type PapPacket =
  | { code: typeof PapCode.AuthenticateRequest; id: number; peerId: Uint8Array; password: Uint8Array }
  | {
      code: typeof PapCode.AuthenticateAck | typeof PapCode.AuthenticateNak;
      id: number;
      message: Uint8Array;
    };

/** Code, Identifier, Length. */
export const PAP_HEADER_LENGTH = 4;

/**
 * Decode one PAP packet (starting at the Code octet). Octets past the Length field are link padding
 * and ignored (RFC 1661 §5). Throws ProtocolError for a truncated packet, a Length field that does not
 * match the octets present or the field lengths inside it, or an unknown Code.
 *
 * An Ack/Nak without its Msg-Length octet (Length 4) is accepted with an empty message, as pppd does.
 */
export function decodePapPacket(bytes: Uint8Array): PapPacket {
  const head = new ByteReader(bytes, 'pap');
  const code = head.u8('Code');
  const id = head.u8('Identifier');
  const length = head.u16('Length');
  if (length < PAP_HEADER_LENGTH || length > bytes.length) {
    throw new ProtocolError('pap', 'BAD_LENGTH', `Length ${length} with ${bytes.length} octets present`);
  }
  const r = new ByteReader(bytes, 'pap', PAP_HEADER_LENGTH, length - PAP_HEADER_LENGTH);
  switch (code) {
    case PapCode.AuthenticateRequest: {
      const peerId = r.bytesView(r.u8('Peer-ID Length'), 'Peer-ID');
      const password = r.bytesView(r.u8('Passwd-Length'), 'Password');
      if (r.remaining !== 0) {
        throw new ProtocolError('pap', 'BAD_LENGTH', `${r.remaining} octets after the Password`);
      }
      return { code, id, peerId, password };
    }
    case PapCode.AuthenticateAck:
    case PapCode.AuthenticateNak: {
      if (r.remaining === 0) return { code, id, message: new Uint8Array(0) };
      const message = r.bytesView(r.u8('Msg-Length'), 'Message');
      if (r.remaining !== 0) {
        throw new ProtocolError('pap', 'BAD_LENGTH', `${r.remaining} octets after the Message`);
      }
      return { code, id, message };
    }
    default:
      throw new ProtocolError('pap', 'UNKNOWN_TYPE', `unknown PAP code ${code}`);
  }
}

/** Encode one PAP packet. Fields longer than 255 octets are a programming error (RangeError). */
export function encodePapPacket(p: PapPacket): Uint8Array {
  const w = new ByteWriter(PAP_HEADER_LENGTH + 64).u8(p.code).u8(p.id).u16(0);
  if (p.code === PapCode.AuthenticateRequest) {
    w.u8(checkFieldLength(p.peerId, 'Peer-ID')).bytes(p.peerId);
    w.u8(checkFieldLength(p.password, 'Password')).bytes(p.password);
  } else {
    w.u8(checkFieldLength(p.message, 'Message')).bytes(p.message);
  }
  return w.patchU16(2, w.length).finish();
}

function checkFieldLength(field: Uint8Array, what: string): number {
  if (field.length > 255) throw new RangeError(`PAP ${what} is ${field.length} octets, at most 255 fit`);
  return field.length;
}

/** A one-line description for debug logs; never includes the password. */
export function describePapPacket(p: PapPacket): string {
  switch (p.code) {
    case PapCode.AuthenticateRequest:
      return `[PAP AuthReq id=${p.id} user=${JSON.stringify(Buffer.from(p.peerId).toString('utf8'))}]`;
    case PapCode.AuthenticateAck:
      return `[PAP AuthAck id=${p.id}]`;
    case PapCode.AuthenticateNak:
      return `[PAP AuthNak id=${p.id}]`;
  }
}
