import type { CiIdentityField, CiProviderConfig, CiProviderKind } from '../config/index.js';
import { MAX_NAME_LENGTH } from '../tokens/names.js';
import { matchesGlob } from '../tokens/restrictions.js';
import type { CiIdentity } from '../tokens/store.js';

/**
 * An ID token's claims as trust policies read them: a claim by name, the policy's patterns, the
 * CI identity an issued token carries, and that token's name. Pure functions.
 */

export type Claims = Readonly<Record<string, unknown>>;

/** Longest identity value kept: claims are signed by a trusted issuer, but land in the store and in events. */
const MAX_VALUE_LENGTH = 256;

/**
 * A claim by name: the top-level claim of that name (`oidc.circleci.com/vcs-ref`), else a path
 * into objects whose keys may hold dots themselves (`kubernetes.io.namespace` is the claim
 * `kubernetes.io`, then its `namespace`): at each level the longest key that exists wins.
 */
export function claimAt(claims: Claims, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  for (let dot = name.lastIndexOf('.'); dot > 0; dot = name.lastIndexOf('.', dot - 1)) {
    const head = name.slice(0, dot);
    const inner = Object.hasOwn(claims, head) ? claims[head] : undefined;
    if (inner !== null && typeof inner === 'object' && !Array.isArray(inner)) {
      const found = claimAt(inner as Claims, name.slice(dot + 1));
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** A string, number or boolean claim as a string; anything else (missing, object, array) is undefined. */
export function claimText(claims: Claims, name: string): string | undefined {
  const value = claimAt(claims, name);
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
    ? String(value)
    : undefined;
}

/** Claim → pattern, compiled once per policy: the pattern split at its `*`s, as matchesGlob takes it. */
export type ClaimRules = readonly (readonly [claim: string, glob: readonly string[]])[];

export function compileRules(rules: Readonly<Record<string, string>>): ClaimRules {
  return Object.entries(rules).map(([claim, pattern]) => [claim, pattern.split('*')] as const);
}

/** The first claim whose value does not match its pattern (a missing claim does not), or undefined when all do. */
export function firstMismatch(claims: Claims, rules: ClaimRules): string | undefined {
  for (const [claim, glob] of rules) {
    const value = claimText(claims, claim);
    if (value === undefined || !matchesGlob(glob, value)) return claim;
  }
  return undefined;
}

type Mapping = Readonly<Partial<Record<CiIdentityField, (claims: Claims) => string | undefined>>>;

/** The first of these claims that is present. */
const first =
  (...names: string[]) =>
  (claims: Claims) => {
    for (const name of names) {
      const value = claimText(claims, name);
      if (value !== undefined && value !== '') return value;
    }
    return undefined;
  };

/** The identity fields each kind of provider fills, from its own claims. docs/ci.md shows the same table. */
const MAPPINGS: Readonly<Record<CiProviderKind, Mapping>> = {
  github: {
    repository: first('repository'),
    ref: first('ref'),
    sha: first('sha'),
    workflow: first('workflow', 'job_workflow_ref'),
    runId: first('run_id'),
    actor: first('actor'),
  },
  gitlab: {
    repository: first('project_path'),
    ref: first('ref_path', 'ref'),
    sha: first('sha'),
    workflow: first('ci_config_ref_uri', 'pipeline_source'),
    runId: first('pipeline_id'),
    actor: first('user_login'),
  },
  circleci: {
    repository: first('oidc.circleci.com/vcs-origin', 'oidc.circleci.com/project-id'),
    ref: first('oidc.circleci.com/vcs-ref'),
    workflow: first('oidc.circleci.com/workflow-id'),
    runId: first('oidc.circleci.com/pipeline-id'),
  },
  buildkite: {
    repository: (c) => joined(c, 'organization_slug', 'pipeline_slug'),
    ref: first('build_branch'),
    sha: first('build_commit'),
    workflow: first('step_key'),
    runId: first('build_number'),
  },
  kubernetes: {
    repository: (c) => joined(c, 'kubernetes.io.namespace', 'kubernetes.io.serviceaccount.name'),
    runId: first('kubernetes.io.pod.name'),
  },
  generic: {},
};

/** `a/b` from two claims, when both are present. */
function joined(claims: Claims, a: string, b: string): string | undefined {
  const x = claimText(claims, a);
  const y = claimText(claims, b);
  return x && y ? `${x}/${y}` : undefined;
}

const FIELDS: readonly CiIdentityField[] = ['repository', 'ref', 'sha', 'workflow', 'runId', 'actor'];

/** The CI identity an issued token carries: the policy, `sub`, the project, and what the kind's mapping (or `claims`) finds. */
export function ciIdentity(
  provider: Pick<CiProviderConfig, 'name' | 'kind' | 'claims'>,
  claims: Claims,
  subject: string,
  project: string | undefined,
): CiIdentity {
  const identity: CiIdentity = { provider: provider.name, subject: bounded(subject) };
  if (project !== undefined) identity.project = bounded(project);
  const mapping = MAPPINGS[provider.kind];
  for (const field of FIELDS) {
    const override = provider.claims[field];
    const value = override === undefined ? mapping[field]?.(claims) : claimText(claims, override);
    if (value !== undefined && value !== '') identity[field] = bounded(value);
  }
  return identity;
}

function bounded(value: string): string {
  return value.length > MAX_VALUE_LENGTH ? value.slice(0, MAX_VALUE_LENGTH) : value;
}

/**
 * The name of a token issued to a CI job: `ci:<provider>:<repository or subject>#<run id>`, in
 * printable ASCII (other characters become `?`), at most MAX_NAME_LENGTH characters: a long
 * middle part is cut, marked by a final `~`, so that the provider and the run id stay whole. It starts
 * with `ci:`, never with `tok_`. Making it unique among live tokens is the issuer's job.
 */
export function ciTokenName(identity: Pick<CiIdentity, 'provider' | 'subject' | 'repository' | 'runId'>): string {
  const ascii = (text: string) => text.replace(/[^\x20-\x7e]/g, '?');
  const head = `ci:${ascii(identity.provider)}:`;
  const tail = identity.runId ? ascii(`#${identity.runId}`).slice(0, 40) : '';
  const middle = ascii(identity.repository || identity.subject);
  const room = MAX_NAME_LENGTH - head.length - tail.length;
  return `${head}${middle.length > room ? `${middle.slice(0, room - 1)}~` : middle}${tail}`.trim();
}
