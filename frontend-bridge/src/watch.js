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
import { disconnected, fallbackDelay, judgeEvent, newWatch, nextPollDelay, polled, settle, shouldResubscribe, subscribeAnswered, subscribeSent, subscribeSettled, takeSnapshot } from "./watch-state.js";

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

  let state = newWatch(afterSeq);
  let fallbackTimer = null;
  let pollTimer = null;
  let catchUpTimer = null;
  let pollGen = 0;
  let resolveDone;
  const done = new Promise((resolve) => (resolveDone = resolve));

  const setMode = (next) => {
    if (state.mode === next) return;
    state = { ...state, mode: next };
    call("onTransport", next);
  };

  // `sentAt`: the callback's own timestamp, known for events read from the REST log.
  function handleEvent(type, data, meta, sentAt) {
    if (state.ended) return;
    const judged = judgeEvent(state, jobId, { type, data, meta, sentAt });
    state = judged.state;
    const { verdict } = judged;
    if (verdict === "foreign") return;
    if (verdict === "invalid") return call("onInvalid", new FerryError("invalid_payload", `${type}: ${judged.message}`), { type, data, meta });
    if (verdict === "replay") return call("onReplay", { type, data, meta });
    if (verdict !== "new") return call("onIgnored", { type, data, meta, verdict });
    call("onEvent", { type, data, meta });
    settleSnapshot();
  }

  function handleSnapshot(job) {
    if (state.ended || !job) return;
    state = takeSnapshot(state, job);
    call("onSnapshot", job);
    settleSnapshot();
  }

  // A terminal snapshot ends the watch once the events up to it are counted; if they do not
  // arrive (socket replay lost), ask the REST log once, then end with the snapshot.
  function settleSnapshot() {
    const settled = settle(state);
    state = settled.state;
    if (settled.outcome === "finish") finish(settled.terminal);
    else if (settled.outcome === "behind" && !catchUpTimer) {
      catchUpTimer = clock.setTimeout(async () => {
        try {
          await fetchEvents();
        } catch (error) {
          call("onError", error);
        }
        if (!state.ended) finish(settled.terminal);
      }, cfg.catchUpMs);
    }
  }

  async function subscribe() {
    if (state.ended) return;
    state = subscribeSent(state);
    const gen = state.subscribeGen;
    // Set at the ack itself: live events after it come after the catch-up.
    const onAnswer = (answer) => {
      state = subscribeAnswered(state, gen, answer);
    };
    let ack;
    try {
      ack = await link.request("subscribe", { job_id: jobId, after_seq: state.stream.lastSeq }, cfg.ackTimeoutMs, { onAnswer });
    } catch {
      if (gen === state.subscribeGen) armFallback("no_ack");
      return;
    } finally {
      state = subscribeSettled(state, gen);
    }
    if (state.ended || gen !== state.subscribeGen) return;
    if (!ack?.ok) {
      const error = new FerryError(ack?.error?.code ?? "subscribe_failed", ack?.error?.message ?? "subscribe refused");
      if (isFatal(error)) return fail(error);
      call("onError", error);
      armFallback("refused");
      return;
    }
    clearFallback();
    stopPolling();
    setMode("socket");
    handleSnapshot(ack.snapshot);
  }

  function armFallback(cause) {
    const delay = fallbackDelay(state, cause, cfg);
    if (delay === null || fallbackTimer) return;
    if (delay === 0) return startPolling();
    fallbackTimer = clock.setTimeout(() => {
      fallbackTimer = null;
      if (!state.ended && state.mode !== "socket") startPolling();
    }, delay);
  }

  function clearFallback() {
    if (fallbackTimer) clock.clearTimeout(fallbackTimer);
    fallbackTimer = null;
  }

  function startPolling() {
    if (state.ended || state.mode === "polling") return;
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
    let failed = false;
    try {
      if (first) {
        const job = await api.getImport(jobId);
        if (gen !== pollGen || state.ended) return;
        handleSnapshot(job);
      }
      if (state.ended || gen !== pollGen) return;
      await fetchEvents(gen);
    } catch (error) {
      if (state.ended || gen !== pollGen) return;
      if (isFatal(error)) return fail(error);
      call("onError", error);
      failed = true;
    }
    if (state.ended || gen !== pollGen) return;
    const next = nextPollDelay(interval, failed, cfg);
    // The socket may be back without a fresh "connect" (an ack that timed out): try it again.
    state = polled(state, next);
    if (shouldResubscribe(state, link.connected, cfg.resubscribeMs)) subscribe();
    pollTimer = clock.setTimeout(() => pollLoop(gen, false, next), next);
  }

  async function fetchEvents(gen = pollGen) {
    const events = await api.getEvents(jobId, state.stream.lastSeq);
    if (state.ended || gen !== pollGen || !Array.isArray(events)) return;
    for (const event of events) {
      // As on the socket, `timestamp` is when the backend received the event.
      handleEvent(event.type, event.data, { replay: false, catchup: false, via: "poll", timestamp: event.received_at }, event.timestamp);
      if (state.ended) return;
    }
  }

  function fail(error) {
    call("onError", error);
    cleanup();
    resolveDone(null);
  }

  function finish(terminal) {
    if (state.ended) return;
    cleanup();
    call("onDone", terminal);
    resolveDone(terminal);
  }

  function cleanup() {
    if (state.ended) return;
    state = { ...state, ended: true };
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
    if (state.ended) return;
    if (status === "connect") subscribe();
    else if (status === "disconnect") {
      const wasSocket = state.mode === "socket";
      state = disconnected(state);
      if (wasSocket) call("onTransport", state.mode);
      armFallback("drop");
    }
  });
  link.acquire();
  link.joinRoom(`job:${jobId}`);
  call("onTransport", state.mode);
  if (link.connected) subscribe();
  else armFallback(link.knownDown ? "down" : "connecting");

  return {
    stop() {
      if (state.ended) return;
      cleanup();
      resolveDone(null);
    },
    get mode() {
      return state.mode;
    },
    get lastSeq() {
      return state.stream.lastSeq;
    },
    get view() {
      return state.stream.view;
    },
    done,
  };
}
