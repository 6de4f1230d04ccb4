#!/usr/bin/env python3
"""edgewave benchmarks: `make bench`, or `.venv/bin/python benchmarks/run.py`.

Writes benchmarks/RESULTS.md (for people) and benchmarks/results.json (the same
numbers for machines). Every number is measured in the run that writes the file:

  1. streaming vs recomputing the receptive field for every output (RF 256/1024/4096)
  2. per-sample cost against dilation at fixed depth
  3. generated C on the host vs LiteRT, TFLite Micro and the numpy engine
  4. Cortex-M instruction counts (QEMU, exact) per sample and per MAC
  5. memory: generated C vs TFLite Micro vs the theoretical minimum state
  6. accuracy on the bundled recording: float, int16x8, int8, LPC-32
  7-9. the jobs on real recordings (benchmarks/jobs.py): training on real speech,
     packet-loss concealment, anomaly detection
 10. generated C vs stock TensorFlow Lite Micro (CMSIS-NN and reference kernels) on the
     same emulated Cortex-M4 (benchmarks/tflm_m4.py; skipped without a TFLM tree)

Tables 1-5 use random-weight models (speed and memory do not depend on training);
only table 6 trains (the default spec, about 5 minutes). Timings are medians of
several repeats; instruction counts are exact and repeatable. Benchmarks are not
tests: nothing is asserted about speed, but every output that is timed is checked
against the numpy integer engine, and any failed build, run or check stops the
script with an error (exit status 1).

  --tables 1,3   run some tables only (printed, and written under --out if given)
  --quick        fewer samples and a very short training: a smoke test of the script
  --keep         keep the work directory (generated C, models, logs)
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import jobs  # noqa: E402
import tflm_m4  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
SPEECH_SRC = ROOT / "edgewave" / "data" / "speech8k_fr.wav"  # the bundled real recording, `make demo`'s
SPEECH_REL = SPEECH_SRC.relative_to(ROOT).as_posix()
SPEECH = SPEECH_SRC  # main() points this at a copy in the work directory: one recording for the whole run
HARNESS = BENCH_DIR / "bench_host.c"
PY = ".venv/bin/python benchmarks/run.py"
SEED = 0
MHZ = (80, 168)


class BenchError(RuntimeError):
    """A measurement failed: the script stops with exit status 1."""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


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


# ---------------------------------------------------------------------------------- models

def default_spec_dict() -> dict:
    from edgewave import spec as spec_mod
    return tomllib.loads(spec_mod.default_text())


def _walk_layers(layers, fn):
    for layer in layers:
        fn(layer)
        if "layers" in layer:
            _walk_layers(layer["layers"], fn)


def wavenet_spec(width_factor: int = 1, receptive_field: int | None = None) -> dict:
    """The default spec, optionally with every layer `width_factor`× wider and/or its residual
    dilations extended (1, k, k², … for kernel k) to reach `receptive_field`."""
    d = default_spec_dict()

    def widen(layer):
        for key in ("units", "filters"):
            if key in layer:
                layer[key] *= width_factor

    _walk_layers(d["layers"], widen)
    if receptive_field is not None:
        blocks = [layer for layer in d["layers"] if layer.get("type") == "residual" and "dilations" in layer]
        if len(blocks) != 1:
            raise BenchError("the default spec no longer has exactly one residual block with dilations; "
                             "update wavenet_spec() in benchmarks/run.py")
        k = max(inner.get("kernel", 1) for inner in blocks[0]["layers"])
        n = round(np.log(receptive_field) / np.log(k))
        if k ** n != receptive_field:
            raise BenchError(f"receptive field {receptive_field} is not a power of the default kernel {k}")
        blocks[0]["dilations"] = [k ** i for i in range(n)]
    return d


def conv_stack_spec(dilations) -> dict:
    return {"head": "regression",
            "layers": [{"type": "conv", "filters": 16, "kernel": 2, "dilation": int(dd), "activation": "relu"}
                       for dd in dilations]}


MODEL_SPECS = {
    # name: (spec builder, description)
    "default": (lambda: wavenet_spec(), "the default spec (`edgewave spec`)"),
    "default-2x": (lambda: wavenet_spec(2), "the default spec with every layer 2× wider: ~4× the MACs"),
    "wavenet-rf1024": (lambda: wavenet_spec(1, 1024), "the default spec with residual blocks added up to a "
                                                      "receptive field of 1 024"),
    "wavenet-rf4096": (lambda: wavenet_spec(1, 4096), "the default spec with residual blocks added up to a "
                                                      "receptive field of 4 096"),
    "conv6-d1": (lambda: conv_stack_spec([1] * 6), "6 causal conv layers, 16 channels, kernel 2, ReLU, "
                                                   "dilations 1, 1, 1, 1, 1, 1"),
    "conv6-dilated": (lambda: conv_stack_spec([1, 4, 16, 64, 256, 1024]),
                      "6 causal conv layers, 16 channels, kernel 2, ReLU, dilations 1, 4, 16, 64, 256, 1024"),
}


@dataclass
class Model:
    name: str
    precision: str
    spec: dict
    graph: object
    prog: object
    stream: bytes
    numbers: dict        # from edgewave.emit.pipeline.render
    c_dir: Path
    prefix: str = "model"
    _codes: dict = field(default_factory=dict)
    _want: dict = field(default_factory=dict)

    @property
    def rf(self) -> int:
        return int(self.graph.receptive_field)

    @property
    def macs(self) -> int:
        return int(self.numbers["macs_per_sample"])

    @property
    def label(self) -> str:
        return f"{self.name} {self.precision}"

    def sources(self):
        from edgewave.emit import pipeline as emit_pipeline
        return emit_pipeline.c_sources(self.c_dir, self.prefix)

    def codes(self, n: int) -> np.ndarray:
        """n consecutive quantized samples of the bundled speech (from the start of its test split)."""
        if n not in self._codes:
            from edgewave.convert.pipeline import quantize_input
            x = Workspace.speech_norm()
            start = int(len(x) * 0.9)
            seg = np.resize(x[start:], n) if n > len(x) - start else x[start:start + n]
            self._codes[n] = quantize_input(self.prog, seg)
        return self._codes[n]

    def want(self, n: int) -> np.ndarray:
        """What every backend must output for codes(n): the numpy engine over the whole sequence."""
        if n not in self._want:
            from edgewave.engine import Engine
            self._want[n] = Engine(self.prog).run_sequence(self.codes(n))
        return self._want[n]


class Workspace:
    _speech = None

    def __init__(self, work: Path, settings: Settings):
        self.work = work
        self.s = settings
        self.models: dict[tuple[str, str], Model] = {}
        self.hosts: dict[tuple[str, str], Path] = {}
        self.qemu: dict[tuple, dict] = {}

    def real_speech(self) -> dict:
        """Table 7's models and recordings, trained once per run (table 8 conceals with them)."""
        if getattr(self, "_t7", None) is None:
            self._t7 = jobs.table7(self, run, log)
        return self._t7

    @classmethod
    def speech_norm(cls) -> np.ndarray:
        """The bundled recording normalised with its training split's mean and std (as `edgewave train`)."""
        if cls._speech is None:
            from edgewave import signals
            x = signals.load_signal(str(SPEECH)).samples.astype(np.float64)
            train, _, _ = signals.split_by_time(len(x))
            norm = signals.compute_norm(x[train])
            cls._speech = ((x - norm.offset) / norm.scale).astype(np.float32)
        return cls._speech

    def model(self, name: str, precision: str) -> Model:
        key = (name, precision)
        if key in self.models:
            return self.models[key]
        import keras
        from edgewave import spec as spec_mod
        from edgewave.convert import export, pipeline
        from edgewave.emit import pipeline as emit_pipeline
        from edgewave.frontend.build import build_model, get_weights

        spec = MODEL_SPECS[name][0]()
        graph = spec_mod.to_graph(spec_mod.parse(copy.deepcopy(spec), source=name))
        # Random weights (Keras initialisers) and random non-zero biases, as tests/test_convert.py does.
        keras.utils.set_random_seed(SEED)
        kmodel = build_model(graph)
        rng = np.random.default_rng(SEED)
        for layer in kmodel.layers:
            w = layer.get_weights()
            if len(w) == 2:
                layer.set_weights([w[0], rng.normal(0, 0.3, w[1].shape).astype(np.float32)])
        graph.weights = get_weights(kmodel, graph)
        x = self.speech_norm()
        x_cal = x[: int(len(x) * 0.8)][: max(8000, 3 * graph.receptive_field)]
        _, prog = pipeline.build(graph, x_cal, precision)
        stream = export.stream_model(prog)
        manifest = {"receptive_field": graph.receptive_field, "normalization": {"offset": 0.0, "scale": 1.0},
                    "sample_rate": 16000}
        files, numbers = emit_pipeline.render(manifest, prog, stream, "model")
        c_dir = self.work / "c" / f"{name}_{precision}"
        for rel, text in files.items():
            path = c_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        m = Model(name, precision, spec, graph, prog, stream, numbers, c_dir)
        self.models[key] = m
        log(f"model {m.label}: receptive field {m.rf}, {m.macs} MACs/sample")
        return m

    # -- generated C on the host --------------------------------------------------------
    def host_binary(self, m: Model) -> Path:
        key = (m.name, m.precision)
        if key not in self.hosts:
            from edgewave import ctools
            cc = shutil.which("gcc") or shutil.which("cc")
            if cc is None:
                raise BenchError("no host C compiler (gcc) found")
            srcs, incs = m.sources()
            exe = self.work / "host" / f"{m.name}_{m.precision}" / "bench_host"
            exe.parent.mkdir(parents=True, exist_ok=True)
            run([cc, *ctools.CFLAGS, *[f"-I{d}" for d in incs], *srcs, HARNESS, "-o", exe, "-lm"],
                f"host build of {m.label}")
            self.hosts[key] = exe
        return self.hosts[key]

    def c_host(self, m: Model, codes: np.ndarray, repeats: int, window: int = 0) -> tuple[dict, np.ndarray]:
        """Time the generated C on the host: ns per output (median over repeats, warm-up dropped), outputs."""
        exe = self.host_binary(m)
        with tempfile.TemporaryDirectory(dir=self.work) as tmp:
            tmp = Path(tmp)
            codes.astype(codes.dtype.newbyteorder("<")).tofile(tmp / "IN.bin")
            out = run([exe, "IN.bin", "OUT.bin", repeats + 1, *([window] if window else [])],
                      f"{m.label} on the host", cwd=tmp)
            ns = re.findall(r"EW_BENCH cpu_ns_per_output=([0-9.]+) wall_ns_per_output=([0-9.]+)", out)
            if len(ns) != repeats + 1:
                raise BenchError(f"bench_host printed {len(ns)} timings, expected {repeats + 1}")
            out_dtype = np.dtype(m.prog.dtype)  # int8 models take int16 input codes (their 16-bit input stage)
            y = np.fromfile(tmp / "OUT.bin", dtype=out_dtype.newbyteorder("<")).astype(out_dtype)
        n_out = len(codes) - window + 1 if window else len(codes)
        ns = ns[1:]  # the first repeat warms caches and branch predictors
        return (summarize([float(c) * 1e-9 for c, _ in ns], [float(w) * 1e-9 for _, w in ns], n_out),
                y.reshape(n_out, -1))

    def c_host_interleaved(self, models, n: int, rounds: int, repeats: int = 2) -> list[dict]:
        """Host timings of several models taken in turns (A, B, A, B, …) so that load drifts hit all alike."""
        cpu, wall = [[] for _ in models], [[] for _ in models]
        for _ in range(rounds):
            for i, m in enumerate(models):
                t, y = self.c_host(m, m.codes(n), repeats)
                require_equal(y, m.want(n), f"{m.label} host C")
                cpu[i] += t["all_s"]
                wall[i] += t["all_wall_s"]
        return [summarize(c, w, n) for c, w in zip(cpu, wall)]

    # -- Cortex-M on QEMU ---------------------------------------------------------------
    def cortex_m(self, m: Model, target: str, portable: bool = False, run_it: bool = True) -> dict:
        """Build (and run) the generated C for a Cortex-M target; exact instruction counts, sizes."""
        key = (m.name, m.precision, target, portable, run_it)
        for k in (key, key[:-1] + (True,)):  # a run also has the sizes
            if k in self.qemu:
                return self.qemu[k]
        from edgewave import ctools
        from edgewave.errors import UserError
        srcs, incs = m.sources()
        out_dir = self.work / "qemu" / f"{m.name}_{m.precision}_{target}{'_portable' if portable else ''}"
        defines = ("EW_FORCE_PORTABLE",) if portable else ()
        try:
            elf, sizes = ctools.build_cortex_m(target, srcs, incs, out_dir, defines=defines)
        except UserError as e:
            if any(k in str(e) for k in ("will not fit", "overflowed", "left for heap and stack")):
                res = {"fits": False, "error": str(e)}
                self.qemu[key] = res
                return res
            raise BenchError(f"{m.label} for {target}: {e}") from None
        res = {"fits": True, "sizes": sizes}
        if run_it:
            n = self.s.qemu_samples
            try:
                y, stats = ctools.run_qemu(target, elf, m.codes(n), out_dtype=m.prog.dtype)
            except UserError as e:
                raise BenchError(f"{m.label} on {target} (QEMU): {e}") from None
            require_equal(y, m.want(n), f"{m.label} on {target} (QEMU)")
            res.update(stats)
            res["per_sample"] = stats["instructions"] / stats["samples"]
            res["per_mac"] = res["per_sample"] / m.macs
        self.qemu[key] = res
        return res


