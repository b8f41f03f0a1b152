// One card per job and host with a live bar: phase, percent, bytes, rate, ETA; "finalizing… N s"
// while the engine works after the last byte; the image id and size on success; the message and
// code on failure.
import { isTerminalState } from "../../src/seq.js";
import { fill, h, progressBar, setText } from "../dom.js";
import { formatPercent, jobName, jobOrigin, jobStatusLine, phaseLabel, stateLabel } from "../format.js";

export function mountProgress(root, { store, isShown, onDetails, onCancel, onDismiss, canOperate }) {
  const list = h("div", { class: "job-cards", id: "job-cards" });
  const empty = h("p", { class: "muted" }, "No imports running. Start one on the left, or pick a job from the list.");
  fill(root, h("h2", { id: "progress-title" }, "Imports"), empty, list);
  const cards = new Map();

  function card(id) {
    let entry = cards.get(id);
    if (entry) return entry;
    const view = store.get(id);
    const label = h("span", { class: "job-title", id: `job-title-${cssId(id)}` });
    const badge = h("span", { class: "badge" });
    const origin = h("span", { class: "tag", hidden: true });
    const phase = h("span", { class: "phase" });
    const percent = h("span", { class: "percent" });
    const bar = progressBar("");
    bar.removeAttribute("aria-label");
    bar.setAttribute("aria-labelledby", label.id);
    const status = h("p", { class: "stats" });
    const invalid = h("p", { class: "invalid-note", hidden: true });
    // Cancel asks first: it stops the import on the host and removes what it loaded so far.
    const cancel = canOperate ? h("button", { type: "button", class: "quiet small" }, "Cancel") : null;
    const confirmYes = h("button", { type: "button", class: "small primary" }, "Yes, cancel");
    const confirmNo = h("button", { type: "button", class: "quiet small" }, "Keep importing");
    const confirm = h("div", { class: "row confirm", role: "group", hidden: true }, h("span", {}, "Cancel this import? What the host loaded so far is removed."), confirmYes, confirmNo);
    cancel?.addEventListener("click", () => {
      confirm.hidden = false;
      cancel.hidden = true;
      confirmNo.focus({ preventScroll: true });
    });
    confirmYes.addEventListener("click", () => {
      confirm.hidden = true;
      onCancel(id);
      update(id);
      details.focus({ preventScroll: true });
    });
    confirmNo.addEventListener("click", () => {
      confirm.hidden = true;
      update(id);
      cancel?.focus({ preventScroll: true });
    });
    confirm.addEventListener("keydown", (event) => event.key === "Escape" && (event.stopPropagation(), confirmNo.click()));
    const dismiss = h("button", { type: "button", class: "quiet small", onclick: () => onDismiss(id), hidden: true }, "Dismiss");
    const details = h("button", { type: "button", class: "quiet small", onclick: () => onDetails(id) }, "Details");
    const el = h(
      "article",
      { class: "job-card", dataset: { job: id } },
      h("div", { class: "row between" }, h("div", { class: "row" }, label, badge, origin), h("div", { class: "row actions" }, details, cancel, dismiss)),
      h("div", { class: "row between phase-line" }, phase, percent),
      bar,
      confirm,
      status,
      invalid,
    );
    entry = { el, label, badge, origin, phase, percent, bar, status, invalid, cancel, dismiss, details, confirm, confirmYes, confirmNo };
    cards.set(id, entry);
    list.prepend(el);
    if (view) update(id);
    return entry;
  }

  function update(id) {
    const view = store.get(id);
    if (!view) return;
    const c = card(id);
    const terminal = isTerminalState(view.state);
    const working = !terminal && (view.phase === "finalizing" || view.phase === "verifying");
    const elapsed = working ? (view.phase_elapsed_s ?? 0) + (Date.now() - (view.elapsedAt ?? Date.now())) / 1000 : view.phase_elapsed_s;
    const doubtS = view.doubt ? (view.doubt.silent_s ?? 0) + (Date.now() - (view.doubtAt ?? Date.now())) / 1000 : null;
    const line = jobStatusLine(view, elapsed, terminal ? null : silentFor(view), doubtS);
    const name = `${jobName(view)} on ${view.host}`;
    setText(c.label, name);
    for (const [button, verb] of [[c.details, "Details of"], [c.cancel, "Cancel"], [c.dismiss, "Dismiss"], [c.confirmYes, "Yes, cancel"], [c.confirmNo, "Keep importing"]]) {
      if (button && button.getAttribute("aria-label") !== `${verb} ${name}`) button.setAttribute("aria-label", `${verb} ${name}`);
    }
    setText(c.badge, stateLabel(view.state));
    const from = jobOrigin(view);
    c.origin.hidden = !from;
    setText(c.origin, from ?? "");
    if (from) c.origin.dataset.origin = from;
    c.badge.dataset.state = view.state;
    c.el.dataset.state = view.state;
    setText(c.phase, terminal ? "" : phaseLabel(view.phase));
    const shownPercent = view.state === "succeeded" ? 100 : view.percent;
    setText(c.percent, formatPercent(shownPercent));
    c.bar.update({
      percent: shownPercent,
      text: `${formatPercent(shownPercent)}, ${terminal ? stateLabel(view.state) : phaseLabel(view.phase).toLowerCase()}${working || terminal ? `: ${line}` : ""}`,
      indeterminate: working,
      tone: view.state === "succeeded" ? "ok" : view.state === "failed" ? "bad" : view.state === "canceled" ? "muted" : "",
    });
    setText(c.status, line);
    c.status.classList.toggle("error-text", view.state === "failed");
    c.el.dataset.silent = String(/no update for|no word from/.test(line));
    c.el.dataset.doubt = String(Boolean(view.doubt) && !(terminal && !view.presumed));
    // A payload that broke the contract was not counted: the card says so rather than hide it.
    const refused = store.invalid(id);
    c.invalid.hidden = refused.length === 0;
    if (refused.length) {
      const n = refused.length === 1 ? "1 update" : `${refused.length} updates`;
      setText(c.invalid, `${n} not counted: it broke the callback contract (${refused.at(-1).message}). Details lists it.`);
    }
    if (terminal) c.confirm.hidden = true;
    if (c.cancel) c.cancel.hidden = terminal || !c.confirm.hidden;
    c.dismiss.hidden = !terminal;
  }

  function render(ids) {
    for (const id of ids) {
      if (isShown(id)) update(id);
      else remove(id);
    }
    empty.hidden = cards.size > 0;
  }

  function remove(id) {
    const entry = cards.get(id);
    if (!entry) return;
    entry.el.remove();
    cards.delete(id);
  }

  // The finalizing clock counts on between events, and a silence shows as it grows.
  setInterval(() => {
    for (const id of cards.keys()) {
      const view = store.get(id);
      if (view && (!isTerminalState(view.state) || view.presumed)) update(id);
    }
  }, 1000);

  return { render, remove, has: (id) => cards.has(id) };
}

/** Seconds since the page last heard of the job (its own clock once it saw an event; else the snapshot's time). */
function silentFor(view, now = Date.now()) {
  const last = Math.max(view.seenAt ?? 0, Date.parse(view.updated_at ?? "") || 0);
  return last ? Math.max(0, (now - last) / 1000) : null;
}

function cssId(id) {
  return String(id).replace(/[^A-Za-z0-9_-]/g, "_");
}
