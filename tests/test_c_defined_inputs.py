"""The float C API is defined for every input (issue #12), and debug builds check the runtime's preconditions.

`<prefix>_step(state, float)` quantizes its input: NaN, +-Inf and values far outside the code range must
not reach a float -> int cast (undefined behaviour; UBSan: "nan is outside the range of representable
values of type 'short int'"). Here the emitted C of the tiny trained models (int8, int16x8) and of a mu-law
(categorical) head model is built with UBSan (float-cast-overflow included) and ASan, fed NaN, +-Inf, +-1e30,
+-FLT_MAX, denormals and ordinary values, and must exit 0 with finite outputs; NaN must act exactly as the
normalisation offset (the input zero point) and huge values exactly as the saturated codes.
Without NDEBUG the generated step and the kernels assert() their documented preconditions: a corrupted
ring head or plan value aborts instead of reading out of bounds; with -DNDEBUG (what edgewave measures)
the same sources compile warning-free and hold no assertion.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from edgewave import ctools
from edgewave.convert import pipeline
from edgewave.emit import pipeline as emit_pipeline

from conftest import TINY_SPEC
from test_convert import SPEECH_X, random_graph

CC = shutil.which("gcc") or shutil.which("cc")
WARN = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror"]
SANITIZE = ["-fsanitize=address,undefined,float-cast-overflow", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
PREFIX = "m"

pytestmark = pytest.mark.skipif(CC is None, reason="no host C compiler")

# Records of the driver's input file: (kind, float value, code); kind 0 steps m_step(value), kind 1 steps
# m_step_q(code) and converts the outputs to float exactly as m_step does, kind 2 steps m_step(M_NORM_OFFSET).
RECORD = np.dtype([("kind", "<u4"), ("x", "<f4"), ("code", "<i4")])

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include "m.h"

typedef struct { uint32_t kind; float x; int32_t code; } record;

static float from_codes(const m_q_t *y)
{
#ifdef M_MULAW_BITS
    return m_mulaw_decode(m_argmax(y));
#else
    return ((float)y[0] - (float)M_OUTPUT_ZERO_POINT) * M_OUTPUT_SCALE * M_NORM_SCALE + M_NORM_OFFSET;
#endif
}

int main(int argc, char **argv)
{
    static m_state s;
    m_q_t y[M_OUTPUTS];
    record r;
    FILE *fi, *fo;
    if (argc != 3 || !(fi = fopen(argv[1], "rb")) || !(fo = fopen(argv[2], "wb"))) return 2;
    m_init(&s);
    while (fread(&r, sizeof r, 1, fi) == 1) {
        float out;
        if (r.kind == 0) {
            out = m_step(&s, r.x);
        } else if (r.kind == 2) {
            out = m_step(&s, M_NORM_OFFSET);
        } else {
            m_step_q(&s, (m_in_t)r.code, y);
            out = from_codes(y);
        }
        if (!isfinite(out)) { fprintf(stderr, "non-finite output %g for input %g\n", (double)out, (double)r.x); return 3; }
        if (fwrite(&out, sizeof out, 1, fo) != 1) return 2;
    }
    fclose(fi);
    fclose(fo);
    return 0;
}
"""

# Debug builds: a corrupted state or plan value must stop at an assert().
CORRUPT = r"""
#include <stdio.h>
#include <string.h>
#include "m.h"
#include "edgewave_rt.h"

int main(int argc, char **argv)
{
    static m_state s;
    m_q_t y[M_OUTPUTS];
    int i;
    m_init(&s);
    for (i = 0; i < 10; ++i) m_step_q(&s, (m_in_t)(i * 37), y);
    if (argc > 1 && strcmp(argv[1], "head") == 0) {
        s.EW_HEAD = EW_RING_SIZE; /* one row past the end of its ring */
        m_step_q(&s, 1, y);
    } else if (argc > 1 && strcmp(argv[1], "plan") == 0) {
        /* a prepared fully-connected layer whose n_pairs breaks the documented layout (even, >= 2) */
        static const int32_t w[64] = {0};
        static int32_t x[4] = {0}; /* 4-byte aligned int16 pairs */
        static int16_t o[4];
        ew_fcq p;
        memset(&p, 0, sizeof p);
        p.w = w; p.n_out = 4; p.n_pairs = 3; p.mode = EW_FCQ_SAT;
        ew_fcq_sat_s16((const int16_t *)(const void *)x, &p, o);
    } else if (argc > 1 && strcmp(argv[1], "taps") == 0) {
        static const int8_t row[4] = {0};
        const int8_t *taps[1] = {row};
        int8_t o8[4];
        ew_pool_params pp = {-128, 127};
        ew_avgpool_s8(taps, 0, 4, &pp, o8); /* n_taps >= 1 */
    }
    puts("not stopped");
    return 0;
}
"""


