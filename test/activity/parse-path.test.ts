import { describe, expect, it } from 'vitest';
import { ECOSYSTEMS, type Ecosystem } from '../../src/config/schema.js';
import {
  createArtifactPathParser,
  isSealedVersion,
  MAX_PARSED_PATH_CHARS,
  MAX_REMEMBERED_PATH_CHARS,
  parseArtifactPath,
  type ArtifactRef,
} from '../../src/artifacts/parse-path/index.js';
import { GENERIC, PATHS } from './fixtures/paths.js';

const lastSegment = (path: string): string | null => {
  const p = path.split('?')[0]!;
  if (p.endsWith('/')) return null;
  const raw = p.slice(p.lastIndexOf('/') + 1);
  return raw === '' ? null : decodeURIComponent(raw);
};

describe('parseArtifactPath', () => {
  for (const [ecosystem, rows] of Object.entries(PATHS) as [Ecosystem, (typeof PATHS)['npm']][]) {
    describe(ecosystem, () => {
      it.each(rows)('%s: %s', (_behaviour, path, kind, pkg, version, sealed) => {
        expect(parseArtifactPath(ecosystem, path)).toEqual<ArtifactRef>({
          ecosystem,
          kind,
          package: pkg,
          version,
          file: lastSegment(path),
          sealed,
        });
      });
    });
  }

  describe('generic routes', () => {
    it.each(GENERIC)('%s: %s', (_behaviour, path, ecosystem, kind, pkg, version) => {
      expect(parseArtifactPath('generic', path)).toMatchObject({
        ecosystem,
        kind,
        package: pkg,
        version,
        file: lastSegment(path),
      });
    });

    it('keeps the route ecosystem when it is pinned, even for a path another ecosystem would claim', () => {
      // A wheel-looking file on a Maven route is still Maven (and not in Maven layout: nulls).
      expect(parseArtifactPath('maven', '/files/requests-2.32.3-py3-none-any.whl')).toEqual({
        ecosystem: 'maven',
        kind: 'download',
        package: null,
        version: null,
        file: 'requests-2.32.3-py3-none-any.whl',
        sealed: false,
      });
    });
  });

  describe('paths outside every known layout', () => {
    it.each([
      ['nuget', '/query?q=json&take=20', 'metadata'],
      ['cargo', '/api/v1/me', 'metadata'],
      ['pypi', '/packages/index.html', 'metadata'],
      ['maven', '/com/acme/', 'metadata'],
      ['maven', '/archive/acme-tools.zip', 'download'],
      ['rpm', '/isos/x86_64/CHECKSUM.asc', 'metadata'],
      ['generic', '/downloads/kubectl', 'download'],
      ['generic', '/downloads/', 'metadata'],
    ] as [Ecosystem, string, string][])('on a %s route, %s is %s with no package', (ecosystem, path, kind) => {
      expect(parseArtifactPath(ecosystem, path)).toMatchObject({
        ecosystem,
        kind,
        package: null,
        version: null,
        sealed: false,
      });
    });
  });

  describe('file', () => {
    it.each([
      ['npm', '/@babel%2fcore', '@babel/core'],
      ['deb', '/pool/main/v/vim/vim_2%3a9.0.1378-2_amd64.deb', 'vim_2:9.0.1378-2_amd64.deb'],
      ['pypi', '/simple/requests/', null],
      ['generic', '', null],
      ['generic', '/', null],
      ['generic', '/a//b//c.txt?x=/y/z#frag', 'c.txt'],
      ['generic', '/bad%zzescape/file%ZZ.bin', 'file%ZZ.bin'],
    ] as const)('is the last decoded segment (%s %s)', (ecosystem, path, file) => {
      expect(parseArtifactPath(ecosystem, path).file).toBe(file);
    });
  });
});

