"""The prepared fast paths of the C runtime (firmware/src/ew_fcq.c, ew_eltq.c, ew_fast.h):
their emit-time constants (edgewave/emit/plan.py) and formulas against the numpy kernels.

The whole-model checks (host, ASan/UBSan, QEMU M4/M7/M33/M0+, random architectures) are in
tests/test_emit.py, which now goes through these paths; here the single-multiply
requantization and the int16 TANH/LOGISTIC tables are checked directly, in Python, over
wide random ranges, and the C kernels through ctypes on random cases."""

from __future__ import annotations

import ctypes
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgewave.emit import plan as plan_mod
from edgewave.integer import QuantParams, fixedpoint as fp, logistic, logistic_params, tanh, tanh_params
from edgewave.integer.sigmoid_table import SIGMOID_TABLE_UINT16

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "firmware" / "src"


def s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def rq_eval(x: int, rq) -> int:
    """ew_rq_apply in Python: hi32(x*m2 + 2^31 + a*2^32) >> shift, a = add + x + (x<0 ? neg : 0)."""
    m2, add, neg, shift = rq
    a = s32(add + x + (neg if x < 0 else 0))
    return s32((x * m2 + (1 << 31) + (a << 32)) >> 32) >> shift


def test_single_multiply_requantization_equals_double_rounding():
    rng = np.random.default_rng(3)
    checked = 0
    for case in range(3000):
        mult, shift = fp.quantize_multiplier(2.0 ** rng.uniform(-28, 0.0))
        if case % 40 == 0:
            mult = 1 << 30
        zp = int(rng.integers(-128, 128))
        xmax = int(2 ** rng.uniform(8, 31)) - 1
        rq = plan_mod._rq(mult, shift, zp, xmax)
        if rq is None:
            continue
        checked += 1
        xs = np.concatenate([rng.integers(-xmax, xmax + 1, 60), [-xmax, xmax, -1, 0, 1]]).astype(np.int64)
        want = fp.multiply_by_quantized_multiplier(xs, mult, shift) + zp
        got = np.array([rq_eval(int(x), rq) for x in xs])
        np.testing.assert_array_equal(got, want, err_msg=f"mult {mult} shift {shift} zp {zp}")
    assert checked > 1000


def test_int16_tanh_logistic_tables():
    text = (SRC / "ew_sigmoid_pairs.c").read_text()
    tables = {name: np.array([int(v) for v in re.findall(r"-?\d+", body)])
              for name, body in re.findall(r"ew_(\w+)_pairs\[512\] = \{(.*?)\};", text, re.S)}
    u = SIGMOID_TABLE_UINT16.astype(np.int64)
    t, lg = tables["tanh16"].reshape(256, 2), tables["logistic16"].reshape(256, 2)
    np.testing.assert_array_equal(t[:255, 0], (u[:255] - 32768) * 256 + 128)
    np.testing.assert_array_equal(t[:255, 1], u[1:] - u[:255])
    np.testing.assert_array_equal(lg[:255, 0], u[:255] * 512 + 512)
    np.testing.assert_array_equal(lg[:255, 1], u[1:] - u[:255])
    assert list(t[255]) == [32767 * 256 + 128, 0] and list(lg[255]) == [32767 * 1024 + 512, 0]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    so = tmp_path_factory.mktemp("fast") / "libfast.so"
    cmd = ["cc", "-O2", "-fPIC", "-shared", "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
           f"-I{ROOT / 'firmware' / 'include'}", *map(str, sorted(SRC.glob("*.c"))), "-o", str(so)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return ctypes.CDLL(str(so))


class T16(ctypes.Structure):
    _fields_ = [("mult", ctypes.c_int32), ("round", ctypes.c_int32), ("shift", ctypes.c_int32), ("kind", ctypes.c_int32)]


@pytest.mark.parametrize("kind", ["tanh", "logistic"])
def test_int16_tanh_logistic_kernel_all_inputs(lib, kind):
    rng = np.random.default_rng(5)
    x = np.arange(-32768, 32768, dtype=np.int16)
    out_q = QuantParams(2.0 ** -15, 0)
    for case in range(12):
        scale = 2.0 ** -12 if case == 0 else 10 ** rng.uniform(-5, -2.5)
        x_q = QuantParams(scale, 0)
        params = (tanh_params if kind == "tanh" else logistic_params)(x_q, out_q, "int16")
        t = plan_mod._t16q(params)
        if t is None:
            continue
        want = (tanh if kind == "tanh" else logistic)(x, x_q, out_q)
        got = np.zeros_like(x)
        fn = lib.ew_t16q_s16
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p]
        fn.restype = None
        st = T16(t[0], t[1], t[2], 1 if kind == "tanh" else 2)
        fn(x.ctypes.data, x.size, ctypes.byref(st), got.ctypes.data)
        np.testing.assert_array_equal(got, want, err_msg=f"{kind} scale {scale}")
