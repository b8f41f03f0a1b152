// Test doubles for the client's two transports: a socket the test plays the server side of, a
// fetch answering from an in-memory job log, and a clock the test advances by hand.

/** Timers that run only when the test advances time; microtasks are flushed between timers. */
export class FakeClock {
  constructor() {
    this.now = 0;
    this.timers = new Map();
    this.nextId = 1;
    this.setTimeout = (fn, ms = 0) => {
      const id = this.nextId++;
      this.timers.set(id, { at: this.now + Math.max(0, ms), fn });
      return id;
    };
    this.clearTimeout = (id) => {
      this.timers.delete(id);
    };
  }

  /** Advance by `ms`, running every timer that falls due, in order. */
  async advance(ms) {
    const end = this.now + ms;
    await flush();
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at || a[0] - b[0]);
      if (due.length === 0) break;
      const [id, timer] = due[0];
      this.timers.delete(id);
      this.now = timer.at;
      timer.fn();
      await flush();
    }
    this.now = end;
    await flush();
  }

  get pending() {
    return this.timers.size;
  }
}

/** Let every pending promise callback run. */
export async function flush() {
  for (let i = 0; i < 20; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * A stand-in for socket.io-client's Socket. `emit` is what the client sends (recorded, and
 * answered by `onEmit` when the test sets it); `serverSend`, `serverConnect`, `serverDrop` play
 * the server.
 */
export class FakeSocket {
  constructor(url, options) {
    this.url = url;
    this.options = options;
    this.auth = options?.auth;
    this.connected = false;
    this.active = true;
    this.handlers = new Map();
    this.sent = [];
    this.onEmit = null; // (event, payload, ack) => answer | undefined (no ack now; the test may call `ack` later)
    this.connectCalls = 0;
    this.disconnected = false;
  }

  on(event, handler) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(handler);
    return this;
  }

  removeAllListeners() {
    this.handlers.clear();
  }

  emit(event, payload, ack) {
    this.sent.push({ event, payload });
    const answer = this.onEmit?.(event, payload, ack);
    if (ack && answer !== undefined) queueMicrotask(() => ack(answer));
  }

  connect() {
    this.connectCalls += 1;
  }

  disconnect() {
    this.disconnected = true;
    this.connected = false;
  }

  fire(event, ...args) {
    for (const handler of this.handlers.get(event) ?? []) handler(...args);
  }

  serverConnect() {
    this.connected = true;
    this.active = true;
    this.fire("connect");
  }

  serverDrop(reason = "transport close") {
    this.connected = false;
    this.fire("disconnect", reason);
  }

  serverRefuse(message = "unauthorized") {
    this.connected = false;
    this.active = false;
    this.fire("connect_error", new Error(message));
  }

  serverSend(type, data, meta = { replay: false }) {
    this.fire(type, data, meta);
  }

  subscribes(event = "subscribe") {
    return this.sent.filter((s) => s.event === event).map((s) => s.payload);
  }
}

export function socketFactoryFor(sockets) {
  return (url, options) => {
    const socket = new FakeSocket(url, options);
    sockets.push(socket);
    return socket;
  };
}

/** The `data` of one import event. */
export function eventData(seq, overrides = {}) {
  const total = 1000;
  const done = Math.min(total, seq * 100);
  return {
    job_id: "job-1",
    host: "lab1",
    seq,
    state: "running",
    phase: "importing",
    percent: (done / total) * 100,
    bytes_done: done,
    bytes_total: total,
    rate_bps: 100.0,
    eta_s: (total - done) / 100,
    ...overrides,
  };
}

export function completedData(seq, overrides = {}) {
  return eventData(seq, {
    state: "succeeded",
    phase: "done",
    percent: 100,
    bytes_done: 1000,
    eta_s: 0,
    image: { ref: "ceos:4.35.1F", id: "sha256:" + "a".repeat(64), size: 2600, tags: ["ceos:4.35.1F"] },
    ...overrides,
  });
}

export function failedData(seq, overrides = {}) {
  return eventData(seq, {
    state: "failed",
    error: { code: "corrupt_compression", message: "the xz stream is corrupt at byte 4096", detail: null },
    ...overrides,
  });
}

/** A job snapshot (`Job` of the REST API) as of `seq`. */
export function jobSnapshot(seq, overrides = {}) {
  const data = seq === 0 ? eventData(1, { state: "queued", phase: "queued", percent: 0, bytes_done: 0 }) : eventData(seq);
  return {
    id: data.job_id,
    host: data.host,
    image: "ceos:4.35.1F",
    upload_id: "up-1",
    source_url: null,
    state: data.state,
    phase: data.phase,
    seq,
    percent: seq === 0 ? 0 : data.percent,
    bytes_done: seq === 0 ? 0 : data.bytes_done,
    bytes_total: data.bytes_total,
    rate_bps: data.rate_bps,
    eta_s: data.eta_s,
    phase_elapsed_s: null,
    queue_position: null,
    result: null,
    error: null,
    created_at: "2026-11-29T10:00:00Z",
    updated_at: "2026-11-29T10:00:05Z",
    finished_at: null,
    ...overrides,
  };
}

/**
 * A fetch that answers the REST endpoints of one backend from an in-memory log: `log` holds
 * stored events ({type, data}); `snapshot()` derives the Job. `calls` records every URL.
 */
export function fakeBackend({ jobs = {} } = {}) {
  const backend = {
    jobs, // id → {events: [{type, data}], image}
    calls: [],
    failNext: 0, // answer this many requests with a network error
    status: null, // force this HTTP status on every request
    fetch: async (url, init = {}) => {
      const u = new URL(url, "http://backend.test");
      backend.calls.push({ method: init.method ?? "GET", path: u.pathname, query: u.search, headers: init.headers, body: init.body });
      if (backend.failNext > 0) {
        backend.failNext -= 1;
        throw new TypeError("fetch failed");
      }
      if (backend.status) return json(backend.status, { error: { code: "forced", message: "forced status" } });
      const m = /^\/api\/imports\/([^/]+)(\/events)?$/.exec(u.pathname);
      if (m) {
        const job = backend.jobs[decodeURIComponent(m[1])];
        if (!job) return json(404, { error: { code: "not_found", message: "no such import" } });
        if (m[2]) {
          const after = Number(u.searchParams.get("after_seq") ?? 0);
          return json(
            200,
            job.events
              .filter((e) => e.data.seq > after)
              .map((e) => ({ ...e, timestamp: "2026-11-29T10:00:0" + (e.data.seq % 10) + "Z", webhook_id: `msg_${e.data.seq}`, received_at: "2026-11-29T10:00:09Z" })),
          );
        }
        return json(200, snapshotOf(decodeURIComponent(m[1]), job));
      }
      if (u.pathname === "/api/imports") {
        return json(200, { jobs: Object.entries(backend.jobs).map(([id, job]) => snapshotOf(id, job)) });
      }
      return json(404, { detail: "Not Found" });
    },
    pathsCalled(path) {
      return backend.calls.filter((c) => c.path === path);
    },
  };
  return backend;
}

function snapshotOf(id, job) {
  const last = job.events.at(-1);
  if (!last) return jobSnapshot(0, { id });
  return jobSnapshot(last.data.seq, {
    id,
    state: last.data.state,
    phase: last.data.phase,
    percent: last.data.percent,
    bytes_done: last.data.bytes_done,
    result: last.data.image ?? null,
    error: last.data.error ?? null,
    ...(job.snapshot ?? {}),
  });
}

export function json(status, body) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}
