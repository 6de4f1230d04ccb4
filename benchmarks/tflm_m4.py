"""Table 10 of `make bench`: edgewave's generated C against stock TensorFlow Lite Micro on the same Cortex-M4.

Both run on QEMU's `mps2-an386` board (Cortex-M4) with exact instruction counts, on the same input codes
as table 4, and both must equal the numpy integer engine on every output:

  - edgewave C: the generated `model_step_q` (table 4's build, DSP path);
  - TFLM + CMSIS-NN: the emitted `model_tflm` glue (`firmware/examples/tflm_main.cc`) linked with TFLM built
    from the user's tree for the M4 with OPTIMIZED_KERNEL_DIR=cmsis_nn: CMSIS-NN kernels for every op it has,
    stock, nothing swapped (`edgewave.tflm_build`);
  - TFLM reference: the same with TFLM's reference kernels.

TFLM's arena is found per kernel choice (the smallest AllocateTensors accepts, by bisection on QEMU:
`edgewave.tflm_run.smallest_arenas`) and exactly that arena is linked into the program that is counted,
so TFLM's RAM is its best case. Without a TFLM tree (`EDGEWAVE_TFLM_DIR`, or the project's CI copy) the
table is skipped and says so.
"""

from __future__ import annotations

import time

import numpy as np

from harness import PY, BenchError, Table, later_note, log, md_table
from workspace import worst_stack

MODELS = (("default", "int16x8"), ("default", "int8"), ("default-2x", "int16x8"), ("default-2x", "int8"))
RUNTIMES = {"edgewave": "edgewave C", "cmsis_nn": "TFLM + CMSIS-NN", "reference": "TFLM reference kernels"}
HEAD = ("default", "int16x8")  # the headline figures' model


def _flash(sizes: dict) -> int:
    s = sizes["model"]
    return int(s["text"] + s["rodata"] + s["data"])


def _max_lsb(got: np.ndarray, want: np.ndarray) -> int:
    got = np.asarray(got).astype(np.int64)
    want = np.asarray(want).astype(np.int64).reshape(got.shape)
    return int(np.abs(got - want).max()) if got.size else 0


def _edgewave_row(ws, m) -> dict:
    r = ws.cortex_m(m, "cortex-m4")  # table 4's build and QEMU run; outputs already checked against the engine
    if not r["fits"]:
        raise BenchError(f"{m.label} does not fit the Cortex-M4 board: {r['error']}")
    sz = r["sizes"]["model"]
    stack = worst_stack(m)
    return {"runtime": "edgewave", "samples": r["samples"], "instructions_per_sample": r["per_sample"],
            "max_step": r["max_step"], "ram": int(m.numbers["ram_bytes"]), "static_data_bss": int(sz["data"] + sz["bss"]),
            "flash": _flash(r["sizes"]), "flash_text": int(sz["text"]), "flash_rodata": int(sz["rodata"]),
            "stack": stack["bytes"], "stack_how": "static: GCC -fcallgraph-info=su, model_step_q's deepest chain",
            "max_lsb": 0}


def _tflm_row(ws, m, root, kernels: str, arena: int) -> dict:
    from edgewave import tflm_run
    from edgewave.emit import tflm as emit_tflm
    from edgewave.errors import UserError

    n = ws.s.qemu_samples
    codes, want = m.codes(n), m.want(n)
    work = ws.work / "tflm_m4" / f"{m.name}_{m.precision}" / kernels
    try:
        prog = tflm_run.build(m.c_dir, m.prefix, emit_tflm.ops(m.stream), kernels, root, work, arena_bytes=arena,
                              progress=log)
        got, st = tflm_run.run(prog, codes, m.prog.dtype_of(m.prog.output), m.prog.tensors[m.prog.output].channels)
    except UserError as e:
        raise BenchError(f"{m.label} on TFLM ({kernels} kernels, Cortex-M4 QEMU): {e}") from None
    lsb = _max_lsb(got, want)
    if lsb != 0:
        raise BenchError(f"{m.label} on TFLM ({kernels} kernels, Cortex-M4 QEMU) differs from the numpy engine by up "
                         f"to {lsb} LSB on {int((got.astype(np.int64) != want.reshape(got.shape)).sum())} of "
                         f"{got.size} outputs: TFLM and the engine must agree bit for bit")
    sz = prog.sizes["model"]
    s = st["samples"]
    static = int(sz["data"] + sz["bss"])
    return {"runtime": kernels, "samples": s, "instructions_per_sample": st["step"] / s,
            "invoke_per_sample": st["invoke"] / s, "fill_per_sample": st["fill"] / s, "push_per_sample": st["push"] / s,
            "max_step": st["max_step"], "arena_linked": int(arena), "smallest_arena": int(arena),
            "arena_used": st["arena_used"], "glue_bytes": st["glue_bytes"], "static_data_bss": static,
            "ram": int(arena + st["glue_bytes"] + static), "flash": _flash(prog.sizes), "flash_text": int(sz["text"]),
            "flash_rodata": int(sz["rodata"]), "stack": st["stack_bytes"],
            "stack_how": "measured: high-water mark of the first step (painted stack)", "max_lsb": lsb}


