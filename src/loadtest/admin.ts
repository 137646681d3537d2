import { request, type Answer } from './http.js';
import { inputError, LoadtestError } from './options.js';

/** The token --revocation creates. Its plaintext stays in memory: never printed, never in the report. */
export interface LoadToken {
  id: string;
  name: string;
  token: string;
  expiresAt: string | null;
}

/** `loadtest-20261128T184607Z-3f9a`: an operator who sees it in the token list knows what it is. */
export function loadTokenName(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `loadtest-${stamp}-${Math.random().toString(16).slice(2, 6)}`;
}

/**
 * The admin API (docs/admin-api.md), as a script uses it: `Authorization: Bearer <admin token>`.
 * Messages carry the status and the API's own error message, never a header or the token.
 */
export function createAdminClient(adminUrl: URL, adminToken: string) {
  // adminUrl may carry a path prefix (an admin listener behind a reverse proxy).
  const base = new URL(adminUrl.href.endsWith('/') ? adminUrl.href : `${adminUrl.href}/`);
  const call = async (method: string, path: string, body?: unknown): Promise<Answer> => {
    const url = new URL(path, base);
    return request(url, {
      method,
      headers: {
        authorization: `Bearer ${adminToken}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  };
  const apiError = (answer: Answer): string => {
    try {
      const parsed = JSON.parse(answer.text) as { error?: unknown; code?: unknown };
      if (typeof parsed.code === 'string')
        return `${answer.status} ${parsed.code}${typeof parsed.error === 'string' ? `: ${parsed.error}` : ''}`;
    } catch {
      // not the admin API's JSON
    }
    return `${answer.status}`;
  };

  return {
    /** A Production token expiring in a day: if every revocation attempt fails, it still ends. */
    createToken: async function createLoadToken(name: string): Promise<LoadToken> {
      let answer: Answer;
      try {
        answer = await call('POST', 'api/v1/tokens', { name, type: 'production', expires: '1d' });
      } catch (err) {
        throw inputError(`--admin-url: ${(err as Error).message}`);
      }
      if (answer.status === 401 || answer.status === 403) {
        throw inputError(`the admin API at ${base.origin} refused the admin token (${apiError(answer)})`);
      }
      if (answer.status !== 201) {
        throw inputError(
          `the admin API at ${base.origin} did not create the load-test token (${apiError(answer)}): is --admin-url the admin listener?`,
        );
      }
      const view = JSON.parse(answer.text) as { id?: unknown; name?: unknown; token?: unknown; expiresAt?: unknown };
      if (typeof view.id !== 'string' || typeof view.token !== 'string') {
        throw inputError(
          `the admin API at ${base.origin} answered 201 without a token: is --admin-url the admin listener?`,
        );
      }
      return {
        id: view.id,
        name: typeof view.name === 'string' ? view.name : name,
        token: view.token,
        expiresAt: typeof view.expiresAt === 'string' ? view.expiresAt : null,
      };
    },
    revokeToken: async function revokeLoadToken(id: string): Promise<void> {
      const answer = await call('POST', `api/v1/tokens/${encodeURIComponent(id)}/revoke`).catch((err: Error) => {
        throw new LoadtestError(err.message, 'TOLLGATE_LOADTEST_FAILED');
      });
      if (answer.status !== 200)
        throw new LoadtestError(`the admin API answered ${apiError(answer)}`, 'TOLLGATE_LOADTEST_FAILED');
    },
  };
}

export type AdminClient = ReturnType<typeof createAdminClient>;
