// The operator page: sign in with a token, upload and import, and watch every job live.
import { checkImportEvent, createApi, createClient } from "../src/index.js";
import { isTerminalState } from "../src/seq.js";
import { announce } from "./dom.js";
import { ALREADY_PRESENT, isAlreadyPresent, jobName } from "./format.js";
import { mountCatalog } from "./panels/catalog.js";
import { mountDetails } from "./panels/details.js";
import { mountHosts } from "./panels/hosts.js";
import { mountJobs } from "./panels/jobs.js";
import { mountNewImport } from "./panels/new-import.js";
import { mountProgress } from "./panels/progress.js";
import { forgetToken, isKept, keepToken, savedToken } from "./session.js";
import { JobStore } from "./store.js";

const STORES = { local: localStorage, session: sessionStorage };
const TRACKED_KEY = "ferry.tracked";
const $ = (id) => document.getElementById(id);

// While the backend cannot say whether a saved token is good (down, restarting, a proxy's 502),
// the token is kept and sign-in is tried again at these intervals; only a 401 signs out.
const SIGN_IN_RETRY_MS = [1000, 2000, 4000, 8000, 10000];
let signInTimer = null;
let activeClient = null; // for Sign out, which works while signing in too

function showSignIn(message = "") {
  clearTimeout(signInTimer);
  $("signin").hidden = false;
  $("app").hidden = true;
  $("session").hidden = true;
  notify("");
  $("signin-error").textContent = message;
  $("token").setAttribute("aria-invalid", String(Boolean(message)));
  $("token").focus();
}

/** The token is kept; the backend did not answer whether it is good. Say so and try again. */
function showWaiting(token, error, attempt) {
  const delay = SIGN_IN_RETRY_MS[Math.min(attempt, SIGN_IN_RETRY_MS.length - 1)];
  $("signin").hidden = true;
  $("app").hidden = true;
  $("session").hidden = false;
  const pill = $("transport");
  pill.textContent = "Backend unreachable · retrying";
  pill.dataset.state = "offline";
  $("role").textContent = "Signing in…";
  notify(`The backend did not answer: ${error.message} (${error.code}). Your token is kept; signing in again as soon as it does.`);
  signInTimer = setTimeout(() => signIn(token, attempt + 1, isKept(STORES, token)), delay);
}

async function signIn(token, attempt = 0, keep = false) {
  clearTimeout(signInTimer);
  if (!token) return showSignIn("Paste a token first.");
  let me;
  try {
    me = await createApi({ token }).me();
  } catch (error) {
    if (error.code === "unauthorized") {
      forgetToken(STORES);
      return showSignIn("That token was not accepted.");
    }
    // Not a verdict on the token: keep it (a reload keeps trying too) and ask again.
    keepToken(STORES, token, keep);
    return showWaiting(token, error, attempt);
  }
  keepToken(STORES, token, keep);
  notify("");
  start(token, me);
}

function notify(message) {
  const notice = $("notice");
  if (notice.textContent !== message) notice.textContent = message; // an alert: say it once
  notice.hidden = !message;
}

