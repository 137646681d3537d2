import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * A directory route serves "never anything outside it": symbolic links in the tree (to a file, to
 * a directory, as a directory's index.html) that lead out of the root are 404, whatever they
 * point at; links that stay inside keep working, and the root itself may be a link.
 */
describe('directory routes and symbolic links', () => {
  let scratch: string;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'tollgate-links-'));
    const outside = path.join(scratch, 'outside');
    const tree = path.join(scratch, 'tree');
    mkdirSync(path.join(outside, 'dir'), { recursive: true });
    writeFileSync(path.join(outside, 'secret.txt'), 'OUTSIDE-SECRET');
    writeFileSync(path.join(outside, 'dir', 'file.txt'), 'OUTSIDE-SECRET-IN-DIR');
    writeFileSync(path.join(outside, 'index.html'), 'OUTSIDE-SECRET-INDEX');
    mkdirSync(path.join(tree, 'pkg', '1.0.0'), { recursive: true });
    mkdirSync(path.join(tree, 'simple', 'leaky'), { recursive: true });
    writeFileSync(path.join(tree, 'pkg', '1.0.0', 'pkg-1.0.0.tgz'), 'inside');
    symlinkSync(path.join(outside, 'secret.txt'), path.join(tree, 'link-to-file.txt'));
    symlinkSync(path.join(outside, 'dir'), path.join(tree, 'link-to-dir'));
    symlinkSync('../../outside/secret.txt', path.join(tree, 'pkg', 'relative-link.txt'));
    symlinkSync(path.join(outside, 'index.html'), path.join(tree, 'simple', 'leaky', 'index.html'));
    symlinkSync(path.join(tree, 'pkg', '1.0.0'), path.join(tree, 'latest'));
    symlinkSync(path.join(tree, 'pkg', '1.0.0', 'pkg-1.0.0.tgz'), path.join(tree, 'current.tgz'));
    // The route's root is itself a link to the tree, as the test helpers link examples/.
    symlinkSync(tree, path.join(scratch, 'root-link'));
    const config = path.join(scratch, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({ routes: [{ prefix: '/files/', upstream: path.join(scratch, 'root-link') }] }),
    );
    gw = await startTestGateway({ TOLLGATE_CONFIG: config });
    token = (await gw.createToken()).token;
  });
  afterAll(async () => {
    await gw?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  const get = async (p: string) => {
    const res = await fetch(`${gw.url}/files/${p}`, { headers: { authorization: bearer(token) }, redirect: 'manual' });
    return { status: res.status, body: await res.text() };
  };

  it.each([
    ['a link to a file outside', 'link-to-file.txt'],
    ['a file through a link to a directory outside', 'link-to-dir/file.txt'],
    ['a relative link that climbs out', 'pkg/relative-link.txt'],
    ['an index.html that links outside', 'simple/leaky/'],
  ])('prevents serving files outside the root through %s: 404', async (_what, p) => {
    const res = await get(p);
    expect(res.status).toBe(404);
    expect(res.body).not.toContain('OUTSIDE-SECRET');
  });

  it.each([
    ['a file', 'pkg/1.0.0/pkg-1.0.0.tgz'],
    ['a link to a file inside', 'current.tgz'],
    ['a file through a link to a directory inside', 'latest/pkg-1.0.0.tgz'],
  ])('serves %s inside the root (the root itself a link)', async (_what, p) => {
    expect(await get(p)).toEqual({ status: 200, body: 'inside' });
  });
});
