"""Tables 7-9 of `make bench`: the jobs on real recordings, through the CLI exactly as a user runs it.

  7. training on real speech: the bundled recording and recordings that are not bundled
  8. packet-loss concealment on held-out real speech, 8 and 16 kHz, against the classic concealers
  9. anomaly detection on a real PPG recording with injected anomalies, against LPC-32 and a z-score

Every model here is trained by `edgewave train` with the default spec and a 5-minute cap,
then converted to int16x8 and int8. Concealment and scoring run on the part of each
recording the model did not train on. Each table's measurement, Markdown table and RESULTS.md
section are here; TABLE7-9 are what run.py runs.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from harness import ROOT, BenchError, Table, log, md_table, run
from harness import SPEECH_SRC as BUNDLED

CACHE = ROOT / "build" / "cache" / "recordings"
EW = [sys.executable, "-m", "edgewave.cli"]
TRAIN_MINUTES = 5.0
HELD_OUT = 0.2  # the validation and test splits: the last 20 % of a recording


def _run(*args, what):
    return json.loads(run([*EW, *map(str, args), "--json"], what, stderr_to_console=False))


def recordings() -> dict:
    """name -> (path, bundled?) for the speech recordings of tables 7 and 8."""
    from recordings import real_recording

    out = {"speech8k_fr (bundled)": (BUNDLED, True)}
    for name in ("speech8k_it", "speech16k_en"):
        log(f"real recording {name} (cached in {CACHE})")
        out[name] = (real_recording(name, CACHE), False)
    return out


def held_out(path: Path, work: Path) -> Path:
    """The last HELD_OUT of a recording as its own WAV (what training never saw)."""
    from edgewave import signals

    sig = signals.load_signal(path)
    tail = sig.samples[int(len(sig.samples) * (1 - HELD_OUT)):]
    out = work / f"{path.stem}_held_out.wav"
    signals.write_wav(out, tail, sig.sample_rate)
    return out


def train_and_convert(path: Path, work: Path, settings) -> dict:
    """`--quick` settings (a smoke test of the script) cap training far below the 5 minutes."""
    model = work / f"{path.stem}-model"
    minutes = settings.train_minutes or TRAIN_MINUTES
    log(f"training the default spec on {path.name} (at most {minutes:g} min)")
    t0 = time.monotonic()
    trained = _run("train", "--data", path, "--out", model, "--seed", 0, "--max-minutes", minutes,
                   *settings.train_args, what=f"edgewave train {path.name}")
    row = {"train": trained, "train_wall_seconds": round(time.monotonic() - t0, 1), "convert": {}, "out": {}}
    for precision in ("int16x8", "int8"):
        out = work / f"{path.stem}-{precision}"
        row["convert"][precision] = _run("convert", model, "--data", path, "--precision", precision, "--out", out,
                                         what=f"edgewave convert {path.name} {precision}")
        row["out"][precision] = str(out)
    return row


def _duration(path: Path) -> float:
    from edgewave import signals

    sig = signals.load_signal(path)
    return len(sig.samples) / sig.sample_rate


def _train_with_peak_rss(args: list) -> tuple[dict, float]:
    """`edgewave train ... --json` and the process's peak resident memory (VmHWM, MB), read from /proc
    while it runs."""
    import subprocess
    import threading

    proc = subprocess.Popen([*EW, *map(str, args), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0.0]

    def watch():
        status = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            try:
                hwm = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM"))
                peak[0] = max(peak[0], int(hwm.split()[1]) / 1024)
            except (OSError, StopIteration, ValueError):
                pass
            time.sleep(0.5)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    out, err = proc.communicate()
    t.join()
    if proc.returncode != 0:
        raise BenchError(f"edgewave train failed: {err.strip().splitlines()[-1] if err.strip() else proc.returncode}")
    return json.loads(out), round(peak[0], 1)


def directory_row(ws) -> dict:
    """`train --data DIR` on a voice's prompts as the package ships them: hundreds of files, streamed."""
    from recordings import prompt_directory

    d = prompt_directory("speech8k_it", CACHE)
    files = sorted(d.glob("*.wav"))
    seconds = sum(_duration(f) for f in files)
    minutes = ws.s.train_minutes or TRAIN_MINUTES
    log(f"table 7: train --data {d} ({len(files)} files, {seconds / 60:.1f} min of audio)")
    t0 = time.monotonic()
    tr, peak = _train_with_peak_rss(["train", "--data", d, "--out", ws.work / "dir-model", "--seed", 0,
                                     "--max-minutes", minutes, *ws.s.train_args])
    return {"path": str(d), "files": len(files), "files_used": tr["training"]["files"], "audio_seconds": seconds,
            "audio_float32_mb": round(seconds * tr["sample_rate"] * 4 / 2 ** 20, 1), "peak_rss_mb": peak,
            "samples_per_second": tr["training"]["samples_per_second"], "gain_db": tr["prediction_gain_db"],
            "lpc32_db": tr["lpc32_gain_db"], "margin_db": round(tr["prediction_gain_db"] - tr["lpc32_gain_db"], 3),
            "train_wall_seconds": round(time.monotonic() - t0, 1), "epochs_run": tr["training"]["epochs_run"]}


