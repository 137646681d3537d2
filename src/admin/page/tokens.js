// @ts-check
// Tollgate admin page: the Tokens table, and its row actions (Rotate, Revoke) with their dialogs.

import { setTokens } from './activity.js';
import { closeDialog, openDialog } from './dialogs.js';
import { openReveal } from './reveal.js';
import {
  $,
  DAY_MS,
  api,
  ciIdentity,
  dateFmt,
  el,
  plural,
  relative,
  setStatus,
  timeEl,
  timeFmt,
  typeBadge,
} from './ui.js';

/**
 * @typedef {import('./ui.js').Token} Token
 * @typedef {import('./ui.js').CreatedToken} CreatedToken
 * @typedef {import('./ui.js').Restrictions} Restrictions
 */

/** @type {string[] | null} The gateway's route prefixes, from the last load (null: not loaded yet). */
let routes = null;

/** The route prefixes a token may be restricted to (loads the tokens once if need be). */
export async function knownRoutes() {
  if (routes === null) await loadTokens();
  return routes || [];
}

/** @param {Token} t */
function stateCell(t) {
  const label = { active: 'Active', rotated: 'Rotated', expired: 'Expired', revoked: 'Revoked' }[t.state] || t.state;
  const cell = el('td', { class: 'state' }, el('span', { class: `badge badge-${t.state}` }, label));
  if (t.state === 'rotated' && t.endsAt) {
    cell.append(el('span', { class: 'sub soon' }, 'ends at ', timeEl(t.endsAt, timeFmt)));
  } else if (t.state === 'expired' && t.replacedBy) {
    cell.append(el('span', { class: 'sub' }, 'rotated'));
  }
  if (t.state === 'revoked' && t.leak) {
    cell.append(el('span', { class: 'sub soon' }, `leaked, found by ${t.leak.source}`));
  }
  if (t.state === 'revoked' && t.revokedAt) {
    cell.append(
      el('span', { class: 'sub' }, dateFmt.format(new Date(t.revokedAt)), t.revokedBy ? ` by ${t.revokedBy}` : ''),
    );
  }
  return cell;
}

/** @param {Restrictions | null} r */
function restrictionsCell(r) {
  if (!r) return el('td', { class: 'muted' }, 'None');
  const items = [];
  if (r.routes) items.push(`Routes: ${r.routes.join(', ')}`);
  if (r.packages) items.push(`Packages: ${r.packages.join(', ')}`);
  if (r.networks) items.push(`Networks: ${r.networks.join(', ')}`);
  if (r.rate !== undefined) items.push(`${r.rate.toLocaleString('en-US')} requests/min`);
  return el('td', {}, el('ul', { class: 'restrictions' }, ...items.map((text) => el('li', {}, text))));
}

/** @param {Token} t */
function expiresCell(t) {
  if (!t.expiresAt) return el('td', { class: 'nowrap' }, 'Never');
  const left = Date.parse(t.expiresAt) - Date.now();
  const days = Math.ceil(left / DAY_MS);
  let note;
  if ((t.state === 'expired' && !t.replacedBy) || days <= 0)
    note = el('span', { class: 'sub' }, `expired ${relative(t.expiresAt)}`);
  // Short-lived tokens (those issued to CI jobs: an hour or so) say when, not "1 day left".
  else if (left < DAY_MS) note = el('span', { class: 'sub soon' }, `ends ${relative(t.expiresAt)}`);
  else note = el('span', { class: days <= 14 ? 'sub soon' : 'sub' }, `${plural(days, 'day')} left`);
  return el('td', { class: 'nowrap' }, timeEl(t.expiresAt, dateFmt), note);
}

/** @param {string} label @param {string} name @param {(button: HTMLButtonElement) => void} onClick */
function actionButton(label, name, onClick) {
  const button = el('button', { type: 'button', class: 'btn btn-small', 'aria-label': `${label} ${name}` }, label);
  button.addEventListener('click', () => onClick(button));
  return button;
}

/** @param {Token} t */
function tokenRow(t) {
  const live = t.state === 'active' || t.state === 'rotated';
  const row = el('tr', { class: live ? '' : 'inactive', 'data-token-id': t.id });
  const actions = el('td', { class: 'actions-cell' });
  if (t.state === 'active') actions.append(actionButton('Rotate', t.name, (b) => openRotate(t, b)));
  if (live) actions.append(actionButton('Revoke', t.name, (b) => openRevoke(t, b)));
  row.append(
    el('td', { class: 'name' }, t.name),
    el('td', {}, typeBadge(t.type)),
    el('td', { class: 'nowrap' }, timeEl(t.createdAt, dateFmt)),
    t.ci ? el('td', { class: 'ci' }, ...ciIdentity(t.ci)) : el('td', {}, t.createdBy),
    expiresCell(t),
    el(
      'td',
      { class: 'nowrap' },
      t.lastUsedAt
        ? el('time', { datetime: t.lastUsedAt, title: new Date(t.lastUsedAt).toString() }, relative(t.lastUsedAt))
        : 'Never',
    ),
    stateCell(t),
    restrictionsCell(t.restrictions),
    actions,
  );
  return row;
}

/**
 * The provider filter offers the providers with live CI-issued tokens (and the one chosen); it
 * applies to CI-issued tokens only.
 * @param {Record<string, number>} ciLive
 */
