"""Bounded fuzzing of every file parser: any byte string yields a result or a UserError, never a crash.

Every property counts the cases its body ran and fails unless at least its max_examples ran
(the counts are printed with -s, and in the terminal summary of every run, CI logs included).
The OUT_DIR fuzzers re-seal what they mutate (the manifest's checksums recomputed as convert
writes them), so the manifest, program.npz and model_stream.tflite parsers behind the checksum
check are what is fuzzed; one property checks that an unsealed change is refused by the checksum.
"""

import hashlib
import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgewave import signals
from edgewave import spec as spec_mod
from edgewave.convert import pipeline
from edgewave.errors import UserError
from edgewave.tflite import check_model_bytes

from conftest import SPEECH, examples

CASES = examples(300)  # per parser
OUT_DIR_CASES = examples(150)  # per OUT_DIR property (each case copies and re-seals an OUT_DIR)
COUNTS = {}  # parser -> cases its property body ran in this session
OUTCOMES = {}  # OUT_DIR mutation -> {outcome (a message's first words): cases}


def _count(name):
    COUNTS[name] = COUNTS.get(name, 0) + 1


def run_counted(name, prop, cases, **fixtures):
    """Run a Hypothesis property and fail unless its body ran at least `cases` times."""
    before = COUNTS.get(name, 0)
    prop(**fixtures)
    ran = COUNTS.get(name, 0) - before
    print(f"fuzz cases, {name}: {ran}")
    assert ran >= cases, f"{name}: only {ran} of {cases} fuzz cases ran"


def mutate(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for pos, val, cut in edits:
        if cut and len(b) > 1:
            del b[pos % len(b):]
        elif b:
            b[pos % len(b)] = val
    return bytes(b)


EDITS = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255), st.booleans()), max_size=6)
WAV = SPEECH.read_bytes()[:4000]


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=EDITS, suffix=st.sampled_from([".wav", ".npy", ".csv"]))
def signal_parsers(tmp_path, edits, suffix):
    _count("signals")
    seed = {".wav": WAV, ".npy": _npy_bytes(), ".csv": b"0.1\n0.2\n-0.3\n0.5\n" * 20}[suffix]
    path = tmp_path / f"f{suffix}"
    path.write_bytes(mutate(seed, edits))
    try:
        sig = signals.load_signal(path)
        assert sig.samples.dtype == np.float32 and np.isfinite(sig.samples).all()
    except UserError as e:
        assert "\n" not in str(e)


def test_signal_parsers(tmp_path):
    run_counted("signals", signal_parsers, CASES, tmp_path=tmp_path)


def _npy_bytes():
    buf = io.BytesIO()
    np.save(buf, np.linspace(-1, 1, 200))
    return buf.getvalue()


toml_values = st.recursive(st.one_of(st.integers(-5, 5000), st.text(max_size=8), st.booleans(), st.floats(allow_nan=False)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.sampled_from(
                                                       ["type", "filters", "kernel", "dilation", "stride", "layers",
                                                        "units", "size", "kind", "skip", "activation", "dilations",
                                                        "head", "mulaw_bits", "function"]), inner, max_size=5)),
                           max_leaves=12)


@settings(max_examples=CASES, deadline=None)
@given(doc=st.dictionaries(st.sampled_from(["head", "layers", "mulaw_bits", "train", "extra"]), toml_values, max_size=4))
def spec_parser(doc):
    _count("spec")
    try:
        graph = spec_mod.to_graph(spec_mod.parse(doc))
        assert graph.receptive_field >= 1
    except UserError as e:
        assert "\n" not in str(e)


def test_spec_parser():
    run_counted("spec", spec_parser, CASES)


@settings(max_examples=CASES, deadline=None)
@given(text=st.text(max_size=200))
def spec_toml_text(tmp_path_factory, text):
    _count("spec-toml")
    path = tmp_path_factory.mktemp("toml") / "s.toml"
    path.write_text(text)
    try:
        spec_mod.load(path)
    except UserError as e:
        assert "\n" not in str(e)


def test_spec_toml_text(tmp_path_factory):
    run_counted("spec-toml", spec_toml_text, CASES, tmp_path_factory=tmp_path_factory)


