"""`edgewave simulate`: stream a signal through any backend and say how the device will behave.

Every backend goes through `Backend.run(x)` on the same normalised samples and
returns the model's raw outputs (integer codes for integer backends), so they
can be compared LSB for LSB; `predictions()` turns raw outputs into predicted
samples in the model domain.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import ctools, signals
from .convert import pipeline as convert_pipeline
from .errors import UserError
from .metrics import mulaw_decode, prediction_gain_db, snr_db
from .runners import EngineRunner, KerasRunner, LiteRTStream, TFLMStream

BACKENDS = ("keras", "float", "int", "litert", "tflm", "c", "qemu-m4", "qemu-m7", "qemu-m33", "qemu-rv32")
QEMU_TARGETS = {"qemu-m4": "cortex-m4", "qemu-m7": "cortex-m7", "qemu-m33": "cortex-m33", "qemu-rv32": "riscv32"}


@dataclass
class Converted:
    """An OUT_DIR from `convert`, loaded once."""

    path: Path
    manifest: dict
    prog: object
    stream: bytes
    fprog: object = None
    _c_dir: Path | None = None
    _tmp: object = field(default=None, repr=False)

    @classmethod
    def load(cls, out_dir: str) -> "Converted":
        manifest, prog, stream = convert_pipeline.load(out_dir)
        return cls(Path(out_dir), manifest, prog, stream)

    def float_program(self):
        if self.fprog is None:
            from .convert.lowering import lower
            from .frontend.importer import import_model, load_keras

            self.fprog = lower(import_model(load_keras(self.path / "model.keras")))
        return self.fprog

    def c_dir(self) -> Path:
        """The emitted C for this model, rendered once into a temporary directory."""
        if self._c_dir is None:
            from .emit.pipeline import write_c

            self._tmp = tempfile.TemporaryDirectory(prefix="edgewave-sim-")
            self._c_dir = Path(self._tmp.name) / "c"
            write_c(str(self.path), str(self._c_dir), "model", measure=False)
        return self._c_dir


@dataclass
class Result:
    backend: str
    raw: np.ndarray
    seconds: float
    extra: dict = field(default_factory=dict)


def run_backend(name: str, conv: Converted, x: np.ndarray, progress=None) -> Result:
    prog = conv.prog
    quantized = name not in ("keras", "float") and prog.quantized
    inp = convert_pipeline.quantize_input(prog, x) if quantized else x.astype(np.float32)
    fprog = conv.float_program() if name == "float" else None  # loading the Keras model is not streaming
    t0 = time.perf_counter()
    extra = {}
    if name == "keras":
        from .frontend.importer import load_keras

        raw = KerasRunner(load_keras(conv.path / "model.keras")).run(inp)
    elif name == "float":
        raw = EngineRunner(fprog).run(inp)
    elif name == "int":
        raw = EngineRunner(prog).run(inp)
    elif name in ("litert", "tflm"):
        raw = (LiteRTStream if name == "litert" else TFLMStream)(prog, conv.stream).run(inp, progress=progress)
    elif name == "c" or name in QEMU_TARGETS:
        from .emit.plan import plan, ram_bytes

        extra["ram_bytes"] = ram_bytes(plan(prog, "model"))
        raw, more = run_c(name, conv, inp)
        t0 = time.perf_counter() - more.pop("run_seconds")  # the run alone, not the build
        extra.update(more)
    else:
        raise UserError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    seconds = time.perf_counter() - t0
    if name not in QEMU_TARGETS:
        extra["us_per_sample"] = round(1e6 * seconds / max(len(x), 1), 2)
    return Result(name, np.asarray(raw), seconds, extra)


@contextmanager
def built_c(name: str, conv: Converted):
    """The emitted C with the example runner, built for backend `name` in a temporary directory:
    (host executable, None) for "c", (ELF, section sizes) for a QEMU board."""
    from .emit.pipeline import c_sources

    if not conv.prog.quantized:
        raise UserError(f"the {name} backend runs the emitted integer C; convert with --precision int16x8 or int8")
    if name != "c" and not ctools.have_tools(QEMU_TARGETS[name]):
        hint = ctools.TARGETS[QEMU_TARGETS[name]].toolchain.install
        raise UserError(f"the {name} backend needs its cross toolchain and QEMU: apt-get {hint}")
    srcs, incs = c_sources(conv.c_dir(), "model")
    with tempfile.TemporaryDirectory(prefix="edgewave-build-") as tmp:
        if name == "c":
            yield ctools.build_host(srcs, incs, Path(tmp)), None
        else:
            yield ctools.build_cortex_m(QEMU_TARGETS[name], srcs, incs, Path(tmp))


def run_c(name: str, conv: Converted, codes: np.ndarray, feedback=None) -> tuple[np.ndarray, dict]:
    """The emitted C on the host ("c") or a QEMU board: raw outputs and, on QEMU, instructions and flash."""
    with built_c(name, conv) as (binary, sizes):
        if name == "c":
            timing = {}
            raw = ctools.run_host(binary, codes, feedback=feedback, out_dtype=conv.prog.dtype, timing=timing)
            return raw, {"run_seconds": timing["step_seconds"]}  # the step alone, as on the device
        elf = binary
        t0 = time.perf_counter()
        raw, stats = ctools.run_qemu(QEMU_TARGETS[name], elf, codes, timeout=3600, feedback=feedback,
                                     out_dtype=conv.prog.dtype)
    return raw, {"run_seconds": time.perf_counter() - t0,
                 "instructions_per_sample": round(stats["instructions"] / max(stats["samples"], 1), 1),
                 "flash_bytes": sizes["model"]["text"] + sizes["model"]["rodata"]}


def predictions(conv: Converted, res: Result) -> np.ndarray:
    """Raw outputs -> predicted next samples (model domain)."""
    prog = conv.prog
    quantized = res.backend not in ("keras", "float") and prog.quantized
    y = convert_pipeline.dequantize_output(prog, res.raw) if quantized else np.asarray(res.raw, np.float32)
    if prog.head == "mulaw":
        return mulaw_decode(np.argmax(y, axis=-1), prog.mulaw_bits)
    return y[..., 0]


def load_data(conv: Converted, data: str, channel=None, limit=None) -> np.ndarray:
    sig = signals.load_signal(data, channel)
    rate = conv.manifest.get("sample_rate")
    if rate and sig.sample_rate and rate != sig.sample_rate:
        raise UserError(f"{data} is sampled at {sig.sample_rate} Hz but the model expects {rate} Hz; "
                        f"resample it first (sox in.wav -r {rate} out.wav)")
    x = sig.samples
    if limit is not None:
        if limit > len(x):
            raise UserError(f"--limit {limit} is beyond the {len(x)} samples in {data}; use at most {len(x)}")
        x = x[:limit]
    rf = conv.manifest["receptive_field"]
    if len(x) <= rf + 1:
        raise UserError(f"{len(x)} samples is shorter than the receptive field ({rf}); give more samples")
    norm = conv.manifest["normalization"]
    return ((x.astype(np.float64) - norm["offset"]) / norm["scale"]).astype(np.float32)


def compare(conv: Converted, main: Result, others: list[Result], x: np.ndarray, float_pred=None) -> dict:
    rf = conv.manifest["receptive_field"]
    pred = predictions(conv, main)
    report = {"backend": main.backend, "samples": int(len(x)),
              "prediction_gain_db": round(prediction_gain_db(x[rf:], pred[rf - 1:-1]), 3)}
    if float_pred is not None:
        report["snr_vs_float_db"] = round(snr_db(float_pred[rf - 1:-1], pred[rf - 1:-1]), 2)
    report["max_lsb_diff"], report["mean_lsb_diff"] = {}, {}
    for o in others:
        d = np.abs(main.raw.astype(np.float64) - o.raw.astype(np.float64))
        report["max_lsb_diff"][o.backend] = float(d.max(initial=0))
        report["mean_lsb_diff"][o.backend] = float(d.mean()) if d.size else 0.0
    report.update(main.extra)
    return report


def progress_printer(label: str, total: int, quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None
    state = {"last": 0.0}

    def update(done: int):
        now = time.monotonic()
        if now - state["last"] > 0.2 or done == total:
            state["last"] = now
            width = 30
            filled = int(width * done / max(total, 1))
            print(f"\r{label:<8} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="", file=sys.stderr,
                  flush=True)
            if done == total:
                print(file=sys.stderr)

    return update


def stepper(name: str, conv: Converted):
    """A fresh step function (one model-domain input -> that step's raw output) on a Python-driven backend."""
    if name == "keras":
        from .frontend.importer import load_keras

        return KerasRunner(load_keras(conv.path / "model.keras"), conv.prog.receptive_field()).stepper()
    if name == "float":
        return EngineRunner(conv.float_program()).stepper()
    if name == "int":
        return EngineRunner(conv.prog).stepper()
    if name in ("litert", "tflm"):
        return (LiteRTStream if name == "litert" else TFLMStream)(conv.prog, conv.stream).stepper()
    raise UserError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")


SAMPLE_ONE = 1 << 20  # fixed-point 1.0 of the integer sampler's weights


def _feedback_table(prog) -> np.ndarray:
    """Regression head: the input code each output code is fed back as (dequantize, then quantize)."""
    info = np.iinfo(prog.dtype)
    codes = np.arange(info.min, info.max + 1).astype(prog.dtype)
    values = convert_pipeline.dequantize_output(prog, codes.reshape(-1, 1))[:, 0].astype(np.float32)
    return convert_pipeline.quantize_input(prog, values)


class IntegerSampler:
    """Sampling the categorical head on integer backends, in integers only, so that the numpy engine, LiteRT,
    TFLM and the C runners (firmware/examples/ew_feedback.h) draw the same levels: weight_k = W[max - q_k] with
    W[d] = round(2^20 · exp(-scale · d / temperature)), r = xorshift32 · Σ weights >> 32, the first level whose
    running sum exceeds r."""

    def __init__(self, prog, seed: int, temperature: float = 1.0):
        info = np.iinfo(prog.dtype)
        d = np.arange(info.max - info.min + 1, dtype=np.float64)
        scale = prog.tensors[prog.output].q.scale
        self.weights = np.floor(SAMPLE_ONE * np.exp(-scale * d / temperature) + 0.5).astype(np.uint32)
        self.state = (seed * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF or 1
        self.values = mulaw_decode(np.arange(2 ** prog.mulaw_bits), prog.mulaw_bits)
        self.codes = convert_pipeline.quantize_input(prog, self.values)

    def next_random(self) -> int:
        x = self.state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.state = x
        return x

    def pick(self, logits: np.ndarray) -> int:
        q = np.asarray(logits, np.int64)
        w = self.weights[q.max() - q].astype(np.uint64)
        r = (self.next_random() * int(w.sum())) >> 32
        return int(np.searchsorted(np.cumsum(w), r, side="right"))


def _generate_in_c(conv: Converted, backend: str, prime: np.ndarray, n: int, seed: int,
                   temperature: float) -> np.ndarray:
    """The C runners feed predictions back themselves (firmware/examples/ew_feedback.h): through a table of what
    each output code becomes as the next input (regression), or by the integer sampler (categorical)."""
    prog = conv.prog
    codes = convert_pipeline.quantize_input(prog, prime)
    if prog.head == "mulaw":
        sampler = IntegerSampler(prog, seed, temperature)
        raw, _ = run_c(backend, conv, codes, feedback=ctools.Feedback(n, table=sampler.codes, state=sampler.state,
                                                                       weights=sampler.weights))
        # The runner fed back sampler.codes[k]; replaying the same sampler on its logits names each k.
        return np.array([sampler.values[sampler.pick(y)] for y in raw[len(prime) - 1:len(prime) - 1 + n]],
                        np.float32)
    raw, _ = run_c(backend, conv, codes, feedback=ctools.Feedback(n, table=_feedback_table(prog)))
    return convert_pipeline.dequantize_output(prog, raw[len(prime) - 1:len(prime) - 1 + n])[:, 0].astype(np.float32)


def generate(conv: Converted, backend: str, prime: np.ndarray, n: int, seed: int, temperature: float = 1.0,
             progress=None) -> np.ndarray:
    """Free-running generation after priming with real samples: each output is fed back as the next input."""
    prog = conv.prog
    if backend == "c" or backend in QEMU_TARGETS:
        return _generate_in_c(conv, backend, prime, n, seed, temperature)
    step = stepper(backend, conv)
    quantized = backend not in ("keras", "float") and prog.quantized
    if quantized:  # fed back exactly as the C runners do it
        sampler = IntegerSampler(prog, seed, temperature) if prog.head == "mulaw" else None
        table, low = (None, 0) if sampler else (_feedback_table(prog), int(np.iinfo(prog.dtype).min))
        inputs = convert_pipeline.quantize_input(prog, prime)
    else:
        rng = np.random.default_rng(seed)
        inputs = np.asarray(prime, np.float32)
    y = None
    for v in inputs:
        y = step(v)
    out = []
    for i in range(n):
        if progress is not None and i % 500 == 0:
            progress(i)
        if quantized and sampler:
            k = sampler.pick(y)
            out.append(float(sampler.values[k]))
            y = step(sampler.codes[k])
        elif quantized:
            out.append(float(convert_pipeline.dequantize_output(prog, y)[0]))
            y = step(table[int(y[0]) - low])
        elif prog.head == "mulaw":
            logits = np.asarray(y, np.float64)
            p = np.exp((logits - logits.max()) / temperature)
            v = float(mulaw_decode(rng.choice(len(p), p=p / p.sum()), prog.mulaw_bits))
            out.append(v)
            y = step(v)
        else:
            out.append(float(y[0]))
            y = step(out[-1])
    if progress is not None:
        progress(n)
    return np.asarray(out, np.float32)


def cleanup(conv: Converted) -> None:
    if conv._tmp is not None:
        conv._tmp.cleanup()


def have(backend: str) -> bool:
    if backend in QEMU_TARGETS:
        return ctools.have_tools(QEMU_TARGETS[backend])
    if backend == "c":
        return shutil.which("gcc") is not None or shutil.which("cc") is not None
    return True
