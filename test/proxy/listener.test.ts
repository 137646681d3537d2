import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { createProxyListener } from '../../src/proxy/listener.js';

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** Serves `app` through the proxy listener on a real socket; errors land in `errors`. */
async function serve(app: Hono<{ Bindings: HttpBindings }>) {
  const errors: unknown[] = [];
  const listener = createProxyListener(app.fetch, (err: unknown, outgoing: ServerResponse) => {
    errors.push(err);
    outgoing.writeHead(500, { 'content-type': 'text/plain' });
    outgoing.end('internal\n');
  });
  server = createServer(listener);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, errors };
}

describe('createProxyListener', () => {
  it('lets a handler write to c.env.outgoing and return the "already sent" marker, sync or async', async () => {
    const app = new Hono<{ Bindings: HttpBindings }>();
    app.get('/sync', (c) => {
      c.env.outgoing.writeHead(200, { 'content-type': 'text/plain' });
      c.env.outgoing.end('sync body');
      return RESPONSE_ALREADY_SENT;
    });
    app.get('/async', async (c) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      c.env.outgoing.writeHead(201, { 'x-from': 'handler' });
      c.env.outgoing.end('async body');
      return RESPONSE_ALREADY_SENT;
    });
    const { base, errors } = await serve(app);
    const sync = await fetch(`${base}/sync`);
    expect([sync.status, await sync.text()]).toEqual([200, 'sync body']);
    const later = await fetch(`${base}/async`);
    expect([later.status, later.headers.get('x-from'), await later.text()]).toEqual([201, 'handler', 'async body']);
    expect(errors).toEqual([]);
  });

  it('routes with Hono: method, path, parameters and query as the Fetch API has them', async () => {
    const app = new Hono<{ Bindings: HttpBindings }>();
    app.get('/pkg/:name', (c) => c.json({ name: c.req.param('name'), q: c.req.query('v'), url: new URL(c.req.url).pathname, agent: c.req.header('user-agent') }));
    app.post('/pkg/:name', (c) => c.text('posted', 202));
    const { base } = await serve(app);
    const got = await fetch(`${base}/pkg/left-pad?v=1.3.0`, { headers: { 'user-agent': 'npm/10' } });
    expect(await got.json()).toEqual({ name: 'left-pad', q: '1.3.0', url: '/pkg/left-pad', agent: 'npm/10' });
    const posted = await fetch(`${base}/pkg/left-pad`, { method: 'POST' });
    expect([posted.status, await posted.text()]).toEqual([202, 'posted']);
    const missing = await fetch(`${base}/nowhere`);
    expect(missing.status).toBe(404);
  });

  it('writes a Response a handler returns: status, headers (every Set-Cookie) and exact body length', async () => {
    const app = new Hono<{ Bindings: HttpBindings }>();
    app.get('/r', () => {
      const headers = new Headers({ 'content-type': 'application/json', 'x-one': '1' });
      headers.append('set-cookie', 'a=1');
      headers.append('set-cookie', 'b=2');
      return new Response('{"ünï":"cødé"}', { status: 418, headers });
    });
    const { base } = await serve(app);
    const res = await fetch(`${base}/r`);
    expect(res.status).toBe(418);
    expect(res.headers.get('x-one')).toBe('1');
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength('{"ünï":"cødé"}'));
    expect(await res.json()).toEqual({ ünï: 'cødé' });
  });

  it('hands a thrown error or a rejected handler to onError (without Hono onError), and keeps serving', async () => {
    const app = new Hono<{ Bindings: HttpBindings }>();
    app.get('/throw', () => {
      throw new Error('sync boom');
    });
    app.get('/reject', async () => {
      throw new Error('async boom');
    });
    app.onError((err) => {
      throw err; // rethrown: reaches the listener's onError
    });
    const { base, errors } = await serve(app);
    for (const p of ['/throw', '/reject']) {
      const res = await fetch(`${base}${p}`);
      expect([res.status, await res.text()]).toEqual([500, 'internal\n']);
    }
    expect(errors.map((e) => (e as Error).message)).toEqual(['sync boom', 'async boom']);
  });

  it('survives a Host header that is no host: the URL falls back to localhost, the path is kept', async () => {
    const app = new Hono<{ Bindings: HttpBindings }>();
    app.get('*', (c) => c.text(new URL(c.req.url).host + new URL(c.req.url).pathname));
    const { base } = await serve(app);
    const { request } = await import('node:http');
    const body = await new Promise<string>((resolve, reject) => {
      const req = request(`${base}/a/b`, { headers: { host: 'bad host/with space' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    });
    expect(body).toBe('localhost/a/b');
  });
});
