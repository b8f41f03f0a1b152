// The image catalog per host (GET /api/images): what each lab host has, which job made it, and
// (operators) Remove, which asks first; the host refuses while a running job uses the image.
import { announce, fill, h, setText } from "../dom.js";
import { formatAgo, formatBytes, jobThatMade, shortId } from "../format.js";

export function mountCatalog(root, { api, store, onDetails }) {
  let canRemove = false;
  let groups = [];
  let confirming = null; // "host image-id" whose Remove is being confirmed: stays open across refreshes
  const refresh = h("button", { type: "button", class: "quiet small" }, "Refresh");
  const note = h("p", { class: "hint", role: "status" });
  const content = h("div", { class: "catalog", "aria-live": "polite", "aria-busy": "false" });
  fill(root, h("div", { class: "row between" }, h("h2", { id: "catalog-title" }, "Image catalog"), refresh), note, content);

  function madeBy(host, image) {
    const job = jobThatMade(store.all(), host, image.id);
    if (!job) return h("span", { class: "muted" }, "–");
    return h("button", { type: "button", class: "disclosure made-by", onclick: () => onDetails(job.id), "aria-label": `Details of the job that made ${image.tags?.[0] ?? shortId(image.id)}` }, `${job.id.length > 14 ? `${job.id.slice(0, 12)}…` : job.id}${job.created_by ? ` by ${job.created_by}` : ""} · ${formatAgo(job.finished_at ?? job.created_at)}`);
  }

  function removeCell(host, image) {
    const what = (image.tags?.length ? image.tags : [shortId(image.id)]).join(", ");
    const remove = h("button", { type: "button", class: "quiet small", "aria-label": `Remove ${what} from ${host}` }, "Remove");
    const yes = h("button", { type: "button", class: "small primary", "aria-label": `Yes, remove ${what} from ${host}` }, "Yes, remove");
    const no = h("button", { type: "button", class: "quiet small" }, "Keep");
    const key = `${host} ${image.id}`;
    const open = confirming === key;
    const confirm = h("span", { class: "row confirm", role: "group", "aria-label": `Remove ${what} from ${host}?`, hidden: !open }, h("span", {}, "Remove from the host?"), yes, no);
    remove.hidden = open;
    remove.addEventListener("click", () => {
      confirming = key;
      remove.hidden = true;
      confirm.hidden = false;
      no.focus({ preventScroll: true });
    });
    no.addEventListener("click", () => {
      confirming = null;
      confirm.hidden = true;
      remove.hidden = false;
      remove.focus({ preventScroll: true });
    });
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      confirming = null;
      try {
        await api.removeImage(host, image.id);
        setText(note, `Removed ${what} from ${host}.`);
        announce(`Removed ${what} from ${host}`);
        await load();
      } catch (error) {
        setText(note, `Not removed: ${error.message} (${error.code})`);
        confirm.hidden = true;
        remove.hidden = false;
        yes.disabled = false;
      }
    });
    return h("td", { class: "actions" }, remove, confirm);
  }

  function render() {
    if (!groups.length) {
      fill(content, h("p", { class: "muted" }, "No lab hosts are registered yet."));
      return;
    }
    const columns = ["Tags", "Id", "Size", "Created", "Made by", ...(canRemove ? [""] : [])];
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
                "div",
                { class: "table-wrap" },
                h(
                  "table",
                  { class: "table" },
                  h("caption", { class: "visually-hidden" }, `Images on ${group.host}`),
                  h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c === "Id" || c === "Created" ? "narrow-hide" : null }, c)))),
                  h(
                    "tbody",
                    {},
                    group.images.map((image) =>
                      h(
                        "tr",
                        { dataset: { image: image.id } },
                        h("td", { class: "tags" }, (image.tags?.length ? image.tags : ["<none>"]).join(", ")),
                        h("td", { class: "mono narrow-hide" }, shortId(image.id)),
                        h("td", { class: "num" }, formatBytes(image.size)),
                        h("td", { class: "muted narrow-hide" }, formatAgo(image.created)),
                        h("td", {}, madeBy(group.host, image)),
                        canRemove && group.reachable ? removeCell(group.host, image) : canRemove ? h("td") : null,
                      ),
                    ),
                  ),
                ),
              ),
        ),
      ),
    );
  }

  async function load() {
    content.setAttribute("aria-busy", "true");
    try {
      groups = await api.images();
      render();
    } catch (error) {
      fill(content, h("p", { class: "error-text" }, `Cannot load the catalog: ${error.message} (${error.code})`));
    } finally {
      content.setAttribute("aria-busy", "false");
    }
  }

  refresh.addEventListener("click", load);
  return {
    load,
    /** Draw again from the last list (e.g. a job that made one of its images became known). */
    render: () => groups.length && render(),
    /** Operators on a backend that offers it may remove images. */
    setRemovable(value) {
      canRemove = Boolean(value);
      if (groups.length) render();
    },
  };
}
