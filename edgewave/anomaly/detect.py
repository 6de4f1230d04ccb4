"""`edgewave anomaly`: score a recording by how far the model's prediction error strays from normal.

The error signal is the model's one-step prediction error; on integer backends it is
taken in input codes, x[t] minus the prediction of x[t] fed back as an input code
(`edgewave.plc.model.Rule.feed`), so its windowed sum of squares is an integer the
device computes exactly (`NAME_score_step`). Calibration (level and threshold) comes
from normal data: `--calibrate FILE`, or else the first part of --data, assumed
normal. The classic alternatives are scored with the same smoothing and calibration:
LPC-32 fitted on the same normal data, and a moving z-score of the signal.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..convert import pipeline as convert_pipeline
from ..errors import UserError
from ..plc.model import Rule
from ..runners import EngineRunner
from ..simulate import QEMU_TARGETS, Converted, Result, built_c, load_data, predictions
from . import baselines, evaluate, inject
from . import score as S

BACKENDS = ("float", "int", "c", *QEMU_TARGETS)
CALIBRATION_SHARE = 0.2  # of --data, when no --calibrate file is given
MAX_WINDOW = 32768  # samples; the example runners' ring (firmware/examples/ew_score.h)
ZSCORE_WINDOWS = 4  # the z-score's statistics span this many smoothing windows


def window_sums(err: np.ndarray, window: int) -> np.ndarray:
    """Σ err² over the last `window` samples (fewer at the start), exactly, for integer errors."""
    sq = np.asarray(err, np.int64) ** 2
    cs = np.cumsum(sq)
    out = cs.copy()
    out[window:] -= cs[:-window]
    return out


def integer_errors(prog, codes: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """x[t] - (the prediction of x[t] as an input code); before the first step the prediction is
    the input code of silence."""
    rule = Rule(prog)
    fed = np.concatenate([[rule.silence], rule.feed(raw[:-1])]).astype(np.int64)
    return codes.astype(np.int64) - fed


def model_energy(conv: Converted, backend: str, x: np.ndarray, window: int) -> tuple[np.ndarray, dict]:
    """Smoothed squared prediction error of the model on x (normalised), and the backend's figures."""
    if backend == "float":
        runner = EngineRunner(conv.float_program())  # loading the Keras model is not scoring
        t0 = time.perf_counter()
        pred = predictions(conv, Result("float", runner.run(x.astype(np.float32)), 0.0))
        err = x - np.concatenate([[0.0], pred[:-1]])
        energy = S.smoothed_energy(err, window)
        return energy, {"us_per_sample": round(1e6 * (time.perf_counter() - t0) / max(len(x), 1), 3)}
    prog = conv.prog
    if not prog.quantized:
        raise UserError(f"--backend {backend} runs the integer model but {conv.path} was converted with "
                        "--precision float32; use --backend float, or convert with --precision int16x8 or int8")
    codes = convert_pipeline.quantize_input(prog, x)
    t0 = time.perf_counter()
    extra = {}
    if backend == "int":
        sums = window_sums(integer_errors(prog, codes, EngineRunner(prog).run(codes)), window)
        extra["us_per_sample"] = round(1e6 * (time.perf_counter() - t0) / max(len(x), 1), 3)
    else:
        sums, extra = run_c(backend, conv, codes, window)
    counts = np.minimum(np.arange(1, len(x) + 1), window)
    return sums / counts, {**extra, "window_sums": sums}


def run_c(backend: str, conv: Converted, codes: np.ndarray, window: int) -> tuple[np.ndarray, dict]:
    """The emitted C's integer score (NAME_score_step) on the host or a QEMU board: its window sums."""
    from .. import ctools

    with built_c(backend, conv) as (binary, _):
        if backend == "c":
            timing = {}
            sums = ctools.score_host(binary, codes, window, timing)
            return sums, {"us_per_sample": round(1e6 * timing["step_seconds"] / max(len(codes), 1), 3)}
        sums, stats = ctools.score_qemu(QEMU_TARGETS[backend], binary, codes, window)
    return sums, {"instructions_per_sample": round(stats["instructions"] / max(stats["samples"], 1), 1)}


def _calibration_data(conv: Converted, data: str, calibrate_path, channel, x: np.ndarray, labels):
    if calibrate_path:
        return load_data(conv, calibrate_path, channel), f"{calibrate_path} (given as normal)", 0
    n = int(CALIBRATION_SHARE * len(x))
    if labels is not None and labels[:n].any():
        raise UserError(f"the first {100 * CALIBRATION_SHARE:.0f} % of {data}, used as normal calibration data, "
                        "holds labelled anomalies; give a normal recording with --calibrate FILE")
    return x[:n], f"the first {100 * CALIBRATION_SHARE:.0f} % of {data} ({n} samples), assumed normal", n


def _detector(energy_normal, energy, window, rate, false_alarm_rate, source, skip, labels) -> dict:
    cal = S.calibrate_energy(energy_normal, window, false_alarm_rate, source)
    score = S.normalised(energy, cal.level)
    out = {"score": score, "calibration": cal}
    if labels is not None:
        out["metrics"] = evaluate.evaluate(score, cal.threshold, labels, rate, skip=skip)
    return out


