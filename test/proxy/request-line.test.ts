import type { IncomingMessage, ServerResponse } from 'node:http';
import { getHeapSpaceStatistics } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { requestLineMembers } from '../../src/proxy/request-line.js';
import type { RequestState } from '../../src/proxy/state.js';

/**
 * The request log line's members (the line itself: test/logging/info-line.test.ts; a gateway's
 * real lines: test/proxy/forwarding.test.ts).
 */

const incoming = { method: 'GET', url: '/npm/left-pad/-/left-pad-1.3.0.tgz?x=1' } as IncomingMessage;
const outgoing = { statusCode: 200, writableFinished: true } as ServerResponse;

function state(durationMs: number): RequestState {
  return {
    requestId: 'ab12cd34-1',
    startNs: 0n,
    clientIp: '127.0.0.1',
    principal: undefined,
    bytes: 1024,
    upstreamError: undefined,
    route: undefined,
    rest: '',
    durationMs,
    onClientGone: undefined,
    authFailure: undefined,
    refusedBy: undefined,
  };
}

const members = (durationMs: number) =>
  JSON.parse(`{${requestLineMembers(state(durationMs), incoming, outgoing).slice(1)}}`) as Record<string, unknown>;

/** Bytes the old generation (and the large-object space) grew by while `work` ran. */
function oldGrowth(work: () => void): number {
  const used = () =>
    getHeapSpaceStatistics()
      .filter((s) => s.space_name === 'old_space' || s.space_name === 'large_object_space')
      .reduce((n, s) => n + s.space_used_size, 0);
  const before = used();
  work();
  return used() - before;
}

describe('requestLineMembers', () => {
  it('writes the duration in milliseconds to the microsecond, as a JSON number', () => {
    expect(members(1.2345678).durationMs).toBe(1.235);
    expect(members(0).durationMs).toBe(0);
    expect(members(60_000.0004).durationMs).toBe(60_000);
    expect(requestLineMembers(state(2.5), incoming, outgoing)).toContain('"durationMs":2.500,');
    expect(members(Number.NaN).durationMs).toBe(0); // never a line that does not parse
    expect(members(1.5)).toMatchObject({
      requestId: 'ab12cd34-1',
      method: 'GET',
      path: '/npm/left-pad/-/left-pad-1.3.0.tgz',
    });
  });

  it('leaves nothing per request in the old generation: a new duration each time is not kept by V8', () => {
    // `${ms}` of a fractional number goes through V8's number-string cache, which holds the text
    // until the cache slot is reused; the young-generation GCs in between promote it, and the old
    // generation grew ~7 bytes per line until a major GC (bench/README.md, "Number texts and
    // major GCs"). 300,000 lines allocate far more than a young generation: several GCs run.
    // A first round warms up (compiled code, caches and feedback of the first calls take room).
    let length = 0;
    const lines = () => {
      for (let i = 0; i < 300_000; i++)
        length += requestLineMembers(state(Math.random() * 100), incoming, outgoing).length;
    };
    lines();
    const grown = oldGrowth(lines);
    expect(length).toBeGreaterThan(0);
    expect(grown).toBeLessThan(1024 * 1024);
  });
});
