// @ts-check
// "The same gateway with auth turned off", for the benchmark's auth-cost ratio.
//
// Wires the compiled gateway exactly as src/main.ts does (config from TOLLGATE_* env, logger,
// store, startGateway) with one difference: `authenticate` is replaced by a function that
// returns a fixed Production principal without looking at the header. Everything after the
// auth decision (routing, forwarding, log line, and whatever else startGateway wires) is the
// shipped code. If main.ts ever wires something outside startGateway, mirror it here, or the
// auth-on/auth-off ratio stops comparing like with like.
//
// Usage: TOLLGATE_...=... node bench/lib/tollgate-noauth.mjs   (run `npm run build` first)
import { loadConfig } from '../../dist/config/index.js';
import { createLogger } from '../../dist/logging/logger.js';
import { openTokenStore } from '../../dist/tokens/index.js';
import { startGateway } from '../../dist/gateway.js';

// Typed as the source it is compiled from.
const result = /** @type {import('../../src/config/index.js').ConfigResult} */ (loadConfig());
if (!result.ok) {
  process.stderr.write(`tollgate-noauth: invalid configuration\n${result.problems.map((p) => `  ${p}\n`).join('')}`);
  process.exit(2);
}
const config = result.config;
const logger = createLogger(config.logLevel);
const store = await openTokenStore(config, (/** @type {Error} */ err) =>
  logger.warn({ err: { message: err.message } }, 'token store connection problem'),
);

const ALLOWED = Object.freeze({
  ok: true,
  principal: Object.freeze({
    tokenId: 'tok_benchAuthOff0000',
    tokenName: 'bench-auth-off',
    tokenType: 'production',
    project: 'default',
  }),
});

const gateway = await startGateway(config, {
  logger,
  store,
  authenticate: function authenticateOff() {
    return ALLOWED;
  },
});
logger.info(
  { proxyPort: gateway.proxyPort, adminPort: gateway.adminPort },
  'tollgate (auth off, bench only) listening',
);
logger.flush();

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await gateway.shutdown(1000);
  await store.close().catch(() => {});
  logger.flush();
  process.exit(0);
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
