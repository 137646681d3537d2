import type { Context, Hono, MiddlewareHandler } from 'hono';
import { createError, isGatewayError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { revokeLeakedTokens, type LeakReportInput, type ReportLeaks } from '../tokens/leaks.js';
import { filterTokens, liveCiTokenCounts, parseTokenListFilter, type TokenListFilter } from '../tokens/listing.js';
import { createToken, rotateToken, toTokenView } from '../tokens/service.js';
import { PURGED_CI_KEPT, type TokenRecord, type TokenStore } from '../tokens/store.js';
import { auditEntries } from './audit.js';
import type { AdminEnv } from './auth.js';
import { sendAdminError } from './errors.js';
import { readJsonObject, readOptionalJsonObject } from './json-body.js';

/**
 * The admin API's token routes (mounted under /api/v1 by api.ts, behind requireAdmin):
 *
 *   GET  /tokens                  {"tokens": [token views, newest first], "routes": [route prefixes],
 *                                 "ciLive": {provider: live CI-issued tokens}, "matched": N}:
 *                                 ?source=admin (default) | ci | all, &provider=NAME, &limit= (CI rows)
 *   POST /tokens                  {"name", "type", "expires", "restrictions": {"routes", "packages",
 *                                 "networks", "rate"}} → 201 with the token, this once
 *   POST /tokens/:id/rotate       {"overlap": "24h"} (optional body) → 201: the new token, this once,
 *                                 and "previous": the rotated-out token
 *   POST /tokens/:id/revoke       revoke (a revoked token stays listed, marked)
 *   POST /tokens/revoke-leaked    {"tokens": ["tgp_...", {"token", "url", "location", "type"}], "source"}
 *                                 → {"results": [{"token_hash", "token_type", "label"}]}
 *   GET  /audit                   created, rotated, revoked and purged entries, newest first: ?limit=, ?source=
 *                                 (admin, the default: without the issuance of CI-issued tokens; ci; all)
 */

export interface TokenApiOptions {
  store: TokenStore;
  logger: Logger;
  now: () => number;
  /** The gateway's route prefixes: what a route restriction may name, and what the page offers. */
  routes: readonly string[];
  /** Default: revokeLeakedTokens on `store`, without an alert. */
  reportLeaks?: ReportLeaks | undefined;
  /** The client's address (a trusted proxy's X-Forwarded-For believed), for the leak alert. */
  clientIp: (c: Context) => string | undefined;
}

/** At most this many values per revoke-leaked request. */
export const MAX_LEAK_REPORTS = 1000;
/** revoke-leaked's body limit: 1000 values with their URLs (other routes take 16 KiB). */
export const LEAK_BODY_MAX_BYTES = 1024 * 1024;
const DEFAULT_AUDIT_LIMIT = 100;
/** CI-issued tokens listed at most per GET /tokens (?limit=): they come by the thousand. */
export const DEFAULT_CI_LIST_LIMIT = 200;
export const MAX_CI_LIST_LIMIT = 1000;
const DEFAULT_LEAK_SOURCE = 'admin-api';

function badInput(detail: string): never {
  throw createError('TOLLGATE_ERR_TOKEN_INPUT', detail);
}

const optional = (value: unknown, field: string): string | undefined => {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') badInput(`${field} must be a string`);
  return value;
};

/** revoke-leaked's body: a list of values or {token, url, location, type}, and who found them. */
export function parseLeakBody(body: Record<string, unknown>): { reports: LeakReportInput[]; source: string } {
  const { tokens } = body;
  if (!Array.isArray(tokens)) badInput('tokens must be a list of token values or {"token", "url", "location"} objects');
  if (tokens.length > MAX_LEAK_REPORTS) badInput(`tokens may list at most ${MAX_LEAK_REPORTS} values a request`);
  const reports = tokens.map((entry: unknown, i): LeakReportInput => {
    if (typeof entry === 'string') return { token: entry };
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry))
      badInput(`tokens[${i}] must be a string or an object`);
    const o = entry as Record<string, unknown>;
    const token = optional(o.token, `tokens[${i}].token`);
    if (token === undefined) badInput(`tokens[${i}].token is required`);
    return {
      token,
      url: optional(o.url, `tokens[${i}].url`),
      location: optional(o.location, `tokens[${i}].location`),
      type: optional(o.type, `tokens[${i}].type`),
    };
  });
  const source = optional(body.source, 'source')?.trim() || DEFAULT_LEAK_SOURCE;
  if (source.length > 100 || !/^[\x20-\x7e]+$/.test(source))
    badInput('source must be printable ASCII, at most 100 characters');
  return { reports, source };
}

