// Resumable uploads (tus 1.0) to the backend's /api/uploads/ with tus-js-client.
//
// A dropped connection is retried and resumed from the offset the server holds; in a browser,
// an upload of the same file started again (after a reload) resumes where the last one stopped.
import * as tus from "tus-js-client";

import { FerryError } from "./errors.js";
import { errorFromResponse } from "./api.js";
import { etaSeconds, nextRate, percentOf } from "./progress.js";

export const UPLOAD_DEFAULTS = {
  chunkSize: 64 * 1024 * 1024, // bytes per PATCH: bounded requests pass proxies' body limits
  retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
};

/**
 * Upload one file. Resolves with {uploadId, url, size} when every byte is on the server.
 * @param {Blob|File|Buffer|import("node:stream").Readable} file
 * @param {{baseUrl?: string, token: string|(() => string), onProgress?: Function, signal?: AbortSignal,
 *          metadata?: object, chunkSize?: number, retryDelays?: number[], Upload?: typeof tus.Upload,
 *          now?: () => number, resume?: boolean, onResume?: Function}} options
 *   onUploadUrl({uploadId, url}) as soon as the upload exists on the server (created with its length, or an
 *   earlier one found): an import may start on it then, while its bytes still arrive;
 *   terminateOnAbort() → true: an abort also removes the upload on the server (tus DELETE), which cancels
 *   the imports started on it; otherwise the server keeps it and the same file resumes it;
 *   onProgress({bytesSent, bytesTotal, percent, rateBps, etaS}) after every progress step;
 *   onResume({url}) when an earlier upload of the same file is continued instead of a new one made;
 *   onRetry({attempt, delayMs, offline}) when a dropped connection is tried again after delayMs, or
 *   (offline: true) when the browser went offline: the upload then waits and resumes once it is back.
 */
export function upload(file, options) {
  const { baseUrl = "", token, onProgress, signal, metadata = {}, now = Date.now, resume = true } = options;
  const Upload = options.Upload ?? tus.Upload;
  const bearer = () => (typeof token === "function" ? token() : token);
  const endpoint = `${baseUrl.replace(/\/+$/, "")}/api/uploads/`;
  const name = metadata.filename ?? file?.name ?? "upload";

  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    let rate = null;
    let waitingOnline = null; // the "online" listener while an offline browser holds the upload
    const retryDelays = options.retryDelays ?? UPLOAD_DEFAULTS.retryDelays;
    const stopWaiting = () => {
      if (waitingOnline) globalThis.removeEventListener?.("online", waitingOnline);
      waitingOnline = null;
    };
    let size = file?.size ?? file?.length ?? null;
    const instance = new Upload(file, {
      endpoint,
      chunkSize: options.chunkSize ?? UPLOAD_DEFAULTS.chunkSize,
      retryDelays,
      // tus's own rule (retry what a server error or a dropped connection broke, while online), told to the caller.
      onShouldRetry(error, attempt) {
        const status = error?.originalResponse?.getStatus?.() ?? 0;
        const retry = (status < 400 || status >= 500 || status === 409 || status === 423) && !isOffline();
        if (retry) options.onRetry?.({ attempt: attempt + 1, delayMs: retryDelays[attempt], offline: false });
        return retry;
      },
      metadata: { filename: name, filetype: file?.type || "application/octet-stream", ...metadata },
      storeFingerprintForResuming: resume,
      removeFingerprintOnSuccess: true,
      // Headers are read per request, so a token changed mid-upload is used on the next request.
      onBeforeRequest(req) {
        const auth = bearer();
        if (auth) req.setHeader("Authorization", `Bearer ${auth}`);
      },
      onUploadUrlAvailable() {
        options.onUploadUrl?.({ uploadId: uploadIdFromUrl(instance.url), url: instance.url });
      },
      onProgress(bytesSent, bytesTotal) {
        size = bytesTotal;
        rate = nextRate(rate, bytesSent, now());
        const rateBps = rate.rate;
        onProgress?.({
          bytesSent,
          bytesTotal,
          percent: percentOf(bytesSent, bytesTotal),
          rateBps,
          etaS: etaSeconds(bytesSent, bytesTotal, rateBps),
        });
      },
      onSuccess() {
        stopWaiting();
        signal?.removeEventListener("abort", onAbort);
        resolve({ uploadId: uploadIdFromUrl(instance.url), url: instance.url, size });
      },
      onError(error) {
        // Offline is no verdict on the upload: it goes on from the server's offset once the browser is back.
        if (isOffline() && typeof globalThis.addEventListener === "function" && !error?.originalResponse?.getStatus?.()) {
          stopWaiting();
          waitingOnline = () => {
            stopWaiting();
            instance.start();
          };
          globalThis.addEventListener("online", waitingOnline);
          options.onRetry?.({ attempt: 0, delayMs: null, offline: true });
          return;
        }
        signal?.removeEventListener("abort", onAbort);
        reject(translateTusError(error));
      },
    });
    function onAbort() {
      stopWaiting();
      const terminate = Boolean(options.terminateOnAbort?.()) && Boolean(instance.url);
      instance
        .abort(terminate)
        .catch(() => {})
        .finally(() => reject(abortError()));
    }
    signal?.addEventListener("abort", onAbort, { once: true });

    const start = () => instance.start();
    if (!resume || typeof instance.findPreviousUploads !== "function") return start();
    instance
      .findPreviousUploads()
      .then((previous) => {
        const latest = [...previous].sort((a, b) => String(b.creationTime).localeCompare(String(a.creationTime)))[0];
        if (latest) {
          instance.resumeFromPreviousUpload(latest);
          options.onResume?.({ url: latest.uploadUrl });
        }
      })
      .catch(() => {})
      .finally(start);
  });
}