function showCiCounts(ciLive) {
  const counts = Object.entries(ciLive || {});
  setStatus(
    'tokens-ci-counts',
    counts.length === 0
      ? 'No live tokens issued to CI jobs.'
      : `Live tokens issued to CI jobs: ${counts.map(([p, n]) => `${p} ${n.toLocaleString('en-US')}`).join(', ')}.`,
  );
  const select = $('t-provider');
  const current = select.value;
  const names = counts.map(([p]) => p);
  if (current && !names.includes(current)) names.push(current);
  select.replaceChildren(
    el('option', { value: '' }, 'Any provider'),
    ...names.map((p) => el('option', { value: p }, p)),
  );
  select.value = current;
  select.disabled = $('t-source').value === 'admin';
}

const NO_TOKENS = $('tokens-empty').textContent;

export async function loadTokens() {
  setStatus('tokens-status', 'Loading tokens…');
  const params = new URLSearchParams({ source: $('t-source').value });
  if ($('t-source').value !== 'admin' && $('t-provider').value) params.set('provider', $('t-provider').value);
  try {
    const data = /** @type {{ tokens: Token[], routes: string[], ciLive: Record<string, number>, matched: number }} */ (
      await api('GET', `/tokens?${params}`)
    );
    routes = data.routes;
    const { tokens } = data;
    $('tokens-body').replaceChildren(...tokens.map(tokenRow));
    $('tokens-empty').hidden = tokens.length > 0;
    $('tokens-empty').textContent = $('t-source').value === 'admin' ? NO_TOKENS : 'No tokens issued to CI jobs match.';
    showCiCounts(data.ciLive);
    const active = tokens.filter((t) => t.state === 'active').length;
    const more = data.matched > tokens.length ? ` Showing the newest ${tokens.length} of ${data.matched}.` : '';
    setStatus('tokens-status', `${plural(tokens.length, 'token')}, ${active} active.${more}`);
    // The Activity tab's token filter names the tokens admins made (CI-issued ones come by the thousand).
    if ($('t-source').value === 'admin') setTokens(tokens);
  } catch (err) {
    setStatus('tokens-status', `Could not load tokens: ${/** @type {Error} */ (err).message}`);
  }
}

// ------------------------------------------------------------------------------------------
// Row actions, each with a confirmation dialog (#<name>-dialog, -confirm, -cancel, -error).

/**
 * Wires a confirmation dialog: Cancel closes it; Confirm runs `action` on the token it was opened
 * for, its error shown in the dialog. Returns the function that opens it for a token.
 * @param {'rotate' | 'revoke'} name
 * @param {(token: Token) => Promise<void>} action
 * @returns {(token: Token, opener: HTMLElement, focus: HTMLElement) => void}
 */
function confirmation(name, action) {
  /** @type {Token | null} */
  let target = null;
  const confirm = /** @type {HTMLButtonElement} */ ($(`${name}-confirm`));
  $(`${name}-cancel`).addEventListener('click', () =>
    closeDialog(/** @type {HTMLDialogElement} */ ($(`${name}-dialog`))),
  );
  confirm.addEventListener('click', async () => {
    if (!target) return;
    confirm.disabled = true;
    try {
      await action(target);
      target = null;
    } catch (err) {
      setStatus(`${name}-error`, /** @type {Error} */ (err).message);
    } finally {
      confirm.disabled = false;
    }
  });
  return (token, opener, focus) => {
    target = token;
    setStatus(`${name}-error`, '');
    openDialog(/** @type {HTMLDialogElement} */ ($(`${name}-dialog`)), opener, focus);
  };
}

// Rotate: choose the overlap, then the new token is shown once (reveal.js).
const askRotate = confirmation('rotate', async (token) => {
  const created = /** @type {CreatedToken} */ (
    await api('POST', `/tokens/${encodeURIComponent(token.id)}/rotate`, { overlap: $('rotate-overlap').value })
  );
  closeDialog($('rotate-dialog'));
  const endsAt = created.previous && created.previous.endsAt;
  const note =
    endsAt && Date.parse(endsAt) > Date.now()
      ? `The previous token keeps working until ${timeFmt.format(new Date(endsAt))}, then is refused.`
      : 'The previous token is refused from now on.';
  openReveal(created, note, $('create-open'));
  void loadTokens();
});

/** @param {Token} token @param {HTMLElement} opener */
function openRotate(token, opener) {
  $('rotate-name').textContent = token.name;
  $('rotate-overlap').value = '24h';
  askRotate(token, opener, $('rotate-overlap'));
}

// Revoke.
const askRevoke = confirmation('revoke', async (token) => {
  await api('POST', `/tokens/${encodeURIComponent(token.id)}/revoke`);
  closeDialog($('revoke-dialog'));
  await loadTokens();
  setStatus('tokens-status', `Revoked “${token.name}”. Downloads with it are refused from now on.`);
  $('create-open').focus();
});

/** @param {Token} token @param {HTMLElement} opener */
function openRevoke(token, opener) {
  $('revoke-name').textContent = token.name;
  askRevoke(token, opener, $('revoke-cancel'));
}

$('t-source').addEventListener('change', () => {
  $('t-provider').disabled = $('t-source').value === 'admin';
  void loadTokens();
});
$('t-provider').addEventListener('change', () => void loadTokens());
$('tokens-filters').addEventListener('submit', (event) => event.preventDefault());