# ---------------------------------------------------------------------------------- LiteRT (default resolver)

def litert_default_stream(prog, model: bytes):
    """The streaming model in LiteRT with the default op resolver (what a user gets), one thread."""
    from ai_edge_litert.interpreter import Interpreter
    from edgewave.runners import LiteRTStream

    class LiteRTDefaultStream(LiteRTStream):
        name = "litert-default"

        def __init__(self):  # noqa: D401 - same as LiteRTStream, other resolver
            super(LiteRTStream, self).__init__(prog)
            self.ip = Interpreter(model_content=model, num_threads=1)
            self.ip.allocate_tensors()
            runner = self.ip.get_signature_runner("serving_default")
            self.inputs = {k: v["index"] for k, v in runner.get_input_details().items()}
            self.outputs = {k: v["index"] for k, v in runner.get_output_details().items()}

    return LiteRTDefaultStream()


def litert_ref_stream(prog, model: bytes):
    from edgewave.runners import LiteRTStream
    return LiteRTStream(prog, model)


def tflm_stream(prog, model: bytes):
    from edgewave.runners import TFLMStream
    return TFLMStream(prog, model)


# ---------------------------------------------------------------------------------- table 1

def table1(ws: Workspace) -> dict:
    """Streaming vs recomputing the receptive field for every output."""
    from edgewave.convert import export
    from edgewave.engine import Engine
    from ai_edge_litert.interpreter import Interpreter

    s = ws.s
    rows, ratios = [], {}
    load = [os.getloadavg()[0]]
    for i, (name, rf_target) in enumerate((("default", 256), ("wavenet-rf1024", 1024), ("wavenet-rf4096", 4096))):
        m = ws.model(name, "int16x8")
        rf = m.rf
        if rf != rf_target:
            raise BenchError(f"{name}: receptive field {rf}, expected {rf_target}")
        log(f"table 1: RF {rf}")
        # generated C, host
        n_rec = max(10, s.c_recompute_budget // rf)
        n = max(s.c_stream_samples, rf - 1 + n_rec)
        codes, want = m.codes(n), m.want(n)
        st, y = ws.c_host(m, codes[:s.c_stream_samples], s.c_repeats)
        require_equal(y, want[:s.c_stream_samples], f"{m.label} streaming C")
        rc, y = ws.c_host(m, codes[:rf - 1 + n_rec], max(3, s.c_repeats // 2), window=rf)
        require_equal(y, want[rf - 1:rf - 1 + n_rec], f"{m.label} recompute C")
        rows.append({"rf": rf, "model": name, "backend": "generated C, host (gcc -O2)", "stream": st, "recompute": rc,
                     "stream_vs_engine_lsb": 0, "recompute_vs_engine_lsb": 0,
                     "how_stream": "`<prefix>_step_q` once per sample",
                     "how_recompute": f"`<prefix>_init` + {rf} × `<prefix>_step_q` over the last {rf} samples, "
                                      "per output"})
        ratios[str(rf)] = rc["median_s"] / st["median_s"]
        # LiteRT, default resolver, one thread, Python loop
        ns = s.py_stream_samples
        lit = litert_default_stream(m.prog, m.stream)
        out = {}
        st = time_repeats(lambda: out.__setitem__("y", lit.run(codes[:ns])), s.py_repeats, ns)
        d_stream = max_lsb(out["y"], want[:ns])
        n_full = s.full_outputs[i]
        ip = Interpreter(model_content=export.full_model(m.prog, rf), num_threads=1)
        ip.allocate_tensors()
        full_runner = ip.get_signature_runner("serving_default")
        ts = list(range(rf - 1, rf - 1 + n_full))

        def recompute():
            out["full"] = np.stack([full_runner(x=codes[t - rf + 1:t + 1].reshape(1, -1, 1))["y"][0, -1] for t in ts])

        rc = time_repeats(recompute, s.py_repeats, n_full)
        d_full = max_lsb(out["full"], want[ts[0]:ts[-1] + 1])
        rows.append({"rf": rf, "model": name, "backend": "LiteRT (default resolver, 1 thread), Python loop",
                     "stream": st, "recompute": rc, "stream_vs_engine_lsb": d_stream,
                     "recompute_vs_engine_lsb": d_full,
                     "how_stream": "`model_stream.tflite`, one invoke per sample, ring buffers in numpy",
                     "how_recompute": f"`model_full.tflite` with window {rf}, one invoke per output"})
        # numpy engine
        ne, nr = s.engine_stream_samples, s.engine_recompute_outputs
        eng = Engine(m.prog)

        def stream_engine():
            eng.reset()
            out["e"] = eng.stream(codes[:ne])

        st = time_repeats(stream_engine, s.engine_repeats, ne)
        require_equal(out["e"], want[:ne], f"{m.label} numpy engine streaming")
        ts = list(range(rf - 1, rf - 1 + nr))
        rc = time_repeats(lambda: out.__setitem__("r", np.stack([eng.run_sequence(codes[t - rf + 1:t + 1])[-1]
                                                                   for t in ts])), s.engine_repeats, nr)
        require_equal(out["r"], want[ts[0]:ts[-1] + 1], f"{m.label} numpy engine recompute")
        rows.append({"rf": rf, "model": name, "backend": "numpy integer engine", "stream": st, "recompute": rc,
                     "stream_vs_engine_lsb": 0, "recompute_vs_engine_lsb": 0,
                     "how_stream": "`Engine.step` once per sample",
                     "how_recompute": f"`Engine.run_sequence` over the last {rf} samples, per output"})
    load.append(os.getloadavg()[0])
    for r in rows:
        r["ratio"] = r["recompute"]["median_s"] / r["stream"]["median_s"]
    return {"rows": rows, "stream_vs_recompute_ratio": ratios, "load_average_1min": load}


def md_table1(t) -> str:
    rows = [[r["rf"], r["backend"], us(r["stream"]["median_s"]), us(r["recompute"]["median_s"]),
             f"**{times(r['ratio'])}**", f"{r['stream_vs_engine_lsb']} / {r['recompute_vs_engine_lsb']}"]
            for r in t["rows"]]
    head = ["receptive field", "backend", "streaming µs/sample", "recompute µs/output", "recompute / streaming",
            "max LSB vs engine (stream / recompute)"]
    return md_table(head, rows)


# ---------------------------------------------------------------------------------- table 2

TABLE2_TARGETS = ("cortex-m4", "cortex-m7", "cortex-m33")


def table2(ws: Workspace) -> dict:
    """Per-sample cost against dilation at fixed depth and width."""
    s = ws.s
    rows = []
    for precision in ("int8", "int16x8"):
        a, b = ws.model("conv6-d1", precision), ws.model("conv6-dilated", precision)
        log(f"table 2: {precision}")
        for target in TABLE2_TARGETS:
            ra, rb = ws.cortex_m(a, target), ws.cortex_m(b, target)
            rows.append({"precision": precision, "where": f"{target} (QEMU, exact instructions)",
                         "unit": "instructions/sample", "d1": ra["per_sample"], "dilated": rb["per_sample"],
                         "ratio": rb["per_sample"] / ra["per_sample"], "exact": True})
        ta, tb = ws.c_host_interleaved((a, b), s.c_stream_samples, rounds=s.c_repeats)
        rows.append({"precision": precision, "where": f"host, generated C (gcc -O2), median of {ta['repeats']} "
                                                      "interleaved repeats",
                     "unit": "ns/sample (CPU)", "d1": ta["median_s"] * 1e9, "dilated": tb["median_s"] * 1e9,
                     "ratio": tb["median_s"] / ta["median_s"], "exact": False})
    a, b = ws.model("conv6-d1", "int16x8"), ws.model("conv6-dilated", "int16x8")
    headline = next(r["ratio"] for r in rows if r["precision"] == "int16x8" and r["where"].startswith("cortex-m4"))
    return {"rows": rows, "rf_d1": a.rf, "rf_dilated": b.rf, "macs": a.macs,
            "state_bytes": {"d1": a.prog.state_bytes(), "dilated": b.prog.state_bytes()},
            "dilation_cost_ratio": headline}


def md_table2(t) -> str:
    rows = [[r["precision"], r["where"], r["unit"], fmt(r["d1"], 4), fmt(r["dilated"], 4), f"**{r['ratio']:.3f}**"]
            for r in t["rows"]]
    return md_table(["precision", "where / how", "unit", f"dilations all 1 (RF {t['rf_d1']})",
                     f"dilations 1…1024 (RF {t['rf_dilated']:,})", "ratio"], rows)


# ---------------------------------------------------------------------------------- table 3

def table3(ws: Workspace) -> dict:
    """Per-sample time of the streaming model: generated C vs LiteRT, TFLM and the numpy engine."""
    from edgewave.engine import Engine
    s = ws.s
    rows, c_time = [], {}
    load = [os.getloadavg()[0]]
    for precision in ("int16x8", "int8"):
        m = ws.model("default", precision)
        log(f"table 3: {m.label}")
        n = s.c_stream_samples
        want = m.want(n)
        tc, y = ws.c_host(m, m.codes(n), s.c_repeats)
        require_equal(y, want, f"{m.label} host C")
        rows.append({"precision": precision, "backend": "generated C (gcc -O2), `model_step_q`", "t": tc, "lsb": 0})
        c_time[precision] = tc["median_s"]
        ns = s.py_stream_samples
        codes = m.codes(n)[:ns]
        for label, make in (("LiteRT, default resolver (1 thread), Python loop", litert_default_stream),
                            ("LiteRT, BUILTIN_REF resolver, Python loop", litert_ref_stream),
                            ("TFLite Micro (tflite-micro wheel), Python loop", tflm_stream)):
            runner = make(m.prog, m.stream)
            out = {"invoke": []}
            plain_invoke = runner.invoke

            def timed_invoke():  # how much of a step is the interpreter itself, not the Python around it
                c0 = time.thread_time()
                plain_invoke()
                out["acc"] += time.thread_time() - c0

            runner.invoke = timed_invoke

            def stream_it():
                out["acc"] = 0.0
                out["y"] = runner.run(codes)
                out["invoke"].append(out["acc"] / ns)

            t = time_repeats(stream_it, s.py_repeats, ns)
            rows.append({"precision": precision, "backend": label, "t": t, "lsb": max_lsb(out["y"], want[:ns]),
                         "invoke_s": median(out["invoke"][1:] or out["invoke"])})
        eng = Engine(m.prog)
        ne = s.engine_stream_samples
        out = {}

        def stream_engine():
            eng.reset()
            out["y"] = eng.stream(codes[:ne])

        t = time_repeats(stream_engine, s.engine_repeats, ne)
        require_equal(out["y"], want[:ne], f"{m.label} numpy engine")
        rows.append({"precision": precision, "backend": "numpy integer engine, `Engine.step`", "t": t, "lsb": 0})

        def run_engine():
            eng.reset()
            out["y"] = eng.run(all_codes)

        all_codes = m.codes(n)
        t = time_repeats(run_engine, s.engine_repeats, n)
        require_equal(out["y"], want, f"{m.label} numpy engine, whole sequence")
        rows.append({"precision": precision, "backend": "numpy integer engine, whole sequence `Engine.run`", "t": t,
                     "lsb": 0, "samples_per_s": 1 / t["median_s"]})  # t is per sample
        for r in rows:
            if r["precision"] == precision:
                r["vs_c"] = r["t"]["median_s"] / tc["median_s"]
    load.append(os.getloadavg()[0])
    speedup = {p: next(r["vs_c"] for r in rows if r["precision"] == p and r["backend"].startswith("LiteRT, default"))
               for p in ("int16x8", "int8")}
    speedup_ref = {p: next(r["vs_c"] for r in rows if r["precision"] == p and "BUILTIN_REF" in r["backend"])
                   for p in ("int16x8", "int8")}
    speedup_tflm = {p: next(r["vs_c"] for r in rows if r["precision"] == p and r["backend"].startswith("TFLite"))
                    for p in ("int16x8", "int8")}
    invoke_only = {p: next(r["invoke_s"] for r in rows if r["precision"] == p
                           and r["backend"].startswith("LiteRT, default")) / c_time[p] for p in ("int16x8", "int8")}
    return {"rows": rows, "c_vs_litert_speedup": speedup["int16x8"], "c_vs_litert_speedup_by_precision": speedup,
            "c_vs_litert_invoke_only_speedup": invoke_only,
            "c_vs_litert_ref_speedup": speedup_ref, "c_vs_tflm_speedup": speedup_tflm, "load_average_1min": load}


def md_table3(t) -> str:
    rows = [[r["precision"], r["backend"], us(r["t"]["median_s"]),
             f"{us(r['t']['min_s'])}–{us(r['t']['max_s'])}", us(r["invoke_s"]) if "invoke_s" in r else "–",
             f"{r['t']['items']:,} × {r['t']['repeats']}",
             "1× (reference)" if r["vs_c"] == 1 else f"**{times(r['vs_c'])}** slower", r["lsb"]]
            for r in t["rows"]]
    return md_table(["precision", "backend", "µs/sample (median CPU time)", "min–max", "of which `invoke()`",
                     "samples × repeats",
                     "vs generated C", "max LSB vs engine"], rows)


# ---------------------------------------------------------------------------------- table 4

TABLE4_TARGETS = (("cortex-m0plus", False, "portable C (ARMv6-M)"),
                  ("cortex-m4", True, "portable C (`-DEW_FORCE_PORTABLE`)"),
                  ("cortex-m4", False, "DSP (SMLAD)"),
                  ("cortex-m7", False, "DSP (SMLAD)"),
                  ("cortex-m33", False, "DSP (SMLAD)"))


def table4(ws: Workspace) -> dict:
    """Cortex-M instructions per sample and per MAC (QEMU, exact)."""
    jobs = []
    for name in ("default", "default-2x"):
        for precision in ("int8", "int16x8"):
            m = ws.model(name, precision)
            m.want(ws.s.qemu_samples)
            for target, portable, path in TABLE4_TARGETS:
                jobs.append((m, target, portable, path))
    log(f"table 4: {len(jobs)} Cortex-M builds and QEMU runs")
    with ThreadPoolExecutor(max_workers=2) as pool:  # instruction counts do not depend on host load
        results = list(pool.map(lambda j: ws.cortex_m(j[0], j[1], portable=j[2]), jobs))
    rows = []
    for (m, target, portable, path), r in zip(jobs, results):
        row = {"model": m.name, "precision": m.precision, "macs": m.macs, "target": target, "path": path,
               "portable": portable, "fits": r["fits"]}
        if r["fits"]:
            row.update(per_sample=r["per_sample"], max_step=r["max_step"], per_mac=r["per_mac"],
                       samples=r["samples"], flash=r["sizes"]["model"]["text"] + r["sizes"]["model"]["rodata"]
                       + r["sizes"]["model"]["data"])
            for f in MHZ:
                row[f"rate_{f}mhz_hz"] = f * 1e6 / r["max_step"]
                row[f"rate_{f}mhz_mean_hz"] = f * 1e6 / r["per_sample"]
        else:
            row["error"] = r["error"]
        rows.append(row)

    def pick(name, precision, target="cortex-m4"):
        return next(r for r in rows if r["model"] == name and r["precision"] == precision and r["target"] == target
                    and not r["portable"])

    costs = write_cost_model(ws, rows)
    return {"rows": rows, "cost_model": costs,
            "m4_int8_instructions_per_mac": pick("default", "int8")["per_mac"],
            "m4_default_instructions_per_sample": pick("default", "int16x8")["per_sample"],
            "m4_default_instructions_per_sample_by_precision": {p: pick("default", p)["per_sample"]
                                                                for p in ("int8", "int16x8")},
            "m4_instructions_per_mac": {f"{n} {p}": pick(n, p)["per_mac"] for n in ("default", "default-2x")
                                        for p in ("int8", "int16x8")}}


def write_cost_model(ws: Workspace, rows: list[dict]) -> dict:
    """Fit instructions ≈ per_mac·MACs + per_value·values per core and precision (the path a build for that
    core takes) and store it for `edgewave info --target`."""
    from edgewave import realtime

    values = {r["model"]: ws.model(r["model"], r["precision"]).graph.values_per_sample() for r in rows}
    costs = {}
    for target in realtime.TARGETS:
        for precision in realtime.PRECISIONS:
            pts = [(r["macs"], values[r["model"]], r["per_sample"]) for r in rows
                   if r["target"] == target and r["precision"] == precision and not r["portable"] and r["fits"]]
            if pts:
                costs.setdefault(target, {})[precision] = {k: round(v, 4) for k, v in realtime.fit(pts).items()}
    doc = {"source": "make bench (benchmarks/run.py, table 4): generated C on QEMU, exact instruction counts, "
                     f"models {', '.join(sorted(values))}",
           "measured": time.strftime("%Y-%m-%d"), "costs": costs}
    path = ROOT / "edgewave" / realtime.COSTS_FILE
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    log(f"table 4: wrote the Cortex-M cost model to {path.relative_to(ROOT)}")
    return doc


def md_table4(t) -> str:
    rows = []
    for r in t["rows"]:
        lead = [r["model"], r["precision"], f"{r['macs']:,}", r["target"].replace("cortex-", "Cortex-").replace(
            "m0plus", "M0+").replace("-m", "-M"), r["path"]]
        if not r["fits"]:
            rows.append(lead + ["does not fit: the QEMU `microbit` board has 16 KB of RAM"] + [""] * 5)
            continue
        rows.append(lead + [f"{r['per_sample']:,.0f}", f"{r['max_step']:,}", f"{r['per_mac']:.2f}",
                            *(f"{r[f'rate_{f}mhz_hz'] / 1e3:,.1f}" for f in MHZ), f"{r['flash']:,}"])
    return md_table(["model", "precision", "MACs/sample", "core", "kernel path", "instructions/sample (mean)",
                     "longest step", "instructions/MAC", *(f"real-time kHz @ {f} MHz" for f in MHZ),
                     "flash bytes"], rows)


# ---------------------------------------------------------------------------------- table 5

def worst_stack(m: Model, target: str = "cortex-m4") -> dict:
    """Worst-case stack of `<prefix>_step_q` from GCC's -fcallgraph-info=su (static call graph, no recursion)."""
    from edgewave import ctools
    t = ctools.TARGETS[target]
    srcs, incs = m.sources()
    out = m.c_dir.parent.parent / "stack" / f"{m.name}_{m.precision}"
    out.mkdir(parents=True, exist_ok=True)
    frames, edges, unknown, dynamic = {}, {}, set(), False
    for i, src in enumerate(srcs):
        obj = out / f"{i:02d}_{Path(src).stem}.o"
        run([ctools.ARM_CC, *ctools.CFLAGS, *t.cpu_flags, *[f"-I{d}" for d in incs], "-fcallgraph-info=su",
             "-c", src, "-o", obj], f"stack analysis of {m.label}")
        text = obj.with_suffix(".ci").read_text()
        for title, label in re.findall(r'node: \{ title: "([^"]+)" label: "([^"]*)"', text):
            mm = re.search(r"(\d+) bytes \((\w+)", label)
            if mm:
                frames[title] = max(frames.get(title, 0), int(mm.group(1)))
                dynamic |= mm.group(2) != "static"
        for a, b in re.findall(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"', text):
            edges.setdefault(a, set()).add(b)

    def depth(fn, seen=()):
        if fn in seen:
            raise BenchError(f"recursion through {fn} in {m.label}: no static stack bound")
        if fn not in frames:
            unknown.add(fn)
            return 0
        return frames[fn] + max((depth(c, seen + (fn,)) for c in edges.get(fn, ())), default=0)

    root = f"{m.prefix}_step_q"
    if root not in frames:
        raise BenchError(f"stack analysis: {root} not found in {m.label}")
    return {"bytes": depth(root), "step_frame": frames[root], "dynamic": dynamic,
            "external": sorted(u for u in unknown)}


def table5(ws: Workspace) -> dict:
    """Memory: generated C vs TFLite Micro vs the theoretical minimum state."""
    rows = []
    for name, precision in (("default", "int8"), ("default", "int16x8"), ("default-2x", "int8"),
                            ("default-2x", "int16x8"), ("wavenet-rf4096", "int16x8"), ("conv6-dilated", "int16x8")):
        m = ws.model(name, precision)
        log(f"table 5: {m.label}")
        build = ws.cortex_m(m, "cortex-m4", run_it=False)
        if not build["fits"]:
            raise BenchError(f"{m.label} does not fit the Cortex-M4 board: {build['error']}")
        sz = build["sizes"]["model"]
        stack = worst_stack(m)
        n = m.numbers
        rows.append({"model": name, "precision": precision, "rf": m.rf, "macs": m.macs,
                     "min_state": int(m.prog.state_bytes()), "c_state_ram": int(n["ram_bytes"]),
                     "c_static_ram": int(sz["data"] + sz["bss"]), "c_stack": stack["bytes"],
                     "c_stack_external": stack["external"], "c_stack_dynamic": stack["dynamic"],
                     "c_flash": int(sz["text"] + sz["rodata"] + sz["data"]), "c_text": int(sz["text"]),
                     "c_rodata": int(sz["rodata"]),
                     "tflm_arena": int(n["tflm_arena_bytes"]), "tflm_ring": int(m.prog.state_bytes()),
                     "tflm_ram": int(n["tflm_arena_bytes"] + m.prog.state_bytes()), "tflite": len(m.stream)})
    for r in rows:
        r["ram_vs_tflm"] = r["c_state_ram"] / r["tflm_ram"]
        r["ram_vs_min"] = r["c_state_ram"] / r["min_state"]
    head = next(r for r in rows if r["model"] == "default" and r["precision"] == "int16x8")
    return {"rows": rows, "ram_vs_tflm": head["ram_vs_tflm"],
            "ram_vs_tflm_by_model": {f"{r['model']} {r['precision']}": r["ram_vs_tflm"] for r in rows}}


def md_table5(t) -> str:
    rows = [[r["model"], r["precision"], f"{r['rf']:,}", f"{r['min_state']:,}",
             f"{r['c_state_ram']:,} ({r['ram_vs_min']:.2f}×)", f"{r['c_stack']:,}", f"{r['c_flash']:,}",
             f"{r['tflm_arena']:,} + {r['tflm_ring']:,} = {r['tflm_ram']:,}", f"{r['tflite']:,}",
             f"**{r['ram_vs_tflm']:.2f}**"] for r in t["rows"]]
    return md_table(["model", "precision", "RF", "min state Σ(k−1)·d·C·bytes", "generated C state RAM (× min)",
                     "+ worst stack", "generated C flash (M4)", "TFLM arena + ring state", "`.tflite` bytes",
                     "C RAM / TFLM RAM"], rows)


# ---------------------------------------------------------------------------------- table 6

def table6(ws: Workspace) -> dict:
    """Accuracy on the bundled recording: float vs int16x8 vs int8 vs LPC-32 (trained once)."""
    from edgewave import ctools
    from edgewave.convert import pipeline
    from edgewave.metrics import prediction_gain_db
    from edgewave.train import to_value

    s = ws.s
    ew = [sys.executable, "-m", "edgewave.cli"]
    model_dir = ws.work / "trained"
    t0 = time.monotonic()
    limit = ("--max-minutes", s.train_minutes) if s.train_minutes else ()
    log("table 6: training the default spec" + (f" (at most {s.train_minutes:g} min)" if limit else ""))
    trained = json.loads(run([*ew, "train", "--data", SPEECH, "--out", model_dir, "--json", "--seed", SEED,
                              *limit, *s.train_args], "edgewave train", stderr_to_console=True))
    train_s = time.monotonic() - t0
    rows = {"train": trained, "train_wall_seconds": train_s, "convert": {}, "c_gain_db": {}}
    for precision in ("int16x8", "int8"):
        out = ws.work / f"converted-{precision}"
        log(f"table 6: edgewave convert --precision {precision}")
        rep = json.loads(run([*ew, "convert", model_dir, "--data", SPEECH, "--precision", precision, "--out", out,
                              "--json"], f"edgewave convert --precision {precision}", stderr_to_console=False))
        rows["convert"][precision] = rep
        # The generated C on the host over the whole held-out test split: its gain must be the engine's.
        from edgewave.emit import pipeline as emit_pipeline
        manifest, prog, stream = pipeline.load(out)
        files, _ = emit_pipeline.render(manifest, prog, stream, "model")
        c_dir = ws.work / "c" / f"trained_{precision}"
        for rel, text in files.items():
            (c_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (c_dir / rel).write_text(text)
        srcs, incs = emit_pipeline.c_sources(c_dir, "model")
        exe = ctools.build_host(srcs, incs, ws.work / "host" / f"trained_{precision}")
        graph, _, _, x = pipeline.load_input(str(model_dir), str(SPEECH), None)
        from edgewave import signals
        test = x[signals.split_by_time(len(x))[2]]
        codes = pipeline.quantize_input(prog, test)
        y = ctools.run_host(exe, codes, out_dtype=prog.dtype)
        from edgewave.engine import Engine
        require_equal(y, Engine(prog).run_sequence(codes), f"trained {precision} generated C on the test split")
        rf = graph.receptive_field
        pred = to_value(graph, pipeline.dequantize_output(prog, y))
        rows["c_gain_db"][precision] = round(prediction_gain_db(test[rf:], pred[rf - 1:-1]), 3)
        if precision == "int16x8":
            rows["previous_sample_gain_db"] = round(prediction_gain_db(test[rf:], test[rf - 1:-1]), 3)
            rows["test_samples"] = int(len(test) - rf)
    return rows


def md_table6(t) -> str:
    tr, cv = t["train"], t["convert"]
    f_keras = tr["prediction_gain_db"]
    f_eng = cv["int16x8"]["float_gain_db"]
    rows = [["float32, Keras (`edgewave train`)", f"{f_keras:.2f}", f"{f_keras - f_eng:+.2f}",
             "`train --json`: prediction_gain_db"],
            ["float32, numpy engine (streaming program)", f"{f_eng:.2f}", "0 (reference)",
             "`convert --json`: float_gain_db"]]
    for p in ("int16x8", "int8"):
        rows.append([f"{p}, numpy engine = TFLite Micro = generated C", f"**{cv[p]['quant_gain_db']:.2f}**",
                     f"{cv[p]['quant_gain_db'] - f_eng:+.2f}",
                     f"`convert --json`: quant_gain_db; generated C on the host: {t['c_gain_db'][p]:.2f} dB; "
                     f"engine vs TFLM max {cv[p]['engine_vs_tflm_max_lsb']:g} LSB, LiteRT(ref) vs TFLM max "
                     f"{cv[p]['litert_ref_vs_tflm_max_lsb']:g} LSB on {cv[p]['litert_ref_vs_tflm_differing']:,} of "
                     f"{cv[p]['checked_samples']:,} outputs"])
    rows.append(["LPC-32 (least squares on the training split)", f"{tr['lpc32_gain_db']:.2f}",
                 f"{tr['lpc32_gain_db'] - f_eng:+.2f}", "`train --json`: lpc32_gain_db"])
    rows.append(["previous sample (x̂[t] = x[t−1])", f"{t['previous_sample_gain_db']:.2f}",
                 f"{t['previous_sample_gain_db'] - f_eng:+.2f}", "computed by run.py on the same samples"])
    return md_table(["predictor", "held-out prediction gain dB", "dB vs float program", "source"], rows)


# ---------------------------------------------------------------------------------- machine, report

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


TABLES = {
    1: ("Streaming vs recomputing the receptive field", table1),
    2: ("Per-sample cost against dilation (6 layers, 16 channels)", table2),
    3: ("Per-sample time: generated C vs LiteRT, TFLite Micro and the numpy engine", table3),
    4: ("Cortex-M instructions per sample and per MAC (QEMU, exact)", table4),
    5: ("Memory: generated C vs TFLite Micro vs the minimum state", table5),
    6: ("Accuracy on the bundled recording", table6),
    7: ("Training on real speech", lambda ws: ws.real_speech()),
    8: ("Packet-loss concealment on held-out real speech", lambda ws: jobs.table8(ws, run, log, ws.real_speech())),
    9: ("Anomaly detection on a real PPG recording", lambda ws: jobs.table9(ws, run, log)),
    10: ("Generated C vs TensorFlow Lite Micro on Cortex-M4 (QEMU, exact)", lambda ws: tflm_m4.table10(ws, run, log)),
}

HEADLINE_DEFINITIONS = {
    "stream_vs_recompute_ratio": "table 1, generated C on the host, int16x8: (time to recompute one output from the "
                                 "last RF samples) / (time of one streaming step), keyed by receptive field",
    "dilation_cost_ratio": "table 2: Cortex-M4 instructions per sample (QEMU, exact), int16x8, 6 conv layers x 16 "
                           "channels, dilations 1,4,16,64,256,1024 / dilations all 1",
    "c_vs_litert_speedup": "table 3: default model int16x8, LiteRT (default resolver, 1 thread, Python loop) time "
                           "per sample / generated C (host) time per sample",
    "m4_int8_instructions_per_mac": "table 4: default model int8 on Cortex-M4 (DSP path), instructions per sample / "
                                    "MACs per sample",
    "m4_default_instructions_per_sample": "table 4: default model, default precision (int16x8), Cortex-M4 (DSP "
                                          "path), mean instructions per sample",
    "ram_vs_tflm": "table 5: default model int16x8, generated C state RAM / (TFLM arena + ring state kept "
                   "outside it)",
    "tflm_cmsis_m4_instructions_per_sample": "table 10: default model int16x8, stock TFLM + CMSIS-NN on Cortex-M4 "
                                             "(QEMU, exact), mean instructions per sample of the whole step (taps "
                                             "in, invoke(), outputs out and rings pushed)",
    "m4_vs_tflm_cmsis_speedup": "table 10: default model int16x8 on Cortex-M4, TFLM + CMSIS-NN instructions per "
                                "sample (whole step) / generated C instructions per sample",
    "tflm_cmsis_m4_ram_bytes": "table 10: default model int16x8, TFLM + CMSIS-NN on Cortex-M4: smallest arena "
                               "AllocateTensors accepts (linked) + sizeof(model_tflm) (interpreter, resolver, rings) "
                               "+ .data/.bss of the TFLM library members and glue linked",
    "ram_vs_tflm_m4": "table 10: default model int16x8, generated C state RAM (sizeof(model_state)) / "
                      "tflm_cmsis_m4_ram_bytes",
    "flash_vs_tflm_m4": "table 10: default model int16x8 on Cortex-M4, generated C flash (model objects' text + "
                        "rodata + data) / TFLM + CMSIS-NN flash (the TFLM library members linked + the glue object "
                        "holding the .tflite array)",
}


def render_md(res: dict) -> str:
    m, v, t = res["machine"], res["versions"], res["tables"]
    L = ["# edgewave benchmarks", "",
         f"Written by `make bench` (`{PY}`) on {res['date']}; the whole run took "
         f"{res['script_seconds'] / 60:.1f} min. Every number below was measured in that run. "
         "The same numbers with more digits, every repeat and the wall times are in [`results.json`](results.json).", ""]
    L += ["## Machine and versions", "",
          md_table(["", ""], [["CPU", m["cpu"]], ["cores", f"{m['cores']} ({m['usable_cores']} usable)"],
                              ["memory", f"{m['memory_mb']:,} MB" if m["memory_mb"] else "?"], ["OS", m["os"]]]
                   + [[k, f"`{val}`"] for k, val in v.items()]), "",
          f"1-minute load average: {res['load_average_1min']['start']:.1f} at the start, "
          f"{res['load_average_1min']['end']:.1f} at the end "
          f"(on {m['usable_cores']} cores). **Host timings are CPU time** of the measuring thread "
          "(`CLOCK_THREAD_CPUTIME_ID` in the C harness, `time.thread_time()` around Python loops; every backend "
          "timed runs in that one thread), median over repeats after a warm-up: time the code actually ran, so "
          "other load on the machine moves it much less than wall time (which still shifts it through shared caches; "
          "wall-time medians are in `results.json` too). QEMU instruction counts and memory sizes do not depend "
          "on load at all.", ""]
    L += ["## Models", "",
          "Tables 1–5 use random-weight models (Keras initialisers, random non-zero biases, seed 0) calibrated on the "
          "bundled recording: speed and memory do not depend on training. Only table 6 trains.", "",
          md_table(["name", "what"], [[f"`{k}`", d] for k, (_, d) in MODEL_SPECS.items()]), "",
          f"Recording: `{res['recording']['path']}`, {res['recording']['samples']:,} samples at "
          f"{res['recording']['sample_rate']} Hz, sha256 `{res['recording']['sha256'][:16]}…` (copied once at the "
          "start, so every table uses the same bytes). "
          "Unless a table says otherwise, inputs are consecutive samples of it from the "
          "start of its held-out test split, and every timed or counted output is compared with the numpy integer "
          "engine (the executable spec, bit-exact with TensorFlow Lite Micro).", ""]
    if 1 in t:
        r = t[1]
        L += [f"## 1. {TABLES[1][0]}", "",
              "The naive way to run a causal conv net on a stream is to keep the last RF samples and run the "
              "whole-window model over them for every new sample. Same model, same backend, same precision "
              "(int16x8); models `default`, `wavenet-rf1024`, `wavenet-rf4096`.", "",
              "- **generated C**: streaming = one `model_step_q` per sample; recompute = `model_init` and then "
              "RF × `model_step_q` over the last RF samples, per output — exactly the arithmetic of the "
              "whole-window model (every layer at every position of the window, causal zero padding), with the "
              "same kernels. Timed by `benchmarks/bench_host.c` (gcc -O2), median of "
              f"{r['rows'][0]['stream']['repeats']} (streaming) / {r['rows'][0]['recompute']['repeats']} "
              "(recompute) repeats after a warm-up.",
              "- **LiteRT**: `model_stream.tflite` invoked once per sample from a Python loop (ring buffers in "
              "numpy) vs `model_full.tflite` exported with window = RF, invoked once per output — what a TFLite "
              "user without streaming would do. Default op resolver, `num_threads=1`.",
              "- **numpy engine**: `Engine.step` vs `Engine.run_sequence` over the last RF samples. It is the "
              "executable spec, not a runtime: Python overhead per op dominates a step, and a vectorised "
              "recompute of a short window costs about as much as one step, so its ratio is small.", "",
              "Every recomputed output equals the streaming one (last column: max LSB difference from the numpy "
              "engine; LiteRT's default kernels may round differently from TFLM). For the generated C the ratio is "
              "≈ RF by construction (a recompute is RF steps of the same code); the LiteRT rows are the stronger "
              "naive baseline, since its whole-window model runs batched, vectorised kernels and its streaming step "
              "pays Python overhead.", "",
              md_table1(r), "",
              f"Reproduce: `{PY} --tables 1`.", ""]
    if 2 in t:
        r = t[2]
        L += [f"## 2. {TABLES[2][0]}", "",
              f"Models `conv6-d1` and `conv6-dilated`: same depth, width and MACs ({r['macs']:,}/sample), the "
              f"receptive field grows from {r['rf_d1']} to {r['rf_dilated']:,} samples "
              f"({r['rf_dilated'] / r['rf_d1']:.0f}×; the largest dilation 1024×) and the ring state from "
              f"{r['state_bytes']['d1']:,} to {r['state_bytes']['dilated']:,} bytes (int16x8). Cost per sample "
              "of the generated C: exact instruction counts on QEMU over "
              f"{res['settings']['qemu_samples']:,} samples, and host time (median).", "",
              md_table2(r), "",
              f"Reproduce: `{PY} --tables 2`.", ""]
    if 3 in t:
        r = t[3]
        L += [f"## 3. {TABLES[3][0]}", "",
              "The `default` model's streaming form, one sample at a time, as a user would call each runtime: the "
              "generated C's `model_step_q` (timed inside the C harness); LiteRT and TFLite Micro invoking "
              "`model_stream.tflite` from a Python loop that keeps the ring buffers (`edgewave.runners`, what "
              "`edgewave simulate` runs); the numpy engine's `Engine.step`. For the interpreters, the time inside "
              "`invoke()` alone is shown too: the rest of their step is Python feeding the tap tensors and reading "
              "the new ring values, which a C++ application would do faster. The last column checks the outputs "
              "(edgewave picks scales on which LiteRT's reference kernels and TFLM compute the same integers; "
              "LiteRT's default kernels may still round differently).", "",
              md_table3(r), "",
              f"Reproduce: `{PY} --tables 3`; or `edgewave simulate OUT_DIR --data {SPEECH_REL} "
              "--backend litert|tflm|c|int` on a converted model.", ""]
    if 4 in t:
        r = t[4]
        L += [f"## 4. {TABLES[4][0]}", "",
              "The generated C built with `arm-none-eabi-gcc -O2` for each core and run on QEMU "
              "(`mps2-an386` M4, `mps2-an500` M7, `mps2-an505` M33, `microbit` for ARMv6-M / M0+) over "
              f"{res['settings']['qemu_samples']:,} samples, outputs checked bit for bit. Counts are exact "
              "instructions of all `model_step_q` calls (SysTick under `-icount`), identical on every run. "
              "QEMU counts instructions, not cycles: **the real-time rates assume one instruction per cycle** "
              "(real cores stall on flash wait states and multi-cycle instructions, so treat them as upper bounds) "
              "and use the longest step, so every sample meets its deadline. Flash = the model's own code + "
              "constants (weights, tables) after `--gc-sections`. (Cortex-M0+ parts rarely run above ~64 MHz; "
              "its 168 MHz column is for comparison only.)", "",
              md_table4(r), "",
              f"Reproduce: `{PY} --tables 4`; or `edgewave emit OUT_DIR --out C_DIR --target cortex-m4 --json`.",
              ""]
    if 5 in t:
        r = t[5]
        L += [f"## 5. {TABLES[5][0]}", "",
              "- **min state**: Σ over ring tensors of (k−1)·d·channels·bytes — the values a streaming model must "
              "remember, nothing else.",
              "- **generated C state RAM**: `sizeof(model_state)` on a 32-bit MCU: one ring per delayed tensor "
              "(one row more than the minimum, so the current value is written in place), a `uint32_t` head per "
              "ring, and a scratch area shared by tensors whose lifetimes do not overlap. The generated code has "
              "no other static RAM. **+ worst stack**: `model_step_q` and its deepest call chain, from GCC's "
              "`-fcallgraph-info=su` for Cortex-M4 (static, no recursion).",
              "- **generated C flash**: the model's own code + constants on Cortex-M4 (the same build as table 4).",
              "- **TFLite Micro**: the arena TFLM allocates for `model_stream.tflite` (parsed from "
              "`print_allocations()` of the tflite-micro wheel, a 64-bit build: a 32-bit MCU needs somewhat "
              "less), plus the ring state, which the streaming `.tflite` takes as inputs and the application has "
              "to keep outside the arena. TFLM's flash is the `.tflite` plus the interpreter and kernels "
              "(not built here; DESIGN.md §6 puts the interpreter at ~16 KB+). TFLM's stack is not counted.", "",
              md_table5(r), "",
              f"Reproduce: `{PY} --tables 5`; `edgewave emit OUT_DIR --out C_DIR --json` prints "
              "`ram_bytes`, `min_state_bytes`, `tflm_arena_bytes`, `tflm_ram_bytes` and `flash_bytes`.", ""]
    if 6 in t:
        r = t[6]
        tr = r["train"]["training"] or {}
        L += [f"## 6. {TABLES[6][0]}", "",
              f"The default spec trained once on `{SPEECH_REL}` (seed {SEED}, "
              f"{tr.get('epochs_run', '?')} epochs in {tr.get('seconds', 0):.0f} s of training, "
              f"{r['train_wall_seconds']:.0f} s wall including TensorFlow start-up and scoring), then converted to "
              "int16x8 and int8. Prediction gain = 10·log10(var(x) / var(x − x̂)) on the held-out test split "
              f"(last 10 %, {r['test_samples']:,} samples after the first receptive field). The int rows come "
              "from the numpy integer engine, which equals TFLite Micro bit for bit (checked by `convert`) and "
              "the generated C (its output on the whole test split was checked here).", "",
              md_table6(r), "",
              "Reproduce:", "", "```sh",
              f"edgewave train --data {SPEECH_REL} --out model --seed {SEED} --json"
              + (f" --max-minutes {res['settings']['train_minutes']:g}" if res['settings']['train_minutes'] else ""),
              f"edgewave convert model --data {SPEECH_REL} --precision int16x8 --out int16x8 --json",
              f"edgewave convert model --data {SPEECH_REL} --precision int8 --out int8 --json",
              "```", "",
              "Training is deterministic for a seed: this is the model `make demo` trains."
              if not res['settings']['train_minutes'] else
              "`--max-minutes` stops training early (a quick run): the numbers are not the default model's.", ""]
    if 7 in t:
        L += [f"## 7. {TABLES[7][0]}", "",
              f"The default spec, `edgewave train --max-minutes {jobs.TRAIN_MINUTES:g} --seed 0` on each whole "
              "recording (split by time 80/10/10; the gain is on the held-out last 10 %), then `convert` to int16x8 "
              "and int8 (their loss is against the float program on the same samples). The non-bundled recordings "
              "are made by `benchmarks/recordings.py` from Debian's Asterisk prompt packages "
              "(see `edgewave/data/README.md`).", "", jobs.md_table7(t[7]), ""]
    if 8 in t:
        L += [f"## 8. {TABLES[8][0]}", "",
              "`edgewave conceal` with table 7's int16x8 models on the last 20 % of each recording (never trained "
              "on): 20 ms frames, seed 0, PESQ (P.862: narrowband at 8 kHz, wideband at 16 kHz) / STOI / SNR over "
              "the lost frames, every concealer on the same lost frames, scored on the 16-bit WAV as written. The "
              "`c` and `qemu-m4` backends (the emitted `model_conceal` / `model_resume`) wrote the same bytes as "
              "`int` in every row.", "", jobs.md_table8(t[8]), ""]
    if 9 in t:
        r = t[9]
        L += [f"## 9. {TABLES[9][0]}", "",
              f"{r['recording']} ({r['rate_hz']:.1f} Hz, real, from the `heartpy` package): the default spec trained "
              "on the first 40 %, calibrated on the next 10 % (false-alarm rate "
              f"{r['false_alarm_rate']}), scored on the last 50 % with {r['events']} injected anomalies "
              f"({', '.join(r['kinds'])}). Baselines use the same smoothing and calibration. `c` and `qemu-m4` "
              "gave the same scores as `int`.", "", jobs.md_table9(r), ""]
    if 10 in t:
        later = res.get("table10_run")  # measured alone and merged into an earlier full run's results
        L += [f"## 10. {TABLES[10][0]}", "",
              *([f"Measured on {later['date']}, {later['why']}; the other tables are from the run above.", ""]
                if later else []),
              *tflm_m4.md_section10(t[10], res["settings"]["qemu_samples"]),
              f"Reproduce: `{PY} --tables 10` (with `EDGEWAVE_TFLM_DIR` set); `edgewave emit OUT_DIR --out C_DIR "
              "--tflm-dir TFLM_DIR --json` reports `tflm_m4_arena_bytes`.", ""]
    L += ["## Headline numbers (`results.json`)", "",
          md_table(["key", "value", "definition"],
                   [[f"`{k}`", ", ".join(f"{kk}: {fmt(vv, 4)}" for kk, vv in res[k].items())
                     if isinstance(res[k], dict) else fmt(res[k], 4),
                     HEADLINE_DEFINITIONS[k]] for k in HEADLINE_DEFINITIONS if k in res]), ""]
    return "\n".join(L)


def _json_num(o):
    if isinstance(o, float):
        return round(o, 4)
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o))


def _round_floats(o, digits=6):
    if isinstance(o, float):
        return float(f"{o:.{digits}g}")
    if isinstance(o, dict):
        return {str(k): _round_floats(v, digits) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_round_floats(v, digits) for v in o]
    if isinstance(o, np.generic):
        return _round_floats(o.item(), digits)
    return o


def main(argv=None) -> int:
    jobs.configure(md_table=md_table, BenchError=BenchError)
    tflm_m4.configure(md_table=md_table, BenchError=BenchError, worst_stack=worst_stack)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", default=",".join(map(str, TABLES)), help="comma-separated table numbers (default: all)")
    ap.add_argument("--out", type=Path, help="directory for RESULTS.md and results.json (default: benchmarks/ "
                                             "for a full run; a partial or --quick run only prints unless given)")
    ap.add_argument("--quick", action="store_true", help="fewer samples, one tiny training: a smoke test")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    try:
        wanted = sorted({int(x) for x in args.tables.split(",") if x.strip()})
    except ValueError:
        ap.error(f"--tables {args.tables!r}: give numbers 1-{len(TABLES)}, e.g. --tables 1,3")
    if not wanted or any(x not in TABLES for x in wanted):
        ap.error(f"--tables {args.tables!r}: give numbers 1-{len(TABLES)}, e.g. --tables 1,3")
    out_dir = args.out or (BENCH_DIR if wanted == list(TABLES) and not args.quick else None)

    from edgewave import ctools
    if any(x in wanted for x in (2, 4, 5)) and not ctools.have_cortex_m_tools():
        raise BenchError("tables 2, 4 and 5 need arm-none-eabi-gcc, newlib and qemu-system-arm "
                         f"({ctools.INSTALL_HINT})")

    t_start = time.monotonic()
    settings = QUICK if args.quick else FULL
    work = Path(tempfile.mkdtemp(prefix="edgewave-bench-"))
    res = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine_info(),
           "versions": versions(), "settings": {k: getattr(settings, k) for k in settings.__dataclass_fields__},
           "quick": args.quick, "load_average_1min": {"start": os.getloadavg()[0]}, "tables": {}}
    global SPEECH
    SPEECH = work / SPEECH_SRC.name
    shutil.copyfile(SPEECH_SRC, SPEECH)
    from edgewave import signals
    sig = signals.load_signal(str(SPEECH))
    res["recording"] = {"path": str(SPEECH_SRC.relative_to(ROOT)),
                        "sha256": hashlib.sha256(SPEECH.read_bytes()).hexdigest(),
                        "samples": int(len(sig.samples)), "sample_rate": sig.sample_rate}
    log(f"work directory {work}; tables {wanted}{' (quick)' if args.quick else ''}")
    ws = Workspace(work, settings)
    ok = False
    try:
        for n in wanted:
            t0 = time.monotonic()
            log(f"table {n}: {TABLES[n][0]}")
            res["tables"][n] = TABLES[n][1](ws)
            res["tables"][n]["seconds"] = round(time.monotonic() - t0, 1)
            log(f"table {n} done in {res['tables'][n]['seconds']:.0f} s")
        ok = True
    finally:
        if args.keep or not ok:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    res["load_average_1min"]["end"] = os.getloadavg()[0]
    res["script_seconds"] = round(time.monotonic() - t_start, 1)
    for n, key in ((1, "stream_vs_recompute_ratio"), (2, "dilation_cost_ratio"), (3, "c_vs_litert_speedup"),
                   (4, "m4_int8_instructions_per_mac"), (4, "m4_default_instructions_per_sample"),
                   (5, "ram_vs_tflm"), (10, "tflm_cmsis_m4_instructions_per_sample"), (10, "m4_vs_tflm_cmsis_speedup"),
                   (10, "tflm_cmsis_m4_ram_bytes"), (10, "ram_vs_tflm_m4"), (10, "flash_vs_tflm_m4")):
        if n in res["tables"] and key in res["tables"][n]:  # a skipped table has none
            res[key] = res["tables"][n][key]
    res["definitions"] = {k: v for k, v in HEADLINE_DEFINITIONS.items() if k in res}
    md = render_md(res)
    ordered = {k: res[k] for k in ("date", "script_seconds", *HEADLINE_DEFINITIONS, "definitions", "machine",
                                   "versions", "recording", "load_average_1min", "settings", "quick") if k in res}
    ordered["tables"] = {str(k): v for k, v in res["tables"].items()}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "RESULTS.md").write_text(md)
        (out_dir / "results.json").write_text(json.dumps(_round_floats(ordered), indent=1, default=_json_num) + "\n")
        log(f"wrote {out_dir / 'RESULTS.md'} and {out_dir / 'results.json'}")
    else:
        print(md)
    log(f"finished in {res['script_seconds'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"\nbenchmark FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception:  # noqa: BLE001 - any other failure is a failed measurement too
        traceback.print_exc()
        print("\nbenchmark FAILED (see the traceback above)", file=sys.stderr)
        sys.exit(1)
