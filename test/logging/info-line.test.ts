import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging/logger.js';
import { createInfoLineWriter } from '../../src/logging/info-line.js';
import { isoTime } from '../../src/iso-time.js';

/** A logger whose lines land in an array, through the same factory the gateway uses. */
function capture(level = 'info') {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(line);
      done();
    },
  });
  return { logger: createLogger(level, destination), lines };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('createInfoLineWriter', () => {
  it("writes the same line pino writes for the same fields, in order among pino's own lines", async () => {
    const { logger, lines } = capture();
    const write = createInfoLineWriter(logger, 'request')!;
    logger.info({ requestId: 'a-1', status: 200, durationMs: 1.25 }, 'request');
    write(',"requestId":"a-1","status":200,"durationMs":1.25');
    logger.info('after');
    await settle();
    expect(lines).toHaveLength(3);
    const [fromPino, fromWriter, after] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(Object.keys(fromWriter!)).toEqual(Object.keys(fromPino!));
    expect({ ...fromWriter, time: undefined }).toEqual({ ...fromPino, time: undefined });
    expect(Math.abs(Date.parse(String(fromWriter!.time)) - Date.parse(String(fromPino!.time)))).toBeLessThan(1000);
    expect(after!.msg).toBe('after');
  });

  it('keeps a client-chosen string intact and the line valid JSON (quotes, newlines, control and non-ASCII characters)', async () => {
    const { logger, lines } = capture();
    const write = createInfoLineWriter(logger, 'request')!;
    const path = '/npm/"evil"\n{"level":"error"}\u0000\u001b[31m/ünïcødé/\ud800';
    write(`,"path":${JSON.stringify(path)}`);
    await settle();
    expect(lines).toHaveLength(1);
    const parsed = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(parsed.level).toBe('info');
    expect(parsed.path).toBe(path);
  });

  it('is absent when the level hides info lines', () => {
    const { logger } = capture('warn');
    expect(createInfoLineWriter(logger, 'request')).toBeUndefined();
  });
});

describe('isoTime', () => {
  it('equals Date#toISOString for every millisecond pattern, across second, minute and year boundaries', () => {
    const starts = [
      Date.UTC(2026, 10, 28, 2, 17, 36, 0),
      Date.UTC(2026, 11, 31, 23, 59, 59, 990),
      0,
      Date.UTC(2000, 1, 29, 12, 0, 0, 5),
    ];
    for (const start of starts) {
      for (let t = start; t < start + 2_100; t += 7) expect(isoTime(t)).toBe(new Date(t).toISOString());
    }
    // Going back in time (a clock step) too.
    expect(isoTime(starts[0]! + 5)).toBe(new Date(starts[0]! + 5).toISOString());
  });
});
