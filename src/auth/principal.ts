import type { TokenType } from '../tokens/format.js';

/** Who a request is from, once authenticated. Never sent to the client; never holds the token. */
export interface Principal {
  tokenId: string;
  tokenName: string;
  tokenType: TokenType;
  /** The Basic user (the project the download counts against); `default` when none. */
  project: string;
}
