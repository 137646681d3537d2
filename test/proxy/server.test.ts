import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigOrThrow } from '../../src/config/index.js';
import type { AuthOutcome } from '../../src/auth/authenticate.js';
import { createProxyHandler } from '../../src/proxy/server.js';
import type { Forwarder } from '../../src/proxy/forward/http.js';
import { captureLogger } from '../helpers/log-capture.js';

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

const allowed: AuthOutcome = {
  ok: true,
  principal: {
    tokenId: 'tok_x',
    tokenName: 'x',
    tokenType: 'development',
    project: 'default',
    restrictions: undefined,
    ci: undefined,
  },
};

/** The proxy handler on a real socket, with one directory route whose "forwarder" is `forward`. */
async function serve(forward: (path: string) => void, authenticate: () => AuthOutcome | Promise<AuthOutcome>) {
  const config = loadConfigOrThrow({ TOLLGATE_DATA_DIR: '/nonexistent-data-dir' });
  const { logger, lines } = captureLogger();
  const handler = createProxyHandler({
    config,
    authenticate,
    logger,
    directoryServer: () =>
      Object.assign(
        (_incoming: Parameters<Forwarder>[0], outgoing: Parameters<Forwarder>[1], rest: string) => {
          forward(rest);
          outgoing.writeHead(200, { 'content-type': 'text/plain' });
          outgoing.end(`served ${rest}`);
        },
        { close() {} },
      ),
  });
  server = createServer(handler.listener);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, lines };
}

describe('the proxy port handler', () => {
  it.each([
    { when: 'the token is decided at once', authenticate: () => allowed },
    { when: 'the token needed a store read', authenticate: () => Promise.resolve(allowed) },
  ])(
    'answers 500 with a JSON body, logs the error and keeps serving when a forwarder throws ($when)',
    async ({ authenticate }) => {
      const { base, lines } = await serve((path) => {
        if (path.startsWith('boom')) throw new Error('forwarder exploded');
      }, authenticate);
      const res = await fetch(`${base}/boom`, { headers: { authorization: 'Bearer x' } });
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ error: 'Internal error' });
      const ok = await fetch(`${base}/fine`, { headers: { authorization: 'Bearer x' } });
      expect([ok.status, await ok.text()]).toEqual([200, 'served fine']);
      expect(lines.join('')).toContain('unhandled error on proxy port');
      expect(lines.join('')).toContain('forwarder exploded');
    },
  );

  it('answers HEAD through the same steps as GET, with no body', async () => {
    const seen: string[] = [];
    const { base } = await serve(
      (path) => seen.push(path),
      () => allowed,
    );
    const res = await fetch(`${base}/file.txt`, { method: 'HEAD', headers: { authorization: 'Bearer x' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
    expect(seen).toEqual(['file.txt']);
  });
});