@pytest.fixture(scope="module")
def tflite_bytes(convert_tiny):
    return (convert_tiny("int8") / "model_stream.tflite").read_bytes()


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=EDITS)
def tflite_reader(tflite_bytes, edits):
    _count("tflite")
    try:
        check_model_bytes(mutate(tflite_bytes, edits))
    except UserError as e:
        assert "\n" not in str(e)


def test_tflite_reader(tflite_bytes):
    run_counted("tflite", tflite_reader, CASES, tflite_bytes=tflite_bytes)


# -- OUT_DIR: the manifest, program.npz and model_stream.tflite behind their checksums --------------

OUT_FILES = ("manifest.json", "program.npz", "model_stream.tflite")


@pytest.fixture(scope="module")
def out_dir(convert_tiny):
    return convert_tiny("int8")


def reseal(d: Path) -> None:
    """Recompute the manifest's checksums the way convert writes them (pipeline.convert: a sha256
    per file, then pipeline._manifest_checksum over the manifest), so a mutated file passes the
    checksum check and reaches its parser. A manifest that is no JSON object with a "files"
    object cannot be sealed and is left as it is (its parser refuses it first)."""
    path = d / pipeline.MANIFEST
    try:
        manifest = json.loads(path.read_bytes())
    except ValueError:
        return
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files", {}), dict):
        return
    for name in manifest.get("files", {}):
        if isinstance(name, str) and name and (d / name).is_file():
            manifest["files"][name] = hashlib.sha256((d / name).read_bytes()).hexdigest()
    manifest["checksum"] = pipeline._manifest_checksum(manifest)
    path.write_text(json.dumps(manifest))


