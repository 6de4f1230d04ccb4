"""Will a model run in real time on a core (Cortex-M or RV32)? Sized from measured instruction counts.

`make bench` (benchmarks/cost_model.py) runs the generated C of a set of models — the default spec, its
double-width variant and random architectures — on QEMU with exact instruction counts and fits, per core
and precision, a non-negative cost per unit of work the lowered program does each step:

    instructions/sample ≈ Σ cost[f] · count[f]     for f in FEATURES

(multiply-accumulates, those on the 16-bit input, FULLY_CONNECTED outputs and calls, tap gathers,
activation-table values, ADD and MUL values, copied or clamped values, pooling taps, ring pushes, other
calls, and the step itself). The counts come from the lowered
program's structure alone (convert.lowering.lower_structure), so an untrained spec can be sized. The
bench checks the fit on random architectures it was not fitted on and stores it with its error in
edgewave/data/cortex_m_costs.json, so sizing needs no toolchain. It assumes one instruction per cycle.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np

from .errors import UserError
from .graph import Graph

COSTS_FILE = "data/cortex_m_costs.json"
TARGETS = ("cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33", "riscv32")
PRECISIONS = ("int16x8", "int8")
FEATURES = ("mac", "input_mac", "fc_output", "fc_call", "gathered", "lut_value", "add_value", "mul_value",
            "copy_value", "pool_tap", "ring_value", "op_call", "step")
# Elementwise ops that rescale both inputs (ADD) or their product (MUL), and those that only copy or clamp.
_VALUE_FEATURE = {"add": "add_value", "mul": "mul_value", "relu": "copy_value", "requant": "copy_value",
                  "concat": "copy_value"}


def load_costs() -> dict:
    try:
        return json.loads(resources.files("edgewave").joinpath(COSTS_FILE).read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"edgewave/{COSTS_FILE} is missing or unreadable ({e}); reinstall edgewave "
                        "or regenerate it with `make bench`") from None


def features(graph: Graph) -> dict[str, int]:
    """What one streaming step of the lowered program does, counted per FEATURES."""
    from .convert.lowering import lower_structure

    prog = lower_structure(graph)
    count = dict.fromkeys(FEATURES, 0)
    count["step"] = 1
    for op in prog.ops:
        out = prog.tensors[op.output].channels
        if op.kind == "fc":
            n_out, depth = op.weights.shape
            count["mac"] += n_out * depth
            # the input and the 16-bit stage of an int8 model run on the 16x8 path
            if any(name == prog.input for name, _ in op.inputs):
                count["input_mac"] += n_out * depth
            count["fc_output"] += n_out
            count["fc_call"] += 1
            if len(op.inputs) > 1:
                count["gathered"] += depth
        elif op.kind in ("tanh", "logistic"):
            count["lut_value"] += out
            count["op_call"] += 1
        elif op.kind.endswith("pool"):
            count["pool_tap"] += out * len(op.inputs)
            count["op_call"] += 1
        else:
            count[_VALUE_FEATURE[op.kind]] += out
            count["op_call"] += 1
    count["ring_value"] = sum(prog.tensors[name].channels for name in prog.ring_delays())
    return count


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
    count = features(graph)
    macs, instructions = count["mac"], predict(count, c)
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
