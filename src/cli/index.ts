import { parseArgs } from 'node:util';
import os from 'node:os';
import { isGatewayError } from '../errors.js';
import { createToken, toTokenView, type TokenView } from '../tokens/service.js';
import type { TokenStore } from '../tokens/store.js';
/** Exit code for configuration and usage errors (as main.ts). */
const EXIT_CONFIG = 2;

const USAGE = `Usage:
  tollgate serve                      run the gateway (same as npm start)
  tollgate token create --name NAME --type production|development
                        [--expires never|<N>d|YYYY-MM-DD|<ISO timestamp>] [--json]
  tollgate token list [--json]
  tollgate token revoke <id|name> [--json]
  tollgate token exchange --gateway URL [--audience AUD] [--id-token-env NAME] [--json]
                                      in a CI job: its OIDC identity for a short-lived token (--help)
  tollgate loadtest --target URL --token-file FILE [...]   load a gateway or fleet (--help: options)

Names: printable ASCII, not starting with tok_, unique among live tokens ignoring case.
revoke takes an id, or a name (any case); a name two live tokens share (from before names were
compared ignoring case) is refused: revoke each by its id.

The token store is chosen by the same settings as the gateway:
TOLLGATE_REDIS_URL (Redis) or TOLLGATE_DATA_DIR (embedded, default ./data).
`;

/** Exit codes: 0 ok, 1 the operation failed (name taken, not found, store down), 2 bad usage or config. */
class UsageError extends Error {}

async function withStore<T>(fn: (store: TokenStore) => Promise<T>): Promise<T> {
  // Loaded here, not at the top: `tollgate loadtest` runs where no config or store exists.
  const [{ loadConfig }, { openTokenStore }] = await Promise.all([import('../config/index.js'), import('../tokens/index.js')]);
  const result = loadConfig();
  if (!result.ok) {
    process.stderr.write(`tollgate: invalid configuration\n${result.problems.map((p) => `  ${p}\n`).join('')}`);
    process.exit(EXIT_CONFIG);
  }
  const store = await openTokenStore(result.config);
  try {
    return await fn(store);
  } finally {
    await store.close().catch(() => {});
  }
}

function cliUser(): string {
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    return 'cli';
  }
}

function table(rows: TokenView[]): string {
  const cols: (keyof TokenView)[] = ['id', 'name', 'type', 'state', 'createdAt', 'createdBy', 'expiresAt', 'lastUsedAt'];
  const cells = [cols.map(String), ...rows.map((r) => cols.map((c) => String(r[c] ?? (c === 'expiresAt' ? 'never' : '-'))))];
  const widths = cols.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return cells.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

async function tokenCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'create': {
      const { values } = parseArgs({
        args: rest,
        options: {
          name: { type: 'string' },
          type: { type: 'string' },
          expires: { type: 'string', default: 'never' },
          json: { type: 'boolean', default: false },
        },
        strict: true,
      });
      if (!values.name) throw new UsageError('token create needs --name NAME');
      if (!values.type) throw new UsageError('token create needs --type production|development');
      const created = await withStore((store) => createToken(store, {
        name: values.name, type: values.type, expires: values.expires, createdBy: cliUser(),
      }));
      const view = toTokenView(created.record);
      if (values.json) {
        process.stdout.write(`${JSON.stringify({
          id: view.id, name: view.name, type: view.type, token: created.token,
          createdAt: view.createdAt, expiresAt: view.expiresAt,
        })}\n`);
      } else {
        process.stdout.write(`${created.token}\n`);
        process.stderr.write(`Created ${view.type} token "${view.name}" (${view.id}), expires ${view.expiresAt ?? 'never'}.\n`
          + 'This is the only time the token is shown: store it in a secret manager now.\n');
      }
      return;
    }
    case 'list': {
      const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean', default: false } }, strict: true });
      const views = await withStore(async (store) => (await store.list()).map((r) => toTokenView(r)));
      process.stdout.write(values.json ? `${JSON.stringify(views)}\n` : table(views));
      return;
    }
    case 'revoke': {
      const { values, positionals } = parseArgs({
        args: rest, options: { json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true,
      });
      if (positionals.length !== 1) throw new UsageError('token revoke needs exactly one <id|name>');
      const record = await withStore((store) => store.revoke(positionals[0]!, cliUser()));
      const view = toTokenView(record);
      process.stdout.write(values.json ? `${JSON.stringify(view)}\n` : `Revoked token "${view.name}" (${view.id}).\n`);
      return;
    }
    default:
      throw new UsageError(sub ? `unknown token command "${sub}"` : 'token needs a command: create, list or revoke');
  }
}

export async function runCli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve': {
        // Loaded only here: token commands stay quick to start.
        const { runGateway } = await import('../main.js');
        await runGateway();
        return -1; // keeps running
      }
      case 'token':
        if (rest[0] === 'exchange') {
          // Loaded only here: it runs in CI jobs, with no config, data dir or store.
          const { exchangeCommand } = await import('./exchange.js');
          return await exchangeCommand(rest.slice(1));
        }
        await tokenCommand(rest);
        return 0;
      case 'loadtest': {
        // Loaded only here: it needs no config or store, and autocannon only when it runs.
        const { loadtestCommand } = await import('../loadtest/index.js');
        return await loadtestCommand(rest);
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? EXIT_CONFIG : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`tollgate: ${(err as Error).message}\n\n${USAGE}`);
      return EXIT_CONFIG;
    }
    if (isGatewayError(err)) {
      process.stderr.write(`tollgate: ${err.message}\n`);
      return err.code === 'TOLLGATE_ERR_TOKEN_INPUT' ? EXIT_CONFIG : 1;
    }
    process.stderr.write(`tollgate: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  }
}

const code = await runCli(process.argv.slice(2));
if (code >= 0) process.exitCode = code;