def table10(ws) -> dict:
    """edgewave C vs TFLM + CMSIS-NN vs TFLM reference kernels, instructions, RAM and flash on Cortex-M4."""
    from edgewave import ctools, tflm_build, tflm_run, tflm_tree
    from edgewave.emit import tflm as emit_tflm
    from edgewave.errors import UserError

    if not ctools.have_cortex_m_tools():
        raise BenchError(f"table 10 needs arm-none-eabi-gcc, newlib and qemu-system-arm ({ctools.INSTALL_HINT})")
    try:
        root = tflm_tree.find()
    except UserError as e:  # a setting that points at no TFLM tree is a mistake, not a reason to skip
        raise BenchError(f"table 10: {e}") from None
    if root is None:
        reason = (f"no TensorFlow Lite Micro tree: set {tflm_tree.ENV} to a tflite-micro checkout with its "
                  "third-party downloads, or a .tar.xz of one")
        log(f"table 10 skipped: {reason}")
        return {"skipped": reason}
    log(f"table 10: TFLM tree {root}")
    models = []
    for name, precision in MODELS:
        m = ws.model(name, precision)
        m.want(ws.s.qemu_samples)
        t0 = time.monotonic()
        log(f"table 10: {m.label}: smallest TFLM arenas on Cortex-M4 ({', '.join(tflm_build.KERNELS)})")
        try:
            arenas = tflm_run.smallest_arenas(m.c_dir, m.prefix, emit_tflm.ops(m.stream), root,
                                              ws.work / "tflm_m4" / f"{m.name}_{m.precision}" / "arena", progress=log)
        except UserError as e:
            raise BenchError(f"{m.label}: TFLM's arena on Cortex-M4: {e}") from None
        rows = [_edgewave_row(ws, m)]
        for kernels in ("cmsis_nn", "reference"):
            log(f"table 10: {m.label} on TFLM ({kernels} kernels, arena {arenas[kernels]} bytes), "
                f"{ws.s.qemu_samples} samples")
            rows.append(_tflm_row(ws, m, root, kernels, arenas[kernels]))
        ew, cm = rows[0], rows[1]
        emitted = emit_tflm.arena_context(0, arenas)["arena_size"]
        models.append({"model": name, "precision": precision, "macs": m.macs, "rows": rows,
                       "smallest_arenas": arenas, "emitted_arena_size": emitted,
                       "speedup_vs_cmsis": cm["instructions_per_sample"] / ew["instructions_per_sample"],
                       "invoke_speedup_vs_cmsis": cm["invoke_per_sample"] / ew["instructions_per_sample"],
                       "speedup_vs_reference": rows[2]["instructions_per_sample"] / ew["instructions_per_sample"],
                       "ram_vs_cmsis": ew["ram"] / cm["ram"], "flash_vs_cmsis": ew["flash"] / cm["flash"],
                       "seconds": round(time.monotonic() - t0, 1)})
    head = next(r for r in models if (r["model"], r["precision"]) == HEAD)
    cm = head["rows"][1]
    return {"tflm_tree": str(root), "models": models,
            "tflm_cmsis_m4_instructions_per_sample": cm["instructions_per_sample"],
            "m4_vs_tflm_cmsis_speedup": head["speedup_vs_cmsis"],
            "tflm_cmsis_m4_ram_bytes": cm["ram"], "ram_vs_tflm_m4": head["ram_vs_cmsis"],
            "flash_vs_tflm_m4": head["flash_vs_cmsis"]}


