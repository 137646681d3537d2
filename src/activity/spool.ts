import { mkdirSync, readdirSync, readFileSync, statSync, renameSync, rmSync } from 'node:fs';
import { appendFile, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ActivityEvent } from './event.js';

/**
 * A sink's disk buffer: NDJSON segment files under `<dir>/<pid>/`, read oldest first. Each
 * process owns its own folder; on start a process adopts the folders of processes that are no
 * longer running (a restart after a crash or a SIGTERM), so what was buffered is delivered.
 * Processes starting together never adopt the same folder: see the claim in openSpool.
 *
 * Segments are named by a zero-padded sequence number. New events append to the newest
 * segment; events that must go *before* everything on disk (the memory queue at shutdown)
 * get a segment numbered below the oldest.
 */
export interface Spool {
  /** Bytes on disk (approximate: counted as written). */
  readonly bytes: number;
  readonly events: number;
  append(events: readonly ActivityEvent[]): Promise<void>;
  prepend(events: readonly ActivityEvent[]): Promise<void>;
  /** The oldest segment's events, without removing them. */
  peek(): Promise<{ events: ActivityEvent[]; ack: () => Promise<void> } | undefined>;
}

const SEGMENT_EVENTS = 1000;
const START_SEQ = 1_000_000_000;
const name = (seq: number) => `${String(seq).padStart(12, '0')}.ndjson`;

function isRunning(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function openSpool(dir: string): Spool {
  const own = path.join(dir, String(process.pid));
  mkdirSync(own, { recursive: true, mode: 0o700 });

  // Adopt the segments of processes that are gone, keeping their order ahead of ours.
  const segments: { seq: number; events: number }[] = [];
  let bytes = 0;
  let events = 0;
  // Several processes (cluster workers) may start at once: each orphan folder is claimed first
  // with one atomic rename, `<dead pid>` → `<dead pid>.<our pid>`, and only the winner adopts it.
  // A claim whose claimer died too is claimed again the same way.
  const orphans: string[] = [];
  for (const entry of readdirSync(dir).sort()) {
    const m = /^(\d+)(?:\.(\d+))?$/.exec(entry);
    if (!m || entry === String(process.pid)) continue;
    const claimer = m[2] === undefined ? undefined : Number(m[2]);
    if (claimer === process.pid) {
      orphans.push(entry); // our pid's earlier life was adopting it
      continue;
    }
    if (isRunning(claimer ?? Number(m[1]))) continue;
    const claimed = `${m[1]}.${process.pid}`;
    try {
      renameSync(path.join(dir, entry), path.join(dir, claimed));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTEMPTY' || code === 'EEXIST') continue; // another process won
      throw err;
    }
    orphans.push(claimed);
  }
  const adopted: string[] = [];
  for (const orphan of orphans) {
    const from = path.join(dir, orphan);
    for (const file of readdirSync(from)
      .filter((f) => f.endsWith('.ndjson'))
      .sort())
      adopted.push(path.join(from, file));
  }
  // Our own leftovers keep their names (a prepended segment sorts below START_SEQ); adopted
  // segments are numbered just below the oldest of them, so no rename ever lands on a live file.
  const existing = readdirSync(own)
    .filter((f) => /^\d+\.ndjson$/.test(f))
    .sort()
    .map((f) => ({ seq: Number(f.slice(0, -'.ndjson'.length)), file: path.join(own, f) }));
  const first = existing[0] ? existing[0].seq - adopted.length : START_SEQ;
  const files = [...adopted.map((file, i) => ({ seq: first + i, file })), ...existing];
  for (const { seq, file } of files) {
    const target = path.join(own, name(seq));
    if (file !== target) renameSync(file, target);
    const size = statSync(target).size;
    const count = readFileSync(target, 'utf8').split('\n').filter(Boolean).length;
    if (count === 0) {
      rmSync(target, { force: true }); // created but never written (a crash): nothing to deliver
      continue;
    }
    segments.push({ seq, events: count });
    bytes += size;
    events += count;
  }
  // A leftover segment may end in a torn line: new events start a segment of their own.
  const last = segments.at(-1);
  if (last) segments.push({ seq: last.seq + 1, events: 0 });
  for (const orphan of orphans) rmSync(path.join(dir, orphan), { recursive: true, force: true });

  let writing: Promise<void> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = writing.then(fn);
    writing = run.then(
      () => {},
      () => {},
    );
    return run;
  };
  const encode = (list: readonly ActivityEvent[]) => list.map((e) => JSON.stringify(e)).join('\n') + '\n';

  return {
    get bytes() {
      return bytes;
    },
    get events() {
      return events;
    },
    append(list) {
      if (list.length === 0) return Promise.resolve();
      return serial(async () => {
        let last = segments.at(-1);
        if (!last || last.events >= SEGMENT_EVENTS) {
          last = { seq: last ? last.seq + 1 : START_SEQ, events: 0 };
          segments.push(last);
        }
        const data = encode(list);
        await appendFile(path.join(own, name(last.seq)), data, { mode: 0o600 });
        last.events += list.length;
        bytes += Buffer.byteLength(data);
        events += list.length;
      });
    },
    prepend(list) {
      if (list.length === 0) return Promise.resolve();
      return serial(async () => {
        const first = segments[0];
        const seg = { seq: first ? first.seq - 1 : START_SEQ, events: list.length };
        const data = encode(list);
        await writeFile(path.join(own, name(seg.seq)), data, { mode: 0o600 });
        segments.unshift(seg);
        bytes += Buffer.byteLength(data);
        events += list.length;
      });
    },
    peek() {
      return serial(async () => {
        while (segments.length > 1 && segments[0]!.events === 0) segments.shift();
        const first = segments[0];
        if (!first || first.events === 0) return undefined;
        const file = path.join(own, name(first.seq));
        const text = await readFile(file, 'utf8');
        const parsed: ActivityEvent[] = [];
        for (const line of text.split('\n')) {
          if (!line) continue;
          try {
            parsed.push(JSON.parse(line) as ActivityEvent);
          } catch {
            // A torn last line after a crash: skip it rather than block the whole spool.
          }
        }
        // Appends to this segment after the read would be lost by ack: seal it now.
        if (segments.length === 1) segments.push({ seq: first.seq + 1, events: 0 });
        return {
          events: parsed,
          ack: () =>
            serial(async () => {
              await unlink(file).catch(() => {});
              const size = Buffer.byteLength(text);
              segments.splice(segments.indexOf(first), 1);
              bytes -= size;
              events -= first.events;
            }),
        };
      });
    },
  };
}
