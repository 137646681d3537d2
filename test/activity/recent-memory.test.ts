import { appendFileSync, closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/activity/event.js';
import { activityEventJson } from '../../src/activity/event-codec.js';
import { MAX_EVENT_LINE_BYTES } from '../../src/activity/event-caps.js';
import { createFileActivityQuery } from '../../src/activity/recent-file.js';
import { eventFactory } from '../helpers/activity-events.js';

/**
 * Issue 20: three Activity views of a 44 MB file of 16 KB events took the gateway from 115 to
 * 223 MB RSS; the view held every chunk it read until it returned. A view now reads a bounded
 * number of bytes into one reused buffer and keeps at most 2 × limit parsed events: the memory it
 * takes does not grow with the files' size or their lines' length.
 *
 * Measured: the peak of the process's ArrayBuffer memory (where file chunks live) while three
 * views run at once, sampled between reads, above the level before them. Bounded at 8 MiB: the
 * views need a few hundred KiB; holding the files' chunks took tens of MB.
 */

const MiB = 1024 * 1024;
const BOUND = 8 * MiB;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const makeEvent = eventFactory({ stepMs: 1 });

/** Writes `bytes` or more of lines from `next()` to `file`, a MiB at a time. */
function writeLines(file: string, bytes: number, next: () => string): void {
  const fd = openSync(file, 'w');
  try {
    let written = 0;
    while (written < bytes) {
      let block = '';
      while (block.length < MiB) block += next();
      written += writeSync(fd, block);
    }
  } finally {
    closeSync(fd);
  }
}

/** An event whose line is `size` bytes long, newline included (its user agent fills it up). */
function lineOf(size: number, over: Partial<ActivityEvent> = {}): string {
  const event = makeEvent({ userAgent: '', ...over });
  const bare = Buffer.byteLength(`${activityEventJson(event)}\n`);
  event.userAgent = 'u'.repeat(size - bare);
  return `${activityEventJson(event)}\n`;
}

/** The peak ArrayBuffer memory above the level before, while `work` runs. */
async function arrayBufferGrowth<T>(work: () => Promise<T>): Promise<{ result: T; growth: number }> {
  gc();
  const base = process.memoryUsage().arrayBuffers;
  let peak = base;
  let running = true;
  const sample = () => {
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    if (running) setImmediate(sample);
  };
  setImmediate(sample);
  try {
    const result = await work();
    sample();
    return { result, growth: peak - base };
  } finally {
    running = false;
  }
}

let root = '';
beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'tollgate-recent-memory-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('recent-activity view memory', () => {
  /** Writes the file; gives the ids the views must show, newest first, and whether they skip lines. */
  type Scenario = (file: string) => { newest: string[]; skips: boolean };
  const idOf = (line: string) => line.slice(7, 33); // {"id":"<26 characters>"

  it.each<[string, Scenario]>([
    [
      '44 MB of 16 KB events, as written before events were capped',
      (file) => {
        writeLines(file, 44 * MiB, () => lineOf(16 * 1024));
        return { newest: [], skips: true };
      },
    ],
    [
      '40 MB of events just under 4 KiB, the largest there are',
      (file) => {
        const ids: string[] = [];
        writeLines(file, 40 * MiB, () => {
          const line = lineOf(MAX_EVENT_LINE_BYTES - 100);
          ids.push(idOf(line));
          return line;
        });
        return { newest: ids.reverse().slice(0, 1000), skips: false };
      },
    ],
    // Its bytes count against the view's 16 MiB like any others: a longer one would hide the events.
    [
      'one 12 MB line with no end, after a few events',
      (file) => {
        const events = [lineOf(500), lineOf(600), lineOf(700)];
        writeFileSync(file, events.join(''));
        const block = 'x'.repeat(MiB);
        for (let i = 0; i < 12; i++) appendFileSync(file, block);
        return { newest: events.map(idOf).reverse(), skips: true };
      },
    ],
  ])('does not grow with the file: %s', async (_, make) => {
    const dir = path.join(root, `data-${Math.random().toString(36).slice(2)}`);
    mkdirSync(path.join(dir, 'activity'), { recursive: true });
    const file = path.join(dir, 'activity', 'production-2024-05-01.ndjson');
    const { newest, skips } = make(file);
    const skipped: number[] = [];
    const query = createFileActivityQuery({ dir, onSkipped: (n) => skipped.push(n) });

    const { result, growth } = await arrayBufferGrowth(() =>
      Promise.all([
        query.recent({ limit: 1000 }),
        query.recent({ limit: 1000, project: 'default' }),
        query.recent({ limit: 1000, project: 'nobody' }),
      ]),
    );
    rmSync(dir, { recursive: true, force: true });

    expect(growth).toBeLessThan(BOUND);
    const [all, matching, none] = result;
    expect(all.map((e) => e.id)).toEqual(newest);
    expect(matching.map((e) => e.id)).toEqual(newest);
    expect(none).toEqual([]);
    // Lines longer than an event are skipped and counted, reported once per view that met them.
    expect(skipped.length).toBe(skips ? 3 : 0);
    for (const n of skipped) expect(n).toBeGreaterThan(0);
  });
});
