import { createRequire } from 'node:module';
import type { Agent as UndiciAgent, Pool as UndiciPool, buildConnector as undiciBuildConnector } from 'undici';

/**
 * The two undici dispatchers, the connector builder and two error classes the forwarder uses, loaded from undici's own
 * files rather than its index: the index also loads fetch, WebSocket, the HTTP cache and the
 * mocks, which the gateway never uses (several MiB of idle RSS; bench/README.md).
 *
 * These paths are undici's private layout (it has no exports map). package.json pins undici to
 * one exact version, and test/proxy/undici-internals.test.ts fails, naming the path, when an
 * upgrade moves any of them or they stop being the classes undici exports.
 */
const require = createRequire(import.meta.url);

export const UNDICI_INTERNAL_PATHS = {
  Pool: 'undici/lib/dispatcher/pool.js',
  Agent: 'undici/lib/dispatcher/agent.js',
  errors: 'undici/lib/core/errors.js',
  buildConnector: 'undici/lib/core/connect.js',
} as const;

export const Pool = require(UNDICI_INTERNAL_PATHS.Pool) as typeof UndiciPool;
export const Agent = require(UNDICI_INTERNAL_PATHS.Agent) as typeof UndiciAgent;
export const { HeadersTimeoutError, BodyTimeoutError } = require(UNDICI_INTERNAL_PATHS.errors) as Record<
  'HeadersTimeoutError' | 'BodyTimeoutError',
  new () => Error
>;
export const buildConnector = require(UNDICI_INTERNAL_PATHS.buildConnector) as typeof undiciBuildConnector;
