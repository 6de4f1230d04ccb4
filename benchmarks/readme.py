"""The README's measured figures, rendered from benchmarks/results.json.

Every measured number in README.md stands between `<!-- results: NAME -->` and
`<!-- /results -->`, and is written there by this script from the results file that
`make bench` wrote; `make bench` runs it last. `tests/test_readme_figures.py` checks
that the README equals this rendering and that no measured figure stands outside it.

    python benchmarks/readme.py            # rewrite README.md from results.json
    python benchmarks/readme.py --check    # exit 1 if README.md is stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results.json"

SECTION = re.compile(r"(<!-- results: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results -->)", re.S)


def n(v, digits=0) -> str:
    """Thousands with a thin space, as the README writes them."""
    s = f"{v:,.{digits}f}"
    return s.replace(",", " ")


def row(t4, model, precision, target):
    """Table 4's row of the build a user gets for the target (not the one forced onto portable C)."""
    for r in t4["rows"]:
        if (r["model"], r["precision"], r["target"]) == (model, precision, target) and not r["portable"]:
            return r
    raise KeyError(f"table 4 has no row {model} {precision} {target}")


def t5row(t5, model, precision):
    return next(r for r in t5["rows"] if (r["model"], r["precision"]) == (model, precision))


def t3row(t3, precision, backend_prefix):
    return next(r for r in t3["rows"] if r["precision"] == precision and r["backend"].startswith(backend_prefix))


def headline(res) -> str:
    t = res["tables"]
    tr, cv, t4 = t["6"]["train"], t["6"]["convert"], t["4"]
    m4 = row(t4, "default", "int16x8", "cortex-m4")
    lsb = max(max(cv[p]["engine_vs_tflm_max_lsb"], cv[p]["litert_ref_vs_tflm_max_lsb"]) for p in cv)
    return "\n".join([
        f"Measured by `make bench` ({res['date'][:10]}, {res['machine']['cores']} cores) on the bundled recording "
        f"with the default spec, seed {tr['training']['seed']} — the same steps `make demo` runs:",
        "",
        "| | |",
        "|---|---|",
        f"| receptive field, MACs per sample as run | {tr['receptive_field']}, {n(m4['macs'])} |",
        f"| training | {tr['training']['seconds']:.0f} s, {tr['training']['epochs_run']} of "
        f"{tr['training']['epochs']} epochs |",
        f"| held-out prediction gain, float | {tr['prediction_gain_db']:.2f} dB (LPC-32 {tr['lpc32_gain_db']:.2f} dB, "
        f"previous sample {t['6']['previous_sample_gain_db']:.2f} dB) |",
        f"| int16x8 / int8 | {cv['int16x8']['quant_gain_db']:.2f} / {cv['int8']['quant_gain_db']:.2f} dB |",
        f"| numpy engine vs TFLite Micro vs LiteRT (BUILTIN_REF), {n(cv['int16x8']['checked_samples'])} samples "
        f"| max {lsb:g} LSB |",
        f"| Cortex-M4 (QEMU, exact count), int16x8 | {n(m4['per_sample'])} instructions per sample: real time at "
        f"16 kHz from {m4['per_sample'] * 16000 / 1e6:.0f} MHz at one instruction per cycle |",
        "",
    ])


def precision(res) -> str:
    cv = res["tables"]["6"]["convert"]
    f = cv["int16x8"]["float_gain_db"]
    lines = ["| `--precision` | activations / weights | accuracy (default model, bundled speech, held-out split) |",
             "|---|---|---|",
             f"| `int16x8` (default) | int16 / int8 per channel, int64 bias | {cv['int16x8']['quant_gain_db']:.2f} dB "
             f"vs float {f:.2f} dB: loses {f - cv['int16x8']['quant_gain_db']:.2f} dB |",
             f"| `int8` | int8 / int8 per channel; the input stage stays 16-bit (below) | "
             f"{cv['int8']['quant_gain_db']:.2f} dB: loses {f - cv['int8']['quant_gain_db']:.2f} dB, with half the ring "
             f"state of int16x8 |"]
    plain = cv.get("int8-input-int8")
    lines.append("| `int8 --int8-input int8` | int8 from the input on (int8 in, int8 out) | "
                 + (f"{plain['quant_gain_db']:.2f} dB: loses {f - plain['quant_gain_db']:.2f} dB |" if plain
                    else "loses more than `int8` (not yet measured by `make bench`) |"))
    lines += ["| `float32` | float / float | the float model |",
              "",
              f"LPC-32 reaches {res['tables']['6']['train']['lpc32_gain_db']:.2f} dB on the same split.",
              ""]
    return "\n".join(lines)


