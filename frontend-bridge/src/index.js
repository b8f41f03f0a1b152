// ferry's browser client: resumable uploads, import jobs and live progress.
//
//   const ferry = createClient({ token });
//   const { uploadId } = await ferry.upload(file, { onProgress });
//   const jobs = await ferry.startImport({ uploadId, hosts: ["lab1"], image: "ceos:4.35.1F" });
//   ferry.watchImport(jobs[0].id, { onEvent, onDone });
import { createApi } from "./api.js";
import { FerryError } from "./errors.js";
import { watchJobs } from "./jobs.js";
import { SocketLink } from "./link.js";
import { parseReference } from "./reference.js";
import { storedUploads, upload } from "./upload.js";
import { watchImport } from "./watch.js";

export { createApi } from "./api.js";
export { checkArchiveFile, checkArchiveHead } from "./archive.js";
export { FerryError, isFatal } from "./errors.js";
export { watchJobs } from "./jobs.js";
export { SocketLink, defaultSocketFactory } from "./link.js";
export { checkReference, parseReference, suggestReference } from "./reference.js";
export { storedUploads, upload, uploadIdFromUrl } from "./upload.js";
export { checkImportEvent } from "./validate.js";
export { watchImport } from "./watch.js";
export { TERMINAL_TYPES, TERMINAL_STATES, isTerminalState } from "./seq.js";

/**
 * @param {{baseUrl?: string, token: string|(() => string), fetch?: typeof fetch,
 *          socketFactory?: (url: string, options: object) => any, socketPath?: string, reconnectDelayMs?: number,
 *          handshakeTimeoutMs?: number,
 *          timers?: {setTimeout: Function, clearTimeout: Function}, watch?: object, jobs?: object}} options
 *   baseUrl: the backend's origin, "" for the page's own; fetch and socketFactory replace the
 *   transports (tests, other environments); watch/jobs override the timing defaults.
 */
export function createClient({ baseUrl = "", token, fetch, socketFactory, socketPath = "/socket.io", reconnectDelayMs, handshakeTimeoutMs, timers, watch = {}, jobs = {} } = {}) {
  const api = createApi({ baseUrl, token, fetch });
  const socketUrl = baseUrl || (typeof location !== "undefined" ? location.origin : undefined);
  const link = new SocketLink({ url: socketUrl, path: socketPath, token, socketFactory, timers, reconnectDelayMs, handshakeTimeoutMs });

  return {
    api,
    link,
    upload: (file, options = {}) => upload(file, { baseUrl, token, ...options }),
    /** Unfinished uploads of this browser and what the server holds of each (see upload.js). */
    storedUploads: (options = {}) => storedUploads({ token, fetch, ...options }),
    /**
     * Start one import job per host. `uploadId` (from upload) or `sourceUrl`; the image name is
     * checked here first, with the importer's rules. Without one, a docker-save archive keeps its own
     * tags (like `docker load`); a filesystem archive (format "import") needs one.
     */
    async startImport({ uploadId, sourceUrl, hosts, image, format, changes, force } = {}) {
      if (image) parseReference(image);
      else if (format === "import") throw new FerryError("invalid_reference", "give an image name: a filesystem archive has no name of its own");
      if (!Array.isArray(hosts) || hosts.length === 0) {
        throw new FerryError("invalid_request", "choose at least one host");
      }
      if (!uploadId === !sourceUrl) {
        throw new FerryError("invalid_request", "give either an upload or a source URL");
      }
      const body = { hosts };
      if (image) body.image = image;
      if (uploadId) body.upload_id = uploadId;
      if (sourceUrl) body.source_url = sourceUrl;
      if (format) body.format = format;
      if (changes?.length) body.changes = changes;
      if (force) body.force = true;
      return api.startImport(body);
    },
    watchImport: (jobId, handlers = {}, options = {}) => watchImport(jobId, handlers, { api, link, timers, ...watch, ...options }),
    watchJobs: (handlers = {}, options = {}) => watchJobs(handlers, { api, link, timers, ...jobs, ...options }),
    close: () => link.close(),
  };
}
