import { isGatewayError } from '../errors.js';
import { EXIT_CONFIG, TOKEN_NOTES, TOKEN_USAGE, tokenCommand, UsageError } from './token.js';

const USAGE = `Usage:
  tollgate serve                      run the gateway (same as npm start)
${TOKEN_USAGE}
  tollgate token exchange --gateway URL [--audience AUD] [--id-token-env NAME] [--json]
                                      in a CI job: its OIDC identity for a short-lived token (--help)
  tollgate loadtest --target URL --token-file FILE [...]   load a gateway or fleet (--help: options)

${TOKEN_NOTES}
The token store is chosen by the same settings as the gateway:
TOLLGATE_REDIS_URL (Redis) or TOLLGATE_DATA_DIR (embedded, default ./data).
See docs/tokens.md.
`;

/** Exit codes: 0 ok, 1 the operation failed (name taken, not found, store down), 2 bad usage or config. */
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
