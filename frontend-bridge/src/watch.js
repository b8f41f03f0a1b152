// watchImport: follow one job to its end over Socket.IO, or over the REST event log when the
// websocket cannot connect, and switch back as soon as it can.
//
// Guarantees: every event is validated against the contract; each seq counts once and in
// increasing order (replays after a reconnect and overlaps between socket and polling are
// ignored); after every (re)connect the watch resubscribes with the last seq it counted, so
// nothing is missed; a terminal event ends the watch.
//
// The socket is shared: the all-jobs feed of a list view also carries this job's live events, in
// no order relative to this job's catch-up. A live event counts only while the job's subscribe is
// acknowledged on the current connection; before that (subscribe in flight, refused, timed out)
// it is set aside, because it comes again in order: the backend logs every event before it
// announces it, so the catch-up after the ack (or the REST log while polling) holds it. Counting
// it early would make the catch-up's older seqs look stale and leave holes in the timeline.
import { FerryError, isFatal } from "./errors.js";
import { callerFor, timersOr } from "./handlers.js";
import { applyEvent, applySnapshot, snapshotProgress, terminalFromSnapshot } from "./seq.js";
import { checkImportEvent } from "./validate.js";

export const WATCH_DEFAULTS = {
  connectTimeoutMs: 4000, // websocket (re)connect allowance before polling starts
  ackTimeoutMs: 4000, // subscribe ack allowance
  pollIntervalMs: 1000, // REST polling period
  maxPollIntervalMs: 10000, // polling backoff ceiling while the backend is unreachable
  catchUpMs: 3000, // wait for replayed events after a terminal snapshot before asking REST
  resubscribeMs: 5000, // while polling over a connected socket, retry subscribe this often
};

/**
 * @param {string} jobId
 * @param {{onSnapshot?, onEvent?, onReplay?, onIgnored?, onInvalid?, onTransport?, onError?, onDone?}} handlers
 *   onEvent({type, data, meta}) for each new event (meta: {catchup, via: "socket"|"poll", timestamp}:
 *   catchup = sent from the backend's log after a subscribe, timestamp = when the backend received it);
 *   onReplay(...) for an operator replay (meta.replay, meta.replay_id), never counted; onTransport(mode) with
 *   mode ∈ "connecting" | "socket" | "polling"; onDone(terminalEvent) once, at the end;
 *   onIgnored({type, data, meta, verdict}) for an event not counted, verdict ∈ "duplicate" | "stale" |
 *   "after_end" | "unsubscribed" (a live socket event before the job's subscribe was acknowledged).
 * @param {{api, link, timers?, afterSeq?} & Partial<typeof WATCH_DEFAULTS>} deps
 * @returns {{stop(): void, readonly mode: string, readonly lastSeq: number, readonly view: object|null,
 *            done: Promise<object|null>}}
 */