def ram_line(res, r16, r8) -> str:
    """RAM of the generated C against TFLM's on the 32-bit M4 build (table 10), or, without that table, against
    the 64-bit host's arena (table 5)."""
    t10 = res["tables"].get("10")
    if not t10 or "skipped" in t10:
        return (f"| RAM: state + scratch vs TFLite Micro (arena measured by the tflite-micro wheel on this 64-bit host, "
                f"plus the ring state it keeps outside) | {n(r16['c_state_ram'])} B vs {n(r16['tflm_ram'])} B "
                f"({r16['ram_vs_tflm']:.2f}) | {n(r8['c_state_ram'])} B vs {n(r8['tflm_ram'])} B "
                f"({r8['ram_vs_tflm']:.2f}) |")
    cells = []
    for precision in ("int16x8", "int8"):
        rows = next(m["rows"] for m in t10["models"] if (m["model"], m["precision"]) == ("default", precision))
        ew, tf = (next(x for x in rows if x["runtime"] == k) for k in ("edgewave", "cmsis_nn"))
        cells.append(f"{n(ew['ram'])} B vs {n(tf['ram'])} B ({ew['ram'] / tf['ram']:.2f})")
    return ("| RAM: state + scratch vs TFLite Micro + CMSIS-NN on the Cortex-M4 build (smallest arena, interpreter and "
            f"rings) | {cells[0]} | {cells[1]} |")


def speed(res) -> str:
    t = res["tables"]
    t3, t4, t5 = t["3"], t["4"], t["5"]

    def m(precision, target):
        return row(t4, "default", precision, target)

    def cell(precision, target):
        r = m(precision, target)
        return f"{n(r['per_sample'])}"

    r16, r8 = t5row(t5, "default", "int16x8"), t5row(t5, "default", "int8")
    inv, loop = t3["c_vs_litert_invoke_only_speedup"], t3["c_vs_litert_speedup_by_precision"]
    c16, c8 = t3row(t3, "int16x8", "generated C"), t3row(t3, "int8", "generated C")
    return "\n".join([
        "| | int16x8 | int8 |",
        "|---|---|---|",
        f"| Cortex-M4 (QEMU, exact instruction counts), DSP path, random weights | {cell('int16x8', 'cortex-m4')} instructions/sample "
        f"({m('int16x8', 'cortex-m4')['per_mac']:.2f}/MAC) | {cell('int8', 'cortex-m4')} "
        f"({m('int8', 'cortex-m4')['per_mac']:.2f}/MAC) |",
        *trained_row(res),
        f"| Cortex-M7 / M33 | {cell('int16x8', 'cortex-m7')} / {cell('int16x8', 'cortex-m33')} | "
        f"{cell('int8', 'cortex-m7')} / {cell('int8', 'cortex-m33')} |",
        f"| Cortex-M0 (portable C, QEMU's `microbit` board: an nRF51 Cortex-M0, ARMv6-M like the M0+) | "
        f"{cell('int16x8', 'cortex-m0plus')} | {cell('int8', 'cortex-m0plus')} |",
        f"| RISC-V rv32imac (portable C, QEMU `virt`) | {cell('int16x8', 'riscv32')} | {cell('int8', 'riscv32')} |",
        ram_line(res, r16, r8),
        f"| flash (text + rodata, M4) vs `.tflite` | {n(r16['c_flash'])} B vs {n(r16['tflite'])} B | "
        f"{n(r8['c_flash'])} B vs {n(r8['tflite'])} B |",
        f"| host (x86-64, gcc -O2): one step | {c16['t']['median_s'] * 1e6:.2f} µs | {c8['t']['median_s'] * 1e6:.2f} µs |",
        f"| host: LiteRT `invoke()` alone (default resolver, 1 thread) / the C step | {inv['int16x8']:.1f}× | "
        f"{inv['int8']:.1f}× |",
        f"| host: LiteRT stepped from a Python loop (tensor copies included) / the C step | {loop['int16x8']:.1f}× | "
        f"{loop['int8']:.1f}× |",
        "",
    ])


