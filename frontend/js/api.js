// The HTTP API: JSON in and out, the session cookie plus the X-CSRF-Token header on every change.

let csrfToken = null;
let csrfAsked = null;
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export function setCsrf(token) {
  csrfToken = token;
  csrfAsked = null;
}

/** The CSRF token of the cookie's session: from the login, or asked for once after a reload. */
async function csrf() {
  if (csrfToken) return csrfToken;
  if (!csrfAsked) {
    csrfAsked = fetch("/api/session/csrf", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : { csrf_token: null }))
      .then((body) => { csrfToken = body.csrf_token; return csrfToken; })
      .catch(() => { csrfAsked = null; return null; });
  }
  return csrfAsked;
}

/** Called with no arguments whenever a request finds the person logged out. */
export function onLoggedOut(fn) {
  listeners.add(fn);
}

/** `signal` (an AbortSignal) cancels a request that is no longer wanted: it throws ApiError code "aborted". */
export async function api(method, path, body, { signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && !(method === "POST" && path === "/api/session")) {
    const token = await csrf();
    if (token) headers["X-CSRF-Token"] = token;
  }
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: "same-origin", signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (signal && signal.aborted) throw new ApiError(0, "aborted", "cancelled");
    throw new ApiError(0, "network", e instanceof Error ? e.message : String(e));
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    if (response.status === 401 && path !== "/api/session") for (const fn of listeners) fn();
    throw new ApiError(response.status, error.code || `http_${response.status}`, error.message || response.statusText,
      error.details);
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body ?? {});
export const patch = (path, body) => api("PATCH", path, body);

export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") q.set(key, String(value));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}
