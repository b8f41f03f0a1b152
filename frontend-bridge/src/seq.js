// Decisions about one job's event stream, as pure functions over a small state object.
//
// The backend replays stored events after a (re)subscribe and may deliver an event twice (job
// room and jobs room, socket and polling overlap). Sequence numbers make that harmless: an event
// counts only if its seq is newer than the last one counted, and the shown state never moves back.

export const TERMINAL_TYPES = new Set(["import.completed", "import.failed", "import.canceled"]);
export const TERMINAL_STATES = new Set(["succeeded", "failed", "canceled"]);
const TYPE_FOR_STATE = { succeeded: "import.completed", failed: "import.failed", canceled: "import.canceled" };

/** @typedef {{lastSeq: number, view: object|null, terminal: {type: string, data: object}|null}} JobStream */

/** A fresh stream that has counted every event up to `afterSeq`. */
export function newStream(afterSeq = 0) {
  return { lastSeq: afterSeq, view: null, terminal: null };
}

/**
 * Count one validated event.
 * @returns {{stream: JobStream, verdict: "new"|"duplicate"|"stale"|"after_end"}}
 *   "duplicate": seq equal to the last one counted; "stale": older; "after_end": the job already
 *   ended (a terminal event is final).
 */
export function applyEvent(stream, type, data) {
  if (stream.terminal) return { stream, verdict: "after_end" };
  if (data.seq === stream.lastSeq) return { stream, verdict: "duplicate" };
  if (data.seq < stream.lastSeq) return { stream, verdict: "stale" };
  const view = newer(stream.view, viewFromEvent(data));
  const terminal = TERMINAL_TYPES.has(type) ? { type, data } : null;
  return { stream: { lastSeq: data.seq, view, terminal }, verdict: "new" };
}

/**
 * Take a snapshot (a `Job` from the REST API or a subscribe ack). It may update what is shown, but
 * never `lastSeq`: the events up to the snapshot still come as replays and belong in the timeline.
 */
export function applySnapshot(stream, job) {
  return { ...stream, view: newer(stream.view, viewFromJob(job)) };
}

/**
 * After a snapshot: is the job over, and has every event up to its end been counted?
 * "open": not terminal; "caught_up": terminal and nothing is missing; "behind": terminal, events
 * still to come.
 */
export function snapshotProgress(stream, job) {
  if (!TERMINAL_STATES.has(job.state)) return "open";
  return (job.seq ?? 0) <= stream.lastSeq ? "caught_up" : "behind";
}

/** The terminal event a finished snapshot stands for, when its own event never arrived. */
export function terminalFromSnapshot(job) {
  const view = viewFromJob(job);
  return {
    type: TYPE_FOR_STATE[job.state],
    data: {
      job_id: view.id,
      host: view.host,
      seq: view.seq,
      state: view.state,
      phase: view.phase,
      percent: view.percent,
      bytes_done: view.bytes_done,
      bytes_total: view.bytes_total,
      rate_bps: view.rate_bps,
      eta_s: view.eta_s,
      image: view.result,
      error: view.error,
    },
  };
}

/** The shape the page shows, built from an event's data. */
export function viewFromEvent(data) {
  return {
    id: data.job_id,
    host: data.host,
    seq: data.seq,
    state: data.state,
    phase: data.phase,
    percent: data.percent,
    bytes_done: data.bytes_done,
    bytes_total: data.bytes_total ?? null,
    rate_bps: data.rate_bps ?? null,
    eta_s: data.eta_s ?? null,
    phase_elapsed_s: data.phase_elapsed_s ?? null,
    queue_position: data.queue_position ?? null,
    layers_done: data.layers_done ?? null,
    layers_total: data.layers_total ?? null,
    layer_bytes_done: data.layer_bytes_done ?? null,
    layer_bytes_total: data.layer_bytes_total ?? null,
    bytes_available: data.bytes_available ?? null,
    result: data.image ?? null,
    error: data.error ?? null,
    // An event is the host's own word: no doubt about it, and no presumption stands against it.
    doubt: null,
    presumed: false,
  };
}

/** The same shape from a `Job` snapshot (which also knows the image name and times). */
export function viewFromJob(job) {
  return {
    id: job.id,
    host: job.host,
    image: job.image,
    seq: job.seq ?? 0,
    state: job.state,
    phase: job.phase,
    percent: job.percent ?? 0,
    bytes_done: job.bytes_done ?? 0,
    bytes_total: job.bytes_total ?? null,
    rate_bps: job.rate_bps ?? null,
    eta_s: job.eta_s ?? null,
    phase_elapsed_s: job.phase_elapsed_s ?? null,
    queue_position: job.queue_position ?? null,
    // Snapshots carry a load's layer counts as its events do; one without them (an older backend) keeps the last seen.
    layers_done: job.layers_done,
    layers_total: job.layers_total,
    layer_bytes_done: job.layer_bytes_done,
    layer_bytes_total: job.layer_bytes_total,
    bytes_available: job.bytes_available,
    result: job.result ?? null,
    error: job.error ?? null,
    created_at: job.created_at,
    updated_at: job.updated_at,
    // Neither is set for a job the backend never dispatched (a replayed capture, a simulation).
    upload_id: job.upload_id,
    source_url: job.source_url,
    finished_at: job.finished_at,
    // Who started it and from which file (backends before these were kept send neither).
    created_by: job.created_by ?? undefined,
    source_name: job.source_name ?? undefined,
    doubt: job.doubt ?? null,
    presumed: Boolean(job.presumed),
  };
}

/** Keep whichever view has the higher seq; fields only one of them knows (image name, times) survive. */
export function newer(current, candidate) {
  if (!current) return candidate;
  if (candidate.seq < current.seq) return { ...candidate, ...stripUndefined(current) };
  return { ...current, ...stripUndefined(candidate) };
}

function stripUndefined(object) {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}

export function isTerminalState(state) {
  return TERMINAL_STATES.has(state);
}

/** Ended for good: a terminal state that is not the backend's presumption (the host's next event would replace that). */
export function isFinal(view) {
  return Boolean(view) && TERMINAL_STATES.has(view.state) && !view.presumed;
}