def trained_row(res) -> list[str]:
    """The M4 figure of the default spec trained on the bundled speech (table 13), when measured: its
    trained scales pick the kernels, the random weights of the row above do not."""
    models = res["tables"].get("13", {}).get("models", {})
    got = {p: next((m for k, m in models.items() if "trained" in k and k.endswith(p)), None) for p in ("int16x8", "int8")}
    if None in got.values():
        return []
    a, b = got["int16x8"], got["int8"]
    return [f"| the same spec trained on the bundled speech, Cortex-M4 DSP path (table 13) | {n(a['per_sample'])} "
            f"({a['per_mac']:.2f}/MAC) | {n(b['per_sample'])} ({b['per_mac']:.2f}/MAC) |"]


def bundled(res) -> str:
    tr = res["tables"]["6"]["train"]
    rec = res["recording"]
    return (f"The default spec trains on it ({n(rec['samples'])} samples at {rec['sample_rate']} Hz) in "
            f"{tr['training']['seconds']:.0f} s on {res['machine']['cores']} cores (`make bench`, seed "
            f"{tr['training']['seed']}, early stopping after {tr['training']['epochs_run']} of "
            f"{tr['training']['epochs']} epochs) to {tr['prediction_gain_db']:.2f} dB held-out prediction gain; "
            f"LPC-32 on the same split reaches {tr['lpc32_gain_db']:.2f} dB.\n")


def real_speech(res) -> str:
    rows = res["tables"]["7"]["rows"]
    lines = ["| recording | held-out gain | LPC-32 | margin | int16x8 / int8 loss | training |", "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name}, {r['seconds']:.0f} s at {r['sample_rate'] // 1000} kHz | {r['gain_db']:.2f} dB | "
                     f"{r['lpc32_db']:.2f} dB | {r['margin_db']:+.2f} dB | {r['int16x8_loss_db']:.2f} / "
                     f"{r['int8_loss_db']:.2f} dB | {r['train_wall_seconds']:.0f} s |")
    return "\n".join(lines + [""])


def concealment(res) -> str:
    lines = ["| recording (held-out) | loss | edgewave PESQ / STOI | G.711 App. I | previous frame | zero fill | "
             "M4 instructions per concealed sample |", "|---|---|---|---|---|---|---|"]
    for r in res["tables"]["8"]["rows"]:
        b = r["baselines"]

        def ps(s):
            return f"{s['pesq']:.2f} / {s['stoi']:.3f}"

        m4 = r["m4_instructions_per_concealed_sample"]
        lines.append(f"| {r['recording']} | {r['loss']} | **{ps(r['edgewave'])}** | {ps(b['g711'])} | "
                     f"{ps(b['repeat'])} | {ps(b['zero'])} | {n(m4) if m4 else '–'} |")
    return "\n".join(lines + [""])


def anomaly(res) -> str:
    t = res["tables"]["9"]
    lines = ["| detector | AUC | mean detection delay | missed events | false alarms per hour |", "|---|---|---|---|---|"]
    for name, d in t["detectors"].items():
        lines.append(f"| {name} | {d['auc']:.3f} | {d['detection_delay_ms']:.0f} ms | {d['missed_events']} of "
                     f"{t['events']} | {d['false_alarms_per_hour']:.1f} |")
    lines += ["", f"Real PPG ({t['recording']}, {t['rate_hz']:.0f} Hz), {t['events']} injected events "
                  f"({', '.join(t['kinds'])}); the emitted C scored the same as the engine"
                  + (f", {n(t['m4_instructions_per_sample'])} instructions per sample on Cortex-M4 with the score."
                     if t["m4_instructions_per_sample"] else "."), ""]
    return "\n".join(lines)


def not_measured(res, table: str) -> str | None:
    """The section's text when results.json has no figures for `table` (not run, or skipped and why)."""
    t = res["tables"].get(table)
    if t is not None and "skipped" not in t:
        return None
    why = t["skipped"] if t else f"its table {table} was not run"
    return f"Not measured by the `make bench` run that wrote `benchmarks/results.json`: {why}.\n"


