"""`make bench-import`: ferry-importer against the bare `docker import FILE` on the same engine.

Builds (once, cached under bench-cache/) rootfs archives of about 100 MB and 1 GB of this machine's own
files, compressed with xz; then alternates `docker import FILE` and `ferry-importer import FILE --force`
at least three pairs per archive and prints the median wall-time ratio and the importer's peak RSS
(from wait4 of the process itself). Not part of `make test`: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "bench-cache"
SIZES = {"100m": 100 * 1000**2, "1g": 1000**3}
SOURCES = ["/usr"]
CLI = Path(sys.executable).parent / "ferry-importer"


def engine_script():
    """scripts/engine.py: the engine at DOCKER_HOST when it answers, else a private one for the run."""
    spec = importlib.util.spec_from_file_location("ferry_engine_script", ROOT / "scripts" / "engine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def build_archive(label: str, target: int) -> Path:
    """A rootfs tar of about `target` content bytes from this machine's files, xz-compressed, cached."""
    path = CACHE / f"rootfs-{label}.tar.xz"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return path
    CACHE.mkdir(exist_ok=True)
    print(f"building {path.name} (~{target / 1e6:.0f} MB of files from {', '.join(SOURCES)}) …", flush=True)
    tmp = path.with_suffix(".partial")
    total = files = 0
    with open(tmp, "wb") as out:
        xz = subprocess.Popen(["xz", "-T2", "-1", "-c"], stdin=subprocess.PIPE, stdout=out)
        with tarfile.open(fileobj=xz.stdin, mode="w|") as tar:
            for base in SOURCES:
                for directory, dirs, names in os.walk(base):
                    dirs.sort()
                    tar.add(directory, arcname=directory.lstrip("/"), recursive=False)
                    for name in sorted(names):
                        full = os.path.join(directory, name)
                        if not (os.path.isfile(full) or os.path.islink(full)):
                            continue
                        try:
                            tar.add(full, arcname=full.lstrip("/"), recursive=False)
                        except OSError:
                            continue
                        files += 1
                        total += 0 if os.path.islink(full) else os.path.getsize(full)
                        if total >= target:
                            break
                    if total >= target:
                        break
        xz.stdin.close()
        if xz.wait() != 0:
            raise SystemExit("xz failed")
    tmp.rename(path)
    meta.write_text(json.dumps({"content_bytes": total, "files": files}))
    return path


def engine_pid(host: str) -> int | None:
    """The local dockerd serving `host`, to count its CPU (and that of its xz child) per run."""
    socket_path = host.removeprefix("unix://")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"dockerd") and (socket_path.encode() in b" ".join(cmdline)
                                                            or socket_path == "/var/run/docker.sock"):
            return int(entry.name)
    return None


