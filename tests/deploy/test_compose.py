"""The deployment files agree with the code: compose env names are real settings, nginx accepts its config.

The stack itself runs in test_stack.py; these checks are quick and catch what usually breaks a
deployment silently: a misspelt setting (pydantic ignores unknown
variables), a proxy timeout below the Socket.IO ping, a replica missing from the proxy, a COPY of a
path that does not exist.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import socketio
import typer.main
import yaml

from ferry_backend import cli as backend_cli
from ferry_backend.settings import Settings as BackendSettings
from ferry_importer.settings import ENV_PREFIX as IMPORTER_PREFIX
from ferry_importer.settings import ImporterSettings
from tests.scale.servers import NginxServer, Unavailable

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DEPLOY = REPO / "deploy"
FERRY_CONF = DEPLOY / "nginx" / "ferry.conf"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _role(service: dict) -> str | None:
    """Which ferry program a service runs, from its image or Dockerfile."""
    build = service.get("build") or {}
    text = f"{service.get('image', '')} {build.get('dockerfile', '') if isinstance(build, dict) else build}"
    for role in ("backend", "importer", "nginx"):
        if role in text:
            return role
    return None


def _backend_names() -> set[str]:
    names = {f"FERRY_{name.upper()}" for name in BackendSettings.model_fields}
    command = typer.main.get_command(backend_cli.app)  # options of `ferry-backend …` read from the environment

    def walk(cmd) -> None:
        for param in getattr(cmd, "params", []):
            envvars = param.envvar if isinstance(param.envvar, (list, tuple)) else [param.envvar]
            names.update(e for e in envvars if e)
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(command)
    return names


def _importer_names() -> set[str]:
    names = {IMPORTER_PREFIX + name.upper() for name in ImporterSettings.model_fields}
    names.add("DOCKER_HOST")  # an accepted alias of FERRY_IMPORTER_DOCKER_HOST
    return names


def test_compose_runs_every_part_with_health_checks_and_volumes(compose):
    services = compose["services"]
    roles = {name: _role(service) for name, service in services.items()}
    backends = [name for name, role in roles.items() if role == "backend" and "serve" in services[name]["command"]]
    assert len(backends) >= 2, f"two backend replicas expected, got {backends}"
    assert {"postgres", "redis", "importer", "nginx"} <= set(services)
    for name, service in services.items():
        if service.get("restart") != "no":  # one-shot jobs have nothing to check
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for volume in ("pgdata", "uploads", "importer-data"):
        assert volume in compose["volumes"]
    for name in backends:  # one DATA_DIR for every replica: uploads continue and are pulled from any of them
        assert services[name]["environment"]["FERRY_DATA_DIR"] == "/var/lib/ferry"
        assert "uploads:/var/lib/ferry" in services[name]["volumes"]
        assert services[name]["environment"]["FERRY_REDIS_URL"].startswith("redis://redis:")
        assert services[name]["environment"]["FERRY_DATABASE_URL"].startswith("postgresql+asyncpg://")
    socket = "${FERRY_DOCKER_SOCKET:-/var/run/docker.sock}:/var/run/docker.sock"
    assert socket in services["importer"]["volumes"]  # the host's engine unless told otherwise


def test_compose_runs_the_official_images_unless_a_stand_in_is_chosen(compose):
    """Every base defaults to its official image; deploy/build-images.py prints the variables that pick stand-ins."""
    spec = importlib.util.spec_from_file_location("ferry_build_images_for_compose", DEPLOY / "build-images.py")
    build_images = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_images)  # type: ignore[union-attr]
    text = COMPOSE.read_text()
    for official, _standin, variable in build_images.BASES.values():
        assert f"${{{variable}:-{official}}}" in text, f"{variable} must default to {official}"
    services = compose["services"]
    assert services["postgres"]["image"] == "${FERRY_POSTGRES_IMAGE:-postgres:16-bookworm}"
    assert services["redis"]["image"] == "${FERRY_REDIS_IMAGE:-redis:7-bookworm}"
    assert set(services["nginx"]["build"]["args"]) == {"NODE_IMAGE", "NGINX_IMAGE", "PAGE"}


@pytest.mark.parametrize("role", ["backend", "importer"])
def test_every_environment_name_in_compose_is_a_real_setting(compose, role):
    known = _backend_names() if role == "backend" else _importer_names()
    checked = 0
    for name, service in compose["services"].items():
        if _role(service) != role:
            continue
        for key in service.get("environment", {}):
            assert key in known, f"{name}: {key} is not a setting of the {role} (known: {sorted(known)})"
            checked += 1
    assert checked >= 3


def test_every_variable_compose_reads_has_a_default_or_comes_from_make_env(compose):
    generated = subprocess.run(
        [sys.executable, str(DEPLOY / "make-env.py")], capture_output=True, text=True, check=True
    ).stdout
    provided = {line.split("=", 1)[0] for line in generated.splitlines() if "=" in line}
    for match in re.finditer(r"\$\{(\w+)(:?[-?][^}]*)?\}", COMPOSE.read_text()):
        variable, modifier = match.group(1), match.group(2) or ""
        assert variable in provided or modifier.startswith((":-", "-")), (
            f"${{{variable}}} has no default and make-env.py does not set it"
        )
    secret = dict(line.split("=", 1) for line in generated.splitlines())["FERRY_IMPORTER_WEBHOOK_SECRET"]
    ImporterSettings(token="t" * 32, webhook_secret=secret)  # the generated secret is one the importer accepts


def test_nginx_accepts_the_config(tmp_path):
    try:
        result = NginxServer(tmp_path / "nginx", [8001, 8002]).check()
    except Unavailable as exc:
        pytest.skip(str(exc))
    assert result.returncode == 0, result.stderr


def _location(conf: str, path: str) -> str:
    match = re.search(r"location\s+" + re.escape(path) + r"\s*\{(.*?)\n    \}", conf, re.S)
    assert match, f"no location {path}"
    return match.group(1)


def _seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h)?", value).groups()
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[unit]


def test_nginx_keeps_quiet_websockets_open_longer_than_the_socketio_ping():
    conf = FERRY_CONF.read_text()
    block = _location(conf, "/socket.io/")
    server = socketio.AsyncServer(async_mode="asgi").eio  # the backend's Socket.IO runs on these defaults
    timeout = _seconds(re.search(r"proxy_read_timeout\s+(\S+);", block).group(1))
    assert timeout > server.ping_interval + server.ping_timeout
    assert "proxy_set_header Upgrade $http_upgrade;" in block
    assert re.search(r"proxy_set_header Connection \$\w+;", block)
    uploads = _location(conf, "/api/uploads/")
    assert "proxy_request_buffering off;" in uploads
    limit = re.search(r"client_max_body_size (\d+)([kmg]?);", uploads)
    assert limit, "the upload location needs a finite body limit"
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[limit.group(2)]
    from ferry_backend.settings import Settings

    assert int(limit.group(1)) * scale == Settings.model_fields["max_upload_bytes"].default  # in step with the backend


def test_the_proxy_lists_exactly_the_compose_replicas(compose):
    listed = re.findall(
        r"^\s*server\s+([\w.-]+):(\d+)", (DEPLOY / "nginx" / "ferry.d" / "backends.conf").read_text(), re.M
    )
    services = compose["services"]
    replicas = {
        (name, service["command"][-1].rsplit(":", 1)[1])
        for name, service in services.items()
        if _role(service) == "backend" and "serve" in service["command"]
    }
    assert set(listed) == replicas


@pytest.mark.parametrize("dockerfile", ["Dockerfile.backend", "Dockerfile.importer", "Dockerfile.nginx"])
def test_dockerfiles_copy_paths_that_exist(dockerfile):
    text = (DEPLOY / dockerfile).read_text()
    copies = re.findall(r"^COPY\s+(?!--from)(.+)$", text, re.M)
    assert copies
    for line in copies:
        *sources, _target = line.split()
        for source in sources:  # the build context is the repository root
            assert (REPO / source).exists(), f"{dockerfile}: COPY {source} does not exist"
    ignore = DEPLOY / f"{dockerfile}.dockerignore"
    assert ignore.exists(), "each Dockerfile keeps its own build context small"


def test_the_importer_image_installs_only_the_importer_lock():
    instructions = [
        line
        for line in (DEPLOY / "Dockerfile.importer").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    text = "\n".join(instructions)
    assert "requirements/importer.lock" in text
    for foreign in ("dev.lock", "backend", "frontend-bridge", "./cli"):
        assert foreign not in text, f"the importer image must not install {foreign}"
