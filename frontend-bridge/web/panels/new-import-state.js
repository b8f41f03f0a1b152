// Decisions of the "New import" panel, as pure functions over plain values: what is missing before
// Import, what the image field says, what the upload's words are after progress, a retry, its end
// or its failure, and which hosts are ticked. web/panels/new-import.js builds the DOM and does the
// I/O (upload, start, timers) with them.
import { checkReference } from "../../src/reference.js";
import { formatBytes, formatBytesOf, formatDuration, formatRate } from "../format.js";

// Refusals that the same upload, tried again, would get again.
export const UNRESUMABLE = new Set(["too_large", "forbidden", "unauthorized", "invalid_request"]);

/**
 * What Import still needs, in words (empty: ready).
 * @param {{uploaded: object|null, uploading: boolean, hostCount: number, image: string, format: string}} form
 */
export function readiness({ uploaded, uploading, hostCount, image, format }) {
  const missing = [];
  if (!uploaded) missing.push(uploading ? "wait for the upload to start" : "upload an archive");
  if (hostCount === 0) missing.push("choose at least one host");
  const named = image !== "";
  if (named && !checkReference(image).ok) missing.push("give a valid image name");
  if (!named && format === "import") missing.push("give an image name (a file system archive has none)");
  return missing;
}

/** The hint under Import. */
export function readinessHint(missing) {
  return missing.length ? `To import: ${missing.join(", ")}.` : "Ready to import.";
}

/** The image field's verdict: shown only once the user typed and the field is not empty. */
export function imageVerdict(value, touched) {
  const verdict = checkReference(value);
  const invalid = touched && value !== "" && !verdict.ok;
  return { invalid, message: invalid ? verdict.message : "" };
}

/** The upload's stats line and bar from a progress report. */
export function progressWords(p) {
  const parts = [`${formatBytes(p.bytesSent)} of ${formatBytes(p.bytesTotal)}`];
  if (p.rateBps !== null) parts.push(formatRate(p.rateBps));
  if (p.etaS !== null) parts.push(`${formatDuration(p.etaS)} left`);
  return { percent: p.percent ?? 0, bar: `${p.percent ?? 0} % uploaded`, stats: parts.join(" · ") };
}

/** "retrying in N s" at `now` for a retry due at `at` (ms); `over` once it is due. */
export function retryWords(at, now) {
  const s = Math.ceil((at - now) / 1000);
  return { text: s > 0 ? `Connection lost — retrying in ${s} s` : "Connection lost — retrying now", over: s <= 0 };
}

export const OFFLINE_WORDS = "Offline — the upload continues by itself when the browser is back online.";

/** A resumed upload: the earlier one it continues leaves the stored list, and the page says how much was there. */
export function resumed(stored, url, fileName) {
  const earlier = stored.find((entry) => entry.url === url);
  const held = earlier ? `: ${formatBytesOf(earlier.offset, earlier.size)} were already on the server` : " from what the server already has";
  return { stored: stored.filter((entry) => entry !== earlier), note: `Resumed the earlier upload of ${fileName}${held}.` };
}

/** The stats line of a finished upload: imports already started on it, or what to do next. */
export function uploadedWords(result, startedOn) {
  return startedOn === result.uploadId
    ? `Uploaded ${formatBytes(result.size)}. The imports started on it have every byte now.`
    : `Uploaded ${formatBytes(result.size)}. Choose hosts (and an image name for a file system archive), then Import.`;
}

/**
 * An upload that stopped (canceled or failed).
 * @returns {{uploaded: object|null, resumable: boolean, stats: string}} `uploaded`: what is left to
 *   import from (an upload canceled with imports started on it is removed on the server, with them; an
 *   unfinished one waits for Resume upload); `resumable`: the server keeps what it got, and the same
 *   file continues from there.
 */
export function uploadStopped({ uploaded, startedOn, error }) {
  const removed = error.code === "aborted" && uploaded !== null && startedOn === uploaded.uploadId;
  const what = removed
    ? "Upload canceled and removed; the imports started on it are canceled."
    : error.code === "aborted"
      ? "Upload canceled."
      : `Upload failed: ${error.message} (${error.code}).`;
  const left = removed || (uploaded && !uploaded.complete) ? null : uploaded;
  if (UNRESUMABLE.has(error.code) || removed) return { uploaded: left, resumable: false, stats: what };
  return { uploaded: left, resumable: true, stats: `${what} Resume upload continues from what the server already has.` };
}

/** The stats line of a file refused from its first bytes. */
export function refusedWords(verdict) {
  return `Not uploaded: ${verdict.message} (${verdict.code}). Choose a .tar, .tar.xz, .tar.gz, .tar.zst or .tar.bz2 archive.`;
}

/**
 * The hosts ticked after the list changed: a host gone is unticked; the only host there is is ticked
 * (until the user ticked or unticked one themselves).
 * @param {Set<string>} chosen
 * @returns {Set<string>}
 */
export function chooseHosts(chosen, hosts, touched) {
  const names = new Set(hosts.map((host) => host.name));
  const next = new Set([...chosen].filter((name) => names.has(name)));
  if (hosts.length === 1 && !touched) next.add(hosts[0].name);
  return next;
}
