// A job's deliveries as the backend received them (GET /api/imports/{id}/deliveries): every
// verified callback in arrival order, with the receiver's verdict. Next to the timeline (what this
// page counted) it shows what the importer sent: retries, late arrivals, refusals of stale seqs.
import { fill, h, setText } from "../dom.js";
import { formatClock, formatDelay } from "../format.js";

const VERDICTS = {
  applied: "applied",
  stale: "stale",
  after_terminal: "after end",
  duplicate: "duplicate",
  invalid: "invalid",
  wrong_host: "wrong host",
};

export function mountDeliveries({ onLoad }) {
  let jobId = null;
  const load = h("button", { type: "button", class: "quiet small" }, "Show deliveries");
  const note = h("p", { class: "hint", role: "status" });
  const body = h("tbody");
  const table = h(
    "table",
    { class: "table deliveries" },
    h("caption", { class: "visually-hidden" }, "Deliveries as received"),
    h("thead", {}, h("tr", {}, ["Received", "Delay", "Seq", "Type", "Verdict", "Webhook id"].map((c) => h("th", { scope: "col" }, c)))),
    body,
  );
  const wrap = h("div", { class: "table-wrap timeline-wrap", hidden: true }, table);
  const root = h(
    "section",
    { class: "deliveries-section", "aria-labelledby": "deliveries-title", hidden: true },
    h("div", { class: "row between" }, h("h3", { id: "deliveries-title" }, "Deliveries as the backend received them"), load),
    note,
    wrap,
  );

  load.addEventListener("click", async () => {
    const id = jobId;
    load.disabled = true;
    setText(note, "Loading…");
    try {
      const deliveries = await onLoad(id);
      if (id !== jobId) return;
      render(deliveries);
      load.textContent = "Refresh deliveries";
    } catch (error) {
      if (id === jobId) setText(note, `Cannot load deliveries: ${error.message} (${error.code})`);
    } finally {
      load.disabled = false;
    }
  });

  function render(deliveries) {
    let previous = null;
    const rows = deliveries.map((d) => {
      const at = new Date(d.received_at);
      const delay = previous ? at - previous : null;
      previous = at;
      const repeats = d.duplicates ? ` · ${d.duplicates} repeat${d.duplicates === 1 ? "" : "s"}` : "";
      return h(
        "tr",
        { dataset: { verdict: d.verdict } },
        h("td", { class: "num" }, formatClock(at)),
        h("td", { class: "num" }, formatDelay(delay)),
        h("td", { class: "num" }, d.seq ?? "–"),
        h("td", {}, String(d.type ?? "–").replace(/^import\./, "")),
        h("td", {}, h("span", { class: "tag", dataset: { verdict: d.verdict } }, VERDICTS[d.verdict] ?? d.verdict), repeats),
        h("td", { class: "mono", title: d.webhook_id ?? "" }, d.webhook_id ?? "–"),
      );
    });
    fill(body, rows.length ? rows : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No deliveries recorded.")));
    const counts = {};
    for (const d of deliveries) counts[d.verdict] = (counts[d.verdict] ?? 0) + 1;
    const summary = Object.entries(counts).map(([verdict, n]) => `${n} ${VERDICTS[verdict] ?? verdict}`).join(", ");
    setText(note, `${deliveries.length} deliveries${summary ? `: ${summary}` : ""}.`);
    wrap.hidden = false;
  }

  return {
    root,
    /** A new job is shown: forget the previous one's table. */
    reset(id) {
      jobId = id;
      body.replaceChildren();
      wrap.hidden = true;
      setText(note, "");
      load.textContent = "Show deliveries";
    },
    setAvailable(available) {
      root.hidden = !available;
    },
  };
}
