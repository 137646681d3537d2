import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken } from '../../src/tokens/format.js';
import { basic, bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { githubClaims, startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.js';
import { patternBytes, startOrigin, type Origin } from '../helpers/origin.js';
import { postExchange } from '../ci/ci-gateway.js';
import { freePort } from '../helpers/redis-server.js';
import { tempDir, type TempDir } from '../helpers/route-config.js';
import { until } from '../helpers/wait.js';

/**
 * The shipped Prometheus rules and Grafana dashboard only use metrics (and labels) the gateway
 * really exports: every metric name in a rule `expr` or a dashboard query is looked up on
 * /metrics after real traffic (Production, Development, auth failures, an upstream error, a
 * webhook sink that fails and drops), and `promtool check rules` accepts the rules file.
 */

const RULES_FILE = fileURLToPath(new URL('../../config/prometheus/tollgate-rules.yml', import.meta.url));
const DASHBOARD_FILE = fileURLToPath(new URL('../../config/grafana/tollgate-dashboard.json', import.meta.url));

/** Series Prometheus records itself for each scrape target, never on /metrics. */
const PROMETHEUS_SYNTHETIC: Record<string, string[]> = { up: [] };
/** Labels Prometheus attaches to every scraped series. */
const TARGET_LABELS = ['job', 'instance'];
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];

// ── PromQL, read just enough ─────────────────────────────────────────────────────────────────

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'offset',
  'bool',
  'atan2',
  'inf',
  'nan',
  'Inf',
  'NaN',
]);

interface PromqlUse {
  /** Metric names, as written (a histogram's `_bucket` included). */
  metrics: string[];
  /** Label names in each `metric{...}` selector. */
  selectors: { metric: string; labels: string[] }[];
  /** Label names in by/without/on/ignoring/group_* clauses. */
  grouping: string[];
}

function readPromql(expr: string): PromqlUse {
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // string literals
    .replace(/\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*/g, '') // Grafana variables
    .replace(/\[[^\]]*\]/g, ''); // ranges and subqueries
  const selectors: PromqlUse['selectors'] = [];
  s = s.replace(/([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}/g, (_all, metric: string | undefined, inner: string) => {
    const labels = [...inner.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((m) => m[1]!);
    selectors.push({ metric: metric ?? '', labels });
    return metric ? ` ${metric} ` : ' ';
  });
  const grouping: string[] = [];
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_all, _kw, inner: string) => {
    grouping.push(
      ...inner
        .split(',')
        .map((l) => l.trim())
        .filter(Boolean),
    );
    return ' ';
  });
  s = s.replace(/[a-zA-Z_][a-zA-Z0-9_]*\s*\(/g, '('); // function and aggregation names
  const metrics = [...s.matchAll(/(?<![0-9.a-zA-Z_:])[a-zA-Z_:][a-zA-Z0-9_:]*/g)]
    .map((m) => m[0])
    .filter((w) => !KEYWORDS.has(w));
  return { metrics, selectors, grouping };
}

/** `expr:` values of a Prometheus rules file: one line (plain or quoted), or a `|`/`>` block. */
function ruleExprs(yaml: string): { rules: number; exprs: string[] } {
  const lines = yaml.split('\n');
  const exprs: string[] = [];
  let rules = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\s*-?\s*(alert|record):\s*\S/.test(line)) rules++;
    const m = /^(\s*)(?:-\s+)?expr:\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    let value = m[2]!;
    if (/^[|>][-+]?$/.test(value)) {
      const indent = m[1]!.length;
      const block: string[] = [];
      while (i + 1 < lines.length && (lines[i + 1]!.trim() === '' || lines[i + 1]!.search(/\S/) > indent))
        block.push(lines[++i]!.trim());
      value = block.join(value.startsWith('>') ? ' ' : '\n').trim();
    } else if (/^".*"$/.test(value)) {
      value = JSON.parse(value) as string;
    } else if (/^'.*'$/.test(value)) {
      value = value.slice(1, -1).replace(/''/g, "'");
    } else {
      value = value.replace(/\s+#.*$/, '');
    }
    exprs.push(value);
  }
  return { rules, exprs };
}

interface DashboardQueries {
  exprs: string[];
  /** label_values(<selector>, <label>) of the template variables. */
  labelValues: { selector: string; label: string }[];
  panels: { id: number; type: string; title: string; datasource?: { uid?: string } }[];
}

