import { z } from 'zod';
import { fileURLToPath } from 'node:url';

// Constants and the route file's fields: what other modules need (ecosystems, defaults) without the loader.

export const ECOSYSTEMS = [
  'npm',
  'pypi',
  'maven',
  'go',
  'nuget',
  'composer',
  'deb',
  'rpm',
  'apk',
  'cargo',
  'generic',
] as const;
export type Ecosystem = (typeof ECOSYSTEMS)[number];

export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = '0.0.0.0';
export const DEFAULT_ADMIN_HOST = '127.0.0.1';
export const DEFAULT_ADMIN_PORT = 9090;
export const DEFAULT_DATA_DIR = './data';
export const DEFAULT_REDIS_PREFIX = '{tollgate}:';
export const DEFAULT_LOG_LEVEL = 'info';
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 30_000;
export const DEFAULT_UPSTREAM_CONNECTIONS = 512;
export const DEFAULT_UPSTREAM_HELD_PER_TOKEN = 128;
export const DEFAULT_CACHE_TTL_MS = 300_000;
export const DEFAULT_CACHE_MAX = 50_000;
export const DEFAULT_NEGATIVE_CACHE_TTL_MS = 10_000;
export const DEFAULT_NEGATIVE_CACHE_MAX = 50_000;
export const DEFAULT_CHANGE_POLL_MS = 250;
export const DEFAULT_CACHE_STALE_MS = 120_000;
export const DEFAULT_LAST_USED_FLUSH_MS = 5_000;
export const DEFAULT_SHUTDOWN_GRACE_MS = 25_000;
export const DEFAULT_HEADERS_TIMEOUT_MS = 20_000;
export const DEFAULT_CLIENT_IDLE_TIMEOUT_MS = 60_000;
export const ACTIVITY_SINKS = ['file', 'redis', 'webhook'] as const;
export type ActivitySinkName = (typeof ACTIVITY_SINKS)[number];
export const DEFAULT_ACTIVITY_WEBHOOK_TIMEOUT_MS = 10_000;
export const DEFAULT_ACTIVITY_STREAM_MAXLEN = 1_000_000;
export const DEFAULT_ACTIVITY_MEMORY_EVENTS = 10_000;
export const DEFAULT_ACTIVITY_SPOOL_MAX_BYTES = 256 * 1024 * 1024;
export const DEFAULT_ACTIVITY_BATCH_SIZE = 500;
export const DEFAULT_ACTIVITY_FLUSH_MS = 200;
export const DEFAULT_ACTIVITY_RECENT_MAX = 10_000;
export const DEFAULT_ACTIVITY_RETRY_MAX_MS = 30_000;
export const DEFAULT_METRICS_MAX_PROJECTS = 50;
export const DEFAULT_AUTH_FAILURE_BURST = 100;
export const DEFAULT_AUTH_FAILURE_REFILL_PER_MINUTE = 60;
export const DEFAULT_AUTH_FAILURE_MAX_ADDRESSES = 100_000;
export const DEFAULT_AUTH_FAILURE_WINDOW_MS = 60_000;
/** Admin browser sessions are short-lived: 8 hours. */
export const DEFAULT_SESSION_TTL_MS = 8 * 3_600_000;
/** What an OIDC bearer must carry to be an admin: `<claim>=<value>`. */
export const DEFAULT_OIDC_ADMIN_CLAIM = 'roles=tollgate-admin';
/** Admin tokens set by an operator must be at least this long (generated ones are 43 characters). */
export const MIN_ADMIN_TOKEN_LENGTH = 16;
/** The artifact tree shipped with the repo: what `npm start` serves when nothing is configured. */
export const DEFAULT_UPSTREAM_DIR = fileURLToPath(new URL('../../examples/artifacts', import.meta.url));

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * How much of a bad value a problem line may show: `value` settings are never shown (tokens,
 * credentials); `url` settings show scheme://host[:port] at most (userinfo, a path and a query
 * can each be a credential, a webhook path often is one).
 */
export type Secrecy = 'value' | 'url';

/** One setting, or one field of a route: its type (with its default), its reference line, its secrecy. */
export interface Field {
  schema: z.ZodType;
  /** The line in docs/configuration.md. */
  doc: string;
  /** The default as the reference shows it, where the schema has none of its own (unset, derived). */
  shown?: string;
  secret?: Secrecy;
}

const upstreamAuthSchema = z.union(
  [
    z.object({ type: z.literal('basic'), username: z.string(), password: z.string() }).strict(),
    z.object({ type: z.literal('bearer'), token: z.string().min(1) }).strict(),
    z.object({ type: z.literal('header'), name: z.string().min(1), value: z.string() }).strict(),
  ],
  {
    error: 'upstreamAuth must be {type:"basic",username,password}, {type:"bearer",token} or {type:"header",name,value}',
  },
);

