"""`make bench-e2e`: first byte → image for an upload imported while it arrives (pipelined) and after it arrived
(sequential), on real processes: a backend, an importer on the local engine, and a tus client that sends the
bench archive at a throttled rate (client-side token bucket, 20 MB/s by default).

Each round runs both, alternating which goes first: sequential = upload, then POST /api/imports, then the import
(measuring upload alone and import alone); pipelined = create the upload, POST /api/imports at once, then send
the bytes. Printed: the medians, and pipelined / max(upload alone, import alone) — the target is ≤ 1.15.
Archives are bench-import's (cached under bench-cache/: ~100 MB and ~1 GB of this machine's files, xz).
Not part of `make test`: run it on a quiet machine. `--sizes 100m` for the short run.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from backend.tests.support import Backend  # noqa: E402
from tests.integration.support import ImporterProcess  # noqa: E402

TUS = {"Tus-Resumable": "1.0.0"}
PATCH_BYTES = 64 * 1024 * 1024  # what the page sends per PATCH
PIECE = 256 * 1024
SIZES = ("100m", "1g")


def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


class Lab:
    def __init__(self, backend: Backend, host: str, rate_bps: float):
        self.backend, self.host, self.rate_bps = backend, host, rate_bps
        self.http = httpx.AsyncClient(
            base_url=backend.url, headers={"Authorization": f"Bearer {backend.admin_token}"}, timeout=600
        )

    async def create(self, size: int) -> str:
        response = await self.http.post("/api/uploads/", headers={**TUS, "Upload-Length": str(size)})
        response.raise_for_status()
        return response.headers["location"].rsplit("/", 1)[-1]

    async def send(self, upload_id: str, archive: Path) -> None:
        """PATCHes of up to 64 MiB, each body paced to rate_bps by a token bucket (the client's link)."""
        size = archive.stat().st_size
        started = time.monotonic()
        with archive.open("rb") as handle:
            offset = 0
            while offset < size:
                length = min(PATCH_BYTES, size - offset)

                async def body(first: int = offset, length: int = length):
                    sent = 0
                    while sent < length:
                        piece = handle.read(min(PIECE, length - sent))
                        sent += len(piece)
                        due = started + (first + sent) / self.rate_bps - time.monotonic()
                        if due > 0:
                            await asyncio.sleep(due)
                        yield piece

                response = await self.http.patch(
                    f"/api/uploads/{upload_id}",
                    content=body(),
                    headers={
                        **TUS,
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                        "Content-Length": str(length),
                    },
                )
                response.raise_for_status()
                offset += length

    async def start(self, upload_id: str, image: str) -> str:
        response = await self.http.post(
            "/api/imports",
            json={"upload_id": upload_id, "hosts": [self.host], "image": image, "format": "import", "force": True},
        )
        response.raise_for_status()
        return response.json()["jobs"][0]["id"]

    async def finished(self, job_id: str) -> float:
        while True:
            job = (await self.http.get(f"/api/imports/{job_id}")).json()
            if job["state"] in ("succeeded", "failed", "canceled"):
                if job["state"] != "succeeded":
                    raise SystemExit(f"job {job_id} {job['state']}: {job.get('error')}")
                return time.monotonic()
            await asyncio.sleep(0.05)

    async def sequential(self, archive: Path, image: str) -> dict:
        upload_id = await self.create(archive.stat().st_size)
        first = time.monotonic()
        await self.send(upload_id, archive)
        uploaded = time.monotonic()
        job_id = await self.start(upload_id, image)
        done = await self.finished(job_id)
        return {"total": done - first, "upload": uploaded - first, "import": done - uploaded}

    async def pipelined(self, archive: Path, image: str) -> dict:
        upload_id = await self.create(archive.stat().st_size)
        job_id = await self.start(upload_id, image)
        first = time.monotonic()
        sending = asyncio.create_task(self.send(upload_id, archive))
        done = await self.finished(job_id)
        await sending
        return {"total": done - first}


def remove_image(engine_host: str, ref: str) -> None:
    import docker

    client = docker.DockerClient(base_url=engine_host)
    try:
        client.api.remove_image(ref, force=True)
    except docker.errors.APIError:
        pass
    finally:
        client.close()


async def bench(lab: Lab, label: str, archive: Path, rounds: int, engine_host: str) -> dict:
    sequential, pipelined = [], []
    for index in range(rounds):
        order = ("pipelined", "sequential") if index % 2 == 0 else ("sequential", "pipelined")
        for mode in order:
            image = f"ferry-bench/e2e-{label}-{mode}-{uuid.uuid4().hex[:6]}:1"
            try:
                result = await getattr(lab, mode)(archive, image)
            finally:
                remove_image(engine_host, image)
            (pipelined if mode == "pipelined" else sequential).append(result)
            detail = (
                "" if mode == "pipelined" else f" (upload {result['upload']:.1f} s, import {result['import']:.1f} s)"
            )
            print(
                f"  {label} round {index + 1} {mode:<10} first byte → image {result['total']:6.1f} s{detail}",
                flush=True,
            )
    upload = statistics.median(r["upload"] for r in sequential)
    alone = statistics.median(r["import"] for r in sequential)
    piped = statistics.median(r["total"] for r in pipelined)
    return {
        "archive": archive.name,
        "bytes": archive.stat().st_size,
        "upload_s": upload,
        "import_s": alone,
        "sequential_s": statistics.median(r["total"] for r in sequential),
        "pipelined_s": piped,
        "ratio": piped / max(upload, alone),
    }


async def run(args) -> list[dict]:
    bench_import = _module("ferry_bench_import", ROOT / "importer" / "bench" / "bench_import.py")
    engines = bench_import.engine_script()
    engine_host, started = engines.up(args.engine)
    base = ROOT / "bench-cache" / "e2e"
    backend = Backend(base / f"backend-{uuid.uuid4().hex[:6]}").launch().wait_ready()
    importer = ImporterProcess(base / f"importer-{uuid.uuid4().hex[:6]}", backend, "bench-e2e", engine_host).start()
    results = []
    try:
        importer.register(backend)
        lab = Lab(backend, importer.name, args.rate_mbps * 1e6)
        env = {"DOCKER_HOST": engine_host}
        for label in args.sizes:
            archive = bench_import.build_archive(label, bench_import.SIZES[label], env)
            results.append(await bench(lab, label, archive, args.rounds, engine_host))
        await lab.http.aclose()
    finally:
        importer.stop()
        backend.stop()
        if started:
            engines.down(args.engine)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--rounds", type=int, default=3, help="pipelined + sequential pairs per archive")
    parser.add_argument("--rate-mbps", type=float, default=20.0, help="the client's upload rate, MB/s")
    parser.add_argument("--engine", default="bench", help="scripts/engine.py name of a private engine, if needed")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    print()
    print(f"{'archive':<22}{'size':>9}{'upload':>9}{'import':>9}{'sequential':>12}{'pipelined':>11}{'ratio':>8}")
    for r in results:
        print(
            f"{r['archive']:<22}{r['bytes'] / 1e6:>7.0f}MB{r['upload_s']:>8.1f}s{r['import_s']:>8.1f}s"
            f"{r['sequential_s']:>11.1f}s{r['pipelined_s']:>10.1f}s{r['ratio']:>8.2f}"
        )
    worst = max((r["ratio"] for r in results), default=0.0)
    print(f"pipelined / max(upload alone, import alone) ≤ 1.15: {'met' if worst <= 1.15 else 'NOT met'} ({worst:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
