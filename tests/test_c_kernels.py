"""The C runtime in firmware/ against the numpy kernels of edgewave.integer (0 LSB).

The runtime is compiled with the host ``cc`` into a shared library and every kernel is
called through ctypes on random inputs with random quantization (the same style as
tests/test_integer_kernels.py, which pins the numpy kernels to TFLM), with parameters
from the Python ``*_params`` functions: exactly the numbers the C emitter will write.
Also: every file compiles warning-free (C99, -Wall -Wextra -Wpedantic -Werror) for the
host and four Cortex-M cpus, a sanitizer (ASan + UBSan) run over random data and random
parameters across their whole documented ranges, and, when qemu-system-arm is there,
the Cortex-M builds (whose fully-connected kernels take the SMLAD path) run the same
kind of random cases against numpy expectations on emulated M4 / M7 / M33.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from edgewave import ctools
from edgewave import integer as K
from edgewave.integer import fixedpoint as fp
from edgewave.integer.sigmoid_table import SIGMOID_TABLE_UINT16

import quant_cases
from quant_cases import calibrated_quant, dequantize, fc_real, random_act_quant, random_fc_weights, realistic_bias

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
INCLUDE = FIRMWARE / "include"
SOURCES = sorted((FIRMWARE / "src").glob("*.c"))
HEADERS = [INCLUDE / "edgewave_rt.h", *sorted((FIRMWARE / "src").glob("*.h"))]
WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror"]
CORTEX_M = {cpu: ctools.TARGETS[cpu].cpu_flags for cpu in ("cortex-m4", "cortex-m0plus", "cortex-m7", "cortex-m33")}
CASES = 150
DTYPES = ("int8", "int16")
CTYPE = {"int8": ctypes.c_int8, "int16": ctypes.c_int16}
SFX = {"int8": "s8", "int16": "s16"}
ON_CI = os.environ.get("CI", "").lower() == "true"


def cross_compiler() -> str | None:
    found = shutil.which("arm-none-eabi-gcc")
    if ON_CI:
        assert found, "CI=true but arm-none-eabi-gcc is not installed: the Cortex-M builds must run on CI"
    return found


# -- the library -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    so = tmp_path_factory.mktemp("ewrt") / "libedgewave_rt.so"
    cmd = ["cc", "-O2", "-fPIC", "-shared", *WARNINGS, f"-I{INCLUDE}", *map(str, SOURCES), "-o", str(so)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lib = ctypes.CDLL(str(so))
    p, i32, i64, void = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64, None
    signatures = {
        "ew_fc_s8": [p, i32, i32, p, p, i32, p, p, p, p],
        "ew_fc_s16": [p, i32, i32, p, p, i32, p, p, p, p],
        "ew_tanh_s16": [p, i32, p, p],
        "ew_logistic_s16": [p, i32, p, p],
        "ew_lut_s8": [p, i32, p, p],
    }
    for s in ("s8", "s16"):
        signatures |= {
            f"ew_add_{s}": [p, p, i32, p, p],
            f"ew_mul_{s}": [p, p, i32, p, p],
            f"ew_relu_{s}": [p, i32, p, p],
            f"ew_requant_{s}": [p, i32, p, p],
            f"ew_avgpool_{s}": [p, i32, i32, p, p],
            f"ew_maxpool_{s}": [p, i32, i32, p, p],
            f"ew_concat_{s}": [p, p, i32, p],
        }
    for name, args in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, void
    lib.ew_multiply_by_quantized_multiplier.argtypes = [i32, i32, i32]
    lib.ew_multiply_by_quantized_multiplier.restype = i32
    lib.ew_multiply_by_quantized_multiplier_int64.argtypes = [i64, i32, i32]
    lib.ew_multiply_by_quantized_multiplier_int64.restype = i32
    return lib


_STRUCTS: dict[type, type] = {}


def scalar_fields(p) -> dict[str, int]:
    """The dataclass fields the C struct holds: every plain int, in declaration order."""
    return {f.name: getattr(p, f.name) for f in dataclasses.fields(p) if isinstance(getattr(p, f.name), int)}


def cstruct(p):
    """A ctypes copy of a params dataclass (int32 fields, same names and order as the C struct)."""
    values = scalar_fields(p)
    for name, v in values.items():
        assert -(2**31) <= v < 2**31, f"{type(p).__name__}.{name} = {v} does not fit int32"
    cls = _STRUCTS.get(type(p))
    if cls is None:
        cls = _STRUCTS[type(p)] = type(f"c_{type(p).__name__}", (ctypes.Structure,), {"_fields_": [(k, ctypes.c_int32) for k in values]})
    return cls(**values)


def ptr(a: np.ndarray):
    assert a.flags.c_contiguous
    return a.ctypes.data_as(ctypes.c_void_p)


def ptr_array(arrays):
    return (ctypes.c_void_p * max(len(arrays), 1))(*[a.ctypes.data for a in arrays])


def ref(struct):
    return ctypes.byref(struct)


# -- random quantization (tests/quant_cases.py, as in tests/test_integer_kernels.py) ------------

# the range's ends often: the saturating paths of the C kernels
random_input = functools.partial(quant_cases.random_input, extremes=True)


def assert_same(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert got.dtype == expected.dtype and got.shape == expected.shape, what
    if not np.array_equal(got, expected):
        bad = np.flatnonzero(got != expected)
        raise AssertionError(f"{what}: C differs from numpy at {bad.size} of {got.size} outputs, "
                             f"first {bad[:5].tolist()}: C {got.flat[bad[:5]].tolist()} numpy {expected.flat[bad[:5]].tolist()}")


# -- the header mirrors the params dataclasses ---------------------------------------------


def test_param_structs_mirror_the_dataclasses():
    """Each C struct has the dataclass's scalar fields in the same order, all int32_t,
    so the emitter can write ``{%s}`` of ``scalar_fields(p).values()``."""
    header = (INCLUDE / "edgewave_rt.h").read_text()
    declared = re.findall(r"typedef struct \{(.*?)\} (ew_\w+_params);", header, re.S)
    structs = {name: re.findall(r"(\w+)\s+(\w+);", body) for body, name in declared}
    expected = {
        "ew_fc_params": K.FCParams,
        "ew_add_params": K.AddParams,
        "ew_mul_params": K.MulParams,
        "ew_requant_params": K.RequantParams,
        "ew_transcendental_params": K.TranscendentalParams,
        "ew_pool_params": K.PoolParams,
    }
    assert set(structs) == set(expected)
    for cname, cls in expected.items():
        py_fields = [f.name for f in dataclasses.fields(cls) if f.name not in ("multipliers", "shifts")]
        assert [n for _, n in structs[cname]] == py_fields, cname
        assert {t for t, _ in structs[cname]} == {"int32_t"}, cname


def test_sigmoid_table_matches_python(lib):
    table = (ctypes.c_uint16 * 256).in_dll(lib, "ew_sigmoid_table_u16")
    np.testing.assert_array_equal(np.array(table, np.int64), SIGMOID_TABLE_UINT16)


# -- fixed-point primitives ------------------------------------------------------------


def test_multiply_by_quantized_multiplier(lib):
    rng = np.random.default_rng(10)
    edge = [0, 1, -1, 2, -2, 3, -3, 2**31 - 1, -(2**31), 2**30, -(2**30), 12345, -12345]
    fn = lib.ew_multiply_by_quantized_multiplier
    for case in range(400):
        mult, shift = fp.quantize_multiplier(2.0 ** rng.uniform(-33, 30.99))
        if case % 10 == 0:
            mult = int(rng.choice([0, 1 << 30, 2**31 - 1]))
        xs = np.array(edge + list(rng.integers(-(2**31), 2**31, 40)), np.int64)
        if case % 3 == 0:
            xs = xs >> int(rng.integers(0, 31))  # small values
        expected = fp.multiply_by_quantized_multiplier(xs, mult, shift)
        got = np.array([fn(int(x), mult, shift) for x in xs], np.int64)
        assert_same(got, expected, f"MultiplyByQuantizedMultiplier(x, {mult}, {shift})")


def test_multiply_by_quantized_multiplier_int64(lib):
    rng = np.random.default_rng(11)
    fn = lib.ew_multiply_by_quantized_multiplier_int64
    for case in range(400):
        mult, shift = fp.quantize_multiplier(2.0 ** rng.uniform(-33, 14.9))
        if case % 10 == 0:
            mult = int(rng.choice([0, 1 << 30, 0x7FFEFFFF, 0x7FFF0000, 2**31 - 1]))
        bits = int(rng.choice([20, 32, 40, 47, 63]))  # 63: the product wraps in int64
        xs = np.concatenate([[0, 1, -1, (1 << bits) - 1, -(1 << bits)], rng.integers(-(2**bits), 2**bits, 40)]).astype(np.int64)
        expected = fp.multiply_by_quantized_multiplier_int64(xs, mult, shift)
        got = np.array([fn(int(x), mult, shift) for x in xs], np.int64)
        assert_same(got, expected, f"int64 MultiplyByQuantizedMultiplier(x, {mult}, {shift})")


# -- FULLY_CONNECTED ---------------------------------------------------------------------


def run_c_fc(lib, taps, w, bias, p: K.FCParams, dtype):
    n_out, depth = w.shape
    n_taps, tap_len = len(taps), (taps[0].size if taps else 0)
    assert n_taps * tap_len == depth
    mult, shift = (np.array(v, np.int32) for v in p.per_channel(n_out))
    out = np.zeros(n_out, dtype)
    pp = cstruct(p)
    tap_ptrs = ptr_array(taps)
    w = np.ascontiguousarray(w)
    fn = lib.ew_fc_s8 if dtype == "int8" else lib.ew_fc_s16
    fn(tap_ptrs, n_taps, tap_len, ptr(w), None if bias is None else ptr(bias), n_out, ptr(mult), ptr(shift), ref(pp), ptr(out))
    return out


def random_fc_case(rng, dtype, case):
    """Random taps (some repeated, as ring-buffer rows can be), weights, bias, quantization."""
    n_taps, tap_len, n_out = int(rng.integers(1, 6)), int(rng.integers(1, 41)), int(rng.integers(1, 21))
    depth = n_taps * tap_len
    x_q = random_act_quant(rng, dtype)
    ring = [random_input(rng, tap_len, dtype) for _ in range(n_taps)]
    taps = [ring[int(rng.integers(0, n_taps))] if case % 7 == 0 else ring[t] for t in range(n_taps)]
    x = np.concatenate(taps)
    w_scales, w = random_fc_weights(rng, n_out, depth, per_channel=case % 4 != 0)
    if case % 11 == 0:
        w[:, : depth // 2] = rng.choice([-127, 127], (n_out, depth // 2))
    bias_dtype = np.int32 if dtype == "int8" else np.int64
    bias = None
    if case % 5:
        bias = realistic_bias(rng, x_q, w_scales, n_out, depth, bias_dtype)
        if case % 13 == 1:  # wild bias: the int32 accumulator (int8) or the int64 product (16x8) wraps
            info = np.iinfo(bias_dtype)
            bias = rng.integers(info.min, info.max, n_out, dtype=bias_dtype, endpoint=True)
    activation = ("NONE", "RELU", "RELU6")[case % 3]
    out_q = calibrated_quant(rng, fc_real(x, x_q, w, w_scales), dtype)
    return taps, x, w, bias, x_q, w_scales, out_q, activation


@pytest.mark.parametrize("dtype", DTYPES)
def test_fc(lib, dtype):
    rng = np.random.default_rng(100 + DTYPES.index(dtype))
    for case in range(CASES * 2):
        taps, x, w, bias, x_q, w_scales, out_q, activation = random_fc_case(rng, dtype, case)
        expected = K.fully_connected(x[None], w, bias, x_q, w_scales, out_q, activation)[0]
        p = K.fc_params(x_q, w_scales, out_q, activation, dtype)
        assert_same(run_c_fc(lib, taps, w, bias, p, dtype), expected, f"FC {dtype} case {case}")


# -- ADD / MUL ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["add", "mul"])
def test_add_mul(lib, op, dtype):
    rng = np.random.default_rng(200 + 10 * (op == "mul") + DTYPES.index(dtype))
    kernel, params, combine = (K.add, K.add_params, np.add) if op == "add" else (K.mul, K.mul_params, np.multiply)
    fn = getattr(lib, f"ew_{op}_{SFX[dtype]}")
    done = 0
    while done < CASES:
        n = int(rng.integers(1, 80))
        a, b = random_input(rng, n, dtype), random_input(rng, n, dtype)
        a_q, b_q = random_act_quant(rng, dtype), random_act_quant(rng, dtype)
        if op == "add" and dtype == "int16" and done % 4 == 3:  # TFLM's int16 ADD takes zero points
            a_q, b_q = (K.QuantParams(q.scale, int(rng.integers(-3000, 3000))) for q in (a_q, b_q))
        activation = ("NONE", "RELU", "RELU6")[done % 3]
        out_q = calibrated_quant(rng, combine(dequantize(a, a_q), dequantize(b, b_q)), dtype)
        if op == "add" and dtype == "int16" and done % 4 == 3:
            out_q = K.QuantParams(out_q.scale, int(rng.integers(-3000, 3000)))
        try:
            expected = kernel(a, b, a_q, b_q, out_q, activation)
        except ValueError:
            continue  # parameters TFLM would refuse
        p = params(a_q, b_q, out_q, dtype, activation)
        out = np.zeros(n, dtype)
        fn(ptr(a), ptr(b), n, ref(cstruct(p)), ptr(out))
        assert_same(out, expected, f"{op} {dtype} case {done}")
        inplace = a.copy()  # out may be an input
        fn(ptr(inplace), ptr(b), n, ref(cstruct(p)), ptr(inplace))
        assert_same(inplace, expected, f"{op} {dtype} in place")
        done += 1


# -- RELU / QUANTIZE -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["relu", "requant"])
def test_relu_requant(lib, op, dtype):
    rng = np.random.default_rng(300 + 10 * (op == "relu") + DTYPES.index(dtype))
    kernel, params = (K.relu, K.relu_params) if op == "relu" else (K.requantize, K.requant_params)
    fn = getattr(lib, f"ew_{op}_{SFX[dtype]}")
    for case in range(CASES):
        n = int(rng.integers(1, 100))
        x_q = random_act_quant(rng, dtype)
        if op == "requant" and dtype == "int16" and case % 4 == 3:
            x_q = K.QuantParams(x_q.scale, int(rng.integers(-3000, 3000)))
        x = random_input(rng, n, dtype)
        real = dequantize(x, x_q)
        out_q = calibrated_quant(rng, np.maximum(real, 0) if op == "relu" else real, dtype)
        if case % 10 == 9:  # ratios above 1: left shifts, saturation
            out_q = K.QuantParams(x_q.scale / 10 ** rng.uniform(0.5, 5), out_q.zero_point)
        expected = kernel(x, x_q, out_q)
        out = np.zeros(n, dtype)
        fn(ptr(x), n, ref(cstruct(params(x_q, out_q, dtype))), ptr(out))
        assert_same(out, expected, f"{op} {dtype} case {case}")


# -- TANH / LOGISTIC -----------------------------------------------------------------------


def _int16_scales(rng, op, n):
    exact = [2.0**-12, 2.0**-11] if op == "tanh" else [2.0**-12]
    other_pot = [2.0**-15, 2.0**-14, 2.0**-10, 2.0**-9, 2.0**-3, 1.0]
    # up to ~30: the input multiplier stays above 2**15 and x*multiplier wraps in int32
    return exact + other_pot + list(10 ** rng.uniform(-6, 1.5, n - len(exact) - len(other_pot)))


@pytest.mark.parametrize("op", ["tanh", "logistic"])
def test_tanh_logistic_s16(lib, op):
    """Every int16 input value for each input scale."""
    rng = np.random.default_rng(400 + (op == "logistic"))
    kernel, params = (K.tanh, K.tanh_params) if op == "tanh" else (K.logistic, K.logistic_params)
    fn = getattr(lib, f"ew_{op}_s16")
    x = np.arange(-32768, 32768, dtype=np.int16)
    for scale in _int16_scales(rng, op, CASES):
        x_q = K.QuantParams(scale, 0)
        expected = kernel(x, x_q, K.INT16_UNIT_OUTPUT)
        out = np.zeros_like(x)
        fn(ptr(x), x.size, ref(cstruct(params(x_q, K.INT16_UNIT_OUTPUT, "int16"))), ptr(out))
        assert_same(out, expected, f"{op} int16 scale {scale!r}")


@pytest.mark.parametrize("op", ["tanh", "logistic", "relu"])
def test_lut_s8(lib, op):
    """int8 TANH / LOGISTIC (and any int8 elementwise kernel) as a 256-entry table."""
    rng = np.random.default_rng(500 + ("tanh", "logistic", "relu").index(op))
    kernel = {"tanh": K.tanh, "logistic": K.logistic, "relu": K.relu}[op]
    x = np.arange(-128, 128, dtype=np.int8)
    for case in range(CASES):
        x_q = K.QuantParams(10 ** rng.uniform(-2.5, -0.5), int(rng.integers(-128, 128)))
        out_q = {"tanh": K.TANH_INT8_OUTPUT, "logistic": K.LOGISTIC_INT8_OUTPUT}.get(op) or random_act_quant(rng, "int8")
        lut = K.lut_s8(kernel, x_q, out_q)
        assert lut.dtype == np.int8 and lut.shape == (256,)
        xs = np.concatenate([x, random_input(rng, int(rng.integers(0, 50)), "int8")])
        out = np.zeros_like(xs)
        lib.ew_lut_s8(ptr(xs), xs.size, ptr(lut), ptr(out))
        assert_same(out, kernel(xs, x_q, out_q), f"{op} int8 table case {case}")


# -- pooling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["avgpool", "maxpool"])
def test_pooling(lib, op, dtype):
    """Per channel over n_taps tap vectors: the engine's [1, 1, n_taps, C] pool with a (1, n_taps) filter."""
    rng = np.random.default_rng(600 + 10 * (op == "maxpool") + DTYPES.index(dtype))
    kernel = K.average_pool_2d if op == "avgpool" else K.max_pool_2d
    fn = getattr(lib, f"ew_{op}_{SFX[dtype]}")
    for case in range(CASES):
        n_taps, channels = int(rng.integers(1, 12)), int(rng.integers(1, 40))
        q = random_act_quant(rng, dtype)
        taps = [random_input(rng, channels, dtype) for _ in range(n_taps)]
        activation = ("NONE", "RELU", "RELU6")[case % 3]
        x = np.stack(taps)[None, None]
        expected = kernel(x, q, (1, n_taps), (1, 1), activation).reshape(channels)
        out = np.zeros(channels, dtype)
        fn(ptr_array(taps), n_taps, channels, ref(cstruct(K.pool_params(q, dtype, activation))), ptr(out))
        assert_same(out, expected, f"{op} {dtype} case {case}")


