import os from 'node:os';
import { parseArgs } from 'node:util';
import type { Config } from '../config/index.js';
import { filterTokens, liveCiTokenCounts, parseTokenListFilter } from '../tokens/listing.js';
import { summariseRestrictions } from '../tokens/restrictions.js';
import { createdView, createToken, revokeToken, rotateToken, toTokenView, type TokenView } from '../tokens/service.js';
import { tokenEndsAt, type TokenRecord, type TokenStore } from '../tokens/store.js';

/** Exit code for configuration and usage errors (as main.ts). */
export const EXIT_CONFIG = 2;

/** Bad usage: exit 2 with the usage text. */
export class UsageError extends Error {}

export const TOKEN_USAGE = `  tollgate token create --name NAME --type production|development
                        [--expires never|<N>d|YYYY-MM-DD|<ISO timestamp>]
                        [--route PREFIX]... [--package GLOB]... [--allow-ip CIDR]... [--rate N/min] [--json]
  tollgate token rotate <id|name> [--overlap 0|<N>s|<N>m|<N>h|<N>d] [--json]
  tollgate token list [--ci [--provider NAME] | --all] [--json]
  tollgate token revoke <id|name> [--json]`;

export const TOKEN_NOTES = `Names: printable ASCII, not starting with tok_, unique among active tokens ignoring case.
Restrictions (repeat a flag for several): --route a configured route prefix, --package a package
name pattern (* matches any run of characters), --allow-ip an address or CIDR, --rate requests a
minute. rotate makes a new token with the same name, type, restrictions and expiry; the old one
keeps working for --overlap (default 24h). revoke takes an id, or a name (any case: every live
generation of it); a name two unrelated live tokens share is refused: revoke each by its id.
list shows the tokens admins made, and counts the live tokens issued to CI jobs per provider;
--ci lists those (--provider NAME: one provider's), with the job's identity; --all lists both.
`;

async function withStore<T>(fn: (store: TokenStore, config: Readonly<Config>) => Promise<T>): Promise<T> {
  // Loaded here, not at the top: `tollgate loadtest` runs where no config or store exists.
  const [{ loadConfig }, { openTokenStore }] = await Promise.all([
    import('../config/index.js'),
    import('../tokens/index.js'),
  ]);
  const result = loadConfig();
  if (!result.ok) {
    process.stderr.write(`tollgate: invalid configuration\n${result.problems.map((p) => `  ${p}\n`).join('')}`);
    process.exit(EXIT_CONFIG);
  }
  const store = await openTokenStore(result.config);
  try {
    return await fn(store, result.config);
  } finally {
    await store.close().catch(() => {});
  }
}

function cliUser(): string {
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    return 'cli';
  }
}

/** The list's state column: rotated tokens say until when they work, leaked ones say so. */
function stateText(v: TokenView): string {
  if (v.state === 'rotated') return `rotated, ends at ${v.endsAt}`;
  if (v.state === 'expired' && v.replacedBy !== null) return `rotated, ended at ${v.endsAt}`;
  if (v.state === 'revoked' && v.leak !== null) return `revoked (leaked, found by ${v.leak.source})`;
  return v.state;
}

/** A CI-issued token's creator: the job (`ci github acme/payments refs/heads/main run 4242`). */
function ciText(ci: NonNullable<TokenView['ci']>): string {
  const parts = ['ci', ci.provider, ci.repository ?? ci.subject];
  if (ci.ref) parts.push(ci.ref);
  if (ci.runId) parts.push(`run ${ci.runId}`);
  return parts.join(' ');
}

const COLUMNS: [string, (v: TokenView, r: TokenRecord) => string][] = [
  ['id', (v) => v.id],
  ['name', (v) => v.name],
  ['type', (v) => v.type],
  ['state', stateText],
  ['createdAt', (v) => v.createdAt],
  ['createdBy', (v) => (v.ci ? ciText(v.ci) : v.createdBy)],
  ['expiresAt', (v) => v.expiresAt ?? 'never'],
  ['lastUsedAt', (v) => v.lastUsedAt ?? '-'],
  ['restrictions', (_, r) => summariseRestrictions(r.restrictions)],
];

