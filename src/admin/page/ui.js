// Tollgate admin page: the helpers its modules share (DOM, formatting, the API). Everything that
// came from the server or a user is inserted as text (append / textContent), never as HTML.

export const DAY_MS = 86_400_000;
const API = '/api/v1';

export const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el;
};

// ------------------------------------------------------------------------------------------
// DOM helpers: text only.

/** el('td', {class: 'x', 'aria-label': 'y'}, 'text', otherNode) */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function setStatus(id, text) {
  $(id).textContent = text || '';
}

// ------------------------------------------------------------------------------------------
// Formatting.

export const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
export const timeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export function timeEl(iso, fmt) {
  return el('time', { datetime: iso, title: new Date(iso).toString() }, fmt.format(new Date(iso)));
}

export function relative(iso) {
  const diff = Date.parse(iso) - Date.now();
  const abs = Math.abs(diff);
  if (abs < 60_000) return relFmt.format(Math.round(diff / 1000), 'second');
  if (abs < 3_600_000) return relFmt.format(Math.round(diff / 60_000), 'minute');
  if (abs < DAY_MS) return relFmt.format(Math.round(diff / 3_600_000), 'hour');
  return relFmt.format(Math.round(diff / DAY_MS), 'day');
}

export function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function typeBadge(type) {
  return el('span', { class: `badge badge-${type}` }, type === 'production' ? 'Production' : 'Development');
}

// ------------------------------------------------------------------------------------------
// API.

/** The per-session CSRF token, sent as X-CSRF-Token on every state-changing request. */
let csrfToken = null;
let onSessionEnded = () => {};

export function setCsrfToken(token) {
  csrfToken = token;
}

/** Called when a request finds the session gone (401 anywhere but /session). */
export function whenSessionEnds(handler) {
  onSessionEnded = handler;
}

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(method, path, body) {
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
  let data = null;
  if (res.status !== 204) {
    try {
      data = await res.json();
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const message = (data && typeof data.error === 'string') ? data.error : `Request failed (HTTP ${res.status})`;
    const error = new ApiError(res.status, message, data && data.code);
    if (res.status === 401 && path !== '/session') onSessionEnded();
    throw error;
  }
  return data;
}
