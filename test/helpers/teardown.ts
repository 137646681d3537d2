import { afterAll } from 'vitest';

/** Anything a suite starts: a server, a gateway, a Redis, a temp dir. */
export type Closable = { close(): unknown } | { stop(): unknown } | { remove(): unknown };

/**
 * Call at a suite's top level (it registers the afterAll). `closing(resource)` returns the
 * resource and closes it (close(), stop() or remove(), whichever it has) after the suite's tests,
 * last started first, also when the beforeAll that started it failed half-way.
 */
export function closesAfterAll(): <T extends Closable>(resource: T) => T {
  const started: Closable[] = [];
  afterAll(async () => {
    for (const r of started.splice(0).reverse()) await ('close' in r ? r.close() : 'stop' in r ? r.stop() : r.remove());
  });
  return (resource) => {
    started.push(resource);
    return resource;
  };
}
