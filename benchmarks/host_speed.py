"""Table 3 of `make bench`: per-sample time of the streaming model on the host: the generated C vs
LiteRT (default and reference resolvers), TFLite Micro's Python wheel and the numpy engine.
"""

from __future__ import annotations

import os
import time

from harness import PY, SPEECH_REL, Table, log, max_lsb, md_table, median, require_equal, time_repeats, times, us
from workspace import Workspace, litert_default_stream, litert_ref_stream, tflm_stream

TITLE = "Per-sample time: generated C vs LiteRT, TFLite Micro and the numpy engine"


def table3(ws: Workspace) -> dict:
    """Per-sample time of the streaming model: generated C vs LiteRT, TFLM and the numpy engine."""
    from edgewave.engine import Engine
    s = ws.s
    rows, c_time = [], {}
    load = [os.getloadavg()[0]]
    for precision in ("int16x8", "int8"):
        m = ws.model("default", precision)
        log(f"table 3: {m.label}")
        n = s.c_stream_samples
        want = m.want(n)
        tc, y = ws.c_host(m, m.codes(n), s.c_repeats)
        require_equal(y, want, f"{m.label} host C")
        rows.append({"precision": precision, "backend": "generated C (gcc -O2), `model_step_q`", "t": tc, "lsb": 0})
        c_time[precision] = tc["median_s"]
        ns = s.py_stream_samples
        codes = m.codes(n)[:ns]
        for label, make in (("LiteRT, default resolver (1 thread), Python loop", litert_default_stream),
                            ("LiteRT, BUILTIN_REF resolver, Python loop", litert_ref_stream),
                            ("TFLite Micro (tflite-micro wheel), Python loop", tflm_stream)):
            runner = make(m.prog, m.stream)
            out = {"invoke": []}
            plain_invoke = runner.invoke

            def timed_invoke():  # how much of a step is the interpreter itself, not the Python around it
                c0 = time.thread_time()
                plain_invoke()
                out["acc"] += time.thread_time() - c0

            runner.invoke = timed_invoke

            def stream_it():
                out["acc"] = 0.0
                out["y"] = runner.run(codes)
                out["invoke"].append(out["acc"] / ns)

            t = time_repeats(stream_it, s.py_repeats, ns)
            rows.append({"precision": precision, "backend": label, "t": t, "lsb": max_lsb(out["y"], want[:ns]),
                         "invoke_s": median(out["invoke"][1:] or out["invoke"])})
        eng = Engine(m.prog)
        ne = s.engine_stream_samples
        out = {}

        def stream_engine():
            eng.reset()
            out["y"] = eng.stream(codes[:ne])

        t = time_repeats(stream_engine, s.engine_repeats, ne)
        require_equal(out["y"], want[:ne], f"{m.label} numpy engine")
        rows.append({"precision": precision, "backend": "numpy integer engine, `Engine.step`", "t": t, "lsb": 0})

        def run_engine():
            eng.reset()
            out["y"] = eng.run(all_codes)

        all_codes = m.codes(n)
        t = time_repeats(run_engine, s.engine_repeats, n)
        require_equal(out["y"], want, f"{m.label} numpy engine, whole sequence")
        rows.append({"precision": precision, "backend": "numpy integer engine, whole sequence `Engine.run`", "t": t,
                     "lsb": 0, "samples_per_s": 1 / t["median_s"]})  # t is per sample
        for r in rows:
            if r["precision"] == precision:
                r["vs_c"] = r["t"]["median_s"] / tc["median_s"]
    load.append(os.getloadavg()[0])
    speedup = {p: next(r["vs_c"] for r in rows if r["precision"] == p and r["backend"].startswith("LiteRT, default"))
               for p in ("int16x8", "int8")}
    speedup_ref = {p: next(r["vs_c"] for r in rows if r["precision"] == p and "BUILTIN_REF" in r["backend"])
                   for p in ("int16x8", "int8")}
    speedup_tflm = {p: next(r["vs_c"] for r in rows if r["precision"] == p and r["backend"].startswith("TFLite"))
                    for p in ("int16x8", "int8")}
    invoke_only = {p: next(r["invoke_s"] for r in rows if r["precision"] == p
                           and r["backend"].startswith("LiteRT, default")) / c_time[p] for p in ("int16x8", "int8")}
    return {"rows": rows, "c_vs_litert_speedup": speedup["int16x8"], "c_vs_litert_speedup_by_precision": speedup,
            "c_vs_litert_invoke_only_speedup": invoke_only,
            "c_vs_litert_ref_speedup": speedup_ref, "c_vs_tflm_speedup": speedup_tflm, "load_average_1min": load}


def md_table3(t) -> str:
    rows = [[r["precision"], r["backend"], us(r["t"]["median_s"]),
             f"{us(r['t']['min_s'])}–{us(r['t']['max_s'])}", us(r["invoke_s"]) if "invoke_s" in r else "–",
             f"{r['t']['items']:,} × {r['t']['repeats']}",
             "1× (reference)" if r["vs_c"] == 1 else f"**{times(r['vs_c'])}** slower", r["lsb"]]
            for r in t["rows"]]
    return md_table(["precision", "backend", "µs/sample (median CPU time)", "min–max", "of which `invoke()`",
                     "samples × repeats",
                     "vs generated C", "max LSB vs engine"], rows)


def section(t, res) -> list[str]:
    return [
        "The `default` model's streaming form, one sample at a time, as a user would call each runtime: the "
        "generated C's `model_step_q` (timed inside the C harness); LiteRT and TFLite Micro invoking "
        "`model_stream.tflite` from a Python loop that keeps the ring buffers (`edgewave.runners`, what "
        "`edgewave simulate` runs); the numpy engine's `Engine.step`. For the interpreters, the time inside "
        "`invoke()` alone is shown too: the rest of their step is Python feeding the tap tensors and reading "
        "the new ring values, which a C++ application would do faster. The last column checks the outputs "
        "(edgewave picks scales on which LiteRT's reference kernels and TFLM compute the same integers; "
        "LiteRT's default kernels may still round differently).", "",
        md_table3(t), "",
        f"Reproduce: `{PY} --tables 3`; or `edgewave simulate OUT_DIR --data {SPEECH_REL} "
        "--backend litert|tflm|c|int` on a converted model.", ""]


TABLE = Table(TITLE, table3, section)