def detect(out_dir: str, data: str, *, labels_path=None, backend: str = "int", window_ms: float = 500.0,
           false_alarm_rate: float = 0.001, calibrate_path=None, out=None, channel=None) -> dict:
    if backend not in BACKENDS:
        raise UserError(f"anomaly runs on {', '.join(BACKENDS)}, not {backend!r}")
    if out is not None and not str(out).lower().endswith(".csv"):
        raise UserError(f"--out {out} must be a .csv file")
    conv = Converted.load(out_dir)
    rate = conv.manifest.get("sample_rate")
    if not rate:
        raise UserError(f"{out_dir} has no sample rate (trained on .npy/.csv data); anomaly needs it for "
                        "--window-ms: train on a WAV file")
    x = load_data(conv, data, channel).astype(np.float64)
    labels = inject.load_labels(labels_path, len(x)) if labels_path else None
    window = int(round(window_ms * rate / 1000))
    if not 1 <= window <= MAX_WINDOW:
        raise UserError(f"--window-ms {window_ms} is {window} samples at {rate} Hz; use 1 to {MAX_WINDOW} samples")
    S._check_rate(false_alarm_rate)
    normal, source, offset = _calibration_data(conv, data, calibrate_path, channel, x, labels)
    rf = conv.manifest["receptive_field"]
    if len(normal) < rf + window:
        raise UserError(f"the calibration data ({source}) is shorter than the receptive field plus the "
                        f"window ({rf + window} samples); give more normal data with --calibrate")
    skip = rf + window  # no full context and no full window before this
    scored = max(skip, offset)  # what calibrated the detectors is not scored against them

    def energies(error_energy):
        """(on the normal data, on --data) for one detector's smoothed error energy function."""
        on_x = error_energy(x)
        return (on_x[skip:offset] if offset else error_energy(normal)[skip:]), on_x

    coeffs = baselines.fit_lpc(normal, 32)
    zw = max(2, ZSCORE_WINDOWS * window)
    extra = {}

    def model(v):
        energy, figures = model_energy(conv, backend, v, window)
        if v is x:
            extra.update(figures)
        return energy

    detectors = {
        "edgewave": energies(model),
        "lpc32": energies(lambda v: S.smoothed_energy(baselines.lpc_residual(v, coeffs), window)),
        "zscore": energies(lambda v: S.smoothed_energy(baselines.moving_zscore(v, zw), window)),
    }
    results = {name: _detector(en, e, window, rate, false_alarm_rate, source, scored, labels)
               for name, (en, e) in detectors.items()}
    report = {"backend": backend, "samples": int(len(x)), "sample_rate": int(rate), "window_samples": window,
              "false_alarm_rate": false_alarm_rate, "calibration": source, "scored_from_sample": scored}
    main = results["edgewave"]
    cal = main["calibration"]
    low, high = cal.energy_bounds()
    report.update({"threshold": round(cal.threshold, 6), "level": cal.level,
                   "alarm_if_energy_below": low, "alarm_if_energy_above": high,
                   "alarms": int(np.sum(main["score"][scored:] > cal.threshold))})
    if "window_sums" in extra:  # the device compares its integer window sum with these
        report["device_alarm_if_window_sum_below"] = int(np.floor(low * window))
        report["device_alarm_if_window_sum_above"] = int(np.ceil(high * window))
    if labels is not None:
        report.update(_metrics(main["metrics"]))
        report["baselines"] = {name: _metrics(results[name]["metrics"]) for name in ("lpc32", "zscore")}
    report.update({k: v for k, v in extra.items() if k != "window_sums"})
    if out:
        _write_csv(out, x, main["score"], main["score"] > cal.threshold, skip, labels)
        report["out"] = str(out)
    return report


def _metrics(m: dict) -> dict:
    return {"auc": round(m["auc"], 4), "detection_delay_ms": m["detection_delay_ms"],
            "missed_events": m["delays"]["missed"], "events": m["delays"]["events"],
            "false_alarms_per_hour": round(m["false_alarms_per_hour"], 2)}


def _write_csv(path, x, score, flags, skip, labels) -> None:
    out = Path(path)
    tmp = out.with_name(f".{out.name}.tmp")
    flags = flags.copy()
    flags[:skip] = False
    cols = [np.arange(len(x)), x, score, flags.astype(int)] + ([labels] if labels is not None else [])
    header = "index,sample,score,alarm" + (",label" if labels is not None else "")
    try:
        np.savetxt(tmp, np.column_stack(cols), fmt=["%d", "%.6g", "%.6g", "%d"] + (["%d"] if labels is not None else []),
                   delimiter=",", header=header, comments="")
        tmp.replace(out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{out}: cannot write ({e.strerror}); check the directory exists and is writable") from None


def human_report(r: dict) -> str:
    lines = (f"{r['samples']} samples at {r['sample_rate']} Hz, window {r['window_samples']} samples, "
             f"calibrated on {r['calibration']}\n"
             f"threshold {r['threshold']:.4g} for a false-alarm rate of {r['false_alarm_rate']}: "
             f"{r['alarms']} samples in alarm\n")
    if "auc" in r:
        lines += f"  {'':<18} {'AUC':>6} {'delay ms':>9} {'missed':>7} {'false/h':>8}\n"
        for name, m in (("edgewave", r), ("LPC-32", r["baselines"]["lpc32"]), ("z-score", r["baselines"]["zscore"])):
            lines += (f"  {name:<18} {m['auc']:6.3f} {m['detection_delay_ms']:9.1f} "
                      f"{m['missed_events']:>3}/{m['events']:<3} {m['false_alarms_per_hour']:8.1f}\n")
    if "out" in r:
        lines += f"wrote {r['out']}\n"
    return lines
