"""Table 2 of `make bench`: the per-sample cost of the generated C does not grow with dilation
(6 layers, 16 channels; dilations all 1 vs 1…1024), exact on QEMU and timed on the host.
"""

from __future__ import annotations

from harness import PY, Table, fmt, log, md_table
from workspace import Workspace

TITLE = "Per-sample cost against dilation (6 layers, 16 channels)"


TABLE2_TARGETS = ("cortex-m4", "cortex-m7", "cortex-m33")


def table2(ws: Workspace) -> dict:
    """Per-sample cost against dilation at fixed depth and width."""
    s = ws.s
    rows = []
    for precision in ("int8", "int16x8"):
        a, b = ws.model("conv6-d1", precision), ws.model("conv6-dilated", precision)
        log(f"table 2: {precision}")
        for target in TABLE2_TARGETS:
            ra, rb = ws.cortex_m(a, target), ws.cortex_m(b, target)
            rows.append({"precision": precision, "where": f"{target} (QEMU, exact instructions)",
                         "unit": "instructions/sample", "d1": ra["per_sample"], "dilated": rb["per_sample"],
                         "ratio": rb["per_sample"] / ra["per_sample"], "exact": True})
        ta, tb = ws.c_host_interleaved((a, b), s.c_stream_samples, rounds=s.c_repeats)
        rows.append({"precision": precision, "where": f"host, generated C (gcc -O2), median of {ta['repeats']} "
                                                      "interleaved repeats",
                     "unit": "ns/sample (CPU)", "d1": ta["median_s"] * 1e9, "dilated": tb["median_s"] * 1e9,
                     "ratio": tb["median_s"] / ta["median_s"], "exact": False})
    a, b = ws.model("conv6-d1", "int16x8"), ws.model("conv6-dilated", "int16x8")
    headline = next(r["ratio"] for r in rows if r["precision"] == "int16x8" and r["where"].startswith("cortex-m4"))
    return {"rows": rows, "rf_d1": a.rf, "rf_dilated": b.rf, "macs": a.macs,
            "state_bytes": {"d1": a.prog.state_bytes(), "dilated": b.prog.state_bytes()},
            "dilation_cost_ratio": headline}


def md_table2(t) -> str:
    rows = [[r["precision"], r["where"], r["unit"], fmt(r["d1"], 4), fmt(r["dilated"], 4), f"**{r['ratio']:.3f}**"]
            for r in t["rows"]]
    return md_table(["precision", "where / how", "unit", f"dilations all 1 (RF {t['rf_d1']})",
                     f"dilations 1…1024 (RF {t['rf_dilated']:,})", "ratio"], rows)


def section(t, res) -> list[str]:
    return [
        f"Models `conv6-d1` and `conv6-dilated`: same depth, width and MACs ({t['macs']:,}/sample), the "
        f"receptive field grows from {t['rf_d1']} to {t['rf_dilated']:,} samples "
        f"({t['rf_dilated'] / t['rf_d1']:.0f}×; the largest dilation 1024×) and the ring state from "
        f"{t['state_bytes']['d1']:,} to {t['state_bytes']['dilated']:,} bytes (int16x8). Cost per sample "
        "of the generated C: exact instruction counts on QEMU over "
        f"{res['settings']['qemu_samples']:,} samples, and host time (median).", "",
        md_table2(t), "",
        f"Reproduce: `{PY} --tables 2`.", ""]


TABLE = Table(TITLE, table2, section)
