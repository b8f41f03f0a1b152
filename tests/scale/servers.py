"""Real infrastructure for the scale tests and the bench: Redis, Postgres and nginx from Debian's binaries.

Each server runs from a throwaway directory on a free 127.0.0.1 port and is stopped by whoever
started it. nginx runs the committed deploy/nginx/ferry.conf unchanged: only the two site files it
includes (the replicas' `server` lines and the `listen` line) are written for the test ports.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from tests.support.process import free_port, tail, terminate, wait_port

REPO = Path(__file__).resolve().parents[2]
FERRY_CONF = REPO / "deploy" / "nginx" / "ferry.conf"
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)


class Unavailable(RuntimeError):
    """A server binary is not installed (scripts/system-deps.sh installs it)."""


class RedisServer:
    """redis-server in the foreground, no persistence."""

    def __init__(self, base: Path):
        self.base = base
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise Unavailable("redis-server is not installed (make system-deps installs redis-server)")
        self.base.mkdir(parents=True, exist_ok=True)
        log = self.base / "redis.log"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.base),
                "--logfile",
                str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_port(self.proc, self.port, log, "redis-server")
        return self

    def client_list(self) -> list[dict[str, str]]:
        """CLIENT LIST as dicts (fields: id, addr, age, idle, sub, psub, cmd, …)."""
        import redis

        with redis.Redis.from_url(self.url) as client:
            return [{k: str(v) for k, v in entry.items()} for entry in client.client_list()]

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None


class PostgresServer:
    """A throwaway cluster; Postgres refuses to run as root, so as root it runs as the `postgres` user."""

    def __init__(self):
        self.port = free_port()
        self.root: Path | None = None

    @property
    def url(self) -> str:
        return self.url_of("postgres")

    def url_of(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        done = self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        if done.returncode != 0:
            raise RuntimeError(f"createdb {name} failed: {done.stderr}")
        return self.url_of(name)

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)

    def start(self) -> PostgresServer:
        if PG_BIN is None:
            raise Unavailable("the Postgres server is not installed (make system-deps installs postgresql)")
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                raise Unavailable("running as root needs runuser to start Postgres as the postgres user")
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable("no postgres system user (Debian's postgresql package creates it)") from None
        self.root = Path(tempfile.mkdtemp(prefix="ferry-scale-pg-"))
        os.chmod(self.root, 0o755)
        if os.geteuid() == 0:
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        data = self.root / "data"
        init = self._run(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr}")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        start = self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(self.root / "log"), "-w", "-o", options, "start"
        )
        if start.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {start.stderr} {tail(self.root / 'log')}")
        return self

    def stop(self) -> None:
        if self.root is None:
            return
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None


class NginxServer:
    """nginx with the committed ferry.conf in front of the given backend ports.

    The prefix directory holds what a deployment provides around ferry.conf: nginx.conf (pid, logs,
    temp paths), ferry.d/backends.conf, ferry.d/listen.conf and the static page under web/.
    """

    def __init__(self, base: Path, backend_ports: list[int], web_dir: Path | None = None, port: int | None = None):
        self.base = base
        self.backend_ports = list(backend_ports)
        self.web_dir = web_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def conf(self) -> Path:
        return self.base / "conf" / "nginx.conf"

    def write_config(self) -> Path:
        conf_dir = self.base / "conf"
        (conf_dir / "ferry.d").mkdir(parents=True, exist_ok=True)
        for sub in ("logs", "tmp"):
            (self.base / sub).mkdir(exist_ok=True)
        servers = "".join(f"server 127.0.0.1:{port} max_fails=3 fail_timeout=5s;\n" for port in self.backend_ports)
        (conf_dir / "ferry.d" / "backends.conf").write_text(servers)
        (conf_dir / "ferry.d" / "listen.conf").write_text(f"listen 127.0.0.1:{self.port};\n")
        web = self.base / "web"
        if not web.exists():
            if self.web_dir is not None:
                web.symlink_to(self.web_dir, target_is_directory=True)
            else:
                web.mkdir()
        tmp = self.base / "tmp"
        user = "user root root;\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            f"{user}worker_processes 1;\ndaemon off;\npid {self.base}/nginx.pid;\nerror_log {self.base}/logs/error.log warn;\n"
            "events { worker_connections 4096; }\n"
            "http {\n"
            f"  access_log {self.base}/logs/access.log;\n"
            "  default_type application/octet-stream;\n"
            f"  client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n"
            f"  fastcgi_temp_path {tmp}/fastcgi;\n  uwsgi_temp_path {tmp}/uwsgi;\n  scgi_temp_path {tmp}/scgi;\n"
            f"  include {FERRY_CONF};\n"
            "}\n"
        )
        return self.conf

    def check(self) -> subprocess.CompletedProcess:
        """`nginx -t` on the written configuration."""
        return subprocess.run(
            [nginx_binary(), "-t", "-p", str(self.base), "-c", str(self.write_config())],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def start(self) -> NginxServer:
        binary = nginx_binary()
        self.write_config()
        log = self.base / "logs" / "error.log"
        self.proc = subprocess.Popen(
            [binary, "-p", str(self.base), "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        wait_port(self.proc, self.port, log, "nginx")
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"nginx did not answer /healthz: {self.error_log()}")

    def error_log(self) -> str:
        return tail(self.base / "logs" / "error.log")

    def stop(self) -> None:
        terminate(self.proc, signal.SIGQUIT)
        self.proc = None


def nginx_binary() -> str:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        raise Unavailable("nginx is not installed (apt-get install nginx-light; make system-deps installs it)")
    return binary
