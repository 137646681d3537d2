import { newEventId, type ActivityEvent } from '../../src/activity/event.js';

const T0 = Date.parse('2024-05-01T12:00:00.000Z');

/**
 * Activity events for sink, queue and query tests: ids and times ascend by `stepMs` from a fixed
 * instant, `perEvent(seq)` gives what each suite wants to vary, `over` what one call wants.
 */
export function eventFactory(options: { stepMs: number; perEvent?: (seq: number) => Partial<ActivityEvent> }) {
  let seq = 0;
  return function makeEvent(over: Partial<ActivityEvent> = {}): ActivityEvent {
    seq++;
    const at = T0 + seq * options.stepMs;
    return {
      id: newEventId(at),
      time: new Date(at).toISOString(),
      requestId: `req-${seq}`,
      tokenId: 'tok_1',
      tokenName: 'ci-main',
      tokenType: 'production',
      project: 'default',
      ecosystem: 'npm',
      kind: 'download',
      package: 'lodash',
      version: `4.17.${seq}`,
      file: `lodash-4.17.${seq}.tgz`,
      method: 'GET',
      status: 200,
      bytes: 1000,
      durationMs: 3.5,
      clientIp: '10.0.0.7',
      userAgent: 'npm/10.8.1 node/v20.15.0',
      sealed: false,
      aborted: false,
      truncated: [],
      ci: null,
      leak: null,
      ...options.perEvent?.(seq),
      ...over,
    };
  };
}
