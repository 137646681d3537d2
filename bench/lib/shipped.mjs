// @ts-check
// How `tollgate serve`, `npm start` and the Docker image run the gateway (bin/serve-runtime.js), so
// that the benches measure Tollgate as shipped.
import { SERVE_ENV, SERVE_NODE_FLAGS } from '../../bin/serve-runtime.js';

/** e.g. { GLIBC_TUNABLES: '...' } @type {Record<string, string>} */
export const SHIPPED_ENV = SERVE_ENV;

/** e.g. ['--max-semi-space-size=4', ...] @type {string[]} */
export const SHIPPED_NODE_FLAGS = SERVE_NODE_FLAGS;