# -- CONCATENATION -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_concat(lib, dtype):
    rng = np.random.default_rng(700 + DTYPES.index(dtype))
    fn = getattr(lib, f"ew_concat_{SFX[dtype]}")
    for case in range(CASES):
        q = random_act_quant(rng, dtype)
        parts = [random_input(rng, int(rng.integers(0 if case % 5 == 0 else 1, 20)), dtype) for _ in range(int(rng.integers(1, 6)))]
        expected = K.concatenation(parts, [q] * len(parts), q, axis=-1)
        out = np.zeros(expected.size, dtype)
        lens = np.array([a.size for a in parts], np.int32)
        fn(ptr_array(parts), ptr(lens), len(parts), ptr(out))
        assert_same(out, expected, f"concat {dtype} case {case}")


# -- builds --------------------------------------------------------------------------------


def _compile_all(compiler, flags, tmp_path):
    def one(src):
        obj = tmp_path / (src.stem + ".o")
        return src, subprocess.run([compiler, *flags, *WARNINGS, "-O2", f"-I{INCLUDE}", "-c", str(src), "-o", str(obj)],
                                   capture_output=True, text=True)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(one, SOURCES))
    failed = [f"{src.name}:\n{proc.stderr}" for src, proc in results if proc.returncode != 0 or proc.stderr.strip()]
    assert not failed, "\n".join(failed)