def tflm_m4(res) -> str:
    if missing := not_measured(res, "10"):
        return missing
    t = res["tables"]["10"]
    names = {"edgewave": "edgewave C", "cmsis_nn": "TFLM + CMSIS-NN", "reference": "TFLM reference kernels"}
    lines = ["| model | runtime | instructions per sample (TFLM: `invoke()` alone) | RAM | flash |",
             "|---|---|---|---|---|"]
    for r in t["models"]:
        ew = r["rows"][0]
        for x in r["rows"]:
            first = x is ew
            ins = f"**{n(x['instructions_per_sample'])}**" if first else (
                f"{n(x['instructions_per_sample'])} ({x['instructions_per_sample'] / ew['instructions_per_sample']:.1f}×; "
                f"{n(x['invoke_per_sample'])})")
            ram = f"{n(x['ram'])} B" if first else f"{n(x['ram'])} B ({x['ram'] / ew['ram']:.1f}×)"
            flash = f"{n(x['flash'])} B" if first else f"{n(x['flash'])} B ({x['flash'] / ew['flash']:.1f}×)"
            lines.append(f"| {r['model'] + ' ' + r['precision'] if first else ''} | {names[x['runtime']]} | {ins} | "
                         f"{ram} | {flash} |")
    samples = t["models"][0]["rows"][0]["samples"]
    lsb = max(x["max_lsb"] for r in t["models"] for x in r["rows"])
    arenas = ", ".join(f"{r['model']} {r['precision']} {n(r['smallest_arenas']['cmsis_nn'])} / "
                       f"{n(r['smallest_arenas']['reference'])} B" for r in t["models"])
    lines += ["", f"{n(samples)} samples of the bundled speech on every runtime, every output equal to the numpy "
                  f"engine (max {lsb:g} LSB). Smallest arena `AllocateTensors` accepts on the M4, CMSIS-NN / "
                  f"reference: {arenas}.", ""]
    return "\n".join(lines)


def cost_model(res) -> str:
    if missing := not_measured(res, "11"):
        return missing
    t = res["tables"]["11"]
    lines = ["| core | held-out error, int16x8 (median / max) | int8 (median / max) |", "|---|---|---|"]
    for core, by in t["summary"].items():
        cells = [f"{by[p]['held_out_median_abs_error_pct']:.1f} % / {by[p]['held_out_max_error_pct']:.1f} %"
                 for p in ("int16x8", "int8")]
        lines.append(f"| {core} | {cells[0]} | {cells[1]} |")
    med = t["m4_random_median_instructions_per_mac"]
    lines += ["", f"Fitted on {len(t['fit_set'])} models, checked on {len(t['test_set'])} random architectures it "
                  f"never saw ({res.get('later_runs', {}).get('11', {}).get('date', res['date'])[:10]}). On those "
                  f"random architectures the Cortex-M4 DSP path takes a median of {med['int16x8']:.2f} (int16x8) and "
                  f"{med['int8']:.2f} (int8) instructions per MAC.", ""]
    return "\n".join(lines)


def train_throughput(res) -> str:
    if missing := not_measured(res, "12"):
        return missing
    t = res["tables"]["12"]
    rows = "\n".join(f"| {r['config']} | {r['batch']} ({r['batch_per_replica']:g} per replica) | "
                     f"{n(r['samples_per_second'])} |" for r in t["rows"])
    return (f"| configuration | batch | training samples/s |\n|---|---|---|\n{rows}\n\n"
            f"Measured by `make bench` (table 12) on the bundled recording. {t['payoff']}\n")


RENDER = {"headline": headline, "cost-model": cost_model, "train-throughput": train_throughput, "precision": precision, "speed": speed, "bundled": bundled,
          "real-speech": real_speech, "concealment": concealment, "anomaly": anomaly, "tflm-m4": tflm_m4}


def render(text: str, res: dict) -> str:
    def one(mt):
        name = mt.group("name")
        if name not in RENDER:
            raise KeyError(f"README section {name!r} has no renderer in benchmarks/readme.py")
        return mt.group(1) + RENDER[name](res) + mt.group(4)

    return SECTION.sub(one, text)


def sections(text: str) -> list[str]:
    return [m.group("name") for m in SECTION.finditer(text)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only check; exit 1 if README.md is stale")
    args = ap.parse_args(argv)
    res = json.loads(RESULTS.read_text())
    old = README.read_text()
    new = render(old, res)
    if args.check:
        if new != old:
            print("README.md is stale: run python benchmarks/readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    print(f"README.md: {len(sections(new))} sections from {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
