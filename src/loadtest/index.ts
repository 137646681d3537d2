import { accessSync, constants as fsConstants, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createAdminClient, loadTokenName, type AdminClient, type LoadToken } from './admin.js';
import { renderHtmlReport } from './html.js';
import { request } from './http.js';
import {
  EXIT_FAILED,
  EXIT_INTERRUPTED,
  EXIT_OK,
  EXIT_USAGE,
  inputError,
  LOADTEST_USAGE,
  LoadtestError,
  parseLoadtestArgs,
  REVOCATION_PROMISE_MS,
  type LoadtestOptions,
} from './options.js';
import { buildReport, formatReport, progressLine, revocationBroken, type RevocationResult } from './report.js';
import { runLoad, type LoadResult } from './run.js';
import { checkColdTokens, createTokenMix, readSecretFile, readTokenFile } from './tokens.js';

/**
 * `tollgate loadtest`: autocannon against a gateway or a fleet behind its load balancer, with
 * the tokens of a file (or one token it creates and revokes halfway, --revocation). It needs
 * nothing of the gateway's own: no config, no store, no Redis, only the network path to the
 * target (and to the admin listener). docs/loadtest.md describes what it measures.
 *
 * Secrets: the tokens of the file, the created token and the admin token are used in request
 * headers only. Messages name a token file's line by number; every message printed also goes
 * through `redact`, in case a dependency ever quotes a header.
 */

export { LOADTEST_USAGE };

export interface LoadtestIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** A progress line a second on stderr (when stderr is a TTY). */
  progress: boolean;
  /** Aborted on SIGINT/SIGTERM: the run stops, the report covers what ran, a created token is revoked. */
  signal?: AbortSignal;
}

const TOKEN_SHAPED = /tg[pd]_[0-9A-Za-z]{36}/g;

function redact(message: string, secrets: string[]): string {
  let out = message.replace(TOKEN_SHAPED, '[token]');
  for (const secret of secrets) if (secret) out = out.split(secret).join('[secret]');
  return out;
}

