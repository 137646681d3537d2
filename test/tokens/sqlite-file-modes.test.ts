import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { generateToken, generateTokenId, hashToken } from '../../src/tokens/format.js';
import { createSqliteTokenStore } from '../../src/tokens/sqlite-store.js';
import { inWorldWritableDir, sqliteModes } from '../helpers/file-modes.js';

const root = mkdtempSync(path.join(tmpdir(), 'tollgate-db-modes-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it('creates tollgate.db and its -wal and -shm files 0600 in a world-writable data dir under umask 0', async () => {
  const dataDir = path.join(root, 'data');
  await inWorldWritableDir(dataDir, async () => {
    const store = createSqliteTokenStore({ dataDir });
    try {
      await store.insert({
        id: generateTokenId(),
        name: 'ci',
        type: 'production',
        hash: hashToken(generateToken('production')),
        createdAt: Date.now(),
        createdBy: 'alice',
        expiresAt: null,
      });
      expect(sqliteModes(store.file)).toEqual({ db: '600', wal: '600', shm: '600' });
    } finally {
      await store.close();
    }
  });
});
