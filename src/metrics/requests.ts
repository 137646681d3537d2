import { statusClass, type Metrics } from './registry.js';

/**
 * Observes one finished proxy request: its token type (`none` when unauthenticated), status,
 * duration, why authentication failed (if it did) and the upstream failure's metric label (when
 * the upstream failed; not when the client went away), and which token restriction refused it.
 * Plain arguments: no object per request.
 */
export type ObserveRequest = (
  tokenType: string,
  status: number,
  durationMs: number,
  authFailure: string | undefined,
  upstreamErrorLabel: string | undefined,
  refusedBy: string | undefined,
) => void;

/**
 * The operations metrics of every proxied request: count and duration by token type and status
 * class, failed authentications by reason, challenges, upstream failures by kind.
 */
export function createRequestMetrics(metrics: Metrics): ObserveRequest {
  // Each labels() call builds its slot key: resolve the children once per (token type, status
  // class), a set of at most 3 x 5, looked up without building a key per request.
  type Children = { requests: { inc(): void }; duration: { observe(v: number): void } };
  const children = new Map<string, Map<string, Children>>();
  const childrenFor = (tokenType: string, cls: string): Children => {
    let byClass = children.get(tokenType);
    if (!byClass) children.set(tokenType, (byClass = new Map<string, Children>()));
    let c = byClass.get(cls);
    if (!c) {
      c = {
        requests: metrics.requests.labels(tokenType, cls),
        duration: metrics.requestDuration.labels(tokenType, cls),
      };
      byClass.set(cls, c);
    }
    return c;
  };
  return function observeRequest(tokenType, status, durationMs, authFailure, upstreamErrorLabel, refusedBy) {
    const child = childrenFor(tokenType, statusClass(status));
    child.requests.inc();
    child.duration.observe(durationMs / 1000);
    if (authFailure === 'missing') metrics.authChallenges.inc();
    else if (authFailure)
      metrics.authFailures.labels(authFailure === 'rate-limited' ? 'rate_limited' : authFailure).inc();
    if (authFailure === 'network') metrics.restrictionRefusals.labels('network').inc();
    else if (refusedBy) metrics.restrictionRefusals.labels(refusedBy).inc();
    if (upstreamErrorLabel) metrics.upstreamErrors.labels(upstreamErrorLabel).inc();
  };
}
