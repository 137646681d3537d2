import { parseArgs } from 'node:util';
import { ID_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT, TOKEN_EXCHANGE_PATH } from '../ci/exchange-form.js';
import { readCiJobEnvironment, type CiJobEnvironment } from '../config/ci-job.js';
import { secureUrlProblem } from '../config/urls.js';

/**
 * `tollgate token exchange`: run in a CI job, it gets the job's OIDC ID token (GitHub Actions'
 * request endpoint, or a variable the job holds it in), exchanges it at the gateway (RFC 8693)
 * for a short-lived token, and prints that token alone (all fields with --json). It needs no
 * config, data dir or store: only the job's variables and the network path to the gateway.
 *
 * Secrets: the ID token and GitHub's request token go into request headers and bodies only;
 * no message holds either, nor the issued token (printed on stdout only). In GitHub Actions the
 * issued token is announced with `::add-mask::` first, on stderr, so that the runner masks it
 * even when stdout is captured (`TOKEN=$(tollgate token exchange ...)`).
 */

export const EXCHANGE_USAGE = `Usage:
  tollgate token exchange --gateway URL [--audience AUD] [--id-token-env NAME] [--json]

Exchanges this CI job's OIDC ID token for a short-lived Tollgate token and prints the token.
  --gateway URL        the gateway's public URL (https; http only on loopback)
  --audience AUD       GitHub Actions: the audience to request the ID token for (the trust
                       policy's "audience"); default: GitHub's own, the owner's URL
  --id-token-env NAME  the variable holding the job's ID token (GitLab CI: a name under
                       id_tokens:), instead of GitHub Actions' request endpoint
  --json               print the gateway's whole answer as JSON (access_token, expires_in...)
Exit codes: 0 done; 1 the exchange was refused or failed; 2 bad usage or no ID token. See docs/ci.md.
`;

export interface ExchangeIo {
  env: CiJobEnvironment;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Each HTTP request gives up after this long. Default 30000 ms. */
  timeoutMs?: number;
}

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

class ExchangeFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: typeof EXIT_FAILED | typeof EXIT_USAGE,
  ) {
    super(message);
  }
}

const usage = (message: string) => new ExchangeFailure(message, EXIT_USAGE);
const failed = (message: string) => new ExchangeFailure(message, EXIT_FAILED);

export async function exchangeCommand(args: string[], io: ExchangeIo = processIo()): Promise<number> {
  const secrets: string[] = [];
  try {
    const options = parseOptions(args);
    if (options === 'help') {
      io.stdout.write(EXCHANGE_USAGE);
      return EXIT_OK;
    }
    const http = request(io.timeoutMs ?? 30_000);
    const idToken = await jobIdToken(io.env, options, http, secrets);
    secrets.push(idToken);
    const answer = await http(
      options.endpoint,
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({
          grant_type: TOKEN_EXCHANGE_GRANT,
          subject_token: idToken,
          subject_token_type: ID_TOKEN_TYPE,
        }).toString(),
      },
      'the gateway',
    );
    const token =
      answer.status === 200 && typeof answer.json?.access_token === 'string' ? answer.json.access_token : undefined;
    if (token === undefined || !/^[\x21-\x7e]{1,4096}$/.test(token)) throw refusal(answer);
    if (io.env.githubActions) io.stderr.write(`::add-mask::${token}\n`);
    io.stdout.write(options.json ? `${JSON.stringify(answer.json)}\n` : `${token}\n`);
    const expiresIn = answer.json?.expires_in;
    if (!options.json && typeof expiresIn === 'number')
      io.stderr.write(`tollgate: exchanged the job's ID token for a token valid ${expiresIn} s\n`);
    return EXIT_OK;
  } catch (err) {
    const failure =
      err instanceof ExchangeFailure
        ? err
        : (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
          ? usage((err as Error).message)
          : failed(String((err as Error).message ?? err));
    io.stderr.write(
      `tollgate: ${redact(failure.message, secrets)}\n${failure.exitCode === EXIT_USAGE ? `\n${EXCHANGE_USAGE}` : ''}`,
    );
    return failure.exitCode;
  }
}

function processIo(): ExchangeIo {
  return { env: readCiJobEnvironment(), stdout: process.stdout, stderr: process.stderr };
}

interface Options {
  endpoint: URL;
  audience: string | undefined;
  idTokenEnv: string | undefined;
  json: boolean;
}

