"""Emitted C: bit-exact with the numpy engine and TFLite Micro on host and Cortex-M, lean, reproducible."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgewave import ctools, signals
from edgewave.convert import export, pipeline
from edgewave.emit import pipeline as emit_pipeline
from edgewave.engine import Engine
from edgewave.runners import TFLMStream

from conftest import SPEECH, assert_one_line_error, run_edgewave
from strategies import specs
from test_convert import SPEECH_X, random_graph

IN_CI = os.environ.get("CI") == "true"
needs_qemu = pytest.mark.skipif(not ctools.have_cortex_m_tools() and not IN_CI,
                                reason="arm-none-eabi-gcc / qemu-system-arm not installed")


def recording_codes(manifest, prog):
    """The whole bundled recording as the model's input codes."""
    norm = signals.NormStats.from_dict(manifest["normalization"])
    return pipeline.quantize_input(prog, (signals.load_signal(SPEECH).samples - norm.offset) / norm.scale)


def emit_with_recording(converted, c_dir):
    """emit of a converted model (not measured) into ``c_dir``, and the whole recording as its input: the
    program, the codes and emit_pipeline.c_sources of the directory."""
    manifest, prog, _ = pipeline.load(converted)
    emit_pipeline.write_c(str(converted), str(c_dir), "speech", measure=False)
    return (prog, recording_codes(manifest, prog), *emit_pipeline.c_sources(c_dir, "speech"))


@pytest.fixture(scope="module", params=["int8", "int16x8"])
def converted(request, convert_tiny):
    return convert_tiny(request.param)


