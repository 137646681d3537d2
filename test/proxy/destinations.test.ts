import { describe, expect, it } from 'vitest';
import { classifyAddress, embeddedIPv4, ipv6Groups, parseCidr } from '../../src/net/addresses.js';
import { createDestinationPolicy } from '../../src/proxy/forward/destinations.js';

/** A URL's host as the gateway sees it after the WHATWG parser (decimal, octal and hex IPv4 spellings normalised). */
const hostOf = (url: string) => new URL(url).hostname;

describe('the address policy for followed redirects (pure)', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.5.4', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fc00::1', 'private'],
    ['fec0::1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['8.8.8.8', 'public'],
    ['172.32.0.1', 'public'],
    ['100.128.0.1', 'public'],
    ['2606:4700::1111', 'public'],
    ['example.com', 'invalid'],
    ['fe80::1%eth0', 'invalid'],
    ['', 'invalid'],
  ])('classifies %s as %s', (address, expected) => {
    expect(classifyAddress(address)).toBe(expected);
  });

  it.each([
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:10.1.2.3', 'private'],
    ['::127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['2002:7f00:1::1', 'loopback'],
    ['2002:c0a8:101::', 'private'],
    ['::ffff:8.8.8.8', 'public'],
  ])('judges the IPv6 form %s by the IPv4 address it carries (%s)', (address, expected) => {
    expect(classifyAddress(address)).toBe(expected);
  });

  it.each([
    ['http://2130706433/', '127.0.0.1'],
    ['http://0177.0.0.1/', '127.0.0.1'],
    ['http://0x7f.1/', '127.0.0.1'],
    ['http://127.1/', '127.0.0.1'],
    ['http://017700000001/', '127.0.0.1'],
    ['http://0xa9.0xfe.0xa9.0xfe/', '169.254.169.254'],
    ['http://[::ffff:127.0.0.1]/', '[::ffff:7f00:1]'],
    ['http://[0:0:0:0:0:0:0:1]/', '[::1]'],
  ])('sees through the host spelling %s (the URL parser makes it %s) and refuses it', (url, host) => {
    expect(hostOf(url)).toBe(host);
    expect(classifyAddress(hostOf(url))).not.toBe('public');
  });

  it('expands IPv6 addresses and finds embedded IPv4 ones', () => {
    expect(ipv6Groups('::1')).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(ipv6Groups('1:2:3:4:5:6:7:8')).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(ipv6Groups('::ffff:1.2.3.4')).toEqual([0, 0, 0, 0, 0, 0xffff, 0x102, 0x304]);
    expect(ipv6Groups('not-an-address')).toBeUndefined();
    expect(embeddedIPv4('::ffff:1.2.3.4')).toBe('1.2.3.4');
    expect(embeddedIPv4('::1')).toBeUndefined();
    expect(embeddedIPv4('2606:4700::1111')).toBeUndefined();
  });

  it('parses CIDRs and refuses what is not one', () => {
    expect(parseCidr('10.1.0.0/16')).toEqual(['10.1.0.0', 16]);
    expect(parseCidr('fd00::/8')).toEqual(['fd00::', 8]);
    expect(parseCidr('192.168.1.7')).toEqual(['192.168.1.7', 32]);
    for (const bad of ['10.1.0.0/33', 'fd00::/129', 'storage.internal/8', '10.1.0.0/', '10.1.0.0/1a', ''])
      expect(parseCidr(bad)).toBeUndefined();
  });

  describe('a route policy', () => {
    const own = [
      { address: '0.0.0.0', port: 8080 },
      { address: '127.0.0.1', port: 9090 },
    ];

    it('allows public addresses only by default, and never the gateway itself', () => {
      const policy = createDestinationPolicy({
        followRedirects: { hosts: [], cidrs: [] },
        ownListeners: own,
        localAddresses: ['192.0.2.10'],
      });
      expect(policy.byName('storage.example', 443)).toBe('check-address');
      expect(policy.address('8.8.8.8', 443, false)).toEqual({ ok: true });
      for (const address of [
        '127.0.0.1',
        '10.1.2.3',
        '169.254.169.254',
        '::1',
        'fe80::1',
        '0.0.0.0',
        '::ffff:127.0.0.1',
      ]) {
        expect(policy.address(address, 443, false).ok, address).toBe(false);
      }
      expect(policy.address('169.254.169.254', 80, false)).toEqual({
        ok: false,
        reason: expect.stringContaining('link-local') as string,
      });
    });

    it("allows the hosts and CIDRs a route lists, but not the gateway's own listeners even then", () => {
      const policy = createDestinationPolicy({
        followRedirects: { hosts: ['Storage.Internal'], cidrs: ['10.1.0.0/16', '127.0.0.0/8'] },
        ownListeners: own,
        localAddresses: ['192.0.2.10'],
      });
      expect(policy.byName('storage.internal', 9000)).toBe('allowed');
      expect(policy.address('10.9.9.9', 9000, true)).toEqual({ ok: true });
      expect(policy.address('10.1.200.3', 9000, false)).toEqual({ ok: true });
      expect(policy.address('10.2.0.1', 9000, false).ok).toBe(false);
      expect(policy.address('127.0.0.1', 9000, false)).toEqual({ ok: true });
      expect(policy.address('127.0.0.1', 9090, false).ok).toBe(false); // the admin listener
      expect(policy.address('127.0.0.2', 8080, false).ok).toBe(false); // the proxy listener, bound to every address
      expect(policy.address('192.0.2.10', 8080, true).ok).toBe(false); // this host's interface, even by name
      expect(policy.address('::ffff:127.0.0.1', 9090, false).ok).toBe(false);
    });

    it('refuses every redirect when following is off', () => {
      const policy = createDestinationPolicy({ followRedirects: false });
      expect(policy.byName('storage.example', 443)).toBe('refused');
    });

    it("allows the route's own upstream origin by name", () => {
      const policy = createDestinationPolicy({
        followRedirects: { hosts: [], cidrs: [] },
        trustedOrigins: ['registry.internal:8081'],
      });
      expect(policy.byName('registry.internal', 8081)).toBe('allowed');
      expect(policy.byName('registry.internal', 8082)).toBe('check-address');
    });
  });
});
