"""Table 5 of `make bench`: RAM and flash of the generated C against TFLite Micro's arena and the
theoretical minimum state of a streaming model.
"""

from __future__ import annotations

from harness import PY, BenchError, Table, log, md_table
from workspace import Workspace, worst_stack

TITLE = "Memory: generated C vs TFLite Micro vs the minimum state"


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


def section(t, res) -> list[str]:
    return [
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
        md_table5(t), "",
        f"Reproduce: `{PY} --tables 5`; `edgewave emit OUT_DIR --out C_DIR --json` prints "
        "`ram_bytes`, `min_state_bytes`, `tflm_arena_bytes`, `tflm_ram_bytes` and `flash_bytes`.", ""]


TABLE = Table(TITLE, table5, section)