def md_table10(t) -> str:
    if "skipped" in t:
        return f"Not measured in this run: {t['skipped']}."
    rows = []
    for r in t["models"]:
        ew = r["rows"][0]
        for x in r["rows"]:
            is_ew = x["runtime"] == "edgewave"
            ratio = "" if is_ew else (f"{x['instructions_per_sample'] / ew['instructions_per_sample']:.1f}× / "
                                      f"{x['ram'] / ew['ram']:.1f}× / {x['flash'] / ew['flash']:.1f}×")
            rows.append([r["model"], r["precision"], RUNTIMES[x["runtime"]],
                         f"**{x['instructions_per_sample']:,.0f}**" if is_ew else f"{x['instructions_per_sample']:,.0f}",
                         "–" if is_ew else f"{x['invoke_per_sample']:,.0f}",
                         f"{x['ram']:,}" if is_ew else f"{x['arena_linked']:,} + {x['glue_bytes']:,} + "
                                                       f"{x['static_data_bss']:,} = {x['ram']:,}",
                         f"{x['flash']:,}", "–" if is_ew else f"{x['smallest_arena']:,}", f"{x['stack']:,}",
                         f"{x['max_lsb']:g}", ratio])
    return md_table(["model", "precision", "runtime", "instructions/sample (whole step)", "TFLM invoke() alone",
                     "RAM bytes (TFLM: arena + glue struct + .data/.bss)", "flash bytes (model part)",
                     "smallest arena AllocateTensors accepts", "stack bytes (not in RAM)", "max LSB vs engine",
                     "vs edgewave C: instructions / RAM / flash"], rows)


def md_section10(t, qemu_samples: int) -> list[str]:
    if "skipped" in t:
        return [md_table10(t), ""]
    head = next(r for r in t["models"] if (r["model"], r["precision"]) == HEAD)
    return [
        "The same models on the same emulated Cortex-M4 (QEMU `mps2-an386`, exact instruction counts, SysTick under "
        f"`-icount`), the same {qemu_samples:,} input codes as table 4, every output of every runtime equal to the "
        "numpy integer engine (max LSB column; the script stops otherwise).",
        "",
        "- **edgewave C**: the generated `model_step_q`, table 4's build (DSP path). RAM = its state RAM, "
        "`sizeof(model_state)` (rings, heads, shared scratch: table 5's generated C state RAM, the emit report's "
        "`ram_bytes`); the generated code has no other static RAM. Flash = the model's own objects' text + rodata "
        "+ data (table 4's flash).",
        "- **TFLM + CMSIS-NN / reference kernels**: stock TensorFlow Lite Micro built from its tree for the M4 "
        "(`arm-none-eabi-gcc`, TFLM's own Makefile flags, release build; `OPTIMIZED_KERNEL_DIR=cmsis_nn`: CMSIS-NN "
        "for every op it has, nothing swapped) running the emitted `model_tflm` glue: one `model_tflm_step` per "
        "sample = copy the taps in, `Invoke()`, copy the outputs and push the rings. Whole step and `invoke()` "
        "alone are both counted. RAM = the arena linked (exactly the smallest one `AllocateTensors` accepts for that "
        "kernel choice, found by bisection on QEMU: TFLM's best case; `edgewave emit --tflm-dir` writes the larger "
        f"of the two plus 5 %, {head['emitted_arena_size']:,} bytes for the default int16x8 model) + "
        "`sizeof(model_tflm)` (the interpreter, the op resolver and the ring state, which live outside the arena) + "
        "the .data/.bss of the TFLM library members linked and of the glue. Flash = text + rodata + data of the "
        "TFLM library members linked (interpreter, kernels, CMSIS-NN) and of the glue object, which holds the "
        "`.tflite` array.",
        "- Neither side counts the C library (memcpy, newlib) or the runner. Stack is not in the RAM column: for "
        "edgewave the worst static chain of `model_step_q` (table 5), for TFLM the measured high-water mark of a "
        "step.",
        "",
        md_table10(t), ""]


def section(t, res) -> list[str]:
    return [*later_note(res, 10), *md_section10(t, res["settings"]["qemu_samples"]),
            f"Reproduce: `{PY} --tables 10` (with `EDGEWAVE_TFLM_DIR` set); `edgewave emit OUT_DIR --out C_DIR "
            "--tflm-dir TFLM_DIR --json` reports `tflm_m4_arena_bytes`.", ""]


TABLE = Table("Generated C vs TensorFlow Lite Micro on Cortex-M4 (QEMU, exact)", table10, section)
