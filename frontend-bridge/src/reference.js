// Image reference check for the browser, with the importer's rules.
//
// The patterns come from the contract's JSON Schema (generated into ./generated/contract.js), and
// the order of checks and the wording follow ferry_contract/reference.py, so a name refused here
// is refused there and the reason reads the same. contract/tests/reference_cases.json holds the
// cases both implementations are tested against.
import { CONTRACT } from "./generated/contract.js";
import { FerryError } from "./errors.js";

const RULES = CONTRACT.reference;
const full = (pattern) => new RegExp(`^(?:${pattern})$`);
const TAG_RE = full(RULES.tag);
const PATH_RE = full(`${RULES.path_component}(?:/${RULES.path_component})*`);
const DOMAIN_RE = full(RULES.domain);
const SPACE_RE = /\s/u;

const ESCAPES = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
const quote = (text) => `'${text.replace(/[\n\r\t]/g, (ch) => ESCAPES[ch])}'`;

/**
 * Check `[registry[:port]/]repo[:tag]`.
 * @returns {{ok: true, repository: string, tag: string} | {ok: false, message: string}}
 */
export function checkReference(text, defaultTag = "latest") {
  if (typeof text !== "string" || text.trim() === "") return refuse("image name is empty");
  if (text !== text.trim() || SPACE_RE.test(text)) {
    return refuse(`image name ${quote(text)} contains whitespace`);
  }
  if (text.includes("@")) return refuse(`image name ${quote(text)} has a digest; give a tag instead`);
  const [repository, tag] = splitTag(text);
  if (tag !== null && !TAG_RE.test(tag)) {
    return refuse(
      `tag ${quote(tag)} is invalid: use letters, digits, '_', '.', '-' (not first), at most 128 characters`,
    );
  }
  const [domain, path] = splitDomain(repository);
  if (domain !== null && !DOMAIN_RE.test(domain)) {
    return refuse(`registry ${quote(domain)} is not a valid host[:port]`);
  }
  if (!PATH_RE.test(path)) {
    if (path.toLowerCase() !== path) return refuse(`repository ${quote(path)} must be lowercase`);
    return refuse(
      `repository ${quote(path)} is invalid: use lowercase letters, digits and single separators (. _ __ -) between them`,
    );
  }
  if (repository.length > RULES.name_max) {
    return refuse(`repository name is longer than ${RULES.name_max} characters`);
  }
  return { ok: true, repository, tag: tag || defaultTag };
}

/** Like checkReference, but throws FerryError("invalid_reference") instead of returning a verdict. */
export function parseReference(text, defaultTag = "latest") {
  const verdict = checkReference(text, defaultTag);
  if (!verdict.ok) throw new FerryError("invalid_reference", verdict.message);
  return { repository: verdict.repository, tag: verdict.tag };
}

/**
 * A valid reference to offer for an uploaded file name, or "" when none can be derived:
 * "cEOS-lab-4.35.1F.tar.xz" → "ceos-lab:4.35.1F".
 */
export function suggestReference(filename) {
  const base = String(filename ?? "")
    .split(/[\\/]/)
    .pop()
    .replace(/\.(tar\.(xz|gz|bz2|zst)|tgz|txz|tar|xz|gz|zst)$/i, "");
  const match = /^(.*?)[-_:]v?(\d[A-Za-z0-9_.-]*)$/.exec(base);
  const [name, version] = match ? [match[1], match[2]] : [base, ""];
  const repository = name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/([._-])[._-]+/g, "$1")
    .replace(/^[._-]+|[._-]+$/g, "");
  if (!repository) return "";
  const candidate = version ? `${repository}:${version}` : repository;
  return checkReference(candidate).ok ? candidate : checkReference(repository).ok ? repository : "";
}

function refuse(message) {
  return { ok: false, message };
}

function splitTag(text) {
  const slash = text.lastIndexOf("/");
  const colon = text.lastIndexOf(":");
  if (colon > slash) return [text.slice(0, colon), text.slice(colon + 1)];
  return [text, null];
}

function splitDomain(repository) {
  const index = repository.indexOf("/");
  if (index < 0) return [null, repository];
  const first = repository.slice(0, index);
  if (first.includes(".") || first.includes(":") || first === "localhost" || first.startsWith("[")) {
    return [first, repository.slice(index + 1)];
  }
  return [null, repository];
}