def engine_cpu(pid: int | None) -> float:
    """CPU seconds of dockerd plus its waited-for children (the xz it runs for `docker import`)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def timed(cmd: list[str], env: dict, engine: int | None = None) -> tuple[float, int, str, float]:
    """Wall seconds, peak RSS in bytes (of that process alone), stderr, and CPU seconds of the
    process plus the engine during the run."""
    start = time.monotonic()
    engine_before = engine_cpu(engine)
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - start
    cpu = usage.ru_utime + usage.ru_stime + engine_cpu(engine) - engine_before
    err = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({process.returncode}): {err[-2000:]}")
    return wall, usage.ru_maxrss * 1024, err, cpu


def remove(env: dict, ref: str) -> None:
    subprocess.run(["docker", "rmi", "-f", ref], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bench(label: str, archive: Path, pairs: int, env: dict, engine: int | None) -> dict:
    repo = f"ferry-bench/{label}-{uuid.uuid4().hex[:6]}"
    cli_times, ferry_times, rss, cli_cpu, ferry_cpu = [], [], [], [], []
    for i in range(pairs):
        order = ["docker", "ferry"] if i % 2 == 0 else ["ferry", "docker"]
        for who in order:
            ref = f"{repo}:{who}{i}"
            if who == "docker":
                wall, _, _, cpu = timed(["docker", "import", str(archive), ref], env, engine)
                cli_times.append(wall)
                cli_cpu.append(cpu)
            else:
                wall, peak, _, cpu = timed([str(CLI), "import", str(archive), "--image", ref, "--force", "--json"],
                                           env, engine)
                ferry_times.append(wall)
                ferry_cpu.append(cpu)
                rss.append(peak)
            print(f"  {label} pair {i + 1}: {who:<6} {wall:7.2f} s  cpu {cpu:6.1f} s  load {os.getloadavg()[0]:.1f}"
                  + (f"  peak RSS {peak / 1e6:.1f} MB" if who == "ferry" else ""), flush=True)
            if who == "docker" or i < pairs - 1:
                remove(env, ref)
    # the same archive and tag once more, without --force: the fast path answers "already present"
    last = f"{repo}:ferry{pairs - 1}"
    fast, _, _, _ = timed([str(CLI), "import", str(archive), "--image", last, "--json"], env)
    startup, _, _, _ = timed([str(CLI), "import", "--help"], env)
    remove(env, last)
    ratios = [f / c for f, c in zip(ferry_times, cli_times)]
    return {
        "archive": archive.name,
        "archive_bytes": archive.stat().st_size,
        "content_bytes": json.loads(archive.with_suffix(".json").read_text())["content_bytes"],
        "docker_import_median_s": statistics.median(cli_times),
        "ferry_median_s": statistics.median(ferry_times),
        "median_ratio": statistics.median(ratios),
        "ratio_of_medians": statistics.median(ferry_times) / statistics.median(cli_times),
        "cpu_ratio": statistics.median(ferry_cpu) / statistics.median(cli_cpu) if engine else None,
        "ferry_peak_rss_bytes": max(rss),
        "already_present_cli_s": fast,
        "cli_startup_s": startup,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    if shutil.which("docker") is None:
        raise SystemExit("the docker CLI is needed for the comparison (apt-get install docker.io)")
    load = os.getloadavg()[0]
    if load > 1.0:
        print(f"note: load average is {load:.1f}; numbers will be noisy", flush=True)
    engines = engine_script()
    host, started = engines.up("bench")
    env = {**os.environ, "DOCKER_HOST": host, "FERRY_IMPORTER_DATA_DIR": str(CACHE / "data")}
    results = []
    try:
        for label in args.sizes:
            archive = build_archive(label, SIZES[label])
            results.append(bench(label, archive, max(3, args.pairs), env, engine_pid(host)))
    finally:
        if started:
            engines.down("bench")
    print()
    print(f"{'archive':<22}{'xz size':>10}{'content':>10}{'docker import':>15}{'ferry':>9}{'ratio':>8}{'cpu ratio':>10}"
          f"{'peak RSS':>10}{'present':>9}{'startup':>9}")
    for r in results:
        print(f"{r['archive']:<22}{r['archive_bytes'] / 1e6:>8.0f}MB{r['content_bytes'] / 1e6:>8.0f}MB"
              f"{r['docker_import_median_s']:>13.2f} s{r['ferry_median_s']:>7.2f} s{r['median_ratio']:>8.2f}"
              f"{r['cpu_ratio'] or float('nan'):>10.2f}"
              f"{r['ferry_peak_rss_bytes'] / 1e6:>8.1f}MB{r['already_present_cli_s']:>7.2f} s{r['cli_startup_s']:>7.2f} s")
    print(json.dumps(results, indent=1))
    worst = max(r["median_ratio"] for r in results)
    peak = max(r["ferry_peak_rss_bytes"] for r in results)
    print(f"target median ratio <= 1.0: {'met' if worst <= 1.0 else 'NOT met'} ({worst:.2f}); "
          f"target peak RSS <= 100 MB: {'met' if peak <= 100e6 else 'NOT met'} ({peak / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
