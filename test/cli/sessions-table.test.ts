import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatSessions } from '../../src/cli/main.ts';
import type { SessionInfo } from '../../src/server/session.ts';
import { terminalText } from '../../src/util/escape.ts';

const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

function session(user: string | null): SessionInfo {
  return {
    id: 's1',
    user,
    peer: '203.0.113.5',
    ip: '10.77.0.10',
    auth: 'mschapv2',
    mppe: '128-bit stateless',
    state: 'up',
    uptimeS: 65,
    bytesIn: 2048,
    bytesOut: 10,
    packetsIn: 3,
    packetsOut: 1,
  };
}

describe('poptop sessions table', () => {
  it('escapes a user name that holds line breaks and terminal escape sequences', () => {
    const out = formatSessions([session('eve\n s2 root 1.2.3.4\u001b[2J\u001b]0;x\u0007\u009b\u202e')]);
    assert.equal(out.split('\n').length, 3, out); // header, one row, final newline
    assert.equal(CONTROL.test(out), false, JSON.stringify(out));
    assert.match(out, /eve\\n s2 root 1\.2\.3\.4\\x1b\[2J\\x1b\]0;x\\x07\\x9b\\u\{202e\}/);
  });

  it('keeps ordinary rows as they were', () => {
    const out = formatSessions([session('alice'), session(null)]);
    assert.match(out, /^ID {2}USER {3}PEER/);
    assert.match(out, /s1 {2}alice {2}203\.0\.113\.5 {2}10\.77\.0\.10 {2}mschapv2/);
    assert.match(out, /s1 {2}- {6}203\.0\.113\.5/);
  });

  it('terminalText keeps line breaks of a message and escapes the rest', () => {
    assert.equal(terminalText('a\nb\u001b[1m'), 'a\nb\\x1b[1m');
  });
});
