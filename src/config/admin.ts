import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_OIDC_ADMIN_CLAIM, MIN_ADMIN_TOKEN_LENGTH } from './schema.js';
import { ENV_NAMES } from './settings.js';
import type { Checked, Context } from './sources.js';
import type { AdminConfig, OidcConfig } from './types.js';
import { isLoopbackHost, originProblem, parseHttpUrl, secureUrlProblem } from './urls.js';

/**
 * The admin listener's credentials: admin token (or its file), public origin, OIDC sign-in, and
 * the metrics token an admin listener beyond loopback needs. A token's value is never in a problem.
 */
export function checkAdmin(ctx: Context): Checked<AdminConfig> {
  const { s, where } = ctx;
  const problems: string[] = [];
  const { token, tokenFile } = adminToken(ctx, problems);

  let publicUrl: string | undefined;
  if (s.publicAdminUrl) {
    const problem = originProblem(s.publicAdminUrl, 'https://tollgate-admin.example.com');
    if (problem) problems.push(`${where('publicAdminUrl')}: ${problem}`);
    else publicUrl = parseHttpUrl(s.publicAdminUrl)!.origin;
  }

  if (!s.metricsToken && !isLoopbackHost(s.adminHost)) {
    problems.push(
      `${ENV_NAMES.metricsToken} must be set when the admin listener is bound beyond loopback (${ENV_NAMES.adminHost}=${JSON.stringify(s.adminHost)}): /metrics then needs its own bearer credential`,
    );
  }

  return { value: { token, tokenFile, publicUrl, sessionTtlMs: s.sessionTtlMs, oidc: oidc(ctx, problems) }, problems };
}

function adminToken({ s, where, cwd }: Context, problems: string[]): Pick<AdminConfig, 'token' | 'tokenFile'> {
  const checkToken = (value: string, label: string): string | undefined => {
    if (!/^[\x21-\x7e]+$/.test(value)) {
      problems.push(`${label}: the admin token must be printable ASCII without spaces`);
    } else if (value.length < MIN_ADMIN_TOKEN_LENGTH) {
      problems.push(`${label}: the admin token must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters`);
    } else {
      return value;
    }
    return undefined;
  };
  if (s.adminToken !== undefined && s.adminTokenFile !== undefined) {
    problems.push(`${where('adminToken')} and ${where('adminTokenFile')}: set one of them, not both`);
    return { token: undefined, tokenFile: undefined };
  }
  if (s.adminToken !== undefined) return { token: checkToken(s.adminToken, where('adminToken')), tokenFile: undefined };
  if (s.adminTokenFile === undefined) return { token: undefined, tokenFile: undefined };
  const tokenFile = path.resolve(cwd, s.adminTokenFile);
  let text: string;
  try {
    text = readFileSync(tokenFile, 'utf8');
  } catch (err) {
    problems.push(
      `${where('adminTokenFile')}: cannot read file ${JSON.stringify(s.adminTokenFile)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
    return { token: undefined, tokenFile };
  }
  const value = text.trim();
  if (value === '') {
    problems.push(`${where('adminTokenFile')}: file ${JSON.stringify(s.adminTokenFile)} is empty`);
    return { token: undefined, tokenFile };
  }
  return { token: checkToken(value, `${where('adminTokenFile')} (${s.adminTokenFile})`), tokenFile };
}

const OIDC_KEYS = ['oidcIssuer', 'oidcAudience', 'oidcJwksUrl', 'oidcAdminClaim'] as const;

/** OIDC sign-in: off unless one of its settings is given, then issuer, audience and JWKS URL are required. */
function oidc({ s, where }: Context, problems: string[]): OidcConfig | undefined {
  const given = OIDC_KEYS.filter((k) => s[k] !== undefined);
  if (given.length === 0) return undefined;
  const before = problems.length;
  for (const key of ['oidcIssuer', 'oidcAudience', 'oidcJwksUrl'] as const) {
    if (!s[key])
      problems.push(`${where(key)} is required when OIDC sign-in is configured (${given.map(where).join(', ')} set)`);
  }
  if (s.oidcJwksUrl) {
    const problem = secureUrlProblem(s.oidcJwksUrl);
    if (problem) problems.push(`${where('oidcJwksUrl')}: ${problem}`);
  }
  const claim = s.oidcAdminClaim ?? DEFAULT_OIDC_ADMIN_CLAIM;
  const eq = claim.indexOf('=');
  const name = eq > 0 ? claim.slice(0, eq).trim() : '';
  const value = eq > 0 ? claim.slice(eq + 1).trim() : '';
  if (!name || !value) {
    problems.push(
      `${where('oidcAdminClaim')}: must be <claim>=<value>, such as roles=tollgate-admin or tollgate_admin=true, got ${JSON.stringify(claim)}`,
    );
  }
  if (problems.length > before) return undefined;
  return { issuer: s.oidcIssuer!, audience: s.oidcAudience!, jwksUrl: s.oidcJwksUrl!, adminClaim: { name, value } };
}