def test_emit_reports_and_matches_everywhere_on_the_whole_recording(converted, tmp_path):
    c_dir = tmp_path / "c"
    proc = run_edgewave("emit", converted, "--out", c_dir, "--prefix", "speech", "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    for key in ("files", "ram_bytes", "flash_bytes", "min_state_bytes", "tflm_ram_bytes"):
        assert key in r or (key == "flash_bytes" and not ctools.have_cortex_m_tools())
    assert r["ram_bytes"] <= 0.5 * r["tflm_ram_bytes"]
    assert r["ram_bytes"] <= 1.1 * r["min_state_bytes"] + 512
    manifest, prog, stream = pipeline.load(converted)
    codes = recording_codes(manifest, prog)
    assert len(codes) >= 100_000
    engine = Engine(prog).run_sequence(codes)
    srcs, incs = emit_pipeline.c_sources(c_dir, "speech")
    host = ctools.run_host(ctools.build_host(srcs, incs, tmp_path / "host"), codes, out_dtype=prog.dtype)
    np.testing.assert_array_equal(host, engine, err_msg="host C != numpy engine")
    tflm = TFLMStream(prog, stream).run(codes)
    np.testing.assert_array_equal(tflm, engine, err_msg="TFLM != numpy engine")
    if ctools.have_cortex_m_tools() or IN_CI:
        assert r["m4_instructions_per_sample"] > 0 and r["m4_instructions_per_mac"] > 0
        print(f"{prog.precision}: M4 {r['m4_instructions_per_sample']} instructions/sample, "
              f"{r['m4_instructions_per_mac']}/MAC, RAM {r['ram_bytes']} B vs TFLM {r['tflm_ram_bytes']} B")


@needs_qemu
def test_cortex_m4_equals_host_on_the_full_recording(convert_tiny, tmp_path):
    converted = convert_tiny("int16x8")  # once per run: the whole recording through QEMU takes a while
    _, codes, srcs, incs = emit_with_recording(converted, tmp_path / "c")
    host = ctools.run_host(ctools.build_host(srcs, incs, tmp_path / "host"), codes)
    elf, _ = ctools.build_cortex_m("cortex-m4", srcs, incs, tmp_path / "m4")
    m4, stats = ctools.run_qemu("cortex-m4", elf, codes, timeout=1200)
    np.testing.assert_array_equal(m4, host)
    assert stats["samples"] == len(codes)


@needs_qemu
@pytest.mark.parametrize("target", ["cortex-m0plus", "cortex-m7", "cortex-m33"])
def test_builds_and_matches_on_other_cores(converted, tmp_path, target):
    _, prog, _ = pipeline.load(converted)
    emit_pipeline.write_c(str(converted), str(tmp_path / "c"), "m", measure=False)
    srcs, incs = emit_pipeline.c_sources(tmp_path / "c", "m")
    codes = emit_pipeline.measure_input(prog, 600)
    elf, sizes = ctools.build_cortex_m(target, srcs, incs, tmp_path / target)
    out, stats = ctools.run_qemu(target, elf, codes, out_dtype=prog.dtype)
    np.testing.assert_array_equal(out, Engine(prog).run_sequence(codes))


def test_emit_is_reproducible_and_sanitizer_clean(converted, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    emit_pipeline.write_c(str(converted), str(a), "m", measure=False)
    emit_pipeline.write_c(str(converted), str(b), "m", measure=False)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    _, prog, _ = pipeline.load(converted)
    srcs, incs = emit_pipeline.c_sources(a, "m")
    rng = np.random.default_rng(0)
    info = np.iinfo(prog.input_dtype)
    codes = rng.integers(info.min, info.max + 1, 1_000_000).astype(prog.input_dtype)  # 10^6 samples, full code range
    binary = ctools.build_host(srcs, incs, tmp_path / "asan", sanitize=True)
    out = ctools.run_host(binary, codes, timeout=1200, out_dtype=prog.dtype)
    np.testing.assert_array_equal(out[-5000:], Engine(prog).run_sequence(codes)[-5000:])


def emit_random_model(tmp_path_factory, spec_dict, seed, precision, tflm: bool):
    """A random architecture (tests/test_convert.py's random_graph) converted on a slice of the recording and
    rendered into a new directory, with its TFLite stream model or (``tflm`` false: no TFLM build) the model's
    C and the runtime alone. Returns the program, the stream (or None), the slice, the directory and
    emit_pipeline.c_sources of it."""
    graph, _ = random_graph(spec_dict, seed)
    x = SPEECH_X[30000:36000]
    _, prog = pipeline.build(graph, x, precision)
    stream = export.stream_model(prog) if tflm else None
    manifest = {"receptive_field": graph.receptive_field, "normalization": {"offset": 0, "scale": 1}}
    files, _ = emit_pipeline.render(manifest, prog, stream, "rnd")
    c_dir = tmp_path_factory.mktemp("rnd")
    for rel, text in files.items():
        (c_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (c_dir / rel).write_text(text)
    return (prog, stream, x, c_dir, *emit_pipeline.c_sources(c_dir, "rnd"))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(spec_dict=specs(max_dilation=64, max_channels=16, heads=("regression", "mulaw")), seed=st.integers(0, 999),
       precision=st.sampled_from(["int8", "int16x8"]))
def test_random_architectures_host_c_equals_engine_and_tflm(tmp_path_factory, spec_dict, seed, precision):
    prog, stream, x, c_dir, srcs, incs = emit_random_model(tmp_path_factory, spec_dict, seed, precision, tflm=True)
    codes = pipeline.quantize_input(prog, x[:1500])
    host = ctools.run_host(ctools.build_host(srcs, incs, c_dir / "build"), codes, out_dtype=prog.dtype)
    engine = Engine(prog).run_sequence(codes)
    np.testing.assert_array_equal(host, engine)
    np.testing.assert_array_equal(TFLMStream(prog, stream).run(codes[:400]), engine[:400])


def test_emit_bad_input(converted, tmp_path):
    out = tmp_path / "c"
    for prefix, phrase in (("2fast", "not a valid C identifier"), ("int", "C keyword"), ("my-model", "identifier")):
        assert_one_line_error(run_edgewave("emit", converted, "--out", out, "--prefix", prefix), phrase)
    assert_one_line_error(run_edgewave("emit", tmp_path, "--out", out), "not an OUT_DIR")
    broken = tmp_path / "broken"
    subprocess.run(["cp", "-r", str(converted), str(broken)], check=True)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["edgewave_version"] = "0.0.1"
    manifest["checksum"] = pipeline._manifest_checksum(manifest)
    (broken / "manifest.json").write_text(json.dumps(manifest))
    assert_one_line_error(run_edgewave("emit", broken, "--out", out), "written by edgewave 0.0.1")
    shutil.rmtree(broken)
    shutil.copytree(converted, broken)
    (broken / "model_stream.tflite").write_bytes(b"tampered")
    assert_one_line_error(run_edgewave("emit", broken, "--out", out), "checksum")
    (broken / "model_stream.tflite").unlink()
    assert_one_line_error(run_edgewave("emit", broken, "--out", out), "missing")
    assert not out.exists()


def test_float32_cannot_be_emitted(convert_tiny, tmp_path):
    out = convert_tiny("float32")
    assert_one_line_error(run_edgewave("emit", out, "--out", tmp_path / "c"), "int16x8 or int8")
    assert not (tmp_path / "c").exists()
