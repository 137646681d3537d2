import { describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../src/config/index.js';
import { restrictionRefusal } from '../../src/proxy/restrict.js';
import { compileRestrictions } from '../../src/tokens/restrictions.js';

/**
 * A package pattern is matched in the form each ecosystem's packages are named in (activity events
 * name them so): PyPI's PEP 503 normal form, NuGet's lower-case id; everywhere else as written, so
 * that a Maven `com.acme:*` never widens to `com-acme:*`.
 */
const route = (ecosystem: RouteConfig['ecosystem']) => ({ prefix: `/${ecosystem}/`, ecosystem }) as RouteConfig;

describe('restrictionRefusal: package patterns per ecosystem', () => {
  it.each([
    ['pypi', 'Foo_Bar', 'simple/foo-bar/', undefined],
    ['pypi', 'Foo_Bar', 'simple/foo.bar/', undefined],
    ['pypi', 'foo-*', 'packages/Foo_Baz-1.0.tar.gz', undefined],
    ['pypi', 'Foo_Bar', 'simple/foobar/', 'package'],
    ['nuget', 'Acme.*', 'v3-flatcontainer/acme.core/1.0.0/acme.core.1.0.0.nupkg', undefined],
    ['nuget', 'Acme.*', 'v3-flatcontainer/other.core/1.0.0/other.core.1.0.0.nupkg', 'package'],
    ['maven', 'com.acme:*', 'com/acme/core/1.0/core-1.0.jar', undefined],
    ['maven', 'com.acme:*', 'com-acme/core/1.0/core-1.0.jar', 'package'],
    ['npm', 'Foo_Bar', 'foo-bar', 'package'],
  ] as const)('%s: pattern %s, path %s: %s', (ecosystem, pattern, path, expected) => {
    const r = compileRestrictions({ packages: [pattern] })!;
    expect(restrictionRefusal(r, route(ecosystem), path, '127.0.0.1')).toBe(expected);
    // Again, from the forms made once for this record.
    expect(restrictionRefusal(r, route(ecosystem), path, '127.0.0.1')).toBe(expected);
  });
});
