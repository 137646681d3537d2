import { z } from 'zod';
import { parseRestrictions } from '../tokens/restrictions.js';
import { schemaShape, type Field } from './schema.js';
import type { Checked, Context } from './sources.js';
import type { CiExchangeConfig, CiProviderConfig, CiProviderKind } from './types.js';
import { got, parseHttpUrl, secureUrlProblem } from './urls.js';

/**
 * CI trust policies (`ciProviders`, config file only) and the exchange's global limits: which
 * OIDC ID tokens a CI job may exchange for a short-lived Tollgate token, and of which type.
 * docs/ci.md is the guide; this file declares the fields and checks them.
 */

export const DEFAULT_CI_MAX_ID_TOKEN_LIFETIME_MS = 3_600_000;
export const DEFAULT_CI_CLOCK_SKEW_MS = 60_000;
export const DEFAULT_CI_EXCHANGES_PER_ADDRESS_PER_MINUTE = 60;
export const DEFAULT_CI_EXCHANGES_PER_SUBJECT_PER_MINUTE = 30;
export const DEFAULT_CI_TOKEN_TTL = '1h';
export const DEFAULT_CI_PURGE_GRACE_MS = 3_600_000;
export const DEFAULT_CI_PURGE_INTERVAL_MS = 60_000;
export const MAX_CI_TOKEN_TTL_MS = 86_400_000;
/** Skew is for clocks that drift, not for stale tokens. */
export const MAX_CI_CLOCK_SKEW_MS = 300_000;

/** How a provider's claims become the token's CI identity (repository, ref, sha, workflow, run, actor). */
export const CI_PROVIDER_KINDS = ['github', 'gitlab', 'circleci', 'buildkite', 'kubernetes', 'generic'] as const;
/** The identity fields a provider's `claims` may map to a claim of its own. */
export const CI_IDENTITY_FIELDS = ['repository', 'ref', 'sha', 'workflow', 'runId', 'actor'] as const;

/** Issuers whose kind is known without `kind`. */
const KNOWN_ISSUERS: readonly [RegExp, CiProviderKind][] = [
  [/^https:\/\/token\.actions\.githubusercontent\.com$/, 'github'],
  [/^https:\/\/[^/]+\/_services\/token$/, 'github'], // GitHub Enterprise Server
  [/^https:\/\/gitlab\.com$/, 'gitlab'],
  [/^https:\/\/oidc\.circleci\.com\/org\/[^/]+$/, 'circleci'],
  [/^https:\/\/agent\.buildkite\.com$/, 'buildkite'],
];

const claimName = z
  .string()
  .min(1, 'claim names must not be empty')
  .max(200, 'claim names must be at most 200 characters');
const claimGlobs = z.record(
  claimName,
  z
    .string({ error: 'must map claim names to patterns (strings)' })
    .min(1, 'patterns must not be empty')
    .max(500, 'patterns must be at most 500 characters'),
);

