"""`make bench-import`: ferry-importer against the bare `docker import FILE` / `docker load -i FILE` on the
same engine.

Builds (once, cached under bench-cache/) rootfs archives of about 100 MB and 1 GB of this machine's own
files, and a `docker save` archive of about 350 MB in three layers (built FROM scratch by the engine, then
removed, so every run loads layers the engine does not have), all compressed with xz; then alternates the
docker CLI and `ferry-importer import FILE --force` at least three pairs per archive and prints the median
wall-time ratio, the importer's peak RSS (from wait4 of the process itself) and how truthful its bar was
(progress_quality.py: longest stretch without percent movement, percent and ETA at half time).
Not part of `make test`: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
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

sys.path.insert(0, str(Path(__file__).parent))
from progress_quality import quality, read_events, summary_line  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "bench-cache"
SIZES = {"100m": 100 * 1000**2, "1g": 1000**3, "save": 350 * 1000**2}
SAVE_TAG = "ferry-bench/save:v1"
SOURCES = ["/usr"]
CLI = Path(sys.executable).parent / "ferry-importer"


def engine_script():
    """scripts/engine.py: the engine at DOCKER_HOST when it answers, else a private one for the run."""
    spec = importlib.util.spec_from_file_location("ferry_engine_script", ROOT / "scripts" / "engine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def build_archive(label: str, target: int, env: dict) -> Path:
    """A rootfs tar (or for "save" a docker-save archive) of about `target` content bytes from this machine's
    files, xz-compressed, cached."""
    path = CACHE / (f"rootfs-{label}.tar.xz" if label != "save" else "save-350m.tar.xz")
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return path
    CACHE.mkdir(exist_ok=True)
    print(f"building {path.name} (~{target / 1e6:.0f} MB of files from {', '.join(SOURCES)}) …", flush=True)
    tmp = path.with_suffix(".partial")
    if label == "save":
        total, files = build_save(tmp, target, env)
    else:
        total, files = build_rootfs(tmp, target)
    tmp.rename(path)
    meta.write_text(json.dumps({"content_bytes": total, "files": files}))
    return path


def build_save(out_path: Path, target: int, env: dict) -> tuple[int, int]:
    """Three layers (COPY l0, l1, l2) of this machine's files, built by the engine, saved, then removed."""
    context = out_path.with_suffix(".context.tar")
    layers = 3
    total = files = 0
    with tarfile.open(context, "w") as tar:
        dockerfile = (
            "FROM scratch\n" + "".join(f"COPY l{i} /l{i}\n" for i in range(layers)) + "LABEL ferry.bench=save\n"
        ).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        for base in SOURCES:
            for directory, dirs, names in os.walk(base):
                dirs.sort()
                for name in sorted(names):
                    full = os.path.join(directory, name)
                    if not os.path.isfile(full) or os.path.islink(full):
                        continue
                    layer = min(layers - 1, total * layers // target)
                    try:
                        tar.add(full, arcname=f"l{layer}/{full.lstrip('/')}", recursive=False)
                    except OSError:
                        continue
                    files += 1
                    total += os.path.getsize(full)
                    if total >= target:
                        break
                if total >= target:
                    break
    with open(context, "rb") as fh:
        subprocess.run(
            ["docker", "build", "-q", "-t", SAVE_TAG, "-"], stdin=fh, env=env, check=True, stdout=subprocess.DEVNULL
        )
    context.unlink()
    with open(out_path, "wb") as out:
        save = subprocess.Popen(["docker", "save", SAVE_TAG], stdout=subprocess.PIPE, env=env)
        subprocess.run(["xz", "-T2", "-1", "-c"], stdin=save.stdout, stdout=out, check=True)
        if save.wait() != 0:
            raise SystemExit("docker save failed")
    remove(env, SAVE_TAG)
    return total, files


def build_rootfs(tmp: Path, target: int) -> tuple[int, int]:
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
    return total, files


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
        if (
            cmdline
            and cmdline[0].endswith(b"dockerd")
            and (socket_path.encode() in b" ".join(cmdline) or socket_path == "/var/run/docker.sock")
        ):
            return int(entry.name)
    return None


def engine_cpu(pid: int | None) -> float:
    """CPU seconds of dockerd plus its waited-for children (the xz it runs for `docker import`)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def timed(
    cmd: list[str], env: dict, engine: int | None = None, stdout: Path | None = None
) -> tuple[float, int, str, float]:
    """Wall seconds, peak RSS in bytes (of that process alone), stderr, and CPU seconds of the
    process plus the engine during the run. `stdout` keeps what it prints (the --json events)."""
    start = time.monotonic()
    engine_before = engine_cpu(engine)
    out = open(stdout, "wb") if stdout else subprocess.DEVNULL
    process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    if stdout:
        out.close()
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
    """Alternating runs; a save archive is loaded (`docker load -i`) and removed after every run, so each
    run loads layers the engine does not have."""
    loads = label == "save"
    repo = f"ferry-bench/{label}-{uuid.uuid4().hex[:6]}"
    cli_times, ferry_times, rss, cli_cpu, ferry_cpu, bars = [], [], [], [], [], []
    for i in range(pairs):
        order = ["docker", "ferry"] if i % 2 == 0 else ["ferry", "docker"]
        for who in order:
            ref = SAVE_TAG if loads else f"{repo}:{who}{i}"
            if who == "docker":
                cmd = ["docker", "load", "-q", "-i", str(archive)] if loads else ["docker", "import", str(archive), ref]
                wall, _, _, cpu = timed(cmd, env, engine)
                cli_times.append(wall)
                cli_cpu.append(cpu)
            else:
                events = CACHE / f"events-{label}.jsonl"
                name = [] if loads else ["--image", ref]
                wall, peak, _, cpu = timed(
                    [str(CLI), "import", str(archive), *name, "--force", "--json"], env, engine, stdout=events
                )
                ferry_times.append(wall)
                ferry_cpu.append(cpu)
                rss.append(peak)
                bars.append(quality(read_events(events)))
            print(
                f"  {label} pair {i + 1}: {who:<6} {wall:7.2f} s  cpu {cpu:6.1f} s  load {os.getloadavg()[0]:.1f}"
                + (f"  peak RSS {peak / 1e6:.1f} MB" if who == "ferry" else ""),
                flush=True,
            )
            if who == "ferry":
                print(summary_line("bar", bars[-1]), flush=True)
            if loads or who == "docker" or i < pairs - 1:
                remove(env, ref)
    # the same archive and tag once more, without --force: the fast path answers "already present"
    fast = float("nan")
    if not loads:
        last = f"{repo}:ferry{pairs - 1}"
        fast, _, _, _ = timed([str(CLI), "import", str(archive), "--image", last, "--json"], env)
        remove(env, last)
    startup, _, _, _ = timed([str(CLI), "import", "--help"], env)
    ratios = [f / c for f, c in zip(ferry_times, cli_times)]
    etas = [b["eta_error_at_half"] for b in bars if b["eta_error_at_half"] is not None]
    return {
        "longest_stall_share_max": max(b["longest_stall_share"] for b in bars),
        "percent_at_half_median": statistics.median(b["percent_at_half"] for b in bars),
        "eta_error_at_half_median": statistics.median(etas) if etas else None,
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
            archive = build_archive(label, SIZES[label], env)
            results.append(bench(label, archive, max(3, args.pairs), env, engine_pid(host)))
    finally:
        if started:
            engines.down("bench")
    print()
    print(
        f"{'archive':<22}{'xz size':>10}{'content':>10}{'docker import':>15}{'ferry':>9}{'ratio':>8}{'cpu ratio':>10}"
        f"{'peak RSS':>10}{'present':>9}{'startup':>9}"
    )
    for r in results:
        print(
            f"{r['archive']:<22}{r['archive_bytes'] / 1e6:>8.0f}MB{r['content_bytes'] / 1e6:>8.0f}MB"
            f"{r['docker_import_median_s']:>13.2f} s{r['ferry_median_s']:>7.2f} s{r['median_ratio']:>8.2f}"
            f"{r['cpu_ratio'] or float('nan'):>10.2f}"
            f"{r['ferry_peak_rss_bytes'] / 1e6:>8.1f}MB{r['already_present_cli_s']:>7.2f} s{r['cli_startup_s']:>7.2f} s"
        )
    print()
    print(f"{'archive':<22}{'longest stall (max)':>21}{'percent at half':>17}{'ETA error at half':>19}")
    for r in results:
        eta = r["eta_error_at_half_median"]
        print(
            f"{r['archive']:<22}{r['longest_stall_share_max'] * 100:>19.0f} %{r['percent_at_half_median']:>17.1f}"
            f"{'n/a' if eta is None else f'{eta * 100:+.0f} %':>19}"
        )
    print(json.dumps(results, indent=1))
    worst = max(r["median_ratio"] for r in results)
    peak = max(r["ferry_peak_rss_bytes"] for r in results)
    print(
        f"target median ratio <= 1.0: {'met' if worst <= 1.0 else 'NOT met'} ({worst:.2f}); "
        f"target peak RSS <= 100 MB: {'met' if peak <= 100e6 else 'NOT met'} ({peak / 1e6:.1f} MB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
