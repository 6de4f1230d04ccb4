"""The C tooling: host and QEMU Cortex-M and RISC-V runs of a dummy model equal its Python reference; the
runner's instruction counts are exact on a loop of known length."""

import functools
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from edgewave import ctools
from edgewave.errors import UserError

DUMMY = Path(__file__).resolve().parent / "c" / "dummy_model"
SOURCES = [DUMMY / "dummy_model.c"]
LOOP = Path(__file__).resolve().parent / "c" / "loop_model"
FLAVOURS = {"int16": (np.int16, ()), "int8": (np.int8, ("EW_DUMMY_INT8",))}
CORTEX = [name for name in ctools.TARGETS if name != "host"]
RUNNABLE = [name for name in CORTEX if ctools.TARGETS[name].machine]
COEF = np.array([3, -5, 7, -2, 1, 4, -6, 2])


def dummy_reference(codes: np.ndarray) -> np.ndarray:
    """Python twin of tests/c/dummy_model/dummy_model.c."""
    info = np.iinfo(codes.dtype)
    fir = np.convolve(codes.astype(np.int64), COEF)[: len(codes)]
    acc, accs = 0, []
    for f in fir.tolist():
        acc = ((acc * 7) >> 3) + (f >> 2)
        accs.append(acc)
    out = np.stack([np.array(accs, dtype=np.int64) >> 2, fir >> 1], axis=1)
    return np.clip(out, info.min, info.max).astype(codes.dtype)


def make_codes(dtype, n=3000, seed=7):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    q = n // 4
    parts = [rng.integers(info.min, info.max + 1, q),                  # saturates
             rng.integers(-(info.max // 100) - 1, info.max // 100 + 1, q),  # stays in range
             np.linspace(info.min, info.max, q).round(),
             np.resize(np.repeat([info.max, 0, info.min, 1], 40), n - 3 * q)]  # saturates both
    return np.concatenate(parts).astype(dtype)


def require_arm_tools(target="cortex-m4"):
    """The cross tools of `target` (its toolchain: Arm or RISC-V)."""
    if ctools.have_tools(target):
        return
    hint = ctools.TARGETS[target].toolchain.install
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the {target} tools are missing: {hint}")
    pytest.skip(f"{target} tools missing ({hint})")


def assert_quiet(out_dir):
    log = (Path(out_dir) / "build.log").read_text()
    assert "warning:" not in log.lower() and "note:" not in log, log


@functools.lru_cache(maxsize=None)
def cortex_build(target, flavour, root):
    out = Path(root) / f"{target}-{flavour}"
    elf, sizes = ctools.build_cortex_m(target, SOURCES, [DUMMY], out, defines=FLAVOURS[flavour][1])
    return elf, sizes, out


@pytest.fixture(scope="module")
def build_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("ctools"))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_host_matches_reference_under_sanitizers(flavour, tmp_path):
    dtype, defines = FLAVOURS[flavour]
    exe = ctools.build_host(SOURCES, [DUMMY], tmp_path, defines=defines, sanitize=True)
    assert_quiet(tmp_path)
    codes = make_codes(dtype)
    out = ctools.run_host(exe, codes)
    assert out.dtype == dtype and out.shape == (len(codes), 2)
    np.testing.assert_array_equal(out, dummy_reference(codes))
    np.testing.assert_array_equal(ctools.run_host(exe, codes[:0]), np.zeros((0, 0), dtype))


def test_host_runner_times_the_step_alone(tmp_path):
    """`simulate --backend c` reports the step's own time: the runner counts every step it times, and the
    time is part of the run's wall time, not the process start or the file I/O around it."""
    dtype, defines = FLAVOURS[next(iter(FLAVOURS))]
    exe = ctools.build_host(SOURCES, [DUMMY], tmp_path, defines=defines)
    codes = make_codes(dtype)
    timing = {}
    t0 = time.perf_counter()
    ctools.run_host(exe, codes, timing=timing)
    wall = time.perf_counter() - t0
    assert timing["steps"] == len(codes)
    assert 0 < timing["step_seconds"] < wall


def test_host_errors_are_one_line(tmp_path):
    exe = ctools.build_host(SOURCES, [DUMMY], tmp_path)
    proc = subprocess.run([exe, tmp_path / "missing.bin", tmp_path / "out.bin"], capture_output=True, text=True)
    assert proc.returncode != 0 and proc.stderr.startswith("error: cannot open input"), proc.stderr
    (tmp_path / "odd.bin").write_bytes(b"\x01\x02\x03")
    proc = subprocess.run([exe, tmp_path / "odd.bin", tmp_path / "out.bin"], capture_output=True, text=True)
    assert proc.returncode != 0 and "multiple of sizeof" in proc.stderr
    with pytest.raises(UserError, match="int8 or int16"):
        ctools.run_host(exe, np.zeros(4, np.float32))
    bad = tmp_path / "bad.c"
    bad.write_text("int f(void) { int unused; return 0; }\n")
    with pytest.raises(UserError, match=r"host C build failed: .*error: unused variable"):
        ctools.build_host([bad, *SOURCES], [DUMMY], tmp_path / "bad")


def test_missing_tools_give_install_hint(monkeypatch, tmp_path):
    monkeypatch.setattr(ctools.shutil, "which", lambda name: None)
    assert not ctools.have_cortex_m_tools()
    with pytest.raises(UserError, match="install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm") as e:
        ctools.build_cortex_m("cortex-m4", SOURCES, [DUMMY], tmp_path)
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="unknown Cortex-M target"):
        ctools.build_cortex_m("cortex-m99", SOURCES, [DUMMY], tmp_path)