/**
 * Uploads this browser started and did not finish (tus keeps their URLs in localStorage), with
 * how many bytes the server holds of each: [{filename, size, offset, url}]. One the server no
 * longer has is forgotten. Choosing the same file again continues it (see upload).
 */
export async function storedUploads({ token, fetch: fetchFn = globalThis.fetch, urlStorage = tus.defaultOptions?.urlStorage } = {}) {
  if (typeof urlStorage?.findAllUploads !== "function" || typeof fetchFn !== "function") return [];
  const bearer = typeof token === "function" ? token() : token;
  let entries;
  try {
    entries = await urlStorage.findAllUploads();
  } catch {
    return []; // storage unreadable (private mode): nothing to offer
  }
  const found = new Map();
  for (const entry of entries) {
    if (!entry?.uploadUrl || found.has(entry.uploadUrl)) continue;
    try {
      const response = await fetchFn(entry.uploadUrl, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0", ...(bearer ? { Authorization: `Bearer ${bearer}` } : {}) } });
      if ([404, 410].includes(response.status)) {
        await urlStorage.removeUpload(entry.urlStorageKey);
        continue;
      }
      if (!response.ok) continue;
      const offset = Number(response.headers.get("Upload-Offset"));
      const size = Number(response.headers.get("Upload-Length") ?? entry.size);
      if (!Number.isFinite(offset)) continue;
      found.set(entry.uploadUrl, { filename: entry.metadata?.filename ?? "upload", size: Number.isFinite(size) ? size : entry.size, offset, url: entry.uploadUrl });
    } catch {
      // the backend did not answer: say nothing rather than guess
    }
  }
  return [...found.values()];
}

function isOffline() {
  return typeof navigator !== "undefined" && navigator.onLine === false;
}

/** The upload_id: the last path segment of the upload URL the server gave. */
export function uploadIdFromUrl(url) {
  if (!url) throw new FerryError("upload_failed", "the server gave no upload URL");
  const path = new URL(url, "http://ferry.invalid").pathname;
  const id = path.split("/").filter(Boolean).pop();
  if (!id) throw new FerryError("upload_failed", `cannot find an upload id in ${url}`);
  return decodeURIComponent(id);
}

export function translateTusError(error) {
  const response = error?.originalResponse;
  if (response && typeof response.getStatus === "function") {
    const status = response.getStatus();
    let payload;
    try {
      payload = JSON.parse(response.getBody() || "null");
    } catch {
      payload = null; // not JSON: the status alone decides the code
    }
    const translated = errorFromResponse(status, payload, "upload");
    translated.cause = error;
    return translated;
  }
  return new FerryError("upload_failed", `upload failed: ${error?.message ?? error}`, { cause: error });
}

function abortError() {
  return new FerryError("aborted", "upload canceled");
}