function dashboardQueries(dashboard: unknown): DashboardQueries {
  const out: DashboardQueries = { exprs: [], labelValues: [], panels: [] };
  const d = dashboard as {
    panels?: unknown[];
    templating?: { list?: { type?: string; query?: string | { query?: string }; definition?: string }[] };
  };
  const walk = (panels: unknown[] | undefined) => {
    for (const p of panels ?? []) {
      const panel = p as {
        id: number;
        type: string;
        title: string;
        targets?: { expr?: string }[];
        panels?: unknown[];
        datasource?: { uid?: string };
      };
      out.panels.push(panel);
      for (const t of panel.targets ?? []) if (t.expr) out.exprs.push(t.expr);
      walk(panel.panels);
    }
  };
  walk(d.panels);
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const query = typeof v.query === 'string' ? v.query : (v.query?.query ?? v.definition ?? '');
    const lv = /^\s*label_values\(\s*(.+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(query);
    if (lv) out.labelValues.push({ selector: lv[1]!, label: lv[2]! });
    else if (query.trim()) out.exprs.push(query.replace(/^\s*query_result\((.*)\)\s*$/, '$1'));
  }
  return out;
}

// ── /metrics, read just enough ───────────────────────────────────────────────────────────────

interface Exposition {
  types: Map<string, string>;
  /** Sample name → label names seen on its samples. */
  samples: Map<string, Set<string>>;
}

function readExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s/.exec(line);
    if (!m) continue;
    const labels = samples.get(m[1]!) ?? new Set<string>();
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(l[1]!);
    samples.set(m[1]!, labels);
  }
  return { types, samples };
}

/** The metric family a name in a query belongs to (a histogram's `_bucket/_sum/_count` stripped). */
function familyOf(name: string, exposition: Exposition): string {
  for (const suffix of HISTOGRAM_SUFFIXES) {
    const base = name.slice(0, -suffix.length);
    if (name.endsWith(suffix) && ['histogram', 'summary'].includes(exposition.types.get(base) ?? '')) return base;
  }
  return name;
}

// ── Traffic ──────────────────────────────────────────────────────────────────────────────────

let origin: Origin;
let issuer: OidcIssuer;
let scratch: TempDir;
let gw: TestGateway;
let exposition: Exposition;
let metricsText = '';

const scrape = async () => (await fetch(`${gw.adminUrl}/metrics`)).text();

