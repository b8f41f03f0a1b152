// One job for operators: its snapshot and the event timeline (seq, type, time, delay since the
// previous event, how it arrived), with Replay when the backend offers it.
import { fill, h, setText } from "../dom.js";
import { formatBytes, formatClock, formatDelay, formatPercent, jobStatusLine, phaseLabel, shortId, stateLabel } from "../format.js";

const SOURCES = { stored: "stored", live: "live", polled: "polled", replayed: "replayed" };

export function mountDetails(root, { store, onClose, onReplay }) {
  let jobId = null;
  let replayAvailable = false;
  const heading = h("h2", { id: "details-title", tabindex: "-1" }, "Job");
  const replay = h("button", { type: "button", class: "small", hidden: true }, "Replay");
  const close = h("button", { type: "button", class: "quiet small" }, "Close");
  const summary = h("dl", { class: "summary" });
  const note = h("p", { class: "hint", role: "status" });
  const body = h("tbody");
  const table = h(
    "table",
    { class: "table timeline" },
    h("caption", { class: "visually-hidden" }, "Event timeline"),
    h("thead", {}, h("tr", {}, ["Seq", "Type", "Time", "Delay", "Arrived", "State"].map((c) => h("th", { scope: "col" }, c)))),
    body,
  );
  fill(root, h("div", { class: "row between" }, heading, h("div", { class: "row" }, replay, close)), summary, note, h("div", { class: "table-wrap timeline-wrap" }, table));
  close.addEventListener("click", () => onClose());
  replay.addEventListener("click", async () => {
    replay.disabled = true;
    setText(note, "Replaying the stored events…");
    try {
      await onReplay(jobId);
      setText(note, "Replay requested: replayed events appear below, marked replayed.");
    } catch (error) {
      setText(note, `Replay failed: ${error.message} (${error.code})`);
    } finally {
      replay.disabled = false;
    }
  });

  function summaryItems(view) {
    const items = [
      ["State", `${stateLabel(view.state)} · ${phaseLabel(view.phase)} · ${formatPercent(view.state === "succeeded" ? 100 : view.percent)}`],
      ["Host", view.host],
      ["Job id", view.id],
      ["Status", jobStatusLine(view)],
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
      // Delays are measured within the counted events and within the replays, not across them.
      const delay = previous && (previous.source === "replayed") === (entry.source === "replayed") ? entry.at - previous.at : null;
      previous = entry;
      rows.push(
        h(
          "tr",
          { dataset: { source: entry.source } },
          h("td", { class: "num" }, entry.seq),
          h("td", {}, entry.type.replace(/^import\./, "")),
          h("td", { class: "num" }, formatClock(entry.at)),
          h("td", { class: "num" }, formatDelay(delay)),
          h("td", {}, h("span", { class: "tag", dataset: { source: entry.source } }, SOURCES[entry.source] ?? entry.source)),
          h("td", {}, `${entry.data.state} · ${entry.data.phase} · ${formatPercent(entry.data.percent)}`),
        ),
      );
    }
    body.replaceChildren(...rows);
    if (entries.length === 0) body.replaceChildren(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No events yet.")));
  }

  function render(ids) {
    if (!jobId || (ids && !ids.has(jobId))) return;
    const view = store.get(jobId);
    if (!view) return;
    setText(heading, `${view.image ?? "Job"} on ${view.host}`);
    summary.replaceChildren(...summaryItems(view));
    replay.hidden = !replayAvailable;
    renderTimeline();
  }

  return {
    show(id) {
      jobId = id;
      root.hidden = false;
      setText(note, "");
      render();
      heading.focus({ preventScroll: true });
      root.scrollIntoView({ block: "start", behavior: "smooth" });
    },
    hide() {
      jobId = null;
      root.hidden = true;
    },
    setReplay(available) {
      replayAvailable = available;
      replay.hidden = !available;
    },
    render,
    get jobId() {
      return jobId;
    },
  };
}