/** The fields of one entry of `ciProviders`. */
export const CI_PROVIDER_FIELDS = {
  name: {
    schema: z
      .string({ error: 'name is required' })
      .regex(/^[a-z0-9-]{1,40}$/, 'name must be 1 to 40 characters of a-z, 0-9 and "-"'),
    shown: 'required',
    doc: "The policy's name, unique: issued tokens are named `ci:<name>:<repository or subject>#<run id>`",
  },
  issuer: {
    schema: z.string({ error: 'issuer is required' }).min(1, 'issuer is required'),
    shown: 'required',
    doc: "The ID tokens' `iss`, exactly (https; http only on loopback). Its keys come from `<issuer>/.well-known/openid-configuration` (whose `issuer` must be this one) and the `jwks_uri` it names. Several policies may share an issuer: the first whose `allow` matches wins",
  },
  jwksUrl: {
    schema: z.string().min(1).optional(),
    shown: 'from discovery',
    doc: "The issuer's JWK Set, instead of discovery (https; http only on loopback). Policies sharing an issuer share it",
  },
  audience: {
    schema: z.string({ error: 'audience is required' }).min(1, 'audience is required'),
    shown: 'required',
    doc: 'The `aud` the ID token must carry (GitHub: `--audience` of `tollgate token exchange`; GitLab: `id_tokens: aud:`)',
  },
  allow: {
    schema: claimGlobs.optional(),
    shown: 'required',
    doc: "Claim → pattern (`*` matches any run of characters): every one must match, a missing claim does not. Required and non-empty, since an issuer such as GitHub's signs tokens for every repository on the service; prefer immutable claims (`repository_owner_id`, `repository_id`, `namespace_id`, `project_id`)",
  },
  production: {
    schema: claimGlobs.default({}),
    shown: 'none: always Development',
    doc: 'Claim → pattern, all matching: the token is Production (`{"ref": "refs/heads/main"}`); otherwise Development',
  },
  project: {
    schema: claimName.optional(),
    shown: 'none',
    doc: "The claim whose value is the project the token's downloads count against (`repository`); an ID token without it is refused",
  },
  tokenTtl: {
    schema: z.string({ error: 'tokenTtl must be <N>s, <N>m or <N>h' }).default(DEFAULT_CI_TOKEN_TTL),
    doc: 'Lifetime of issued tokens: `<N>s`, `<N>m` or `<N>h`, at most 24h',
  },
  restrictions: {
    schema: z
      .object(
        { routes: z.unknown(), packages: z.unknown(), networks: z.unknown(), rate: z.unknown() },
        { error: 'restrictions must be an object' },
      )
      .partial()
      .strict()
      .optional(),
    shown: 'none',
    doc: 'Restrictions of issued tokens, as `token create`\'s: `{"routes": ["/npm/"], "packages": ["@acme/*"], "networks": ["10.0.0.0/8"], "rate": "600/min"}`',
  },
  kind: {
    schema: z.enum(CI_PROVIDER_KINDS, { error: `kind must be one of ${CI_PROVIDER_KINDS.join(', ')}` }).optional(),
    shown: 'from the issuer, else `generic`',
    doc: `How claims map to the token's CI identity (docs/ci.md): ${CI_PROVIDER_KINDS.map((k) => `\`${k}\``).join(', ')}`,
  },
  claims: {
    schema: z.partialRecord(z.enum(CI_IDENTITY_FIELDS), claimName).optional(),
    shown: 'none',
    doc: `Identity field → claim, over the kind's mapping (${CI_IDENTITY_FIELDS.map((k) => `\`${k}\``).join(', ')})`,
  },
} satisfies Record<string, Field>;

type ProviderShape = { [K in keyof typeof CI_PROVIDER_FIELDS]: (typeof CI_PROVIDER_FIELDS)[K]['schema'] };

export const ciProviderSchema = z.object(schemaShape<ProviderShape>(CI_PROVIDER_FIELDS)).strict();

/** `<N>s`, `<N>m` or `<N>h` → milliseconds, or undefined. */
export function parseTtl(value: string): number | undefined {
  const match = /^(\d{1,6})([smh])$/.exec(value.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 's' | 'm' | 'h'];
  return ms > 0 ? ms : undefined;
}

function kindOf(issuer: string, kind: CiProviderKind | undefined): CiProviderKind {
  return kind ?? KNOWN_ISSUERS.find(([pattern]) => pattern.test(issuer))?.[1] ?? 'generic';
}

