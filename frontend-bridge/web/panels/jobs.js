// Every job this token may see, updating as events arrive.
import { fill, h, setText } from "../dom.js";
import { ALREADY_PRESENT, formatAgo, formatPercent, isAlreadyPresent, jobName, jobOrigin, phaseLabel, stateLabel } from "../format.js";

export function mountJobs(root, { store, onDetails }) {
  const filter = h(
    "select",
    { id: "jobs-filter" },
    ["all", "running", "queued", "succeeded", "failed", "canceled"].map((s) => h("option", { value: s }, s === "all" ? "All states" : s)),
  );
  // Simulated and replayed jobs made no image: out of the list unless asked for.
  const showOthers = h("input", { type: "checkbox", id: "jobs-show-others" });
  const body = h("tbody");
  const empty = h("p", { class: "muted" }, "No jobs yet.");
  const table = h(
    "table",
    { class: "table", "aria-describedby": "jobs-title" },
    h("thead", {}, h("tr", {}, ["Image", "Host", "State", "Progress", "Updated", ""].map((c) => h("th", { scope: "col", class: c === "Updated" || c === "Host" ? "narrow-hide" : null }, c)))),
    body,
  );
  fill(
    root,
    h("div", { class: "row between" }, h("h2", { id: "jobs-title" }, "Jobs"), h("div", { class: "row" }, h("label", { for: "jobs-filter" }, "Show"), filter, h("span", { class: "row" }, showOthers, h("label", { for: "jobs-show-others" }, "simulated and replayed")))),
    empty,
    h("div", { class: "table-wrap" }, table),
  );
  const rows = new Map();
  filter.addEventListener("change", () => render());
  showOthers.addEventListener("change", () => render());

  function row(view) {
    let r = rows.get(view.id);
    if (!r) {
      const cells = { image: h("td", { class: "job-image" }), host: h("td", { class: "narrow-hide" }), state: h("td"), progress: h("td"), updated: h("td", { class: "muted narrow-hide" }) };
      const button = h("button", { type: "button", class: "quiet small", onclick: () => onDetails(view.id) }, "Details");
      const el = h("tr", { dataset: { job: view.id } }, cells.image, cells.host, cells.state, cells.progress, cells.updated, h("td", { class: "actions" }, button));
      button.setAttribute("aria-label", `Details of the job`);
      r = { el, cells, button };
      rows.set(view.id, r);
    }
    const origin = jobOrigin(view);
    if (r.name !== jobName(view) || r.origin !== origin) {
      r.name = jobName(view);
      r.origin = origin;
      fill(r.cells.image, r.name, origin ? [" ", h("span", { class: "tag", dataset: { origin } }, origin)] : null);
    }
    setText(r.cells.host, view.host);
    if (r.cells.image.dataset.host !== view.host) r.cells.image.dataset.host = view.host; // shown beside the name on phones
    fill(r.cells.state, h("span", { class: "badge", dataset: { state: view.state } }, stateLabel(view.state)));
    setText(r.cells.progress, isAlreadyPresent(view) ? ALREADY_PRESENT : view.state === "running" ? `${formatPercent(view.percent)} · ${phaseLabel(view.phase)}` : view.state === "succeeded" ? "100.0 %" : formatPercent(view.percent));
    const stamp = Math.max(Date.parse(view.updated_at ?? view.created_at ?? "") || 0, view.seenAt ?? 0);
    setText(r.cells.updated, stamp ? formatAgo(stamp) : "–");
    r.button.setAttribute("aria-label", `Details of ${jobName(view)} on ${view.host}`);
    return r.el;
  }

  function render() {
    const wanted = filter.value;
    const inState = store.all().filter((v) => wanted === "all" || v.state === wanted);
    const views = showOthers.checked ? inState : inState.filter((v) => !jobOrigin(v));
    const hidden = inState.length - views.length;
    setText(empty, hidden ? `No jobs to show; ${hidden} simulated or replayed ${hidden === 1 ? "is" : "are"} hidden.` : "No jobs yet.");
    const els = views.map(row);
    const current = [...body.children];
    if (els.length !== current.length || els.some((el, i) => el !== current[i])) body.replaceChildren(...els);
    empty.hidden = views.length > 0;
    table.hidden = views.length === 0;
  }

  render(); // "No jobs yet." stands alone, without a table header, until the first job
  return { render };
}
