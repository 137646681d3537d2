// @ts-check
// How `npm start` (and the Docker image) runs the gateway, read from package.json so that the
// benches measure Tollgate as shipped: the leading NAME=value words of the start script are
// environment settings, the --words are node flags.
import { readFileSync } from 'node:fs';

/** @type {string} */
const START_SCRIPT = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).scripts.start;

/** e.g. { GLIBC_TUNABLES: '...' } */
export const SHIPPED_ENV = Object.fromEntries(
  /** @type {RegExpExecArray} */ (/^(?:[A-Z_][A-Z0-9_]*=\S+\s+)*/.exec(START_SCRIPT))[0]
    .split(/\s+/)
    .filter(Boolean)
    .map((word) => [word.slice(0, word.indexOf('=')), word.slice(word.indexOf('=') + 1)]),
);

/** e.g. ['--max-semi-space-size=4', ...] @type {string[]} */
export const SHIPPED_NODE_FLAGS = START_SCRIPT.match(/--[\w-]+(=\S+)?/g) ?? [];