/** The trust policies and the exchange's limits; route prefixes are those of the checked routes. */
export function checkCi(
  { s, where }: Context,
  routePrefixes: readonly string[],
): Checked<{ ciProviders: CiProviderConfig[]; ciExchange: CiExchangeConfig }> {
  const problems: string[] = [];
  const entries = s.ciProviders ?? [];
  const providers: CiProviderConfig[] = [];
  const names = new Set<string>();
  const jwksByIssuer = new Map<string, string | undefined>();
  entries.forEach((entry, i) => {
    const at = `${where('ciProviders')}[${i}]`;
    const before = problems.length;
    if (names.has(entry.name))
      problems.push(`${at}.name: "${entry.name}" is the name of an earlier policy: names must be unique`);
    names.add(entry.name);
    for (const [field, value] of [
      ['issuer', entry.issuer],
      ['jwksUrl', entry.jwksUrl],
    ] as const) {
      const problem = value === undefined ? undefined : urlProblem(value);
      if (problem) problems.push(`${at}.${field}: ${problem}`);
    }
    if (jwksByIssuer.has(entry.issuer) && jwksByIssuer.get(entry.issuer) !== entry.jwksUrl) {
      problems.push(`${at}.jwksUrl: policies sharing the issuer ${entry.issuer} must name the same jwksUrl (or none)`);
    }
    jwksByIssuer.set(entry.issuer, entry.jwksUrl);
    const allow = entry.allow ?? {};
    if (Object.keys(allow).length === 0) {
      problems.push(
        `${at}.allow is required and must list at least one claim: an issuer such as GitHub's signs ID tokens for every repository on the service, so a policy without allow would let all of them in (for example {"repository_owner_id": "<your organisation's id>"})`,
      );
    } else if (Object.values(allow).every((pattern) => /^\*+$/.test(pattern))) {
      problems.push(
        `${at}.allow: every pattern is "*", which matches every value: name the owner, repository or namespace to trust`,
      );
    }
    const ttlMs = parseTtl(entry.tokenTtl);
    if (ttlMs === undefined)
      problems.push(`${at}.tokenTtl: must be <N>s, <N>m or <N>h, such as 1h${got(entry.tokenTtl, undefined)}`);
    else if (ttlMs > MAX_CI_TOKEN_TTL_MS)
      problems.push(
        `${at}.tokenTtl: must be at most 24h (tokens issued to CI jobs are short-lived)${got(entry.tokenTtl, undefined)}`,
      );
    let restrictions: CiProviderConfig['restrictions'] = null;
    try {
      restrictions = entry.restrictions ? parseRestrictions(entry.restrictions, routePrefixes) : null;
    } catch (err) {
      problems.push(`${at}.restrictions: ${(err as { detail?: string }).detail ?? (err as Error).message}`);
    }
    if (problems.length > before) return;
    providers.push({
      name: entry.name,
      kind: kindOf(entry.issuer, entry.kind),
      issuer: entry.issuer,
      jwksUrl: entry.jwksUrl,
      audience: entry.audience,
      allow,
      production: entry.production,
      project: entry.project,
      tokenTtlMs: ttlMs!,
      restrictions,
      claims: entry.claims ?? {},
    });
  });
  if (s.ciClockSkewMs > MAX_CI_CLOCK_SKEW_MS) {
    problems.push(
      `${where('ciClockSkewMs')}: must be at most ${MAX_CI_CLOCK_SKEW_MS} ms: the skew is for drifting clocks, not stale ID tokens${got(s.ciClockSkewMs, undefined)}`,
    );
  }
  return {
    value: {
      ciProviders: providers,
      ciExchange: {
        maxIdTokenLifetimeMs: s.ciMaxIdTokenLifetimeMs,
        clockSkewMs: s.ciClockSkewMs,
        perAddressPerMinute: s.ciExchangesPerAddressPerMinute,
        perSubjectPerMinute: s.ciExchangesPerSubjectPerMinute,
        purgeGraceMs: s.ciPurgeGraceMs,
        purgeIntervalMs: s.ciPurgeIntervalMs,
      },
    },
    problems,
  };
}

/** An issuer or JWKS URL: https (http on loopback), no credentials, query or fragment. */
function urlProblem(value: string): string | undefined {
  const problem = secureUrlProblem(value);
  if (problem) return problem;
  const url = parseHttpUrl(value)!;
  if (url.search || url.hash) return `must not carry a query or fragment${got(value, 'url')}`;
  return undefined;
}
