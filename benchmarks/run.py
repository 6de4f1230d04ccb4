#!/usr/bin/env python3
"""edgewave benchmarks: `make bench`, or `.venv/bin/python benchmarks/run.py`.

Writes benchmarks/RESULTS.md (for people) and benchmarks/results.json (the same
numbers for machines). Every number is measured in the run that writes the file:

  1. streaming vs recomputing the receptive field for every output (RF 256/1024/4096)
  2. per-sample cost against dilation at fixed depth
  3. generated C on the host vs LiteRT, TFLite Micro and the numpy engine
  4. Cortex-M instruction counts (QEMU, exact) per sample and per MAC
  5. memory: generated C vs TFLite Micro vs the theoretical minimum state
  6. accuracy on the bundled recording: float, int16x8, int8, LPC-32
  7-9. the jobs on real recordings: training on real speech, packet-loss concealment,
     anomaly detection
 10. generated C vs stock TensorFlow Lite Micro (CMSIS-NN and reference kernels) on the
     same emulated Cortex-M4 (skipped without a TFLM tree)
 11. the cost model of `edgewave info --target`, fitted and checked on random architectures
 12. training throughput: one process on one and two CPU devices, two workers
 13. per-call profile of a step on Cortex-M4 (QEMU, exact)

Tables 1-5 use random-weight models (speed and memory do not depend on training);
only table 6 trains (the default spec, about 5 minutes). Timings are medians of
several repeats; instruction counts are exact and repeatable. Benchmarks are not
tests: nothing is asserted about speed, but every output that is timed is checked
against the numpy integer engine, and any failed build, run or check stops the
script with an error (exit status 1).

Each table is a module of its own (TABLES below names them) holding its measurement and its
RESULTS.md section, on the shared harness.py and workspace.py; this script is the command line
and the page around the sections.

  --tables 1,3   run some tables only (printed, and written under --out if given)
  --quick        fewer samples and a very short training: a smoke test of the script
  --keep         keep the work directory (generated C, models, logs)
  --merge        replace only these tables in an earlier full run's results
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402

import accuracy  # noqa: E402
import cortex_m  # noqa: E402
import cost_model  # noqa: E402
import dilation  # noqa: E402
import host_speed  # noqa: E402
import jobs  # noqa: E402
import memory  # noqa: E402
import call_profile  # noqa: E402
import streaming  # noqa: E402
import tflm_m4  # noqa: E402
import train_throughput  # noqa: E402
from harness import (BENCH_DIR, FULL, PY, QUICK, ROOT, SPEECH_SRC, BenchError, fmt, log,  # noqa: E402
                     machine_info, md_table, versions)
from workspace import MODEL_SPECS, Workspace  # noqa: E402

TABLES = {1: streaming.TABLE, 2: dilation.TABLE, 3: host_speed.TABLE, 4: cortex_m.TABLE, 5: memory.TABLE,
          6: accuracy.TABLE, 7: jobs.TABLE7, 8: jobs.TABLE8, 9: jobs.TABLE9, 10: tflm_m4.TABLE,
          11: cost_model.TABLE, 12: train_throughput.TABLE, 13: call_profile.TABLE}

HEADLINE_DEFINITIONS = {
    "stream_vs_recompute_ratio": "table 1, generated C on the host, int16x8: (time to recompute one output from the "
                                 "last RF samples) / (time of one streaming step), keyed by receptive field",
    "dilation_cost_ratio": "table 2: Cortex-M4 instructions per sample (QEMU, exact), int16x8, 6 conv layers x 16 "
                           "channels, dilations 1,4,16,64,256,1024 / dilations all 1",
    "c_vs_litert_speedup": "table 3: default model int16x8, LiteRT (default resolver, 1 thread, Python loop) time "
                           "per sample / generated C (host) time per sample",
    "m4_int8_instructions_per_mac": "table 4: default model int8 on Cortex-M4 (DSP path), instructions per sample / "
                                    "MACs per sample",
    "m4_int16x8_instructions_per_mac": "table 4: default model int16x8 on Cortex-M4 (DSP path), instructions per "
                                       "sample / MACs per sample",
    "m4_default_instructions_per_sample": "table 4: default model, default precision (int16x8), Cortex-M4 (DSP "
                                          "path), mean instructions per sample",
    "rv32_default_instructions_per_sample": "table 4: default model, int16x8, rv32imac (portable C: no DSP "
                                            "instructions) on QEMU virt, exact count from minstret under -icount",
    "ram_vs_tflm": "table 5: default model int16x8, generated C state RAM / (TFLM arena + ring state kept "
                   "outside it)",
    "tflm_cmsis_m4_instructions_per_sample": "table 10: default model int16x8, stock TFLM + CMSIS-NN on Cortex-M4 "
                                             "(QEMU, exact), mean instructions per sample of the whole step (taps "
                                             "in, invoke(), outputs out and rings pushed)",
    "m4_vs_tflm_cmsis_speedup": "table 10: default model int16x8 on Cortex-M4, TFLM + CMSIS-NN instructions per "
                                "sample (whole step) / generated C instructions per sample",
    "tflm_cmsis_m4_ram_bytes": "table 10: default model int16x8, TFLM + CMSIS-NN on Cortex-M4: smallest arena "
                               "AllocateTensors accepts (linked) + sizeof(model_tflm) (interpreter, resolver, rings) "
                               "+ .data/.bss of the TFLM library members and glue linked",
    "ram_vs_tflm_m4": "table 10: default model int16x8, generated C state RAM (sizeof(model_state)) / "
                      "tflm_cmsis_m4_ram_bytes",
    "flash_vs_tflm_m4": "table 10: default model int16x8 on Cortex-M4, generated C flash (model objects' text + "
                        "rodata + data) / TFLM + CMSIS-NN flash (the TFLM library members linked + the glue object "
                        "holding the .tflite array)",
    "cost_model_max_error_pct": "table 11: largest |predicted − measured| / measured instructions per sample, in %, "
                                "of edgewave/data/cortex_m_costs.json on the held-out random architectures, over "
                                "every core and precision",
    "train_samples_per_s": "table 12: `edgewave train` training samples per second on the bundled recording, "
                           "default spec, by configuration (one process with one or two CPU devices, two worker "
                           "processes over loopback), the spec's batch split over the replicas",
    "m4_random_median_instructions_per_mac": "table 11: median instructions per MAC of the generated C on Cortex-M4 "
                                             "(DSP path) over the random architectures, by precision",
}


def render_md(res: dict) -> str:
    m, v, t = res["machine"], res["versions"], res["tables"]
    L = ["# edgewave benchmarks", "",
         f"Written by `make bench` (`{PY}`) on {res['date']}; the whole run took "
         f"{res['script_seconds'] / 60:.1f} min. Every number below was measured in that run. "
         "The same numbers with more digits, every repeat and the wall times are in [`results.json`](results.json).", ""]
    L += ["## Machine and versions", "",
          md_table(["", ""], [["CPU", m["cpu"]], ["cores", f"{m['cores']} ({m['usable_cores']} usable)"],
                              ["memory", f"{m['memory_mb']:,} MB" if m["memory_mb"] else "?"], ["OS", m["os"]]]
                   + [[k, f"`{val}`"] for k, val in v.items()]), "",
          f"1-minute load average: {res['load_average_1min']['start']:.1f} at the start, "
          f"{res['load_average_1min']['end']:.1f} at the end "
          f"(on {m['usable_cores']} cores). **Host timings are CPU time** of the measuring thread "
          "(`CLOCK_THREAD_CPUTIME_ID` in the C harness, `time.thread_time()` around Python loops; every backend "
          "timed runs in that one thread), median over repeats after a warm-up: time the code actually ran, so "
          "other load on the machine moves it much less than wall time (which still shifts it through shared caches; "
          "wall-time medians are in `results.json` too). QEMU instruction counts and memory sizes do not depend "
          "on load at all.", ""]
    # MODEL_SPECS as this process left it: after table 11 it lists the random architectures table 11 added.
    L += ["## Models", "",
          "Tables 1–5 use random-weight models (Keras initialisers, random non-zero biases, seed 0) calibrated on the "
          "bundled recording: speed and memory do not depend on training. Only table 6 trains.", "",
          md_table(["name", "what"], [[f"`{k}`", d] for k, (_, d) in MODEL_SPECS.items()]), "",
          f"Recording: `{res['recording']['path']}`, {res['recording']['samples']:,} samples at "
          f"{res['recording']['sample_rate']} Hz, sha256 `{res['recording']['sha256'][:16]}…` (copied once at the "
          "start, so every table uses the same bytes). "
          "Unless a table says otherwise, inputs are consecutive samples of it from the "
          "start of its held-out test split, and every timed or counted output is compared with the numpy integer "
          "engine (the executable spec, bit-exact with TensorFlow Lite Micro).", ""]
    for n, table in TABLES.items():
        if n in t:
            L += [f"## {n}. {table.title}", "", *table.section(t[n], res)]
    L += ["## Headline numbers (`results.json`)", "",
          md_table(["key", "value", "definition"],
                   [[f"`{k}`", ", ".join(f"{kk}: {fmt(vv, 4)}" for kk, vv in res[k].items())
                     if isinstance(res[k], dict) else fmt(res[k], 4),
                     HEADLINE_DEFINITIONS[k]] for k in HEADLINE_DEFINITIONS if k in res]), ""]
    return "\n".join(L)


def merged(path: Path, new: dict, wanted: list[int]) -> dict:
    """The results at `path` with the tables of `new` in place of theirs; the run's date, machine and
    settings stay the full run's, and "later_runs" records when each replaced table was measured."""
    if not path.is_file():
        raise BenchError(f"--merge needs an earlier full run's {path}")
    old = json.loads(path.read_text())
    old["tables"] = {int(k): v for k, v in old["tables"].items()}
    later = old.setdefault("later_runs", {})
    if "table10_run" in old:  # the form one earlier merge wrote
        later["10"] = old.pop("table10_run")
    for n in wanted:
        old["tables"][n] = new["tables"][n]
        later[str(n)] = {"date": new["date"], "why": f"with `--tables {','.join(map(str, wanted))} --merge`"}
    return old