def _paths(node, prefix=()):
    """Every path into a JSON document (dict keys, list indices), the root excluded."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        yield prefix + (k,)
        yield from _paths(v, prefix + (k,))


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 1 << 40), st.floats(), st.text(max_size=6),
              st.sampled_from(["int8", "int16x8", "float32", "fc", "tanh", "add", "concat", "input", "head", "NONE"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)


@st.composite
def manifest_edits(draw, manifest):
    """A manifest with 1-3 of its values replaced (by a random JSON value, or by another of its own
    values: a type that fits elsewhere) or deleted; mostly inside "program", which from_files reads."""
    doc = json.loads(json.dumps(manifest))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p[0] != "checksum"]  # (reseal rewrites the checksum)
        if not paths:
            break
        inside = [p for p in paths if p[0] == "program"]
        path = draw(st.sampled_from(inside if inside and draw(st.integers(0, 3)) else paths))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        action = draw(st.sampled_from(["value", "own", "delete"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "own":
            src = doc
            for k in draw(st.sampled_from(paths)):
                src = src[k]
            parent[path[-1]] = json.loads(json.dumps(src))
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return doc


@st.composite
def npz_edits(draw, arrays):
    """program.npz with 1-3 arrays deleted, added, cut, reshaped or given another dtype."""
    arrays = dict(arrays)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(arrays) + ["op0_weights", "op999_bias", "junk"]))
        a = arrays.get(key, np.zeros(3, np.int8))
        action = draw(st.sampled_from(["delete", "cut", "flat", "dtype", "scalar", "empty"]))
        if action == "delete":
            arrays.pop(key, None)
        elif action == "cut":
            arrays[key] = a.reshape(-1)[: max(a.size - 1, 0)]
        elif action == "flat":
            arrays[key] = a.reshape(-1)
        elif action == "dtype":
            arrays[key] = a.astype(draw(st.sampled_from(["int8", "int16", "int64", "float64", "bool", "uint8"])))
        elif action == "scalar":
            arrays[key] = np.array(draw(st.integers(-(1 << 31), 1 << 31)))
        else:
            arrays[key] = np.zeros((0,) + a.shape[1:], a.dtype)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _mutated_out_dir(src: Path, tmp: str, which: str, blob: bytes) -> Path:
    d = Path(tmp) / "out"
    shutil.copytree(src, d)
    (d / which).write_bytes(blob)
    return d


def _load_or_user_error(d: Path, which: str) -> str | None:
    """pipeline.load: a manifest, a program and the stream model, or a one-line UserError (its message)."""
    try:
        manifest, prog, stream = pipeline.load(d)
    except UserError as e:
        msg = str(e)
        assert "\n" not in msg
        outcome = " ".join(msg.replace(str(d), "D").split()[:6])
    else:
        # what emit and simulate read: a stream model edgewave parses, a program with its arrays,
        # and the manifest fields beside it
        check_model_bytes(stream)
        assert manifest["receptive_field"] == prog.receptive_field() and prog.state_bytes() >= 0
        assert float(manifest["normalization"]["scale"]) != 0 and np.isfinite(manifest["normalization"]["offset"])
        assert all(op.weights.shape[1] == sum(prog.tensors[n].channels for n, _ in op.inputs)
                   for op in prog.ops if op.kind == "fc")
        msg, outcome = None, "loaded"
    OUTCOMES.setdefault(which, {})
    OUTCOMES[which][outcome] = OUTCOMES[which].get(outcome, 0) + 1
    return msg


SEALED = ("manifest.json:bytes", "manifest.json:values", "program.npz:bytes", "program.npz:arrays",
          "model_stream.tflite:bytes")


@settings(max_examples=OUT_DIR_CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def sealed_out_dir(out_dir, which, data):
    _count(f"out_dir {which}")
    name, _, how = which.partition(":")
    original = (out_dir / name).read_bytes()
    if how == "values":
        blob = json.dumps(data.draw(manifest_edits(json.loads(original)))).encode()
    elif how == "arrays":
        with np.load(out_dir / name) as arrays:
            blob = data.draw(npz_edits({k: arrays[k] for k in arrays}))
    else:
        blob = mutate(original, data.draw(EDITS))
    with tempfile.TemporaryDirectory() as tmp:
        d = _mutated_out_dir(out_dir, tmp, name, blob)
        reseal(d)
        msg = _load_or_user_error(d, which)
    # sealed: the parser behind the checksum decided, not the checksum (a manifest that is no
    # JSON object cannot be sealed, and is refused as corrupt before any checksum is read)
    assert msg is None or "checksum" not in msg, (which, msg)


@pytest.mark.parametrize("which", SEALED)
def test_out_dir_parsers_behind_the_checksums(out_dir, which):
    run_counted(f"out_dir {which}", sealed_out_dir, OUT_DIR_CASES, out_dir=out_dir, which=which)
    outcomes = OUTCOMES[which]
    print(f"OUT_DIR {which} outcomes:", json.dumps(outcomes))
    # the parsers ran: they refused some mutations (with their own message, not the checksum's)
    assert sum(v for k, v in outcomes.items() if k != "loaded") >= OUT_DIR_CASES // 3, outcomes


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=EDITS.filter(bool), which=st.sampled_from(OUT_FILES))
def unsealed_out_dir(out_dir, edits, which):
    _count("out_dir unsealed")
    original = (out_dir / which).read_bytes()
    blob = mutate(original, edits)
    with tempfile.TemporaryDirectory() as tmp:
        d = _mutated_out_dir(out_dir, tmp, which, blob)
        try:
            pipeline.load(d)
        except UserError as e:
            msg = str(e)
            assert "\n" not in msg
        else:
            msg = None
    if which != "manifest.json":
        assert (msg is None) == (blob == original), (which, msg)
        assert blob == original or "does not match its checksum" in msg, msg
        return
    try:  # a manifest refused as corrupt or foreign before its checksum, or by its checksum
        same = json.loads(blob.decode()) == json.loads(original.decode())  # as pipeline.load reads it
    except ValueError:
        assert msg is not None and "corrupt" in msg, msg
        return
    assert (msg is None) == same, msg  # only a change JSON does not see (whitespace) loads
    if msg is not None:
        assert any(p in msg for p in ("checksum", "not an edgewave manifest", "was written by edgewave")), msg


def test_out_dir_checksum_refuses_every_unsealed_change(out_dir):
    run_counted("out_dir unsealed", unsealed_out_dir, examples(60), out_dir=out_dir)
