// How the deliveries list reads: a long import sends dozens of progress callbacks in a row, all
// applied; they fold into one row ("progress applied ×40, seq 3–42") that opens on demand, so the
// retries, refusals and the final event stand out. Pure: the panel renders what this returns.

export const MIN_RUN = 3; // shorter runs are shown one by one

/** Whether a delivery may fold into a run: a plain progress callback, applied once, never repeated. */
function foldable(d) {
  return d.type === "import.progress" && d.verdict === "applied" && !d.duplicates;
}

/**
 * Deliveries (in arrival order) as entries: {kind: "one", delivery, index} or
 * {kind: "run", deliveries, first, count, type, verdict, seqFrom, seqTo, from, to} for MIN_RUN or
 * more consecutive foldable ones. `index` / `first` is the position in the original list.
 */
export function groupDeliveries(deliveries, minRun = MIN_RUN) {
  const entries = [];
  let run = [];
  const flush = () => {
    if (run.length >= minRun) {
      const seqs = run.map(({ delivery }) => delivery.seq).filter(Number.isFinite);
      entries.push({
        kind: "run",
        deliveries: run.map(({ delivery }) => delivery),
        first: run[0].index,
        count: run.length,
        type: run[0].delivery.type,
        verdict: run[0].delivery.verdict,
        seqFrom: seqs.length ? Math.min(...seqs) : null,
        seqTo: seqs.length ? Math.max(...seqs) : null,
        from: run[0].delivery.received_at,
        to: run.at(-1).delivery.received_at,
      });
    } else {
      for (const item of run) entries.push({ kind: "one", ...item });
    }
    run = [];
  };
  deliveries.forEach((delivery, index) => {
    if (foldable(delivery)) run.push({ delivery, index });
    else {
      flush();
      entries.push({ kind: "one", delivery, index });
    }
  });
  flush();
  return entries;
}

/** "progress applied ×40, seq 3–42" */
export function runLabel(run) {
  const type = String(run.type ?? "").replace(/^import\./, "");
  const seqs = run.seqFrom === null ? "" : run.seqFrom === run.seqTo ? `, seq ${run.seqFrom}` : `, seq ${run.seqFrom}–${run.seqTo}`;
  return `${type} ${run.verdict} ×${run.count}${seqs}`;
}

/** A JSON text pretty-printed for reading; anything else as it came. */
export function prettyJson(text) {
  if (typeof text !== "string") return text === undefined || text === null ? "" : JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** Headers one per line, "name: value", in the order received. */
export function headerLines(headers) {
  return Object.entries(headers ?? {})
    .map(([name, value]) => `${name}: ${value}`)
    .join("\n");
}
