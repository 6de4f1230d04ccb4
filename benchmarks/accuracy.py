"""Table 6 of `make bench`: held-out prediction gain on the bundled recording of the default spec,
trained once, in float, int16x8 and int8 (numpy engine = TFLite Micro = generated C), against LPC-32.
"""

from __future__ import annotations

import json
import sys
import time

from harness import SEED, SPEECH_REL, Table, log, md_table, require_equal, run
from workspace import Workspace

TITLE = "Accuracy on the bundled recording"


def table6(ws: Workspace) -> dict:
    """Accuracy on the bundled recording: float vs int16x8 vs int8 vs LPC-32 (trained once)."""
    from edgewave import ctools
    from edgewave.convert import pipeline
    from edgewave.metrics import prediction_gain_db
    from edgewave.train import to_value

    s = ws.s
    ew = [sys.executable, "-m", "edgewave.cli"]
    model_dir = ws.work / "trained"
    t0 = time.monotonic()
    limit = ("--max-minutes", s.train_minutes) if s.train_minutes else ()
    log("table 6: training the default spec" + (f" (at most {s.train_minutes:g} min)" if limit else ""))
    trained = json.loads(run([*ew, "train", "--data", ws.speech, "--out", model_dir, "--json", "--seed", SEED,
                              *limit, *s.train_args], "edgewave train", stderr_to_console=True))
    train_s = time.monotonic() - t0
    rows = {"train": trained, "train_wall_seconds": train_s, "convert": {}, "c_gain_db": {}}
    for precision in ("int16x8", "int8"):
        out = ws.work / f"converted-{precision}"
        log(f"table 6: edgewave convert --precision {precision}")
        rep = json.loads(run([*ew, "convert", model_dir, "--data", ws.speech, "--precision", precision, "--out", out,
                              "--json"], f"edgewave convert --precision {precision}", stderr_to_console=False))
        rows["convert"][precision] = rep
        # The generated C on the host over the whole held-out test split: its gain must be the engine's.
        from edgewave.emit import pipeline as emit_pipeline
        manifest, prog, stream = pipeline.load(out)
        files, _ = emit_pipeline.render(manifest, prog, stream, "model")
        c_dir = ws.work / "c" / f"trained_{precision}"
        for rel, text in files.items():
            (c_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (c_dir / rel).write_text(text)
        srcs, incs = emit_pipeline.c_sources(c_dir, "model")
        exe = ctools.build_host(srcs, incs, ws.work / "host" / f"trained_{precision}")
        graph, _, _, x = pipeline.load_input(str(model_dir), str(ws.speech), None)
        from edgewave import signals
        test = x[signals.split_by_time(len(x))[2]]
        codes = pipeline.quantize_input(prog, test)
        y = ctools.run_host(exe, codes, out_dtype=prog.dtype)
        from edgewave.engine import Engine
        require_equal(y, Engine(prog).run_sequence(codes), f"trained {precision} generated C on the test split")
        rf = graph.receptive_field
        pred = to_value(graph, pipeline.dequantize_output(prog, y))
        rows["c_gain_db"][precision] = round(prediction_gain_db(test[rf:], pred[rf - 1:-1]), 3)
        if precision == "int16x8":
            rows["previous_sample_gain_db"] = round(prediction_gain_db(test[rf:], test[rf - 1:-1]), 3)
            rows["test_samples"] = int(len(test) - rf)
    return rows


def md_table6(t) -> str:
    tr, cv = t["train"], t["convert"]
    f_keras = tr["prediction_gain_db"]
    f_eng = cv["int16x8"]["float_gain_db"]
    rows = [["float32, Keras (`edgewave train`)", f"{f_keras:.2f}", f"{f_keras - f_eng:+.2f}",
             "`train --json`: prediction_gain_db"],
            ["float32, numpy engine (streaming program)", f"{f_eng:.2f}", "0 (reference)",
             "`convert --json`: float_gain_db"]]
    for p in ("int16x8", "int8"):
        rows.append([f"{p}, numpy engine = TFLite Micro = generated C", f"**{cv[p]['quant_gain_db']:.2f}**",
                     f"{cv[p]['quant_gain_db'] - f_eng:+.2f}",
                     f"`convert --json`: quant_gain_db; generated C on the host: {t['c_gain_db'][p]:.2f} dB; "
                     f"engine vs TFLM max {cv[p]['engine_vs_tflm_max_lsb']:g} LSB, LiteRT(ref) vs TFLM max "
                     f"{cv[p]['litert_ref_vs_tflm_max_lsb']:g} LSB on {cv[p]['litert_ref_vs_tflm_differing']:,} of "
                     f"{cv[p]['checked_samples']:,} outputs"])
    rows.append(["LPC-32 (least squares on the training split)", f"{tr['lpc32_gain_db']:.2f}",
                 f"{tr['lpc32_gain_db'] - f_eng:+.2f}", "`train --json`: lpc32_gain_db"])
    rows.append(["previous sample (x̂[t] = x[t−1])", f"{t['previous_sample_gain_db']:.2f}",
                 f"{t['previous_sample_gain_db'] - f_eng:+.2f}", "computed by run.py on the same samples"])
    return md_table(["predictor", "held-out prediction gain dB", "dB vs float program", "source"], rows)


def section(t, res) -> list[str]:
    tr = t["train"]["training"] or {}
    return [
        f"The default spec trained once on `{SPEECH_REL}` (seed {SEED}, "
        f"{tr.get('epochs_run', '?')} epochs in {tr.get('seconds', 0):.0f} s of training, "
        f"{t['train_wall_seconds']:.0f} s wall including TensorFlow start-up and scoring), then converted to "
        "int16x8 and int8. Prediction gain = 10·log10(var(x) / var(x − x̂)) on the held-out test split "
        f"(last 10 %, {t['test_samples']:,} samples after the first receptive field). The int rows come "
        "from the numpy integer engine, which equals TFLite Micro bit for bit (checked by `convert`) and "
        "the generated C (its output on the whole test split was checked here).", "",
        md_table6(t), "",
        "Reproduce:", "", "```sh",
        f"edgewave train --data {SPEECH_REL} --out model --seed {SEED} --json"
        + (f" --max-minutes {res['settings']['train_minutes']:g}" if res['settings']['train_minutes'] else ""),
        f"edgewave convert model --data {SPEECH_REL} --precision int16x8 --out int16x8 --json",
        f"edgewave convert model --data {SPEECH_REL} --precision int8 --out int8 --json",
        "```", "",
        "Training is deterministic for a seed: this is the model `make demo` trains."
        if not res['settings']['train_minutes'] else
        "`--max-minutes` stops training early (a quick run): the numbers are not the default model's.", ""]


TABLE = Table(TITLE, table6, section)
