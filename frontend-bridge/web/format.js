// How numbers, times and states read on the page. Pure functions, unit-tested.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return "–";
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** "122 of 451 MiB": a part and its whole in the whole's unit. */
export function formatBytesOf(part, whole) {
  if (!Number.isFinite(part) || !Number.isFinite(whole)) return `${formatBytes(part)} of ${formatBytes(whole)}`;
  let unit = 0;
  let scale = 1;
  while (whole / scale >= 1024 && unit < UNITS.length - 1) {
    scale *= 1024;
    unit += 1;
  }
  const digits = unit === 0 || whole / scale >= 100 ? 0 : whole / scale >= 10 ? 1 : 2;
  return `${(Math.max(0, part) / scale).toFixed(digits)} of ${(whole / scale).toFixed(digits)} ${UNITS[unit]}`;
}

export function formatRate(bps) {
  if (bps === null || bps === undefined || !Number.isFinite(bps)) return "–";
  return `${formatBytes(bps)}/s`;
}

/** "45 s", "3 min 05 s", "2 h 04 min". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

export function formatPercent(percent) {
  if (percent === null || percent === undefined || !Number.isFinite(percent)) return "–";
  return `${(Math.floor(percent * 10) / 10).toFixed(1)} %`;
}

/** "+1.25 s" between two events; "" for the first. */
export function formatDelay(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "";
  if (ms < 1000) return `+${Math.round(ms)} ms`;
  if (ms < 60000) return `+${(ms / 1000).toFixed(2)} s`;
  return `+${formatDuration(ms / 1000)}`;
}

