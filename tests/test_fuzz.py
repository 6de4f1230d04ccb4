"""Bounded fuzzing of every file parser: any byte string yields a result or a UserError, never a crash.

Case counts are printed (run with -s, or see the CI log's summary line per parser).
"""

import io
import json
import shutil
import tomllib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgewave import signals
from edgewave import spec as spec_mod
from edgewave.convert import pipeline
from edgewave.errors import UserError
from edgewave.tflite import check_model_bytes

from conftest import SPEECH

CASES = 300
COUNTS = {}


def _count(name):
    COUNTS[name] = COUNTS.get(name, 0) + 1


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
def test_signal_parsers(tmp_path, edits, suffix):
    _count("signals")
    seed = {".wav": WAV, ".npy": _npy_bytes(), ".csv": b"0.1\n0.2\n-0.3\n0.5\n" * 20}[suffix]
    path = tmp_path / f"f{suffix}"
    path.write_bytes(mutate(seed, edits))
    try:
        sig = signals.load_signal(path)
        assert sig.samples.dtype == np.float32 and np.isfinite(sig.samples).all()
    except UserError as e:
        assert "\n" not in str(e)


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
def test_spec_parser(doc):
    _count("spec")
    try:
        graph = spec_mod.to_graph(spec_mod.parse(doc))
        assert graph.receptive_field >= 1
    except UserError as e:
        assert "\n" not in str(e)


@settings(max_examples=CASES, deadline=None)
@given(text=st.text(max_size=200))
def test_spec_toml_text(tmp_path_factory, text):
    _count("spec-toml")
    path = tmp_path_factory.mktemp("toml") / "s.toml"
    path.write_text(text)
    try:
        spec_mod.load(path)
    except UserError as e:
        assert "\n" not in str(e)


@pytest.fixture(scope="module")
def tflite_bytes(convert_tiny):
    return (convert_tiny("int8") / "model_stream.tflite").read_bytes()


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=EDITS)
def test_tflite_reader(tflite_bytes, edits):
    _count("tflite")
    try:
        check_model_bytes(mutate(tflite_bytes, edits))
    except UserError as e:
        assert "\n" not in str(e)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=EDITS, which=st.sampled_from(["manifest.json", "program.npz", "model_stream.tflite"]))
def test_out_dir_loader(convert_tiny, tmp_path_factory, edits, which):
    _count("out_dir")
    d = tmp_path_factory.mktemp("od") / "out"
    shutil.copytree(convert_tiny("int8"), d)
    f = d / which
    f.write_bytes(mutate(f.read_bytes(), edits))
    try:
        pipeline.load(d)
    except UserError as e:
        assert "\n" not in str(e)


def test_print_case_counts():
    print("fuzz cases:", json.dumps(COUNTS))
    assert all(v > 0 for v in COUNTS.values())