beforeAll(async () => {
  origin = await startOrigin((req, res) => {
    const body = (req.url ?? '').endsWith('.tgz') ? patternBytes(1500) : Buffer.from('{"name":"lodash","versions":{}}');
    res.writeHead(200, { 'content-length': body.length });
    res.end(body);
  });
  const deadPort = await freePort(); // nothing listens here: upstream refused
  const webhookPort = await freePort(); // nor here: the webhook sink fails, retries and drops
  issuer = await startOidcIssuer();
  await issuer.addKey();
  scratch = tempDir('tollgate-config-metrics-');
  gw = await startTestGateway({
    TOLLGATE_CONFIG: scratch.write(
      'tollgate.json',
      JSON.stringify({
        routes: [
          { prefix: '/npm/', upstream: `${origin.url}/`, ecosystem: 'npm' },
          { prefix: '/dead/', upstream: `http://127.0.0.1:${deadPort}/`, ecosystem: 'npm' },
        ],
        ciProviders: [
          {
            name: 'github',
            kind: 'github',
            issuer: issuer.url,
            audience: 'https://artifacts.example.com',
            allow: { repository_owner_id: '4200' },
            production: { ref: 'refs/heads/main' },
          },
        ],
      }),
    ),
    TOLLGATE_ACTIVITY_SINKS: 'file,webhook',
    TOLLGATE_ACTIVITY_WEBHOOK_URL: `http://127.0.0.1:${webhookPort}/hook`,
    TOLLGATE_ACTIVITY_MEMORY_EVENTS: '1',
    TOLLGATE_ACTIVITY_SPOOL_MAX_BYTES: '0',
    TOLLGATE_ACTIVITY_FLUSH_MS: '10',
    TOLLGATE_ACTIVITY_RETRY_MAX_MS: '100',
    TOLLGATE_LAST_USED_FLUSH_MS: '100',
  });

  const prod = await gw.createToken({ name: 'release-ci', type: 'production', expires: '30d' });
  const dev = await gw.createToken({ name: 'laptop', type: 'development' });
  const revoked = await gw.createToken({ name: 'old-ci', type: 'production' });
  await gw.store.revoke(revoked.record.id, 'test');
  const get = async (path: string, authorization?: string) => {
    const res = await fetch(`${gw.url}${path}`, { headers: authorization ? { authorization } : {} });
    await res.arrayBuffer();
    return res.status;
  };
  expect(await get('/npm/lodash/-/lodash-4.17.21.tgz', basic('web-shop', prod.token))).toBe(200);
  expect(await get('/npm/lodash/-/lodash-4.17.21+sp1.tgz', basic('web-shop', prod.token))).toBe(200);
  expect(await get('/npm/lodash', bearer(prod.token))).toBe(200);
  expect(await get('/dead/lodash/-/lodash-4.17.21.tgz', bearer(prod.token))).toBe(502);
  expect(await get('/npm/lodash/-/lodash-4.17.21.tgz', bearer(dev.token))).toBe(200);
  expect(await get('/npm/lodash', bearer(generateToken('production')))).toBe(401);
  expect(await get('/npm/lodash', bearer(revoked.token))).toBe(401);
  expect(await get('/npm/lodash')).toBe(401);
  // A token restricted to another route (a restriction refusal), and a leaked one revoked through the admin API.
  const restricted = await gw.createToken({
    name: 'dead-only',
    type: 'production',
    restrictions: { routes: ['/dead/'] },
  });
  expect(await get('/npm/lodash', bearer(restricted.token))).toBe(403);
  const leaked = await gw.createToken({ name: 'leaked-ci', type: 'production' });
  const adminToken = readFileSync(path.join(gw.dataDir, 'admin-token'), 'utf8').trim();
  const leakReport = await fetch(`${gw.adminUrl}/api/v1/tokens/revoke-leaked`, {
    method: 'POST',
    headers: { authorization: bearer(adminToken), 'content-type': 'application/json' },
    body: JSON.stringify({ tokens: [leaked.token], source: 'gitleaks' }),
  });
  expect(leakReport.status).toBe(200);
  // A CI job's token exchange, and a replay of its ID token.
  const idToken = await issuer.mint(githubClaims());
  expect((await postExchange(gw.url, idToken)).status).toBe(200);
  expect((await postExchange(gw.url, idToken)).status).toBe(400);

  await until(
    async () => /^tollgate_activity_events_total\{sink="webhook",outcome="dropped"\} [1-9]/m.test(await scrape()),
    10_000,
    'a dropped event',
    20,
  );
  await until(
    async () => /^tollgate_activity_events_total\{sink="webhook",outcome="retried"\} [1-9]/m.test(await scrape()),
    10_000,
    'a retried delivery',
    20,
  );
  await until(
    async () => /^tollgate_production_token_last_used_timestamp_seconds\{/m.test(await scrape()),
    10_000,
    'a last-used time',
    20,
  );
  metricsText = await scrape();
  exposition = readExposition(metricsText);
});

afterAll(async () => {
  await gw?.close();
  await origin?.close();
  await issuer?.close();
  scratch?.remove();
});

// ── The checks ───────────────────────────────────────────────────────────────────────────────

function checkUses(where: string, exprs: string[], extra: { selector: string; label: string }[] = []): Set<string> {
  const used = new Set<string>();
  const problems: string[] = [];
  const labelsOf = (metric: string): Set<string> => {
    if (metric in PROMETHEUS_SYNTHETIC) return new Set([...TARGET_LABELS, ...PROMETHEUS_SYNTHETIC[metric]!]);
    return new Set([...(exposition.samples.get(metric) ?? []), ...TARGET_LABELS]);
  };
  const check = (expr: string, extraLabels: string[] = []) => {
    const use = readPromql(expr);
    if (use.metrics.length === 0) problems.push(`${where}: no metric in ${JSON.stringify(expr)}`);
    for (const metric of use.metrics) {
      used.add(metric);
      if (metric in PROMETHEUS_SYNTHETIC) continue;
      const family = familyOf(metric, exposition);
      if (!exposition.types.has(family)) problems.push(`${where}: ${metric} (family ${family}) is not on /metrics`);
      else if (!exposition.samples.has(metric))
        problems.push(`${where}: ${metric} has no sample on /metrics after the traffic`);
    }
    for (const { metric, labels } of use.selectors) {
      for (const label of labels) {
        if (!labelsOf(metric).has(label)) problems.push(`${where}: ${metric} has no label ${label} (in ${expr})`);
      }
    }
    const available = new Set(use.metrics.flatMap((m) => [...labelsOf(m)]));
    for (const label of [...use.grouping, ...extraLabels]) {
      if (!available.has(label)) problems.push(`${where}: no metric in ${JSON.stringify(expr)} has the label ${label}`);
    }
  };
  for (const expr of exprs) check(expr);
  for (const { selector, label } of extra) check(selector, [label]);
  expect(problems, problems.join('\n')).toEqual([]);
  return used;
}

describe('config/prometheus/tollgate-rules.yml', () => {
  const { rules, exprs } = ruleExprs(readFileSync(RULES_FILE, 'utf8'));

  it('has an expr for every rule, and the parser finds them', () => {
    expect(rules).toBeGreaterThan(0);
    expect(exprs).toHaveLength(rules);
    for (const expr of exprs) expect(expr.length).toBeGreaterThan(5);
  });

  it('uses only metrics and labels the gateway exports after real traffic', () => {
    const used = checkUses('rules', exprs);
    expect(used.size).toBeGreaterThan(0);
    // The alerts the security team asked for are there.
    for (const metric of [
      'tollgate_production_token_expiry_timestamp_seconds',
      'tollgate_auth_failures_total',
      'tollgate_activity_events_total',
      'tollgate_upstream_errors_total',
    ]) {
      expect(used, metric).toContain(metric);
    }
    expect(
      exprs.some((e) =>
        /tollgate_production_token_expiry_timestamp_seconds.*-\s*time\(\)\s*<\s*14\s*\*\s*86400/.test(e),
      ),
    ).toBe(true);
    expect(exprs.some((e) => /tollgate_activity_events_total\{outcome="dropped"\}/.test(e))).toBe(true);
  });

  it('passes promtool check rules', () => {
    const run = spawnSync('promtool', ['check', 'rules', RULES_FILE], { encoding: 'utf8' });
    const error: NodeJS.ErrnoException | undefined = run.error;
    if (error?.code === 'ENOENT') {
      throw new Error('promtool not found: apt-get install prometheus');
    }
    const output = `${run.stdout}${run.stderr}`;
    expect(run.status, output).toBe(0);
    expect(output).toContain('SUCCESS');
    expect(output).toContain(`${rules} rules found`);
  });
});

describe('config/grafana/tollgate-dashboard.json', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as unknown;
  const { exprs, labelValues, panels } = dashboardQueries(dashboard);

  it('has a security row and an operations row, every panel on the chosen Prometheus data source', () => {
    const rows = panels.filter((p) => p.type === 'row').map((p) => p.title);
    expect(rows.some((t) => /security/i.test(t))).toBe(true);
    expect(rows.some((t) => /operations/i.test(t))).toBe(true);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels.filter((x) => x.type !== 'row')) expect(p.datasource?.uid, p.title).toBe('${datasource}');
  });

  it('uses only metrics and labels the gateway exports after real traffic', () => {
    expect(exprs.length).toBeGreaterThan(0);
    expect(labelValues.length).toBeGreaterThan(0);
    const used = checkUses('dashboard', exprs, labelValues);
    expect(used.size).toBeGreaterThan(0);
  });

  it('shows every Tollgate metric the gateway exports (process metrics aside)', () => {
    const used = new Set(exprs.flatMap((e) => readPromql(e).metrics).map((m) => familyOf(m, exposition)));
    const exported = [...exposition.types.keys()].filter(
      (n) => n.startsWith('tollgate_') && !n.startsWith('tollgate_process_'),
    );
    expect(exported.length).toBeGreaterThan(5);
    expect(exported.filter((n) => !used.has(n))).toEqual([]);
  });
});

