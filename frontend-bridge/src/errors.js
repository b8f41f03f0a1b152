// The client's one error type. Every failure a caller can see (HTTP, network, socket, upload,
// payload, input) becomes a FerryError with a stable snake_case `code`; messages may change.

export class FerryError extends Error {
  /**
   * @param {string} code stable snake_case code (the backend's own code when it sent one)
   * @param {string} message one line a person can act on
   * @param {{status?: number, detail?: unknown, cause?: unknown}} [extra]
   */
  constructor(code, message, { status, detail, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "FerryError";
    this.code = code;
    this.status = status;
    this.detail = detail;
  }
}

/** Codes after which retrying the same call cannot help: the watch or upload stops. */
export const FATAL_CODES = new Set(["unauthorized", "forbidden", "not_found"]);

export function isFatal(error) {
  return error instanceof FerryError && FATAL_CODES.has(error.code);
}

/** The code to use for an HTTP status when the body did not carry one. */
export function codeForStatus(status) {
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 404) return "not_found";
  if (status === 409) return "conflict";
  if (status === 413) return "too_large";
  if (status === 422 || status === 400) return "invalid_request";
  if (status >= 500) return "server_error";
  return `http_${status}`;
}
