import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_PATH, parseLoadtestArgs } from '../../src/loadtest/options.js';
import { LatencyHistogram } from '../../src/loadtest/stats.js';
import { createTokenMix, readTokenFile, WARM_TOKENS } from '../../src/loadtest/tokens.js';
import { generateToken, parseTokenType } from '../../src/tokens/format.js';

/** The load test's pure parts: options, the token file, the token mix, the latency histogram. */

const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-loadtest-parts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadtest options', () => {
  const base = ['--target', 'http://lb.staging:8080', '--token-file', 'tokens.txt'];

  it('defaults to 10 connections for 10 s, as fast as it goes, on the shipped example artifact', () => {
    expect(parseLoadtestArgs(base)).toMatchObject({
      connections: 10,
      durationS: 10,
      rate: undefined,
      path: DEFAULT_PATH,
      invalidShare: 0,
      coldShare: 0,
      basicProject: undefined,
      revocation: undefined,
      json: false,
      out: undefined,
    });
  });

  it.each([
    [['--connections', '0'], '--connections must be a whole number from 1 to 10000'],
    [['--duration', '2.5'], '--duration must be a whole number from 1 to 86400'],
    [['--rate', 'fast'], '--rate must be a whole number'],
    [['--invalid-share', '1.5'], '--invalid-share must be a number from 0 to 1'],
    [['--cold-share', ''], '--cold-share must be a number from 0 to 1'],
    [['--invalid-share', '0.6', '--cold-share', '0.5'], 'add up to more than 1'],
    [['--path', 'no-slash'], '--path must start with /'],
    [['--path', '//elsewhere.example/x'], '--path must be a path on --target'],
    [['--path', '/\\elsewhere.example/x'], '--path must be a path on --target'],
    [['--basic', 'a:b'], '--basic needs a project name'],
    [['--admin-url', 'http://admin:9090'], '--admin-url and --admin-token-file go with --revocation'],
  ])('refuses %j', (extra, message) => {
    expect(() => parseLoadtestArgs([...base, ...extra])).toThrow(message);
  });

  const revocationRun = [
    '--target',
    'http://gw:8080',
    '--revocation',
    '--admin-url',
    'http://a',
    '--admin-token-file',
    'f',
  ];
  it.each([
    [[], 'loadtest needs --target URL'],
    [['--target', 'ftp://x'], '--target must be an http(s) URL'],
    [['--target', 'http://gw:8080/npm/'], '--target is an origin'],
    [['--target', 'http://gw:8080'], 'loadtest needs --token-file FILE'],
    [['--target', 'http://gw:8080', '--revocation', '--admin-token-file', 'f'], '--revocation needs --admin-url'],
    [[...revocationRun, '--duration', '1'], '--duration 2 or more'],
    [[...revocationRun, '--token-file', 't'], 'leave out --token-file'],
  ])('refuses %j', (args, message) => {
    expect(() => parseLoadtestArgs(args)).toThrow(message);
  });

  it('never quotes a value that may be a secret: credentials in a URL, a stray argument', () => {
    const token = generateToken('production');
    const attempts = [
      ['--target', `http://user:${token}@gw:8080`, '--token-file', 'f'],
      ['--target', 'http://gw:8080', '--token-file', 'f', token],
      ['--target', 'http://gw:8080', '--token-file', 'f', '--rate', token],
      ['--target', token, '--token-file', 'f'],
    ];
    for (const args of attempts) {
      const err = (() => {
        try {
          parseLoadtestArgs(args);
        } catch (e) {
          return e as Error & { code: string };
        }
        throw new Error('accepted');
      })();
      expect(err.code).toBe('TOLLGATE_LOADTEST_INPUT');
      expect(err.message).not.toContain(token);
    }
  });
});

