// One job for operators: its snapshot and the event timeline (seq, type, time, delay since the
// previous event, how it arrived), with Play back and the raw deliveries when the backend offers them.
import { isTerminalState } from "../../src/seq.js";
import { fill, h, setText } from "../dom.js";
import { formatBytes, formatClock, formatDelay, formatDuration, formatPercent, formatStamp, jobDuration, jobName, jobStatusLine, phaseLabel, shortId, stateLabel } from "../format.js";

import { mountDeliveries } from "./deliveries.js";

const SOURCES = { stored: "stored", live: "live", polled: "polled", replayed: "played back", invalid: "invalid" };

// "Play back" only re-animates this timeline from the backend's log; `ferry replay` is another thing
// (it re-delivers captured callbacks to a backend), so the page names and explains its own.
const PLAYBACK_HELP = "Play back shows this job's stored events again, at the chosen speed, below the counted ones; nothing is counted or delivered again (ferry replay, in the CLI, re-delivers captured callbacks).";

export function mountDetails(root, { store, onClose, onReplay, onDeliveries }) {
  let jobId = null;
  let replayAvailable = false;
  let opener = null; // the button that opened Details gets the focus back when it closes
  const heading = h("h2", { id: "details-title", tabindex: "-1" }, "Job");
  const replay = h("button", { type: "button", class: "small", title: PLAYBACK_HELP, "aria-describedby": "playback-help" }, "Play back");
  const speed = h(
    "select",
    { id: "replay-speed", class: "small", "aria-label": "Playback speed" },
    h("option", { value: "1" }, "1×"),
    h("option", { value: "10" }, "10×"),
    h("option", { value: "max" }, "at once"),
  );
  const replayControls = h("div", { class: "row", hidden: true }, speed, replay);
  const playbackHelp = h("p", { class: "hint", id: "playback-help", hidden: true }, PLAYBACK_HELP);
  const close = h("button", { type: "button", class: "quiet small" }, "Close");
  const summary = h("dl", { class: "summary" });
  const note = h("p", { class: "hint", role: "status" });
  const body = h("tbody");
  const table = h(
    "table",
    { class: "table timeline" },
    h("caption", { class: "visually-hidden" }, "Event timeline"),
    h("thead", {}, h("tr", {}, ["Seq", "Type", "Time", "Delay", "Arrived", "State"].map((c) => h("th", { scope: "col", class: c === "Delay" || c === "Arrived" ? "narrow-hide" : null }, c)))),
    body,
  );
  const wrap = h("div", { class: "table-wrap timeline-wrap" }, table);
  let scrollToReplay = null; // replay id whose first row should be brought into view when it arrives
  const deliveries = mountDeliveries({ onLoad: (id) => onDeliveries(id) });
  fill(root, h("div", { class: "row between" }, heading, h("div", { class: "row" }, replayControls, close)), playbackHelp, summary, note, wrap, deliveries.root);
  close.addEventListener("click", () => onClose());
  // Esc closes Details, as it would a dialog (a select's own Esc, closing its list, stays its own).
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || root.hidden || event.defaultPrevented || event.target?.tagName === "SELECT") return;
    onClose();
  });
  replay.addEventListener("click", async () => {
    replay.disabled = true;
    setText(note, "Asking the backend to play the stored events back…");
    try {
      const chosen = speed.value === "max" ? "max" : Number(speed.value);
      const answer = await onReplay(jobId, chosen);
      scrollToReplay = answer?.replay_id ?? null;
      const over = answer?.duration_s ? ` over ${formatDuration(answer.duration_s)}` : "";
      setText(note, `Playing back ${answer?.events ?? "the"} stored events${over}: they appear below, marked played back. Nothing is counted again.`);
    } catch (error) {
      setText(note, `Play back failed: ${error.message} (${error.code})`);
    } finally {
      replay.disabled = false;
    }
  });

  // When the job ended: the backend's record, or (a live page that saw the final event) that event's receipt.
  function endOf(view) {
    if (view.finished_at) return view.finished_at;
    if (!isTerminalState(view.state)) return null;
    const last = store.timeline(view.id).filter((e) => e.source !== "replayed" && e.source !== "invalid").at(-1);
    return last ? last.at.toISOString() : null;
  }

  function summaryItems(view) {
    const ended = endOf(view);
    const items = [
      ["State", `${stateLabel(view.state)} · ${phaseLabel(view.phase)} · ${formatPercent(view.state === "succeeded" ? 100 : view.percent)}`],
      ["Host", view.host],
      ["Job id", view.id],
      ["Status", jobStatusLine(view)],
      ["Started", formatStamp(view.created_at)],
      ["Ended", ended ? formatStamp(ended) : "not yet"],
      ["Duration", `${formatDuration(jobDuration({ ...view, finished_at: ended }))}${ended ? "" : " so far"}`],
      ["Source file", view.source_name ?? "–"],
      ["Started by", view.created_by ?? "–"],
    ];
    if (view.result) items.push(["Image id", shortId(view.result.id)], ["Size", formatBytes(view.result.size)]);
    if (view.error) items.push(["Error code", view.error.code]);
    if (view.error?.detail) items.push(["Detail", view.error.detail]);
    return items.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]);
  }

  function renderTimeline() {
    const entries = store.timeline(jobId);
    const rows = [];
    let previous = null;
    for (const entry of entries) {
      // Each replay gets a heading row; delays are measured within the counted events and within one
      // replay, not across them.
      const group = entry.source === "replayed" ? `replay ${entry.replayId ?? ""}` : "counted";
      const sameGroup = previous !== null && previous.group === group;
      if (entry.source === "replayed" && !sameGroup) {
        rows.push(h("tr", { class: "replay-group", dataset: { group: entry.replayId ?? "" } }, h("td", { colspan: 6 }, `Played back ${entry.replayId ?? ""}`.trim())));
      }
      // An invalid payload was not counted: no delay of its own, and none measured from it.
      const counted = entry.source !== "invalid";
      const delay = sameGroup && counted ? entry.at - previous.at : null;
      if (counted) previous = { group, at: entry.at };
      rows.push(
        h(
          "tr",
          { dataset: entry.replayId ? { source: entry.source, replay: entry.replayId } : { source: entry.source } },
          h("td", { class: "num" }, entry.seq ?? "–"),
          h("td", {}, entry.type.replace(/^import\./, "")),
          h("td", { class: "num" }, formatClock(entry.at)),
          h("td", { class: "num narrow-hide" }, formatDelay(delay)),
          h("td", { class: "narrow-hide" }, h("span", { class: "tag", dataset: { source: entry.source } }, SOURCES[entry.source] ?? entry.source)),
          entry.source === "invalid"
            ? h("td", { class: "error-text" }, `Not counted, breaks the callback contract: ${entry.message}`)
            : h("td", {}, `${entry.data.state} · ${entry.data.phase} · ${formatPercent(entry.data.percent)}`),
        ),
      );
    }
    body.replaceChildren(...rows);
    if (entries.length === 0) body.replaceChildren(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No events yet.")));
    // The replay the operator asked for starts below the counted events: scroll to it once.
    const first = scrollToReplay && rows.find((row) => row.dataset.group === scrollToReplay);
    if (first) {
      scrollToReplay = null;
      wrap.scrollTop += first.getBoundingClientRect().top - wrap.getBoundingClientRect().top - (table.tHead?.offsetHeight ?? 0);
    }
  }

  function render(ids) {
    if (!jobId || (ids && !ids.has(jobId))) return;
    const view = store.get(jobId);
    if (!view) return;
    setText(heading, `${jobName(view)} on ${view.host}`);
    summary.replaceChildren(...summaryItems(view));
    replayControls.hidden = !replayAvailable;
    playbackHelp.hidden = !replayAvailable;
    renderTimeline();
  }

  return {
    show(id) {
      if (id !== jobId) deliveries.reset(id);
      if (root.hidden) opener = document.activeElement;
      jobId = id;
      root.hidden = false;
      setText(note, "");
      render();
      heading.focus({ preventScroll: true });
      root.scrollIntoView({ block: "start", behavior: "smooth" });
    },
    hide() {
      const back = root.contains(document.activeElement) || document.activeElement === document.body ? opener : null;
      jobId = null;
      root.hidden = true;
      opener = null;
      if (back?.isConnected) back.focus({ preventScroll: true });
    },
    /** Which operator tools this backend and token have: {replay, deliveries}. */
    setTools({ replay: canReplay = false, deliveries: canInspect = false } = {}) {
      replayAvailable = canReplay;
      replayControls.hidden = !canReplay;
      playbackHelp.hidden = !canReplay;
      deliveries.setAvailable(canInspect);
    },
    render,
    get jobId() {
      return jobId;
    },
  };
}
