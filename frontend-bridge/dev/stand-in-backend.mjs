// A stand-in for ferry's backend, speaking the interface of backend/API.md (REST, Socket.IO
// subscribe with after_seq replay, tus uploads when a tus handler is given), with everything in
// memory. It exists to exercise the client and the page without Docker or lab hosts: the
// client's socket tests run against it, and `npm run preview` drives the page with it. The real
// backend lives in backend/ and is what the end-to-end tests use.
import { createReadStream, existsSync, statSync } from "node:fs";
import http from "node:http";
import { extname, join, normalize } from "node:path";

import { Server as IOServer } from "socket.io";

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".map": "application/json", ".svg": "image/svg+xml" };
const RANK = { viewer: 0, operator: 1, admin: 2 };
const TERMINAL = new Set(["succeeded", "failed", "canceled"]);

/**
 * @param {{port?: number, tokens?: Record<string, string>, staticDir?: string, tus?: {handle: Function},
 *          replay?: boolean, onStartImport?: Function, onCancel?: Function}} options
 *   tokens: token → role; onStartImport(backend, body, jobs) after POST /api/imports.
 */
export function createStandInBackend(options = {}) {
  const tokens = options.tokens ?? { "operator-token": "operator" };
  const jobs = new Map(); // id → {job, events}
  const backend = {
    jobs,
    hosts: [],
    images: [],
    blockWebsocket: false,
    // A proxy in front of a backend that is down: the page is still served, every API and
    // Socket.IO request gets 502 Bad Gateway.
    gatewayDown: false,
    port: options.port ?? 0,
    server: null,
    io: null,
    counter: 0,

    addJob(fields) {
      const now = new Date().toISOString();
      const job = {
        id: fields.id ?? `job-${++backend.counter}`,
        host: fields.host ?? "lab1",
        image: fields.image ?? "ceos:latest",
        // A job dispatched from an upload unless told otherwise; {upload_id: null} is one known only from callbacks.
        upload_id: "upload_id" in fields ? fields.upload_id : fields.source_url ? null : "stand-in-upload",
        source_url: fields.source_url ?? null,
        state: "queued",
        phase: "queued",
        seq: 0,
        percent: 0,
        bytes_done: 0,
        bytes_total: fields.bytes_total ?? null,
        rate_bps: null,
        eta_s: null,
        phase_elapsed_s: null,
        queue_position: null,
        result: null,
        error: null,
        created_at: fields.created_at ?? now,
        updated_at: now,
        finished_at: null,
      };
      jobs.set(job.id, { job, events: [] });
      return job;
    },

    /** Store one event, apply it to the snapshot if newer, broadcast it to the job and jobs rooms. */
    publish(jobId, type, data) {
      const entry = jobs.get(jobId);
      const now = new Date().toISOString();
      entry.events.push({ seq: data.seq, type, timestamp: now, data, webhook_id: `msg_${jobId}_${data.seq}`, received_at: now });
      const job = entry.job;
      if (data.seq > job.seq && !TERMINAL.has(job.state)) {
        Object.assign(job, {
          seq: data.seq, state: data.state, phase: data.phase, percent: data.percent, bytes_done: data.bytes_done,
          bytes_total: data.bytes_total ?? null, rate_bps: data.rate_bps ?? null, eta_s: data.eta_s ?? null,
          phase_elapsed_s: data.phase_elapsed_s ?? null, queue_position: data.queue_position ?? null,
          result: data.image ?? null, error: data.error ?? null, updated_at: now,
          finished_at: TERMINAL.has(data.state) ? now : null,
        });
      }
      backend.io?.to(`job:${jobId}`).to("jobs").emit(type, data, { replay: false, catchup: false, timestamp: now });
    },

    async listen() {
      backend.server = http.createServer((req, res) => handle(req, res).catch((error) => {
        if (!res.headersSent) send(res, 500, { error: { code: "internal_error", message: String(error?.message ?? error) } });
      }));
      backend.io = new IOServer(backend.server, {
        path: "/socket.io",
        allowRequest: (req, callback) => callback(null, !backend.blockWebsocket && !backend.gatewayDown),
      });
      backend.io.use((socket, next) => {
        const role = tokens[socket.handshake.auth?.token];
        if (!role) return next(new Error("unauthorized"));
        socket.data.role = role;
        next();
      });
      backend.io.on("connection", onConnection);
      await new Promise((resolve) => backend.server.listen(backend.port, "127.0.0.1", resolve));
      backend.port = backend.server.address().port;
      return `http://127.0.0.1:${backend.port}`;
    },

    /** Stop serving (as a crash or restart would); the state stays for the next listen(). */
    async close() {
      const { io, server } = backend;
      backend.io = null;
      backend.server = null;
      io?.close();
      server?.closeAllConnections();
      await new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
    },
  };

  function onConnection(socket) {
    socket.on("subscribe", (payload, ack) => {
      const entry = jobs.get(payload?.job_id);
      if (!entry) return ack?.({ ok: false, error: { code: "not_found", message: "no such import" } });
      socket.join(`job:${entry.job.id}`);
      ack?.({ ok: true, snapshot: entry.job });
      const after = Number(payload.after_seq ?? 0);
      for (const event of entry.events) {
        if (event.seq > after) socket.emit(event.type, event.data, { replay: false, catchup: true, timestamp: event.received_at });
      }
    });
    socket.on("unsubscribe", (payload, ack) => {
      socket.leave(`job:${payload?.job_id}`);
      ack?.({ ok: true });
    });
    socket.on("subscribe_all", (payload, ack) => {
      socket.join("jobs");
      ack?.({ ok: true, jobs: listJobs() });
    });
    socket.on("unsubscribe_all", (payload, ack) => {
      socket.leave("jobs");
      ack?.({ ok: true });
    });
  }

  function listJobs() {
    return [...jobs.values()].map((e) => e.job).sort((a, b) => b.created_at.localeCompare(a.created_at));
  }

  async function handle(req, res) {
    const url = new URL(req.url, "http://stand-in");
    const path = url.pathname;
    if (path === "/healthz") return send(res, 200, { ok: true });
    if (path.startsWith("/api/") || path === "/openapi.json") {
      if (backend.gatewayDown) {
        res.writeHead(502, { "Content-Type": "text/html" });
        return res.end("<html><body><h1>502 Bad Gateway</h1></body></html>");
      }
      const role = tokens[(req.headers.authorization ?? "").replace(/^Bearer /, "")];
      if (!role) return send(res, 401, { error: { code: "unauthorized", message: "missing or unknown token" } });
      const need = (wanted) => RANK[role] >= RANK[wanted] || (send(res, 403, { error: { code: "forbidden", message: `needs the ${wanted} role` } }), false);
      if (path.startsWith("/api/uploads/") && options.tus) {
        if (!need("operator")) return;
        return options.tus.handle(req, res);
      }
      return route(req, res, url, role, need);
    }
    return serveStatic(req, res, path);
  }

  async function route(req, res, url, role, need) {
    const path = url.pathname;
    const method = req.method;
    if (path === "/openapi.json") {
      const paths = { "/api/imports": {}, "/api/imports/{job_id}": {}, "/api/imports/{job_id}/events": {} };
      if (options.replay) Object.assign(paths, { "/api/imports/{job_id}/replay": {}, "/api/imports/{job_id}/deliveries": {} });
      return send(res, 200, { openapi: "3.1.0", paths });
    }
    if (path === "/api/me") return send(res, 200, { role, token_id: "stand-in" });
    if (path === "/api/hosts") return send(res, 200, backend.hosts);
    if (path === "/api/images") return send(res, 200, backend.images);
    if (path === "/api/imports" && method === "GET") {
      const state = url.searchParams.get("state");
      const host = url.searchParams.get("host");
      return send(res, 200, { jobs: listJobs().filter((j) => (!state || j.state === state) && (!host || j.host === host)) });
    }
    if (path === "/api/imports" && method === "POST") {
      if (!need("operator")) return;
      const body = JSON.parse((await readBody(req)) || "{}");
      const created = (body.hosts ?? []).map((host) => backend.addJob({ host, image: body.image, upload_id: body.upload_id }));
      send(res, 202, { jobs: created });
      options.onStartImport?.(backend, body, created);
      return;
    }
    const match = /^\/api\/imports\/([^/]+)(\/events|\/replay|\/deliveries)?$/.exec(path);
    const entry = match && jobs.get(decodeURIComponent(match[1]));
    if (match && !entry) return send(res, 404, { error: { code: "not_found", message: "no such import" } });
    if (match && match[2] === "/events") {
      const after = Number(url.searchParams.get("after_seq") ?? 0);
      return send(res, 200, entry.events.filter((e) => e.seq > after));
    }
    if (match && match[2] === "/deliveries" && options.replay) {
      if (!need("operator")) return;
      return send(res, 200, entry.events.map((e) => ({
        webhook_id: e.webhook_id, host: entry.job.host, job_id: entry.job.id, seq: e.seq, type: e.type, received_at: e.received_at,
        verdict: "applied", duplicates: 0, headers: {}, body: JSON.stringify({ type: e.type, timestamp: e.timestamp, data: e.data }),
      })));
    }
    if (match && match[2] === "/replay" && options.replay && method === "POST") {
      if (!need("operator")) return;
      const replayId = `rpl_${++backend.counter}`;
      const gapMs = 150;
      send(res, 202, { replay_id: replayId, job_id: entry.job.id, events: entry.events.length, speed: 1, duration_s: (Math.max(0, entry.events.length - 1) * gapMs) / 1000 });
      entry.events.forEach((event, index) => {
        const meta = { replay: true, catchup: false, timestamp: event.received_at, replay_id: replayId };
        setTimeout(() => backend.io?.to(`job:${entry.job.id}`).to("jobs").emit(event.type, event.data, meta), index * gapMs);
      });
      return;
    }
    if (match && method === "DELETE") {
      if (!need("operator")) return;
      send(res, 202, entry.job);
      options.onCancel?.(backend, entry.job);
      return;
    }
    if (match && method === "GET") return send(res, 200, entry.job);
    return send(res, 404, { error: { code: "not_found", message: `no route ${method} ${path}` } });
  }

  function serveStatic(req, res, path) {
    if (!options.staticDir) return send(res, 404, { error: { code: "not_found", message: "no page here" } });
    const relative = normalize(decodeURIComponent(path)).replace(/^(\.\.[/\\])+/, "").replace(/^[/\\]+/, "");
    let file = join(options.staticDir, relative || "index.html");
    if (!file.startsWith(options.staticDir) || !existsSync(file) || statSync(file).isDirectory()) file = join(options.staticDir, "index.html");
    res.writeHead(200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream", "Cache-Control": "no-store" });
    createReadStream(file).pipe(res);
  }

  return backend;
}

function send(res, status, body) {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > 1_000_000) reject(new Error("body too large"));
      else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