describe('isSealedVersion', () => {
  it.each([
    ['npm', '1.2.3+sp1'],
    ['npm', '1.2.3+sp2p1'],
    ['npm', '1.2.3-sp2'],
    ['npm', '10.20.30-sp10p2'],
    ['go', 'v1.2.3-sp1'],
    ['go', 'v1.2.3+sp1'],
    ['go', 'v2.0.0-sp3+incompatible'],
    ['maven', '1.0-sp1'],
    ['maven', '2.7.1.RELEASE-sp2'],
    ['maven', '1.0+sp1'],
    ['pypi', '2.32.3+sp1'],
    ['pypi', '2.32.3+sp2p1'],
    ['nuget', '13.0.3-sp1'],
    ['cargo', '1.2.3-sp1'],
    ['composer', '2.0.1-sp2p1'],
    ['deb', '7.88.1-10+sp1'],
    ['deb', '1:7.88.1+sp1-10'],
    ['rpm', '2.4.1+sp1-1.el9'],
    ['apk', '2.4.1-sp1-r0'],
    ['generic', '1.0.0-sp0'],
  ] as [Ecosystem, string][])('seals %s %s', (ecosystem, version) => {
    expect(isSealedVersion(ecosystem, version)).toBe(true);
  });

  it.each([
    // npm/Go: -spN is only a candidate, counted only as exactly MAJOR.MINOR.PATCH-spN[pM].
    ['npm', '1.2-sp1', 'a two-part core'],
    ['npm', '1.2.3.4-sp1', 'a four-part core'],
    ['npm', '1.2.3-beta.sp1', 'sp after another prerelease identifier'],
    ['npm', '1.2.3-rc1-sp1', 'sp after another prerelease tag'],
    ['npm', '1.2.3-sp1.2', 'more identifiers after sp'],
    ['npm', '1.2.3-sp1+build.5', 'build metadata after sp'],
    ['npm', '01.2.3-sp1', 'a leading zero in the core'],
    ['go', 'v1.2.3-rc.1-sp1', 'sp after a Go prerelease'],
    ['go', 'v0.0.0-20240101120000-abcdefabcdef', 'a pseudo-version'],
    // Everywhere.
    ['npm', '1.2.3', 'a plain release'],
    ['npm', '1.2.3-sp', 'sp without a number'],
    ['npm', '1.2.3-sp01', 'a leading zero'],
    ['npm', '1.2.3-spa', 'a letter after sp'],
    ['npm', '1.2.3-special', 'a word starting with sp'],
    ['npm', '1.2.3-SP1', 'upper-case SP'],
    ['npm', '1.2.3+sp1.build5', '+sp not last'],
    ['maven', '4.0.SP1', 'a JBoss .SP1 service pack'],
    ['maven', '5.0.0.SP1', 'a Weld .SP1 release'],
    ['maven', '1.0.sp1', 'a dotted .sp1'],
    ['maven', '1.0-SP1', 'upper-case -SP1'],
    ['maven', '1.0-sp1-SNAPSHOT', 'a snapshot of a sealed version'],
    ['pypi', '1.0_sp1', 'an underscore'],
    ['pypi', '2.1.0+cu118', 'another local version'],
    ['deb', '3.0.13-1~deb12u1', 'a Debian security update'],
    ['apk', '9.7_p1-r4', 'an Alpine _p patch'],
    ['rpm', '8.6.0-7.fc40', 'a Fedora release'],
    ['generic', '', 'an empty string'],
    ['generic', 'sp1', 'a bare sp1'],
    ['generic', '-sp1', 'nothing before -sp1'],
    ['generic', `1.0-sp${'9'.repeat(10)}`, 'a number too long'],
    ['generic', `${'1.'.repeat(200)}0+sp1`, 'a version over 256 characters'],
  ] as [Ecosystem, string, string][])('does not seal %s %s (%s)', (ecosystem, version) => {
    expect(isSealedVersion(ecosystem, version)).toBe(false);
  });

  it('does not seal a null version', () => {
    expect(isSealedVersion('npm', null)).toBe(false);
  });
});