describe('the PromQL reader used above', () => {
  it.each([
    [
      'sum by (ecosystem) (rate(tollgate_production_downloads_total{project=~"$project"}[$__rate_interval]))',
      ['tollgate_production_downloads_total'],
      ['project'],
      ['ecosystem'],
    ],
    [
      'histogram_quantile(0.99, sum by (le) (rate(tollgate_http_request_duration_seconds_bucket[5m])))',
      ['tollgate_http_request_duration_seconds_bucket'],
      [],
      ['le'],
    ],
    [
      'min by (token_name, token_id) (tollgate_production_token_expiry_timestamp_seconds) - time() < 14 * 86400',
      ['tollgate_production_token_expiry_timestamp_seconds'],
      [],
      ['token_name', 'token_id'],
    ],
    [
      'sum(rate(a_total[1d] offset 5m)) > 0 unless on (sink) b_total{x="y{z}"}',
      ['a_total', 'b_total'],
      ['x'],
      ['sink'],
    ],
    ['up{job="tollgate"} == 0', ['up'], ['job'], []],
  ])('reads %s', (expr, metrics, selectorLabels, grouping) => {
    const use = readPromql(expr);
    expect(use.metrics).toEqual(metrics);
    expect(use.selectors.flatMap((s) => s.labels)).toEqual(selectorLabels);
    expect(use.grouping).toEqual(grouping);
  });

  it('reads one-line, quoted and block exprs from a rules file', () => {
    const yaml = [
      'groups:',
      '  - name: g',
      '    rules:',
      '      - alert: A',
      '        expr: a_total > 0 # comment',
      '      - alert: B',
      '        expr: "b_total{x=\\"1\\"} > 0"',
      '      - record: c:rate5m',
      '        expr: |',
      '          sum(',
      '            rate(c_total[5m])',
      '          )',
      '        labels:',
      '          x: y',
    ].join('\n');
    expect(ruleExprs(yaml)).toEqual({
      rules: 3,
      exprs: ['a_total > 0', 'b_total{x="1"} > 0', 'sum(\nrate(c_total[5m])\n)'],
    });
  });
});
