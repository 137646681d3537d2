import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ENV_NAMES } from '../../src/config/index.js';

/** The README's configuration reference must name every setting the gateway reads. */
describe('README configuration reference', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

  it.each(Object.values(ENV_NAMES))('documents %s', (name) => {
    expect(readme).toContain(`\`${name}\``);
  });

  it('documents TOLLGATE_CONFIG', () => {
    expect(readme).toContain('`TOLLGATE_CONFIG`');
  });
});
