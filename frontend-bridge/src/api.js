// The backend's REST API (backend/API.md) over an injectable fetch. Every failure becomes a
// FerryError carrying the backend's own error code when it sent one.
import { FerryError, codeForStatus } from "./errors.js";

/**
 * @param {{baseUrl?: string, token: string | (() => string), fetch?: typeof fetch}} options
 *   baseUrl: the backend's origin ("" = the page's own); token: bearer token or a getter.
 */
export function createApi({ baseUrl = "", token, fetch: fetchImpl } = {}) {
  const doFetch = fetchImpl ?? globalThis.fetch.bind(globalThis);
  const root = baseUrl.replace(/\/+$/, "");
  const bearer = () => (typeof token === "function" ? token() : token);
  // Whether the last request reached the backend: a network failure or a gateway's 502/503/504
  // says it did not; any other answer says it did.
  let reachable = true;
  const reachListeners = new Set();
  const setReachable = (ok) => {
    if (reachable === ok) return;
    reachable = ok;
    for (const listener of [...reachListeners]) listener(ok);
  };

  async function request(method, path, { body, query, signal } = {}) {
    const url = root + path + queryString(query);
    const headers = { Accept: "application/json" };
    const auth = bearer();
    if (auth) headers.Authorization = `Bearer ${auth}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await doFetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (error?.name === "AbortError") throw error;
      setReachable(false);
      throw new FerryError("network_error", `cannot reach the backend (${method} ${path})`, { cause: error });
    }
    setReachable(!GATEWAY_DOWN.has(response.status));
    const payload = await readJson(response);
    if (!response.ok) throw errorFromResponse(response.status, payload, `${method} ${path}`);
    return payload;
  }

  const enc = encodeURIComponent;
  return {
    request,
    get reachable() {
      return reachable;
    },
    /** listener(ok) whenever reachability changes. Returns an unsubscribe function. */
    onReachability(listener) {
      reachListeners.add(listener);
      return () => reachListeners.delete(listener);
    },
    me: (opts) => request("GET", "/api/me", opts),
    listImports: ({ state, host } = {}, opts) =>
      request("GET", "/api/imports", { ...opts, query: { state, host } }).then((r) => r.jobs),
    getImport: (id, opts) => request("GET", `/api/imports/${enc(id)}`, opts),
    getEvents: (id, afterSeq = 0, opts) =>
      request("GET", `/api/imports/${enc(id)}/events`, { ...opts, query: { after_seq: afterSeq } }),
    startImport: (body, opts) => request("POST", "/api/imports", { ...opts, body }).then((r) => r.jobs),
    cancelImport: (id, opts) => request("DELETE", `/api/imports/${enc(id)}`, opts),
    replayImport: (id, { speed = 1 } = {}, opts) =>
      request("POST", `/api/imports/${enc(id)}/replay`, { ...opts, body: { speed } }),
    /** Every verified callback the backend received for the job, in arrival order (operators). */
    getDeliveries: (id, opts) => request("GET", `/api/imports/${enc(id)}/deliveries`, opts),
    getUpload: (id, opts) => request("GET", `/api/uploads/${enc(id)}`, opts),
    hosts: (opts) => request("GET", "/api/hosts", opts),
    images: (opts) => request("GET", "/api/images", opts),
    /** Remove an image from a lab host (operator); refused while a running job uses it. */
    removeImage: (host, imageId, opts) => request("DELETE", `/api/images/${enc(host)}/${enc(imageId)}`, opts),
    /** Which optional endpoints this backend has (from its OpenAPI document). */
    async capabilities(opts) {
      const jobPath = (tail) => new RegExp(`^/api/imports/\\{[^}]+\\}/${tail}$`);
      try {
        const spec = await request("GET", "/openapi.json", opts);
        const paths = Object.keys(spec?.paths ?? {});
        return {
          replay: paths.some((p) => jobPath("replay").test(p)),
          deliveries: paths.some((p) => jobPath("deliveries").test(p)),
          removeImage: paths.some((p) => /^\/api\/images\/\{[^}]+\}\/\{[^}]+\}$/.test(p)),
        };
      } catch (error) {
        if (error instanceof FerryError) return { replay: false, deliveries: false, removeImage: false };
        throw error;
      }
    },
  };
}

const GATEWAY_DOWN = new Set([502, 503, 504]);

export function errorFromResponse(status, payload, what = "request") {
  const error = payload && typeof payload === "object" ? payload.error : null;
  if (error && typeof error.code === "string") {
    return new FerryError(error.code, error.message || `${what} failed`, { status, detail: error.detail });
  }
  const code = codeForStatus(status);
  return new FerryError(code, `${what} failed with HTTP ${status}`, { status, detail: payload ?? undefined });
}

function queryString(query) {
  if (!query) return "";
  const pairs = Object.entries(query).filter(([, value]) => value !== undefined && value !== null && value !== "");
  if (pairs.length === 0) return "";
  return "?" + pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join("&");
}

async function readJson(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
