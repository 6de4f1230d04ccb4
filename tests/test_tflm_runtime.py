"""edgewave's streaming .tflite on stock TensorFlow Lite Micro for an emulated Cortex-M4, through the generated
NAME_tflm glue: with TFLM's reference kernels and with CMSIS-NN (every op CMSIS-NN has, none swapped by hand),
bit-exact with the numpy engine on real speech, for the default spec and random architectures; the one-call
loop a user writes; and NAME_TENSOR_ARENA_SIZE as the smallest arena AllocateTensors accepts plus the stated
margin. A cold cache first builds TFLM's core and the kernels (a few minutes on 2 cores; kept under build/)."""

import re
from pathlib import Path

import numpy as np
import pytest
import tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, examples, run_edgewave
from edgewave import ctools, tflm_build, tflm_run
from edgewave.convert import export, pipeline
from edgewave.emit import pipeline as emit_pipeline
from edgewave.emit import tflm
from edgewave.engine import Engine
from strategies import specs
from test_convert import SPEECH_X, random_graph

SAMPLES = 1500
DEFAULT_SPEC = tomllib.loads((ROOT / "edgewave" / "specs" / "default.toml").read_text())
RANDOM_CASES = examples(3)


def emitted(graph, precision: str, c_dir: Path, x=SPEECH_X[20000:28000]):
    """The program, its streaming .tflite and the generated C in c_dir (prefix "m")."""
    _, prog = pipeline.build(graph, x, precision)
    stream = export.stream_model(prog)
    files, _ = emit_pipeline.render({"receptive_field": graph.receptive_field,
                                     "normalization": {"offset": 0, "scale": 1}}, prog, stream, "m")
    for rel, text in files.items():
        (c_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (c_dir / rel).write_text(text)
    return prog, stream


def on_tflm(root, prog, stream, c_dir: Path, kernels: str, codes) -> tuple[np.ndarray, dict]:
    program = tflm_run.build(c_dir, "m", tflm.ops(stream), kernels, root, c_dir / f"tflm-{kernels}")
    return tflm_run.run(program, codes, prog.dtype_of(prog.output), prog.tensors[prog.output].channels)


@pytest.mark.parametrize("precision", ["int16x8", "int8"])
def test_default_spec_runs_on_stock_tflm_with_and_without_cmsis_nn(precision, tflm_m4_root, tmp_path):
    graph, _ = random_graph(DEFAULT_SPEC, 0)
    prog, stream = emitted(graph, precision, tmp_path)
    assert "FULLY_CONNECTED" not in tflm.ops(stream), "CMSIS-NN refuses per-channel FCs on int16 inputs"
    codes = pipeline.quantize_input(prog, SPEECH_X[40000:40000 + SAMPLES])
    want = Engine(prog).run_sequence(codes)
    for kernels in tflm_build.KERNELS:
        got, stats = on_tflm(tflm_m4_root, prog, stream, tmp_path, kernels, codes)
        np.testing.assert_array_equal(got, want.reshape(got.shape), err_msg=f"TFLM {kernels} on Cortex-M4")
        assert stats["step"] == stats["fill"] + stats["invoke"] + stats["push"] > 0


@settings(max_examples=RANDOM_CASES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec_dict=specs(max_dilation=64, max_channels=12, heads=("regression", "mulaw")), seed=st.integers(0, 999),
       precision=st.sampled_from(["int8", "int16x8"]), offset=st.integers(0, 60_000))
def test_random_architectures_on_stock_tflm_with_cmsis_nn(tflm_m4_root, tmp_path_factory, spec_dict, seed, precision,
                                                          offset):
    graph, _ = random_graph(spec_dict, seed)
    c_dir = tmp_path_factory.mktemp("rnd")
    prog, stream = emitted(graph, precision, c_dir)
    codes = pipeline.quantize_input(prog, SPEECH_X[offset:offset + 600])
    got, _ = on_tflm(tflm_m4_root, prog, stream, c_dir, "cmsis_nn", codes)
    want = Engine(prog).run_sequence(codes)
    np.testing.assert_array_equal(got, want.reshape(got.shape))


# What a TFLM user writes with the generated header: init once, then one call per sample. IN.bin in, OUT.bin
# out through semihosting, and the EW_RESULT line ctools' QEMU runner reads (no counts: this is not a benchmark).
ONE_CALL_MAIN = """\
#include <stdio.h>
#include "tiny_tflm.h"

alignas(16) static uint8_t arena[TINY_TENSOR_ARENA_SIZE];
static tiny_tflm model;

int main(void)
{
    static tiny_tflm_in_t x[64];
    static tiny_tflm_out_t y[64 * TINY_TFLM_OUTPUTS];
    if (tiny_tflm_init(&model, arena, sizeof arena) != kTfLiteOk) return 1;
    FILE *in = fopen("IN.bin", "rb"), *out = fopen("OUT.bin", "wb");
    if (in == NULL || out == NULL) return 2;
    unsigned long samples = 0;
    size_t n;
    while ((n = fread(x, sizeof x[0], 64, in)) > 0) {
        for (size_t i = 0; i < n; i++)
            if (tiny_tflm_step(&model, x[i], &y[i * TINY_TFLM_OUTPUTS]) != kTfLiteOk) return 3;
        fwrite(y, sizeof y[0], n * TINY_TFLM_OUTPUTS, out);
        samples += n;
    }
    fclose(in);
    fclose(out);
    printf("EW_RESULT samples=%lu instructions=0 max_step=0\\n", samples);
    return 0;
}
"""


def test_one_call_loop_with_the_arena_emit_measured_on_cortex_m4(convert_tiny, tflm_m4_root, tmp_path):
    out_dir = convert_tiny("int16x8")
    c_dir = tmp_path / "c"
    proc = run_edgewave("emit", out_dir, "--out", c_dir, "--prefix", "tiny", "--tflm-dir", tflm_m4_root)
    assert proc.returncode == 0, proc.stderr
    assert "measuring TFLM's arena on Cortex-M4" in proc.stderr
    header = (c_dir / "tiny_tflm.h").read_text()
    size = int(re.search(r"#define TINY_TENSOR_ARENA_SIZE (\d+)", header).group(1))
    found = {k: int(v) for k, v in re.findall(r"(cmsis-nn|reference) kernels (\d+)", header)}
    assert set(found) == {"cmsis-nn", "reference"}, header
    margin = int(re.search(r"the larger plus (\d+) %", header).group(1))
    assert size == int(np.ceil(max(found.values()) * (1 + margin / 100) / 16) * 16)
    _, prog, stream = pipeline.load(out_dir)
    # The constant's source: the smallest arena AllocateTensors accepts, in 16-byte steps, on the M4 build.
    program = tflm_run.build(c_dir, "tiny", tflm.ops(stream), "cmsis_nn", tflm_m4_root, tmp_path / "probe",
                             tflm_run.SEARCH_CEILING)
    assert tflm_run.fits(program, found["cmsis-nn"]) and not tflm_run.fits(program, found["cmsis-nn"] - 16)

    (tmp_path / "main.cc").write_text(ONE_CALL_MAIN)
    ops = tflm.ops(stream)
    elf, sizes = tflm_build.build_program(tflm_m4_root, "cmsis_nn", ops, [tmp_path / "main.cc", c_dir / "tiny_tflm.cc"],
                                          [c_dir], tmp_path / "app")
    assert sizes["bss"] >= size
    codes = pipeline.quantize_input(prog, SPEECH_X[5000:5000 + SAMPLES])
    got, stats = ctools.run_qemu("cortex-m4", elf, codes, out_dtype=prog.dtype_of(prog.output))
    np.testing.assert_array_equal(got, Engine(prog).run_sequence(codes).reshape(got.shape))
