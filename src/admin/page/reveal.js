// @ts-check
// Tollgate admin page: showing a new token once (after Create or Rotate), in the create dialog.
// Done stays disabled until the token was copied; closing the dialog takes the token off the page.

import { openDialog, requestClose } from './dialogs.js';
import { $, setStatus } from './ui.js';

/** @typedef {import('./ui.js').CreatedToken} CreatedToken */

let copied = false;

/** A new token is on screen and has not been copied: the dialog must not close yet. */
export function revealPending() {
  return !$('reveal').hidden && !copied;
}

/** Takes the token off the page (the dialog's reset calls it). */
export function resetReveal() {
  $('reveal').hidden = true;
  $('reveal-value').value = '';
  $('reveal-name').textContent = '';
  setStatus('reveal-note', '');
  setStatus('copy-status', '');
  $('reveal-done').disabled = true;
  $('create-dialog').setAttribute('aria-labelledby', 'create-title');
  copied = false;
}

/**
 * Shows the token in the (open) create dialog, the form hidden.
 * @param {CreatedToken} created @param {string} [note] what else to know (a rotation's overlap)
 */
export function showReveal(created, note) {
  $('create-form').hidden = true;
  $('create-form').reset();
  $('reveal').hidden = false;
  $('create-dialog').setAttribute('aria-labelledby', 'reveal-title');
  $('reveal-name').textContent = `“${created.name}”`;
  $('reveal-value').value = created.token;
  setStatus('reveal-note', note || '');
  $('reveal-done').disabled = true;
  copied = false;
  setStatus('copy-status', '');
  $('reveal-title').focus();
}

/**
 * Opens the create dialog straight on the reveal (a rotation's new token).
 * @param {CreatedToken} created @param {string} note @param {HTMLElement} opener
 */
export function openReveal(created, note, opener) {
  openDialog($('create-dialog'), opener, $('reveal-title'));
  showReveal(created, note);
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

// Closing resets the dialog (app.js's dialog hooks): the token leaves the page; a reload never brings it back.
$('reveal-done').addEventListener('click', () => requestClose($('create-dialog')));
