"""`ferry-importer`: the command line. `import` streams one archive into the engine at DOCKER_HOST."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated

# httpx imports its own command-line tool (click, rich, pygments) when those are installed; this
# process never runs it, and skipping it saves a noticeable part of every start-up.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import typer  # noqa: E402

from ferry_contract import ArchiveFormat, ErrorCode  # noqa: E402
from ferry_importer.console import BarReporter, human_bytes  # noqa: E402
from ferry_importer.datadir import default_data_dir  # noqa: E402
from ferry_importer.engine.client import Engine, docker_host_from_env  # noqa: E402
from ferry_importer.errors import ImporterError, Interrupted  # noqa: E402
from ferry_importer.pipeline import ImportSpec, Options, run_import  # noqa: E402
from ferry_importer.reporting import EventReporter, JsonLinesReporter  # noqa: E402
from ferry_importer.sources.base import LocalFileSource  # noqa: E402

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="ferry's importer: streams image archives into Docker."
)

EXIT_FAILED = 1
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


@app.callback()
def _root() -> None:
    """ferry's importer: streams image archives into Docker with truthful progress."""


@app.command("import")
def import_command(
    archive: Annotated[
        Path, typer.Argument(help="The archive: plain tar, .tar.xz, .tar.gz/.tgz, .tar.zst or .tar.bz2.")
    ],
    image: Annotated[
        str | None,
        typer.Option(
            "--image", "-i", help="Target REPO[:TAG] (required for rootfs archives; added to a loaded image)."
        ),
    ] = None,
    format: Annotated[
        ArchiveFormat, typer.Option("--format", help="auto: load docker-save archives, import rootfs tarballs.")
    ] = ArchiveFormat.AUTO,
    change: Annotated[
        list[str] | None, typer.Option("--change", "-c", help="Dockerfile line for imports (CMD, ENV, …); repeatable.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Import even when the same archive already produced the image.")
    ] = False,
    json_lines: Annotated[
        bool, typer.Option("--json", help="Print one JSON event per line on stdout instead of a progress bar.")
    ] = False,
    sha256: Annotated[
        str | None,
        typer.Option("--sha256", help="Expected sha256 of the archive; a mismatch fails before the engine commits."),
    ] = None,
    stall_timeout: Annotated[
        float,
        typer.Option(
            "--stall-timeout",
            min=1,
            help="Abort when the engine takes no bytes and says nothing for this many seconds.",
        ),
    ] = 300.0,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", envvar="FERRY_IMPORTER_DATA_DIR", help="Where the fast-path index lives."),
    ] = None,
) -> None:
    """Import ARCHIVE into the Docker engine at DOCKER_HOST; exit 0 only when the image is verified present."""
    reporter: EventReporter = JsonLinesReporter(sys.stdout) if json_lines else BarReporter()
    spec = ImportSpec(image=image, format=format, changes=list(change or []), force=force, expected_sha256=sha256)
    options = Options(data_dir=data_dir or default_data_dir(), stall_timeout=stall_timeout)
    code = asyncio.run(_import(archive, spec, options, reporter))
    raise typer.Exit(code)


async def _import(archive: Path, spec: ImportSpec, options: Options, reporter: EventReporter) -> int:
    task = asyncio.current_task()
    received: list[signal.Signals] = []
    loop = asyncio.get_running_loop()

    def on_signal(signum: signal.Signals) -> None:
        received.append(signum)
        if task is not None:
            task.cancel()  # a second signal also interrupts the bounded wait for the engine's cleanup

    for signum in EXIT_SIGNAL:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        return await _run(archive, spec, options, reporter)
    except asyncio.CancelledError:
        signum = received[0] if received else signal.SIGINT
        error = Interrupted(f"interrupted by {signum.name}: the import was aborted and nothing was left behind")
        await reporter.canceled(error.info())
        _say(reporter, f"canceled: {error.message}")
        return EXIT_SIGNAL[signum]
    finally:
        for signum in EXIT_SIGNAL:
            loop.remove_signal_handler(signum)


async def _run(archive: Path, spec: ImportSpec, options: Options, reporter: EventReporter) -> int:
    try:
        source = LocalFileSource(archive)
        async with Engine(docker_host_from_env()) as engine:
            image = await run_import(spec, source, engine=engine, reporter=reporter, options=options)
    except ImporterError as exc:
        if not reporter.terminal_sent:  # failed before the pipeline started (e.g. a missing file)
            await reporter.failed(reporter.last_snapshot or _empty(), exc.info())
        _say(reporter, f"error [{ErrorCode(exc.code).value}]: {exc.message}")
        return EXIT_FAILED
    verb = "already present" if image.already_present else "imported"
    _say(reporter, f"{verb}: {image.ref} ({image.id[:19]}, {human_bytes(image.size)})")
    return 0


def _empty():
    from ferry_importer.progress import Snapshot

    return Snapshot(phase="preparing", bytes_done=0, bytes_total=None, percent=0.0)


def _say(reporter: EventReporter, line: str) -> None:
    """The one closing line for people: stderr with --json (stdout stays pure JSON), stdout otherwise."""
    stream = sys.stderr if isinstance(reporter, JsonLinesReporter) else sys.stdout
    print(line, file=stream, flush=True)


def register_service_commands() -> None:
    """Add `serve` and `outbox` (defined in ferry_importer.cli_serve, which knows nothing of this app)."""
    from ferry_importer import cli_serve

    app.command("serve", help=cli_serve.SERVE_HELP)(cli_serve.serve)
    app.add_typer(cli_serve.outbox_app, name="outbox")


def main() -> None:
    # `import` is the one command that runs on every image: it starts without loading the service's
    # settings and database modules. Every other invocation (including --help) sees all commands.
    if sys.argv[1:2] != ["import"]:
        register_service_commands()
    app(prog_name="ferry-importer")


if __name__ == "__main__":
    main()
