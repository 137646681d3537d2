// @ts-check
// Tollgate admin page: the Activity tab (recent Production downloads, filtered) and the Audit log.

import { $, api, ciIdentity, el, plural, setStatus, timeEl, timeFmt, typeBadge } from './ui.js';

/**
 * @typedef {import('./ui.js').Token} Token
 * @typedef {import('./ui.js').ActivityEvent} ActivityEvent
 * @typedef {import('./ui.js').AuditEntry} AuditEntry
 */

// ------------------------------------------------------------------------------------------
// Activity tab.

/** @type {Token[]} The tokens the filter names (Production ones); the Tokens tab hands over what it loaded. */
let tokens = [];
let ecosystemsLoaded = false;

/** @param {Token[]} list */
export function setTokens(list) {
  tokens = list;
  fillTokenFilter();
}

function fillTokenFilter() {
  const select = $('f-token');
  const current = select.value;
  const names = [...new Set(tokens.filter((t) => t.type === 'production').map((t) => t.name))].sort();
  select.replaceChildren(el('option', { value: '' }, 'Any token'), ...names.map((n) => el('option', { value: n }, n)));
  if (current && !names.includes(current)) select.append(el('option', { value: current }, current));
  select.value = current;
}

/** @param {unknown} list */
function fillEcosystems(list) {
  if (ecosystemsLoaded || !Array.isArray(list)) return;
  ecosystemsLoaded = true;
  const select = $('f-ecosystem');
  select.append(.../** @type {string[]} */ (list).map((e) => el('option', { value: e }, e)));
}

/** @param {ActivityEvent} e */
function activityRow(e) {
  const pkg = el('td', { class: 'mono' }, e.package || e.file || '—');
  if (e.kind === 'metadata') pkg.append(el('span', { class: 'sub' }, 'metadata'));
  if (e.aborted)
    pkg.append(el('span', { class: 'sub soon' }, `aborted after ${e.bytes.toLocaleString('en-US')} bytes`));
  return el(
    'tr',
    {},
    el('td', { class: 'nowrap' }, timeEl(e.time, timeFmt)),
    el('td', {}, e.project),
    el('td', {}, e.ecosystem),
    pkg,
    el('td', { class: 'mono' }, e.version || '—'),
    el('td', {}, e.tokenName),
    e.ci ? el('td', { class: 'ci' }, ...ciIdentity(e.ci)) : el('td', { class: 'muted' }, '—'),
    el(
      'td',
      {},
      e.sealed
        ? el('span', { class: 'badge badge-sealed' }, 'Sealed')
        : el('span', { class: 'badge badge-neutral' }, 'No'),
    ),
  );
}

export async function loadActivity() {
  if (tokens.length === 0) {
    try {
      tokens = /** @type {{ tokens: Token[] }} */ (await api('GET', '/tokens')).tokens;
      fillTokenFilter();
    } catch {
      // the filter just stays short
    }
  }
  const form = $('activity-filters');
  const params = new URLSearchParams();
  for (const key of /** @type {const} */ (['project', 'ecosystem', 'token', 'repository'])) {
    const value = form.elements[key].value.trim();
    if (value) params.set(key, value);
  }
  if (!form.elements.metadata.checked) params.set('kind', 'download');
  params.set('limit', '200');
  setStatus('activity-status', 'Loading activity…');
  form.elements.repository.removeAttribute('aria-invalid');
  try {
    const data = /** @type {{ events: ActivityEvent[], ecosystems: string[] }} */ (
      await api('GET', `/activity?${params}`)
    );
    fillEcosystems(data.ecosystems);
    $('activity-body').replaceChildren(...data.events.map(activityRow));
    $('activity-empty').hidden = data.events.length > 0;
    setStatus('activity-status', `${plural(data.events.length, 'event')}, newest first.`);
  } catch (err) {
    const message = /** @type {Error} */ (err).message;
    // A refused filter comes back naming its field: mark that field.
    if (/\brepository\b/.test(message)) form.elements.repository.setAttribute('aria-invalid', 'true');
    $('activity-body').replaceChildren();
    setStatus('activity-status', `Could not load activity: ${message}`);
  }
}

$('activity-filters').addEventListener('submit', (event) => {
  event.preventDefault();
  void loadActivity();
});
$('activity-filters').addEventListener('reset', () => setTimeout(() => void loadActivity(), 0));
$('activity-refresh').addEventListener('click', () => void loadActivity());

// ------------------------------------------------------------------------------------------
// Audit tab. A rotation or a leak says more under its action (`replaces tok_...`, `leaked, found by ...`).

const AUDIT_LABELS = { created: 'Created', rotated: 'Rotated', revoked: 'Revoked', purged: 'Purged' };
const AUDIT_BADGES = { created: 'active', rotated: 'rotated', revoked: 'revoked', purged: 'expired' };

export async function loadAudit() {
  setStatus('audit-status', 'Loading…');
  try {
    // Tokens issued to CI jobs come one per job: their issuance only when asked for.
    const source = $('a-ci').checked ? 'all' : 'admin';
    const data = /** @type {{ entries: AuditEntry[] }} */ (await api('GET', `/audit?source=${source}`));
    $('audit-body').replaceChildren(
      ...data.entries.map((a) =>
        el(
          'tr',
          {},
          el('td', { class: 'nowrap' }, timeEl(a.time, timeFmt)),
          el(
            'td',
            {},
            el('span', { class: `badge badge-${AUDIT_BADGES[a.action]}` }, AUDIT_LABELS[a.action]),
            a.detail ? el('span', { class: 'sub' }, a.detail) : null,
          ),
          el('td', { class: 'name' }, a.tokenName),
          el('td', {}, typeBadge(a.tokenType)),
          a.ci && a.action !== 'revoked' && a.action !== 'purged'
            ? el('td', { class: 'ci' }, ...ciIdentity(a.ci))
            : el('td', {}, a.by),
        ),
      ),
    );
    $('audit-empty').hidden = data.entries.length > 0;
    const n = data.entries.length;
    setStatus('audit-status', `${n} ${n === 1 ? 'entry' : 'entries'}, newest first.`);
  } catch (err) {
    setStatus('audit-status', `Could not load the audit log: ${/** @type {Error} */ (err).message}`);
  }
}

$('a-ci').addEventListener('change', () => void loadAudit());
$('audit-filters').addEventListener('submit', (event) => event.preventDefault());
