// @ts-check
// Tollgate admin page: what its modules share (the API's shapes, DOM, formatting, the API itself).
// Everything that came from the server or a user is inserted as text (append / textContent),
// never as HTML. The CSP (script-src 'self') would block inline code anyway.

/**
 * What the admin API answers (src/admin/api.ts, token-api.ts).
 * @typedef {{ identity: string, csrfToken: string | null }} Session
 * @typedef {{ routes?: string[], packages?: string[], networks?: string[], rate?: number }} Restrictions
 * @typedef {{ source: string, url: string | null, location: string | null }} Leak
 * @typedef {object} Token
 * @property {string} id
 * @property {string} name
 * @property {'production' | 'development'} type
 * @property {'active' | 'rotated' | 'expired' | 'revoked'} state
 * @property {string} createdAt
 * @property {string} createdBy
 * @property {string | null} expiresAt
 * @property {string | null} lastUsedAt
 * @property {string | null} revokedAt
 * @property {string | null} revokedBy
 * @property {Restrictions | null} restrictions
 * @property {string | null} replaces
 * @property {string | null} replacedBy
 * @property {string | null} endsAt When it stops working: its expiry or its rotation overlap's end.
 * @property {Leak | null} leak
 * @property {CiIdentity | null} ci Issued to a CI job: who the job is (null: made by an admin).
 */
/**
 * @typedef {{ provider: string, subject: string, project?: string, repository?: string, ref?: string, sha?: string,
 *   workflow?: string, runId?: string, actor?: string }} CiIdentity
 */
/**
 * @typedef {Token & { token: string, previous?: Token }} CreatedToken The new token, its plaintext shown once.
 * @typedef {{ time: string, project: string, ecosystem: string, kind: string, package?: string, file?: string,
 *   version?: string, tokenName: string, sealed?: boolean, aborted?: boolean, bytes: number,
 *   ci: CiIdentity | null }} ActivityEvent
 * @typedef {{ time: string, action: 'created' | 'rotated' | 'revoked' | 'purged', tokenName: string, tokenType: string, by: string,
 *   detail: string | null, ci?: CiIdentity }} AuditEntry
 */
/**
 * The elements the script reads or writes beyond what every HTMLElement has, by id.
 * @typedef {object} PageElements
 * @property {HTMLInputElement} admin-token
 * @property {HTMLFormElement} sign-in-form
 * @property {HTMLFormElement & { elements: { type: RadioNodeList } }} create-form
 * @property {HTMLInputElement} c-name
 * @property {HTMLSelectElement} c-expiry
 * @property {HTMLInputElement} c-date
 * @property {HTMLDetailsElement} c-restrict
 * @property {HTMLInputElement} c-packages
 * @property {HTMLInputElement} c-networks
 * @property {HTMLInputElement} c-rate
 * @property {HTMLButtonElement} create-submit
 * @property {HTMLDialogElement} create-dialog
 * @property {HTMLDialogElement} revoke-dialog
 * @property {HTMLButtonElement} revoke-confirm
 * @property {HTMLDialogElement} rotate-dialog
 * @property {HTMLSelectElement} rotate-overlap
 * @property {HTMLButtonElement} rotate-confirm
 * @property {HTMLInputElement} reveal-value
 * @property {HTMLButtonElement} reveal-done
 * @property {HTMLFormElement & { elements: { project: HTMLInputElement, ecosystem: HTMLSelectElement, token: HTMLSelectElement, repository: HTMLInputElement, metadata: HTMLInputElement } }} activity-filters
 * @property {HTMLInputElement} a-ci
 * @property {HTMLSelectElement} t-source
 * @property {HTMLSelectElement} t-provider
 * @property {HTMLInputElement} f-repository
 * @property {HTMLSelectElement} f-token
 * @property {HTMLSelectElement} f-ecosystem
 */

export const DAY_MS = 86_400_000;
const API = '/api/v1';

/**
 * @template {string} K
 * @param {K} id
 * @returns {K extends keyof PageElements ? PageElements[K] : HTMLElement}
 */
export const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return /** @type {K extends keyof PageElements ? PageElements[K] : HTMLElement} */ (el);
};

// ------------------------------------------------------------------------------------------
// DOM helpers: text only.

/**
 * el('td', {class: 'x', 'aria-label': 'y'}, 'text', otherNode)
 * @template {keyof HTMLElementTagNameMap} T
 * @param {T} tag
 * @param {Record<string, string | number | boolean | null | undefined>} [attrs]
 * @param {...(Node | string | number | null | undefined)} children
 * @returns {HTMLElementTagNameMap[T]}
 */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = /** @type {string} */ (value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** @param {string} id @param {string} text */
export function setStatus(id, text) {
  $(id).textContent = text || '';
}

// ------------------------------------------------------------------------------------------
// Formatting.

export const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
export const timeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** @param {string} iso @param {Intl.DateTimeFormat} fmt */
export function timeEl(iso, fmt) {
  return el('time', { datetime: iso, title: new Date(iso).toString() }, fmt.format(new Date(iso)));
}

/** @param {string} iso */
export function relative(iso) {
  const diff = Date.parse(iso) - Date.now();
  const abs = Math.abs(diff);
  if (abs < 60_000) return relFmt.format(Math.round(diff / 1000), 'second');
  if (abs < 3_600_000) return relFmt.format(Math.round(diff / 60_000), 'minute');
  if (abs < DAY_MS) return relFmt.format(Math.round(diff / 3_600_000), 'hour');
  return relFmt.format(Math.round(diff / DAY_MS), 'day');
}

/**
 * A CI job's identity, as a cell's content: the provider and repository (or subject), then the
 * ref and run below (`github · acme/payments`, `refs/heads/main · run 4242`).
 * @param {CiIdentity} ci
 */
export function ciIdentity(ci) {
  const where = [ci.ref, ci.runId ? `run ${ci.runId}` : null].filter(Boolean).join(' · ');
  return [
    el('span', { class: 'ci-job' }, `${ci.provider} · ${ci.repository || ci.subject}`),
    where ? el('span', { class: 'sub' }, where) : null,
  ];
}

/** @param {number} n @param {string} word */
export function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** @param {string} type */
export function typeBadge(type) {
  return el('span', { class: `badge badge-${type}` }, type === 'production' ? 'Production' : 'Development');
}

// ------------------------------------------------------------------------------------------
// API.

/** The per-session CSRF token, sent as X-CSRF-Token on every state-changing request. */
/** @type {string | null} */
let csrfToken = null;
/** @type {() => void} */
let onSessionEnded = () => {};

/** @param {string | null} token */
export function setCsrfToken(token) {
  csrfToken = token;
}

/**
 * What to do when a request finds the session gone (a 401 anywhere but /session).
 * @param {() => void} handler
 */
export function whenSessionEnds(handler) {
  onSessionEnded = handler;
}

export class ApiError extends Error {
  /** @param {number} status @param {string} message @param {string | null} [code] */
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * @param {'GET' | 'POST' | 'DELETE'} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<unknown>} The JSON answer (null for 204); an ApiError for any other answer than 2xx.
 */
export async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  let res;
  try {
    res = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'The gateway cannot be reached. Check that it is running, then try again.');
  }
  /** @type {{ error?: unknown, code?: string } | null} */
  let data = null;
  if (res.status !== 204) {
    try {
      data = await res.json();
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const message = data && typeof data.error === 'string' ? data.error : `Request failed (HTTP ${res.status})`;
    const error = new ApiError(res.status, message, data && data.code);
    if (res.status === 401 && path !== '/session') onSessionEnded();
    throw error;
  }
  return data;
}
