"""Table 4 of `make bench`: instructions per sample and per MAC of the generated C on every core
(Cortex-M0+/M4/M7/M33, rv32imac) on QEMU, exact counts, and the real-time rates they allow.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from harness import PY, Table, log, md_table
from workspace import Workspace

MHZ = (80, 168)  # the clock rates the real-time columns assume

TITLE = "Cortex-M instructions per sample and per MAC (QEMU, exact)"


TABLE4_TARGETS = (("cortex-m0plus", False, "portable C (ARMv6-M)"),
                  ("cortex-m4", True, "portable C (`-DEW_FORCE_PORTABLE`)"),
                  ("cortex-m4", False, "DSP (SMLAD)"),
                  ("cortex-m7", False, "DSP (SMLAD)"),
                  ("cortex-m33", False, "DSP (SMLAD)"),
                  ("riscv32", False, "portable C (rv32imac)"))


def table4(ws: Workspace) -> dict:
    """Cortex-M instructions per sample and per MAC (QEMU, exact)."""
    jobs = []
    for name in ("default", "default-2x"):
        for precision in ("int8", "int16x8"):
            m = ws.model(name, precision)
            m.want(ws.s.qemu_samples)
            for target, portable, path in TABLE4_TARGETS:
                jobs.append((m, target, portable, path))
    log(f"table 4: {len(jobs)} cross builds and QEMU runs")
    with ThreadPoolExecutor(max_workers=2) as pool:  # instruction counts do not depend on host load
        results = list(pool.map(lambda j: ws.cortex_m(j[0], j[1], portable=j[2]), jobs))
    rows = []
    for (m, target, portable, path), r in zip(jobs, results):
        row = {"model": m.name, "precision": m.precision, "macs": m.macs, "target": target, "path": path,
               "portable": portable, "fits": r["fits"]}
        if r["fits"]:
            row.update(per_sample=r["per_sample"], max_step=r["max_step"], per_mac=r["per_mac"],
                       samples=r["samples"], flash=r["sizes"]["model"]["text"] + r["sizes"]["model"]["rodata"]
                       + r["sizes"]["model"]["data"])
            for f in MHZ:
                row[f"rate_{f}mhz_hz"] = f * 1e6 / r["max_step"]
                row[f"rate_{f}mhz_mean_hz"] = f * 1e6 / r["per_sample"]
        else:
            row["error"] = r["error"]
        rows.append(row)

    def pick(name, precision, target="cortex-m4"):
        return next(r for r in rows if r["model"] == name and r["precision"] == precision and r["target"] == target
                    and not r["portable"])

    return {"rows": rows,
            "m4_int8_instructions_per_mac": pick("default", "int8")["per_mac"],
            "m4_int16x8_instructions_per_mac": pick("default", "int16x8")["per_mac"],
            "m4_default_instructions_per_sample": pick("default", "int16x8")["per_sample"],
            "rv32_default_instructions_per_sample": pick("default", "int16x8", "riscv32")["per_sample"],
            "m4_default_instructions_per_sample_by_precision": {p: pick("default", p)["per_sample"]
                                                                for p in ("int8", "int16x8")},
            "m4_instructions_per_mac": {f"{n} {p}": pick(n, p)["per_mac"] for n in ("default", "default-2x")
                                        for p in ("int8", "int16x8")}}


def md_table4(t) -> str:
    rows = []
    for r in t["rows"]:
        lead = [r["model"], r["precision"], f"{r['macs']:,}", r["target"].replace("cortex-", "Cortex-").replace(
            "m0plus", "M0+").replace("-m", "-M"), r["path"]]
        if not r["fits"]:
            rows.append(lead + ["does not fit: the QEMU `microbit` board has 16 KB of RAM"] + [""] * 5)
            continue
        rows.append(lead + [f"{r['per_sample']:,.0f}", f"{r['max_step']:,}", f"{r['per_mac']:.2f}",
                            *(f"{r[f'rate_{f}mhz_hz'] / 1e3:,.1f}" for f in MHZ), f"{r['flash']:,}"])
    return md_table(["model", "precision", "MACs/sample", "core", "kernel path", "instructions/sample (mean)",
                     "longest step", "instructions/MAC", *(f"real-time kHz @ {f} MHz" for f in MHZ),
                     "flash bytes"], rows)


def section(t, res) -> list[str]:
    return [
        "The generated C built with `arm-none-eabi-gcc -O2` for each core and run on QEMU "
        "(`mps2-an386` M4, `mps2-an500` M7, `mps2-an505` M33, `microbit` for ARMv6-M / M0+) over "
        f"{res['settings']['qemu_samples']:,} samples, outputs checked bit for bit. Counts are exact "
        "instructions of all `model_step_q` calls (SysTick under `-icount`), identical on every run. "
        "QEMU counts instructions, not cycles: **the real-time rates assume one instruction per cycle** "
        "(real cores stall on flash wait states and multi-cycle instructions, so treat them as upper bounds) "
        "and use the longest step, so every sample meets its deadline. Flash = the model's own code + "
        "constants (weights, tables) after `--gc-sections`. (Cortex-M0+ parts rarely run above ~64 MHz; "
        "its 168 MHz column is for comparison only.)", "",
        md_table4(t), "",
        f"Reproduce: `{PY} --tables 4`; or `edgewave emit OUT_DIR --out C_DIR --target cortex-m4 --json`.",
        ""]


TABLE = Table(TITLE, table4, section)
