// Payload checks against the callback contract, with a validator compiled at build time from the
// JSON Schema (see scripts/generate.mjs): the browser never trusts a payload's shape blindly.
import validators from "./generated/callback-validator.cjs";

const IMPORT_TYPES = new Set([
  "import.queued",
  "import.progress",
  "import.completed",
  "import.failed",
  "import.canceled",
]);

// The pairs ferry_contract.events.make_import_event enforces (the JSON Schema cannot express them).
const STATES_FOR_TYPE = {
  "import.queued": ["queued"],
  "import.progress": ["running", "queued"],
  "import.completed": ["succeeded"],
  "import.failed": ["failed"],
  "import.canceled": ["canceled"],
};

/**
 * Check one import event as it arrives: `{type, data}` from a socket (type = event name) or a
 * stored event from the REST log (which also has `timestamp`).
 * @returns {{ok: true} | {ok: false, message: string}}
 */
export function checkImportEvent(type, data, timestamp) {
  if (!IMPORT_TYPES.has(type)) return { ok: false, message: `unknown event type ${JSON.stringify(type)}` };
  const body = timestamp === undefined || timestamp === null ? { type, data } : { type, timestamp, data };
  if (!validators.validateCallback(body)) {
    return { ok: false, message: describe(validators.validateCallback.errors) };
  }
  if (!STATES_FOR_TYPE[type].includes(data.state)) {
    return { ok: false, message: `${type} cannot carry state ${data.state}` };
  }
  if (type === "import.completed" && !data.image) return { ok: false, message: "import.completed needs image" };
  if (type === "import.failed" && !data.error) return { ok: false, message: "import.failed needs error" };
  return { ok: true };
}

/** Check just the `data` of an import event (no type). */
export function checkEventData(data) {
  if (validators.validateEventData(data)) return { ok: true };
  return { ok: false, message: describe(validators.validateEventData.errors) };
}

export function isImportType(type) {
  return IMPORT_TYPES.has(type);
}

function describe(errors) {
  if (!errors || errors.length === 0) return "payload does not match the callback contract";
  // oneOf failures report every branch; the deepest error names the field that is wrong.
  const deepest = [...errors].sort((a, b) => b.instancePath.length - a.instancePath.length)[0];
  const where = deepest.instancePath || "(payload)";
  const extra = deepest.params?.additionalProperty ? ` '${deepest.params.additionalProperty}'` : "";
  return `${where} ${deepest.message}${extra}`;
}
