// @ts-check
// Tollgate admin page: the Create dialog (name, type, expiry, and the optional restrictions), then
// the new token shown once (reveal.js).

import { closeDialog, openDialog } from './dialogs.js';
import { resetReveal, showReveal } from './reveal.js';
import { knownRoutes, loadTokens } from './tokens.js';
import { $, DAY_MS, api, el, setStatus } from './ui.js';

/**
 * @typedef {import('./ui.js').CreatedToken} CreatedToken
 * @typedef {import('./ui.js').ApiError} ApiError
 */

/** The restriction inputs by the field name the API's errors use. */
const RESTRICTION_INPUTS = { packages: 'c-packages', networks: 'c-networks', rate: 'c-rate' };

/** The form back to its defaults, the token (if any) off the page. */
export function resetCreate() {
  $('create-form').reset();
  $('create-form').hidden = false;
  $('c-date-field').hidden = true;
  $('c-restrict').open = false;
  for (const id of ['c-name', ...Object.values(RESTRICTION_INPUTS)]) $(id).removeAttribute('aria-invalid');
  setStatus('create-error', '');
  $('create-submit').disabled = false;
  resetReveal();
}

/** One checkbox per configured route prefix. */
async function fillRoutes() {
  const prefixes = await knownRoutes();
  $('c-routes').replaceChildren(
    ...prefixes.map((prefix, i) =>
      el(
        'label',
        { for: `c-route-${i}` },
        el('input', { type: 'checkbox', id: `c-route-${i}`, name: 'route', value: prefix }),
        prefix,
      ),
    ),
  );
  $('c-routes-field').hidden = prefixes.length === 0;
}

$('create-open').addEventListener('click', () => {
  resetCreate();
  openDialog($('create-dialog'), $('create-open'), $('c-name'));
  void fillRoutes();
});
$('create-cancel').addEventListener('click', () => closeDialog($('create-dialog')));

$('c-expiry').addEventListener('change', () => {
  const onDate = $('c-expiry').value === 'date';
  $('c-date-field').hidden = !onDate;
  if (onDate) {
    const tomorrow = new Date(Date.now() + DAY_MS).toISOString().slice(0, 10);
    $('c-date').min = tomorrow;
    if (!$('c-date').value) $('c-date').value = new Date(Date.now() + 90 * DAY_MS).toISOString().slice(0, 10);
    $('c-date').focus();
  }
});

/** @param {string} text space- or comma-separated @returns {string[] | undefined} */
function list(text) {
  const items = text.split(/[\s,]+/).filter(Boolean);
  return items.length > 0 ? items : undefined;
}

/** What the Restrict section says, as the API takes it; undefined when nothing is restricted. */
function restrictionsInput() {
  /** @type {{ routes?: string[], packages?: string[], networks?: string[], rate?: string }} */
  const r = {};
  const routes = [.../** @type {NodeListOf<HTMLInputElement>} */ ($('c-routes').querySelectorAll('input:checked'))].map(
    (c) => c.value,
  );
  if (routes.length > 0) r.routes = routes;
  const packages = list($('c-packages').value);
  if (packages) r.packages = packages;
  const networks = list($('c-networks').value);
  if (networks) r.networks = networks;
  const rate = $('c-rate').value.trim();
  if (rate) r.rate = rate;
  return Object.keys(r).length > 0 ? r : undefined;
}

/**
 * Marks the field an API error names (`routes: ...`, `networks: ...`) and returns it, if any.
 * @param {string} message
 */
function markRestrictionField(message) {
  const match = /\b(routes|packages|networks|rate)\b/.exec(message);
  if (!match) return undefined;
  $('c-restrict').open = true;
  if (match[1] === 'routes') return $('c-routes').querySelector('input') || undefined;
  const input = $(RESTRICTION_INPUTS[/** @type {'packages' | 'networks' | 'rate'} */ (match[1])]);
  input.setAttribute('aria-invalid', 'true');
  return input;
}

$('create-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = $('c-name').value.trim();
  const type = $('create-form').elements.type.value;
  let expires = $('c-expiry').value;
  if (!name) {
    $('c-name').setAttribute('aria-invalid', 'true');
    setStatus('create-error', 'A name is required.');
    $('c-name').focus();
    return;
  }
  if (expires === 'date') {
    expires = $('c-date').value;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(expires)) {
      setStatus('create-error', 'Choose an expiry date.');
      $('c-date').focus();
      return;
    }
  }
  for (const id of ['c-name', ...Object.values(RESTRICTION_INPUTS)]) $(id).removeAttribute('aria-invalid');
  setStatus('create-error', '');
  $('create-submit').disabled = true;
  try {
    const created = /** @type {CreatedToken} */ (
      await api('POST', '/tokens', { name, type, expires, restrictions: restrictionsInput() })
    );
    showReveal(created);
    void loadTokens();
  } catch (err) {
    const { status, message } = /** @type {ApiError} */ (err);
    // 409: the name is taken; 400 about the name: it breaks a naming rule (the message says which).
    const badName = status === 409 || (status === 400 && /\bname\b/.test(message));
    if (badName) $('c-name').setAttribute('aria-invalid', 'true');
    const badRestriction = status === 400 && !badName ? markRestrictionField(message) : undefined;
    setStatus(
      'create-error',
      status === 409
        ? `A token named “${name}” already exists (names are compared ignoring case). Choose another name.`
        : message,
    );
    if (status !== 401) (badName ? $('c-name') : badRestriction || $('create-submit')).focus();
  } finally {
    $('create-submit').disabled = false;
  }
});