/** Wall-clock time with milliseconds, local: "14:03:07.250". */
export function formatClock(date) {
  const d = date instanceof Date ? date : new Date(date);
  if (Number.isNaN(d.getTime())) return "–";
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/**
 * A moment with its date and time zone, to the second: "2026-12-07 14:03:07 GMT+1" (the browser's
 * zone unless `timeZone` names one); "–" for none.
 */
export function formatStamp(value, { timeZone } = {}) {
  if (value === null || value === undefined || value === "") return "–";
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return "–";
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-GB", { timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short" })
      .formatToParts(d)
      .map((part) => [part.type, part.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} ${parts.timeZoneName}`;
}

/** How long a job took, or has taken so far: from its creation to its end (or `now`). */
export function jobDuration(view, now = Date.now()) {
  const start = Date.parse(view?.created_at ?? "");
  if (!Number.isFinite(start)) return null;
  const end = view.finished_at ? Date.parse(view.finished_at) : now;
  return Number.isFinite(end) ? Math.max(0, (end - start) / 1000) : null;
}

/** "12 s ago", "3 min ago", "2 h ago", or the date for older. */
export function formatAgo(date, now = Date.now()) {
  if (!date) return "never";
  const t = new Date(date).getTime();
  if (Number.isNaN(t)) return "–";
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t).toISOString().slice(0, 10);
}

// The backend names a job it learned of only from callbacks (a replayed capture) "unknown" until
// its completion says which image it made: that is no name to show.
const NO_IMAGE = new Set(["", "unknown"]);

/**
 * What a job imports, in one name: the reference it produced (from the completion event), else
 * the one asked for, else its id.
 */
export function jobName(view) {
  const named = (ref) => (typeof ref === "string" && !NO_IMAGE.has(ref) ? ref : null);
  return named(view?.result?.ref) || named(view?.result?.tags?.[0]) || named(view?.image) || `job ${view?.id ?? "?"}`;
}

export function shortId(id) {
  if (!id) return "–";
  const hex = String(id).replace(/^sha256:/, "");
  return hex.length > 12 ? hex.slice(0, 12) : hex;
}

const PHASES = {
  queued: "Queued",
  preparing: "Preparing",
  downloading: "Downloading",
  importing: "Importing",
  waiting_for_upload: "Waiting for upload",
  loading: "Loading layers",
  finalizing: "Finalizing",
  verifying: "Verifying",
  done: "Done",
};

const STATES = { queued: "queued", running: "running", succeeded: "succeeded", failed: "failed", canceled: "canceled" };

export function phaseLabel(phase) {
  return PHASES[phase] ?? String(phase ?? "");
}

export function stateLabel(state) {
  return STATES[state] ?? String(state ?? "");
}

/**
 * Where a job came from when no import was dispatched for it: "simulated" (`ferry simulate`'s
 * sim- ids) or "replayed" (the backend knows it only from callbacks: neither upload nor source).
 * null for a real import, and while only events (no snapshot) are known of a job without a sim- id.
 */
export function jobOrigin(view) {
  if (String(view?.id ?? "").startsWith("sim-")) return "simulated";
  if (view && view.upload_id === null && view.source_url === null) return "replayed";
  return null;
}

/** How much of the upload a job waits for has arrived: "45 % uploaded (45.0 MB of 100 MB)". */
export function uploadedShare(view) {
  const available = view.bytes_available;
  if (available === null || available === undefined || !view.bytes_total) return "upload still arriving";
  const percent = Math.floor((100 * available) / view.bytes_total);
  return `${percent} % uploaded (${formatBytes(available)} of ${formatBytes(view.bytes_total)})`;
}

/** What a job that found its image already there says: it succeeded, but it imported nothing. */
export const ALREADY_PRESENT = "already present — nothing imported";

/** The importer found the image already imported from the same archive and sent nothing (ImageInfo.already_present). */
export function isAlreadyPresent(view) {
  return view?.state === "succeeded" && view.result?.already_present === true;
}

/** A running job that has sent nothing for this long is said to be silent (the importer reports every 0.5 s). */
export const SILENT_AFTER_S = 5;

/** A host whose last word is older than this is "silent for N s", not "online" (importers beat every 10 s). */
export const HOST_SILENT_AFTER_S = 20;

/** How a host's liveness reads: "online", "silent for 58 s", or "never heard from". A doubt, not a verdict. */
export function hostLiveness(host, now = Date.now()) {
  if (!host?.last_seen) return { words: "never heard from", tone: "bad" };
  const t = Date.parse(host.last_seen);
  if (Number.isNaN(t)) return { words: "–", tone: "bad" };
  const silentS = Math.max(0, (now - t) / 1000);
  if (host.alive && silentS < HOST_SILENT_AFTER_S) return { words: "online", tone: "ok" };
  return { words: `silent for ${formatDuration(silentS)}`, tone: host.alive ? "warn" : "bad" };
}

/**
 * The one line under a job's bar: what is happening now, in words. `elapsedS` is the finalizing
 * time counted on from the last event; `silentS` how long the page has heard nothing of a running
 * job: past SILENT_AFTER_S the last rate and ETA are no longer true, so the line says so instead.
 * `doubtS`: how long the backend has heard nothing from the job's host (view.doubt), which it says
 * in its own words ("no word from lab1 for 40 s"); the job is not over for that.
 */
export function jobStatusLine(view, elapsedS = view.phase_elapsed_s, silentS = null, doubtS = null) {
  if (isAlreadyPresent(view)) {
    return `${ALREADY_PRESENT[0].toUpperCase()}${ALREADY_PRESENT.slice(1)} · ${view.result?.ref ?? view.image ?? ""} · ${shortId(view.result?.id)}`;
  }
  if (view.state === "succeeded") {
    const size = view.result ? formatBytes(view.result.size) : "";
    return `Imported ${view.result?.ref ?? view.image ?? ""} · ${shortId(view.result?.id)}${size ? ` · ${size}` : ""}`.trim();
  }
  if (view.state === "failed") {
    const line = `Failed: ${view.error?.message ?? "unknown error"} (${view.error?.code ?? "no code"})`;
    return view.presumed ? `${line} · presumed: a later report from ${view.host} replaces it` : line;
  }
  if (view.state === "canceled") return "Canceled";
  if (view.state === "queued" || view.phase === "queued") {
    return view.queue_position ? `Queued · position ${view.queue_position}` : "Queued";
  }
  const silent = view.doubt
    ? `no word from ${view.doubt.host ?? view.host} for ${formatDuration(doubtS ?? view.doubt.silent_s)}`
    : silentS !== null && silentS >= SILENT_AFTER_S ? `no update for ${formatDuration(silentS)}` : null;
  if (view.phase === "finalizing" || view.phase === "verifying") {
    const what = view.phase === "finalizing" ? "Finalizing" : "Verifying";
    return [`${what}… ${formatDuration(elapsedS ?? 0)}`, silent].filter(Boolean).join(" · ");
  }
  const parts = [];
  if (view.phase === "waiting_for_upload") {
    // The host took every byte that has arrived; it goes on as the upload does: say how far the upload is.
    parts.push(`Waiting for upload · ${uploadedShare(view)}`);
    parts.push(`${formatBytes(view.bytes_done)} of ${formatBytes(view.bytes_total)} imported`);
    if (silent) parts.push(silent);
    return parts.join(" · ");
  }
  if (view.phase === "loading") {
    // The engine has every byte of a docker-save archive and loads its layers: count those instead.
    const layers = view.layers_done ?? null;
    parts.push(layers === null ? "Loading layers" : `Loading layers ${layers}${view.layers_total != null ? `/${view.layers_total}` : ""}`);
    if (view.layer_bytes_total) parts.push(`${formatBytes(view.layer_bytes_done ?? 0)} of ${formatBytes(view.layer_bytes_total)}`);
  } else {
    parts.push(view.bytes_total ? `${formatBytes(view.bytes_done)} of ${formatBytes(view.bytes_total)}` : formatBytes(view.bytes_done));
  }
  if (silent) {
    parts.push(silent);
  } else {
    if (view.rate_bps !== null && view.rate_bps !== undefined) parts.push(formatRate(view.rate_bps));
    if (view.eta_s !== null && view.eta_s !== undefined) parts.push(`${formatDuration(view.eta_s)} left`);
  }
  return parts.join(" · ");
}

/** The newest job that made this image on this host (its result is the image), if the page knows one. */
export function jobThatMade(views, host, imageId) {
  if (!imageId) return null;
  const made = views.filter((v) => v.host === host && v.state === "succeeded" && (v.result?.id === imageId || (v.result?.images ?? []).some((i) => i?.id === imageId)));
  return made.sort((a, b) => String(b.created_at ?? "").localeCompare(String(a.created_at ?? "")))[0] ?? null;
}
