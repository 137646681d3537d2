import type { Env } from './types.js';

/**
 * What `tollgate token exchange` reads of the CI job it runs in: no Tollgate setting, only the
 * variables the CI provider gives the job. Apart from the loader (no zod, no settings), so the
 * command stays light enough to start in any job.
 */
export interface CiJobEnvironment {
  /** GITHUB_ACTIONS=true: the runner masks values announced with `::add-mask::`. */
  githubActions: boolean;
  /** GitHub Actions' ID-token request endpoint, present when the job has `permissions: id-token: write`. */
  githubIdTokenRequest: { url: string; token: string } | undefined;
  /** A variable of the job (`--id-token-env NAME`: GitLab's `id_tokens:`, a file-less Kubernetes token...), or undefined when unset or empty. */
  variable(name: string): string | undefined;
}

export function readCiJobEnvironment(env: Env = process.env): CiJobEnvironment {
  const url = env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const token = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  return {
    githubActions: env.GITHUB_ACTIONS === 'true',
    githubIdTokenRequest: url && token ? { url, token } : undefined,
    variable: (name) => env[name] || undefined,
  };
}
