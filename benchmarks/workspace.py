"""The models every table measures and what runs them: model specs, building (Keras, quantizer, emitted C),
the generated C timed on the host, cross-built and counted on QEMU, its static stack, and the Python runners
of LiteRT and TFLite Micro. A Workspace caches each build for the whole run, so tables share them.
"""

from __future__ import annotations

import copy
import re
import shutil
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness import BENCH_DIR, SEED, BenchError, Settings, log, require_equal, run, summarize

BENCH_HOST_C = BENCH_DIR / "bench_host.c"  # the C harness that times the generated C on the host


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
                             "update wavenet_spec() in benchmarks/workspace.py")
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
    speech: np.ndarray   # the normalised recording (Workspace.speech_norm) its input codes are cut from
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
            x = self.speech
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
    """One run's work directory, settings and recording, and every model, build and QEMU run made in it."""

    def __init__(self, work: Path, settings: Settings, speech: Path):
        self.work = work
        self.s = settings
        self.speech = speech  # the bundled recording copied into `work`: one recording for the whole run
        self.models: dict[tuple[str, str], Model] = {}
        self.hosts: dict[tuple[str, str], Path] = {}
        self.qemu: dict[tuple, dict] = {}
        self.shared: dict = {}  # results one table measures and another reuses (jobs.real_speech)
        self._speech_norm = None

    def speech_norm(self) -> np.ndarray:
        """The bundled recording normalised with its training split's mean and std (as `edgewave train`)."""
        if self._speech_norm is None:
            from edgewave import signals
            x = signals.load_signal(str(self.speech)).samples.astype(np.float64)
            train, _, _ = signals.split_by_time(len(x))
            norm = signals.compute_norm(x[train])
            self._speech_norm = ((x - norm.offset) / norm.scale).astype(np.float32)
        return self._speech_norm

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
        m = Model(name, precision, spec, graph, prog, stream, numbers, c_dir, x)
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
            run([cc, *ctools.CFLAGS, *[f"-I{d}" for d in incs], *srcs, BENCH_HOST_C, "-o", exe, "-lm"],
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

