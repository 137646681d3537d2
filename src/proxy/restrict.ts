import { packagePatternIn, parseArtifactPath } from '../artifacts/parse-path/index.js';
import type { Ecosystem, RouteConfig } from '../config/index.js';
import type { ErrorCode } from '../errors.js';
import {
  anyGlobMatches,
  networkAllowed,
  type CompiledRestrictions,
  type Glob,
  type RestrictionKind,
} from '../tokens/restrictions.js';

/**
 * A restricted token's checks that need nothing but the request: where it came from (networks),
 * which route it asks for, which package. The first that refuses is returned. Rate is separate
 * (it counts, and may ask Redis).
 *
 * A path that names no package (an index: `/simple/`, `InRelease`, `repomd.xml`, a packument
 * list) passes a package restriction: it reveals no package's artifacts.
 */
export function restrictionRefusal(
  r: CompiledRestrictions,
  route: RouteConfig,
  rest: string,
  clientIp: string,
): RestrictionKind | undefined {
  if (!networkAllowed(r, clientIp)) return 'network';
  if (r.routes !== undefined && !r.routes.has(route.prefix)) return 'route';
  if (r.packages !== undefined) {
    const name = parseArtifactPath(route.ecosystem, rest).package;
    if (name !== null && !anyGlobMatches(globsFor(r, route.ecosystem), name)) return 'package';
  }
  return undefined;
}

/**
 * The token's package patterns in the form the route's ecosystem names packages (a pattern
 * `Foo_Bar` matches PyPI's `foo-bar`, `Acme.*` NuGet's `acme.core`), made once per cached token
 * record (the WeakMap's key) and ecosystem, then reused: no pattern is rewritten per request.
 */
const NORMALISED = new WeakMap<CompiledRestrictions, Map<Ecosystem, readonly Glob[]>>();

function globsFor(r: CompiledRestrictions, ecosystem: Ecosystem): readonly Glob[] {
  const globs = r.packages ?? [];
  if (ecosystem !== 'pypi' && ecosystem !== 'nuget') return globs;
  let forms = NORMALISED.get(r);
  if (forms === undefined) NORMALISED.set(r, (forms = new Map<Ecosystem, readonly Glob[]>()));
  let normalised = forms.get(ecosystem);
  if (normalised === undefined) {
    normalised = globs.map((glob) => packagePatternIn(ecosystem, glob.join('*')).split('*'));
    forms.set(ecosystem, normalised);
  }
  return normalised;
}

/** The answers to a refused restriction (a network refusal is answered as an unknown token instead). */
export const RESTRICTION_CODES: Readonly<Record<Exclude<RestrictionKind, 'network'>, ErrorCode>> = {
  route: 'TOLLGATE_ERR_TOKEN_RESTRICTED_ROUTE',
  package: 'TOLLGATE_ERR_TOKEN_RESTRICTED_PACKAGE',
  rate: 'TOLLGATE_ERR_TOKEN_RESTRICTED_RATE',
};
