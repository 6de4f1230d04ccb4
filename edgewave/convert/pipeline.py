"""`edgewave convert`: calibrate, quantize, export, and prove the result on real samples."""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np

from .. import __version__, modeldir, signals
from ..errors import UserError
from ..metrics import prediction_gain_db
from ..runners import EngineRunner, LiteRTStream, TFLMStream, run_full
from ..tflite import check_model_bytes, read_model
from ..train import to_value
from . import calibrate, export, lowering, quantization
from ..program import from_files, to_files

MANIFEST = "manifest.json"
FORBIDDEN_OPS = {"SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND"}


def _log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def load_input(model_path: str, data: str, channel: int | None):
    """Model graph + metadata, and the data normalised the way the model was trained."""
    graph, meta = modeldir.load(model_path)
    sig = signals.load_signal(data, channel)
    rate = meta.get("sample_rate")
    if rate and sig.sample_rate and rate != sig.sample_rate:
        raise UserError(f"{data} is sampled at {sig.sample_rate} Hz but the model was trained at {rate} Hz; "
                        f"resample it first (sox in.wav -r {rate} out.wav)")
    norm = signals.NormStats.from_dict(meta["normalization"]) if "normalization" in meta else signals.NormStats(0.0, 1.0)
    x = ((sig.samples.astype(np.float64) - norm.offset) / norm.scale).astype(np.float32)
    return graph, meta, norm, x


def build(graph, x_cal: np.ndarray, precision: str, input_stage: str = "int16"):
    """(float program, program at `precision`). int8 keeps its input stage at 16 bits unless
    `input_stage` is "int8" (quantization.widen_input_stage)."""
    fprog = lowering.lower(graph)
    if precision == "float32":
        return fprog, fprog
    src = quantization.widen_input_stage(fprog) if precision == "int8" and input_stage == "int16" else fprog
    return fprog, quantization.quantize(src, calibrate.ranges(src, x_cal, precision), precision)


def quantize_input(prog, x: np.ndarray) -> np.ndarray:
    if not prog.quantized:
        return x.astype(np.float32)
    q = prog.tensors[prog.input].q
    info = np.iinfo(prog.input_dtype)
    v = np.asarray(x, np.float64) / np.float32(q.scale)
    rounded = np.sign(v) * np.floor(np.abs(v) + 0.5)  # half away from zero, as TFLM and C's roundf
    return np.clip(rounded + q.zero_point, info.min, info.max).astype(prog.input_dtype)


def dequantize_output(prog, y: np.ndarray) -> np.ndarray:
    if not prog.quantized:
        return np.asarray(y, np.float32)
    q = prog.tensors[prog.output].q
    return ((y.astype(np.float64) - q.zero_point) * q.scale).astype(np.float32)


def _max_diff(a, b) -> float:
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return float(d.max(initial=0.0))


