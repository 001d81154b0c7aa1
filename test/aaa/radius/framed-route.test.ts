import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeFramedRoute, parseFramedRoute } from '../../../src/aaa/radius/framed-route.ts';
import { formatIPv4 } from '../../../src/wire/ip.ts';

const show = (text: string) => {
  const r = parseFramedRoute(text);
  return typeof r === 'string' ? r : `${describeFramedRoute(r)} gw ${formatIPv4(r.gateway)}`;
};

test('Framed-Route forms: dest/len, gateway and metric, classful without a length, a netmask', () => {
  const rows: [string, string][] = [
    ['192.0.2.0/24', '192.0.2.0/24 gw 0.0.0.0'],
    ['192.0.2.0/24 0.0.0.0 5', '192.0.2.0/24 metric 5 gw 0.0.0.0'],
    ['  10.1.0.0/16\t10.77.0.50 1 2 -1 3 400 ', '10.1.0.0/16 metric 1 gw 10.77.0.50'],
    ['10.1.0.0/16 0.0.0.0 -1', '10.1.0.0/16 gw 0.0.0.0'],
    ['10.0.0.0 0.0.0.0 1', '10.0.0.0/8 metric 1 gw 0.0.0.0'],
    ['172.16.0.0', '172.16.0.0/16 gw 0.0.0.0'],
    ['192.168.7.0 0.0.0.0', '192.168.7.0/24 gw 0.0.0.0'],
    ['192.0.2.0 255.255.255.0 0.0.0.0 2', '192.0.2.0/24 metric 2 gw 0.0.0.0'],
    ['192.0.2.4 255.255.255.252', '192.0.2.4/30 gw 0.0.0.0'],
    ['192.0.2.9/32', '192.0.2.9/32 gw 0.0.0.0'],
    ['0.0.0.0/0 0.0.0.0', '0.0.0.0/0 gw 0.0.0.0'],
  ];
  for (const [text, expected] of rows) assert.equal(show(text), expected, text);
});

test('malformed Framed-Route values: the problem in words, the value quoted with its controls escaped', () => {
  const rows: [string, string][] = [
    ['', 'Framed-Route "" is empty'],
    [
      'example.net/24',
      'Framed-Route "example.net/24" does not start with an IPv4 destination (a.b.c.d[/length])',
    ],
    ['192.0.2.0/33', 'Framed-Route "192.0.2.0/33" has a length that is not 0 to 32'],
    ['192.0.2.0/', 'Framed-Route "192.0.2.0/" has a length that is not 0 to 32'],
    ['192.0.2.0/2x', 'Framed-Route "192.0.2.0/2x" has a length that is not 0 to 32'],
    [
      '192.0.2.1/24',
      'Framed-Route "192.0.2.1/24" has host bits set: 192.0.2.1 is not the start of a /24 (192.0.2.0/24 is)',
    ],
    ['224.1.0.0 0.0.0.0', 'Framed-Route "224.1.0.0 0.0.0.0" has no /length and a class D or E destination'],
    ['192.0.2.0/24 gateway', 'Framed-Route "192.0.2.0/24 gateway" has a gateway that is not an IPv4 address'],
    [
      '192.0.2.0/24 0.0.0.0 high',
      'Framed-Route "192.0.2.0/24 0.0.0.0 high" has a metric that is not a number',
    ],
    [
      '192.0.2.0/24 0.0.0.0 99999999999',
      'Framed-Route "192.0.2.0/24 0.0.0.0 99999999999" has a metric that is not a number',
    ],
    ['10.0.0.0/8\u001b[31m', 'Framed-Route "10.0.0.0/8\\x1b[31m" has a length that is not 0 to 32'],
    [
      '10.0.0.0/8 0.0.0.0\n1',
      'Framed-Route "10.0.0.0/8 0.0.0.0\\n1" has a gateway that is not an IPv4 address',
    ],
  ];
  for (const [text, expected] of rows) assert.equal(parseFramedRoute(text), expected, JSON.stringify(text));
});
