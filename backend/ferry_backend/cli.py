"""`ferry-backend`: serve, and the admin commands that work on the same database."""

from __future__ import annotations

import asyncio
import logging
import socket

import typer

from .errors import FerryError
from .logs import log_config
from .settings import Settings

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="ferry backend: uploads, dispatch, callbacks, Socket.IO."
)
token_app = typer.Typer(no_args_is_help=True, help="Bearer tokens.")
host_app = typer.Typer(no_args_is_help=True, help="Lab hosts (importers).")
app.add_typer(token_app, name="token")
app.add_typer(host_app, name="host")


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()):
        raise typer.BadParameter("use HOST:PORT, e.g. 127.0.0.1:8000")
    return host.strip("[]") or "127.0.0.1", int(port)


def _settings_help() -> str:
    lines = ["Settings (environment):"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "" if default in (None, [], "") else f" (default: {default})"
        lines.append(f"FERRY_{name.upper()}: {field.description or ''}{shown}")
    return "\n\n".join(lines)


@app.command(epilog=_settings_help())
def serve(listen: str = typer.Option("127.0.0.1:8000", help="HOST:PORT to listen on.")) -> None:
    """Run the backend (migrations run first). Settings come from FERRY_* environment variables."""
    import uvicorn

    from .app import create_app

    host, port = _listen(listen)
    settings = load_settings()
    if settings.public_url is None:
        settings.public_url = f"http://{host if host not in ('0.0.0.0', '::') else '127.0.0.1'}:{port}"
    logging.captureWarnings(True)  # Python warnings become log lines (JSON too), not raw text on stderr
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level,
        lifespan="on",
        log_config=log_config(settings.log_level, settings.log_format, f"{socket.gethostname()}:{port}"),
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise typer.Exit(1)


def load_settings() -> Settings:
    """The settings, or one line per bad FERRY_* variable and exit code 2."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = "FERRY_" + str(error["loc"][0]).upper() if error["loc"] else "FERRY_*"
            typer.echo(f"error: {name}: {error['msg']}", err=True)
        raise typer.Exit(2) from None


async def _with_store(action):
    from . import store as st

    settings = load_settings()
    settings.ensure_dirs()
    store = st.Store.from_url(settings.resolved_database_url)
    try:
        await store.migrate()
        async with store.write() as session:
            return await action(session)
    finally:
        await store.close()


def _run(action):
    try:
        return asyncio.run(_with_store(action))
    except FerryError as exc:
        typer.echo(f"error: {exc.message} ({exc.code})", err=True)
        raise typer.Exit(2) from None


@token_app.command("create")
def token_create(
    role: str = typer.Option(..., help="viewer, operator or admin."),
    name: str = typer.Option("", help="A label to recognise the token by."),
    expires_in: str = typer.Option(None, "--expires-in", help="Lifetime, e.g. 90d, 12h, 30m (default: never expires)."),
) -> None:
    """Print a new bearer token (only its hash is stored: keep the printed value)."""
    from . import store as st
    from .security import Role

    try:
        parsed = Role.parse(role)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    lifetime = _lifetime(expires_in)

    async def action(session):
        from datetime import timedelta

        from .models import utcnow

        expires_at = utcnow() + timedelta(seconds=lifetime) if lifetime else None
        return await st.create_token(session, parsed, name or parsed.name, expires_at)

    _row, secret = _run(action)
    typer.echo(secret)


def _lifetime(text: str | None) -> int | None:
    """`90d`, `12h`, `30m`, `45s` or plain seconds."""
    if not text:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    if not (number.isascii() and number.isdigit()) or int(number) == 0:
        raise typer.BadParameter(f"{text!r} is not a lifetime like 90d, 12h, 30m or 3600")
    return int(number) * units[unit]


@token_app.command("list")
def token_list() -> None:
    """Every token: id, role, name, created, expires, revoked (never a secret)."""
    from . import store as st
    from .views import iso

    async def action(session):
        return [
            (r.id, r.role, r.name, iso(r.created_at), iso(r.expires_at) or "never", iso(r.revoked_at) or "-")
            for r in await st.list_tokens(session)
        ]

    for row in _run(action):
        typer.echo("\t".join(row))


@token_app.command("revoke")
def token_revoke(token_id: str = typer.Argument(..., help="The token's id (tok_…), from `token list`.")) -> None:
    """Refuse the token from now on; running backends disconnect its sockets within their liveness interval."""
    from . import store as st

    async def action(session):
        return (await st.revoke_token(session, token_id)).id

    typer.echo(f"revoked {_run(action)}")


@host_app.command("add")
def host_add(
    name: str = typer.Argument(..., help="The host's name (used in URLs and events)."),
    url: str = typer.Option(..., help="The importer's base URL, e.g. http://lab1:8001."),
    token: str = typer.Option(..., envvar="FERRY_HOST_TOKEN", help="Bearer token of that importer."),
    webhook_secret: str = typer.Option(
        ..., envvar="FERRY_HOST_WEBHOOK_SECRET", help="whsec_… shared with that importer."
    ),
    replace: bool = typer.Option(False, help="Update the host if it exists."),
) -> None:
    """Register an importer so jobs can be sent to it and its callbacks are trusted."""
    from pydantic import ValidationError

    from . import store as st
    from .api.schemas import HostCreate

    try:
        body = HostCreate(name=name, url=url, token=token, webhook_secret=webhook_secret)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise typer.BadParameter(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None

    async def action(session):
        return await st.add_host(session, body.name, body.url, body.token, body.webhook_secret, replace=replace)

    _run(action)
    typer.echo(f"host {name} registered ({url})")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
