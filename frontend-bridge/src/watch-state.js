// Decisions of watchImport, as pure functions over a plain state object; src/watch.js does the
// I/O (socket, REST, timers) and calls these to know what to do.
//
// A live socket event counts only while the job's subscribe is acknowledged on the current
// connection (`subscribed`); each subscribe and each disconnect starts a new generation, so an
// ack still in flight from an older connection changes nothing.
import { applyEvent, applySnapshot, newStream, snapshotProgress, terminalFromSnapshot } from "./seq.js";
import { checkImportEvent } from "./validate.js";

/**
 * @typedef {{stream: import("./seq.js").JobStream, mode: "connecting"|"socket"|"polling", ended: boolean,
 *   subscribeGen: number, subscribing: boolean, subscribed: boolean, lastSubscribeAt: number,
 *   elapsedPolling: number, pendingSnapshot: object|null}} WatchState
 */

/** A watch that has counted every event up to `afterSeq` and is connecting. */
export function newWatch(afterSeq = 0) {
  return {
    stream: newStream(afterSeq),
    mode: "connecting",
    ended: false,
    subscribeGen: 0,
    subscribing: false,
    subscribed: false, // the job's subscribe is acknowledged on this connection: live events count
    lastSubscribeAt: -Infinity, // polling time of the last subscribe sent
    elapsedPolling: 0, // time spent polling, in ms
    pendingSnapshot: null, // a snapshot not yet settled against the events counted
  };
}

/**
 * Judge one event of the watched job (`sentAt`: the callback's own timestamp, known for events read
 * from the REST log).
 * @returns {{state: WatchState, verdict: "foreign"|"invalid"|"replay"|"unsubscribed"|"duplicate"|"stale"|"after_end"|"new", message?: string}}
 *   "foreign": another job's event on the shared socket; "invalid": not the contract (`message` says
 *   why); "replay": an operator replay, shown, never counted; "unsubscribed": a live socket event
 *   before the job's subscribe was acknowledged; the rest as `applyEvent`.
 */
export function judgeEvent(state, jobId, { type, data, meta, sentAt }) {
  if (data?.job_id !== jobId) return { state, verdict: "foreign" };
  const check = checkImportEvent(type, data, sentAt);
  if (!check.ok) return { state, verdict: "invalid", message: check.message };
  if (meta.replay) return { state, verdict: "replay" };
  if (meta.via === "socket" && !meta.catchup && !state.subscribed) return { state, verdict: "unsubscribed" };
  const result = applyEvent(state.stream, type, data);
  if (result.verdict !== "new") return { state, verdict: result.verdict };
  return { state: { ...state, stream: result.stream }, verdict: "new" };
}

/** Take a snapshot (REST or a subscribe ack): shown at once, settled against the events by `settle`. */
export function takeSnapshot(state, job) {
  return { ...state, stream: applySnapshot(state.stream, job), pendingSnapshot: job };
}

/**
 * What the counted events and the pending snapshot say about the end.
 * @returns {{state: WatchState, outcome: "open"|"finish"|"behind", terminal?: object}}
 *   "finish": the watch ends with `terminal` (a terminal event counted, or a terminal snapshot whose
 *   events are all counted); "behind": a terminal snapshot whose events are still to come (wait for
 *   them, then ask the REST log, then end with `terminal`); "open": the job goes on.
 */
export function settle(state) {
  if (state.stream.terminal) return { state, outcome: "finish", terminal: state.stream.terminal };
  const job = state.pendingSnapshot;
  if (!job) return { state, outcome: "open" };
  const progress = snapshotProgress(state.stream, job);
  if (progress === "open") return { state: { ...state, pendingSnapshot: null }, outcome: "open" };
  if (progress === "caught_up") return { state, outcome: "finish", terminal: terminalFromSnapshot(job) };
  return { state, outcome: "behind", terminal: terminalFromSnapshot(job) };
}

/** A subscribe goes out: a new generation; until its ack, this job's live events may overtake its catch-up. */
export function subscribeSent(state) {
  return { ...state, subscribeGen: state.subscribeGen + 1, subscribing: true, subscribed: false, lastSubscribeAt: state.elapsedPolling };
}

/** The subscribe of generation `gen` was answered: live events count from the ack itself, if it is current and ok. */
export function subscribeAnswered(state, gen, answer) {
  if (gen !== state.subscribeGen || state.ended || !answer?.ok) return state;
  return { ...state, subscribed: true };
}

/** The subscribe of generation `gen` is over (answered, refused or timed out). */
export function subscribeSettled(state, gen) {
  return gen === state.subscribeGen ? { ...state, subscribing: false } : state;
}

/** The socket dropped: an ack still in flight belongs to the old connection; live events stop counting. */
export function disconnected(state) {
  return { ...state, subscribeGen: state.subscribeGen + 1, subscribing: false, subscribed: false, mode: state.mode === "socket" ? "connecting" : state.mode };
}

/** One polling round went by, `ms` long. */
export function polled(state, ms) {
  return { ...state, elapsedPolling: state.elapsedPolling + ms };
}

/** While polling over a socket that is connected (an ack that timed out), subscribe again every `resubscribeMs`. */
export function shouldResubscribe(state, connected, resubscribeMs) {
  return connected && !state.subscribing && state.elapsedPolling - state.lastSubscribeAt >= resubscribeMs;
}

/** The next polling delay: the period after a good round, doubled up to the ceiling after a failed one. */
export function nextPollDelay(interval, failed, { pollIntervalMs, maxPollIntervalMs }) {
  return failed ? Math.min(interval * 2, maxPollIntervalMs) : pollIntervalMs;
}

/**
 * How long to wait for the socket before polling, or null when there is nothing to wait for (ended,
 * or already polling). cause: "connecting" (the watch starts, the socket is on its way), "drop" (the
 * socket dropped: it may come back), "down" (the link knows the backend's socket is down), "no_ack"
 * (the subscribe timed out), "refused" (the subscribe was refused): the last three poll at once.
 */
export function fallbackDelay(state, cause, { connectTimeoutMs }) {
  if (state.ended || state.mode === "polling") return null;
  return cause === "connecting" || cause === "drop" ? connectTimeoutMs : 0;
}
