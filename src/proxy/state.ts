import type { Principal } from '../auth/principal.js';
import type { AuthFailure } from '../auth/authenticate.js';
import type { RouteConfig } from '../config/index.js';
import type { RestrictionKind } from '../tokens/restrictions.js';

/** What one proxied request accumulates for its log line (and, later, its activity event). */
export interface RequestState {
  requestId: string;
  /** process.hrtime.bigint() at arrival. */
  startNs: bigint;
  clientIp: string;
  principal: Principal | undefined;
  /** Body bytes sent to the client. */
  bytes: number;
  /** Set when the upstream failed: timeout, an errno code, reset, client-closed. */
  upstreamError: string | undefined;
  /** The route that matched (set before authentication), and the path below its prefix. */
  route: RouteConfig | undefined;
  rest: string;
  /** Set when the response is over. */
  durationMs: number;
  /**
   * Set by the forwarder while an upstream exchange is open: called when the client's
   * connection closes before its response was complete, to stop the upstream transfer.
   */
  onClientGone: (() => void) | undefined;
  /** Why authentication failed, when it did. */
  authFailure: AuthFailure | 'network' | undefined;
  /** Which of the token's restrictions refused the request, when one did (no activity event then). */
  refusedBy: RestrictionKind | undefined;
}
