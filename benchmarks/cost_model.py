"""Table 11 of `make bench`: the cost model behind `edgewave info MODEL|SPEC --target CORE`, fitted and checked.

The generated C of the default spec, its double-width variant and random architectures (kernel sizes 1–5,
dilations up to 64, 4–48 channels including widths that are not a multiple of 4, gated and plain convs,
residual and skip sums or concatenations, pooling, both heads; at least MIN_MACS MACs per sample) runs on
QEMU for every core and precision, exact instruction counts, outputs checked against the numpy engine
(table 4's Workspace.cortex_m). Per core and precision, edgewave.realtime.fit finds non-negative per-op
costs on the fit set; the test set — random architectures the fit never saw — gives the error the README
and `edgewave info` quote. The result is written to edgewave/data/cortex_m_costs.json.
"""

from __future__ import annotations

import copy
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from harness import PY, ROOT, BenchError, Table, later_note, log, md_table
from workspace import MODEL_SPECS  # table 11 adds its random architectures to the specs the Workspace builds

FIT_RANDOM, TEST_RANDOM = 18, 20
MIN_FIT_MODELS = 6  # the M0+ board's 16 KB of RAM leaves out the larger random models
MIN_MACS = 2000
SEED = 11
# Targets and the kernel path each is measured on (as table 4's rows name them).
PATHS = {"cortex-m0plus": "portable C (ARMv6-M)", "cortex-m4": "DSP (SMLAD)", "cortex-m7": "DSP (SMLAD)",
         "cortex-m33": "DSP (SMLAD)", "riscv32": "portable C (rv32imac)"}

