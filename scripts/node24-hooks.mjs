// @ts-check
// Loaded with --import (NODE_OPTIONS, set by scripts/node24-env.sh) into every Node.js 24 process
// of `npm run test:node24` (vitest, its workers, the gateways and scripts the tests start) and of
// `npm run bench:node24`.
// better-sqlite3 is a native addon built for one Node ABI: the repo's node_modules holds the build
// for the machine's Node.js, .node24/modules one for Node.js 24 (scripts/setup-test.sh). Whatever
// resolves to the first (a bare import, vitest's own resolution, a build snapshot's symlinked
// node_modules) is sent to the second.
import module from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const from = pathToFileURL(path.join(root, 'node_modules', 'better-sqlite3')).href + '/';
const to = pathToFileURL(path.join(root, '.node24', 'modules', 'node_modules', 'better-sqlite3')).href + '/';

/**
 * module.registerHooks: Node.js 22.15 and 23.5 on (the @types/node here describe Node.js 20).
 * @typedef {{ url: string, format?: string | null }} Resolved
 * @type {(hooks: { resolve: (specifier: string, context: object, next: (specifier: string, context: object) => Resolved) => Resolved }) => void}
 */
const registerHooks = /** @type {any} */ (module).registerHooks;

registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    return resolved.url.startsWith(from) ? { ...resolved, url: to + resolved.url.slice(from.length) } : resolved;
  },
});