function start(token, me) {
  $("signin").hidden = true;
  $("app").hidden = false;
  $("session").hidden = false;
  $("role").replaceChildren(Object.assign(document.createElement("span"), { className: "role-prefix", textContent: "Signed in · " }), me.role);
  $("main").focus({ preventScroll: true });
  const canOperate = me.role === "operator" || me.role === "admin";

  const client = createClient({ token });
  activeClient = client;
  const store = new JobStore();
  const tracked = new Set(JSON.parse(sessionStorage.getItem(TRACKED_KEY) || "[]"));
  const watches = new Map(); // job id → watchImport handle
  const modes = new Map(); // feed → transport mode
  const persist = () => sessionStorage.setItem(TRACKED_KEY, JSON.stringify([...tracked]));

  function setMode(feed, mode) {
    if (mode === null) modes.delete(feed);
    else modes.set(feed, mode);
    renderPill();
  }

  // How the page is connected, in one word or three: the truth about whether what it shows is current.
  function renderPill() {
    const pill = $("transport");
    const [text, state] = !client.api.reachable && !client.link.connected
      ? ["Backend unreachable · retrying", "offline"]
      : [...modes.values()].includes("polling")
        ? ["Polling · websocket unavailable", "polling"]
        : modes.get("jobs") === "socket"
          ? ["Live", "live"]
          : ["Connecting…", "connecting"];
    if (pill.textContent !== text) pill.textContent = text;
    pill.dataset.state = state;
  }
  client.api.onReachability(renderPill);

  function onError(error) {
    if (error.code === "unauthorized") notify("Your token is no longer accepted. Sign out and sign in again.");
  }

  // How an event reached the page: live, caught up from the backend's log after a (re)subscribe
  // ("stored"), polled over REST, or an operator's replay. Its time is always the backend's receipt.
  const source = (meta) => (meta.via === "poll" ? "polled" : meta.catchup ? "stored" : "live");
  const timelineEntry = ({ type, data, meta }, forced) => ({
    seq: data.seq,
    type,
    data,
    at: meta.timestamp ? new Date(meta.timestamp) : new Date(),
    source: forced ?? source(meta),
    replayId: meta.replay_id,
  });
  const recordReplay = (event) => store.addTimeline(event.data.job_id, timelineEntry(event, "replayed"));
  // A payload that breaks the callback contract is never counted, but it must not vanish either:
  // it goes into its job's timeline, and the job's card says so.
  const recordInvalid = (error, { type, data, meta }) => {
    const id = typeof data?.job_id === "string" && data.job_id ? data.job_id : null;
    if (!id) return notify(`An update that names no job was not counted: ${error.message} (${error.code})`);
    store.addInvalid(id, { type, data, message: error.message, at: meta?.timestamp ? new Date(meta.timestamp) : new Date() });
  };

  let catalogTimer = null;
  function refreshCatalogSoon() {
    clearTimeout(catalogTimer);
    catalogTimer = setTimeout(() => catalog.load(), 500);
  }

  function follow(id, afterSeq = 0) {
    if (watches.has(id)) return;
    const watch = client.watchImport(
      id,
      {
        onSnapshot: (job) => store.putSnapshot(job),
        onEvent: (event) => {
          store.putEvent(event.data);
          store.addTimeline(id, timelineEntry(event));
        },
        onReplay: recordReplay,
        onInvalid: recordInvalid,
        onTransport: (mode) => setMode(id, mode),
        onError,
        onDone: (event) => {
          const view = store.get(id);
          const what = `${jobName(view ?? { id })} on ${event.data.host}`;
          announce(event.type === "import.completed" ? `${what} ${isAlreadyPresent(view) ? ALREADY_PRESENT : "finished"}` : event.type === "import.failed" ? `${what} failed: ${event.data.error?.message}` : `${what} canceled`);
          refreshCatalogSoon();
        },
      },
      { afterSeq },
    );
    watches.set(id, watch);
    watch.done.then(() => {
      watches.delete(id);
      setMode(id, null);
    });
  }

  // A card shows every job started here and every running one; once shown it stays, with its
  // outcome, until dismissed (a job someone else started must not vanish the moment it ends).
  const isShown = (id) => tracked.has(id) || progress.has(id) || (store.get(id) && !isTerminalState(store.get(id).state));

  const newImport = mountNewImport($("new-import"), {
    client,
    canOperate,
    onStarted(jobs) {
      for (const job of jobs) {
        store.putSnapshot(job);
        tracked.add(job.id);
        follow(job.id);
      }
      persist();
    },
  });
  const hosts = mountHosts($("hosts"), { api: client.api, store, onHosts: (list) => newImport.setHosts(list) });
  const catalog = mountCatalog($("catalog"), { api: client.api, store, onDetails: (id) => openDetails(id) });
  const details = mountDetails($("details"), {
    store,
    onClose: () => details.hide(),
    onReplay: (id, speed) => client.api.replayImport(id, { speed }),
    onDeliveries: (id) => client.api.getDeliveries(id),
  });
  const progress = mountProgress($("progress"), {
    store,
    isShown,
    canOperate,
    onDetails: (id) => openDetails(id),
    onCancel: async (id) => {
      try {
        await client.api.cancelImport(id);
        announce("Cancel requested");
      } catch (error) {
        notify(`Cancel failed: ${error.message} (${error.code})`);
      }
    },
    onDismiss: (id) => {
      tracked.delete(id);
      persist();
      progress.remove(id);
      progress.render(new Set());
    },
  });
  const jobs = mountJobs($("jobs"), { store, onDetails: (id) => openDetails(id) });

  const madeShown = new Set(); // succeeded jobs the catalog's "Made by" already knows of

  async function openDetails(id) {
    details.show(id);
    try {
      const events = await client.api.getEvents(id, 0);
      let lastSeq = 0;
      for (const event of events) {
        const at = new Date(event.received_at ?? event.timestamp);
        const check = checkImportEvent(event.type, event.data, event.timestamp);
        if (!check.ok) store.addInvalid(id, { type: event.type, data: event.data, message: `${event.type}: ${check.message}`, at });
        else {
          lastSeq = Math.max(lastSeq, event.data.seq);
          store.addTimeline(id, { seq: event.data.seq, type: event.type, data: event.data, at, source: "stored" });
        }
      }
      const view = store.get(id);
      if (view && !isTerminalState(view.state)) follow(id, lastSeq);
    } catch (error) {
      onError(error);
    }
  }

  store.subscribe((ids) => {
    // Every running job on screen gets its own watch: 1 s REST polling when the socket is down.
    for (const id of ids) {
      const view = store.get(id);
      if (view && !isTerminalState(view.state) && !watches.has(id)) follow(id, view.seq);
    }
    progress.render(ids);
    jobs.render();
    // A job that made an image shows in the catalog's "Made by" once it is known to have succeeded.
    if ([...ids].some((id) => store.get(id)?.state === "succeeded" && !madeShown.has(id))) {
      for (const id of ids) if (store.get(id)?.state === "succeeded") madeShown.add(id);
      catalog.render();
    }
    details.render(ids);
    hosts.renderCounts();
  });

  client.watchJobs({
    onJobs: (list) => list.forEach((view) => store.putView(view)),
    onJob: (view) => store.putView(view),
    onEvent: (event) => {
      store.addTimeline(event.data.job_id, timelineEntry(event));
      if (isTerminalState(event.data.state)) refreshCatalogSoon();
    },
    onReplay: recordReplay,
    onInvalid: recordInvalid,
    onTransport: (mode) => setMode("jobs", mode),
    onError,
  });
  for (const id of tracked) follow(id);

  hosts.load();
  setInterval(() => hosts.load(), 10000);
  setInterval(() => jobs.render(), 5000); // "updated N s ago"
  catalog.load();
  client.api.capabilities().then((caps) => {
    details.setTools({ replay: caps.replay && canOperate, deliveries: caps.deliveries && canOperate });
    catalog.setRemovable(caps.removeImage && canOperate);
  });
}

$("sign-out").addEventListener("click", () => {
  clearTimeout(signInTimer);
  forgetToken(STORES);
  sessionStorage.removeItem(TRACKED_KEY);
  activeClient?.close();
  location.reload();
});

$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("token").value.trim(), 0, $("keep-signed-in").checked);
});

const saved = savedToken(STORES);
if (saved) signIn(saved, 0, isKept(STORES, saved));
else showSignIn();
