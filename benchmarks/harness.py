"""What every table of `make bench` shares: running commands, failing, timing, formatting, settings.

The table modules (streaming.py … cost_model.py) and run.py import from here; models and their builds
are in workspace.py. Nothing here measures anything by itself.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, NamedTuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before anything imports TensorFlow: its start-up chatter

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
SPEECH_SRC = ROOT / "edgewave" / "data" / "speech8k_fr.wav"  # the bundled real recording, `make demo`'s
SPEECH_REL = SPEECH_SRC.relative_to(ROOT).as_posix()
PY = ".venv/bin/python benchmarks/run.py"
SEED = 0


class BenchError(RuntimeError):
    """A measurement failed: the script stops with exit status 1."""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Table(NamedTuple):
    """One table of RESULTS.md: its heading, what measures it, and its section's lines below the heading."""
    title: str
    measure: Callable   # (Workspace) -> dict: the table's entry in results.json
    section: Callable   # (its dict, the whole results) -> list of Markdown lines


# ---------------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class Settings:
    c_stream_samples: int = 20000      # generated C on the host, per repeat
    c_repeats: int = 7
    c_recompute_budget: int = 150_000  # ~steps per repeat of the naive C recompute
    py_stream_samples: int = 2000      # LiteRT / TFLM Python loops, per repeat
    py_repeats: int = 5
    full_outputs: tuple = (40, 20, 8)  # LiteRT full-window invocations at RF 256 / 1024 / 4096
    engine_stream_samples: int = 30    # numpy engine, streaming (slow: a reference, not a runtime)
    engine_recompute_outputs: int = 3
    engine_repeats: int = 3
    qemu_samples: int = 2000
    train_minutes: float | None = None  # None: train the default spec exactly as `edgewave train` does
    train_args: tuple = ()


FULL = Settings()
QUICK = Settings(c_stream_samples=3000, c_repeats=3, c_recompute_budget=20_000, py_stream_samples=200,
                 py_repeats=2, full_outputs=(4, 3, 2), engine_stream_samples=5, engine_recompute_outputs=1,
                 engine_repeats=1, qemu_samples=300, train_minutes=0.5,
                 train_args=("--epochs", "1", "--steps-per-epoch", "5"))


# ---------------------------------------------------------------------------------- helpers

def run(cmd, what: str, cwd=None, timeout=1800, stderr_to_console=False) -> str:
    """Run a command; raise BenchError with its output when it fails."""
    try:
        proc = subprocess.run([str(c) for c in cmd], cwd=cwd, timeout=timeout, text=True, stdout=subprocess.PIPE,
                              stderr=None if stderr_to_console else subprocess.PIPE, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BenchError(f"{what}: {e}") from None
    if proc.returncode != 0:
        tail = "\n".join(((proc.stderr or "") + proc.stdout).strip().splitlines()[-25:])
        raise BenchError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def first_line(cmd) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "not found"


def pkg_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def median(xs) -> float:
    return float(statistics.median(xs))


def summarize(cpu_s, wall_s, items: int) -> dict:
    """Per-item timings: median / min / max of the CPU time (the reported number) and the wall-time median."""
    return {"median_s": median(cpu_s), "min_s": min(cpu_s), "max_s": max(cpu_s), "wall_median_s": median(wall_s),
            "repeats": len(cpu_s), "items": items, "all_s": list(cpu_s), "all_wall_s": list(wall_s)}


def time_repeats(fn, repeats: int, per: int) -> dict:
    """Seconds per item of `fn()`, which processes `per` items: CPU time of this thread (and wall time) of each
    repeat after one warm-up call. The backends timed this way run in the calling thread (LiteRT num_threads=1)."""
    fn()
    cpu, wall = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.thread_time()
        fn()
        c1, w1 = time.thread_time(), time.perf_counter()
        cpu.append((c1 - c0) / per)
        wall.append((w1 - w0) / per)
    return summarize(cpu, wall, per)


def us(seconds: float) -> str:
    v = seconds * 1e6
    return f"{v:,.0f}" if v >= 1000 else f"{v:.3g}" if v >= 1 else f"{v:.3f}"


def fmt(v, digits=3) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def times(v: float) -> str:
    return f"{v:.2f}×" if v < 10 else f"{v:,.0f}×"


def md_table(headers, rows) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def max_lsb(a, b) -> int:
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    if a.shape != b.shape:
        raise BenchError(f"output shapes differ: {a.shape} vs {b.shape}")
    return int(np.abs(a - b).max(initial=0))


def require_equal(got, want, what: str) -> None:
    if max_lsb(got, want) != 0:
        raise BenchError(f"{what} differs from the numpy integer engine (max {max_lsb(got, want)} LSB); "
                         "a benchmark of wrong outputs would be meaningless")


# ---------------------------------------------------------------------------------- machine

def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem = None
    try:
        mem = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024
    except (OSError, AttributeError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable, "memory_mb": mem,
            "os": platform.platform(), "machine": platform.machine()}


def versions() -> dict:
    from edgewave import __version__
    v = {"edgewave": __version__, "python": platform.python_version()}
    for pkg in ("tensorflow", "keras", "ai-edge-litert", "tflite-micro", "numpy"):
        v[pkg] = pkg_version(pkg)
    v["gcc"] = first_line([shutil.which("gcc") or "gcc", "--version"])
    v["arm-none-eabi-gcc"] = first_line(["arm-none-eabi-gcc", "--version"])
    v["qemu-system-arm"] = first_line(["qemu-system-arm", "--version"])
    return v


def later_note(res: dict, n: int) -> list[str]:
    """The line a section opens with when `--merge` measured its table after the run the rest is from."""
    later = res.get("later_runs", {}).get(str(n))
    return [f"Measured on {later['date']}, {later['why']}; the other tables are from the run above.", ""] if later else []
