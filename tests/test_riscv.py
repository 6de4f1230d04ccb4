"""The RISC-V core (riscv32: rv32imac, picolibc, QEMU virt): the emitted C equals the numpy engine at 0 LSB on the
bundled recording and on random architectures, through emit --target riscv32 and simulate --backend qemu-rv32.
The runner's minstret counting is checked on a known loop in tests/test_ctools.py."""

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgewave import ctools
from edgewave.convert import pipeline
from edgewave.engine import Engine

from conftest import SPEECH, examples, require, run_edgewave
from strategies import specs
from test_emit import emit_random_model, emit_with_recording

TARGET = "riscv32"


def require_riscv():
    require(ctools.have_tools(TARGET), f"the RISC-V tools are missing ({ctools.RISCV.install})")


def test_emit_target_riscv32_measures_on_qemu(convert_tiny, tmp_path):
    """emit checks the rv32 build against the engine (it raises on any difference) and counts it; the files are
    its toolchain file only, and the build line names picolibc."""
    require_riscv()
    for precision in ("int8", "int16x8"):
        c_dir = tmp_path / precision
        proc = run_edgewave("emit", convert_tiny(precision), "--out", c_dir, "--target", TARGET, "--json")
        assert proc.returncode == 0, proc.stderr
        r = json.loads(proc.stdout)
        assert r["riscv32_instructions_per_sample"] > 0 and r["m4_instructions_per_sample"] > 0
        assert r["flash_core"] == TARGET and r["flash_bytes"] == r["riscv32_text_bytes"] + r["riscv32_rodata_bytes"]
        assert [f for f in r["files"] if f.startswith("cmake/")] == ["cmake/riscv64-unknown-elf-riscv32.cmake"]
        assert "riscv64-unknown-elf-gcc -march=rv32imac -mabi=ilp32 --specs=picolibc.specs" in \
            (c_dir / "README.md").read_text()


def test_riscv32_equals_the_engine_on_the_whole_recording(convert_tiny, tmp_path):
    require_riscv()
    prog, codes, srcs, incs = emit_with_recording(convert_tiny("int16x8"), tmp_path / "c")  # once: QEMU takes a while
    assert len(codes) >= 100_000
    elf, _ = ctools.build_cortex_m(TARGET, srcs, incs, tmp_path / TARGET)
    got, stats = ctools.run_qemu(TARGET, elf, codes, timeout=1200, out_dtype=prog.dtype)
    np.testing.assert_array_equal(got, Engine(prog).run_sequence(codes))
    assert stats["samples"] == len(codes) and stats["instructions"] > len(codes)


def test_simulate_backend_qemu_rv32(convert_tiny):
    require_riscv()
    proc = run_edgewave("simulate", convert_tiny("int8"), "--data", SPEECH, "--backend", "qemu-rv32",
                        "--compare", "int", "--limit", "1500", "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["max_lsb_diff"] == {"int": 0.0}
    assert r["instructions_per_sample"] > 0 and r["flash_bytes"] > 0


@settings(max_examples=examples(3), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(spec_dict=specs(max_dilation=64, max_channels=16, heads=("regression", "mulaw")), seed=st.integers(0, 999),
       precision=st.sampled_from(["int8", "int16x8"]))
def test_random_architectures_riscv32_equals_engine(tmp_path_factory, spec_dict, seed, precision):
    require_riscv()
    prog, _, x, c_dir, srcs, incs = emit_random_model(tmp_path_factory, spec_dict, seed, precision, tflm=False)
    codes = pipeline.quantize_input(prog, x[:1000])
    elf, _ = ctools.build_cortex_m(TARGET, srcs, incs, c_dir / "build")
    got, _ = ctools.run_qemu(TARGET, elf, codes, timeout=300, out_dtype=prog.dtype)
    np.testing.assert_array_equal(got, Engine(prog).run_sequence(codes))
