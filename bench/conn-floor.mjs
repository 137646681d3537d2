#!/usr/bin/env node
// @ts-check
// What an idle kept-alive connection costs the runtime itself, before any proxy code: the floor
// under the `keepalive` scenario (bench/README.md, "Ten thousand kept-alive connections").
//
// For each server kind, a fresh child process of the Node running this script, with npm start's
// V8 flags and malloc settings: `net` (a raw TCP server that answers one request with a fixed
// response, no HTTP parser) and `http` (node:http, answering `ok`). One request to warm it, 1 s,
// RSS read; then N connections opened 100 at a time, each sending one GET, reading its answer and
// staying open; 3 s later RSS is read again. The growth divided by N is the figure. Loopback only.
//
// Usage: node bench/conn-floor.mjs [--connections=N] [--flags="node flags"] [--only=net,http]
// Needs N + 512 open files (ulimit -n) in this process and the server's.
import { parseArgs } from 'node:util';
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import http from 'node:http';
import { SHIPPED_ENV, SHIPPED_NODE_FLAGS } from './lib/shipped.mjs';

if (process.argv[2] === '--serve') {
  const kind = process.argv[3];
  const server =
    kind === 'net'
      ? net.createServer((socket) => {
          socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'));
        })
      : http.createServer({ keepAliveTimeout: 60_000 }, (_req, res) => res.end('ok'));
  server.listen(0, '127.0.0.1', () => {
    const address = /** @type {net.AddressInfo} */ (server.address());
    process.send?.({ port: address.port });
  });
  process.on('message', () => {
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
    process.send?.({ rssKiB });
  });
} else {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '10000' },
      flags: { type: 'string' },
      only: { type: 'string', default: 'net,http' },
    },
  });
  const connections = Number(values.connections);
  if (!Number.isInteger(connections) || connections < 100 || connections % 100 !== 0) {
    console.error('conn-floor: --connections takes a multiple of 100, at least 100');
    process.exit(2);
  }
  const flags = values.flags === undefined ? SHIPPED_NODE_FLAGS : values.flags.split(/\s+/).filter(Boolean);
  const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));
  console.log(`conn-floor: ${process.version}, ${connections} idle connections, flags: ${flags.join(' ') || '(none)'}`);
  for (const kind of values.only.split(',')) {
    const child = fork(fileURLToPath(import.meta.url), ['--serve', kind], {
      execArgv: flags,
      env: { ...process.env, ...SHIPPED_ENV },
    });
    /** @returns {Promise<any>} */
    const next = () => new Promise((resolve) => child.once('message', resolve));
    const { port } = await next();
    const rss = async () => {
      const answer = next();
      child.send('rss');
      return (await answer).rssKiB;
    };
    /** @returns {Promise<net.Socket>} */
    const open = () =>
      new Promise((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nhost: floor\r\n\r\n'));
        socket.once('data', () => resolve(socket));
        socket.once('error', reject);
      });
    (await open()).destroy();
    await sleep(1000);
    const before = await rss();
    /** @type {net.Socket[]} */
    const sockets = [];
    try {
      for (let i = 0; i < connections; i += 100)
        sockets.push(...(await Promise.all(Array.from({ length: 100 }, open))));
    } catch (error) {
      console.error(`conn-floor: ${kind}: ${/** @type {Error} */ (error).message} (ulimit -n too low?)`);
      child.kill();
      process.exit(2);
    }
    await sleep(3000);
    const after = await rss();
    const growth = after - before;
    console.log(
      `${kind.padEnd(5)} RSS +${(growth / 1024).toFixed(1)} MiB, ${(growth / connections).toFixed(2)} KiB/conn`,
    );
    for (const socket of sockets) socket.destroy();
    child.kill();
  }
}