describe('robustness', () => {
  /** Deterministic PRNG (mulberry32) so a failure reproduces. */
  function rng(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const ALPHABET =
    '/-_.@!%+~:?#=&$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \u0000\u00e9\ud83d\ude00\ud800';
  const TOKENS = [
    '/',
    '-/',
    '@v/',
    '.tgz',
    '.whl',
    '.jar',
    '.nupkg',
    '.deb',
    '_',
    '.rpm',
    '-r1.apk',
    '.crate',
    'simple/',
    'maven-metadata.xml',
    '%2f',
    '%2B',
    '%3a',
    '%zz',
    '%',
    '!a',
    '+sp1',
    '-sp2p1',
    'SNAPSHOT',
    'v1.2.3',
    'dists/',
    'repodata/',
  ];

  function randomPath(next: () => number): string {
    const len = Math.floor(next() * 120);
    let s = '';
    for (let i = 0; i < len; i++) {
      s += next() < 0.3 ? TOKENS[Math.floor(next() * TOKENS.length)]! : ALPHABET[Math.floor(next() * ALPHABET.length)]!;
    }
    return s;
  }

  function expectWellFormed(ref: ArtifactRef): void {
    expect(ECOSYSTEMS).toContain(ref.ecosystem);
    expect(['download', 'metadata']).toContain(ref.kind);
    for (const v of [ref.package, ref.version, ref.file]) expect(v === null || typeof v === 'string').toBe(true);
    expect(typeof ref.sealed).toBe('boolean');
  }

  it('returns a well-formed value for 10,000 random strings in every ecosystem, never throwing', () => {
    const next = rng(0x7011);
    for (let i = 0; i < 10_000; i++) {
      const path = randomPath(next);
      const ecosystem = ECOSYSTEMS[i % ECOSYSTEMS.length]!;
      let ref: ArtifactRef | undefined;
      expect(
        () => {
          ref = parseArtifactPath(ecosystem, path);
        },
        `${ecosystem} ${JSON.stringify(path)}`,
      ).not.toThrow();
      expectWellFormed(ref!);
      expect(() => isSealedVersion(ecosystem, path)).not.toThrow();
    }
  });

  it.each([
    ['an empty path', ''],
    ['only slashes', '////'],
    ['only a query string', '?a=b'],
    ['bad percent-encoding', '/%E0%A4%A/%/%%/x%'],
    ['a lone surrogate', '/\ud800/\udc00.tgz'],
    ['NUL bytes', '/a\u0000/b/-/b-1.0.0.tgz'],
    ['an encoded NUL', '/%00/%00/%00.jar'],
    ['a bare @v', '/@v/'],
    ['a bare dash', '/-/'],
    ['a bare scope', '/@scope'],
  ])('handles %s in every ecosystem', (_label, path) => {
    for (const ecosystem of ECOSYSTEMS) expectWellFormed(parseArtifactPath(ecosystem, path));
  });

  it.each([
    ['one 100 KB segment', `/${'a'.repeat(100_000)}.tgz`],
    ['100 KB of dashes and digits', `/x/-/${'-1'.repeat(50_000)}.tgz`],
    ['100 KB of segments', '/a'.repeat(50_000)],
    ['100 KB of percent escapes', '/%2f'.repeat(25_000)],
  ])('bounds the work on %s: nothing parsed past the limit', (_label, path) => {
    for (const ecosystem of ECOSYSTEMS) {
      expect(parseArtifactPath(ecosystem, path)).toEqual({
        ecosystem,
        kind: 'download',
        package: null,
        version: null,
        file: null,
        sealed: false,
      });
    }
  });

  it.each([
    ['dashes and digits', `/x/-/x${'-1.1'.repeat(2000)}.tgz`],
    ['a deep Maven tree', `${'/g'.repeat(4000)}/a/1.0/a-1.0.jar`],
    ['many case escapes', `/${'!a'.repeat(4000)}/@v/v1.0.0.zip`],
    ['many separators in a PyPI name', `/simple/${'-_.'.repeat(2700)}x/`],
  ])('parses a path just under the limit made of %s', (_label, path) => {
    expect(path.length).toBeLessThanOrEqual(MAX_PARSED_PATH_CHARS);
    for (const ecosystem of ECOSYSTEMS) expectWellFormed(parseArtifactPath(ecosystem, path));
  });

  it('treats an unknown ecosystem value as generic', () => {
    expect(parseArtifactPath('toString' as Ecosystem, '/hello/1.0.0/hello-1.0.0.txt')).toMatchObject({
      ecosystem: 'generic',
      package: 'hello',
    });
  });
});

describe('createArtifactPathParser', () => {
  it('answers as parseArtifactPath does, the first time and every time after, in every ecosystem', () => {
    const parse = createArtifactPathParser(1000);
    const rows = [
      ...Object.entries(PATHS).flatMap(([ecosystem, list]) =>
        list.map((row) => [ecosystem as Ecosystem, row[1]] as const),
      ),
      ...GENERIC.map((row) => ['generic', row[1]] as const),
    ];
    for (let round = 0; round < 3; round++) {
      for (const [ecosystem, path] of rows) expect(parse(ecosystem, path)).toEqual(parseArtifactPath(ecosystem, path));
    }
  });

  it('keeps ecosystems apart: one path under two routes gives two answers', () => {
    const parse = createArtifactPathParser();
    const path = '/lodash/-/lodash-4.17.21.tgz';
    expect(parse('npm', path).ecosystem).toBe('npm');
    expect(parse('maven', path)).toEqual(parseArtifactPath('maven', path));
    expect(parse('npm', path)).toEqual(parseArtifactPath('npm', path));
  });

  it('hands out frozen answers, so no caller can change what the next request gets', () => {
    const parse = createArtifactPathParser();
    const ref = parse('npm', '/lodash/-/lodash-4.17.21.tgz');
    expect(Object.isFrozen(ref)).toBe(true);
    expect(() => {
      (ref as { package: string | null }).package = 'evil';
    }).toThrow(TypeError);
    expect(parse('npm', '/lodash/-/lodash-4.17.21.tgz').package).toBe('lodash');
  });

  it('stays correct when a flood of distinct paths empties and refills its memory', () => {
    const parse = createArtifactPathParser(8);
    for (let i = 0; i < 100; i++) {
      const path = `/pkg${i}/-/pkg${i}-1.0.${i}.tgz`;
      expect(parse('npm', path)).toMatchObject({ package: `pkg${i}`, version: `1.0.${i}` });
      expect(parse('npm', `/pkg${i - 1}/-/pkg${i - 1}-1.0.${i - 1}.tgz`)).toMatchObject({ package: `pkg${i - 1}` });
    }
    // Long, oversized and non-string paths are answered, never remembered.
    for (const long of [
      `/${'a'.repeat(MAX_REMEMBERED_PATH_CHARS)}/-/a-1.0.0.tgz`,
      `/${'a'.repeat(MAX_PARSED_PATH_CHARS + 1)}`,
    ]) {
      expect(parse('npm', long)).toEqual(parseArtifactPath('npm', long));
      expect(parse('npm', long)).not.toBe(parse('npm', long));
    }
    const short = '/a/-/a-1.0.0.tgz';
    expect(parse('npm', short)).toBe(parse('npm', short));
    expect(parse('npm', undefined as unknown as string)).toEqual(
      parseArtifactPath('npm', undefined as unknown as string),
    );
    expect(() => createArtifactPathParser(0)).toThrow(TypeError);
  });
});
