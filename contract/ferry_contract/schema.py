"""Export the callback contract as JSON Schema, for the browser client and other consumers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import TypeAdapter

from .events import CALLBACK_ADAPTER, ERROR_CODE_PATTERN, ErrorCode, EventType, JobState, Phase
from .jobs import ImportJobRequest
from .reference import DOMAIN, NAME_MAX, PATH_COMPONENT, REFERENCE_PATTERN, TAG

SCHEMA_ID = "https://ferry.invalid/schemas/callback.json"


def callback_schema() -> dict:
    """The JSON Schema of one callback body, with the reference grammar attached for clients."""
    schema = CALLBACK_ADAPTER.json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "ferry callback"
    schema["x-ferry"] = {
        "event_types": [t.value for t in EventType],
        "states": [s.value for s in JobState],
        "phases": [p.value for p in Phase],
        "error_codes": [c.value for c in ErrorCode],
        "error_code_pattern": ERROR_CODE_PATTERN,
        "reference": {
            "pattern": REFERENCE_PATTERN,
            "path_component": PATH_COMPONENT,
            "domain": DOMAIN,
            "tag": TAG,
            "name_max": NAME_MAX,
        },
    }
    return schema


def import_request_schema() -> dict:
    return TypeAdapter(ImportJobRequest).json_schema()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ferry-contract", description=__doc__)
    parser.add_argument("what", choices=["callback", "import-request"], nargs="?", default="callback")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    schema = callback_schema() if args.what == "callback" else import_request_schema()
    text = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
