// Lab host health (GET /api/hosts): alive from heartbeats, free disk, engine version. The running
// and queued counts come from the page's live job feed, not from the last heartbeat, so they change
// the moment a job does.
import { fill, h } from "../dom.js";
import { formatAgo, formatBytes, hostLiveness } from "../format.js";

export function mountHosts(root, { api, store, onHosts }) {
  const list = h("ul", { class: "host-list" });
  const error = h("p", { class: "error-text", role: "status" });
  fill(root, h("h2", { id: "hosts-title" }, "Hosts"), error, list);
  let hosts = [];
  let countsKey = "";

  function counts(name) {
    let running = 0;
    let queued = 0;
    for (const view of store.views.values()) {
      if (view.host !== name) continue;
      if (view.state === "running") running += 1;
      else if (view.state === "queued") queued += 1;
    }
    return { running, queued };
  }

  // "silent for 58 s" beside "Seen 58 s ago", never "online": silence is a doubt, and it says so.
  function liveness(host) {
    const { words, tone } = hostLiveness(host);
    const state = tone === "ok" ? "succeeded" : tone === "warn" ? "running" : "failed";
    return h("span", { class: "badge host-liveness", dataset: { state, tone } }, words);
  }

  function render() {
    countsKey = hosts.map((host) => JSON.stringify(counts(host.name))).join("|");
    if (!hosts.length) {
      fill(list, h("li", { class: "muted" }, "No lab hosts are registered yet."));
      return;
    }
    fill(
      list,
      hosts.map((host) => {
        const { running, queued } = counts(host.name);
        return h(
          "li",
          { class: "host", dataset: { host: host.name } },
          h("div", { class: "row between" }, h("strong", {}, host.name), liveness(host)),
          h(
            "p",
            { class: "stats" },
            `Seen ${formatAgo(host.last_seen)}`,
            host.disk_free_bytes === null || host.disk_free_bytes === undefined ? "" : ` · ${formatBytes(host.disk_free_bytes)} free`,
            ` · ${running} running, ${queued} queued`,
            host.engine_version ? ` · Docker ${host.engine_version}` : "",
          ),
        );
      }),
    );
  }

  async function load() {
    try {
      hosts = await api.hosts();
      error.textContent = "";
      onHosts(hosts);
      render();
    } catch (e) {
      error.textContent = `Cannot load hosts: ${e.message} (${e.code})`;
    }
  }

  /** Re-render when a job changed state (cheap when nothing did). */
  function renderCounts() {
    const key = hosts.map((host) => JSON.stringify(counts(host.name))).join("|");
    if (key !== countsKey) render();
  }

  return { load, renderCounts };
}
