import { parseArgs } from 'node:util';

/** Exit codes of `tollgate loadtest`. */
export const EXIT_OK = 0;
/** The run went through but a promise was broken (revocation over a second) or the clean-up failed. */
export const EXIT_FAILED = 1;
/** Bad input: options, files, a target or admin API that cannot be used. */
export const EXIT_USAGE = 2;
/** SIGINT or SIGTERM: the partial report is printed, the created token revoked. */
export const EXIT_INTERRUPTED = 130;

export const DEFAULT_CONNECTIONS = 10;
export const DEFAULT_DURATION_S = 10;
/** The small artifact shipped in examples/artifacts, served by a gateway on its defaults. */
export const DEFAULT_PATH = '/generic/hello/1.0.0/hello-1.0.0.txt';
/** Seconds without a response before a request counts as a timeout. */
export const DEFAULT_TIMEOUT_S = 10;
/** What a revocation must stay within (the README's promise). */
export const REVOCATION_PROMISE_MS = 1000;
const MAX_CONNECTIONS = 10_000;
const MAX_DURATION_S = 86_400;

export const LOADTEST_USAGE = `Usage:
  tollgate loadtest --target URL --token-file FILE
                    [--connections N] [--duration S] [--rate R] [--path PATH]
                    [--invalid-share 0..1] [--cold-share 0..1] [--basic PROJECT]
                    [--json] [--out report.html]
  tollgate loadtest --target URL --revocation --admin-url URL --admin-token-file FILE [...]

  --target URL           the gateway's proxy port, or the load balancer in front of a fleet
  --token-file FILE      live tokens, one a line (never printed)
  --connections N        concurrent connections (default ${DEFAULT_CONNECTIONS})
  --duration S           seconds of load (default ${DEFAULT_DURATION_S})
  --rate R               requests per second over all connections (default: as fast as it goes)
  --path PATH            the artifact requested (default ${DEFAULT_PATH})
  --invalid-share X      share of requests with well-formed unknown tokens (negative cache)
  --cold-share X         share of requests with a token of the file not used before in this run
  --basic PROJECT        Basic PROJECT:token instead of Bearer
  --revocation           create a Production token through the admin API, load with it, revoke it
                         halfway and report how long the gateways kept accepting it
  --admin-url URL        the admin listener (with --revocation)
  --admin-token-file F   the admin token (with --revocation; never printed)
  --json                 only the JSON report on stdout
  --out FILE             also write an HTML report with charts (no network needed to open it)

Detail: docs/loadtest.md.
`;

export interface LoadtestOptions {
  /** Origin of the gateway or load balancer (no path, no credentials). */
  target: URL;
  /** Path and query of the artifact requested. */
  path: string;
  tokenFile: string | undefined;
  connections: number;
  durationS: number;
  /** Requests per second over all connections; undefined: as fast as it goes. */
  rate: number | undefined;
  invalidShare: number;
  coldShare: number;
  /** With Basic: the project named as the user. Undefined: Bearer. */
  basicProject: string | undefined;
  revocation: { adminUrl: URL; adminTokenFile: string } | undefined;
  json: boolean;
  out: string | undefined;
}

/** Bad input (exit 2) or a failed run (exit 1): the message is shown as is, so it never holds a secret. */
export class LoadtestError extends Error {
  readonly code: 'TOLLGATE_LOADTEST_INPUT' | 'TOLLGATE_LOADTEST_FAILED';

  constructor(message: string, code: LoadtestError['code'] = 'TOLLGATE_LOADTEST_INPUT') {
    super(message);
    this.name = 'LoadtestError';
    this.code = code;
  }
}

export function inputError(message: string): LoadtestError {
  return new LoadtestError(message, 'TOLLGATE_LOADTEST_INPUT');
}

function integer(name: string, value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1 || Number(value) > max) {
    throw inputError(`--${name} must be a whole number from 1 to ${max}`);
  }
  return Number(value);
}

function share(name: string, value: string | undefined): number {
  if (value === undefined) return 0;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1)
    throw inputError(`--${name} must be a number from 0 to 1`);
  return n;
}

