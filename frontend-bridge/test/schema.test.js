// The committed JSON Schema is the one the contract package exports today.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const exporter = fileURLToPath(new URL("../../.venv/bin/ferry-contract", import.meta.url));
const committed = fileURLToPath(new URL("../schema/callback.schema.json", import.meta.url));

test("schema/callback.schema.json matches the contract (make schema regenerates it)", { skip: !existsSync(exporter) && "no .venv with ferry-contract (make setup-py)" }, () => {
  const current = execFileSync(exporter, ["callback"], { encoding: "utf8" });
  assert.equal(readFileSync(committed, "utf8"), current);
});
