// Talking to the Weir HTTP API from the page: the token, URLs and JSON calls.
//
// Token: `?token=...` in the page URL is stored in localStorage (then removed from the address
// bar) and sent as `access_token` on every API call, EventSource included (it cannot send headers).

const TOKEN_KEY = 'weir.token';

function storage() {
  try {
    return window.localStorage;
  } catch {
    return null; // storage disabled: the token lives for this page only
  }
}

let token = '';

/** Reads ?token= (stores it, or clears it when empty) and falls back to the stored token. */
export function initToken() {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('token');
  const store = storage();
  if (fromUrl !== null) {
    token = fromUrl;
    if (fromUrl) store?.setItem(TOKEN_KEY, fromUrl);
    else store?.removeItem(TOKEN_KEY);
    url.searchParams.delete('token');
    window.history.replaceState(null, '', url);
  } else {
    token = store?.getItem(TOKEN_KEY) ?? '';
  }
  return token;
}

/** An API path with its query (empty values left out) and the token. */
export function apiUrl(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  if (token) q.set('access_token', token);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export class ApiError extends Error {
  constructor(status, body, path) {
    const msg = body && typeof body === 'object' && body.message ? body.message : `HTTP ${status}`;
    super(`${path}: ${msg}${status === 401 || status === 403 ? ' (add ?token=... to the page URL)' : ''}`);
    this.status = status;
    this.body = body;
  }
}

/** GET a JSON API route; throws ApiError with the API's message on a non-2xx answer. */
export async function getJSON(path, params, { signal } = {}) {
  const res = await fetch(apiUrl(path, params), { signal, headers: { accept: 'application/json' }, cache: 'no-store' });
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { message: text.slice(0, 200) };
  }
  if (!res.ok) throw new ApiError(res.status, body, path);
  return body;
}
