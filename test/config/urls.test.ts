import { describe, expect, it } from 'vitest';
import { isLoopbackHost, showUrl } from '../../src/config/index.js';

describe('isLoopbackHost', () => {
  it.each([
    '127.0.0.1',
    '127.0.0.2',
    '127.255.255.254',
    '127.1',
    '0x7f.0.0.1',
    '0177.0.0.1',
    '2130706433',
    '::1',
    '[::1]',
    '0:0:0:0:0:0:0:1',
    'localhost',
    'LOCALHOST',
  ])('takes %s for loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(true);
  });

  it.each([
    '0.0.0.0',
    '::',
    '10.1.2.3',
    '128.0.0.1',
    '127.0.0.1.example.com',
    'localhost.example.com',
    '127.0.0.1:80',
    'user@127.0.0.1',
    '127.0.0.1/x',
    '',
    '[::2]',
  ])('does not take %s for loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(false);
  });
});

describe('showUrl', () => {
  it.each([
    ['ftp://x', 'ftp://x'],
    ['http://127.0.0.1:1/', 'http://127.0.0.1:1'],
    ['https://h:443', 'https://h:443'],
    ['http://user:SECRET@127.0.0.1:1/', 'http://***@127.0.0.1:1'],
    ['https://hooks.example.com/services/SECRET?x=1', 'https://hooks.example.com/…'],
    ['https://hooks.example.com?token=SECRET', 'https://hooks.example.com/…'],
    ['redis://:SECRET@h:6379/0', 'redis://***@h:6379/…'],
    ['redis-sentinel://:SECRET@h1:1,h2:2/name', 'redis-sentinel://***@h1:1,h2:2/…'],
    ['https://host/x?a=b@SECRET', 'https://…'],
    ['http://u:pa/SECRET@host/', 'http://…'],
    ['http://SE CRET@host', 'http://***@host'],
  ])('shows %s as %s', (value, shown) => {
    expect(showUrl(value)).toBe(shown);
  });

  it('shows nothing of a value that is not scheme://…', () => {
    expect(showUrl('SECRET')).toBeUndefined();
    expect(showUrl('redis:SECRET')).toBeUndefined();
  });
});