def write_files(files: dict, c_dir: Path) -> Path:
    for rel, text in files.items():
        (c_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (c_dir / rel).write_text(text)
    return c_dir


@pytest.fixture(scope="module")
def mulaw_dir(tmp_path_factory):
    """A mu-law (categorical, 16 levels) head model with random weights and a non-trivial normalisation."""
    spec = TINY_SPEC.replace('head = "regression"', 'head = "mulaw"\nmulaw_bits = 4')
    graph, _ = random_graph(tomllib.loads(spec), 5)
    _, prog = pipeline.build(graph, SPEECH_X[30000:36000], "int16x8")
    files, _ = emit_pipeline.render({"receptive_field": graph.receptive_field,
                                     "normalization": {"offset": 0.25, "scale": 2.0}},
                                    prog, None, PREFIX)
    return write_files(files, tmp_path_factory.mktemp("mulaw") / "c"), prog


@pytest.fixture(scope="module", params=["int8", "int16x8", "mulaw"])
def model(request, convert_tiny, mulaw_dir, tmp_path_factory):
    """(C_DIR, program) of the emitted C."""
    if request.param == "mulaw":
        return mulaw_dir
    out = convert_tiny(request.param)
    c_dir = tmp_path_factory.mktemp(f"defined-{request.param}") / "c"
    emit_pipeline.write_c(str(out), str(c_dir), PREFIX, measure=False)
    _, prog, _ = pipeline.load(out)
    return c_dir, prog


def compile_c(c_dir: Path, main_src: str, exe: Path, flags) -> subprocess.CompletedProcess:
    main = exe.with_suffix(".c")
    main.write_text(main_src)
    srcs, incs = emit_pipeline.c_sources(c_dir, PREFIX)
    return subprocess.run([CC, *WARN, *flags, *[f"-I{i}" for i in incs], *map(str, srcs), str(main), "-o", str(exe),
                           "-lm"], capture_output=True, text=True)


def header_numbers(c_dir: Path) -> dict:
    text = (c_dir / f"{PREFIX}.h").read_text()
    num = {k: float(v.rstrip("fu")) for k, v in re.findall(r"#define M_(\w+) (\S+)", text)
           if re.fullmatch(r"-?[0-9.e+-]+[fu]?", v)}
    num["rings"] = [(h, int(n)) for h, n in zip(re.findall(r"uint32_t (head\d+);", text),
                                                re.findall(r"\bring\d+\[(\d+)\];", text))]
    return num


def run_records(exe: Path, records: np.ndarray, tmp: Path) -> np.ndarray:
    (tmp / "in.bin").write_bytes(records.tobytes())
    proc = subprocess.run([str(exe), str(tmp / "in.bin"), str(tmp / "out.bin")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stderr[-3000:]}"
    out = np.fromfile(tmp / "out.bin", dtype="<f4")
    assert out.shape == (len(records),)
    return out


SPECIALS = {  # value -> what it must act as: "zp" (the offset), "max" / "min" (the saturated codes), None (just finite)
    np.float32(np.nan): "zp", np.float32(np.inf): "max", np.float32(-np.inf): "min",
    np.float32(1e30): "max", np.float32(-1e30): "min",
    np.finfo(np.float32).max: "max", -np.finfo(np.float32).max: "min",
    np.float32(1e-40): None, np.float32(-1e-40): None, np.finfo(np.float32).smallest_subnormal: None,
    np.finfo(np.float32).tiny: None, np.float32(-0.0): None,
}


def test_step_is_defined_for_every_float(model, tmp_path):
    c_dir, prog = model
    exe = tmp_path / "driver"
    proc = compile_c(c_dir, DRIVER, exe, ["-O1", "-g", *SANITIZE])
    assert proc.returncode == 0, proc.stderr
    num = header_numbers(c_dir)
    info = np.iinfo(prog.input_dtype)
    offset, scale, zp = np.float32(num["NORM_OFFSET"]), np.float32(num["NORM_SCALE"]), int(num["INPUT_ZERO_POINT"])
    assert scale > 0 and num["INPUT_SCALE"] > 0
    # ordinary values around the offset, with every special value inserted again and again
    rng = np.random.default_rng(12)
    ordinary = (offset + scale * 0.5 * np.sin(np.arange(3000) * 0.05) + scale * 0.1 * rng.normal(size=3000))
    specials = list(SPECIALS)
    xs, acts = [], []
    for i, v in enumerate(ordinary.astype(np.float32)):
        xs.append(v)
        acts.append("ordinary")
        if i % 7 == 3:
            s = specials[(i // 7) % len(specials)]
            xs += [s] * (1 + i % 3)  # runs of specials, so that they fill the rings too
            acts += [SPECIALS[s] or "ordinary"] * (1 + i % 3)
    n = len(xs)
    floats = np.zeros(n, RECORD)
    floats["x"] = xs
    got = run_records(exe, floats, tmp_path)  # UBSan / ASan abort with a non-zero exit on any undefined behaviour
    assert np.isfinite(got).all()
    acts = np.array(acts)
    # NaN acts as the normalisation offset: as a float through m_step, and as the zero point code
    as_offset = floats.copy()
    as_offset["kind"][acts == "zp"] = 2
    np.testing.assert_array_equal(run_records(exe, as_offset, tmp_path), got, err_msg="NaN != NORM_OFFSET")
    as_codes = floats.copy()
    for act, code in (("zp", zp), ("max", info.max), ("min", info.min)):
        as_codes["kind"][acts == act] = 1
        as_codes["code"][acts == act] = code
    assert as_codes["kind"].sum() > 100
    np.testing.assert_array_equal(run_records(exe, as_codes, tmp_path), got,
                                  err_msg="NaN / huge values != the zero point / saturated codes through m_step_q")
    # and the zero point code is what the offset quantizes to
    np.testing.assert_array_equal(pipeline.quantize_input(prog, np.zeros(1, np.float32)), [zp])


def test_mulaw_decode_is_finite_for_every_level(mulaw_dir, tmp_path):
    c_dir, _ = mulaw_dir
    main = r"""
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include "m.h"
int main(void)
{
    const int levels[] = {INT_MIN, -1000000, -1, 0, 1, M_OUTPUTS / 2, M_OUTPUTS - 1, M_OUTPUTS, 1000000, INT_MAX};
    unsigned i;
    for (i = 0; i < sizeof levels / sizeof levels[0]; ++i) {
        const float v = m_mulaw_decode(levels[i]);
        if (!isfinite(v)) return 3;
        printf("%.9g\n", (double)v);
    }
    return 0;
}
"""
    exe = tmp_path / "decode"
    proc = compile_c(c_dir, main, exe, ["-O1", "-g", *SANITIZE])
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    v = [float(t) for t in run.stdout.split()]
    assert v[:4] == [v[3]] * 4 and v[-4:] == [v[6]] * 4  # clamped to the first / last level
    assert v[3] < v[5] < v[6]


def test_debug_builds_stop_at_corrupted_state_and_plans(model, tmp_path):
    c_dir, _ = model
    head, size = header_numbers(c_dir)["rings"][-1]
    exe = tmp_path / "corrupt"
    proc = compile_c(c_dir, CORRUPT, exe, ["-O1", "-g", f"-DEW_HEAD={head}", f"-DEW_RING_SIZE={size}u"])
    assert proc.returncode == 0, proc.stderr
    ok = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "not stopped" in ok.stdout, ok.stderr
    for what, phrase in (("head", head), ("plan", "n_pairs"), ("taps", "n_taps >= 1")):
        run = subprocess.run([str(exe), what], capture_output=True, text=True, timeout=60)
        assert run.returncode != 0 and "not stopped" not in run.stdout, (what, run.stdout, run.stderr)
        assert "Assertion" in run.stderr and phrase in run.stderr, (what, run.stderr)


def test_release_builds_are_clean_and_hold_no_assertion(model, tmp_path):
    """With -DNDEBUG (every build edgewave measures: ctools.CFLAGS) warning-free, and no assert left."""
    c_dir, _ = model
    assert "-DNDEBUG" in ctools.CFLAGS
    srcs, incs = emit_pipeline.c_sources(c_dir, PREFIX)
    compilers = [(CC, [])]
    if ctools.have_cortex_m_tools():
        compilers.append(("arm-none-eabi-gcc", list(ctools.TARGETS["cortex-m4"].cpu_flags)))
    for cc, cpu in compilers:
        # bare-metal Arm debug builds keep assert() (which links newlib's stdio and malloc) only on request
        variants = {(): bool(cpu), ("-DNDEBUG",): True, **({("-DEW_RT_ASSERT",): False} if cpu else {})}
        for k, (flags, no_assert) in enumerate(variants.items()):
            out = tmp_path / f"{Path(cc).name}{'-'.join(cpu)}{k}"
            out.mkdir()
            proc = subprocess.run([cc, *WARN, "-O2", *cpu, *flags, *[f"-I{d}" for d in incs], "-c", *map(str, srcs)],
                                  capture_output=True, text=True, cwd=out)
            assert proc.returncode == 0 and not proc.stderr.strip(), (cc, cpu, flags, proc.stderr)
            objs = sorted(map(str, out.glob("*.o")))
            assert len(objs) == len(srcs)
            nm = shutil.which(re.sub(r"g?cc$", "nm", cc))
            if nm is None:
                continue
            undefined = subprocess.run([nm, "-A", "-u", *objs], capture_output=True, text=True).stdout
            calls = [line for line in undefined.splitlines() if "assert" in line]
            assert not (no_assert and calls), (cc, cpu, flags, calls)
            assert no_assert or len(calls) >= 10, (cc, cpu, flags, calls)  # debug builds do check
