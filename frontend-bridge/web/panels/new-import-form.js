// The "New import" form's elements, built once; web/panels/new-import.js wires them.
import { h, progressBar } from "../dom.js";

export function newImportForm() {
  const fileInput = h("input", { id: "file", type: "file", class: "file-input", accept: ".tar,.xz,.txz,.gz,.tgz,.zst,.bz2,application/x-tar,application/x-xz,application/gzip" });
  const dropzone = h(
    "div",
    { class: "dropzone", id: "dropzone" },
    fileInput,
    h("label", { for: "file" }, h("strong", {}, "Drop an image archive here"), " or ", h("span", { class: "link" }, "choose a file")),
    h("p", { class: "hint" }, ".tar, .tar.xz, .tar.gz — a docker save archive or a root file system"),
  );
  const uploadBar = progressBar("Upload progress");
  const uploadName = h("span", { class: "file-name" });
  const uploadStats = h("p", { class: "stats", id: "upload-stats" });
  const cancelUpload = h("button", { type: "button", class: "quiet small" }, "Cancel upload");
  const resumeUpload = h("button", { type: "button", class: "small", id: "resume-upload", hidden: true }, "Resume upload");
  const resumeNote = h("p", { class: "hint", id: "upload-resumed", role: "status" });
  const uploadBox = h("div", { class: "upload-status", hidden: true }, h("div", { class: "row between" }, uploadName, h("div", { class: "row" }, resumeUpload, cancelUpload)), uploadBar, uploadStats, resumeNote);
  // Uploads this browser left unfinished (a reload, a closed tab): the same file, chosen again, continues one.
  const storedNote = h("div", { class: "stored-uploads", id: "stored-uploads", role: "status" });

  const hostList = h("div", { class: "host-choices", id: "host-choices" });
  const hostSet = h("fieldset", { class: "hosts-field" }, h("legend", {}, "Hosts"), hostList);

  const imageInput = h("input", { id: "image", name: "image", type: "text", autocomplete: "off", spellcheck: "false", placeholder: "repository:tag", "aria-describedby": "image-help image-error" });
  const imageHelp = h(
    "p",
    { class: "hint", id: "image-help" },
    "For example ceos:4.35.1F or registry.lab:5000/vendor/srlinux:24.10. Needed for a file system archive; leave it empty for a docker save archive to keep its own tags.",
  );
  const imageError = h("p", { class: "field-error", id: "image-error", "aria-live": "polite" });

  const formatSelect = h("select", { id: "format" }, h("option", { value: "auto" }, "Detect"), h("option", { value: "load" }, "docker load"), h("option", { value: "import" }, "docker import"));
  const force = h("input", { id: "force", type: "checkbox" });
  const options = h(
    "details",
    { class: "options" },
    h("summary", {}, "Options"),
    h("div", { class: "row" }, h("label", { for: "format" }, "Archive format"), formatSelect),
    h("div", { class: "row" }, force, h("label", { for: "force" }, "Replace an image of the same name")),
  );

  const importButton = h("button", { type: "submit", class: "primary", id: "import-button", disabled: true, "aria-describedby": "import-hint" }, "Import");
  const importHint = h("p", { class: "hint", id: "import-hint" });
  const importError = h("p", { class: "field-error", id: "import-error", role: "alert" });
  const form = h(
    "form",
    { novalidate: true },
    dropzone,
    storedNote,
    uploadBox,
    hostSet,
    h("label", { for: "image" }, "Image"),
    imageInput,
    imageHelp,
    imageError,
    options,
    h("div", { class: "row" }, importButton),
    importHint,
    importError,
  );
  return { fileInput, dropzone, uploadBar, uploadName, uploadStats, cancelUpload, resumeUpload, resumeNote, uploadBox, storedNote, hostList, imageInput, imageError, formatSelect, force, importButton, importHint, importError, form };
}