def table7(ws) -> dict:
    """Training gain vs LPC-32 on real speech, and what int16x8 and int8 lose."""
    rows = {}
    for name, (path, bundled) in recordings().items():
        r = train_and_convert(path, ws.work, ws.s)
        tr, cv = r["train"], r["convert"]
        rows[name] = {"path": str(path.relative_to(ROOT)) if bundled else str(path), "bundled": bundled,
                      "seconds": round(_duration(path), 1),
                      "sample_rate": tr["sample_rate"], "gain_db": tr["prediction_gain_db"],
                      "lpc32_db": tr["lpc32_gain_db"], "margin_db": round(tr["prediction_gain_db"] - tr["lpc32_gain_db"], 3),
                      "int16x8_loss_db": cv["int16x8"]["gain_loss_db"], "int8_loss_db": cv["int8"]["gain_loss_db"],
                      "max_lsb": max(cv[p]["engine_vs_tflm_max_lsb"] for p in cv),
                      "train_wall_seconds": r["train_wall_seconds"], "epochs_run": tr["training"]["epochs_run"],
                      "out": r["out"], "source": str(path)}
    return {"rows": rows, "directory": directory_row(ws)}


def real_speech(ws) -> dict:
    """Table 7, measured once per run: table 8 conceals with its models, so `--tables 8` trains them too."""
    if "table7" not in ws.shared:
        ws.shared["table7"] = table7(ws)
    return ws.shared["table7"]


def md_table7(t) -> str:
    rows = [[name, f"{r['sample_rate']} Hz", f"{r['gain_db']:.2f}", f"{r['lpc32_db']:.2f}", f"**{r['margin_db']:+.2f}**",
             f"{-r['int16x8_loss_db']:+.2f}", f"{-r['int8_loss_db']:+.2f}", f"{r['max_lsb']:g}",
             f"{r['train_wall_seconds']:.0f} s, {r['epochs_run']} epochs"] for name, r in t["rows"].items()]
    table = md_table(["recording", "rate", "held-out gain dB", "LPC-32 dB", "margin", "int16x8 − float dB",
                      "int8 − float dB", "max LSB engine vs TFLM", "training"], rows)
    d = t["directory"]
    return (table + "\n\n" + f"`train --data DIR` on the {d['files']} prompt files of the Italian voice as Debian ships "
            f"them ({d['audio_seconds'] / 60:.1f} min of audio, {d['audio_float32_mb']:.0f} MB as float32; "
            f"{d['files_used']} long enough to score): {d['samples_per_second']:,} training samples/s, peak resident "
            f"memory {d['peak_rss_mb']:.0f} MB (TensorFlow included), held-out gain {d['gain_db']:.2f} dB vs LPC-32 "
            f"{d['lpc32_db']:.2f} dB ({d['margin_db']:+.2f}) after {d['train_wall_seconds']:.0f} s.")


