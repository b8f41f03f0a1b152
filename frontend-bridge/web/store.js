// The page's memory of jobs: one view per job (newest seq wins, from whichever feed brought it)
// and, per job, the event timeline operators read. Renders are batched to one per frame.
import { newer, viewFromEvent, viewFromJob } from "../src/seq.js";

export class JobStore {
  constructor() {
    this.views = new Map();
    this.timelines = new Map(); // id → {entries: [], seen: Set of keys, invalid: []}
    this.listeners = new Set();
    this.dirty = new Set();
    this.frame = null;
  }

  get(id) {
    return this.views.get(id);
  }

  all() {
    return [...this.views.values()].sort((a, b) => String(b.created_at ?? "").localeCompare(String(a.created_at ?? "")));
  }

  /** Take a Job snapshot from the REST API or a subscribe ack. */
  putSnapshot(job) {
    this.merge(viewFromJob(job));
  }

  /** Take a view as watchJobs keeps them. */
  putView(view) {
    this.merge(view);
  }

  /** Take an event's data. */
  putEvent(data) {
    this.merge(viewFromEvent(data));
  }

  merge(candidate) {
    const current = this.views.get(candidate.id);
    const merged = newer(current, candidate);
    // Events carry no time of their own: remember when this page saw the job move.
    merged.seenAt = current && candidate.seq > current.seq ? Date.now() : current?.seenAt;
    // Remember when the backend said how long the host has been silent, so "no word for N s" keeps counting.
    merged.doubtAt = merged.doubt && merged.doubt !== current?.doubt ? Date.now() : current?.doubtAt;
    // Remember when the phase clock was last read, so "finalizing… N s" keeps counting.
    if (!current || merged.phase_elapsed_s !== current.phase_elapsed_s || merged.phase !== current.phase) {
      merged.elapsedAt = Date.now();
    } else {
      merged.elapsedAt = current.elapsedAt;
    }
    this.views.set(candidate.id, merged);
    this.touch(candidate.id);
  }

  /**
   * Record one event in a job's timeline. source ∈ "stored" | "live" | "polled" | "replayed".
   * Counted events appear once per seq; a replay's once per (replayId, seq), however many feeds
   * of the page brought it.
   */
  addTimeline(id, { seq, type, at, source, data, replayId }) {
    const timeline = this.timelineOf(id);
    const key = source === "replayed" ? `${replayId ?? ""}:${seq}` : seq;
    if (timeline.seen.has(key)) return;
    timeline.seen.add(key);
    timeline.entries.push({ seq, type, at: at instanceof Date ? at : new Date(at), source, data, replayId });
    this.touch(id);
  }

  /**
   * Record a payload that broke the callback contract: it was not counted, but the operator sees
   * it in the timeline (source "invalid", with the validator's `message`) and on the job's card.
   * The same payload from several feeds or polls is recorded once.
   */
  addInvalid(id, { type, data, at, message }) {
    const seq = Number.isFinite(data?.seq) ? data.seq : null;
    const timeline = this.timelineOf(id);
    const key = `invalid:${type}:${JSON.stringify(data)}`;
    if (timeline.seen.has(key)) return;
    timeline.seen.add(key);
    timeline.entries.push({ seq, type: String(type), at: at instanceof Date ? at : new Date(at ?? Date.now()), source: "invalid", data, message });
    timeline.invalid.push({ type, message, seq });
    this.touch(id);
  }

  /** The payloads of a job that broke the contract, in the order they came: [{type, message, seq}]. */
  invalid(id) {
    return this.timelines.get(id)?.invalid ?? [];
  }

  /**
   * Counted events in seq order (an invalid payload after the counted ones of its seq; one
   * without a usable seq at the end), then operator replays in the order they came.
   */
  timeline(id) {
    const entries = this.timelines.get(id)?.entries ?? [];
    const order = (e) => (e.seq === null || !Number.isFinite(e.seq) ? Infinity : e.seq);
    const counted = entries.filter((e) => e.source !== "replayed").sort((a, b) => order(a) - order(b) || (a.source === "invalid") - (b.source === "invalid"));
    return [...counted, ...entries.filter((e) => e.source === "replayed")];
  }

  timelineOf(id) {
    let timeline = this.timelines.get(id);
    if (!timeline) {
      timeline = { entries: [], seen: new Set(), invalid: [] };
      this.timelines.set(id, timeline);
    }
    return timeline;
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  touch(id) {
    this.dirty.add(id);
    if (this.frame !== null) return;
    const schedule = typeof requestAnimationFrame === "function" ? requestAnimationFrame : (fn) => setTimeout(fn, 16);
    this.frame = schedule(() => {
      this.frame = null;
      const ids = new Set(this.dirty);
      this.dirty.clear();
      for (const listener of [...this.listeners]) listener(ids);
    });
  }
}
