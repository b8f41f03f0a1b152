// Lab host health (GET /api/hosts): alive from heartbeats, free disk, running and queued jobs.
import { fill, h } from "../dom.js";
import { formatAgo, formatBytes } from "../format.js";

export function mountHosts(root, { api, onHosts }) {
  const list = h("ul", { class: "host-list" });
  const error = h("p", { class: "error-text", role: "status" });
  fill(root, h("h2", { id: "hosts-title" }, "Hosts"), error, list);

  async function load() {
    try {
      const hosts = await api.hosts();
      error.textContent = "";
      onHosts(hosts);
      if (!hosts.length) {
        fill(list, h("li", { class: "muted" }, "No lab hosts are registered yet."));
        return;
      }
      fill(
        list,
        hosts.map((host) =>
          h(
            "li",
            { class: "host" },
            h("div", { class: "row between" }, h("strong", {}, host.name), h("span", { class: `badge`, dataset: { state: host.alive ? "succeeded" : "failed" } }, host.alive ? "online" : "not answering")),
            h(
              "p",
              { class: "stats" },
              `Seen ${formatAgo(host.last_seen)}`,
              host.disk_free_bytes === null || host.disk_free_bytes === undefined ? "" : ` · ${formatBytes(host.disk_free_bytes)} free`,
              ` · ${host.running?.length ?? 0} running, ${host.queued?.length ?? 0} queued`,
              host.engine_version ? ` · Docker ${host.engine_version}` : "",
            ),
          ),
        ),
      );
    } catch (e) {
      error.textContent = `Cannot load hosts: ${e.message} (${e.code})`;
    }
  }

  return { load };
}
