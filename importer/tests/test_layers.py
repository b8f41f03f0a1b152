"""The importer's wings keep their layers: every import follows the table in ARCHITECTURE.md."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ferry_importer"
CORE = {"errors", "settings", "database", "job_store", "logs", "metrics", "datadir"}
PIPELINE = {
    "pipeline",
    "preflight",
    "reporting",
    "job_reporter",
    "progress",
    "pace",
    "job_spec",
    "cancel_cleanup",
    "load_share",
    "load_watch",
}
WINGS = {"sources", "archive", "engine", "callbacks"}
# What each place may import besides itself and the core; the package root (`__init__`, the public names) is an
# entry point.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "sources": set(),
    "archive": {"sources.base"},
    "engine": {"archive"},
    "callbacks": {"engine.client"},
    "pipeline": WINGS | PIPELINE,
    "service": WINGS | PIPELINE,
    "entry": WINGS | PIPELINE | {"service", "http", "cli", "cli_serve", "console"},
}


def place_of(module: str) -> str:
    """The layer a module (dotted, below ferry_importer) belongs to."""
    top = module.split(".")[0]
    if top in CORE:
        return "core"
    if top in WINGS:
        return top
    if top in PIPELINE:
        return "pipeline"
    if top == "service":
        return "service"
    return "entry"


def imported_modules(path: Path) -> set[str]:
    """The ferry_importer modules a file imports, dotted below the package."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ferry_importer"):
            base = node.module.removeprefix("ferry_importer").lstrip(".")
            if base:
                found.add(base)
            else:  # from ferry_importer import job_store, metrics
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("ferry_importer.") for a in node.names if a.name.startswith("ferry_importer.")
            )
    return found


def allows(importer_place: str, target: str) -> bool:
    target_place = place_of(target)
    if target_place in {"core", importer_place}:
        return True
    allowed = ALLOWED[importer_place]
    return any(target == rule or target.startswith(rule + ".") or target_place == rule for rule in allowed)


def test_every_module_imports_only_what_its_layer_allows():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        for target in sorted(imported_modules(path)):
            if not allows(place_of(module), target):
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the layers in ARCHITECTURE.md:\n" + "\n".join(wrong)


def test_the_rule_catches_an_arrow_upwards():
    assert not allows("engine", "pipeline") and not allows("sources", "archive.reader")
    assert not allows("callbacks", "engine.transfer") and not allows("core", "engine.client")
    assert allows("archive", "sources.base") and allows("entry", "service")