def test_compiles_clean_for_host(tmp_path):
    _compile_all("cc", [], tmp_path)
    # the header also stands alone, in C and C++
    (tmp_path / "h.c").write_text('#include "edgewave_rt.h"\nint main(void) { return 0; }\n')
    proc = subprocess.run(["cc", *WARNINGS, f"-I{INCLUDE}", "-c", str(tmp_path / "h.c"), "-o", str(tmp_path / "h.o")],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    if shutil.which("c++"):
        (tmp_path / "h.cc").write_text('#include "edgewave_rt.h"\nint main() { return 0; }\n')
        flags = ["-std=c++11", "-Wall", "-Wextra", "-Wpedantic", "-Werror"]
        proc = subprocess.run(["c++", *flags, f"-I{INCLUDE}", "-c", str(tmp_path / "h.cc"), "-o", str(tmp_path / "hcc.o")],
                              capture_output=True, text=True)
        assert proc.returncode == 0 and not proc.stderr, proc.stderr


@pytest.mark.parametrize("cpu", list(CORTEX_M))
def test_compiles_clean_for_cortex_m(cpu, tmp_path):
    compiler = cross_compiler()
    if not compiler:
        pytest.skip("arm-none-eabi-gcc is not installed (the Cortex-M builds are required when CI=true)")
    _compile_all(compiler, CORTEX_M[cpu], tmp_path)
    _compile_all(compiler, [*CORTEX_M[cpu], "-DEW_FORCE_PORTABLE"], tmp_path)


SANITIZER_DRIVER = r"""
/* Every kernel on random data with random parameters over their whole documented ranges,
 * each buffer allocated with its exact size (ASan catches any overrun). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "edgewave_rt.h"

static uint64_t state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
    return (uint32_t)(state >> 32);
}
static int32_t rint_in(int32_t lo, int32_t hi) /* hi - lo < 2^31 */
{
    return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1));
}
static int32_t r32(void) { return (int32_t)rnd(); }
static int64_t r64(void) { return (int64_t)(((uint64_t)rnd() << 32) | rnd()); }
static int32_t rmult(void)
{
    switch (rnd() % 8) {
    case 0: return 0;
    case 1: return INT32_MAX;
    case 2: return 1 << 30;
    default: return (int32_t)((1u << 30) | (rnd() & 0x3FFFFFFFu));
    }
}
static int32_t rval(int32_t lo, int32_t hi)
{
    switch (rnd() % 6) {
    case 0: return lo;
    case 1: return hi;
    default: return rint_in(lo, hi);
    }
}
static void *alloc(size_t n) { void *p = malloc(n ? n : 1); if (!p) abort(); return p; }
static int8_t *s8v(int32_t n)
{
    int8_t *v = alloc((size_t)n); int32_t i;
    for (i = 0; i < n; ++i) v[i] = (int8_t)rval(-128, 127);
    return v;
}
static int16_t *s16v(int32_t n)
{
    int16_t *v = alloc((size_t)n * 2); int32_t i;
    for (i = 0; i < n; ++i) v[i] = (int16_t)rval(-32768, 32767);
    return v;
}
static void act(int32_t lo, int32_t hi, int32_t *amin, int32_t *amax)
{
    int32_t a = rint_in(lo, hi), b = rint_in(lo, hi);
    if (rnd() % 2) { a = lo; b = hi; }
    *amin = a < b ? a : b; *amax = a < b ? b : a;
}

int main(void)
{
    long calls = 0;
    int iter;
    for (iter = 0; iter < 3000; ++iter) {
        const int32_t n_taps = rint_in(1, 5), tap_len = rint_in(0, 37), n_out = rint_in(0, 9);
        const int32_t depth = n_taps * tap_len, n = rint_in(0, 70);
        int32_t t, o;
        int8_t *taps8[5]; int16_t *taps16[5];
        int8_t *w = s8v(n_out * depth), *o8 = alloc((size_t)n_out);
        int16_t *o16 = alloc((size_t)n_out * 2);
        int32_t *b32 = alloc((size_t)n_out * 4), *mult = alloc((size_t)n_out * 4), *shift = alloc((size_t)n_out * 4);
        int64_t *b64 = alloc((size_t)n_out * 8);
        ew_fc_params fp8, fp16;
        for (t = 0; t < n_taps; ++t) { taps8[t] = s8v(tap_len); taps16[t] = s16v(tap_len); }
        for (o = 0; o < n_out; ++o) { b32[o] = r32(); b64[o] = r64(); mult[o] = rmult(); shift[o] = rint_in(-31, 31); }
        fp8.zp_in = rint_in(-128, 127); fp8.zp_out = rint_in(-128, 127); act(-128, 127, &fp8.act_min, &fp8.act_max);
        ew_fc_s8((const int8_t *const *)taps8, n_taps, tap_len, w, rnd() % 3 ? b32 : NULL, n_out, mult, shift, &fp8, o8);
        for (o = 0; o < n_out; ++o) shift[o] = rint_in(-31, 14);
        fp16.zp_in = 0; fp16.zp_out = 0; act(-32768, 32767, &fp16.act_min, &fp16.act_max);
        ew_fc_s16((const int16_t *const *)taps16, n_taps, tap_len, w, rnd() % 3 ? b64 : NULL, n_out, mult, shift, &fp16, o16);
        calls += 2;
        {
            ew_pool_params pp;
            int8_t *p8 = alloc((size_t)tap_len); int16_t *p16 = alloc((size_t)tap_len * 2);
            act(-128, 127, &pp.act_min, &pp.act_max);
            ew_avgpool_s8((const int8_t *const *)taps8, n_taps, tap_len, &pp, p8);
            ew_maxpool_s8((const int8_t *const *)taps8, n_taps, tap_len, &pp, p8);
            act(-32768, 32767, &pp.act_min, &pp.act_max);
            ew_avgpool_s16((const int16_t *const *)taps16, n_taps, tap_len, &pp, p16);
            ew_maxpool_s16((const int16_t *const *)taps16, n_taps, tap_len, &pp, p16);
            free(p8); free(p16);
            calls += 4;
        }
        {
            int32_t lens[5]; int8_t *c8 = alloc((size_t)depth); int16_t *c16 = alloc((size_t)depth * 2);
            for (t = 0; t < n_taps; ++t) lens[t] = tap_len;
            ew_concat_s8((const int8_t *const *)taps8, lens, n_taps, c8);
            ew_concat_s16((const int16_t *const *)taps16, lens, n_taps, c16);
            if (depth && (memcmp(c8 + depth - tap_len, taps8[n_taps - 1], (size_t)tap_len) != 0)) { puts("concat"); return 1; }
            free(c8); free(c16);
            calls += 2;
        }
        for (t = 0; t < n_taps; ++t) { free(taps8[t]); free(taps16[t]); }
        free(w); free(o8); free(o16); free(b32); free(b64); free(mult); free(shift);
        {
            int8_t *a8 = s8v(n), *b8 = s8v(n), *y8 = alloc((size_t)n), lut[256];
            int16_t *a16 = s16v(n), *b16 = s16v(n), *y16 = alloc((size_t)n * 2);
            ew_add_params ap; ew_mul_params mp; ew_requant_params rp; ew_transcendental_params tp;
            int k;
            for (k = 0; k < 256; ++k) lut[k] = (int8_t)rnd();
            ap.zp_a = rint_in(-128, 127); ap.zp_b = rint_in(-128, 127); ap.zp_out = rint_in(-128, 127);
            ap.left_shift = 20; ap.mult_a = rmult(); ap.shift_a = rint_in(-31, 31); ap.mult_b = rmult();
            ap.shift_b = rint_in(-31, 31); ap.mult_out = rmult(); ap.shift_out = rint_in(-31, 31);
            act(-128, 127, &ap.act_min, &ap.act_max);
            ew_add_s8(a8, b8, n, &ap, y8);
            ap.zp_a = rint_in(-32768, 32767); ap.zp_b = rint_in(-32768, 32767); ap.zp_out = rint_in(-32768, 32767);
            ap.left_shift = 15; act(-32768, 32767, &ap.act_min, &ap.act_max);
            ew_add_s16(a16, b16, n, &ap, y16);
            mp.zp_a = rint_in(-128, 127); mp.zp_b = rint_in(-128, 127); mp.zp_out = rint_in(-128, 127);
            mp.mult = rmult(); mp.shift = rint_in(-31, 31); act(-128, 127, &mp.act_min, &mp.act_max);
            ew_mul_s8(a8, b8, n, &mp, y8);
            mp.zp_a = mp.zp_b = mp.zp_out = 0; act(-32768, 32767, &mp.act_min, &mp.act_max);
            ew_mul_s16(a16, b16, n, &mp, y16);
            rp.zp_in = rint_in(-128, 127); rp.zp_out = rint_in(-128, 127); rp.mult = rmult(); rp.shift = rint_in(-31, 31);
            act(-128, 127, &rp.act_min, &rp.act_max);
            ew_relu_s8(a8, n, &rp, y8);
            ew_requant_s8(a8, n, &rp, a8);
            rp.zp_in = rint_in(-32768, 32767); rp.zp_out = rint_in(-32768, 32767); act(-32768, 32767, &rp.act_min, &rp.act_max);
            ew_relu_s16(a16, n, &rp, y16);
            ew_requant_s16(a16, n, &rp, a16);
            tp.zp_in = 0; tp.input_radius = 0;
            tp.input_multiplier = rnd() % 2 ? rint_in(0, 32767) : (int32_t)(rnd() >> 1);
            tp.input_left_shift = rint_in(0, 31);
            ew_tanh_s16(a16, n, &tp, y16);
            ew_logistic_s16(b16, n, &tp, b16);
            ew_lut_s8(a8, n, lut, y8);
            calls += 11;
            free(a8); free(b8); free(y8); free(a16); free(b16); free(y16);
        }
    }
    {
        int32_t acc = 0;
        acc += ew_multiply_by_quantized_multiplier(INT32_MIN, INT32_MIN, 31);
        acc += ew_multiply_by_quantized_multiplier(INT32_MAX, INT32_MAX, -31);
        acc += ew_multiply_by_quantized_multiplier_int64(INT64_MIN, INT32_MAX, 14);
        acc += ew_multiply_by_quantized_multiplier_int64(INT64_MAX, INT32_MAX, -31);
        printf("ok %ld calls (%ld)\n", calls, (long)acc);
    }
    return 0;
}
"""


def test_sanitizers(tmp_path):
    """ASan + UBSan over random data and random parameters: no overflow, no bad shift, no overrun."""
    driver = tmp_path / "driver.c"
    driver.write_text(SANITIZER_DRIVER)
    exe = tmp_path / "driver"
    flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g", "-O1"]
    proc = subprocess.run(["cc", *flags, *WARNINGS, f"-I{INCLUDE}", str(driver), *map(str, SOURCES), "-o", str(exe)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=0", UBSAN_OPTIONS="print_stacktrace=1")
    run = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0 and run.stdout.startswith("ok "), run.stdout + run.stderr
    assert "runtime error" not in run.stderr, run.stderr


# -- on emulated Cortex-M (the SMLAD paths of the fully-connected kernels) ------------------

# The boards of edgewave.ctools (its startup code and linker scripts in firmware/cortex-m), and a Cortex-M3
# without the DSP extension (the portable C on Arm): QEMU's AN385 is the AN386 with an M3, the same memory map.
QEMU_TARGETS = {
    **{cpu: ctools.TARGETS[cpu] for cpu in ("cortex-m4", "cortex-m7", "cortex-m33")},
    "cortex-m3": ctools.Target("cortex-m3", ("-mcpu=cortex-m3", "-mthumb"), "mps2-an385", "mps2-an386.ld"),
}

C_TYPES = {np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t", np.dtype(np.int32): "int32_t", np.dtype(np.int64): "int64_t"}


def c_literal(v: int, ctype: str) -> str:
    bits = 64 if ctype == "int64_t" else 32
    if v == -(2 ** (bits - 1)):
        return f"(-INT{bits}_C({2 ** (bits - 1) - 1}) - 1)"
    return f"INT64_C({v})" if bits == 64 else str(v)


class DeviceProgram:
    """A C main running kernel calls on constant inputs and comparing with numpy's outputs."""

    def __init__(self):
        self.decls, self.calls, self.n = [], [], 0

    def const(self, a: np.ndarray) -> str:
        self.n += 1
        ctype = C_TYPES[a.dtype]
        values = ", ".join(c_literal(int(v), ctype) for v in a.ravel()) or "0"
        self.decls.append(f"static const {ctype} k{self.n}[] = {{{values}}};")
        return f"k{self.n}"

    def params(self, p) -> str:
        self.n += 1
        ctype = {K.FCParams: "ew_fc_params", K.AddParams: "ew_add_params", K.MulParams: "ew_mul_params", K.RequantParams: "ew_requant_params",
                 K.TranscendentalParams: "ew_transcendental_params", K.PoolParams: "ew_pool_params"}[type(p)]
        self.decls.append(f"static const {ctype} k{self.n} = {{{', '.join(map(str, scalar_fields(p).values()))}}};")
        return f"&k{self.n}"

    def pointers(self, base: str, ctype: str, offsets) -> str:
        self.n += 1
        self.decls.append(f"static const {ctype} *const k{self.n}[] = {{{', '.join(f'{base} + {o}' for o in offsets)}}};")
        return f"k{self.n}"

    def call(self, what: str, expected: np.ndarray, call: str) -> None:
        """``call`` writes ``out``; compared with ``expected``."""
        exp = self.const(expected.ravel() if expected.size else np.zeros(1, expected.dtype))
        ctype = C_TYPES[expected.dtype]
        self.calls.append(f"    {{ {ctype} out[{max(expected.size, 1)}] = {{0}}; {call}; "
                          f"fails += check(out, {exp}, {expected.size} * sizeof(out[0]), \"{what}\"); }}")

    def source(self) -> str:
        return "\n".join([
            "#include <stdint.h>", "#include <stdio.h>", "#include <string.h>", '#include "edgewave_rt.h"',
            *self.decls,
            "static int check(const void *got, const void *exp, size_t n, const char *what)",
            "{ if (memcmp(got, exp, n) == 0) return 0; printf(\"MISMATCH %s\\n\", what); return 1; }",
            "int main(void)", "{", "    int fails = 0;", *self.calls,
            '    puts(fails ? "FAILED" : "PASS");', "    return fails;", "}", ""])


def ring_of(prog: DeviceProgram, taps, dtype) -> str:
    """The tap vectors laid out in one buffer from an odd offset (unaligned loads), as pointers."""
    ring = np.concatenate([np.zeros(1, dtype), *taps])
    base = prog.const(ring)
    offsets, at = [], 1
    for t in taps:
        offsets.append(at)
        at += t.size
    return prog.pointers(base, C_TYPES[np.dtype(dtype)], offsets)


def device_program() -> DeviceProgram:
    rng = np.random.default_rng(900)
    prog = DeviceProgram()
    for dtype in DTYPES:
        s = SFX[dtype]
        for case in range(60):
            taps, x, w, bias, x_q, w_scales, out_q, activation = random_fc_case(rng, dtype, case)
            expected = K.fully_connected(x[None], w, bias, x_q, w_scales, out_q, activation)[0]
            p = K.fc_params(x_q, w_scales, out_q, activation, dtype)
            mult, shift = (np.array(v, np.int32) for v in p.per_channel(w.shape[0]))
            b = "NULL" if bias is None else prog.const(bias)
            prog.call(f"fc_{s} {case}", expected,
                      f"ew_fc_{s}({ring_of(prog, taps, dtype)}, {len(taps)}, {taps[0].size}, {prog.const(w)}, {b}, {w.shape[0]}, "
                      f"{prog.const(mult)}, {prog.const(shift)}, {prog.params(p)}, out)")
        for case in range(12):
            n = int(rng.integers(1, 40))
            a, b = random_input(rng, n, dtype), random_input(rng, n, dtype)
            a_q, b_q = random_act_quant(rng, dtype), random_act_quant(rng, dtype)
            for op, kernel, params, combine in (("add", K.add, K.add_params, np.add), ("mul", K.mul, K.mul_params, np.multiply)):
                out_q = calibrated_quant(rng, combine(dequantize(a, a_q), dequantize(b, b_q)), dtype)
                try:
                    expected = kernel(a, b, a_q, b_q, out_q, "RELU" if case % 2 else "NONE")
                except ValueError:
                    continue
                p = params(a_q, b_q, out_q, dtype, "RELU" if case % 2 else "NONE")
                prog.call(f"{op}_{s} {case}", expected, f"ew_{op}_{s}({prog.const(a)}, {prog.const(b)}, {n}, {prog.params(p)}, out)")
            out_q = calibrated_quant(rng, dequantize(a, a_q), dtype)
            for op, kernel, params in (("relu", K.relu, K.relu_params), ("requant", K.requantize, K.requant_params)):
                prog.call(f"{op}_{s} {case}", kernel(a, a_q, out_q),
                          f"ew_{op}_{s}({prog.const(a)}, {n}, {prog.params(params(a_q, out_q, dtype))}, out)")
            taps = [random_input(rng, n, dtype) for _ in range(int(rng.integers(1, 6)))]
            for op, kernel in (("avgpool", K.average_pool_2d), ("maxpool", K.max_pool_2d)):
                expected = kernel(np.stack(taps)[None, None], a_q, (1, len(taps)), (1, 1), "RELU" if case % 2 else "NONE").ravel()
                p = K.pool_params(a_q, dtype, "RELU" if case % 2 else "NONE")
                prog.call(f"{op}_{s} {case}", expected,
                          f"ew_{op}_{s}({ring_of(prog, taps, dtype)}, {len(taps)}, {n}, {prog.params(p)}, out)")
            lens = prog.const(np.array([t.size for t in taps], np.int32))
            prog.call(f"concat_{s} {case}", np.concatenate(taps), f"ew_concat_{s}({ring_of(prog, taps, dtype)}, {lens}, {len(taps)}, out)")
    x16 = np.arange(-32768, 32768, 97, dtype=np.int16)
    x8 = np.arange(-128, 128, dtype=np.int8)
    for scale in _int16_scales(rng, "tanh", 12):
        x_q = K.QuantParams(scale, 0)
        for op, kernel, params in (("tanh", K.tanh, K.tanh_params), ("logistic", K.logistic, K.logistic_params)):
            p = params(x_q, K.INT16_UNIT_OUTPUT, "int16")
            prog.call(f"{op}_s16 {scale}", kernel(x16, x_q, K.INT16_UNIT_OUTPUT),
                      f"ew_{op}_s16({prog.const(x16)}, {x16.size}, {prog.params(p)}, out)")
        x_q = K.QuantParams(10 ** rng.uniform(-2.5, -0.5), int(rng.integers(-128, 128)))
        lut = K.lut_s8(K.tanh, x_q, K.TANH_INT8_OUTPUT)
        prog.call(f"lut_s8 {scale}", K.tanh(x8, x_q, K.TANH_INT8_OUTPUT), f"ew_lut_s8({prog.const(x8)}, 256, {prog.const(lut)}, out)")
    return prog


@pytest.fixture(scope="module")
def device_source(tmp_path_factory):
    path = tmp_path_factory.mktemp("device") / "cases.c"
    path.write_text(device_program().source())
    return path


@pytest.mark.parametrize("cpu", list(QEMU_TARGETS))
def test_on_emulated_cortex_m(cpu, device_source, tmp_path):
    """Every kernel, built for the cpu (-O2, DSP paths where the cpu has them), run in QEMU."""
    if not cross_compiler() or not ctools.have_cortex_m_tools():
        pytest.skip("needs arm-none-eabi-gcc, newlib and qemu-system-arm")
    target = QEMU_TARGETS[cpu]
    elf, _ = ctools.build_cortex_m(target, SOURCES, [INCLUDE], tmp_path, main=device_source)
    run = ctools.qemu_run(target, elf, tmp_path, timeout=120)
    output = run.stdout + run.stderr  # semihosting writes go to stderr
    assert run.returncode == 0 and output.strip().endswith("PASS"), output[-3000:]
    objdump = shutil.which("arm-none-eabi-objdump")
    if objdump and cpu != "cortex-m3":  # the fully-connected kernels did take the DSP path
        disassembly = subprocess.run([objdump, "-d", str(elf)], capture_output=True, text=True).stdout
        assert "smlad" in disassembly and "smlald" in disassembly
