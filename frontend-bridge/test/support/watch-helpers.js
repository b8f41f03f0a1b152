// Shared by the watchImport suites: a recorder of every handler call, and a fake server answer to
// subscribe (the snapshot, then the stored events after after_seq).
import { jobSnapshot } from "./fakes.js";

export function recorder() {
  const seen = { events: [], snapshots: [], transports: [], ignored: [], invalid: [], errors: [], replays: [], done: [] };
  const handlers = {
    onEvent: (e) => seen.events.push(e),
    onSnapshot: (j) => seen.snapshots.push(j),
    onTransport: (m) => seen.transports.push(m),
    onIgnored: (e) => seen.ignored.push(e),
    onInvalid: (err, e) => seen.invalid.push({ err, e }),
    onError: (err) => seen.errors.push(err),
    onReplay: (e) => seen.replays.push(e),
    onDone: (e) => seen.done.push(e),
  };
  return { seen, handlers, seqs: () => seen.events.map((e) => e.data.seq) };
}

/** The fake server answers subscribe with the snapshot and sends the stored events after after_seq as catch-up. */
export function serveSubscribe(socket, { stored = [], snapshot = jobSnapshot(stored.at(-1)?.data.seq ?? 0) } = {}) {
  socket.onEmit = (event, payload) => {
    if (event !== "subscribe") return event.startsWith("un") ? { ok: true } : undefined;
    queueMicrotask(() => queueMicrotask(() => {
      for (const e of stored) if (e.data.seq > payload.after_seq) socket.serverSend(e.type, e.data, { replay: false, catchup: true });
    }));
    return { ok: true, snapshot };
  };
}
