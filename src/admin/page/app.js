// @ts-check
// Tollgate admin page: Settings › Tokens, Activity, Audit log. Plain DOM, no framework, no build:
// ES modules (this one: sign-in, tabs, start; ui.js, the shared helpers; dialogs.js; tokens.js,
// the Tokens table with Rotate and Revoke; create.js, the Create dialog; reveal.js, a new token
// shown once; activity.js, the Activity and Audit tabs). Everything that came from the server or
// a user is inserted as text (append / textContent), never as HTML. The CSP (script-src 'self')
// would block inline code anyway.

import { loadActivity, loadAudit, setTokens } from './activity.js';
import { resetCreate } from './create.js';
import { closeAllDialogs, setDialogHooks } from './dialogs.js';
import { revealPending } from './reveal.js';
import { loadTokens } from './tokens.js';
import { $, api, setCsrfToken, setStatus, whenSessionEnds } from './ui.js';

/**
 * @typedef {import('./ui.js').Session} Session
 * @typedef {import('./ui.js').ApiError} ApiError
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
// Dialogs (dialogs.js): the create dialog stays open while a new token (created or rotated) has
// not been copied, and closing it takes the token off the page.

setDialogHooks({
  mayClose(dialog) {
    if (dialog.id === 'create-dialog' && revealPending()) {
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
