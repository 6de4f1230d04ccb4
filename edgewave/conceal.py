"""`edgewave conceal`: lose frames of a recording, conceal them, and score the result.

Everything is compared on the same lost frames in the same run: the model on the
chosen backend, and the classic concealers a telephony engineer would use instead
(zero fill, previous-frame repetition, ITU-T G.711 Appendix I). Every signal is
scored after rounding to 16-bit PCM, as it would be played.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import signals
from .convert import pipeline as convert_pipeline
from .errors import UserError
from .plc import baselines, loss as loss_models, metrics
from .plc import model as plc_model
from .simulate import QEMU_TARGETS, Converted, built_c, load_data

BACKENDS = ("float", "int", "c", *QEMU_TARGETS)
FADE_MS = 4.0  # the cross-fade back into the received signal after a gap


def _pcm(values: np.ndarray) -> np.ndarray:
    """Signal units -> what a 16-bit WAV holds of it, back in signal units."""
    return np.clip(np.round(np.asarray(values, np.float64) * 32768), -32768, 32767) / 32768


def _scores(ref: np.ndarray, out: np.ndarray, mask: np.ndarray, rate: int) -> dict:
    return {"pesq": metrics.pesq_score(ref, out, rate) if rate in (8000, 16000) else None,
            "stoi": round(metrics.stoi_score(ref, out, rate), 4),
            "snr_lost_db": round(metrics.snr_lost_db(ref, out, mask), 3)}


def _to_signal(conv: Converted, prog, played: np.ndarray) -> np.ndarray:
    """Model-domain inputs (codes or normalised floats) -> signal units."""
    if prog.quantized:
        q = prog.tensors[prog.input].q
        played = (played.astype(np.float64) - q.zero_point) * q.scale
    norm = conv.manifest["normalization"]
    return np.asarray(played, np.float64) * norm["scale"] + norm["offset"]


def run_model(conv: Converted, backend: str, x: np.ndarray, lost: np.ndarray, fade: int) -> tuple[np.ndarray, dict]:
    """The played signal (signal units) and the backend's figures."""
    prog = conv.float_program() if backend == "float" else conv.prog
    if backend != "float" and not prog.quantized:
        raise UserError(f"--backend {backend} runs the integer model but {conv.path} was converted with "
                        "--precision float32; use --backend float, or convert with --precision int16x8 or int8")
    inp = convert_pipeline.quantize_input(prog, x) if prog.quantized else x.astype(np.float32)
    extra = {}
    t0 = time.perf_counter()
    if backend in ("float", "int"):
        played = plc_model.conceal(prog, inp, lost, fade)
        seconds = time.perf_counter() - t0
    else:
        played, extra = run_c(backend, conv, inp, lost, fade)
        seconds = extra.pop("run_seconds")
    if backend in ("float", "int"):  # the whole signal; the C backends time the concealed samples alone
        extra["us_per_sample"] = round(1e6 * seconds / max(len(x), 1), 3)
    return _to_signal(conv, prog, played), extra


def run_c(backend: str, conv: Converted, codes: np.ndarray, lost: np.ndarray, fade: int) -> tuple[np.ndarray, dict]:
    """The emitted C conceals (NAME_conceal, NAME_resume) on the host or a QEMU board."""
    from . import ctools

    prog = conv.prog
    codes = np.array(codes)
    codes[:plc_model.leading_silence(lost)] = plc_model.Rule(prog).silence
    script = ctools.plc_script(codes, plc_model.plan(lost, fade), fade)
    with built_c(backend, conv) as (binary, _):
        if backend == "c":
            timing = {}
            played = ctools.conceal_host(binary, script, len(codes), prog.input_dtype, timing)
            return played, {"run_seconds": timing["step_seconds"], "concealed_samples": timing["steps"],
                            "us_per_concealed_sample": round(1e6 * timing["step_seconds"] / max(timing["steps"], 1), 3)}
        t0 = time.perf_counter()
        played, stats = ctools.conceal_qemu(QEMU_TARGETS[backend], binary, script, len(codes), prog.input_dtype)
    return played, {"run_seconds": time.perf_counter() - t0, "concealed_samples": stats["samples"],
                    "instructions_per_concealed_sample": round(stats["instructions"] / max(stats["samples"], 1), 1),
                    "max_instructions_per_concealed_sample": stats["max_step"]}


