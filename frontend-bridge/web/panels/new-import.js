// "New import": pick or drop an archive (uploaded at once, resumably), choose hosts and the image
// name (checked as you type, with the importer's rules), then Import.
import { checkArchiveFile } from "../../src/archive.js";
import { suggestReference } from "../../src/reference.js";
import { announce, fill, h, setText } from "../dom.js";
import { formatBytes, formatBytesOf, hostLiveness } from "../format.js";
import { newImportForm } from "./new-import-form.js";
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

  const { fileInput, dropzone, uploadBar, uploadName, uploadStats, cancelUpload, resumeUpload, resumeNote, uploadBox, storedNote, hostList, imageInput, imageError, formatSelect, force, importButton, importHint, importError, form } = newImportForm();
  fill(root, title, form);

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