export function watchImport(jobId, handlers, { api, link, timers, afterSeq = 0, ...options }) {
  const cfg = { ...WATCH_DEFAULTS, ...options };
  const clock = timersOr(timers);
  const call = callerFor(handlers);

  let stream = { lastSeq: afterSeq, view: null, terminal: null };
  let mode = "connecting";
  let stopped = false;
  let fallbackTimer = null;
  let pollTimer = null;
  let catchUpTimer = null;
  let subscribeGen = 0;
  let subscribing = false;
  let subscribed = false; // the job's subscribe is acknowledged on this connection: live events count
  let lastSubscribeAt = -Infinity;
  let elapsedPolling = 0;
  let pollGen = 0;
  let pendingSnapshot = null;
  let resolveDone;
  const done = new Promise((resolve) => (resolveDone = resolve));

  const setMode = (next) => {
    if (mode === next) return;
    mode = next;
    call("onTransport", next);
  };

  // `sentAt`: the callback's own timestamp, known for events read from the REST log.
  function handleEvent(type, data, meta, sentAt) {
    if (stopped) return;
    if (data?.job_id !== jobId) return; // another job's event on the shared socket
    const check = checkImportEvent(type, data, sentAt);
    if (!check.ok) {
      call("onInvalid", new FerryError("invalid_payload", `${type}: ${check.message}`), { type, data, meta });
      return;
    }
    // An operator replay tells the job's story again: shown, never counted.
    if (meta.replay) return call("onReplay", { type, data, meta });
    if (meta.via === "socket" && !meta.catchup && !subscribed) {
      call("onIgnored", { type, data, meta, verdict: "unsubscribed" });
      return;
    }
    const result = applyEvent(stream, type, data);
    if (result.verdict !== "new") {
      call("onIgnored", { type, data, meta, verdict: result.verdict });
      return;
    }
    stream = result.stream;
    call("onEvent", { type, data, meta });
    if (stream.terminal) finish(stream.terminal);
    else if (pendingSnapshot) settleSnapshot();
  }

  function handleSnapshot(job) {
    if (stopped || !job) return;
    stream = applySnapshot(stream, job);
    call("onSnapshot", job);
    pendingSnapshot = job;
    settleSnapshot();
  }

  // A terminal snapshot ends the watch once the events up to it are counted; if they do not
  // arrive (socket replay lost), ask the REST log once, then end with the snapshot.
  function settleSnapshot() {
    const job = pendingSnapshot;
    const progress = snapshotProgress(stream, job);
    if (progress === "open") {
      pendingSnapshot = null;
    } else if (progress === "caught_up") {
      finish(stream.terminal ?? terminalFromSnapshot(job));
    } else if (!catchUpTimer) {
      catchUpTimer = clock.setTimeout(async () => {
        try {
          await fetchEvents();
        } catch (error) {
          call("onError", error);
        }
        if (!stopped) finish(terminalFromSnapshot(job));
      }, cfg.catchUpMs);
    }
  }

  async function subscribe() {
    if (stopped) return;
    const gen = ++subscribeGen;
    subscribing = true;
    subscribed = false; // until the ack, this job's live events may overtake its catch-up
    lastSubscribeAt = elapsedPolling;
    // Set at the ack itself: live events after it come after the catch-up.
    const onAnswer = (answer) => {
      if (gen === subscribeGen && !stopped && answer?.ok) subscribed = true;
    };
    let ack;
    try {
      ack = await link.request("subscribe", { job_id: jobId, after_seq: stream.lastSeq }, cfg.ackTimeoutMs, { onAnswer });
    } catch {
      if (gen === subscribeGen) armFallback(0);
      return;
    } finally {
      if (gen === subscribeGen) subscribing = false;
    }
    if (stopped || gen !== subscribeGen) return;
    if (!ack?.ok) {
      const error = new FerryError(ack?.error?.code ?? "subscribe_failed", ack?.error?.message ?? "subscribe refused");
      if (isFatal(error)) return fail(error);
      call("onError", error);
      armFallback(0);
      return;
    }
    clearFallback();
    stopPolling();
    setMode("socket");
    handleSnapshot(ack.snapshot);
  }

  function armFallback(delay = cfg.connectTimeoutMs) {
    if (stopped || mode === "polling" || fallbackTimer) return;
    if (delay === 0) return startPolling();
    fallbackTimer = clock.setTimeout(() => {
      fallbackTimer = null;
      if (!stopped && mode !== "socket") startPolling();
    }, delay);
  }

  function clearFallback() {
    if (fallbackTimer) clock.clearTimeout(fallbackTimer);
    fallbackTimer = null;
  }

  function startPolling() {
    if (stopped || mode === "polling") return;
    setMode("polling");
    const gen = ++pollGen;
    pollLoop(gen, true, cfg.pollIntervalMs);
  }

  function stopPolling() {
    pollGen += 1;
    if (pollTimer) clock.clearTimeout(pollTimer);
    pollTimer = null;
  }

  async function pollLoop(gen, first, interval) {
    let next = cfg.pollIntervalMs;
    try {
      if (first) {
        const job = await api.getImport(jobId);
        if (gen !== pollGen || stopped) return;
        handleSnapshot(job);
      }
      if (stopped || gen !== pollGen) return;
      await fetchEvents(gen);
    } catch (error) {
      if (stopped || gen !== pollGen) return;
      if (isFatal(error)) return fail(error);
      call("onError", error);
      next = Math.min(interval * 2, cfg.maxPollIntervalMs);
    }
    if (stopped || gen !== pollGen) return;
    // The socket may be back without a fresh "connect" (an ack that timed out): try it again.
    elapsedPolling += next;
    if (link.connected && !subscribing && elapsedPolling - lastSubscribeAt >= cfg.resubscribeMs) subscribe();
    pollTimer = clock.setTimeout(() => pollLoop(gen, false, next), next);
  }

  async function fetchEvents(gen = pollGen) {
    const events = await api.getEvents(jobId, stream.lastSeq);
    if (stopped || gen !== pollGen || !Array.isArray(events)) return;
    for (const event of events) {
      // As on the socket, `timestamp` is when the backend received the event.
      handleEvent(event.type, event.data, { replay: false, catchup: false, via: "poll", timestamp: event.received_at }, event.timestamp);
      if (stopped) return;
    }
  }

  function fail(error) {
    call("onError", error);
    cleanup();
    resolveDone(null);
  }

  function finish(terminal) {
    if (stopped) return;
    cleanup();
    call("onDone", terminal);
    resolveDone(terminal);
  }

  function cleanup() {
    if (stopped) return;
    stopped = true;
    clearFallback();
    stopPolling();
    if (catchUpTimer) clock.clearTimeout(catchUpTimer);
    offEvent();
    offStatus();
    link.leaveRoom(`job:${jobId}`, "unsubscribe", { job_id: jobId });
    link.release();
  }

  const offEvent = link.onEvent((type, data, meta) => handleEvent(type, data, { ...meta, via: "socket" }));
  const offStatus = link.onStatus((status) => {
    if (stopped) return;
    if (status === "connect") subscribe();
    else if (status === "disconnect") {
      subscribeGen += 1; // an ack still in flight belongs to the old connection
      subscribing = false;
      subscribed = false;
      if (mode === "socket") setMode("connecting");
      armFallback();
    }
  });
  link.acquire();
  link.joinRoom(`job:${jobId}`);
  call("onTransport", mode);
  if (link.connected) subscribe();
  else armFallback(link.knownDown ? 0 : cfg.connectTimeoutMs);

  return {
    stop() {
      if (stopped) return;
      cleanup();
      resolveDone(null);
    },
    get mode() {
      return mode;
    },
    get lastSeq() {
      return stream.lastSeq;
    },
    get view() {
      return stream.view;
    },
    done,
  };
}
