import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ActivityPipeline } from '../activity/index.js';
import type { Metrics } from '../metrics/registry.js';
import { createRequestMetrics } from '../metrics/requests.js';
import { upstreamErrorLabel } from '../proxy/forward/errors.js';
import type { RequestState } from '../proxy/state.js';

/**
 * What happens when a proxied response is over: the operations metrics for every request, and
 * the activity recorder for authenticated ones (it keeps only Production, unless a Development
 * stream is configured). The one place where the proxy's request state meets metrics and
 * activity: it reads proxy/ and writes to metrics/ and activity/, so it sits above all three,
 * beside gateway.ts, which hands it to the proxy as `onRequestEnd` (proxy/ knows neither).
 */
export function createRequestEnd(metrics: Metrics, activity: ActivityPipeline) {
  const observeRequest = createRequestMetrics(metrics);
  return function requestEnded(state: RequestState, incoming: IncomingMessage, outgoing: ServerResponse): void {
    const status = outgoing.statusCode;
    const { principal, upstreamError } = state;
    observeRequest(
      principal?.tokenType ?? 'none',
      status,
      state.durationMs,
      state.authFailure,
      upstreamError !== undefined && upstreamError !== 'client-closed' ? upstreamErrorLabel(upstreamError) : undefined,
      state.refusedBy,
    );
    // A request a token's restrictions refused is no download: counted above, no activity event.
    if (principal && state.route && state.refusedBy === undefined) {
      activity.recorder.record({
        requestId: state.requestId,
        principal,
        ecosystem: state.route.ecosystem,
        path: state.rest,
        method: incoming.method ?? 'GET',
        status,
        bytes: state.bytes,
        durationMs: state.durationMs,
        clientIp: state.clientIp,
        userAgent: incoming.headers['user-agent'],
        // Not finished at 'close': the client went away before the end (the log line says aborted too).
        aborted: !outgoing.writableFinished,
        endedAt: Date.now(),
      });
    }
  };
}
