import { z } from 'zod';
import type { Field } from './schema.js';
import { GROUPS, SETTINGS, type Setting } from './settings.js';

/**
 * docs/configuration.md, generated from the settings declaration: `npm run docs:config` writes
 * it, and test/config/reference.test.ts fails when the file in the tree is stale.
 */
export function configReference(): string {
  const settings = Object.entries(SETTINGS as Record<string, Setting>);
  const sections = Object.entries(GROUPS).map(([group, title]) => [
    `## ${title}`,
    '',
    '| Variable | File key | Default | Meaning |',
    '| --- | --- | --- | --- |',
    ...settings
      .filter(([, s]) => s.group === group)
      .map(([key, s]) =>
        row([s.env ? `\`${s.env}\`` : '(config file only)', `\`${s.file ?? key}\``, defaultText(s), meaning(s)]),
      ),
    '',
  ]);
  return [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/settings.ts by `npm run docs:config`: edit the declaration, not this file. -->',
    '',
    'Settings come from environment variables and, optionally, a JSON config file named by',
    '`TOLLGATE_CONFIG` whose keys are the settings\' file keys (`{"port": 8080, "routes": [...]}`); the',
    'environment wins. A dotted file key is a field of an object: `secretScanning.publicKeysFile` is',
    'written `{"secretScanning": {"publicKeysFile": "keys.json"}}`. Relative paths are resolved against',
    "the working directory, route directories against the config file's directory. Every value is",
    'checked at start; all problems are listed at once, one per line, naming the env var or',
    "`<file>: <key>` and the rule, and the process exits with code 2. A secret's value is never shown in",
    'those messages, and a URL that may carry one is shown as scheme://host[:port] at most.',
    '',
    ...sections.flat(),
    '## Routes',
    '',
    "The config file's `routes` list; each entry has these fields:",
    '',
    ...fieldTable(SETTINGS.routes.items),
    '',
    '```json',
    '{',
    '  "routes": [',
    '    { "prefix": "/npm/", "upstream": "http://registry.internal:4873/", "ecosystem": "npm",',
    '      "allowPost": ["/-/npm/v1/security/"] },',
    '    { "prefix": "/pypi/", "upstream": "http://pypi.internal/", "ecosystem": "pypi",',
    '      "upstreamAuth": { "type": "basic", "username": "gateway", "password": "..." } },',
    '    { "prefix": "/files/", "upstream": "/srv/artifacts", "ecosystem": "generic" }',
    '  ]',
    '}',
    '```',
    '',
    '## CI trust policies',
    '',
    "The config file's `ciProviders` list: whose OIDC ID tokens a CI job may exchange for a short-lived",
    'token, and of which type. [docs/ci.md](ci.md) has set-ups for GitHub Actions, GitLab CI and',
    'Kubernetes. Each entry has these fields:',
    '',
    ...fieldTable(SETTINGS.ciProviders.items),
    '',
    '```json',
    '{',
    '  "ciProviders": [',
    '    { "name": "github", "issuer": "https://token.actions.githubusercontent.com",',
    '      "audience": "https://artifacts.example.com", "allow": { "repository_owner_id": "1234567" },',
    '      "production": { "ref": "refs/heads/main" }, "project": "repository", "tokenTtl": "1h",',
    '      "restrictions": { "routes": ["/npm/"], "rate": "600/min" } }',
    '  ]',
    '}',
    '```',
    '',
  ].join('\n');
}

/** The table of a list setting's entry fields. */
function fieldTable(fields: Record<string, Field>): string[] {
  return [
    '| Field | Default | Meaning |',
    '| --- | --- | --- |',
    ...Object.entries(fields).map(([key, f]) => row([`\`${key}\``, defaultText(f), meaning(f)])),
  ];
}

/** A setting's default as the reference shows it: its `shown` text, else the schema's default, else unset. */
export function defaultText(field: Field): string {
  if (field.shown !== undefined) return field.shown;
  if (!(field.schema instanceof z.ZodDefault)) return 'unset';
  const value: unknown = field.schema.def.defaultValue;
  if (Array.isArray(value) && value.length === 0) return 'none';
  return `\`${String(value)}\``;
}

function meaning(field: Field): string {
  if (field.secret === 'value') return `${field.doc}. Secret: never shown in messages`;
  if (field.secret === 'url') return `${field.doc}. Shown in messages as scheme://host[:port] only`;
  return field.doc;
}

function row(cells: string[]): string {
  return `| ${cells.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`;
}
