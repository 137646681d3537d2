// @ts-check
// Summarises a sampling heap profile written by bench/lib/promotion-preload.cjs: the bytes that
// outlived young-generation GCs, by allocating function and by the stack that led to it.
//
//   node bench/promotion-report.mjs <profile> [stack depth, default 5] [rows, default 25]
import { readFileSync } from 'node:fs';

const [file, depthArg, rowsArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node bench/promotion-report.mjs <profile> [stack depth] [rows]\n');
  process.exit(2);
}
// Piped into head: stop quietly when the reader has gone.
process.stdout.on('error', (/** @type {NodeJS.ErrnoException} */ err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
const depth = Number(depthArg ?? 5);
const rows = Number(rowsArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8'));

/**
 * A node of V8's sampling heap profile.
 * @typedef {{ id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: ProfileNode[] }} ProfileNode
 */

/** node id -> its stack, outermost first, as "function@file:line". @type {Map<number, string[]>} */
const stacks = new Map();
(
  /** @param {ProfileNode} node @param {string[]} stack */ function walk(node, stack) {
    const { functionName, url, lineNumber } = node.callFrame;
    const here = [...stack, `${functionName || '(anonymous)'}@${url.split('/').pop() || ''}:${lineNumber + 1}`];
    stacks.set(node.id, here);
    for (const child of node.children ?? []) walk(child, here);
  }
)(profile.head, []);

/** @type {Map<string | undefined, number>} */
const byFunction = new Map();
/** @type {Map<string, number>} */
const byStack = new Map();
let total = 0;
for (const { nodeId, size } of profile.samples) {
  const stack = stacks.get(nodeId) ?? ['(unknown)'];
  total += size;
  const top = stack.at(-1);
  byFunction.set(top, (byFunction.get(top) ?? 0) + size);
  const key = stack.slice(-depth).reverse().join(' < ');
  byStack.set(key, (byStack.get(key) ?? 0) + size);
}
/** @param {string} title @param {Map<string | undefined, number>} map */
const print = (title, map) => {
  process.stdout.write(`\n${title}\n`);
  for (const [key, bytes] of [...map].sort((a, b) => b[1] - a[1]).slice(0, rows)) {
    process.stdout.write(`${((100 * bytes) / total).toFixed(1).padStart(5)}%  ${key}\n`);
  }
};
process.stdout.write(`${(total / 1e6).toFixed(1)} MB sampled that outlived young-generation GCs\n`);
print('by allocating function', byFunction);
print(`by stack (innermost first, ${depth} frames)`, byStack);
