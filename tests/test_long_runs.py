"""Long streams without drift, reset to the exact initial state, and static analysis of the C."""

import os
import shutil
import subprocess

import numpy as np
import pytest

from edgewave import ctools
from edgewave.convert import pipeline
from edgewave.emit import pipeline as emit_pipeline
from edgewave.engine import Engine

IN_CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="module")
def emitted(convert_tiny, tmp_path_factory):
    out = convert_tiny("int16x8")
    c_dir = tmp_path_factory.mktemp("long") / "c"
    emit_pipeline.write_c(str(out), str(c_dir), "m", measure=False)
    _, prog, _ = pipeline.load(out)
    return prog, c_dir


def long_signal(prog, n, seed=0):
    """Speech-like codes: a random walk with bursts, covering the whole code range now and then."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(prog.input_dtype)
    x = np.cumsum(rng.normal(size=n)) * 0.02
    x = np.sin(x) * (0.3 + 0.7 * (rng.random(n) < 0.001).cumsum() % 2) + 0.1 * rng.normal(size=n)
    return pipeline.quantize_input(prog, (x * 3).astype(np.float32)).clip(info.min, info.max)


def spot_check(prog, codes, outputs, starts, width=300):
    """The model has a finite receptive field: outputs at t depend only on inputs t-RF+1..t, so a window
    recomputed from scratch must match the long run after its first RF samples."""
    rf = prog.receptive_field()
    for p in starts:
        lo = max(0, p - rf)
        ref = Engine(prog).run_sequence(codes[lo:p + width])
        np.testing.assert_array_equal(outputs[p:p + width], ref[p - lo:], err_msg=f"drift at sample {p}")


def test_ten_million_samples_on_the_host(emitted, tmp_path):
    prog, c_dir = emitted
    codes = long_signal(prog, 10_000_000)
    srcs, incs = emit_pipeline.c_sources(c_dir, "m")
    out = ctools.run_host(ctools.build_host(srcs, incs, tmp_path), codes, timeout=1200, out_dtype=prog.dtype)
    assert out.shape[0] == len(codes)
    spot_check(prog, codes, out, [5_000, 3_333_333, 7_654_321, len(codes) - 400])


@pytest.mark.skipif(not ctools.have_cortex_m_tools() and not IN_CI, reason="arm-none-eabi-gcc / qemu not installed")
def test_one_million_samples_on_cortex_m4(emitted, tmp_path):
    prog, c_dir = emitted
    codes = long_signal(prog, 1_000_000, seed=1)
    srcs, incs = emit_pipeline.c_sources(c_dir, "m")
    elf, _ = ctools.build_cortex_m("cortex-m4", srcs, incs, tmp_path)
    out, stats = ctools.run_qemu("cortex-m4", elf, codes, timeout=1800, out_dtype=prog.dtype)
    assert stats["samples"] == len(codes)
    spot_check(prog, codes, out, [1_000, 500_000, len(codes) - 400])


RESET_MAIN = r"""
#include <stdio.h>
#include <string.h>
#include "edgewave_model.h"
/* Run N steps, re-init, run the same N steps again: the outputs must repeat exactly. */
int main(void)
{
    static ew_model_state s;
    static ew_q_t first[4096][EW_OUTPUTS], again[4096][EW_OUTPUTS];
    unsigned seed = 1u;
    ew_q_t in[4096];
    for (int i = 0; i < 4096; ++i) { seed = seed * 1103515245u + 12345u; in[i] = (ew_q_t)(seed >> 16); }
    ew_model_init(&s);
    for (int i = 0; i < 4096; ++i) { ew_model_step_q(&s, in[i], first[i]); }
    ew_model_init(&s);
    for (int i = 0; i < 4096; ++i) { ew_model_step_q(&s, in[i], again[i]); }
    return memcmp(first, again, sizeof first) != 0;
}
"""


def test_init_returns_to_the_initial_state(emitted, tmp_path):
    _, c_dir = emitted
    main = tmp_path / "reset_main.c"
    main.write_text(RESET_MAIN)
    srcs, incs = emit_pipeline.c_sources(c_dir, "m")
    exe = tmp_path / "reset"
    cc = shutil.which("gcc") or shutil.which("cc")
    subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
                    *[f"-I{i}" for i in incs], *map(str, srcs), str(main), "-o", str(exe), "-lm"], check=True)
    assert subprocess.run([str(exe)]).returncode == 0


@pytest.mark.skipif(shutil.which("cppcheck") is None and not IN_CI, reason="cppcheck not installed")
def test_cppcheck_clean(emitted):
    _, c_dir = emitted
    proc = subprocess.run(["cppcheck", "--error-exitcode=1", "--enable=warning,portability,performance",
                           "--std=c99", "--inline-suppr", "-q", f"-I{c_dir}", f"-I{c_dir / 'edgewave_rt' / 'include'}",
                           f"-I{c_dir / 'edgewave_rt' / 'src'}", str(c_dir / "m.c"),
                           *map(str, sorted((c_dir / "edgewave_rt" / "src").glob("*.c")))],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
