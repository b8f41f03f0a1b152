// One Socket.IO connection shared by every watch of a client.
//
// The link owns the socket's life (opened on first use, closed when the last user leaves), routes
// the server's import.* events to listeners, turns acks into promises with a deadline, and brings
// the connection back after a server-side disconnect, which socket.io-client does not retry by
// itself (a backend shutting down cleanly sends one).
import { io } from "socket.io-client";

import { FerryError } from "./errors.js";
import { timersOr } from "./handlers.js";

/** The backend's own word on a job (a doubt while its host is silent, a presumed failure): a Job snapshot, never counted. */
export const NOTICE_EVENT = "job.snapshot";

export const IMPORT_EVENTS = [
  "import.queued",
  "import.progress",
  "import.completed",
  "import.failed",
  "import.canceled",
];

/**
 * The default socket: websocket transport only. Long-polling through a proxy that breaks
 * upgrades is exactly the failure ferry exists to survive; the watch falls back to the REST log
 * instead, which works through any proxy and needs no sticky sessions.
 */
export function defaultSocketFactory(url, options) {
  return io(url, { transports: ["websocket"], ...options });
}

export class SocketLink {
  /**
   * @param {{url?: string, path?: string, token: string | (() => string),
   *          socketFactory?: (url: string, options: object) => any,
   *          timers?: {setTimeout: Function, clearTimeout: Function},
   *          reconnectDelayMs?: number, handshakeTimeoutMs?: number}} options
   *   handshakeTimeoutMs: a connection attempt that gets no Socket.IO handshake this long is given
   *   up and retried (a proxy may accept the websocket upgrade and then pass nothing; the
   *   socket.io-client default would wait 20 s per attempt).
   */
  constructor({ url, path = "/socket.io", token, socketFactory = defaultSocketFactory, timers, reconnectDelayMs = 1000, handshakeTimeoutMs = 8000 }) {
    this.url = url;
    this.path = path;
    this.token = token;
    this.socketFactory = socketFactory;
    this.timers = timersOr(timers);
    this.reconnectDelayMs = reconnectDelayMs;
    this.handshakeTimeoutMs = handshakeTimeoutMs;
    this.socket = null;
    this.users = 0;
    this.eventListeners = new Set();
    this.noticeListeners = new Set();
    this.statusListeners = new Set();
    this.reconnectTimer = null;
    this.rooms = new Map();
    this.failing = false; // the last connection attempt failed and none has worked since
  }

  get connected() {
    return Boolean(this.socket?.connected);
  }

  /** True while the socket keeps failing to connect: new watches need not wait to find out. */
  get knownDown() {
    return Boolean(this.socket) && !this.socket.connected && this.failing;
  }

  /** Start using the link (opens the socket on first use). Pair with release(). */
  acquire() {
    this.users += 1;
    if (!this.socket) this.open();
  }

  release() {
    this.users = Math.max(0, this.users - 1);
    if (this.users === 0) this.close();
  }

  /** listener(type, data, meta) for every import.* event. Returns an unsubscribe function. */
  onEvent(listener) {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** listener(job, meta) for every `job.snapshot` notice. Returns an unsubscribe function. */
  onNotice(listener) {
    this.noticeListeners.add(listener);
    return () => this.noticeListeners.delete(listener);
  }

  /** listener(status, detail): status ∈ "connect", "disconnect", "error". Returns an unsubscribe function. */
  onStatus(listener) {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /**
   * Emit with an ack; rejects with FerryError("timeout"|"disconnected") when none comes in time.
   * `onAnswer(answer)` runs synchronously when a timely ack arrives, before any later packet is
   * dispatched: for state that must change exactly at the ack, not a promise tick after it.
   */
  request(event, payload, timeoutMs, { onAnswer } = {}) {
    const socket = this.socket;
    if (!socket?.connected) return Promise.reject(new FerryError("disconnected", `socket not connected for ${event}`));
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = this.timers.setTimeout(() => {
        settled = true;
        reject(new FerryError("timeout", `no answer to ${event} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.emit(event, payload, (answer) => {
        if (settled) return;
        settled = true;
        this.timers.clearTimeout(timer);
        onAnswer?.(answer);
        resolve(answer);
      });
    });
  }

  /**
   * Several watches may follow the same room (a job, or the jobs list) over this one socket:
   * count them, and leave the room on the server only when the last one is done.
   */
  joinRoom(key) {
    this.rooms.set(key, (this.rooms.get(key) ?? 0) + 1);
  }

  leaveRoom(key, event, payload) {
    const count = (this.rooms.get(key) ?? 0) - 1;
    if (count > 0) {
      this.rooms.set(key, count);
      return;
    }
    this.rooms.delete(key);
    this.send(event, payload);
  }

  /** Emit without waiting; dropped when disconnected (a resubscribe on connect replaces it). */
  send(event, payload) {
    if (this.socket?.connected) this.socket.emit(event, payload);
  }

  currentToken() {
    return typeof this.token === "function" ? this.token() : this.token;
  }

  open() {
    const socket = this.socketFactory(this.url, { path: this.path, auth: { token: this.currentToken() }, timeout: this.handshakeTimeoutMs });
    this.socket = socket;
    socket.on("connect", () => {
      this.failing = false;
      this.notify("connect");
    });
    socket.on("disconnect", (reason) => {
      this.notify("disconnect", reason);
      if (reason === "io server disconnect") this.scheduleReconnect(socket);
    });
    socket.on("connect_error", (error) => {
      // `active` false: the server refused us (bad token); the manager will not retry.
      const refused = socket.active === false;
      this.failing = true;
      const code = refused ? "unauthorized" : "connect_failed";
      this.notify("error", new FerryError(code, error?.message || "socket connection failed", { cause: error }));
      if (refused) this.scheduleReconnect(socket, this.reconnectDelayMs * 5);
    });
    socket.on(NOTICE_EVENT, (job, meta) => {
      if (!job || typeof job !== "object" || typeof job.id !== "string") return;
      for (const listener of [...this.noticeListeners]) listener(job, meta ?? {});
    });
    for (const type of IMPORT_EVENTS) {
      socket.on(type, (data, meta) => {
        for (const listener of [...this.eventListeners]) listener(type, data, meta ?? {});
      });
    }
  }

  close() {
    if (this.reconnectTimer) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const socket = this.socket;
    this.socket = null;
    this.failing = false;
    if (socket) {
      socket.removeAllListeners?.();
      socket.disconnect();
    }
  }

  scheduleReconnect(socket, delay = this.reconnectDelayMs) {
    if (this.reconnectTimer) return;
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = null;
      if (this.socket !== socket || socket.connected) return;
      socket.auth = { token: this.currentToken() };
      socket.connect();
    }, delay);
  }

  notify(status, detail) {
    for (const listener of [...this.statusListeners]) listener(status, detail);
  }
}
