#!/usr/bin/env node
// @ts-check
// What grew between two V8 heap snapshots of one process, by kind and constructor: count and self
// size, largest first. For `node bench/keepalive.mjs --snapshot-dir=DIR` (bench/README.md, "Ten
// thousand kept-alive connections"); any two .heapsnapshot files of one program will do.
// Usage: node bench/heap-diff.mjs before.heapsnapshot after.heapsnapshot [rows, default 40]
import { readFileSync } from 'node:fs';

/** @param {string} file */
function load(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  /** @type {{ node_fields: string[], node_types: [string[]] }} */
  const { node_fields: fields, node_types: nodeTypes } = snap.snapshot.meta;
  const width = fields.length;
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const types = nodeTypes[0];
  /** @type {Map<string, { count: number, size: number }>} */
  const byKind = new Map();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]];
    let name = snap.strings[snap.nodes[i + iName]];
    if (type.endsWith('string')) name = '';
    else if (type === 'code') name = '';
    const key = `${type}\t${String(name).slice(0, 70)}`;
    const entry = byKind.get(key) ?? { count: 0, size: 0 };
    entry.count++;
    entry.size += snap.nodes[i + iSize];
    total += snap.nodes[i + iSize];
    byKind.set(key, entry);
  }
  return { byKind, total };
}

const [beforeFile, afterFile, rows = '40'] = process.argv.slice(2);
if (!beforeFile || !afterFile) {
  process.stderr.write('usage: node bench/heap-diff.mjs before.heapsnapshot after.heapsnapshot [rows]\n');
  process.exit(2);
}
const before = load(beforeFile);
const after = load(afterFile);
const grown = [...after.byKind].map(([key, a]) => {
  const b = before.byKind.get(key) ?? { count: 0, size: 0 };
  return { key, count: a.count - b.count, size: a.size - b.size };
});
grown.sort((x, y) => y.size - x.size);
const MiB = 1024 * 1024;
process.stdout.write(
  `total self size ${(before.total / MiB).toFixed(1)} -> ${(after.total / MiB).toFixed(1)} MiB (+${((after.total - before.total) / MiB).toFixed(1)})\n` +
    '     KiB    count  kind\tname\n',
);
for (const g of grown.slice(0, Number(rows))) {
  process.stdout.write(`${(g.size / 1024).toFixed(0).padStart(8)} ${String(g.count).padStart(8)}  ${g.key}\n`);
}