def _json_num(o):
    if isinstance(o, float):
        return round(o, 4)
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o))


def _round_floats(o, digits=6):
    if isinstance(o, float):
        return float(f"{o:.{digits}g}")
    if isinstance(o, dict):
        return {str(k): _round_floats(v, digits) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_round_floats(v, digits) for v in o]
    if isinstance(o, np.generic):
        return _round_floats(o.item(), digits)
    return o


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", default=",".join(map(str, TABLES)), help="comma-separated table numbers (default: all)")
    ap.add_argument("--out", type=Path, help="directory for RESULTS.md and results.json (default: benchmarks/ "
                                             "for a full run; a partial or --quick run only prints unless given)")
    ap.add_argument("--quick", action="store_true", help="fewer samples, one tiny training: a smoke test")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--merge", action="store_true",
                    help="replace only these tables in benchmarks/results.json (or --out's) and keep the others; "
                         "RESULTS.md says which tables were measured later")
    args = ap.parse_args(argv)
    try:
        wanted = sorted({int(x) for x in args.tables.split(",") if x.strip()})
    except ValueError:
        ap.error(f"--tables {args.tables!r}: give numbers 1-{len(TABLES)}, e.g. --tables 1,3")
    if not wanted or any(x not in TABLES for x in wanted):
        ap.error(f"--tables {args.tables!r}: give numbers 1-{len(TABLES)}, e.g. --tables 1,3")
    out_dir = args.out or (BENCH_DIR if (wanted == list(TABLES) or args.merge) and not args.quick else None)

    from edgewave import ctools
    if any(x in wanted for x in (2, 4, 5)) and not ctools.have_cortex_m_tools():
        raise BenchError("tables 2, 4 and 5 need arm-none-eabi-gcc, newlib and qemu-system-arm "
                         f"({ctools.INSTALL_HINT})")

    t_start = time.monotonic()
    settings = QUICK if args.quick else FULL
    work = Path(tempfile.mkdtemp(prefix="edgewave-bench-"))
    res = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine_info(),
           "versions": versions(), "settings": {k: getattr(settings, k) for k in settings.__dataclass_fields__},
           "quick": args.quick, "load_average_1min": {"start": os.getloadavg()[0]}, "tables": {}}
    speech = work / SPEECH_SRC.name  # one copy for the whole run: every table reads the same bytes
    shutil.copyfile(SPEECH_SRC, speech)
    from edgewave import signals
    sig = signals.load_signal(str(speech))
    res["recording"] = {"path": str(SPEECH_SRC.relative_to(ROOT)),
                        "sha256": hashlib.sha256(speech.read_bytes()).hexdigest(),
                        "samples": int(len(sig.samples)), "sample_rate": sig.sample_rate}
    log(f"work directory {work}; tables {wanted}{' (quick)' if args.quick else ''}")
    ws = Workspace(work, settings, speech)
    ok = False
    try:
        for n in wanted:
            t0 = time.monotonic()
            log(f"table {n}: {TABLES[n].title}")
            res["tables"][n] = TABLES[n].measure(ws)
            res["tables"][n]["seconds"] = round(time.monotonic() - t0, 1)
            log(f"table {n} done in {res['tables'][n]['seconds']:.0f} s")
        ok = True
    finally:
        if args.keep or not ok:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    res["load_average_1min"]["end"] = os.getloadavg()[0]
    res["script_seconds"] = round(time.monotonic() - t_start, 1)
    if args.merge:
        res = merged(out_dir / "results.json", res, wanted)
    for n, key in ((1, "stream_vs_recompute_ratio"), (2, "dilation_cost_ratio"), (3, "c_vs_litert_speedup"),
                   (4, "m4_int8_instructions_per_mac"), (4, "m4_int16x8_instructions_per_mac"),
                   (4, "m4_default_instructions_per_sample"),
                   (4, "rv32_default_instructions_per_sample"),
                   (5, "ram_vs_tflm"), (10, "tflm_cmsis_m4_instructions_per_sample"), (10, "m4_vs_tflm_cmsis_speedup"),
                   (10, "tflm_cmsis_m4_ram_bytes"), (10, "ram_vs_tflm_m4"), (10, "flash_vs_tflm_m4"),
                   (11, "cost_model_max_error_pct"), (11, "m4_random_median_instructions_per_mac"),
                   (12, "train_samples_per_s")):
        if n in res["tables"] and key in res["tables"][n]:  # a skipped table has none
            res[key] = res["tables"][n][key]
    res["definitions"] = {k: v for k, v in HEADLINE_DEFINITIONS.items() if k in res}
    md = render_md(res)
    ordered = {k: res[k] for k in ("date", "script_seconds", *HEADLINE_DEFINITIONS, "definitions", "machine",
                                   "versions", "recording", "load_average_1min", "settings", "quick", "later_runs",
                                   "table4_rerun") if k in res}
    ordered["tables"] = {str(k): v for k, v in res["tables"].items()}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "RESULTS.md").write_text(md)
        (out_dir / "results.json").write_text(json.dumps(_round_floats(ordered), indent=1, default=_json_num) + "\n")
        log(f"wrote {out_dir / 'RESULTS.md'} and {out_dir / 'results.json'}")
    else:
        print(md)
    log(f"finished in {(time.monotonic() - t_start) / 60:.1f} min")  # this run's, not the merged file's
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"\nbenchmark FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception:  # noqa: BLE001 - any other failure is a failed measurement too
        traceback.print_exc()
        print("\nbenchmark FAILED (see the traceback above)", file=sys.stderr)
        sys.exit(1)