def conceal(out_dir: str, data: str, *, loss: float, frame_ms: float, burst=None, seed: int = 0, limit=None,
            backend: str = "int", out: str, channel=None, fade_ms: float = FADE_MS) -> dict:
    if backend not in BACKENDS:
        raise UserError(f"conceal runs on {', '.join(BACKENDS)}, not {backend!r}")
    if not str(out).lower().endswith(".wav"):
        raise UserError(f"--out {out} must be a .wav file: the concealed signal is written as 16-bit PCM")
    conv = Converted.load(out_dir)
    rate = conv.manifest.get("sample_rate")
    if not rate:
        raise UserError(f"{out_dir} has no sample rate (trained on .npy/.csv data); conceal needs a model of audio")
    x = load_data(conv, data, channel, limit)
    frame = int(round(frame_ms * rate / 1000))
    if frame < 1:
        raise UserError(f"--frame-ms {frame_ms} is shorter than one sample at {rate} Hz; use e.g. 20")
    if frame > len(x):
        raise UserError(f"--frame-ms {frame_ms} ({frame} samples) is longer than the signal ({len(x)} samples); "
                        "use a shorter frame or more samples")
    fade = max(1, int(round(fade_ms * rate / 1000)))
    if fade > plc_model.MAX_FADE:
        raise UserError(f"--fade-ms {fade_ms} is {fade} samples at {rate} Hz, more than the {plc_model.MAX_FADE} "
                        "the device API supports; use a shorter fade")
    lost_frames = loss_models.lost_frames(loss_models.n_frames(len(x), frame), loss, burst, seed)
    mask = loss_models.frame_mask(lost_frames, frame, len(x))

    norm = conv.manifest["normalization"]
    ref = _pcm(x.astype(np.float64) * norm["scale"] + norm["offset"])
    received = np.where(mask, 0.0, ref)  # what the network delivered: nothing where lost
    model_out, extra = run_model(conv, backend, np.where(mask, 0, x).astype(np.float32), mask, fade)
    # Received samples are played as they arrived; the model's values only where it concealed.
    model_out = np.where(plc_model.concealed(mask, fade), _pcm(model_out), ref)
    report = {"backend": backend, "samples": int(len(x)), "sample_rate": int(rate), "frame_ms": frame_ms,
              "frame_samples": frame, "loss": loss, "burst": burst, "seed": seed, "fade_samples": fade,
              "lost_fraction": round(float(mask.mean()), 4),
              "lost_frames": [int(i) for i in np.flatnonzero(lost_frames)]}
    report.update(_scores(ref, model_out, mask, rate))
    report["baselines"] = {}
    for name, fn in (("zero", baselines.zero_fill), ("repeat", baselines.repeat_previous),
                     ("g711", baselines.g711_appendix_i)):
        report["baselines"][name] = _scores(ref, _pcm(fn(received, lost_frames, frame, rate)), mask, rate)
    report.update(extra)
    signals.write_wav(out, model_out, rate)
    report["out"] = str(Path(out))
    return report


def human_report(r: dict) -> str:
    def row(name, s):
        pesq = "   -  " if s["pesq"] is None else f"{s['pesq']:6.3f}"
        return f"  {name:<22} {pesq} {s['stoi']:7.4f} {s['snr_lost_db']:9.2f}\n"

    lines = (f"{len(r['lost_frames'])} of {-(-r['samples'] // r['frame_samples'])} frames of {r['frame_ms']} ms lost "
             f"({100 * r['lost_fraction']:.1f} % of {r['samples']} samples at {r['sample_rate']} Hz)\n"
             f"  {'':<22} {'PESQ':>6} {'STOI':>7} {'SNR lost':>9}\n")
    lines += row(f"edgewave ({r['backend']})", r)
    for name, label in (("g711", "G.711 Appendix I"), ("repeat", "previous frame"), ("zero", "zero fill")):
        lines += row(label, r["baselines"][name])
    if "us_per_sample" in r:
        lines += f"  {r['us_per_sample']} us per sample on {r['backend']}\n"
    if "us_per_concealed_sample" in r:
        lines += f"  {r['us_per_concealed_sample']} us per concealed sample on {r['backend']}\n"
    if "instructions_per_concealed_sample" in r:
        lines += f"  {r['instructions_per_concealed_sample']} instructions per concealed sample\n"
    return lines + f"wrote {r['out']}\n"
