// @ts-check
// Tollgate admin page: Settings › Tokens, Activity, Audit log. Plain DOM, no framework, no build:
// ES modules (this one; ui.js, the shared helpers; dialogs.js; activity.js, the Activity and
// Audit tabs). Everything that came from the server or a user is inserted as text (append /
// textContent), never as HTML. The CSP (script-src 'self') would block inline code anyway.

import { loadActivity, loadAudit, setTokens } from './activity.js';
import { closeAllDialogs, closeDialog, openDialog, requestClose, setDialogHooks } from './dialogs.js';
import {
  $,
  ApiError,
  DAY_MS,
  api,
  dateFmt,
  el,
  plural,
  relative,
  setCsrfToken,
  setStatus,
  timeEl,
  typeBadge,
  whenSessionEnds,
} from './ui.js';

/**
 * @typedef {import('./ui.js').Session} Session
 * @typedef {import('./ui.js').Token} Token
 * @typedef {import('./ui.js').CreatedToken} CreatedToken
 */

// ------------------------------------------------------------------------------------------
// Sign-in.

whenSessionEnds(() => showSignIn('Your session has ended. Sign in again.'));

/** @param {string} notice */
function showSignIn(notice) {
  setCsrfToken(null);
  setTokens([]);
  closeAllDialogs();
  $('loading').hidden = true;
  $('app').hidden = true;
  $('who').hidden = true;
  $('sign-in').hidden = false;
  setStatus('sign-in-notice', notice);
  setStatus('sign-in-error', '');
  $('admin-token').value = '';
  $('admin-token').focus();
}

/** @param {Session} session */
function showApp(session) {
  setCsrfToken(session.csrfToken);
  $('loading').hidden = true;
  $('sign-in').hidden = true;
  $('who-name').textContent = session.identity;
  $('who').hidden = false;
  $('app').hidden = false;
  selectTab(tabFromHash(), false);
}

$('sign-in-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $('admin-token');
  const token = input.value.trim();
  if (!token) {
    input.setAttribute('aria-invalid', 'true');
    setStatus('sign-in-error', 'Enter the admin token.');
    input.focus();
    return;
  }
  input.removeAttribute('aria-invalid');
  setStatus('sign-in-error', '');
  try {
    const session = /** @type {Session} */ (await api('POST', '/session', { token }));
    input.value = '';
    showApp(session);
    $('main').focus();
  } catch (err) {
    input.setAttribute('aria-invalid', 'true');
    setStatus(
      'sign-in-error',
      /** @type {ApiError} */ (err).status === 401
        ? 'That is not the admin token.'
        : /** @type {ApiError} */ (err).message,
    );
    input.focus();
    input.select();
  }
});

$('sign-out').addEventListener('click', async () => {
  try {
    await api('DELETE', '/session');
  } catch {
    // Signed out either way: the session is gone or unusable.
  }
  showSignIn('You have signed out.');
});

// ------------------------------------------------------------------------------------------
// Tabs (WAI-ARIA tabs: arrow keys move between tabs, the hash remembers the tab).

/** @typedef {'tokens' | 'activity' | 'audit'} Tab */
/** @type {Tab[]} */
const TABS = ['tokens', 'activity', 'audit'];
const TAB_TITLES = { tokens: 'Tokens', activity: 'Activity', audit: 'Audit log' };

