import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN_FILE_NAME, loadAdminCredential } from '../../src/admin/credential.js';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { captureLogger } from '../helpers/log-capture.js';

describe('admin token generation', () => {
  it('generates one into the data dir with mode 0600 on first start, logs where, never what; later starts reuse it', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-admin-cred-'));
    try {
      const first = captureLogger();
      const created = await loadAdminCredential({ token: undefined, tokenFile: undefined }, dataDir, first.logger);
      const file = path.join(dataDir, ADMIN_TOKEN_FILE_NAME);
      expect(created).toEqual({ token: expect.stringMatching(/^tga_[\w-]{43}$/) as string, source: 'generated', file });
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(readFileSync(file, 'utf8').trim()).toBe(created.token);
      expect(first.text()).toContain(JSON.stringify(file));
      expect(first.text()).not.toContain(created.token);

      const second = captureLogger();
      const again = await loadAdminCredential({ token: undefined, tokenFile: undefined }, dataDir, second.logger);
      expect(again).toEqual({ token: created.token, source: 'file', file });
      expect(second.text()).toContain(JSON.stringify(file));
      expect(second.text()).not.toContain(created.token);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('gives processes starting at once the same token', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-admin-cred-'));
    try {
      const { logger } = captureLogger();
      const results = await Promise.all(
        Array.from({ length: 8 }, () =>
          loadAdminCredential({ token: undefined, tokenFile: undefined }, dataDir, logger),
        ),
      );
      expect(new Set(results.map((r) => r.token)).size).toBe(1);
      expect(results.filter((r) => r.source === 'generated')).toHaveLength(1);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('the admin listener of a running gateway (real sockets)', () => {
  let gw: TestGateway;
  let adminToken: string;

  beforeAll(async () => {
    gw = await startTestGateway(); // no admin token configured: one is generated
    adminToken = readFileSync(path.join(gw.dataDir, ADMIN_TOKEN_FILE_NAME), 'utf8').trim();
  });
  afterAll(async () => {
    expect(gw.logs()).not.toContain(adminToken);
    await gw.close();
  });

  it('says in the log where the generated admin token is', () => {
    const line = gw.logRecords().find((r) => r.source === 'generated');
    expect(line).toMatchObject({
      file: path.join(gw.dataDir, ADMIN_TOKEN_FILE_NAME),
      msg: expect.stringMatching(/admin token/) as string,
    });
  });

  it('is admin-only on loopback too: 401 without a credential', async () => {
    const res = await fetch(`${gw.adminUrl}/api/v1/tokens`);
    expect(res.status).toBe(401);
  });

  it('signs in with the generated token, then creates, lists and revokes with the cookie; the proxy obeys', async () => {
    const signIn = await fetch(`${gw.adminUrl}/api/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: gw.adminUrl },
      body: JSON.stringify({ token: adminToken }),
    });
    expect(signIn.status).toBe(200);
    const { csrfToken } = (await signIn.json()) as { csrfToken: string };
    const cookie = signIn.headers.getSetCookie()[0]!.split(';')[0]!;
    const headers = { cookie, origin: gw.adminUrl, 'x-csrf-token': csrfToken };

    const create = await fetch(`${gw.adminUrl}/api/v1/tokens`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'socket-made', type: 'production' }),
    });
    expect(create.status).toBe(201);
    const created = (await create.json()) as { id: string; token: string };
    const artifact = `${gw.url}/generic/hello/1.0.0/hello-1.0.0.txt`;
    expect((await fetch(artifact, { headers: { authorization: bearer(created.token) } })).status).toBe(200);

    const revoke = await fetch(`${gw.adminUrl}/api/v1/tokens/${created.id}/revoke`, { method: 'POST', headers });
    expect(revoke.status).toBe(200);
    await expect
      .poll(async () => (await fetch(artifact, { headers: { authorization: bearer(created.token) } })).status, {
        timeout: 1000,
        interval: 25,
      })
      .toBe(401);
    expect(gw.logs()).not.toContain(created.token);
  });
});
