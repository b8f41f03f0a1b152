// The browser's image-reference check agrees with the importer's on every shared case.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { FerryError } from "../src/errors.js";
import { checkReference, parseReference, suggestReference } from "../src/reference.js";

const CASES = JSON.parse(readFileSync(new URL("../../contract/tests/reference_cases.json", import.meta.url), "utf8"));

test("the shared cases file has both kinds of case", () => {
  assert.ok(CASES.valid.length >= 5 && CASES.invalid.length >= 5);
});

for (const [text, repository, tag] of CASES.valid) {
  test(`valid reference ${JSON.stringify(text).slice(0, 40)} splits into repository and tag`, () => {
    assert.deepEqual(checkReference(text), { ok: true, repository, tag });
  });
}

for (const text of CASES.invalid) {
  test(`invalid reference ${JSON.stringify(text).slice(0, 40)} is refused with a reason`, () => {
    const verdict = checkReference(text);
    assert.equal(verdict.ok, false);
    assert.ok(verdict.message.length > 10);
  });
}

test("an uppercase repository is reported as a case problem", () => {
  assert.match(checkReference("Arista/ceos:4.35.1F").message, /must be lowercase/);
});

test("a repository longer than 255 characters is refused", () => {
  assert.match(checkReference(Array(30).fill("abcdefghij").join("/")).message, /255/);
});

test("each kind of mistake names the part that is wrong", () => {
  assert.match(checkReference("ceos:-x").message, /^tag '-x'/);
  assert.match(checkReference("reg-.lab/ceos").message, /^registry 'reg-.lab'/);
  assert.match(checkReference("ceos@sha256:abc").message, /digest/);
  assert.match(checkReference("ceos\n").message, /'ceos\\n' contains whitespace/);
  assert.equal(checkReference("").message, "image name is empty");
});

test("parseReference throws a FerryError with code invalid_reference", () => {
  assert.deepEqual(parseReference("ceos"), { repository: "ceos", tag: "latest" });
  assert.throws(() => parseReference("Bad Name"), (error) => error instanceof FerryError && error.code === "invalid_reference");
});

test("a valid reference is suggested from an archive's file name", () => {
  assert.equal(suggestReference("cEOS-lab-4.35.1F.tar.xz"), "ceos-lab:4.35.1F");
  assert.equal(suggestReference("C:\\images\\srlinux_24.10.1.tar"), "srlinux:24.10.1");
  assert.equal(suggestReference("frr-v9.1.tar.gz"), "frr:9.1");
  assert.equal(suggestReference("Vendor Image.tgz"), "vendor-image");
  assert.equal(suggestReference("...tar"), "");
  for (const name of ["x.tar.xz", "a b c 1.2.tar", "UP--PER__.tar", "img-.-1.tar"]) {
    const suggestion = suggestReference(name);
    assert.ok(suggestion === "" || checkReference(suggestion).ok, `${name} → ${suggestion}`);
  }
});
