"""The emitted NAME_tflm glue on stock TensorFlow Lite Micro, on an emulated Cortex-M4: built against a user's
TFLM tree (:mod:`edgewave.tflm_build`) with TFLM's reference kernels or CMSIS-NN, run on QEMU with exact
instruction counts, outputs read back. What the tests compare with the numpy engine, what ``make bench``
sets beside edgewave's own C, and how ``emit --tflm-dir`` measures the arena the M4 build needs.

    elf = tflm_run.build(c_dir, "model", ops, "cmsis_nn", root, work)
    out, stats = tflm_run.run(elf, codes, out_dtype)     # stats: instructions per part, arena, sizes
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import ctools, tflm_build
from .errors import UserError

# The arena the search starts from has to fit any edgewave model: far above what the largest spec needs.
SEARCH_CEILING = 256 * 1024
_RESULT = re.compile(r"TFLM_RESULT samples=(\d+) step=(\d+) invoke=(\d+) fill=(\d+) push=(\d+) max_step=(\d+) "
                     r"arena_used=(\d+) stack_bytes=(\d+) glue_bytes=(\d+)")
_KEYS = ("samples", "step", "invoke", "fill", "push", "max_step", "arena_used", "stack_bytes", "glue_bytes")
_FITS = re.compile(r"TFLM_FITS arena=(\d+) ok=([01])")


@dataclass(frozen=True)
class Program:
    elf: Path
    kernels: str
    arena_bytes: int | None  # the arena linked in; None: the generated NAME_TENSOR_ARENA_SIZE
    sizes: dict              # ctools' sizes; "model": the glue (model array included) and TFLM's library


def build(c_dir, prefix: str, ops, kernels: str, root, out_dir, arena_bytes: int | None = None,
          progress=None) -> Program:
    """Link the emitted ``{prefix}_tflm.cc`` and firmware/examples/tflm_main.cc with TFLM for the M4."""
    c_dir, out_dir = Path(c_dir), Path(out_dir)
    t = ctools.TARGETS[tflm_build.TARGET]
    defines = [f"EW_TICK_NUM={t.tick[0]}u", f"EW_TICK_DEN={t.tick[1]}u"]
    if arena_bytes is not None:
        defines.append(f"EW_ARENA_BYTES={arena_bytes}")
    glue = c_dir / f"{prefix}_tflm.cc"
    if not glue.is_file():
        raise UserError(f"{c_dir} has no {glue.name}: emit the model first (edgewave emit OUT_DIR --out {c_dir})")
    lib = tflm_build.library(root, kernels, ops, progress=progress)
    elf, _ = tflm_build.build_program(root, kernels, ops, [glue, ctools.FIRMWARE / "examples" / "tflm_main.cc"],
                                      [c_dir], out_dir, defines)
    # The model's part: the glue's object (it holds the model array) and what the library brought.
    glue_obj = sorted((out_dir / "obj").glob(f"00_{glue.stem}.o"))
    sizes = ctools._sizes(elf, elf.with_suffix(".map"), [p.resolve() for p in glue_obj] + [lib.resolve()], out_dir)
    return Program(elf, kernels, arena_bytes, sizes)


def run(program: Program, codes: np.ndarray, out_dtype, outputs: int, timeout: float = 3600) -> tuple[np.ndarray, dict]:
    """Stream ``codes`` through the program; its outputs (samples, outputs) and the TFLM_RESULT counts."""
    codes = np.asarray(codes)
    with ctools._workdir("ew_tflm_", codes) as (tmp, _):
        match = ctools.qemu_result(ctools.TARGETS[tflm_build.TARGET], program.elf, tmp, timeout, _RESULT)
        stats = dict(zip(_KEYS, map(int, match.groups())))
        if stats["samples"] != len(codes):
            raise UserError(f"TFLM on QEMU stepped {stats['samples']} of {len(codes)} samples")
        out = np.fromfile(tmp / "OUT.bin", dtype=np.dtype(out_dtype).newbyteorder("<"))
    if out.size != len(codes) * outputs:
        raise UserError(f"TFLM on QEMU wrote {out.size} of {len(codes) * outputs} outputs")
    return out.reshape(len(codes), outputs).astype(out_dtype), stats


def fits(program: Program, arena_bytes: int) -> bool:
    """Whether ew_tflm_init (AllocateTensors) succeeds with the first ``arena_bytes`` of the linked arena."""
    with ctools._workdir("ew_tflm_", files={"ARENA.bin": np.array([arena_bytes], "<u4").tobytes()}) as (tmp, _):
        proc = ctools.qemu_run(ctools.TARGETS[tflm_build.TARGET], program.elf, tmp, 120)
    match = _FITS.search(proc.stdout)
    if match:
        return match.group(2) == "1"
    if f"TFLM_TRY arena={arena_bytes}" in proc.stdout and "fault" in proc.stderr + proc.stdout:
        return False  # TFLM faulted inside AllocateTensors: the arena is too small (see tflm_main.cc)
    raise UserError(f"TFLM's arena probe failed on QEMU: {ctools._first_error(proc.stderr + proc.stdout)}")


def smallest_arena(program: Program) -> int:
    """The smallest arena (16-byte steps) AllocateTensors accepts, by bisection, one QEMU run per try."""
    lo, hi = 0, program.arena_bytes or SEARCH_CEILING  # !fits(lo), fits(hi)
    if not fits(program, hi):
        raise UserError(f"TFLM's AllocateTensors refused the model on Cortex-M4 ({program.kernels} kernels) with a "
                        f"{hi}-byte arena: a kernel that does not take the model's types, or a model too large")
    while hi - lo > 16:
        mid = (lo + hi) // 2 // 16 * 16
        lo, hi = (lo, mid) if fits(program, mid) else (mid, hi)
    return hi


def smallest_arenas(c_dir, prefix: str, ops, root, work, progress=None) -> dict[str, int]:
    """{kernels: the smallest arena AllocateTensors accepts} on the M4 build, for both kernel choices."""
    found = {}
    for kernels in tflm_build.KERNELS:
        program = build(c_dir, prefix, ops, kernels, root, Path(work) / kernels, SEARCH_CEILING, progress=progress)
        found[kernels] = smallest_arena(program)
    return found
