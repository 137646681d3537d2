import type { Principal } from '../auth/principal.js';
import type { AuthFailure } from '../auth/authenticate.js';

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
  /** Why authentication failed, when it did. */
  authFailure: AuthFailure | undefined;
}