function tabFromHash() {
  const name = location.hash.replace(/^#/, '');
  return /** @type {Tab} */ (/** @type {string[]} */ (TABS).includes(name) ? name : 'tokens');
}

/** @param {Tab} name @param {boolean} focus */
function selectTab(name, focus) {
  for (const tab of TABS) {
    const selected = tab === name;
    const button = $(`tab-${tab}`);
    button.setAttribute('aria-selected', String(selected));
    button.tabIndex = selected ? 0 : -1;
    $(`panel-${tab}`).hidden = !selected;
  }
  $('crumb-current').textContent = TAB_TITLES[name];
  document.title = `Settings › ${TAB_TITLES[name]} · Tollgate`;
  if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
  if (focus) $(`tab-${name}`).focus();
  if (name === 'tokens') void loadTokens();
  if (name === 'activity') void loadActivity();
  if (name === 'audit') void loadAudit();
}

for (const tab of TABS) {
  const button = $(`tab-${tab}`);
  button.addEventListener('click', () => selectTab(tab, false));
  button.addEventListener('keydown', (event) => {
    const i = TABS.indexOf(tab);
    let next;
    if (event.key === 'ArrowRight') next = TABS[(i + 1) % TABS.length];
    else if (event.key === 'ArrowLeft') next = TABS[(i + TABS.length - 1) % TABS.length];
    else if (event.key === 'Home') next = TABS[0];
    else if (event.key === 'End') next = TABS[TABS.length - 1];
    if (next) {
      event.preventDefault();
      selectTab(next, true);
    }
  });
}
window.addEventListener('hashchange', () => {
  if (!$('app').hidden) selectTab(tabFromHash(), false);
});

// ------------------------------------------------------------------------------------------
// Tokens tab.

/** @param {Token} t */
function stateCell(t) {
  const label = { active: 'Active', expired: 'Expired', revoked: 'Revoked' }[t.state] || t.state;
  const cell = el('td', { class: 'nowrap' }, el('span', { class: `badge badge-${t.state}` }, label));
  if (t.state === 'revoked' && t.revokedAt) {
    cell.append(
      el('span', { class: 'sub' }, dateFmt.format(new Date(t.revokedAt)), t.revokedBy ? ` by ${t.revokedBy}` : ''),
    );
  }
  return cell;
}

/** @param {Token} t */
function expiresCell(t) {
  if (!t.expiresAt) return el('td', { class: 'nowrap' }, 'Never');
  const days = Math.ceil((Date.parse(t.expiresAt) - Date.now()) / DAY_MS);
  let note;
  if (t.state === 'expired' || days <= 0) note = el('span', { class: 'sub' }, `expired ${relative(t.expiresAt)}`);
  else note = el('span', { class: days <= 14 ? 'sub soon' : 'sub' }, `${plural(days, 'day')} left`);
  return el('td', { class: 'nowrap' }, timeEl(t.expiresAt, dateFmt), note);
}

/** @param {Token} t */
function tokenRow(t) {
  const row = el('tr', { class: t.state === 'active' ? '' : 'inactive', 'data-token-id': t.id });
  const actions = el('td', { class: 'actions-cell' });
  if (t.state === 'active') {
    const revoke = el(
      'button',
      { type: 'button', class: 'btn btn-small', 'aria-label': `Revoke ${t.name}` },
      'Revoke',
    );
    revoke.addEventListener('click', () => openRevoke(t, revoke));
    actions.append(revoke);
  }
  row.append(
    el('td', { class: 'name' }, t.name),
    el('td', {}, typeBadge(t.type)),
    el('td', { class: 'nowrap' }, timeEl(t.createdAt, dateFmt)),
    el('td', {}, t.createdBy),
    expiresCell(t),
    el(
      'td',
      { class: 'nowrap' },
      t.lastUsedAt
        ? el('time', { datetime: t.lastUsedAt, title: new Date(t.lastUsedAt).toString() }, relative(t.lastUsedAt))
        : 'Never',
    ),
    stateCell(t),
    actions,
  );
  return row;
}

async function loadTokens() {
  setStatus('tokens-status', 'Loading tokens…');
  try {
    const { tokens } = /** @type {{ tokens: Token[] }} */ (await api('GET', '/tokens'));
    $('tokens-body').replaceChildren(...tokens.map(tokenRow));
    $('tokens-empty').hidden = tokens.length > 0;
    const active = tokens.filter((t) => t.state === 'active').length;
    setStatus('tokens-status', `${plural(tokens.length, 'token')}, ${active} active.`);
    setTokens(tokens);
  } catch (err) {
    setStatus('tokens-status', `Could not load tokens: ${/** @type {Error} */ (err).message}`);
  }
}

// ------------------------------------------------------------------------------------------
// Dialogs (dialogs.js): the create dialog stays open while a new token has not been copied, and
// closing it takes the token off the page.

setDialogHooks({
  mayClose(dialog) {
    if (dialog.id === 'create-dialog' && !$('reveal').hidden && !copied) {
      setStatus('copy-status', 'Copy the token before closing: it cannot be shown again.');
      return false;
    }
    return true;
  },
  closed(dialog) {
    if (dialog.id === 'create-dialog') resetCreate();
  },
});

// ------------------------------------------------------------------------------------------
// Create a token, then show it once.

let copied = false;

function resetCreate() {
  $('create-form').reset();
  $('create-form').hidden = false;
  $('c-date-field').hidden = true;
  $('c-name').removeAttribute('aria-invalid');
  setStatus('create-error', '');
  $('reveal').hidden = true;
  $('reveal-value').value = '';
  $('reveal-name').textContent = '';
  setStatus('copy-status', '');
  $('reveal-done').disabled = true;
  $('create-submit').disabled = false;
  $('create-dialog').setAttribute('aria-labelledby', 'create-title');
  copied = false;
}

$('create-open').addEventListener('click', () => {
  resetCreate();
  openDialog($('create-dialog'), $('create-open'), $('c-name'));
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
  $('c-name').removeAttribute('aria-invalid');
  setStatus('create-error', '');
  $('create-submit').disabled = true;
  try {
    const created = /** @type {CreatedToken} */ (await api('POST', '/tokens', { name, type, expires }));
    showReveal(created);
    void loadTokens();
  } catch (err) {
    const { status, message } = /** @type {ApiError} */ (err);
    // 409: the name is taken; 400 about the name: it breaks a naming rule (the message says which).
    const badName = status === 409 || (status === 400 && /\bname\b/.test(message));
    if (badName) $('c-name').setAttribute('aria-invalid', 'true');
    setStatus(
      'create-error',
      status === 409 ? `A token named “${name}” already exists (names are compared ignoring case). Choose another name.` : message,
    );
    if (status !== 401) $(badName ? 'c-name' : 'create-submit').focus();
  } finally {
    $('create-submit').disabled = false;
  }
});

/** @param {CreatedToken} created */
function showReveal(created) {
  $('create-form').hidden = true;
  $('create-form').reset();
  $('reveal').hidden = false;
  $('create-dialog').setAttribute('aria-labelledby', 'reveal-title');
  $('reveal-name').textContent = `“${created.name}”`;
  $('reveal-value').value = created.token;
  $('reveal-done').disabled = true;
  copied = false;
  setStatus('copy-status', '');
  $('reveal-title').focus();
}

/** @param {string} message */
function markCopied(message) {
  copied = true;
  $('reveal-done').disabled = false;
  setStatus('copy-status', message);
}

/** Clipboard API in a secure context (localhost, TLS); otherwise select the text and copy that. */
async function copyToken() {
  const input = $('reveal-value');
  const value = input.value;
  if (!value) return;
  let ok = false;
  if (window.isSecureContext && navigator.clipboard && typeof navigator.clipboard.writeText === 'function') {
    try {
      await navigator.clipboard.writeText(value);
      ok = true;
    } catch {
      ok = false;
    }
  }
  if (!ok) {
    input.focus();
    input.setSelectionRange(0, value.length);
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    if (!ok) {
      setStatus(
        'copy-status',
        'Copying was blocked by the browser. The token is selected: press Ctrl+C (⌘C on a Mac) to copy it.',
      );
      return;
    }
  }
  markCopied('Copied to the clipboard. Store it in your secret manager now.');
  $('reveal-done').focus();
}

$('reveal-copy').addEventListener('click', () => void copyToken());
// A manual copy (Ctrl+C, context menu) of the selected token counts too.
$('reveal-value').addEventListener('copy', () => {
  if (!copied) markCopied('Copied. Store it in your secret manager now.');
});
$('reveal-value').addEventListener('focus', () => $('reveal-value').select());

// Closing resets the dialog (see 'close' above): the token leaves the page; a reload never brings it back.
$('reveal-done').addEventListener('click', () => requestClose($('create-dialog')));

// ------------------------------------------------------------------------------------------
// Revoke, with a confirmation.

/** @type {Token | null} */
let revoking = null;

/** @param {Token} token @param {HTMLElement} opener */
function openRevoke(token, opener) {
  revoking = token;
  $('revoke-name').textContent = token.name;
  setStatus('revoke-error', '');
  openDialog($('revoke-dialog'), opener, $('revoke-cancel'));
}

$('revoke-cancel').addEventListener('click', () => closeDialog($('revoke-dialog')));
$('revoke-confirm').addEventListener('click', async () => {
  if (!revoking) return;
  const token = revoking;
  $('revoke-confirm').disabled = true;
  try {
    await api('POST', `/tokens/${encodeURIComponent(token.id)}/revoke`);
    revoking = null;
    closeDialog($('revoke-dialog'));
    await loadTokens();
    setStatus('tokens-status', `Revoked “${token.name}”. Downloads with it are refused from now on.`);
    $('create-open').focus();
  } catch (err) {
    setStatus('revoke-error', /** @type {Error} */ (err).message);
  } finally {
    $('revoke-confirm').disabled = false;
  }
});

// ------------------------------------------------------------------------------------------
// Start: signed in already (session cookie)? Otherwise the sign-in form.

void (async function start() {
  try {
    const session = /** @type {Session} */ (await api('GET', '/session'));
    showApp(session);
  } catch (err) {
    showSignIn(
      /** @type {ApiError} */ (err).status === 401 || /** @type {ApiError} */ (err).status === undefined
        ? ''
        : /** @type {ApiError} */ (err).message,
    );
  }
})();
