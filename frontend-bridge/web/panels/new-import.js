// "New import": pick or drop an archive (uploaded at once, resumably), choose hosts and the image
// name (checked as you type, with the importer's rules), then Import.
import { checkArchiveFile } from "../../src/archive.js";
import { suggestReference } from "../../src/reference.js";
import { announce, fill, h, progressBar, setText } from "../dom.js";
import { formatBytes, formatBytesOf, hostLiveness } from "../format.js";
import { OFFLINE_WORDS, chooseHosts, imageVerdict, progressWords, readiness, readinessHint, refusedWords, resumed, retryWords, uploadStopped, uploadedWords } from "./new-import-state.js";

export function mountNewImport(root, { client, canOperate, onStarted }) {
  let uploaded = null; // {uploadId, name, size, complete}: known as soon as the upload exists, before its bytes arrive
  let startedOn = null; // the uploadId imports were started on while it arrived: Cancel upload removes it (and them)
  let uploading = null; // AbortController
  let stopped = null; // the File whose upload failed for good or was canceled: Resume upload takes it up again
  let chosen = new Set();
  let imageTouched = false;
  let hostsTouched = false; // once the user ticked or unticked a host, the page no longer ticks for them

  const title = h("h2", { id: "new-import-title" }, "New import");
  if (!canOperate) {
    fill(root, title, h("p", { class: "muted" }, "This token may watch imports but not start them (viewer role)."));
    return { setHosts() {} };
  }

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
  let stored = [];
  let retryClock = null; // the "retrying in N s" countdown while a dropped connection waits

  /** Say, in words, that the connection dropped and when the upload tries again (or that it waits for the network). */
  function sayRetry({ delayMs, offline }) {
    clearInterval(retryClock);
    if (offline) {
      setText(uploadStats, OFFLINE_WORDS);
      return;
    }
    const at = Date.now() + (delayMs ?? 0);
    const tell = () => {
      const { text, over } = retryWords(at, Date.now());
      setText(uploadStats, text);
      if (over) clearInterval(retryClock);
    };
    tell();
    retryClock = setInterval(tell, 1000);
  }

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
  fill(root, title, form);

  const missing = () => readiness({ uploaded, uploading: uploading !== null, hostCount: chosen.size, image: imageInput.value, format: formatSelect.value });

  function refresh() {
    const still = missing();
    importButton.disabled = still.length > 0;
    setText(importHint, readinessHint(still));
  }

  function checkImage() {
    const { invalid, message } = imageVerdict(imageInput.value, imageTouched);
    imageInput.setAttribute("aria-invalid", String(invalid));
    setText(imageError, message);
    refresh();
  }

  formatSelect.addEventListener("change", refresh);
  imageInput.addEventListener("input", () => {
    imageTouched = true;
    checkImage();
  });

  async function startUpload(file) {
    if (!file) return;
    uploading?.abort();
    const controller = new AbortController();
    uploading = controller;
    uploaded = null;
    stopped = null;
    resumeUpload.hidden = true;
    importError.textContent = "";
    setText(resumeNote, "");
    uploadBox.hidden = false;
    setText(uploadName, `${file.name} · ${formatBytes(file.size)}`);
    uploadBar.update({ percent: 0, text: "upload starting" });
    setText(uploadStats, "Starting…");
    cancelUpload.hidden = false;
    // A file that is no archive would cost a whole upload before the importer refused it: its first
    // bytes decide now, with the importer's codes.
    const verdict = await checkArchiveFile(file).catch((error) => ({ ok: false, code: "unreadable_file", message: `the file cannot be read: ${error.message}` }));
    if (uploading !== controller) return;
    if (!verdict.ok) {
      uploading = null;
      cancelUpload.hidden = true;
      uploadBar.update({ percent: 0, text: "not uploaded", tone: "bad" });
      setText(uploadStats, refusedWords(verdict));
      uploadStats.classList.add("error-text");
      announce(`${file.name} is not an image archive`);
      refresh();
      return;
    }
    uploadStats.classList.remove("error-text");
    if (!imageInput.value) {
      imageInput.value = suggestReference(file.name);
      checkImage();
    }
    refresh();
    try {
      const result = await client.upload(file, {
        signal: controller.signal,
        // Import is possible from the moment the upload exists: the hosts take its bytes as they arrive.
        onUploadUrl: ({ uploadId }) => {
          if (uploading !== controller) return;
          uploaded = { uploadId, name: file.name, size: file.size, complete: false };
          refresh();
        },
        terminateOnAbort: () => uploaded !== null && startedOn === uploaded.uploadId,
        onResume: ({ url }) => {
          const after = resumed(stored, url, file.name);
          stored = after.stored;
          showStored();
          setText(resumeNote, after.note);
          announce(`Upload of ${file.name} resumed`);
        },
        onRetry: (retry) => uploading === controller && sayRetry(retry),
        onProgress: (p) => {
          clearInterval(retryClock);
          const words = progressWords(p);
          uploadBar.update({ percent: words.percent, text: words.bar });
          setText(uploadStats, words.stats);
        },
      });
      if (uploading !== controller) return;
      uploaded = { uploadId: result.uploadId, name: file.name, size: result.size, complete: true };
      uploadBar.update({ percent: 100, text: "upload complete", tone: "ok" });
      setText(uploadStats, uploadedWords(result, startedOn));
      announce(`Upload of ${file.name} complete`);
    } catch (error) {
      if (uploading !== controller) return;
      uploadBar.update({ percent: Number(uploadBar.getAttribute("aria-valuenow")), text: "upload stopped", tone: "bad" });
      const after = uploadStopped({ uploaded, startedOn, error });
      uploaded = after.uploaded;
      if (after.resumable) {
        stopped = file;
        resumeUpload.hidden = false;
      }
      setText(uploadStats, after.stats);
    } finally {
      if (uploading === controller) {
        clearInterval(retryClock);
        uploading = null;
        cancelUpload.hidden = true;
      }
      refresh();
    }
  }

  function showStored() {
    fill(
      storedNote,
      stored.map((entry) => h("p", { class: "hint", dataset: { url: entry.url } }, `${entry.filename}: choose the same file to continue the upload (${formatBytesOf(entry.offset, entry.size)} are on the server).`)),
    );
  }
  client
    .storedUploads?.()
    .then((list) => {
      stored = list.filter((entry) => entry.offset < entry.size);
      showStored();
    })
    .catch(() => {});

  // Leaving the page while bytes are on their way would stop the upload: the browser asks first.
  window.addEventListener("beforeunload", (event) => {
    if (!uploading) return;
    event.preventDefault();
    event.returnValue = ""; // older browsers ask only when this is set
  });

  fileInput.addEventListener("change", () => startUpload(fileInput.files?.[0]));
  cancelUpload.addEventListener("click", () => uploading?.abort());
  resumeUpload.addEventListener("click", () => {
    const file = stopped;
    startUpload(file);
    if (file) cancelUpload.focus({ preventScroll: true }); // the clicked button is hidden now
  });
  for (const type of ["dragenter", "dragover"]) {
    dropzone.addEventListener(type, (event) => {
      event.preventDefault();
      dropzone.classList.add("over");
    });
  }
  for (const type of ["dragleave", "drop"]) dropzone.addEventListener(type, () => dropzone.classList.remove("over"));
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    startUpload(event.dataTransfer?.files?.[0]);
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (missing().length) return refresh();
    importButton.disabled = true;
    importError.textContent = "";
    try {
      const jobs = await client.startImport({
        uploadId: uploaded.uploadId,
        hosts: [...chosen],
        image: imageInput.value || undefined,
        format: formatSelect.value === "auto" ? undefined : formatSelect.value,
        force: force.checked,
      });
      if (!uploaded.complete) startedOn = uploaded.uploadId;
      announce(`Import started on ${jobs.map((j) => j.host).join(", ")}${uploaded.complete ? "" : " while the upload continues"}`);
      onStarted(jobs);
    } catch (error) {
      importError.textContent = `Import not started: ${error.message} (${error.code ?? "error"})`;
    } finally {
      refresh();
    }
  });

  // One choice per host, kept across refreshes: the hosts list is reloaded every few seconds, and
  // rebuilding the checkboxes would drop the user's focus (and a tick in the middle of a click).
  const choices = new Map(); // host name → {el, box, dot, state}
  const noHosts = h("p", { class: "muted" }, "No lab hosts are registered yet.");

  function choice(host) {
    const id = `host-${host.name.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const box = h("input", { type: "checkbox", id, value: host.name, checked: chosen.has(host.name) });
    box.addEventListener("change", () => {
      hostsTouched = true;
      if (box.checked) chosen.add(host.name);
      else chosen.delete(host.name);
      refresh();
    });
    const state = h("span", { class: "visually-hidden" });
    const dot = h("span", { class: "dot" }, state);
    return { el: h("div", { class: "choice", dataset: { host: host.name } }, box, h("label", { for: id }, host.name), dot), box, dot, state };
  }

  function showHealth(entry, host) {
    const { words, tone } = hostLiveness(host);
    entry.dot.className = `dot ${tone}`;
    if (entry.dot.title !== words) entry.dot.title = words;
    setText(entry.state, words);
  }

  function setHosts(hosts) {
    chosen = chooseHosts(chosen, hosts, hostsTouched);
    const names = new Set(hosts.map((host) => host.name));
    for (const [name, entry] of choices) {
      if (!names.has(name)) {
        entry.el.remove();
        choices.delete(name);
      }
    }
    for (const host of hosts) {
      if (!choices.has(host.name)) choices.set(host.name, choice(host));
      choices.get(host.name).box.checked = chosen.has(host.name);
      showHealth(choices.get(host.name), host);
    }
    // Only a new host, a removed one or a new order touches the list; moving a focused box would
    // blur it, so focus is put back.
    const wanted = hosts.length ? hosts.map((host) => choices.get(host.name).el) : [noHosts];
    const current = [...hostList.children];
    if (wanted.length !== current.length || wanted.some((el, i) => el !== current[i])) {
      const focused = hostList.contains(document.activeElement) ? document.activeElement : null;
      hostList.replaceChildren(...wanted);
      if (focused?.isConnected && document.activeElement !== focused) focused.focus({ preventScroll: true });
    }
    refresh();
  }

  refresh();
  return { setHosts };
}
