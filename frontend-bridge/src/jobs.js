// watchJobs: the live list of every job the token may see, for list views.
//
// Over the socket: `subscribe_all` (the ack carries the list), then every job's events. Without a
// socket: the list is polled over REST. Per job, seq decides which update is newer, exactly as
// in watchImport, so overlapping deliveries never move a row back.
import { FerryError, isFatal } from "./errors.js";
import { callerFor, timersOr } from "./handlers.js";
import { isFinal, newer, viewFromEvent, viewFromJob } from "./seq.js";
import { checkImportEvent } from "./validate.js";

export const JOBS_DEFAULTS = {
  connectTimeoutMs: 4000,
  ackTimeoutMs: 4000,
  pollIntervalMs: 3000,
  maxPollIntervalMs: 15000,
  resubscribeMs: 6000,
};

/**
 * @param {{onJobs?, onJob?, onEvent?, onReplay?, onInvalid?, onTransport?, onError?}} handlers
 *   onJobs(views) with the whole list (newest first) after each load; onJob(view) when one row
 *   changes; onEvent({type, data, meta}) for each new event of any job; onReplay for an operator
 *   replay (meta.replay), which never changes a row.
 * @param {{api, link, timers?, filter?: {state?, host?}} & Partial<typeof JOBS_DEFAULTS>} deps
 */
export function watchJobs(handlers, { api, link, timers, filter, ...options }) {
  const cfg = { ...JOBS_DEFAULTS, ...options };
  const clock = timersOr(timers);
  const call = callerFor(handlers);
  /** @type {Map<string, object>} job id → view */
  const jobs = new Map();
  let mode = "connecting";
  let stopped = false;
  let fallbackTimer = null;
  let pollTimer = null;
  let subscribeGen = 0;
  let pollGen = 0;
  let sincePollSubscribe = 0;

  const setMode = (next) => {
    if (mode !== next) {
      mode = next;
      call("onTransport", next);
    }
  };

  function list() {
    return [...jobs.values()].sort((a, b) => String(b.created_at ?? "").localeCompare(String(a.created_at ?? "")));
  }

  function load(snapshots) {
    for (const job of snapshots ?? []) {
      const view = viewFromJob(job);
      jobs.set(view.id, newer(jobs.get(view.id), view));
    }
    call("onJobs", list());
  }

  function handleEvent(type, data, meta) {
    if (stopped) return;
    const check = checkImportEvent(type, data);
    if (!check.ok) {
      call("onInvalid", new FerryError("invalid_payload", `${type}: ${check.message}`), { type, data, meta });
      return;
    }
    if (filter?.host && data.host !== filter.host) return;
    if (meta.replay) return call("onReplay", { type, data, meta }); // shown, never counted
    const current = jobs.get(data.job_id);
    if (current && (data.seq <= current.seq || isFinal(current))) return;
    const view = newer(current, viewFromEvent(data));
    jobs.set(view.id, view);
    call("onEvent", { type, data, meta });
    call("onJob", view);
    if (!current) fillIn(view.id);
  }

  // An event for a job the list has not seen yet lacks the image name and times: fetch them once.
  async function fillIn(id) {
    try {
      const job = await api.getImport(id);
      if (stopped || !job) return;
      const view = newer(jobs.get(id), viewFromJob(job));
      jobs.set(id, view);
      call("onJob", view);
    } catch (error) {
      if (!isFatal(error)) call("onError", error);
    }
  }

  async function subscribe() {
    if (stopped) return;
    const gen = ++subscribeGen;
    let ack;
    try {
      ack = await link.request("subscribe_all", filter ? { ...filter } : {}, cfg.ackTimeoutMs);
    } catch {
      if (gen === subscribeGen) startPolling();
      return;
    }
    if (stopped || gen !== subscribeGen) return;
    if (!ack?.ok) {
      const error = new FerryError(ack?.error?.code ?? "subscribe_failed", ack?.error?.message ?? "subscribe_all refused");
      call("onError", error);
      if (isFatal(error)) return stop();
      return startPolling();
    }
    if (fallbackTimer) clock.clearTimeout(fallbackTimer);
    fallbackTimer = null;
    stopPolling();
    setMode("socket");
    load(ack.jobs);
  }

  function armFallback() {
    if (stopped || mode === "polling" || fallbackTimer) return;
    fallbackTimer = clock.setTimeout(() => {
      fallbackTimer = null;
      if (!stopped && mode !== "socket") startPolling();
    }, cfg.connectTimeoutMs);
  }

  function startPolling() {
    if (stopped || mode === "polling") return;
    setMode("polling");
    sincePollSubscribe = 0;
    poll(++pollGen, cfg.pollIntervalMs);
  }

  function stopPolling() {
    pollGen += 1;
    if (pollTimer) clock.clearTimeout(pollTimer);
    pollTimer = null;
  }

  async function poll(gen, interval) {
    let next = cfg.pollIntervalMs;
    try {
      const snapshots = await api.listImports(filter ?? {});
      if (stopped || gen !== pollGen) return;
      load(snapshots);
    } catch (error) {
      if (stopped || gen !== pollGen) return;
      call("onError", error);
      if (isFatal(error)) return stop();
      next = Math.min(interval * 2, cfg.maxPollIntervalMs);
    }
    sincePollSubscribe += next;
    if (link.connected && sincePollSubscribe >= cfg.resubscribeMs) {
      sincePollSubscribe = 0;
      subscribe();
    }
    pollTimer = clock.setTimeout(() => poll(gen, next), next);
  }

  function stop() {
    if (stopped) return;
    stopped = true;
    if (fallbackTimer) clock.clearTimeout(fallbackTimer);
    stopPolling();
    offEvent();
    offNotice();
    offStatus();
    link.leaveRoom("jobs", "unsubscribe_all", {});
    link.release();
  }

  // The backend's own word on a job (its host silent, a presumed failure): a snapshot, never an event.
  function handleNotice(job) {
    if (stopped || (filter?.host && job.host !== filter.host)) return;
    const current = jobs.get(job.id);
    if (!current || isFinal(current)) return;
    const view = newer(current, viewFromJob(job));
    jobs.set(view.id, view);
    call("onJob", view);
  }

  const offEvent = link.onEvent((type, data, meta) => handleEvent(type, data, { ...meta, via: "socket" }));
  const offNotice = link.onNotice((job) => handleNotice(job));
  const offStatus = link.onStatus((status) => {
    if (stopped) return;
    if (status === "connect") subscribe();
    else if (status === "disconnect") {
      subscribeGen += 1;
      if (mode === "socket") setMode("connecting");
      armFallback();
    }
  });
  link.acquire();
  link.joinRoom("jobs");
  call("onTransport", mode);
  if (link.connected) subscribe();
  else if (link.knownDown) startPolling();
  else armFallback();

  return {
    stop,
    get mode() {
      return mode;
    },
    get jobs() {
      return list();
    },
  };
}