describe('the token file', () => {
  const write = (name: string, text: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  it('reads one token a line, ignoring blank lines, spaces, CRLF and repeats', () => {
    const [a, b] = [generateToken('production'), generateToken('development')];
    expect(readTokenFile(write('ok.txt', `\n${a}\r\n  ${b}  \n\n${a}\n`))).toEqual([a, b]);
  });

  it('names a malformed line by its number, never its content', () => {
    const good = generateToken('production');
    const bad = `${good.slice(0, -1)}${good.endsWith('A') ? 'B' : 'A'}`; // a checksum that does not match
    const file = write('bad.txt', `${good}\n\n${bad}\n`);
    expect(() => readTokenFile(file)).toThrow(`the token file ${file}, line 3: not a Tollgate token`);
    try {
      readTokenFile(file);
    } catch (err) {
      expect((err as Error).message).not.toContain(bad);
      expect((err as Error).message).not.toContain(good);
    }
  });

  it('refuses an empty file and a missing one', () => {
    const empty = write('empty.txt', '\n \n');
    expect(() => readTokenFile(empty)).toThrow(`the token file ${empty} holds no tokens`);
    expect(() => readTokenFile(path.join(dir, 'none.txt'))).toThrow('ENOENT');
  });
});

describe('the token mix', () => {
  const tokens = Array.from({ length: 400 }, () => generateToken('production'));
  const tokenOf = (header: string) => header.slice('Bearer '.length);

  it('gives each kind its share within one request, and each cold token once', () => {
    const mix = createTokenMix({ tokens, invalidShare: 0.2, coldShare: 0.3, basicProject: undefined });
    const seen = Array.from({ length: 1000 }, () => tokenOf(mix.next()));
    expect(mix.sent).toEqual({ warm: 500, invalid: 200, cold: 300 });
    const fromFile = seen.filter((t) => tokens.includes(t));
    const warm = tokens.slice(0, WARM_TOKENS);
    const cold = fromFile.filter((t) => !warm.includes(t));
    expect(new Set(cold).size).toBe(300); // each used once
    expect(cold).toEqual(tokens.slice(WARM_TOKENS, WARM_TOKENS + 300)); // in file order
    expect(fromFile.length - cold.length).toBe(500); // the rest from the warm ones
    const unknown = seen.filter((t) => !tokens.includes(t));
    expect(unknown).toHaveLength(200);
    expect(unknown.every((t) => parseTokenType(t) !== undefined)).toBe(true); // well formed: checksum valid
    expect(new Set(unknown).size).toBeLessThanOrEqual(64);
    expect(mix.coldLeft()).toBe(400 - WARM_TOKENS - 300);
  });

  it('says once when the cold tokens run out, then goes on with warm ones', () => {
    let exhausted = 0;
    const mix = createTokenMix({
      tokens: tokens.slice(0, 12),
      invalidShare: 0,
      coldShare: 0.5,
      basicProject: undefined,
      onExhausted: () => exhausted++,
    });
    for (let i = 0; i < 20; i++) mix.next();
    expect(mix.sent.cold).toBe(2);
    expect(mix.exhausted).toBe(true);
    expect(exhausted).toBe(1);
  });

  it('sends Basic PROJECT:token with --basic', () => {
    const mix = createTokenMix({ tokens: tokens.slice(0, 1), invalidShare: 0, coldShare: 0, basicProject: 'web' });
    expect(mix.next()).toBe(`Basic ${Buffer.from(`web:${tokens[0]}`).toString('base64')}`);
  });
});

describe('the latency histogram', () => {
  it('gives percentiles within 1.6% of the exact ones and the exact max', () => {
    const h = new LatencyHistogram();
    const values: number[] = [];
    let seed = 7;
    for (let i = 0; i < 20_000; i++) {
      seed = (seed * 48271) % 2147483647;
      const ms = 0.05 + (seed / 2147483647) ** 3 * 900; // skewed, 50 µs to 900 ms
      values.push(ms);
      h.record(ms);
    }
    values.sort((x, y) => x - y);
    for (const q of [0.5, 0.9, 0.99]) {
      const exact = values[Math.ceil(q * values.length) - 1]!;
      expect(Math.abs(h.quantileMs(q) - exact) / exact, `p${q * 100}`).toBeLessThan(0.016);
    }
    expect(h.maxUs / 1000).toBeCloseTo(values.at(-1)!, 2);
  });
});
