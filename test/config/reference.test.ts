import { describe, expect, it } from 'vitest';
import { configReference } from '../../src/config/docs.js';

describe('docs/configuration.md', () => {
  // `npm run docs:config` runs this file with --update, which rewrites the reference.
  it('is the reference generated from the settings declaration (stale: run npm run docs:config)', async () => {
    await expect(configReference()).toMatchFileSnapshot('../../docs/configuration.md');
  });
});