function parseOptions(args: string[]): Options | 'help' {
  const { values } = parseArgs({
    args,
    options: {
      gateway: { type: 'string' },
      audience: { type: 'string' },
      'id-token-env': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return 'help';
  if (!values.gateway) throw usage('token exchange needs --gateway URL');
  const problem = secureUrlProblem(values.gateway);
  if (problem) throw usage(`--gateway ${problem}`);
  const gateway = new URL(values.gateway);
  if (gateway.search || gateway.hash) throw usage('--gateway must not carry a query or fragment');
  const idTokenEnv = values['id-token-env'];
  if (idTokenEnv !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(idTokenEnv))
    throw usage('--id-token-env must name an environment variable (letters, digits, _)');
  if (idTokenEnv !== undefined && values.audience !== undefined) {
    throw usage(
      "--audience applies to GitHub Actions' ID-token request; with --id-token-env the audience is set where the token is minted (GitLab: id_tokens: NAME: aud:)",
    );
  }
  if (values.audience === '') throw usage('--audience must not be empty');
  const endpoint = new URL(`${gateway.pathname.replace(/\/+$/, '')}${TOKEN_EXCHANGE_PATH}`, gateway.origin);
  return { endpoint, audience: values.audience, idTokenEnv, json: values.json };
}

type Http = (
  url: URL,
  init: RequestInit,
  who: string,
) => Promise<{ status: number; json: Record<string, unknown> | undefined }>;

/** The job's ID token: the variable named by --id-token-env, else GitHub Actions' request endpoint. */
async function jobIdToken(env: CiJobEnvironment, options: Options, http: Http, secrets: string[]): Promise<string> {
  if (options.idTokenEnv !== undefined) {
    const value = env.variable(options.idTokenEnv)?.trim();
    if (!value)
      throw usage(
        `the variable ${options.idTokenEnv} is not set or empty (GitLab CI: declare it under id_tokens: with the aud the gateway expects)`,
      );
    return value;
  }
  const request = env.githubIdTokenRequest;
  if (!request) {
    throw usage(
      env.githubActions
        ? 'ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set: give the job `permissions: id-token: write`'
        : "no ID token: in GitHub Actions give the job `permissions: id-token: write`; elsewhere name the variable holding the job's ID token with --id-token-env NAME",
    );
  }
  secrets.push(request.token);
  let url: URL;
  try {
    url = new URL(
      options.audience === undefined
        ? request.url
        : `${request.url}${request.url.includes('?') ? '&' : '?'}audience=${encodeURIComponent(options.audience)}`,
    );
  } catch {
    throw usage('ACTIONS_ID_TOKEN_REQUEST_URL is not a URL');
  }
  const answer = await http(
    url,
    { headers: { authorization: `bearer ${request.token}`, accept: 'application/json' } },
    "GitHub's ID-token endpoint",
  );
  const value = answer.json?.value;
  if (answer.status !== 200 || typeof value !== 'string' || value === '') {
    throw failed(
      `GitHub's ID-token endpoint answered HTTP ${answer.status}${answer.status === 200 ? ' without an ID token' : ''}`,
    );
  }
  return value;
}

/** fetch with a deadline, no redirects (an ID token is never sent anywhere else), and an answer read as JSON when it is. */
function request(timeoutMs: number): Http {
  return async function httpRequest(url, init, who) {
    let response: Response;
    try {
      response = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const reason =
        e.name === 'TimeoutError'
          ? `no answer within ${timeoutMs / 1000} s`
          : (e.cause?.code ?? e.cause?.message ?? e.message);
      throw failed(`cannot reach ${who} at ${url.origin}${url.pathname}: ${reason}`);
    }
    const text = await response.text().catch(() => '');
    let json: Record<string, unknown> | undefined;
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
    } catch {
      // not JSON: the status says enough
    }
    return { status: response.status, json };
  };
}

/** The gateway's refusal as RFC 8693 states it (`error: error_description`), or its status. */
function refusal(answer: { status: number; json: Record<string, unknown> | undefined }): ExchangeFailure {
  const error = answer.json?.error;
  const description = answer.json?.error_description;
  if (typeof error !== 'string') return failed(`unexpected answer from the gateway (HTTP ${answer.status})`);
  return failed(
    `the gateway refused the exchange (HTTP ${answer.status}): ${error}${typeof description === 'string' ? `: ${description}` : ''}`,
  );
}

const JWT_SHAPED = /eyJ[\w-]*\.[\w-]+\.[\w-]*/g;

/**
 * A message as it may be printed: one line of printable ASCII (a newline could start a
 * workflow command such as `::set-env` in the job's log), at most 500 characters, without a secret.
 */
function redact(message: string, secrets: string[]): string {
  let out = message;
  for (const secret of secrets) if (secret) out = out.split(secret).join('[redacted]');
  out = out.replace(JWT_SHAPED, '[jwt]').replace(/[^\x20-\x7e]/g, '?');
  return out.length > 500 ? `${out.slice(0, 500)}...` : out;
}
