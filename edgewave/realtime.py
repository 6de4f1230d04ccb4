"""Will a model run in real time on a core (Cortex-M or RV32)? Sized from measured instruction counts.

`make bench` (benchmarks/cost_model.py) runs the generated C of a set of models — the default spec, its
double-width variant and random architectures — on QEMU with exact instruction counts and fits, per core
and precision, a non-negative cost per unit of work the generated step does:

    instructions/sample ≈ Σ cost[f] · count[f]     for f in FEATURES

The counts come from the calls the emitter would generate (emit.plan: which kernel, in which mode, on how
many rows and input pairs), so they follow what the C does: a gated unit or a residual ADD fused into its
FULLY_CONNECTED, outputs padded to the kernels' blocks of 4, input pairs padded to whole words, the
gathers. Which mode a fused call takes depends on the quantization scales, so a spec or a model is first
quantized (sizing_program): a spec gets fixed pseudo-random weights, and both are calibrated on the
bundled recording. The bench checks the fit on random architectures it was not fitted on — from their
measured programs and from their specs alone — and stores it with its error in
edgewave/data/cortex_m_costs.json, so sizing needs no toolchain. It assumes one instruction per cycle.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources

import numpy as np

from .errors import UserError
from .graph import Graph

COSTS_FILE = "data/cortex_m_costs.json"
TARGETS = ("cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33", "riscv32")
PRECISIONS = ("int16x8", "int8")
FEATURES = ("mac_pair", "fc_row", "fc_act_row", "gate_out", "addfc_out", "addfc_any_out", "fc_call", "gather_word",
            "widen_quad", "inline_word", "binary_value", "copy_value", "pool_tap",
            "op_call", "ring_value", "step")
SIZING_SEED = 0
SIZING_SAMPLES = 8000  # calibration samples (at least 3 receptive fields)
_PREPARED = ("fcq", "gateq", "gateq16x8", "addfcq")
_ACTIVATED_FCQ = ("EW_FCQ_TANH", "EW_FCQ_LOGISTIC", "EW_FCQ_LUT")


def load_costs() -> dict:
    try:
        doc = json.loads(resources.files("edgewave").joinpath(COSTS_FILE).read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"edgewave/{COSTS_FILE} is missing or unreadable ({e}); reinstall edgewave "
                        "or regenerate it with `make bench`") from None
    if doc.get("features") != list(FEATURES):
        raise UserError(f"edgewave/{COSTS_FILE} was fitted for other cost features than this edgewave counts; "
                        "regenerate it with `benchmarks/run.py --tables 11` or reinstall edgewave")
    return doc


def _blocks(n: int) -> int:
    """Rows as the fully-connected kernels compute them: in blocks of 4."""
    return -(-n // 4) * 4


def features(prog) -> dict[str, int]:
    """What one streaming step of the C generated for ``prog`` (a quantized Program) does, per FEATURES."""
    from .emit import plan as plan_mod

    count = dict.fromkeys(FEATURES, 0)
    count["step"] = 1
    p = plan_mod.plan(prog, "model")
    for call in p.calls:
        macro, fcs = call["macro"], [op for op in call["parts"] if op.kind == "fc"]
        if macro in _PREPARED:
            rows = sum(op.weights.shape[0] for op in fcs)
            count["mac_pair"] += _blocks(rows) * call["n_pairs"]
            count["fc_call"] += 1
            if macro == "fcq":
                count["fc_row"] += _blocks(rows)
                if call["mode"] in _ACTIVATED_FCQ:  # its tanh / logistic / table in the same call
                    count["fc_act_row"] += _blocks(rows)
            elif macro == "addfcq":
                count["addfc_any_out" if call["mode"] == "EW_ADDFC_ANY" else "addfc_out"] += rows
            else:
                count["gate_out"] += fcs[0].weights.shape[0]
            gather = call["gather"]
            if gather == "copy":
                count["gather_word"] += call["xw_words"]
            elif gather == "widen":
                count["widen_quad"] += call["quads"] * len(call["inputs"])
            elif gather == "inline":
                count["inline_word"] += call["xw_words"]
            elif gather == "mixed":
                count["widen_quad"] += sum(kind == "widen" for kind, _, _ in call["pieces"])
                count["inline_word"] += sum(2 for kind, _, _ in call["pieces"] if kind == "words")
            continue
        out = call["out"].channels
        count["op_call"] += 1
        if macro == "fc":  # the reference kernel, where no prepared one is exact
            n_out, depth = fcs[0].weights.shape
            count["mac_pair"] += _blocks(n_out) * -(-depth // 2)
            count["fc_row"] += _blocks(n_out)
            count["fc_call"] += 1
        elif macro == "binary":
            count["binary_value"] += out
        elif macro == "pool":
            count["pool_tap"] += out * len(call["inputs"])
        else:  # tables, requantizations, clamps, concatenations
            count["copy_value"] += out
    count["ring_value"] = sum(s.channels for s in p.rings)
    return count


def sizing_program(graph: Graph, precision: str):
    """The program at ``precision`` that ``graph`` quantizes to: with its trained weights, or for a spec
    with fixed pseudo-random ones (Glorot-uniform kernels, as Keras initialises them, and non-zero
    biases), calibrated on the bundled recording (normalised to zero mean and unit variance)."""
    from . import signals
    from .convert import pipeline

    if not graph.weights:
        rng = np.random.default_rng(SIZING_SEED)
        by, weights = graph.by_name, {}
        for n in graph.nodes:
            if n.op == "conv":
                c_in = by[n.inputs[0]].channels
                limit = np.sqrt(6.0 / (n.kernel * (c_in + n.channels)))
                weights[n.name] = (rng.uniform(-limit, limit, (n.kernel, c_in, n.channels)).astype(np.float32),
                                   rng.normal(0, 0.3, n.channels).astype(np.float32) if n.use_bias else None)
        graph = dataclasses.replace(graph, weights=weights)
    with resources.as_file(resources.files("edgewave").joinpath("data/speech8k_fr.wav")) as path:
        x = signals.load_signal(str(path)).samples.astype(np.float64)
    x = ((x - x.mean()) / x.std())[: max(SIZING_SAMPLES, 3 * graph.receptive_field)].astype(np.float32)
    return pipeline.build(graph, x, precision)[1]


def fit(rows: list[tuple[dict[str, int], float]]) -> dict[str, float]:
    """Non-negative per-feature costs from (features, instructions/sample) rows, least squares on the
    relative error (a model of 2 000 instructions weighs as much as one of 50 000)."""
    from scipy.optimize import nnls

    a = np.array([[f[k] for k in FEATURES] for f, _ in rows], float)
    b = np.array([instr for _, instr in rows], float)
    costs, _ = nnls(a / b[:, None], np.ones(len(b)))
    return {k: float(c) for k, c in zip(FEATURES, costs)}


def predict(count: dict[str, int], costs: dict[str, float]) -> float:
    return float(sum(costs.get(k, 0.0) * count[k] for k in FEATURES))


def estimate(graph: Graph, target: str, precision: str, clock_hz: float, rate_hz: float,
             costs: dict | None = None) -> dict:
    costs = costs or load_costs()
    try:
        c = costs["costs"][target][precision]
    except KeyError:
        raise UserError(f"no measured costs for {target} {precision}; known: "
                        f"{', '.join(f'{t} {p}' for t in costs['costs'] for p in costs['costs'][t])}") from None
    prog = sizing_program(graph, precision)
    macs = sum(int(op.weights.size) for op in prog.ops if op.kind == "fc")
    instructions = predict(features(prog), c)
    budget = clock_hz / rate_hz
    error = costs.get("held_out_max_error_pct", {}).get(target, {}).get(precision)
    return {"target": target, "precision": precision, "clock_hz": clock_hz, "rate_hz": rate_hz,
            "macs_per_sample": macs, "values_per_sample": graph.values_per_sample(),
            "instructions_per_sample": round(instructions), "instructions_per_mac": round(instructions / macs, 3),
            "budget_instructions_per_sample": round(budget), "core_load": round(instructions / budget, 4),
            "max_rate_hz": round(clock_hz / instructions), "realtime": instructions <= budget,
            "cost_model": {"costs": c, "held_out_max_error_pct": error, "source": costs.get("source", "")}}


def describe(e: dict) -> str:
    verdict = "yes" if e["realtime"] else "NO"
    error = e["cost_model"]["held_out_max_error_pct"]
    within = f", within {error:.0f}% on the bench's held-out models" if error is not None else ""
    return (f"real time on {e['target']} at {e['clock_hz'] / 1e6:g} MHz, {e['rate_hz']:g} Hz, {e['precision']}: "
            f"{verdict} — about {e['instructions_per_sample']:,} instructions/sample "
            f"({e['instructions_per_mac']:.2f}/MAC) of the {e['budget_instructions_per_sample']:,} available "
            f"({100 * e['core_load']:.0f}% of the core; up to {e['max_rate_hz']:,} Hz). "
            f"Estimated from per-op costs fitted to instruction counts `make bench` measured on QEMU{within}, "
            "one instruction per cycle; confirm with `edgewave emit --target` after training.")