def convert(model_path: str, data: str, precision: str, out: str, *, window: int = 1024, channel=None,
            check_samples: int = 20000, calibration_samples: int = 100_000, input_stage: str = "int16",
            quiet: bool = False) -> dict:
    modeldir.check_output_dir(out, MANIFEST)
    graph, meta, norm, x = load_input(model_path, data, channel)
    rf = graph.receptive_field
    n = len(x)
    train_split, _, test_split = signals.split_by_time(n)
    need = max(20 * rf, 2000)  # the test split (10 %) must hold two receptive fields
    if n < need:
        raise UserError(f"{data}: {n} samples is too short for a receptive field of {rf}; "
                        f"give at least {need} samples for calibration and checks")
    x_cal = x[train_split][:calibration_samples]
    _log(quiet, f"calibrating on {len(x_cal)} consecutive samples ({precision})")
    fprog, prog = build(graph, x_cal, precision, input_stage)

    full = export.full_model(prog, window)
    stream = export.stream_model(prog)
    ops_full = sorted({o.name for o in read_model(full).ops})
    ops_stream = sorted({o.name for o in read_model(stream).ops})
    assert not FORBIDDEN_OPS & (set(ops_full) | set(ops_stream)), "emitted graph holds SPACE_TO_BATCH_ND"

    # Accuracy on the held-out test split: float engine vs this precision (numpy engine, whole sequence).
    x_test = x[test_split]
    target = x_test[rf:]
    f_out = EngineRunner(fprog).run(x_test)
    q_out = dequantize_output(prog, EngineRunner(prog).run(quantize_input(prog, x_test)))
    float_gain = prediction_gain_db(target, to_value(graph, f_out)[rf - 1:-1])
    quant_gain = prediction_gain_db(target, to_value(graph, q_out)[rf - 1:-1])

    # Equality checks over the last `check_samples` consecutive samples of the data.
    seg = x[-min(check_samples, n):]
    seg_in = quantize_input(prog, seg)
    _log(quiet, f"checking {len(seg)} samples: numpy engine, TFLite Micro and LiteRT (streaming and full window)")
    engine_out = EngineRunner(prog).run(seg_in)
    tflm_out = TFLMStream(prog, stream).run(seg_in)
    litert_out = LiteRTStream(prog, stream).run(seg_in)
    litert_full = run_full(export.full_model(prog, len(seg)), seg_in, prog.input_dtype, "litert")
    if prog.quantized:
        stream_vs_full = _max_diff(litert_out, litert_full)
    else:  # float32: relative difference
        stream_vs_full = _max_diff(litert_out, litert_full) / max(float(np.abs(litert_full).max()), 1e-12)

    report = {
        "edgewave_version": __version__,
        "precision": precision,
        "input_dtype": np.dtype(prog.input_dtype).name,
        "receptive_field": rf,
        "window": window,
        "ops_full": ops_full,
        "ops_stream": ops_stream,
        "float_gain_db": round(float_gain, 3),
        "quant_gain_db": round(quant_gain, 3),
        "gain_loss_db": round(float_gain - quant_gain, 3),
        "stream_vs_full_max_abs_diff": stream_vs_full,
        "engine_vs_tflm_max_lsb": _max_diff(engine_out, tflm_out),
        "litert_ref_vs_tflm_max_lsb": _max_diff(litert_out, tflm_out),
        "litert_ref_vs_tflm_differing": int(np.count_nonzero(np.asarray(litert_out) != np.asarray(tflm_out))),
        "checked_samples": int(len(seg)),
        "state_bytes": prog.state_bytes(),
        "model_stream_bytes": len(stream),
        "model_full_bytes": len(full),
    }
    doc, arrays = to_files(prog)
    manifest = {
        **report,
        "normalization": norm.to_dict(),
        "sample_rate": meta.get("sample_rate"),
        "head": graph.head,
        "mulaw_bits": graph.mulaw_bits,
        "input": _quant_doc(prog, prog.input, "x"),
        "output": _quant_doc(prog, prog.output, "y"),
        "state": [{"tensor": name, "length": prog.ring_lengths()[name], "channels": prog.tensors[name].channels,
                   "delays": ds, "zero_point": prog.zero_code(name),
                   "inputs": [export.tap_name(name, d) for d in ds],
                   "push": None if name == prog.input else export.push_name(name)}
                  for name, ds in prog.ring_delays().items()],
        "program": doc,
    }
    npz = io.BytesIO()
    np.savez(npz, **arrays)
    keras_file = Path(model_path) / modeldir.MODEL_FILE if Path(model_path).is_dir() else Path(model_path)
    files = {"model_full.tflite": full, "model_stream.tflite": stream, "program.npz": npz.getvalue(),
             "model.keras": keras_file.read_bytes()}  # the float reference travels with the conversion
    manifest["files"] = {name: hashlib.sha256(blob).hexdigest() for name, blob in files.items()}
    manifest = json.loads(json.dumps(manifest, default=_json_default))
    manifest["checksum"] = _manifest_checksum(manifest)
    with modeldir.atomic_dir(out, MANIFEST) as tmp:
        for name, blob in files.items():
            (tmp / name).write_bytes(blob)
        (tmp / "report.txt").write_text(human_report(report))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, default=_json_default) + "\n")
    return report