def section7(t, res) -> list[str]:
    return [f"The default spec, `edgewave train --max-minutes {TRAIN_MINUTES:g} --seed 0` on each whole "
            "recording (split by time 80/10/10; the gain is on the held-out last 10 %), then `convert` to int16x8 "
            "and int8 (their loss is against the float program on the same samples). The non-bundled recordings "
            "are made by `benchmarks/recordings.py` from Debian's Asterisk prompt packages "
            "(see `edgewave/data/README.md`).", "", md_table7(t), ""]


LOSSES = (("10 % random", ()), ("10 % bursty (mean burst 3 frames)", ("--burst", 3)))


def table8(ws) -> dict:
    """PESQ, STOI and SNR over lost frames: edgewave vs G.711 Appendix I, repetition and zero fill."""
    from edgewave import ctools

    rows = []
    for name, r in real_speech(ws)["rows"].items():
        held = held_out(Path(r["source"]), ws.work)
        out = r["out"]["int16x8"]
        for label, extra in LOSSES:
            log(f"table 8: conceal {name}, {label}")
            wavs, reps = {}, {}
            for backend in ("int", "float", "c", "qemu-m4"):
                if backend == "qemu-m4" and not ctools.have_cortex_m_tools():
                    continue
                wav = ws.work / f"conceal-{Path(r['source']).stem}-{len(rows)}-{backend}.wav"
                reps[backend] = _run("conceal", out, "--data", held, "--loss", 0.1, "--frame-ms", 20,
                                     "--seed", 0, "--backend", backend, "--out", wav, *extra,
                                     what=f"edgewave conceal --backend {backend}")
                wavs[backend] = wav.read_bytes()
            for backend in ("c", "qemu-m4"):
                if backend in wavs and wavs[backend] != wavs["int"]:
                    raise BenchError(f"conceal {name} {label}: the {backend} WAV differs from int's")
            m = reps["int"]
            rows.append({"recording": name, "loss": label, "sample_rate": m["sample_rate"], "samples": m["samples"],
                         "lost_frames": len(m["lost_frames"]), "edgewave": {k: m[k] for k in ("pesq", "stoi", "snr_lost_db")},
                         "baselines": m["baselines"], "c_equals_int": True, "qemu_m4_equals_int": "qemu-m4" in wavs,
                         "int_us_per_sample": m["us_per_sample"], "float_us_per_sample": reps["float"]["us_per_sample"],
                         "c_us_per_concealed_sample": reps["c"]["us_per_concealed_sample"],
                         "m4_instructions_per_concealed_sample":
                             reps["qemu-m4"]["instructions_per_concealed_sample"] if "qemu-m4" in reps else None})
    return {"rows": rows}


def md_table8(t) -> str:
    rows = []
    for r in t["rows"]:
        b = r["baselines"]
        cells = [f"{s['pesq']:.2f} / {s['stoi']:.3f} / {s['snr_lost_db']:.1f}"
                 for s in (r["edgewave"], b["g711"], b["repeat"], b["zero"])]
        rows.append([r["recording"], r["loss"], f"{r['lost_frames']}", *cells,
                     f"{r['m4_instructions_per_concealed_sample']:,.0f}" if r["m4_instructions_per_concealed_sample"]
                     else "–"])
    return md_table(["recording (held-out 20 %)", "loss of 20 ms frames", "lost frames",
                     "edgewave PESQ / STOI / SNR lost dB", "G.711 Appendix I", "previous frame", "zero fill",
                     "M4 instructions per concealed sample"], rows)


def section8(t, res) -> list[str]:
    return ["`edgewave conceal` with table 7's int16x8 models on the last 20 % of each recording (never trained "
            "on): 20 ms frames, seed 0, PESQ (P.862: narrowband at 8 kHz, wideband at 16 kHz) / STOI / SNR over "
            "the lost frames, every concealer on the same lost frames, scored on the 16-bit WAV as written. The "
            "`c` and `qemu-m4` backends (the emitted `model_conceal` / `model_resume`) wrote the same bytes as "
            "`int` in every row.", "", md_table8(t), ""]


