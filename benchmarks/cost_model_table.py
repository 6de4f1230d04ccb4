"""Table 11 of `make bench`: cost_model.py measures it and renders its Markdown table; this module is the
table's entry for run.py, with the prose of its RESULTS.md section.
"""

from __future__ import annotations

import cost_model
from harness import PY, ROOT, BenchError, Table, later_note, log, md_table, run
from workspace import MODEL_SPECS

# Compatibility until cost_model.py imports md_table, BenchError and ROOT from harness and MODEL_SPECS from
# workspace itself (then it has no configure() and these lines go): table 11 adds its random architectures to
# this very MODEL_SPECS, which the Workspace builds from and RESULTS.md's model list shows.
if hasattr(cost_model, "configure"):
    cost_model.configure(md_table=md_table, BenchError=BenchError, MODEL_SPECS=MODEL_SPECS, ROOT=ROOT)


def table11(ws) -> dict:
    return cost_model.table11(ws, run, log)


def section(t, res) -> list[str]:
    return [*later_note(res, 11),
            "`edgewave info MODEL|SPEC --target CORE` predicts instructions per sample as a non-negative cost per "
            "unit of work of the lowered program (MACs, MACs on the 16-bit input, FC outputs and calls, tap "
            "gathers, activation-table and elementwise values, pooling taps, ring pushes, other calls, one per "
            f"step: `edgewave/realtime.py`), fitted per core and precision on {len(t['fit_set'])} models "
            f"({', '.join(t['fit_set'][:2])} and random architectures) and checked on "
            f"{len(t['test_set'])} other random architectures, each measured on QEMU (exact counts, outputs "
            "equal to the numpy engine). Their specs are in `results.json`.", "",
            cost_model.md_table11(t),
            f"Reproduce: `{PY} --tables 11` (writes `edgewave/data/cortex_m_costs.json`).", ""]


TABLE = Table("The cost model of `edgewave info --target`, checked on models it was not fitted on", table11, section)