def random_spec(rng: np.random.Generator) -> dict:
    """A WaveNet/TCN-style spec of the kind users bring: a lift, residual blocks (gated or plain convs), skips."""
    width = int(rng.choice([4, 6, 8, 10, 12, 14, 16, 20, 24, 32, 48]))
    kernel = int(rng.integers(1, 6))
    blocks = int(rng.integers(1, 5))
    dilations = [int(min(64, kernel ** i if kernel > 1 else 2 ** i)) for i in range(blocks)]
    gated = bool(rng.integers(0, 2))
    act = str(rng.choice(["relu", "tanh", "sigmoid", "linear"]))
    unit = ({"type": "gated", "filters": width, "kernel": kernel} if gated else
            {"type": "conv", "filters": width, "kernel": kernel, "activation": act, "bias": bool(rng.integers(0, 2))})
    skip = bool(rng.integers(0, 2))
    if skip:
        unit["skip"] = True
    layers = [{"type": "dense", "units": width, "bias": bool(rng.integers(0, 2))},
              {"type": "residual", "dilations": dilations, "layers": [unit, {"type": "dense", "units": width}]}]
    if skip:
        layers.append({"type": "skips", "combine": str(rng.choice(["sum", "concat"]))})
    if rng.random() < 0.3:
        layers.append({"type": "pool", "kind": str(rng.choice(["avg", "max"])), "size": int(rng.integers(2, 5)),
                       "dilation": int(rng.integers(1, 4))})
    layers.append({"type": "dense", "units": int(rng.choice([width, max(4, width // 2), 13])), "activation": "relu"})
    head = "mulaw" if rng.random() < 0.2 else "regression"
    return {"head": head, "mulaw_bits": int(rng.choice([4, 6, 8])), "layers": layers}


def random_specs(n: int, rng: np.random.Generator) -> list[dict]:
    from edgewave import spec as spec_mod
    from edgewave.convert.lowering import runtime_macs

    out = []
    while len(out) < n:
        s = random_spec(rng)
        if runtime_macs(spec_mod.to_graph(spec_mod.parse(s, source="random"))) >= MIN_MACS:
            out.append(s)
    return out


def table11(ws) -> dict:
    from edgewave import realtime
    from edgewave import spec as spec_mod

    rng = np.random.default_rng(SEED)
    randoms = {f"random-{i:02d}": s for i, s in enumerate(random_specs(FIT_RANDOM + TEST_RANDOM, rng))}
    for name, s in randoms.items():
        MODEL_SPECS[name] = (lambda s=s: s, "a random architecture of table 11")
    names = list(randoms)
    fit_set = ["default", "default-2x", *names[:FIT_RANDOM]]
    test_set = names[FIT_RANDOM:]
    jobs = [(name, precision, target) for name in fit_set + test_set for precision in realtime.PRECISIONS
            for target in realtime.TARGETS]
    log(f"table 11: {len(fit_set) + len(test_set)} models × {len(realtime.PRECISIONS)} precisions × "
        f"{len(realtime.TARGETS)} cores = {len(jobs)} QEMU runs")
    t0 = time.monotonic()
    for name, precision, _ in jobs:  # Keras and the quantizer, once per model and precision, in this thread
        ws.model(name, precision).want(ws.s.qemu_samples)
    with ThreadPoolExecutor(max_workers=2) as pool:  # instruction counts do not depend on host load
        results = list(pool.map(lambda j: ws.cortex_m(ws.model(j[0], j[1]), j[2]), jobs))
    measured = {j: r for j, r in zip(jobs, results)}

    per_sample = {f"{n} {p} {t}": (r["per_sample"] if r["fits"] else None) for (n, p, t), r in measured.items()}
    # Kept before fitting: a fit that fails leaves the measurements of many minutes in the work directory.
    (ws.work / "table11_per_sample.json").write_text(json.dumps({"specs": randoms, "per_sample": per_sample}))
    # what was measured, and what `edgewave info SPEC` sees before any training: the spec alone
    counted = {(n, p): realtime.features(ws.model(n, p).prog) for n, p, _ in jobs}
    from_spec = {(n, p): realtime.features(realtime.sizing_program(
        spec_mod.to_graph(spec_mod.parse(copy.deepcopy(MODEL_SPECS[n][0]()), source=n)), p)) for n in test_set
        for p in realtime.PRECISIONS}
    fits, summary = fit_and_check(per_sample, counted, from_spec, fit_set, test_set)
    errors = [s["held_out_max_error_pct"] for by in summary.values() for s in by.values()]

    doc = {"source": "make bench (benchmarks/cost_model.py, table 11): generated C on QEMU, exact instruction "
                     f"counts; fitted on {', '.join(fit_set)}; checked on {', '.join(test_set)}",
           "measured": time.strftime("%Y-%m-%d"), "features": list(realtime.FEATURES), "costs": fits,
           "held_out_max_error_pct": {t: {p: round(summary[t][p]["held_out_max_error_pct"], 2) for p in summary[t]}
                                      for t in summary}}
    path = ROOT / "edgewave" / realtime.COSTS_FILE
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    log(f"table 11: wrote the cost model to {path.relative_to(ROOT)} ({time.monotonic() - t0:.0f} s)")

    per_mac = {p: [measured[(n, p, "cortex-m4")]["per_sample"] / ws.model(n, p).macs for n in names]
               for p in realtime.PRECISIONS}
    m0_per_mac = [measured[(n, p, "cortex-m0plus")]["per_sample"] / ws.model(n, p).macs
                  for n in names for p in realtime.PRECISIONS if measured[(n, p, "cortex-m0plus")]["fits"]]
    return {"fit_set": fit_set, "test_set": test_set, "specs": randoms, "summary": summary, "per_sample": per_sample,
            "cost_model_max_error_pct": max(errors),
            "m4_random_median_instructions_per_mac": {p: statistics.median(v) for p, v in per_mac.items()},
            "m4_random_worst_instructions_per_mac": {p: max(v) for p, v in per_mac.items()},
            "m0plus_random_median_instructions_per_mac": statistics.median(m0_per_mac) if m0_per_mac else None,
            "macs": {n: ws.model(n, "int16x8").macs for n in names}}


def fit_and_check(per_sample: dict, counted: dict, from_spec: dict, fit_set: list[str],
                  test_set: list[str]) -> tuple[dict, dict]:
    """Per core and precision: costs fitted on fit_set, and their errors there and on test_set, counted
    from the measured programs and (``from_spec``) from the test specs alone, as `edgewave info SPEC` does.
    ``per_sample``: "model precision core" -> measured instructions/sample (None: does not fit the board);
    ``counted``, ``from_spec``: (model, precision) -> realtime.features."""
    from edgewave import realtime

    def errors(models, feats, costs, target, precision):
        out = []
        for n in models:
            y = per_sample[f"{n} {precision} {target}"]
            if y is not None:
                guess = realtime.predict(feats[(n, precision)], costs)
                out.append({"model": n, "measured": y, "predicted": guess, "error_pct": 100 * (guess - y) / y})
        return out

    def worst(err):
        return max(abs(e["error_pct"]) for e in err)

    fits, summary = {}, {}
    for target in realtime.TARGETS:
        for precision in realtime.PRECISIONS:
            train = [(counted[(n, precision)], per_sample[f"{n} {precision} {target}"]) for n in fit_set
                     if per_sample[f"{n} {precision} {target}"] is not None]
            if len(train) < MIN_FIT_MODELS:  # fewer rows than features is fine for a non-negative fit
                raise BenchError(f"table 11: only {len(train)} fit models fit {target}")
            costs = realtime.fit(train)
            held_out = errors(test_set, counted, costs, target, precision)
            spec_only = errors(test_set, from_spec, costs, target, precision)
            fits.setdefault(target, {})[precision] = {k: round(v, 4) for k, v in costs.items()}
            summary.setdefault(target, {})[precision] = {
                "held_out": held_out, "held_out_from_spec": spec_only,
                # the larger of the two: what `edgewave info` promises for a spec or a model
                "held_out_max_error_pct": max(worst(held_out), worst(spec_only)),
                "held_out_program_max_error_pct": worst(held_out), "held_out_spec_max_error_pct": worst(spec_only),
                "held_out_median_abs_error_pct": statistics.median(abs(e["error_pct"]) for e in held_out),
                "fit_max_error_pct": worst(errors(fit_set, counted, costs, target, precision)),
                "fit_models": len(train), "held_out_models": len(held_out),
                "left_out_not_fitting": [n for n in fit_set + test_set if per_sample[f"{n} {precision} {target}"] is None]}
    return fits, summary


def md_table11(t) -> str:
    rows = []
    for target, by_prec in t["summary"].items():
        for precision, s in by_prec.items():
            rows.append([target, PATHS[target], precision, f"{s['fit_models']}", f"{s['fit_max_error_pct']:.1f}",
                         f"{s['held_out_models']}", f"{s['held_out_median_abs_error_pct']:.1f}",
                         f"{s['held_out_program_max_error_pct']:.1f}", f"{s['held_out_spec_max_error_pct']:.1f}",
                         ", ".join(s["left_out_not_fitting"]) or "–"])
    table = md_table(["core", "kernel path", "precision", "fit models", "fit max |error| %", "held-out models",
                      "held-out median |error| %", "held-out max |error| %, measured program",
                      "held-out max |error| %, spec alone", "left out (do not fit the board)"],
                     rows)
    dist = md_table(["precision", "median instructions/MAC", "worst instructions/MAC"],
                    [[p, f"{t['m4_random_median_instructions_per_mac'][p]:.2f}",
                      f"{t['m4_random_worst_instructions_per_mac'][p]:.2f}"] for p in t["m4_random_median_instructions_per_mac"]])
    return (f"{table}\n\nCortex-M4 (DSP path) on the {len(t['specs'])} random architectures "
            f"(each at least {MIN_MACS:,} MACs/sample):\n\n{dist}\n")


def section(t, res) -> list[str]:
    return [*later_note(res, 11),
            "`edgewave info MODEL|SPEC --target CORE` predicts instructions per sample as a non-negative cost per "
            "unit of work of the C the emitter generates (input pairs times rows in blocks of 4, FC rows, gated "
            "and residual-fused outputs, gathers, elementwise values, pooling taps, ring pushes, calls, one per "
            "step: `edgewave/realtime.py`), counted from the quantized program (a spec is quantized with fixed "
            f"pseudo-random weights), fitted per core and precision on {len(t['fit_set'])} models "
            f"({', '.join(t['fit_set'][:2])} and random architectures) and checked on "
            f"{len(t['test_set'])} other random architectures, each measured on QEMU (exact counts, outputs "
            "equal to the numpy engine), twice: counted from the program that was measured, and from the spec "
            "alone, as `edgewave info SPEC` counts before training. `edgewave info` quotes the larger. Their "
            "specs are in `results.json`.", "",
            md_table11(t),
            f"Reproduce: `{PY} --tables 11` (writes `edgewave/data/cortex_m_costs.json`).", ""]


TABLE = Table("The cost model of `edgewave info --target`, checked on models it was not fitted on", table11, section)