/** An http(s) URL without credentials. Messages never echo a value: a token pasted in the wrong place stays unseen. */
function httpUrl(name: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw inputError(`--${name} must be an http(s) URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw inputError(`--${name} must be an http(s) URL`);
  // Credentials in a URL would end up in messages and the report: refused without echoing them.
  if (url.username || url.password) throw inputError(`--${name} must not hold credentials (user:password@)`);
  return url;
}

/** The command's options, checked; a LoadtestError (exit 2) names the first problem. */
export function parseLoadtestArgs(args: string[]): LoadtestOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        target: { type: 'string' },
        'token-file': { type: 'string' },
        connections: { type: 'string' },
        duration: { type: 'string' },
        rate: { type: 'string' },
        path: { type: 'string' },
        'invalid-share': { type: 'string' },
        'cold-share': { type: 'string' },
        basic: { type: 'string' },
        revocation: { type: 'boolean', default: false },
        'admin-url': { type: 'string' },
        'admin-token-file': { type: 'string' },
        json: { type: 'boolean', default: false },
        out: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    // Node's message quotes a stray positional argument, which may be a token pasted by mistake.
    if ((err as { code?: string }).code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      throw inputError('loadtest takes options only (tokens go in the --token-file)');
    }
    throw inputError((err as Error).message);
  }

  if (!values.target)
    throw inputError('loadtest needs --target URL (the gateway, or the load balancer in front of a fleet)');
  const target = httpUrl('target', values.target);
  if (target.pathname !== '/' || target.search)
    throw inputError('--target is an origin (http(s)://host[:port]): give the artifact with --path');

  const path = values.path ?? DEFAULT_PATH;
  // eslint-disable-next-line no-control-regex -- on purpose: the request path holds no control character
  if (!path.startsWith('/') || /[\s\u0000-\u001f\u007f]/.test(path))
    throw inputError('--path must start with / and hold no spaces or control characters');
  // `//host/x` or `/\host/x` would name another host: the tokens go to the target only.
  if (new URL(path, target).origin !== target.origin)
    throw inputError('--path must be a path on --target, not another host');

  const connections = integer('connections', values.connections, DEFAULT_CONNECTIONS, MAX_CONNECTIONS);
  const durationS = integer('duration', values.duration, DEFAULT_DURATION_S, MAX_DURATION_S);
  const rate = values.rate === undefined ? undefined : integer('rate', values.rate, 0, 10_000_000);
  const invalidShare = share('invalid-share', values['invalid-share']);
  const coldShare = share('cold-share', values['cold-share']);
  if (invalidShare + coldShare > 1) throw inputError('--invalid-share and --cold-share add up to more than 1');

  const basicProject = values.basic;
  // eslint-disable-next-line no-control-regex -- on purpose: a project name (the Basic user) holds no control character
  const controlCharacter = /[\u0000-\u001f\u007f]/;
  if (
    basicProject !== undefined &&
    (basicProject === '' ||
      basicProject.includes(':') ||
      controlCharacter.test(basicProject) ||
      basicProject.length > 128)
  ) {
    throw inputError('--basic needs a project name (1-128 characters, no colon or control character)');
  }

  let revocation: LoadtestOptions['revocation'];
  if (values.revocation) {
    if (values['token-file'] !== undefined || values['cold-share'] !== undefined) {
      throw inputError('--revocation loads with the token it creates: leave out --token-file and --cold-share');
    }
    if (!values['admin-url']) throw inputError('--revocation needs --admin-url URL (the admin listener)');
    if (!values['admin-token-file']) throw inputError('--revocation needs --admin-token-file FILE');
    if (durationS < 2)
      throw inputError('--revocation needs --duration 2 or more: it revokes halfway and measures after');
    revocation = { adminUrl: httpUrl('admin-url', values['admin-url']), adminTokenFile: values['admin-token-file'] };
  } else {
    if (values['admin-url'] !== undefined || values['admin-token-file'] !== undefined) {
      throw inputError('--admin-url and --admin-token-file go with --revocation');
    }
    if (!values['token-file'])
      throw inputError('loadtest needs --token-file FILE (live tokens, one a line), or --revocation');
  }

  return {
    target,
    path,
    tokenFile: values['token-file'],
    connections,
    durationS,
    rate,
    invalidShare,
    coldShare,
    basicProject,
    revocation,
    json: values.json,
    out: values.out,
  };
}