/** The CLI entry: process streams and signals around runLoadtest. */
export async function loadtestCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(LOADTEST_USAGE);
    return EXIT_OK;
  }
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await runLoadtest(args, {
      stdout: process.stdout,
      stderr: process.stderr,
      progress: Boolean(process.stderr.isTTY),
      signal: controller.signal,
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Checked before the run, so a long run does not end on an unwritable report path. */
function checkWritable(file: string): void {
  try {
    accessSync(path.dirname(path.resolve(file)), fsConstants.W_OK);
  } catch (err) {
    throw inputError(`cannot write the HTML report ${file}: ${(err as NodeJS.ErrnoException).code ?? 'not writable'}`);
  }
}

/** Any HTTP answer will do: it shows the target is reachable. Sends no credential. */
async function preflight(options: LoadtestOptions, warn: (line: string) => void): Promise<void> {
  const url = new URL(options.path, options.target);
  const answer = await request(url).catch((err: Error) => {
    throw inputError(`--target: ${err.message}`);
  });
  if (answer.status >= 200 && answer.status < 300) {
    warn(
      `warning: ${options.target.origin} answered ${answer.status} without a token: is --target a Tollgate proxy port?`,
    );
  }
}

/** Revocation bookkeeping: fed every answer with its send time, on the performance.now() clock. */
function createRevocationWatch(token: LoadToken) {
  let revokedAt: number | undefined;
  let startedAt = 0;
  let lastOkSentAt = -Infinity;
  let lastRefusedSentAt = -Infinity;
  let okAfterRevoke = 0;
  // Functions of their own, not methods: runLoad() calls them detached from this object.
  function revocationStart(at: number): void {
    startedAt = at;
  }
  function watchRevocation(status: number, sentAt: number): void {
    if (status === 200) {
      if (sentAt > lastOkSentAt) lastOkSentAt = sentAt;
      if (revokedAt !== undefined && sentAt > revokedAt) okAfterRevoke++;
    } else if ((status === 401 || status === 429) && sentAt > lastRefusedSentAt) {
      lastRefusedSentAt = sentAt;
    }
  }
  return {
    start: revocationStart,
    revoked(at: number) {
      revokedAt = at;
    },
    get isRevoked() {
      return revokedAt !== undefined;
    },
    onAnswer: watchRevocation,
    result(): RevocationResult {
      const measured = revokedAt !== undefined;
      return {
        tokenId: token.id,
        tokenName: token.name,
        revokedAtS: measured ? Math.round((revokedAt! - startedAt) / 10) / 100 : null,
        revocationMs: measured ? Math.max(0, Math.round(lastOkSentAt - revokedAt!)) : null,
        promiseMs: REVOCATION_PROMISE_MS,
        okAfterRevoke,
        landed: measured && lastRefusedSentAt > Math.max(lastOkSentAt, revokedAt!),
      };
    },
  };
}

export async function runLoadtest(args: string[], io: LoadtestIo): Promise<number> {
  const secrets: string[] = [];
  const say = (stream: NodeJS.WritableStream, text: string) => stream.write(redact(text, secrets));
  const warn = (line: string) => say(io.stderr, `${line}\n`);
  const run: LoadtestRun = {
    secrets,
    say,
    warn,
    signal: io.signal ?? new AbortController().signal,
    created: undefined,
    revokeOnce: undefined,
  };

  let code: number;
  try {
    code = await loadtest(args, io, run);
  } catch (err) {
    warn(`tollgate loadtest: ${(err as Error).message ?? String(err)}`);
    if (err instanceof LoadtestError && err.code === 'TOLLGATE_LOADTEST_INPUT') {
      warn('(tollgate loadtest --help lists the options)');
      code = EXIT_USAGE;
    } else {
      code = EXIT_FAILED;
    }
  }
  // Whatever happened above (an error, SIGINT), a token this run created does not outlive it.
  const { created, revokeOnce } = run;
  if (created && revokeOnce) {
    try {
      await revokeOnce();
    } catch (err) {
      warn(
        `tollgate loadtest: could not revoke the load-test token ${created.name} (${created.id}): ${(err as Error).message}. ` +
          `Revoke it now (Settings › Tokens, or tollgate token revoke ${created.id}); it expires by itself at ${created.expiresAt ?? 'never'}.`,
      );
      return Math.max(code, EXIT_FAILED);
    }
  }
  return code;
}

interface LoadtestRun {
  secrets: string[];
  say: (stream: NodeJS.WritableStream, text: string) => void;
  warn: (line: string) => void;
  signal: AbortSignal;
  /** The token --revocation created, once it exists. */
  created: LoadToken | undefined;
  /** Revokes it; concurrent calls share one attempt, a failed attempt may be retried. */
  revokeOnce: (() => Promise<void>) | undefined;
}

async function loadtest(args: string[], io: LoadtestIo, run: LoadtestRun): Promise<number> {
  const { say, warn, signal } = run;
  const options = parseLoadtestArgs(args);
  if (options.out) checkWritable(options.out);
  let tokens: string[];
  let admin: AdminClient | undefined;
  if (options.revocation) {
    const adminToken = readSecretFile(options.revocation.adminTokenFile, 'admin token');
    run.secrets.push(adminToken);
    tokens = [];
    admin = createAdminClient(options.revocation.adminUrl, adminToken);
  } else {
    tokens = readTokenFile(options.tokenFile!);
    const expected = options.rate === undefined ? undefined : options.rate * (options.durationS + 1);
    checkColdTokens(tokens.length, options.coldShare, expected, options.tokenFile!);
  }
  await preflight(options, warn);

  if (admin) {
    const created = await admin.createToken(loadTokenName());
    run.secrets.push(created.token);
    run.created = created;
    let attempt: Promise<void> | undefined;
    run.revokeOnce = () => {
      attempt ??= admin.revokeToken(created.id).catch((err: unknown) => {
        attempt = undefined;
        throw err;
      });
      return attempt;
    };
    tokens = [created.token];
    if (!options.json)
      warn(`created Production token ${created.name} (${created.id}); it is revoked halfway through the run`);
    const first = await request(new URL(options.path, options.target), {
      headers: { authorization: `Bearer ${created.token}` },
    }).catch((err: Error) => {
      throw inputError(`--target: ${err.message}`);
    });
    if (first.status === 429) {
      throw inputError(
        `${options.target.origin} answered 429 to the new token (Retry-After: ${first.retryAfter ?? '-'}): the failure limit ` +
          '(TOLLGATE_AUTH_FAILURE_*) holds this address, after the refusals of an earlier run or a flood; retry after that, or from another address',
      );
    }
    if (first.status !== 200) {
      throw inputError(
        `${options.target.origin} answered ${first.status} to the new token for ${options.path}: --revocation needs a --path that answers 200`,
      );
    }
  }
  if (signal.aborted) {
    warn('interrupted before the load started');
    return EXIT_INTERRUPTED;
  }

  const exhausted = new AbortController();
  const mix = createTokenMix({
    tokens,
    invalidShare: options.invalidShare,
    coldShare: options.coldShare,
    basicProject: options.basicProject,
    onExhausted: () => exhausted.abort(),
  });
  const watch = run.created ? createRevocationWatch(run.created) : undefined;
  const revokeOnce = run.revokeOnce;
  let revokeError: Error | undefined;
  const startedAt = new Date();
  const load: LoadResult = await runLoad({
    url: new URL(options.path, options.target),
    connections: options.connections,
    durationS: options.durationS,
    rate: options.rate,
    mix,
    signal: AbortSignal.any([signal, exhausted.signal]),
    onStart: watch?.start,
    onSecond: io.progress
      ? (second, stats) => say(io.stderr, `\r\x1b[K${progressLine(second, stats, options.durationS)}`)
      : undefined,
    onAnswer: watch?.onAnswer,
    at: watch &&
      revokeOnce && {
        ms: (options.durationS * 1000) / 2,
        run: () => {
          revokeOnce().then(
            () => watch.revoked(performance.now()),
            (err: Error) => {
              revokeError = err;
            },
          );
        },
      },
  });
  if (io.progress) say(io.stderr, '\r\x1b[K');

  if (mix.exhausted && !signal.aborted) {
    const rate = Math.round(mix.sent.cold / load.elapsedS);
    throw inputError(
      `the token file ran out of unused tokens for --cold-share after ${load.elapsedS.toFixed(1)} s ` +
        `(${mix.sent.cold} cold requests, ~${rate}/s): ${options.durationS} s at that pace needs about ${rate * options.durationS} ` +
        `beyond the first ${tokens.length - mix.sent.cold}; add tokens, or lower --cold-share or --duration, or set --rate`,
    );
  }
  const revocation = watch?.result();
  const report = buildReport(options, startedAt, load, {
    sent: mix.sent,
    coldLeft: mix.coldLeft(),
    revocation,
    interrupted: signal.aborted,
  });
  say(io.stdout, options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report, options.out));
  if (options.out) writeFileSync(options.out, redact(renderHtmlReport(report), run.secrets));

  if (revokeError)
    throw new LoadtestError(
      `revoking the load-test token halfway failed: ${revokeError.message}`,
      'TOLLGATE_LOADTEST_FAILED',
    );
  if (signal.aborted) return EXIT_INTERRUPTED;
  if (revocationBroken(revocation)) {
    warn(
      revocation!.landed
        ? `revocation took ${revocation!.revocationMs} ms, over the ${REVOCATION_PROMISE_MS} ms promise`
        : 'the revoked token was still accepted at the end of the run',
    );
    return EXIT_FAILED;
  }
  return EXIT_OK;
}
