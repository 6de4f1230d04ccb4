"""Table 12 of `make bench`: training samples per second of `edgewave train` on the bundled French speech,
in one process (one or two logical CPU devices) and as two worker processes over loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from edgewave.cluster import run_local_cluster
from harness import PY, Table, later_note, log, md_table

SPEECH = Path(__file__).resolve().parent.parent / "edgewave" / "data" / "speech8k_fr.wav"
MAX_MINUTES = 0.75  # of training per configuration: the whole table stays under ~3 minutes
CONFIGS = (("1 worker, 1 CPU device", 1, 1), ("1 worker, 2 CPU devices", 1, 2), ("2 workers (loopback)", 2, 1))


def throughput(data: str, *, workers: int = 1, cpu_devices: int = 1, spec_path: str | None = None,
               max_minutes: float = 1.0, seed: int = 0) -> dict:
    """Training samples per second of `edgewave train` (fresh processes, as a user runs it) with
    `workers` loopback workers of `cpu_devices` logical CPUs each, stopped by --max-minutes.

    The batch is the spec's, split over all replicas (workers x cpu_devices): the same samples per
    step in every configuration, so the figures compare directly."""
    with tempfile.TemporaryDirectory(prefix="edgewave-throughput-") as tmp:
        argvs = [["train", "--data", data, "--out", Path(tmp) / f"m{i}", "--json", "--seed", seed,
                  "--max-minutes", max_minutes, "--cpu-devices", cpu_devices, *(["--spec", spec_path] if spec_path else [])]
                 for i in range(workers)]
        timeout = 60 * max_minutes * 3 + 300  # the last epoch overruns the limit, and start-up and scoring add more
        if workers == 1:
            procs = [subprocess.run([sys.executable, "-m", "edgewave.cli", *map(str, argvs[0])], capture_output=True,
                                    text=True, timeout=timeout)]
        else:
            procs = run_local_cluster(argvs, timeout)
    for p in procs:
        if p.returncode != 0:
            raise RuntimeError(f"edgewave train failed: {p.stderr.strip().splitlines()[-1:]}")
    t = json.loads(procs[0].stdout)["training"]  # the chief's figures; every worker ran the same steps
    return {"workers": workers, "cpu_devices": cpu_devices, "replicas": t["replicas"], "batch": t["batch"],
            "batch_per_replica": t["batch"] / t["replicas"], "window": t["window"], "epochs_run": t["epochs_run"],
            "samples_per_second": t["samples_per_second"]}


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def table12(ws) -> dict:
    """Training throughput: one process on one or two logical CPU devices, two workers over loopback. The
    workspace is not needed: each configuration is fresh `edgewave train` processes on the bundled recording."""
    rows = []
    for label, workers, cpu_devices in CONFIGS:
        log(f"table 12: {label}, --max-minutes {MAX_MINUTES:g}")
        r = throughput(str(SPEECH), workers=workers, cpu_devices=cpu_devices, max_minutes=MAX_MINUTES)
        rows.append({"config": label, **r})
    t = {"rows": rows, "train_samples_per_s": {r["config"]: r["samples_per_second"] for r in rows},
         "usable_cores": usable_cores(), "max_minutes": MAX_MINUTES}
    t["payoff"] = payoff(t)  # the README quotes it too
    return t


def payoff(t) -> str:
    """One sentence, from the measured numbers, on when a second worker pays off."""
    rate = t["train_samples_per_s"]
    one = max(rate["1 worker, 1 CPU device"], rate["1 worker, 2 CPU devices"])
    gain = rate["2 workers (loopback)"] / one
    cores = t["usable_cores"]
    here = (f"two workers on this machine ({cores} usable cores) train at {gain:.2f}× the samples/s of the "
            "faster single process")
    if gain < 1.1:
        return (f"One process already keeps all {cores} cores busy (TensorFlow's intra-op threads), so {here}: "
                "a second worker pays off only when it brings cores of its own — another machine, or a host "
                "with more cores than one process can use.")
    return f"{here[0].upper()}{here[1:]}, so here a second worker pays off already on one machine."


def md_table12(t) -> str:
    rows = [[r["config"], r["replicas"], f"{r['batch']} ({r['batch_per_replica']:g} per replica)", f"{r['window']:,}",
             r["epochs_run"], f"{r['samples_per_second']:,}"] for r in t["rows"]]
    return (md_table(["configuration", "replicas", "batch (windows per step)", "window (samples)", "epochs run",
                      "training samples/s"], rows) + "\n\n" + t["payoff"])


def section(t, res) -> list[str]:
    return [*later_note(res, 12),
            f"`edgewave train` on `edgewave/data/speech8k_fr.wav`, default spec, seed 0, `--max-minutes "
            f"{t['max_minutes']:g}` per configuration, fresh processes as a user runs them; the spec's batch is "
            "split over all replicas, so every configuration takes the same samples per step. Samples/s counts "
            "training windows × window length over the time spent in `fit`.", "", md_table12(t), "",
            f"Reproduce: `{PY} --tables 12`; two workers: `edgewave train --help` shows the `TF_CONFIG`.", ""]


TABLE = Table("Training throughput: one process, two CPU devices, two workers over loopback", table12, section)