export type UpstreamAuth = z.infer<typeof upstreamAuthSchema>;

/** Ecosystems whose metadata carries absolute upstream URLs, so rewriting is on by default. */
export const REWRITE_BY_DEFAULT: readonly Ecosystem[] = ['npm', 'pypi', 'cargo', 'nuget', 'composer'];

const code = (xs: readonly string[]) => xs.map((x) => `\`${x}\``).join(', ');

/** The fields of one entry of `routes` in the config file. */
export const ROUTE_FIELDS = {
  prefix: {
    schema: z
      .string({ error: 'prefix must be a path starting with "/"' })
      .regex(/^\/[\x21-\x7e]*$/, 'prefix must be a path starting with "/" with no spaces or control characters'),
    shown: 'required',
    doc: "Matched byte for byte against the raw request path, longest first; `/npm` also matches `/npm/`. What follows the prefix is appended to the upstream URL's path unchanged (`/npm/@scope%2fname` reaches the upstream as `/@scope%2fname`; nothing is decoded)",
  },
  upstream: {
    schema: z.string({ error: 'upstream must be an http(s) URL or a directory' }).min(1),
    shown: 'required',
    secret: 'url',
    doc: 'An http(s) URL (no credentials: use `upstreamAuth`), or a directory (relative to the config file) served as a static artifact tree with Range, HEAD, ETag and Last-Modified, never anything outside it',
  },
  ecosystem: {
    schema: z.enum(ECOSYSTEMS, { error: `ecosystem must be one of ${ECOSYSTEMS.join(', ')}` }).default('generic'),
    doc: `Artifact layout: ${code(ECOSYSTEMS)}`,
  },
  upstreamAuth: {
    schema: upstreamAuthSchema.optional(),
    secret: 'value',
    doc: 'The gateway\'s own credential for the upstream: `{"type":"basic","username":...,"password":...}`, `{"type":"bearer","token":...}` or `{"type":"header","name":...,"value":...}`. The client\'s Authorization header is never forwarded',
  },
  allowPost: {
    schema: z.array(z.string().regex(/^\//, 'allowPost entries must start with "/"')).default([]),
    shown: 'none',
    doc: "Path prefixes (below the route prefix) where a read-only POST is allowed, such as npm's audit endpoints. Every other method than GET and HEAD is refused with 405",
  },
  rewrite: {
    schema: z.boolean({ error: 'rewrite must be true or false' }).optional(),
    shown: `on for ${code(REWRITE_BY_DEFAULT)}`,
    doc: "Upstream URLs in metadata bodies (JSON, HTML, XML, text; gzip handled) and in redirects become the gateway's public URL for the route, streamed in bounded memory, sent chunked with a weak ETag. Such an upstream gets its own Host and no X-Forwarded-Host, so it names itself by its own origin. A redirect to another origin (object storage) is followed by the gateway, without credentials; never passed on raw",
  },
  followRedirects: {
    schema: z
      .union(
        [
          z.literal(false),
          z
            .object({
              hosts: z
                .array(z.string().regex(/^[A-Za-z0-9.-]+$/, 'followRedirects.hosts entries must be host names'))
                .default([]),
              cidrs: z.array(z.string()).default([]),
            })
            .strict(),
        ],
        { error: 'followRedirects must be false or {"hosts": [...], "cidrs": [...]}' },
      )
      .optional(),
    shown: 'public addresses only',
    doc: 'Where the gateway may follow an upstream\'s redirect to another origin (object storage): by default only to public addresses, never to loopback, private (RFC 1918, unique-local), link-local (cloud metadata), unspecified or multicast addresses, nor to the gateway\'s own listeners. `{"hosts": ["storage.internal"], "cidrs": ["10.1.0.0/16"]}` allows those as well (a listed host by name, whatever it resolves to); `false` follows none. The check is made on the address the connection goes to. A refused redirect is a 502',
  },
  rewriteFrom: {
    schema: z.array(z.string().regex(/^https?:\/\//, 'rewriteFrom entries must be http(s) URLs')).default([]),
    shown: 'none',
    secret: 'url',
    doc: 'Other base URLs the upstream uses for itself in bodies (besides `upstream`)',
  },
} satisfies Record<string, Field>;

type RouteShape = { [K in keyof typeof ROUTE_FIELDS]: (typeof ROUTE_FIELDS)[K]['schema'] };

export const routeFileSchema = z.object(schemaShape<RouteShape>(ROUTE_FIELDS)).strict();

export type RouteFileEntry = z.infer<typeof routeFileSchema>;

/** The zod shape of a declaration: each field's schema under its key. */
export function schemaShape<Shape>(fields: Record<string, Field>): Shape {
  return Object.fromEntries(Object.entries(fields).map(([key, field]) => [key, field.schema])) as Shape;
}
