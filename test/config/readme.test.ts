import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultText } from '../../src/config/docs.js';
import { ENV_NAMES, SETTINGS, type Setting } from '../../src/config/index.js';

const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
const byEnv = new Map<string, Setting>(
  Object.values(SETTINGS as Record<string, Setting>)
    .filter((s) => s.env)
    .map((s) => [s.env!, s]),
);

/** docs/configuration.md is the full reference (generated: see reference.test.ts); it must name every setting. */
describe('docs/configuration.md', () => {
  const reference = read('docs/configuration.md');

  it.each([...Object.values(ENV_NAMES), 'TOLLGATE_CONFIG'])('documents %s', (name) => {
    expect(reference).toContain(`\`${name}\``);
  });

  it.each(Object.keys(SETTINGS.routes.items))('documents the route field %s', (field) => {
    expect(reference).toContain(`| \`${field}\` |`);
  });
});

/** The README's Configuration section: the common settings, true to the declaration, and a link to the rest. */
describe('README configuration section', () => {
  const readme = read('README.md');
  const section = readme.slice(
    readme.indexOf('## Configuration\n'),
    readme.indexOf('## What the gateway does with a request'),
  );
  const rows = section.split('\n').filter((line) => line.startsWith('| `TOLLGATE_'));

  it('links the full reference, names TOLLGATE_CONFIG and lists the common settings', () => {
    expect(rows.length).toBeGreaterThanOrEqual(10);
    expect(section).toContain('](docs/configuration.md)');
    expect(section).toContain('`TOLLGATE_CONFIG`');
  });

  it('names only settings that exist', () => {
    const named = section.match(/TOLLGATE_[A-Z_]+/g) ?? [];
    expect(named.filter((name) => name !== 'TOLLGATE_CONFIG' && !byEnv.has(name))).toEqual([]);
  });

  it.each(rows.map((line) => [line.split('|')[1]!.trim(), line]))(
    'gives the declared default for %s',
    (names, line) => {
      const cells = line.split('|').map((c) => c.trim());
      const settings = [...names.matchAll(/`(TOLLGATE_[A-Z_]+)`/g)].map((m) => byEnv.get(m[1]!));
      expect(settings).not.toContain(undefined);
      expect(cells[2]).toBe([...new Set(settings.map((s) => defaultText(s!)))].join(', '));
    },
  );
});
