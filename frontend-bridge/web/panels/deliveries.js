// A job's deliveries as the backend received them (GET /api/imports/{id}/deliveries): every
// verified callback in arrival order, with the receiver's verdict. Next to the timeline (what this
// page counted) it shows what the importer sent: retries, late arrivals, refusals of stale seqs.
// Each opens to its headers, body and the backend's answer; runs of plain progress fold into one row.
import { fill, h, setText } from "../dom.js";
import { groupDeliveries, headerLines, prettyJson, runLabel } from "../delivery-groups.js";
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
    h("thead", {}, h("tr", {}, ["Received", "Delay", "Seq", "Type", "Verdict", "Webhook id"].map((c) => h("th", { scope: "col", class: c === "Webhook id" || c === "Delay" ? "narrow-hide" : null }, c)))),
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

  // One delivery: a row that opens, like a webhook log, to the request's headers and body and the
  // answer the backend gave.
  function deliveryRows(d, delay, hidden = false) {
    const repeats = d.duplicates ? ` · ${d.duplicates} repeat${d.duplicates === 1 ? "" : "s"}` : "";
    const detail = h("tr", { class: "delivery-detail", hidden: true }, h("td", { colspan: 6 }));
    const toggle = h("button", { type: "button", class: "disclosure", "aria-expanded": "false" }, formatClock(new Date(d.received_at)));
    toggle.setAttribute("aria-label", `Delivery seq ${d.seq ?? "–"} ${d.type ?? ""} received ${formatClock(new Date(d.received_at))}: show request and answer`);
    const row = h(
      "tr",
      { class: "delivery", hidden, dataset: { verdict: d.verdict, webhook: d.webhook_id ?? "" } },
      h("td", { class: "num" }, toggle),
      h("td", { class: "num narrow-hide" }, formatDelay(delay)),
      h("td", { class: "num" }, d.seq ?? "–"),
      h("td", {}, String(d.type ?? "–").replace(/^import\./, "")),
      h("td", {}, h("span", { class: "tag", dataset: { verdict: d.verdict } }, VERDICTS[d.verdict] ?? d.verdict), repeats),
      h("td", { class: "mono narrow-hide", title: d.webhook_id ?? "" }, d.webhook_id ?? "–"),
    );
    const open = (value) => {
      if (value && !detail.firstChild.firstChild) fill(detail.firstChild, deliveryDetail(d));
      detail.hidden = !value;
      toggle.setAttribute("aria-expanded", String(value));
      row.setAttribute("aria-expanded", String(value));
    };
    toggle.addEventListener("click", (event) => {
      event.stopPropagation();
      open(detail.hidden);
    });
    row.addEventListener("click", () => open(detail.hidden));
    row.collapse = () => {
      open(false);
      row.hidden = true;
    };
    return [row, detail];
  }

  function deliveryDetail(d) {
    const answer = d.answer;
    return [
      h("h4", {}, "Request headers"),
      h("pre", { class: "mono", dataset: { part: "headers" } }, headerLines(d.headers) || "–"),
      h("h4", {}, "Request body"),
      h("pre", { class: "mono", dataset: { part: "body" } }, prettyJson(d.body) || "–"),
      h("h4", {}, answer ? `Answer: HTTP ${answer.status}` : "Answer"),
      h("pre", { class: "mono", dataset: { part: "answer" } }, answer ? prettyJson(answer.body) : "Not kept for this delivery (stored before answers were kept)."),
    ];
  }

  function render(deliveries) {
    const at = (d) => new Date(d.received_at);
    const rows = [];
    for (const entry of groupDeliveries(deliveries)) {
      const delayOf = (index) => (index > 0 ? at(deliveries[index]) - at(deliveries[index - 1]) : null);
      if (entry.kind === "one") {
        rows.push(...deliveryRows(entry.delivery, delayOf(entry.index)));
        continue;
      }
      // A run of plain progress callbacks: one row, opened on demand.
      const label = runLabel(entry);
      const toggle = h("button", { type: "button", class: "disclosure", "aria-expanded": "false" }, label);
      const members = entry.deliveries.flatMap((d, i) => deliveryRows(d, delayOf(entry.first + i), true));
      const head = h(
        "tr",
        { class: "delivery-group", dataset: { verdict: entry.verdict, count: entry.count } },
        h("td", { colspan: 6 }, toggle, " ", h("span", { class: "tag", dataset: { verdict: entry.verdict } }, VERDICTS[entry.verdict] ?? entry.verdict), h("span", { class: "muted num" }, ` ${formatClock(new Date(entry.from))} – ${formatClock(new Date(entry.to))}`)),
      );
      toggle.addEventListener("click", () => {
        const opening = toggle.getAttribute("aria-expanded") !== "true";
        toggle.setAttribute("aria-expanded", String(opening));
        for (const row of members) {
          if (!row.classList.contains("delivery")) continue;
          if (opening) row.hidden = false;
          else row.collapse();
        }
      });
      rows.push(head, ...members);
    }
    fill(body, rows.length ? rows : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No deliveries recorded.")));
    const counts = {};
    for (const d of deliveries) counts[d.verdict] = (counts[d.verdict] ?? 0) + 1;
    const summary = Object.entries(counts).map(([verdict, n]) => `${n} ${VERDICTS[verdict] ?? verdict}`).join(", ");
    setText(note, `${deliveries.length} deliveries${summary ? `: ${summary}` : ""}. Open one to see its headers, body and the answer.`);
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