@pytest.mark.qemu
@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("target", CORTEX)
def test_cortex_m_builds_warning_free(target, flavour, build_root):
    require_arm_tools(target)
    elf, sizes, out = cortex_build(target, flavour, build_root)
    assert elf.is_file()
    assert_quiet(out)
    assert sizes["text"] > 0 and sizes["data"] >= 0 and sizes["bss"] > 0
    model = sizes["model"]
    assert 0 < model["text"] < sizes["text"] and model["rodata"] >= len(COEF) * 4


@pytest.mark.qemu
@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("target", RUNNABLE)
def test_qemu_matches_reference_and_counts_instructions(target, flavour, build_root):
    require_arm_tools(target)
    dtype = FLAVOURS[flavour][0]
    elf, _, _ = cortex_build(target, flavour, build_root)
    codes = make_codes(dtype)
    out, stats = ctools.run_qemu(target, elf, codes, timeout=120)
    np.testing.assert_array_equal(out, dummy_reference(codes))
    assert stats["samples"] == len(codes)
    assert 0 < stats["max_step"] and stats["max_step"] * len(codes) >= stats["instructions"] > len(codes)
    again = ctools.run_qemu(target, elf, codes, timeout=120)
    assert again[1] == stats and np.array_equal(again[0], out)
    _, half = ctools.run_qemu(target, elf, codes[: len(codes) // 2], timeout=120)
    assert 0 < half["instructions"] < stats["instructions"]


def test_qemu_failure_is_a_user_error(build_root, tmp_path):
    require_arm_tools()
    elf, _, _ = cortex_build("cortex-m4", "int16", build_root)
    with pytest.raises(UserError, match="QEMU mps2-an500 failed"):
        ctools.run_qemu("cortex-m7", tmp_path / "missing.elf", make_codes(np.int16, 10))
    with pytest.raises(UserError, match="did not finish"):
        ctools.run_qemu("cortex-m4", elf, make_codes(np.int16, 200_000), timeout=0.01)


@pytest.mark.qemu
@pytest.mark.parametrize("target", RUNNABLE)
def test_qemu_counts_a_known_loop_exactly(target, tmp_path):
    """Every board's counter (SysTick, minstret) and its ticks-per-instruction scale: a step of input k runs
    exactly 2 k instructions more than one of input 0 (tests/c/loop_model), in total and in the longest step."""
    require_arm_tools(target)
    elf, _ = ctools.build_cortex_m(target, [LOOP / "loop_model.c"], [LOOP], tmp_path)
    assert_quiet(tmp_path)
    n = 50
    _, base = ctools.run_qemu(target, elf, np.zeros(n, np.int16), timeout=60)
    for k in (1, 7, 1000):
        out, stats = ctools.run_qemu(target, elf, np.full(n, k, np.int16), timeout=60)
        assert (out[:, 0] == k).all() and stats["samples"] == n
        assert stats["instructions"] - base["instructions"] == 2 * k * n
        assert stats["max_step"] - base["max_step"] == 2 * k


@pytest.mark.qemu
@pytest.mark.parametrize("target", RUNNABLE)
def test_profile_marks_count_each_call_exactly(target, tmp_path):
    """An EW_PROFILE build attributes every instruction between two marks to its call: the loop model's
    two calls of k and 2 k iterations cost exactly 2 k n and 4 k n more than at k = 0, its tail nothing more."""
    require_arm_tools(target)
    elf, _ = ctools.build_cortex_m(target, [LOOP / "loop_model.c"], [LOOP], tmp_path, defines=("EW_PROFILE",))
    assert_quiet(tmp_path)
    n = 40
    _, base = ctools.run_qemu(target, elf, np.zeros(n, np.int16), timeout=60)
    assert len(base["profile"]) == 3
    for k in (1, 9, 500):
        _, stats = ctools.run_qemu(target, elf, np.full(n, k, np.int16), timeout=60)
        extra = [a - b for a, b in zip(stats["profile"], base["profile"])]
        assert extra == [2 * k * n, 4 * k * n, 0]
        assert stats["instructions"] - base["instructions"] == 6 * k * n