def ppg(work: Path) -> dict:
    """heartpy's real PPG recording (data3.csv, about 11 minutes at 100 Hz) as WAVs: the first 40 % to train on,
    the next 10 % to calibrate on, and the last 50 % with anomalies of every kind injected, with its labels."""
    from edgewave import signals
    from edgewave.anomaly import inject, realdata

    x, rate = realdata.heartpy_ppg("data3.csv")
    x = x - np.median(x)
    x = 0.5 * x / np.max(np.abs(x))  # headroom for the gain jumps
    n = len(x)
    parts = {"train": x[:int(0.4 * n)], "calibrate": x[int(0.4 * n):int(0.5 * n)]}
    test, labels, segments = inject.inject_segments(x[int(0.5 * n):], rate, seed=0)
    paths = {}
    for name, v in {**parts, "test": test}.items():
        paths[name] = work / f"ppg_{name}.wav"
        signals.write_wav(paths[name], np.clip(v, -1, 1), int(round(rate)))
    paths["labels"] = work / "ppg_labels.txt"
    np.savetxt(paths["labels"], labels, fmt="%d")
    return {"paths": paths, "rate": rate, "segments": segments, "labels": labels}


def table9(ws) -> dict:
    """AUC, detection delay and false alarms of edgewave, LPC-32 and a moving z-score on real PPG."""
    from edgewave import ctools

    data = ppg(ws.work)
    p = data["paths"]
    r = train_and_convert(p["train"], ws.work, ws.s)
    reps = {}
    for backend in ("int", "float", "c", "qemu-m4"):
        if backend == "qemu-m4" and not ctools.have_cortex_m_tools():
            continue
        log(f"table 9: anomaly --backend {backend}")
        reps[backend] = _run("anomaly", r["out"]["int16x8"], "--data", p["test"], "--labels", p["labels"],
                             "--calibrate", p["calibrate"], "--backend", backend, what=f"edgewave anomaly {backend}")
    for backend in ("c", "qemu-m4"):
        if backend in reps and any(reps[backend][k] != reps["int"][k] for k in ("auc", "alarms", "false_alarms_per_hour")):
            raise BenchError(f"anomaly: the {backend} scores differ from int's")
    m = reps["int"]
    return {"recording": "heartpy data3.csv (PPG)", "rate_hz": data["rate"], "train": r["train"],
            "events": m["events"], "kinds": sorted({s.kind for s in data["segments"]}),
            "detectors": {"edgewave": {k: m[k] for k in ("auc", "detection_delay_ms", "missed_events",
                                                          "false_alarms_per_hour")},
                          **m["baselines"]},
            "calibration": m["calibration"], "false_alarm_rate": m["false_alarm_rate"],
            "c_equals_int": "c" in reps, "qemu_m4_equals_int": "qemu-m4" in reps,
            "int_us_per_sample": m["us_per_sample"], "float_us_per_sample": reps["float"]["us_per_sample"],
            "c_us_per_sample": reps["c"]["us_per_sample"],
            "m4_instructions_per_sample": reps["qemu-m4"]["instructions_per_sample"] if "qemu-m4" in reps else None}


def md_table9(t) -> str:
    rows = [[name, f"**{d['auc']:.3f}**" if name == "edgewave" else f"{d['auc']:.3f}", f"{d['detection_delay_ms']:.0f}",
             f"{d['missed_events']} of {t['events']}", f"{d['false_alarms_per_hour']:.1f}"]
            for name, d in t["detectors"].items()]
    return md_table(["detector", "AUC", "mean detection delay ms", "missed events", "false alarms per hour"], rows)


def section9(t, res) -> list[str]:
    return [f"{t['recording']} ({t['rate_hz']:.1f} Hz, real, from the `heartpy` package): the default spec trained "
            "on the first 40 %, calibrated on the next 10 % (false-alarm rate "
            f"{t['false_alarm_rate']}), scored on the last 50 % with {t['events']} injected anomalies "
            f"({', '.join(t['kinds'])}). Baselines use the same smoothing and calibration. `c` and `qemu-m4` "
            "gave the same scores as `int`.", "", md_table9(t), ""]


TABLE7 = Table("Training on real speech", real_speech, section7)
TABLE8 = Table("Packet-loss concealment on held-out real speech", table8, section8)
TABLE9 = Table("Anomaly detection on a real PPG recording", table9, section9)
