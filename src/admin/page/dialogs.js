// @ts-check
// Tollgate admin page: modal dialogs. Native <dialog> (modal: the page behind is inert), Tab kept
// inside, Esc closes (unless the page's mayClose hook says no), focus returns to the opener.

import { $ } from './ui.js';

/**
 * @typedef {object} DialogHooks
 * @property {(dialog: HTMLDialogElement) => boolean} mayClose Asked before Esc or a close request closes a dialog.
 * @property {(dialog: HTMLDialogElement) => void} closed After a dialog closed, however.
 */

/** @type {DialogHooks} */
let hooks = { mayClose: () => true, closed: () => {} };

/** @param {DialogHooks} next */
export function setDialogHooks(next) {
  hooks = next;
}

/** @type {WeakMap<HTMLDialogElement, HTMLElement>} */
const openers = new WeakMap();

/** @param {HTMLDialogElement} dialog @returns {HTMLElement[]} */
function focusables(dialog) {
  return [
    .../** @type {NodeListOf<HTMLElement & { disabled?: boolean }>} */ (
      dialog.querySelectorAll('button, input, select, textarea, [href], [tabindex]:not([tabindex="-1"])')
    ),
  ].filter((n) => !n.disabled && !n.closest('[hidden]') && n.getClientRects().length > 0);
}

/** @param {HTMLDialogElement} dialog @param {HTMLElement} opener @param {HTMLElement} [focusTarget] */
export function openDialog(dialog, opener, focusTarget) {
  openers.set(dialog, opener);
  dialog.showModal();
  (focusTarget || focusables(dialog)[0] || dialog).focus();
}

/** @param {HTMLDialogElement} dialog */
export function closeDialog(dialog) {
  if (!dialog.open) return;
  dialog.close();
}

/** Esc, or a Close button: closes unless the page's mayClose hook says no. @param {HTMLDialogElement} dialog */
export function requestClose(dialog) {
  if (hooks.mayClose(dialog)) closeDialog(dialog);
}

export function closeAllDialogs() {
  for (const dialog of document.querySelectorAll('dialog')) closeDialog(dialog);
}

for (const dialog of document.querySelectorAll('dialog')) {
  dialog.addEventListener('keydown', (event) => {
    if (event.key === 'Tab') {
      const items = focusables(dialog);
      if (items.length === 0) return;
      const first = items[0];
      const last = items[items.length - 1];
      if (event.shiftKey && document.activeElement === first) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && document.activeElement === last) {
        event.preventDefault();
        first.focus();
      }
    } else if (event.key === 'Escape') {
      event.preventDefault(); // no native cancel: requestClose decides
      requestClose(dialog);
    }
  });
  // A close request that did not come through the keydown above (focus outside the dialog).
  dialog.addEventListener('cancel', (event) => {
    event.preventDefault();
    requestClose(dialog);
  });
  dialog.addEventListener('close', () => {
    hooks.closed(dialog);
    const opener = openers.get(dialog);
    if (opener && document.contains(opener) && !opener.closest('[hidden]')) opener.focus();
    else if (!$('app').hidden) $('create-open').focus();
  });
}
