// Simulated imports for the preview: realistic phases, changing rates, a finalizing stretch with
// no byte progress (or, for a docker-save archive, the engine loading its layers), and optional
// failure — the shapes the real importer reports.

const GiB = 1024 ** 3;

/** Drive one job of the stand-in backend from queued to its end. */
export function simulateImport(backend, job, { fail = false, present = false, speed = 1, total = Math.round(2.6 * GiB), finalizeS = 9, layers = 0 } = {}) {
  let seq = 0;
  let done = 0;
  // A docker-save archive (`layers` > 0): after the last byte the engine loads its layers, which
  // takes `loadShare` of the bar; the layer bytes are about the archive's size.
  const loadShare = layers ? 0.55 : 0;
  const layerTotal = total;
  let loaded = 0;
  let phaseStart = Date.now();
  let phase = "queued";
  const base = { job_id: job.id, host: job.host };
  const emit = (type, fields) => {
    seq += 1;
    backend.publish(job.id, type, { ...base, seq, bytes_total: total, rate_bps: null, eta_s: null, phase_elapsed_s: null, queue_position: null, image: null, error: null, ...fields });
  };
  const enter = (next) => {
    phase = next;
    phaseStart = Date.now();
  };
  emit("import.queued", { state: "queued", phase: "queued", percent: 0, bytes_done: 0, queue_position: 1 });
  const tickMs = 500 / speed;
  const timer = setInterval(() => {
    const elapsed = (Date.now() - phaseStart) / 1000;
    if (job.cancelRequested) {
      clearInterval(timer);
      return emit("import.canceled", { state: "canceled", phase, percent: (done / total) * 100, bytes_done: done });
    }
    if (phase === "queued") {
      enter("preparing");
      return emit("import.progress", { state: "running", phase: "preparing", percent: 0, bytes_done: 0 });
    }
    if (phase === "preparing" && present) {
      // The same archive was imported before: the importer sends nothing and says so.
      clearInterval(timer);
      const image = { ref: job.image, id: `sha256:${"5a".repeat(32)}`, size: Math.round(total * 1.04), tags: [job.image], already_present: true };
      return emit("import.completed", { state: "succeeded", phase: "done", percent: 100, bytes_done: 0, image });
    }
    if (phase === "preparing") {
      enter("importing");
      return;
    }
    if (phase === "importing") {
      const rate = (90 + 60 * Math.sin(Date.now() / 2500)) * 1024 * 1024 * speed;
      done = Math.min(total, done + Math.round((rate * tickMs) / 1000));
      const percent = (done / total) * 100 * (1 - loadShare);
      if (fail && percent > 40) {
        clearInterval(timer);
        return emit("import.failed", {
          state: "failed", phase: "importing", percent, bytes_done: done,
          error: { code: "corrupt_compression", message: `the xz stream is corrupt at byte ${done}`, detail: "lzma: Compressed data is corrupt" },
        });
      }
      emit("import.progress", { state: "running", phase: "importing", percent, bytes_done: done, rate_bps: rate, eta_s: (total - done) / rate });
      if (done >= total) enter(layers ? "loading" : "finalizing");
      return;
    }
    if (phase === "loading") {
      const rate = 60 * 1024 * 1024 * speed;
      loaded = Math.min(layerTotal, loaded + Math.round((rate * tickMs) / 1000));
      const percent = Math.min(99, 100 * (1 - loadShare) + 100 * loadShare * (loaded / layerTotal));
      const layersDone = Math.floor((layers * loaded) / layerTotal);
      emit("import.progress", {
        state: "running", phase: "loading", percent, bytes_done: total, rate_bps: rate, eta_s: (layerTotal - loaded) / rate,
        layers_done: layersDone, layers_total: layers, layer_bytes_done: loaded, layer_bytes_total: layerTotal,
      });
      if (loaded >= layerTotal) enter("verifying");
      return;
    }
    if (phase === "finalizing") {
      if (elapsed * speed < finalizeS) {
        emit("import.progress", { state: "running", phase: "finalizing", percent: 100, bytes_done: total, phase_elapsed_s: elapsed });
        return;
      }
      enter("verifying");
      return emit("import.progress", { state: "running", phase: "verifying", percent: 100, bytes_done: total, phase_elapsed_s: 0 });
    }
    clearInterval(timer);
    const id = "sha256:" + Buffer.from(job.id + job.host).toString("hex").padEnd(64, "7").slice(0, 64);
    const image = { ref: job.image, id, size: Math.round(total * 1.04), tags: [job.image] };
    emit("import.completed", { state: "succeeded", phase: "done", percent: 100, bytes_done: total, image });
    const group = backend.images.find((g) => g.host === job.host);
    group?.images.unshift({ tags: [job.image], id, size: image.size, created: new Date().toISOString(), archive_sha256: null });
  }, tickMs);
}

/** A few finished jobs and one still running, so a fresh preview has something to show. */
export function seedHistory(backend, { speed = 1 } = {}) {
  const hour = 3600_000;
  const finished = backend.addJob({ image: "srlinux:24.10.1", host: "lab2", created_at: new Date(Date.now() - 5 * hour).toISOString(), bytes_total: 1.1 * GiB });
  [
    ["import.queued", { state: "queued", phase: "queued", percent: 0, bytes_done: 0, queue_position: 1 }],
    ["import.progress", { state: "running", phase: "importing", percent: 50, bytes_done: 0.55 * GiB, rate_bps: 80 * 1024 ** 2, eta_s: 7 }],
    ["import.progress", { state: "running", phase: "finalizing", percent: 100, bytes_done: 1.1 * GiB, phase_elapsed_s: 4 }],
    ["import.completed", { state: "succeeded", phase: "done", percent: 100, bytes_done: 1.1 * GiB, image: { ref: "srlinux:24.10.1", id: "sha256:" + "4e".repeat(32), size: 1.2 * GiB, tags: ["srlinux:24.10.1"] } }],
  ].forEach(([type, fields], i) => backend.publish(finished.id, type, { job_id: finished.id, host: "lab2", seq: i + 1, bytes_total: Math.round(1.1 * GiB), ...fields, bytes_done: Math.round(fields.bytes_done), image: fields.image ? { ...fields.image, size: Math.round(fields.image.size) } : null }));
  backend.images.find((g) => g.host === "lab2")?.images.push({ tags: ["srlinux:24.10.1"], id: "sha256:" + "4e".repeat(32), size: Math.round(1.2 * GiB), created: new Date(Date.now() - 5 * hour).toISOString(), archive_sha256: null });

  const failed = backend.addJob({ image: "ceos:4.34.0F", host: "lab1", created_at: new Date(Date.now() - 2 * hour).toISOString() });
  backend.publish(failed.id, "import.queued", { job_id: failed.id, host: "lab1", seq: 1, state: "queued", phase: "queued", percent: 0, bytes_done: 0 });
  backend.publish(failed.id, "import.failed", {
    job_id: failed.id, host: "lab1", seq: 2, state: "failed", phase: "importing", percent: 12.5, bytes_done: 75_000_000, bytes_total: 600_000_000,
    error: { code: "insufficient_disk", message: "lab1 has 1.2 GiB free under /var/lib/docker, the image needs about 2.6 GiB", detail: null },
  });

  const running = backend.addJob({ image: "ceos:4.35.1F", host: "lab1", created_at: new Date(Date.now() - 60_000).toISOString() });
  simulateImport(backend, running, { speed, total: Math.round(2.6 * GiB) });
}
