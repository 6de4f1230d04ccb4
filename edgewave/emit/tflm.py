"""What a TensorFlow Lite Micro user needs: the model as a C array, its ops, its arena size, and the layout
of the rings the generated glue keeps for the streaming model."""

from __future__ import annotations

import ctypes
import os
import re
import sys
import tempfile

import numpy as np

from ..convert.export import push_name, tap_name
from ..runners import tflm_interpreter
from ..tflite import read_model

# TFLite builtin -> MicroMutableOpResolver method
RESOLVER_METHODS = {
    "FULLY_CONNECTED": "AddFullyConnected", "CONV_2D": "AddConv2D", "CONCATENATION": "AddConcatenation", "ADD": "AddAdd",
    "MUL": "AddMul", "TANH": "AddTanh", "LOGISTIC": "AddLogistic", "RELU": "AddRelu",
    "QUANTIZE": "AddQuantize", "RESHAPE": "AddReshape", "AVERAGE_POOL_2D": "AddAveragePool2D",
    "MAX_POOL_2D": "AddMaxPool2D", "PAD": "AddPad", "STRIDED_SLICE": "AddStridedSlice",
}
# The Python TFLM runs on a 64-bit host, whose pointers make TFLM's own structs larger than on an MCU, but
# what AllocateTensors needs at its peak is not what print_allocations reports: a wide margin.
HOST_ARENA_MARGIN = 1.25
# Measured on the Cortex-M4 build itself: room for another TFLM version's or kernel library's structs.
M4_ARENA_MARGIN = 1.05


C_TYPES = {np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t"}


def ring_layout(prog) -> tuple[list[dict], list[dict], int]:
    """The rings of manifest.json "state" packed one after another, every tap input with the ring and
    delay it reads (what NAME_tflm.cc's tables hold), and the bytes of all rings."""
    rings, taps, offset = [], [], 0  # offset ends as the state's bytes
    lengths = prog.ring_lengths()
    for name, delays in prog.ring_delays().items():
        item = np.dtype(prog.dtype_of(name)).itemsize
        offset = -(-offset // item) * item
        row = prog.tensors[name].channels * item
        rings.append({"tensor": name, "push": None if name == prog.input else push_name(name), "offset": offset,
                      "length": lengths[name], "row_bytes": row, "zero_point": int(prog.zero_code(name)),
                      "elem_bytes": item})
        taps += [{"input": tap_name(name, d), "ring": len(rings) - 1, "delay": d} for d in delays]
        offset += lengths[name] * row
    return rings, taps, offset


def glue_context(prog) -> dict:
    rings, taps, state_bytes = ring_layout(prog)
    return {"tflm_rings": rings, "tflm_taps": taps, "tflm_state_bytes": state_bytes,
            "tflm_in_ctype": C_TYPES[np.dtype(prog.input_dtype)],
            "tflm_out_ctype": C_TYPES[np.dtype(prog.dtype_of(prog.output))]}


def arena_context(host_bytes: int, m4: dict | None) -> dict:
    """The arena TFLM was measured to need, NAME_TENSOR_ARENA_SIZE made from it (16-byte steps) and the
    comment that says where it comes from."""
    if m4:
        need = max(m4.values())
        size = int(np.ceil(need * M4_ARENA_MARGIN / 16) * 16)
        found = ", ".join(f"{k.replace('_', '-')} kernels {v}" for k, v in sorted(m4.items()))
        note = (f"The smallest arena AllocateTensors accepts on the Cortex-M4 build of TFLM ({found} bytes), "
                f"the larger plus {round(100 * (M4_ARENA_MARGIN - 1))} %.")
        return {"arena_need": need, "arena_size": size, "arena_note": note, "arena_measured_on": "cortex-m4"}
    size = int(np.ceil(host_bytes * HOST_ARENA_MARGIN / 16) * 16)
    note = (f"TFLM's arena on a 64-bit host ({host_bytes} bytes, its Python interpreter) plus "
            f"{round(100 * (HOST_ARENA_MARGIN - 1))} %; `edgewave emit --tflm-dir` measures it on Cortex-M4.")
    return {"arena_need": host_bytes, "arena_size": size, "arena_note": note, "arena_measured_on": "host"}


def ops(model: bytes) -> list[str]:
    return sorted({o.name for o in read_model(model).ops})


def measured_arena_bytes(model: bytes) -> int:
    """Arena bytes TFLM actually allocates for this model (parsed from print_allocations)."""
    ip = tflm_interpreter(model)
    libc = ctypes.CDLL(None)
    with tempfile.TemporaryFile(mode="w+") as capture:
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd in saved:
                os.dup2(capture.fileno(), fd)
            ip.print_allocations()
            libc.fflush(None)  # the report is printed through C stdio
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
        capture.seek(0)
        text = capture.read()
    m = re.search(r"Arena allocation total (\d+) bytes", text)
    if not m:
        raise RuntimeError("TFLM did not report its arena size")
    return int(m.group(1))


def c_array(blob: bytes, per_line: int = 16) -> str:
    rows = (", ".join(f"0x{b:02x}" for b in blob[i:i + per_line]) for i in range(0, len(blob), per_line))
    return ",\n  ".join(rows)