export function registerTokenRoutes(
  api: Hono<AdminEnv>,
  requireAdmin: MiddlewareHandler<AdminEnv>,
  options: TokenApiOptions,
): void {
  const { store, logger, now, routes } = options;
  const reportLeaks: ReportLeaks =
    options.reportLeaks ??
    (async (reports, reporter) => (await revokeLeakedTokens(store, reports, reporter, now())).verdicts);

  /** The token with exactly this id (never a name: these routes take ids), else 404. */
  async function byId(c: Context, id: string): Promise<TokenRecord | Response> {
    // store.get also matches names (and refuses ambiguous ones), which these routes do not take.
    const existing = await store.get(id).catch((err: unknown) => {
      if (isGatewayError(err, 'TOLLGATE_ERR_TOKEN_AMBIGUOUS')) return undefined;
      throw err;
    });
    return existing && existing.id === id ? existing : sendAdminError(c, 'TOLLGATE_ERR_TOKEN_NOT_FOUND');
  }

  /**
   * By default the tokens admins made, every one (as before CI-issued tokens existed); with
   * source=ci or all, CI-issued ones too, at most `limit` rows (newest first; `matched` says how
   * many matched). `ciLive` counts the live CI-issued tokens per provider, whatever the filter.
   */
  api.get('/tokens', requireAdmin, async (c) => {
    const t = now();
    const q = c.req.query();
    const filter = queryFilter(q.source, q.provider);
    const records = await store.list();
    const matched = filterTokens(records, filter);
    const shown =
      filter.source === 'admin'
        ? matched
        : matched.slice(0, parseLimit(q.limit, DEFAULT_CI_LIST_LIMIT, MAX_CI_LIST_LIMIT));
    return c.json({
      tokens: shown.map((r) => toTokenView(r, t)),
      routes,
      ciLive: liveCiTokenCounts(records, t),
      matched: matched.length,
    });
  });

  api.post('/tokens', requireAdmin, async (c) => {
    const admin = c.get('admin');
    const body = await readJsonObject(c);
    for (const key of ['name', 'type', 'expires'] as const) {
      if (body[key] !== undefined && typeof body[key] !== 'string') {
        return sendAdminError(c, 'TOLLGATE_ERR_TOKEN_INPUT', `Invalid token input: ${key} must be a string`);
      }
    }
    const { restrictions } = body;
    if (
      restrictions !== undefined &&
      restrictions !== null &&
      (typeof restrictions !== 'object' || Array.isArray(restrictions))
    ) {
      return sendAdminError(
        c,
        'TOLLGATE_ERR_TOKEN_INPUT',
        'Invalid token input: restrictions must be an object {"routes", "packages", "networks", "rate"}',
      );
    }
    const created = await createToken(
      store,
      {
        name: body.name as string | undefined,
        type: body.type as string | undefined,
        expires: body.expires as string | undefined,
        createdBy: admin.identity,
        restrictions: restrictions ?? undefined,
        knownRoutes: routes,
      },
      now(),
    );
    const view = toTokenView(created.record, now());
    logger.info(
      {
        event: 'admin.token_created',
        tokenId: view.id,
        tokenName: view.name,
        tokenType: view.type,
        expiresAt: view.expiresAt,
        restricted: view.restrictions !== null,
        by: admin.identity,
        via: admin.via,
      },
      'admin: token created',
    );
    // The token's view plus the token itself: this once.
    return c.json({ ...view, token: created.token }, 201);
  });

  api.post('/tokens/revoke-leaked', requireAdmin, async (c) => {
    const admin = c.get('admin');
    const { reports, source } = parseLeakBody(await readJsonObject(c));
    const results = await reportLeaks(reports, { source, by: admin.identity, clientIp: options.clientIp(c) });
    const revoked = results.filter((v) => v.label === 'true_positive').length;
    logger.info(
      { event: 'admin.leaks_reported', reported: reports.length, revoked, source, by: admin.identity, via: admin.via },
      'admin: leaked tokens reported',
    );
    return c.json({ results });
  });

  api.post('/tokens/:id/rotate', requireAdmin, async (c) => {
    const admin = c.get('admin');
    const id = c.req.param('id');
    const body = await readOptionalJsonObject(c);
    if (body.overlap !== undefined && typeof body.overlap !== 'string') {
      return sendAdminError(
        c,
        'TOLLGATE_ERR_TOKEN_INPUT',
        'Invalid token input: overlap must be a string such as "24h" or "0"',
      );
    }
    const existing = await byId(c, id);
    if (existing instanceof Response) return existing;
    const rotated = await rotateToken(store, id, { overlap: body.overlap, by: admin.identity }, now());
    const view = toTokenView(rotated.record, now());
    const previous = toTokenView(rotated.previous, now());
    logger.info(
      {
        event: 'admin.token_rotated',
        tokenId: view.id,
        previousTokenId: previous.id,
        tokenName: view.name,
        tokenType: view.type,
        previousEndsAt: previous.endsAt,
        by: admin.identity,
        via: admin.via,
      },
      'admin: token rotated',
    );
    return c.json({ ...view, token: rotated.token, previous }, 201);
  });

  api.post('/tokens/:id/revoke', requireAdmin, async (c) => {
    const admin = c.get('admin');
    const id = c.req.param('id');
    const existing = await byId(c, id);
    if (existing instanceof Response) return existing;
    const record = await store.revoke(id, admin.identity, now());
    if (existing.revokedAt === null) {
      logger.info(
        {
          event: 'admin.token_revoked',
          tokenId: record.id,
          tokenName: record.name,
          tokenType: record.type,
          by: admin.identity,
          via: admin.via,
        },
        'admin: token revoked',
      );
    }
    return c.json({ token: toTokenView(record, now()) });
  });

  /**
   * CI-issued tokens are issued one per job: by default the trail shows what people did (an
   * admin revoking a CI-issued token included), not every issuance; source=ci shows only the
   * entries of CI-issued tokens, source=all everything.
   */
  api.get('/audit', requireAdmin, async (c) => {
    const limit = parseLimit(c.req.query('limit'), DEFAULT_AUDIT_LIMIT, 1000);
    const { source } = queryFilter(c.req.query('source'), undefined);
    const [records, purged] = await Promise.all([store.list(), store.purgedCi(PURGED_CI_KEPT)]);
    const entries = auditEntries(records, purged).filter((e) => {
      if (source === 'all') return true;
      if (source === 'ci') return e.ci !== undefined;
      return e.ci === undefined || e.action === 'revoked';
    });
    return c.json({ entries: entries.slice(0, limit) });
  });
}

/** A token list filter from query parameters: bad input is TOLLGATE_ERR_ADMIN_QUERY naming the parameter. */
function queryFilter(source: string | undefined, provider: string | undefined): TokenListFilter {
  try {
    return parseTokenListFilter({ source, provider });
  } catch (err) {
    if (isGatewayError(err, 'TOLLGATE_ERR_TOKEN_INPUT')) throw createError('TOLLGATE_ERR_ADMIN_QUERY', err.detail);
    throw err;
  }
}

export function parseLimit(value: string | undefined, fallback: number, max: number): number {
  const n = Number(value);
  if (value === undefined || value === '' || !Number.isFinite(n)) return fallback;
  return Math.min(max, Math.max(1, Math.floor(n)));
}