function table(records: TokenRecord[]): string {
  const cells = [
    COLUMNS.map(([name]) => name),
    ...records.map((r) => {
      const view = toTokenView(r);
      return COLUMNS.map(([, cell]) => cell(view, r));
    }),
  ];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return (
    cells
      .map((row) =>
        row
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

const SHOWN_ONCE = 'This is the only time the token is shown: store it in a secret manager now.\n';

export async function tokenCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'create': {
      const { values } = parseArgs({
        args: rest,
        options: {
          name: { type: 'string' },
          type: { type: 'string' },
          expires: { type: 'string', default: 'never' },
          route: { type: 'string', multiple: true },
          package: { type: 'string', multiple: true },
          'allow-ip': { type: 'string', multiple: true },
          rate: { type: 'string' },
          json: { type: 'boolean', default: false },
        },
        strict: true,
      });
      if (!values.name) throw new UsageError('token create needs --name NAME');
      if (!values.type) throw new UsageError('token create needs --type production|development');
      const created = await withStore((store, config) =>
        createToken(store, {
          name: values.name,
          type: values.type,
          expires: values.expires,
          createdBy: cliUser(),
          restrictions: {
            routes: values.route,
            packages: values.package,
            networks: values['allow-ip'],
            rate: values.rate,
          },
          knownRoutes: config.routes.map((r) => r.prefix),
        }),
      );
      const view = createdView(created);
      if (values.json) {
        process.stdout.write(`${JSON.stringify(view)}\n`);
      } else {
        process.stdout.write(`${created.token}\n`);
        const restricted = created.record.restrictions
          ? `, restricted to ${summariseRestrictions(created.record.restrictions)}`
          : '';
        process.stderr.write(
          `Created ${view.type} token "${view.name}" (${view.id}), expires ${view.expiresAt ?? 'never'}${restricted}.\n${SHOWN_ONCE}`,
        );
      }
      return;
    }
    case 'rotate': {
      const { values, positionals } = parseArgs({
        args: rest,
        options: { overlap: { type: 'string' }, json: { type: 'boolean', default: false } },
        allowPositionals: true,
        strict: true,
      });
      if (positionals.length !== 1) throw new UsageError('token rotate needs exactly one <id|name>');
      const rotated = await withStore((store) =>
        rotateToken(store, positionals[0]!, { overlap: values.overlap, by: cliUser() }),
      );
      const view = createdView(rotated);
      const endsAt = tokenEndsAt(rotated.previous);
      const previousEndsAt = endsAt === null ? null : new Date(endsAt).toISOString();
      if (values.json) {
        process.stdout.write(`${JSON.stringify({ ...view, replaces: rotated.previous.id, previousEndsAt })}\n`);
      } else {
        process.stdout.write(`${rotated.token}\n`);
        const until =
          endsAt !== null && endsAt > rotated.record.createdAt
            ? `keeps working until ${previousEndsAt}, then is refused`
            : 'is refused from now on';
        process.stderr.write(
          `Rotated ${view.type} token "${view.name}": the new token is ${view.id}; the previous one ` +
            `(${rotated.previous.id}) ${until}.\n${SHOWN_ONCE}`,
        );
      }
      return;
    }
    case 'list': {
      const { values } = parseArgs({
        args: rest,
        options: {
          ci: { type: 'boolean', default: false },
          provider: { type: 'string' },
          all: { type: 'boolean', default: false },
          json: { type: 'boolean', default: false },
        },
        strict: true,
      });
      if (values.ci && values.all) throw new UsageError('token list takes --ci or --all, not both');
      const filter = parseTokenListFilter({
        source: values.all ? 'all' : values.ci ? 'ci' : undefined,
        provider: values.provider,
      });
      const all = await withStore((store) => store.list());
      const records = filterTokens(all, filter);
      process.stdout.write(values.json ? `${JSON.stringify(records.map((r) => toTokenView(r)))}\n` : table(records));
      const counts = Object.entries(liveCiTokenCounts(all));
      if (filter.source === 'admin' && counts.length > 0) {
        // On stderr: stdout stays the list (and --json a JSON array).
        process.stderr.write(
          `Live tokens issued to CI jobs (not listed): ${counts.map(([p, n]) => `${p} ${n}`).join(', ')}; ` +
            'see them with --ci [--provider NAME].\n',
        );
      }
      return;
    }
    case 'revoke': {
      const { values, positionals } = parseArgs({
        args: rest,
        options: { json: { type: 'boolean', default: false } },
        allowPositionals: true,
        strict: true,
      });
      if (positionals.length !== 1) throw new UsageError('token revoke needs exactly one <id|name>');
      const { record, revoked } = await withStore((store) => revokeToken(store, positionals[0]!, cliUser()));
      const view = toTokenView(record);
      const others = revoked.filter((r) => r.id !== record.id).map((r) => r.id);
      const also =
        others.length > 0
          ? ` Also revoked its earlier generation still in its rotation overlap: ${others.join(', ')}.`
          : '';
      process.stdout.write(
        values.json ? `${JSON.stringify(view)}\n` : `Revoked token "${view.name}" (${view.id}).${also}\n`,
      );
      return;
    }
    default:
      throw new UsageError(
        sub ? `unknown token command "${sub}"` : 'token needs a command: create, rotate, list or revoke',
      );
  }
}
