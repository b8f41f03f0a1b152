// The image catalog per host (GET /api/images): what each lab host has.
import { fill, h } from "../dom.js";
import { formatAgo, formatBytes, shortId } from "../format.js";

export function mountCatalog(root, { api }) {
  const refresh = h("button", { type: "button", class: "quiet small" }, "Refresh");
  const content = h("div", { class: "catalog", "aria-live": "polite", "aria-busy": "false" });
  fill(root, h("div", { class: "row between" }, h("h2", { id: "catalog-title" }, "Image catalog"), refresh), content);

  async function load() {
    content.setAttribute("aria-busy", "true");
    try {
      const groups = await api.images();
      if (!groups.length) {
        fill(content, h("p", { class: "muted" }, "No lab hosts are registered yet."));
        return;
      }
      fill(
        content,
        groups.map((group) =>
          h(
            "div",
            { class: "catalog-host" },
            h("h3", {}, group.host, group.reachable ? "" : h("span", { class: "badge", dataset: { state: "failed" } }, "unreachable")),
            group.images.length === 0
              ? h("p", { class: "muted" }, "No images.")
              : h(
                  "table",
                  { class: "table" },
                  h("caption", { class: "visually-hidden" }, `Images on ${group.host}`),
                  h("thead", {}, h("tr", {}, ["Tags", "Id", "Size", "Created"].map((c) => h("th", { scope: "col" }, c)))),
                  h(
                    "tbody",
                    {},
                    group.images.map((image) =>
                      h(
                        "tr",
                        {},
                        h("td", {}, (image.tags?.length ? image.tags : ["<none>"]).join(", ")),
                        h("td", { class: "mono" }, shortId(image.id)),
                        h("td", { class: "num" }, formatBytes(image.size)),
                        h("td", { class: "muted" }, formatAgo(image.created)),
                      ),
                    ),
                  ),
                ),
          ),
        ),
      );
    } catch (error) {
      fill(content, h("p", { class: "error-text" }, `Cannot load the catalog: ${error.message} (${error.code})`));
    } finally {
      content.setAttribute("aria-busy", "false");
    }
  }

  refresh.addEventListener("click", load);
  return { load };
}
