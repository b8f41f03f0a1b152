"""`ferry`: the operator command line. Commands are thin: they parse options and call the modules.

Heavy imports (httpx, python-socketio, tuspy, the contract) happen inside the commands, so `ferry
--help` and each command start quickly on a busy host.
"""

from __future__ import annotations

import functools
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import errors
from .formatting import printable

app = typer.Typer(
    name="ferry",
    help="Upload and import container images on lab hosts, watch jobs, inspect, replay and simulate callbacks.\n\n"
    "Configured by FERRY_URL and FERRY_TOKEN (or --url/--token). Exit codes: 0 ok, 1 a job or delivery failed, "
    "2 usage or bad input file, 3 backend unreachable, 4 unauthorized, 5 forbidden, 6 not found, 7 refused, "
    "130 interrupted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

DEFAULT_URL = "http://127.0.0.1:8000"
Url = Annotated[str, typer.Option("--url", envvar="FERRY_URL", metavar="URL", help="Backend URL.")]
Token = Annotated[
    Optional[str],
    typer.Option(
        "--token",
        envvar="FERRY_TOKEN",
        show_default=False,
        metavar="TOKEN",
        help="Bearer token (viewer to watch, operator to import).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
Speed = Annotated[
    str, typer.Option("--speed", metavar="1|10|max", help="1 = original pace, 10 = ten times faster, max = no waiting.")
]
Secret = Annotated[
    Optional[str],
    typer.Option("--secret", show_default=False, metavar="WHSEC", help="The host's webhook secret (whsec_…)."),
]
SecretFile = Annotated[
    Optional[Path],
    typer.Option(
        "--host-secret-from",
        show_default=False,
        dir_okay=False,
        metavar="FILE",
        help="A file holding the host's whsec_ secret (bare, env or JSON).",
    ),
]


class Format(str, Enum):
    auto = "auto"
    load = "load"
    import_ = "import"


class State(str, Enum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"


def handled(command):
    """Every CliError becomes one line on stderr and its exit code; Ctrl-C exits 130."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except errors.CliError as exc:
            print(printable(exc.line()), file=sys.stderr, flush=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            print("ferry: interrupted", file=sys.stderr, flush=True)
            raise typer.Exit(errors.EXIT_INTERRUPTED) from None

    return run


@app.command("import")
@handled
def import_(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, metavar="FILE", help="The image archive.")
    ],
    host: Annotated[
        list[str], typer.Option("--host", metavar="HOST", help="A lab host to import on (repeat for several).")
    ],
    image: Annotated[
        Optional[str],
        typer.Option(
            "--image",
            metavar="REF",
            help="The reference to tag, e.g. ceos:4.35.1F. Needed for filesystem archives; a docker save keeps its "
            "own tags without one.",
        ),
    ] = None,
    format: Annotated[Format, typer.Option("--format", help="Archive kind; auto detects it.")] = Format.auto,
    change: Annotated[
        Optional[list[str]],
        typer.Option("--change", metavar="LINE", help="A Dockerfile line for plain rootfs imports (repeatable)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing tag.")] = False,
    timeout: Annotated[
        Optional[float], typer.Option("--timeout", metavar="SECONDS", help="Give up following after this many seconds.")
    ] = None,
    cancel_on_interrupt: Annotated[
        Optional[bool],
        typer.Option(
            "--cancel-on-interrupt/--keep-on-interrupt",
            show_default=False,
            help="On Ctrl-C cancel the jobs, or leave them running (default: ask on a terminal, else keep).",
        ),
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
    json_: Json = False,
) -> None:
    """Upload FILE (resumable), import it on every --host, and follow each job live. Exit 0 only if all succeeded."""
    from .commands_import import run_import

    run_import(
        file,
        hosts=host,
        image=image,
        format=format.value,
        changes=change or [],
        force=force,
        timeout=timeout,
        url=url,
        token=token,
        as_json=json_,
        cancel_on_interrupt=cancel_on_interrupt,
    )


@app.command()
@handled
def cancel(
    job: Annotated[list[str], typer.Argument(metavar="JOB...", help="One or more job ids.")],
    wait: Annotated[
        float, typer.Option("--wait", min=0, metavar="SECONDS", help="How long to wait for each job to end.")
    ] = 30.0,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Cancel jobs (the engine request is aborted, nothing is left) and wait until they ended. Exit 0 if all did."""
    from .commands_cancel import run_cancel
    from .console import stdout

    run_cancel(job, wait_s=wait, url=url, token=token, out=stdout())


@app.command()
@handled
def watch(
    job: Annotated[list[str], typer.Argument(metavar="JOB...", help="One or more job ids.")],
    timeout: Annotated[
        Optional[float], typer.Option("--timeout", metavar="SECONDS", help="Give up after this many seconds.")
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
    json_: Json = False,
) -> None:
    """Follow jobs live until they end (their whole history first). Exit 0 only if all succeeded."""
    from .commands_import import run_watch

    run_watch(job, timeout=timeout, url=url, token=token, as_json=json_)


@app.command()
@handled
def jobs(
    state: Annotated[Optional[State], typer.Option("--state", help="Only jobs in this state.")] = None,
    host: Annotated[Optional[str], typer.Option("--host", metavar="HOST", help="Only jobs of this host.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, metavar="N", help="At most this many (newest first).")
    ] = 50,
    url: Url = DEFAULT_URL,
    token: Token = None,
    json_: Json = False,
) -> None:
    """List import jobs, newest first."""
    from .commands_list import run_jobs

    run_jobs(state=state.value if state else None, host=host, limit=limit, url=url, token=token, as_json=json_)


@app.command()
@handled
def hosts(url: Url = DEFAULT_URL, token: Token = None, json_: Json = False) -> None:
    """List lab hosts: liveness, free disk, running and queued jobs."""
    from .commands_list import run_hosts

    run_hosts(url=url, token=token, as_json=json_)


@app.command()
@handled
def images(url: Url = DEFAULT_URL, token: Token = None, json_: Json = False) -> None:
    """List the images on every lab host."""
    from .commands_list import run_images

    run_images(url=url, token=token, as_json=json_)


@app.command()
@handled
def events(
    job: Annotated[str, typer.Argument(metavar="JOB", help="The job id.")],
    export: Annotated[
        Optional[Path],
        typer.Option(
            "--export",
            dir_okay=False,
            metavar="FILE.jsonl",
            help="Write the deliveries as JSON lines to this file ('-' for stdout).",
        ),
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
    json_: Json = False,
) -> None:
    """The callbacks a job's host delivered: seq, type, webhook-id, when, verdict, delay since the one before."""
    from .commands_list import run_events

    run_events(job, export=export, url=url, token=token, as_json=json_)


@app.command()
@handled
def replay(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            metavar="FILE.jsonl",
            help="A capture from `ferry events --export`.",
        ),
    ],
    to: Annotated[str, typer.Option("--to", metavar="URL", help="The backend to deliver to (its URL).")],
    secret: Secret = None,
    host_secret_from: SecretFile = None,
    speed: Speed = "1",
    from_seq: Annotated[
        Optional[int], typer.Option("--from-seq", min=0, metavar="N", help="Only deliveries with seq >= N.")
    ] = None,
    job_id: Annotated[
        Optional[str], typer.Option("--job-id", metavar="NEW", help="Rewrite the job id (fresh webhook-ids).")
    ] = None,
    as_host: Annotated[
        Optional[str], typer.Option("--as-host", metavar="HOST", help="Deliver as this host (rewrites data.host).")
    ] = None,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="Go on after a refused signature.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="A line per delivery.")] = False,
    json_: Json = False,
) -> None:
    """Re-sign a capture's deliveries with fresh timestamps and POST them in captured order, original gaps / speed."""
    from .commands_callbacks import run_replay_command

    run_replay_command(
        file,
        to=to,
        secret=secret,
        secret_file=host_secret_from,
        speed=speed,
        from_seq=from_seq,
        job_id=job_id,
        as_host=as_host,
        keep_going=keep_going,
        verbose=verbose,
        as_json=json_,
    )


@app.command()
@handled
def simulate(
    to: Annotated[str, typer.Option("--to", metavar="URL", help="The backend to deliver to (its URL).")],
    host: Annotated[str, typer.Option("--host", metavar="HOST", help="The registered host to speak as.")],
    secret: Secret = None,
    host_secret_from: SecretFile = None,
    job_id: Annotated[Optional[str], typer.Option("--job-id", metavar="JOB", help="Default: sim-<random>.")] = None,
    fail: Annotated[
        Optional[str],
        typer.Option("--fail", metavar="CODE", help="End failed with this error code, in its real phase."),
    ] = None,
    speed: Speed = "1",
    image: Annotated[
        str, typer.Option("--image", metavar="REF", help="The reference the simulated import tags.")
    ] = "lab/simulated:1",
    size: Annotated[
        int, typer.Option("--size", min=1, metavar="BYTES", help="Archive bytes to pretend to import.")
    ] = 600_000_000,
    seed: Annotated[
        Optional[int], typer.Option("--seed", metavar="N", help="Repeat the same run (rates, finalizing stretch).")
    ] = None,
    layers: Annotated[
        int,
        typer.Option("--layers", min=0, max=1000, metavar="N", help="A docker-save load of N layers (phase loading)."),
    ] = 0,
    json_: Json = False,
) -> None:
    """A realistic synthetic import as signed callbacks (queued … finalizing … completed or failed), for UI work."""
    from .commands_callbacks import run_simulate_command

    run_simulate_command(
        to=to,
        host=host,
        secret=secret,
        secret_file=host_secret_from,
        job_id=job_id,
        fail=fail,
        speed=speed,
        image=image,
        size=size,
        seed=seed,
        as_json=json_,
        layers=layers,
    )
