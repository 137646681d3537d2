import type { TokenType } from '../tokens/format.js';
import type { CompiledRestrictions } from '../tokens/restrictions.js';
import type { CiIdentity } from '../tokens/store.js';

/**
 * Who a request is from, once authenticated. Never sent to the client; never holds the token.
 * Read-only: the requests of one connection can share one (see CredentialMemo).
 */
export interface Principal {
  readonly tokenId: string;
  readonly tokenName: string;
  readonly tokenType: TokenType;
  /**
   * The project the download counts against: a CI token's own (its trust policy's `project`
   * claim), else the Basic user; `default` when none.
   */
  readonly project: string;
  /** The token's restrictions (the cached token's compiled form); undefined: none. */
  readonly restrictions: CompiledRestrictions | undefined;
  /** The CI job a token was issued to; undefined for tokens made by an admin. */
  readonly ci: CiIdentity | undefined;
}
