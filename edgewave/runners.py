"""One interface over every backend that can stream a signal through a converted model.

A runner takes the model-domain input (normalised floats for float backends,
int8/int16 codes for integer ones) and returns one output vector per sample.
TFLite runners keep the ring buffers themselves and address the streaming
model's tensors by signature name, never by position.
"""

from __future__ import annotations

import numpy as np

from .engine import Engine, Ring
from .errors import UserError
from .program import Program, push_name, tap_name


class Runner:
    name = "?"
    quantized = True

    def run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def stepper(self):
        """A fresh stream: a function from one input sample to that step's output vector."""
        raise NotImplementedError


class EngineRunner(Runner):
    """The numpy engine: `run` computes a whole signal at once (`Engine.run`, equal to stepping it),
    `stepper` steps through the ring buffers one sample at a time."""

    def __init__(self, prog: Program):
        self.engine = Engine(prog)
        self.quantized = prog.quantized
        self.name = "int" if prog.quantized else "float"

    def run(self, x):
        self.engine.reset()
        return self.engine.run(x)

    def stepper(self):
        self.engine.reset()
        return self.engine.step


class KerasRunner(Runner):
    name, quantized = "keras", False

    def __init__(self, model, receptive_field: int | None = None):
        self.model = model
        self.receptive_field = receptive_field

    def run(self, x):
        return np.asarray(self.model(np.asarray(x, np.float32)[None, :, None], training=False))[0]

    def stepper(self):
        # Keras cannot stream: each step recomputes the last receptive field (zeros before the start, as causal
        # padding sees them), which is what the streaming backends compute incrementally.
        window = np.zeros(self.receptive_field, np.float32)

        def step(v):
            window[:-1] = window[1:]
            window[-1] = v
            return self.run(window)[-1]
        return step


class _TFLiteStream(Runner):
    """Shared ring-buffer loop; subclasses provide set/invoke/get by signature name."""

    def __init__(self, prog: Program):
        self.prog = prog
        self.quantized = prog.quantized

    def run(self, x, progress=None):
        step = self.stepper()
        out = []
        for i, v in enumerate(np.asarray(x, self.prog.input_dtype)):
            if progress is not None and i % 500 == 0:
                progress(i)
            out.append(step(v))
        if progress is not None:
            progress(len(out))
        return np.stack(out)

    def stepper(self):
        p = self.prog
        delays = p.ring_delays()
        rings = {n: Ring(max(ds), p.tensors[n].channels, p.zero_code(n), p.dtype_of(n)) for n, ds in delays.items()}

        def step(v):
            self.set("x", np.full((1, 1, 1), v, p.input_dtype))
            for n, ds in delays.items():
                for d in ds:
                    self.set(tap_name(n, d), rings[n].read(d).reshape(1, 1, -1))
            self.invoke()
            y = self.get("y").reshape(-1).copy()
            for n, ring in rings.items():
                ring.push(np.asarray([v], p.input_dtype) if n == p.input else self.get(push_name(n)).reshape(-1))
            return y
        return step


class LiteRTStream(_TFLiteStream):
    name = "litert"

    def __init__(self, prog: Program, model: bytes):
        super().__init__(prog)
        self.ip = litert_interpreter(model)
        runner = self.ip.get_signature_runner("serving_default")
        self.inputs = {k: v["index"] for k, v in runner.get_input_details().items()}
        self.outputs = {k: v["index"] for k, v in runner.get_output_details().items()}

    def set(self, name, value):
        self.ip.set_tensor(self.inputs[name], value)

    def invoke(self):
        self.ip.invoke()

    def get(self, name):
        return self.ip.get_tensor(self.outputs[name])


class TFLMStream(_TFLiteStream):
    name = "tflm"

    def __init__(self, prog: Program, model: bytes):
        super().__init__(prog)
        self.ip = tflm_interpreter(model)
        from .tflite import read_model

        summary = read_model(model)
        sig = summary.signatures["serving_default"]
        self.inputs = {name: summary.inputs.index(i) for name, i in sig["inputs"].items()}
        self.outputs = {name: summary.outputs.index(i) for name, i in sig["outputs"].items()}

    def set(self, name, value):
        self.ip.set_input(value, self.inputs[name])

    def invoke(self):
        self.ip.invoke()

    def get(self, name):
        return self.ip.get_output(self.outputs[name])


def run_full(model: bytes, x: np.ndarray, dtype, runtime: str = "litert") -> np.ndarray:
    """The whole-window model over x (its window must equal len(x))."""
    x = np.asarray(x, dtype).reshape(1, -1, 1)
    if runtime == "litert":
        ip = litert_interpreter(model)
        runner = ip.get_signature_runner("serving_default")
        return runner(x=x)["y"][0]
    ip = tflm_interpreter(model, arena_scale=64)
    ip.set_input(x, 0)
    ip.invoke()
    return ip.get_output(0)[0]


def litert_interpreter(model: bytes):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:  # the maintained package is missing: the old one still works under NumPy 1.x
        try:
            from tflite_runtime.interpreter import Interpreter, OpResolverType
        except ImportError:
            raise UserError("the LiteRT backend needs ai-edge-litert: pip install ai-edge-litert")
    # BUILTIN_REF: the reference kernels; the default (XNNPACK) rounds differently.
    ip = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    ip.allocate_tensors()
    return ip


def tflm_interpreter(model: bytes, arena_scale: int = 16):
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise UserError("the TFLM backend needs the tflite-micro package: pip install tflite-micro")
    return runtime.Interpreter.from_bytes(model, arena_size=arena_scale * len(model) + (256 << 10))
