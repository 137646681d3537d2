import type { TokenType } from '../tokens/format.js';

/**
 * Who a request is from, once authenticated. Never sent to the client; never holds the token.
 * Read-only: the requests of one connection can share one (see CredentialMemo).
 */
export interface Principal {
  readonly tokenId: string;
  readonly tokenName: string;
  readonly tokenType: TokenType;
  /** The Basic user (the project the download counts against); `default` when none. */
  readonly project: string;
}
