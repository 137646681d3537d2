import { BlockList, isIPv4, isIPv6 } from 'node:net';

/**
 * IP addresses and CIDR ranges, as pure functions: what kind of address one is (public, loopback,
 * private, link-local...), the IPv4 address an IPv6 form carries, CIDR parsing. Used wherever an
 * address decides something: the redirect policy, token network restrictions, config checks.
 *
 * Special-purpose blocks (RFC 6890 and its updates) are named by what they are; everything else is
 * public. IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4) are
 * judged by that address.
 */

export type AddressClass =
  'public' | 'loopback' | 'private' | 'link-local' | 'unspecified' | 'multicast' | 'reserved' | 'invalid';

const IPV4_BLOCKS: readonly [string, number, AddressClass][] = [
  ['0.0.0.0', 8, 'unspecified'], // "this network"
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'private'], // carrier-grade NAT, shared address space
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'], // cloud metadata services live here
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'], // IETF protocol assignments
  ['192.0.2.0', 24, 'reserved'], // documentation
  ['192.88.99.0', 24, 'reserved'], // 6to4 relay anycast
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'reserved'], // benchmarking
  ['198.51.100.0', 24, 'reserved'], // documentation
  ['203.0.113.0', 24, 'reserved'], // documentation
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'], // reserved, and 255.255.255.255 broadcast
];

const IPV6_BLOCKS: readonly [string, number, AddressClass][] = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['100::', 64, 'reserved'], // discard-only
  ['2001::', 23, 'reserved'], // IETF protocol assignments (Teredo, ORCHID, ...)
  ['2001:db8::', 32, 'reserved'], // documentation
  ['fc00::', 7, 'private'], // unique local
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'private'], // site-local (deprecated)
  ['ff00::', 8, 'multicast'],
];

function blockLists(
  entries: readonly [string, number, AddressClass][],
  family: 'ipv4' | 'ipv6',
): [BlockList, AddressClass][] {
  return entries.map(([network, prefix, cls]) => {
    const list = new BlockList();
    list.addSubnet(network, prefix, family);
    return [list, cls];
  });
}
const V4 = blockLists(IPV4_BLOCKS, 'ipv4');
const V6 = blockLists(IPV6_BLOCKS, 'ipv6');

/** The eight 16-bit groups of an IPv6 address (no zone, no brackets), or undefined. */
export function ipv6Groups(address: string): number[] | undefined {
  if (!isIPv6(address)) return undefined;
  let text = address.toLowerCase();
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    // A dotted IPv4 tail (::ffff:127.0.0.1) is two groups written another way.
    const [a, b, c, d] = tail.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((h) => parseInt(h, 16)));
  const halves = text.split('::');
  const left = parse(halves[0]!);
  const right = halves.length > 1 ? parse(halves[1]!) : [];
  const groups =
    halves.length > 1 ? [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right] : left;
  return groups.length === 8 ? groups : undefined;
}

/**
 * The IPv4 address an IPv6 address carries, when it is one of the forms that route to it:
 * IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d, deprecated), NAT64 (64:ff9b::/96)
 * and 6to4 (2002:AABB:CCDD::/48).
 */
export function embeddedIPv4(address: string): string | undefined {
  const g = ipv6Groups(address);
  if (!g) return undefined;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && g[5] === 0xffff) return v4(g[6]!, g[7]!);
  if (zeros(0, 6) && (g[6] !== 0 || g[7]! > 1)) return v4(g[6]!, g[7]!); // not :: or ::1
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return v4(g[6]!, g[7]!);
  if (g[0] === 0x2002) return v4(g[1]!, g[2]!);
  return undefined;
}

/** What kind of address `address` is (an IP literal: no brackets, no zone). */
export function classifyAddress(address: string): AddressClass {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  if (isIPv4(bare)) {
    for (const [list, cls] of V4) if (list.check(bare, 'ipv4')) return cls;
    return 'public';
  }
  if (!isIPv6(bare) || bare.includes('%')) return 'invalid';
  const inner = embeddedIPv4(bare);
  if (inner !== undefined) return classifyAddress(inner);
  for (const [list, cls] of V6) if (list.check(bare, 'ipv6')) return cls;
  return 'public';
}

/** `10.1.0.0/16`, `fd00::/8` or a bare address (a /32 or /128): [network, prefix], or undefined. */
export function parseCidr(value: string): [string, number] | undefined {
  const slash = value.indexOf('/');
  const network = normaliseAddress(slash < 0 ? value : value.slice(0, slash));
  const max = isIPv4(network) ? 32 : isIPv6(network) ? 128 : 0;
  if (max === 0) return undefined;
  if (slash < 0) return [network, max];
  const text = value.slice(slash + 1);
  if (!/^\d{1,3}$/.test(text) || Number(text) > max) return undefined;
  return [network, Number(text)];
}

export function normaliseAddress(address: string): string {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  return bare.toLowerCase();
}