def _manifest_checksum(manifest: dict) -> str:
    """sha256 over the manifest without this field: a hand edit is caught, not silently emitted."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _quant_doc(prog, name, signature_name):
    q = prog.tensors[name].q
    return {"tensor": name, "signature": signature_name, "channels": prog.tensors[name].channels,
            "dtype": np.dtype(prog.dtype_of(name)).name, "scale": None if q is None else q.scale,
            "zero_point": None if q is None else q.zero_point}


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o))


def human_report(r: dict) -> str:
    lines = [
        f"edgewave convert report ({r['precision']})",
        f"  input                  {r['input_dtype']} codes",
        f"  receptive field        {r['receptive_field']} samples",
        f"  prediction gain        float {r['float_gain_db']:.2f} dB, {r['precision']} {r['quant_gain_db']:.2f} dB "
        f"(loss {r['gain_loss_db']:.2f} dB)",
        f"  streaming vs full      max diff {r['stream_vs_full_max_abs_diff']:g} (LiteRT, {r['checked_samples']} samples)",
        f"  numpy engine vs TFLM   max {r['engine_vs_tflm_max_lsb']:g} LSB",
        f"  LiteRT(ref) vs TFLM    max {r['litert_ref_vs_tflm_max_lsb']:g} LSB on "
        f"{r['litert_ref_vs_tflm_differing']} of {r['checked_samples']} outputs",
        f"  ring state             {r['state_bytes']} bytes",
        f"  model_stream.tflite    {r['model_stream_bytes']} bytes, ops {', '.join(r['ops_stream'])}",
        f"  model_full.tflite      {r['model_full_bytes']} bytes (window {r['window']}), ops {', '.join(r['ops_full'])}",
    ]
    return "\n".join(lines) + "\n"


def load(out_dir: str | Path):
    """(manifest, program, stream model bytes) from an OUT_DIR, with checksums verified."""
    out_dir = Path(out_dir)
    path = out_dir / MANIFEST
    if not path.is_file():
        raise UserError(f"{out_dir} is not an OUT_DIR from `edgewave convert` (no {MANIFEST}); run convert first")
    try:
        manifest = json.loads(path.read_text())
    except ValueError:  # not UTF-8 or not JSON
        raise UserError(f"{path} is corrupt; run `edgewave convert` again") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files", {}), dict):
        raise UserError(f"{path} is not an edgewave manifest; run `edgewave convert` again")
    if manifest.get("edgewave_version") != __version__:
        raise UserError(f"{out_dir} was written by edgewave {manifest.get('edgewave_version')}, this is {__version__}; "
                        "run `edgewave convert` again")
    if manifest.get("checksum") != _manifest_checksum(manifest):
        raise UserError(f"{path} does not match its checksum (edited by hand?); run `edgewave convert` again")
    blobs = {}
    for name, digest in manifest.get("files", {}).items():
        f = out_dir / name
        if not f.is_file():
            raise UserError(f"{out_dir} is missing {name}; run `edgewave convert` again")
        blobs[name] = f.read_bytes()
        if hashlib.sha256(blobs[name]).hexdigest() != digest:
            raise UserError(f"{f} does not match its checksum in {MANIFEST} (edited by hand?); run convert again")
    for name in ("program.npz", "model_stream.tflite"):
        if name not in blobs:
            raise UserError(f"{path} lists no {name}; run `edgewave convert` again")
    check_model_bytes(blobs["model_stream.tflite"])  # damaged flatbuffers never reach TFLM / LiteRT
    prog = _program(manifest, blobs["program.npz"], path)
    norm, rate = manifest.get("normalization"), manifest.get("sample_rate")
    if manifest.get("receptive_field") != prog.receptive_field() or not isinstance(norm, dict) \
            or not all(type(norm.get(k)) in (int, float) and np.isfinite(norm[k]) for k in ("offset", "scale")) \
            or not norm["scale"] or not (rate is None or (type(rate) is int and rate > 0)):
        raise UserError(f"{path} holds a malformed receptive_field, normalization or sample_rate; "
                        "run `edgewave convert` again")
    return manifest, prog, blobs["model_stream.tflite"]


def _program(manifest: dict, npz: bytes, path: Path):
    """The program from the manifest and program.npz; anything missing or malformed is a UserError."""
    try:
        with np.load(io.BytesIO(npz)) as arrays:
            prog = from_files(manifest["program"], arrays)
        # what every consumer relies on: a known precision, ops reading only the input and earlier outputs
        prog.dtype  # noqa: B018 (KeyError for an unknown precision)
        for t in prog.tensors.values():
            if type(t.channels) is not int or t.channels < 1 or (t.q is None) == prog.quantized:
                raise ValueError(f"tensor {t.name!r}: {t.channels!r} channels, quantization {t.q}")
        if prog.head not in ("regression", "mulaw") or type(prog.mulaw_bits) is not int:
            raise ValueError(f"head {prog.head!r}, mulaw_bits {prog.mulaw_bits!r}")
        known = {prog.input} & set(prog.tensors)
        for op in prog.ops:
            if op.kind not in OP_KINDS or op.output not in prog.tensors or not op.inputs \
                    or any(n not in known or type(d) is not int or d < 0 for n, d in op.inputs):
                raise ValueError(f"op {op.kind!r} -> {op.output!r} reads a tensor not computed before it")
            if op.kind == "fc":
                _check_fc_arrays(prog, op)
            known.add(op.output)
        if prog.output not in known:
            raise ValueError(f"output {prog.output!r} is not computed")
        prog.receptive_field(), prog.state_bytes()
    except Exception as exc:  # KeyError, TypeError, ValueError, BadZipFile, zlib.error, ... on damage
        raise UserError(f"{path} and program.npz do not hold a valid program ({type(exc).__name__}: "
                        f"{str(exc)[:200]}); run `edgewave convert` again") from None
    return prog


OP_KINDS = ("fc", "tanh", "logistic", "relu", "requant", "add", "mul", "concat", "avgpool", "maxpool")


def _check_fc_arrays(prog, op) -> None:
    """A fully-connected op's arrays in program.npz: the shapes and dtypes quantization.quantize writes."""
    n_out, depth = prog.tensors[op.output].channels, sum(prog.tensors[n].channels for n, _ in op.inputs)
    want = {"weights": ((n_out, depth), np.int8 if prog.quantized else np.float32)}
    if prog.quantized:
        wide = prog.precision == "int16x8" or prog.tensors[op.inputs[0][0]].wide
        want["weight_scales"] = ((n_out,), np.float32)
        want["bias"] = ((n_out,), np.int64 if wide else np.int32)
    elif op.bias is not None:
        want["bias"] = ((n_out,), np.float32)
    for name, (shape, dtype) in want.items():
        a = getattr(op, name)
        if a is None or a.shape != shape or a.dtype != dtype:
            got = "missing" if a is None else f"{a.dtype}{list(a.shape)}"
            raise ValueError(f"{op.output!r}: {name} is {got}, not {np.dtype(dtype)}{list(shape)}")
