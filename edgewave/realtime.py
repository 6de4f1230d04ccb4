"""Will a model run in real time on a Cortex-M core? Sized from measured instruction counts.

`make bench` (benchmarks/run.py, table 4) runs the generated C of two models of different
width on QEMU with exact instruction counts and fits, per core and precision,

    instructions/sample ≈ per_mac · MACs + per_value · values

where MACs are the lowered program's (convert.program.runtime_macs: what the C computes) and
`values` the activations a step computes (every layer's output channels): the
multiply-accumulates cost roughly per MAC, requantization, activations and elementwise ops
per value. The fit is stored in edgewave/data/cortex_m_costs.json, so sizing needs no
toolchain and no trained model; it assumes one instruction per cycle (Cortex-M4/M7/M33
run most DSP and load/store instructions in one cycle, M0+ is close to it).
"""

from __future__ import annotations

import json
from importlib import resources

from .errors import UserError
from .graph import Graph

COSTS_FILE = "data/cortex_m_costs.json"
TARGETS = ("cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33")
PRECISIONS = ("int16x8", "int8")


def load_costs() -> dict:
    try:
        return json.loads(resources.files("edgewave").joinpath(COSTS_FILE).read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"edgewave/{COSTS_FILE} is missing or unreadable ({e}); reinstall edgewave "
                        "or regenerate it with `make bench`") from None


def fit(points: list[tuple[int, int, float]]) -> dict:
    """per_mac, per_value from (MACs, values, instructions/sample) points: exact for two, least squares above;
    one point gives per_mac alone."""
    import numpy as np

    if len(points) == 1:
        macs, _, instr = points[0]
        return {"per_mac": instr / macs, "per_value": 0.0}
    a = np.array([[m, v] for m, v, _ in points], float)
    b = np.array([i for _, _, i in points], float)
    (per_mac, per_value), *_ = np.linalg.lstsq(a, b, rcond=None)
    return {"per_mac": float(per_mac), "per_value": float(per_value)}


def estimate(graph: Graph, target: str, precision: str, clock_hz: float, rate_hz: float,
             costs: dict | None = None) -> dict:
    costs = costs or load_costs()
    try:
        c = costs["costs"][target][precision]
    except KeyError:
        raise UserError(f"no measured costs for {target} {precision}; known: "
                        f"{', '.join(f'{t} {p}' for t in costs['costs'] for p in costs['costs'][t])}") from None
    from .convert.program import runtime_macs

    macs, values = runtime_macs(graph), graph.values_per_sample()
    instructions = c["per_mac"] * macs + c["per_value"] * values
    budget = clock_hz / rate_hz
    return {"target": target, "precision": precision, "clock_hz": clock_hz, "rate_hz": rate_hz,
            "macs_per_sample": macs, "values_per_sample": values,
            "instructions_per_sample": round(instructions), "instructions_per_mac": round(instructions / macs, 3),
            "budget_instructions_per_sample": round(budget), "core_load": round(instructions / budget, 4),
            "max_rate_hz": round(clock_hz / instructions), "realtime": instructions <= budget,
            "cost_model": {**c, "source": costs.get("source", "")}}


def describe(e: dict) -> str:
    verdict = "yes" if e["realtime"] else "NO"
    return (f"real time on {e['target']} at {e['clock_hz'] / 1e6:g} MHz, {e['rate_hz']:g} Hz, {e['precision']}: "
            f"{verdict} — about {e['instructions_per_sample']:,} instructions/sample "
            f"({e['instructions_per_mac']:.2f}/MAC) of the {e['budget_instructions_per_sample']:,} available "
            f"({100 * e['core_load']:.0f}% of the core; up to {e['max_rate_hz']:,} Hz). "
            f"Estimated from instruction counts measured by `make bench` "
            f"({e['cost_model']['per_mac']:.3f}/MAC + {e['cost_model']['per_value']:.2f}/activation value), "
            "one instruction per cycle; confirm with `edgewave emit --target` after training.")
