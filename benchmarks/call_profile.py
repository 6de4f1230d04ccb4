"""Table 13 of `make bench`: where a step's instructions go, call by call, on Cortex-M4 (QEMU, exact).

The generated step marks the end of every call when built with -DEW_PROFILE (templates/model.c.j2);
the QEMU runner (firmware/examples/qemu_main.c) adds up the instructions between marks, with the
marks' own cost calibrated off. A call is what the plan made of the program (edgewave/emit/plan.py):
a gated unit, a fully-connected layer with its residual ADD, a plain op, ... The profiled build's
outputs are checked against the engine, like the unprofiled one's, and both totals are shown: the
marks are function calls, so the compiler may place code around them differently.

Profiled: the bench's default model in both precisions (random weights, as in table 4) and the same
spec trained on the bundled real speech (table 7's model, or trained here as table 7 trains it): a
user's model, whose trained scales pick the kernels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness import BenchError, Table, log, md_table
from workspace import Workspace

TITLE = "Per-call profile of a step on Cortex-M4 (QEMU, exact)"
TARGET = "cortex-m4"


def call_label(c: dict) -> str:
    """What a plan record runs, for a reader: its kind, the kernel it was lowered to, what it writes."""
    kernel = c.get("fn") or c["macro"]
    return f"{c['kind']} {kernel} → {c['out'].tensor}"


def call_macs(c: dict) -> int:
    return int(sum(op.weights.size for op in c["parts"] if op.kind == "fc"))


def profile(prog, sources, codes: np.ndarray, want: np.ndarray, out_dir: Path, what: str) -> dict:
    """Both builds on QEMU: per-sample totals and each call's instructions per sample."""
    from edgewave import ctools
    from edgewave.emit import plan as plan_mod
    from edgewave.errors import UserError

    srcs, incs = sources
    runs = {}
    for profiled in (False, True):
        try:
            elf, _ = ctools.build_cortex_m(TARGET, srcs, incs, out_dir / ("profiled" if profiled else "plain"),
                                           defines=("EW_PROFILE",) if profiled else ())
            y, stats = ctools.run_qemu(TARGET, elf, codes, out_dtype=prog.dtype)
        except UserError as e:
            raise BenchError(f"{what} on {TARGET}: {e}") from None
        if not np.array_equal(y, want):
            raise BenchError(f"{what} on {TARGET}{' (profiled)' if profiled else ''} differs from the engine")
        runs[profiled] = stats
    n = runs[True]["samples"]
    calls = plan_mod.plan(prog, "model").calls
    counts = runs[True].get("profile", [])
    if len(counts) != len(calls) + 1:
        raise BenchError(f"{what}: the profiled run reported {len(counts)} calls, the plan has {len(calls)} + 1")
    rows = [{"call": call_label(c), "kind": c["kind"], "macs": call_macs(c), "per_sample": k / n}
            for c, k in zip(calls, counts)]
    rows.append({"call": "output copy, ring heads", "kind": "tail", "macs": 0, "per_sample": counts[-1] / n})
    for r in rows:
        r["per_mac"] = r["per_sample"] / r["macs"] if r["macs"] else None
    plain = runs[False]["instructions"] / runs[False]["samples"]
    macs = sum(r["macs"] for r in rows)
    return {"rows": rows, "per_sample": plain, "profiled_per_sample": runs[True]["instructions"] / n,
            "calls_per_sample": sum(r["per_sample"] for r in rows), "macs": macs, "per_mac": plain / macs,
            "samples": n}


def _trained(ws: Workspace) -> list[tuple[str, str, object, str]]:
    """The default spec trained on the bundled recording, in both precisions: table 7's model when
    table 7 ran in this run, else trained here the same way."""
    from jobs import BUNDLED, train_and_convert

    from edgewave.simulate import Converted

    if "table7" in ws.shared:
        row = next(r for r in ws.shared["table7"]["rows"].values() if r["bundled"])
        outs, source = row["out"], row["source"]
    else:
        outs, source = train_and_convert(BUNDLED, ws.work, ws.s)["out"], str(BUNDLED)
    return [(f"default, trained on {Path(source).name}", p, Converted.load(outs[p]), source) for p in ("int16x8", "int8")]


def _held_out_speech(conv, source: str, n: int) -> np.ndarray:
    """n samples of the last 10 % of the recording the model was trained on, normalised as it was."""
    from edgewave import signals

    x = signals.load_signal(source).samples
    norm = conv.manifest["normalization"]
    return ((x[int(len(x) * 0.9):][:n] - norm["offset"]) / norm["scale"]).astype(np.float32)


def table13(ws: Workspace) -> dict:
    from edgewave.convert.pipeline import quantize_input
    from edgewave.emit import pipeline as emit_pipeline
    from edgewave.engine import Engine

    n = ws.s.qemu_samples
    models = {}
    for precision in ("int16x8", "int8"):
        m = ws.model("default", precision)
        log(f"table 13: profile {m.label}")
        models[f"default (random weights) {precision}"] = profile(
            m.prog, m.sources(), m.codes(n), m.want(n), ws.work / "profile" / f"default_{precision}", m.label)
    for name, precision, conv, source in _trained(ws):
        log(f"table 13: profile {name} {precision}")
        codes = quantize_input(conv.prog, _held_out_speech(conv, source, n))
        models[f"{name} {precision}"] = profile(
            conv.prog, emit_pipeline.c_sources(conv.c_dir(), "model"), codes, Engine(conv.prog).run_sequence(codes),
            ws.work / "profile" / f"trained_{precision}", f"{name} {precision}")
    return {"target": TARGET, "models": models}


def md_table13(t) -> str:
    out = []
    for name, m in t["models"].items():
        rows = [[r["call"], f"{r['macs']:,}" if r["macs"] else "", f"{r['per_sample']:,.1f}",
                 f"{r['per_mac']:.2f}" if r["per_mac"] else "", f"{100 * r['per_sample'] / m['calls_per_sample']:.1f} %"]
                for r in m["rows"]]
        out += [f"**{name}**: {m['per_sample']:,.1f} instructions/sample unprofiled ({m['per_mac']:.2f}/MAC over "
                f"{m['macs']:,} MACs), {m['profiled_per_sample']:,.1f} profiled, of which the calls below "
                f"{m['calls_per_sample']:,.1f} ({m['samples']:,} samples).", "",
                md_table(["call", "MACs", "instructions/sample", "per MAC", "share"], rows), ""]
    return "\n".join(out)


def section(t, res) -> list[str]:
    return ["Each call of the generated `model_step_q` as the plan made it (a gated unit is both its "
            "fully-connected layers, both activations and the product; `fcadd` a fully-connected layer with "
            "the residual ADD after it; `op` a program op on the reference kernel). Counted on "
            f"QEMU {t['target']} by an `-DEW_PROFILE` build whose outputs equal the engine's; the marks' own cost "
            "is taken off, the rest of the difference between the profiled and unprofiled totals is the "
            "compiler arranging code around the marks.", "",
            md_table13(t), ""]


TABLE = Table(TITLE, table13, section)
