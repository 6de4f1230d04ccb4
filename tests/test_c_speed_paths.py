"""The prepared fast paths of the C runtime (firmware/src/ew_fcq.c, ew_eltq.c, ew_fast.h):
their emit-time constants (edgewave/emit/pack.py) and formulas against the numpy kernels.

Each single-multiply form is checked in Python over wide random ranges (the int16 TANH /
LOGISTIC tables over every table input), then the fused C kernels (a fully-connected layer
with its function, a whole gated unit, a residual ADD, a concatenation read in place) run
in small synthetic programs with random weights and random quantization, pushed into
saturation, on the host (plain C, and ASan + UBSan), on emulated Cortex-M4 (the DSP
paths) and M0+ (the portable C on Arm), against the numpy engine. The whole-model checks
are in tests/test_emit.py."""

from __future__ import annotations

import ctypes
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgewave import ctools
from edgewave.program import Op, Program, Tensor
from edgewave.emit import pipeline as emit_pipeline
from edgewave.emit import pack
from edgewave.emit import plan as plan_mod
from edgewave.engine import Engine
from edgewave.integer import (
    INT16_UNIT_OUTPUT,
    LOGISTIC_INT8_OUTPUT,
    TANH_INT8_OUTPUT,
    QuantParams,
    fixedpoint as fp,
    logistic,
    logistic_params,
    tanh,
    tanh_params,
)
from edgewave.integer.sigmoid_table import SIGMOID_TABLE_UINT16

from conftest import require

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "firmware" / "src"


def s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def hi32(v: int) -> int:
    return v >> 32


# -- the formulas ----------------------------------------------------------------------------


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
        rq = pack.rq_form(mult, shift, zp, xmax)
        if rq is None:
            continue
        checked += 1
        xs = np.concatenate([rng.integers(-xmax, xmax + 1, 60), [-xmax, xmax, -1, 0, 1]]).astype(np.int64)
        want = fp.multiply_by_quantized_multiplier(xs, mult, shift) + zp
        got = np.array([rq_eval(int(x), rq) for x in xs])
        np.testing.assert_array_equal(got, want, err_msg=f"mult {mult} shift {shift} zp {zp}")
        if rq[2] == -1 and xmax < (1 << 30):  # the int8 kernels' doubled accumulator (rq8)
            got2 = np.array([s32(hi32(2 * int(x) * mult + (1 << 31) + ((rq[1] + (-1 if x < 0 else 0)) << 32))) >> rq[3]
                             for x in xs])
            np.testing.assert_array_equal(got2, want, err_msg=f"doubled: mult {mult} shift {shift} zp {zp}")
    assert checked > 1000


def test_int16_fully_connected_single_multiply():
    """TFLM's int64 requantization (16-bit multiplier, single rounding) as one SMMULR."""
    rng = np.random.default_rng(4)
    checked = 0
    for _ in range(2000):
        mult, shift = fp.quantize_multiplier(2.0 ** rng.uniform(-17.9, -0.01))
        if not -17 <= shift <= -1:
            continue
        checked += 1
        reduced = (mult + (1 << 15)) >> 16 if mult < 0x7FFF0000 else 0x7FFF
        r = reduced << (17 + shift)
        assert 0 < r < (1 << 31)
        acc = np.concatenate([rng.integers(-(1 << 31) + 1, 1 << 31, 40), [-(1 << 31) + 1, (1 << 31) - 1, -1, 0, 1]])
        want = fp.multiply_by_quantized_multiplier_int64(acc.astype(np.int64), mult, shift)
        got = np.array([hi32(int(a) * r + (1 << 31)) for a in acc])
        np.testing.assert_array_equal(got, want)
    print(f"int16 FC single multiply: {checked} of 2000 multipliers in range, checked")
    assert checked >= 1800, f"only {checked} of 2000 multipliers were in range"


def test_int16_fully_connected_wide_shift():
    """EW_FCQ_WIDE: TFLM's int64 requantization with shifts below -17 as SMMUL then one rounding shift,
    (hi32(acc * r) + 2^(e-1)) >> e, for every e the call's other channels allow."""
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(1500):
        mult, shift = fp.quantize_multiplier(2.0 ** rng.uniform(-31.0, -17.0))
        n = 15 - shift
        reduced = (mult + (1 << 15)) >> 16 if mult < 0x7FFF0000 else 0x7FFF
        for e in range(max(1, n - 32), n - 16):  # this channel's n the largest of the call, or not
            k = 32 + e - n
            if reduced << k >= 1 << 31:
                continue
            checked += 1
            r = reduced << k
            acc = np.concatenate([rng.integers(-(1 << 31) + 1, 1 << 31, 12), [-(1 << 31) + 1, (1 << 31) - 1, -1, 0, 1]])
            want = fp.multiply_by_quantized_multiplier_int64(acc.astype(np.int64), mult, shift)
            got = np.array([(s32((int(a) * r) >> 32) + (1 << (e - 1))) >> e for a in acc])
            np.testing.assert_array_equal(got, want, err_msg=f"mult {mult} shift {shift} e {e}")
    assert checked > 3000, checked


@pytest.mark.parametrize("left_shift, lo, hi", [(15, -32768, 32767), (20, -255, 255)])
def test_add_input_single_multiply(left_shift, lo, hi):
    """ew_addin: MBQM(d << left_shift, m, s) == smmlar(d << (left_shift + 1), m, c + (d < 0 ? neg : 0)) >> e."""
    rng = np.random.default_rng(5)
    d = np.unique(np.concatenate([rng.integers(lo, hi + 1, 300), [lo, hi, -1, 0, 1]])).astype(np.int64)
    for case in range(600):
        real = 0.5 if case % 10 == 0 else 2.0 ** rng.uniform(-30, -1.0001)
        m, s = fp.quantize_multiplier_smaller_than_one(real)
        q = pack.addin_form(0, m, s, left_shift, left_shift == 20)
        assert q is not None
        _, sh, mult, c, neg, e = q
        want = fp.multiply_by_quantized_multiplier(fp.wrap_int32(d << left_shift), m, s)
        got = [(hi32((int(x) << sh) * mult + (1 << 31) + ((c + (neg if x < 0 else 0)) << 32))) >> e for x in d]
        np.testing.assert_array_equal(got, want, err_msg=f"mult {m} shift {s}")


def tflm_table_value(kind: str, v: np.ndarray) -> np.ndarray:
    """TFLM's int16 TANH / LOGISTIC as a function of the table input v (edgewave.integer.kernels)."""
    u = SIGMOID_TABLE_UINT16.astype(np.int64)
    a = np.abs(v)
    if kind == "tanh":
        uh = np.minimum(a >> 8, 254)
        r = np.where((a >> 8) >= 255, 0xFFFF << 8, (u[uh] << 8) + (a & 255) * (u[uh + 1] - u[uh]))
        return np.where(v >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1) >> 8
    uh = np.minimum(a >> 9, 254)
    r = np.where((a >> 9) >= 255, 0x7FFF << 10, (u[uh] << 9) + (a & 511) * (u[uh + 1] - u[uh]))
    return np.where(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1) >> 10


def signed_table(kind: str) -> np.ndarray:
    """[512, 2]: per segment j = -256..255 the smallest base B and the slope S with
    (B + v * S) >> out_shift equal to TFLM for every v of the segment (ew_sigmoid_pairs.c)."""
    seg, sh = (8, 8) if kind == "tanh" else (9, 10)
    u = SIGMOID_TABLE_UINT16.astype(np.int64)
    out = []
    for j in range(-256, 256):
        v = np.arange(j << seg, (j + 1) << seg, dtype=np.int64)
        h = j if j >= 0 else -j - 1
        s = int(u[h + 1] - u[h]) if h < 255 else 0
        out.append((int(np.max((tflm_table_value(kind, v) << sh) - v * s)), s))
    return np.array(out, np.int64)


def test_int16_tanh_logistic_signed_tables():
    text = (SRC / "ew_sigmoid_pairs.c").read_text()
    body = re.search(r"ew_t16_sgn\[2048\] = \{(.*?)\};", text, re.S).group(1)
    table = np.array([int(v) for v in re.findall(r"-?\d+", body)]).reshape(512, 4)
    v = np.arange(-(1 << 19), 1 << 19, dtype=np.int64)  # beyond every clamp: the end segments have slope 0
    for kind, cols, seg, sh in (("tanh", slice(0, 2), 8, 8), ("logistic", slice(2, 4), 9, 10)):
        np.testing.assert_array_equal(table[:, cols], signed_table(kind), err_msg=kind)
        assert table[0, cols][1] == 0 and table[511, cols][1] == 0
        j = np.clip(v >> seg, -256, 255) + 256
        got = (table[j, cols.start] + v * table[j, cols.start + 1]) >> sh
        np.testing.assert_array_equal(got, tflm_table_value(kind, np.clip(v, -(1 << 20), 1 << 20)), err_msg=kind)


def test_int16_table_input_single_multiply():
    """(x * mult + round) >> shift == hi32((x << t_shift) * t_mult + 2^31) for every int16 x."""
    rng = np.random.default_rng(6)
    x = np.arange(-32768, 32768, dtype=np.int64)
    checked = 0
    for case in range(60):
        scale = 2.0 ** -12 if case == 0 else (2.0 ** -11 if case == 1 else 10 ** rng.uniform(-6, -1))
        for fn in (tanh_params, logistic_params):
            params = fn(QuantParams(scale, 0), INT16_UNIT_OUTPUT, "int16")
            t = pack.t16_fused_form(params)
            if t is None:
                continue
            checked += 1
            ls = params.input_left_shift
            want = (x * params.input_multiplier + ((1 << (ls - 1)) if ls > 0 else 0)) >> ls
            got = ((x << t[0]) * t[1] + (1 << 31)) >> 32
            np.testing.assert_array_equal(got, want, err_msg=f"scale {scale}")
    assert checked > 100


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
    checked = skipped = 0
    for case in range(12):
        scale = 2.0 ** -12 if case == 0 else 10 ** rng.uniform(-5, -2.5)
        x_q = QuantParams(scale, 0)
        params = (tanh_params if kind == "tanh" else logistic_params)(x_q, out_q, "int16")
        t = pack.t16q_form(params)
        if t is None:  # no prepared form: the C runtime runs the plain kernel for this scale
            skipped += 1
            continue
        checked += 1
        want = (tanh if kind == "tanh" else logistic)(x, x_q, out_q)
        got = np.zeros_like(x)
        fn = lib.ew_t16q_s16
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p]
        fn.restype = None
        st = T16(t[0], t[1], t[2], 1 if kind == "tanh" else 2)
        fn(x.ctypes.data, x.size, ctypes.byref(st), got.ctypes.data)
        np.testing.assert_array_equal(got, want, err_msg=f"{kind} scale {scale}")
    print(f"int16 {kind} kernel: {checked} scales checked on every input, {skipped} without a prepared form")
    assert checked >= 10, f"only {checked} of 12 scales reached the prepared kernel"


# -- the fused kernels in synthetic programs -------------------------------------------------------


class Builder:
    """A random quantized program, tensor by tensor (the convert step's shapes, but every
    scale, zero point, weight and bias drawn at random, often to saturation)."""

    def __init__(self, rng, precision: str):
        self.rng, self.precision = rng, precision
        self.int8 = precision == "int8"
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []

    def q(self, lo=-4.0, hi=-0.5) -> QuantParams:
        zp = int(self.rng.integers(-128, 128)) if self.int8 else 0
        return QuantParams(float(10 ** self.rng.uniform(lo, hi)), zp)

    def tensor(self, name, channels, q=None, fixed=False, wide=False):
        if wide and q is None:  # an int8 model's 16-bit input stage: int16 scales, zero point 0
            q = QuantParams(float(10 ** self.rng.uniform(-6.5, -4)), 0)
        self.tensors[name] = Tensor(name, channels, q or self.q(), fixed, wide)
        return name

    def fc(self, name, inputs, n_out, activation="NONE", out_scale=None, tiny=False):
        """tiny: one channel's weights far smaller than the others' (as a trained input lift has),
        so its requantization shift falls below -17 (int16: EW_FCQ_WIDE). A layer reading an int8
        model's input stage writes a wide (int16) output."""
        rng = self.rng
        depth = sum(self.tensors[n].channels for n, _ in inputs)
        w = rng.integers(-127, 128, (n_out, depth))
        if rng.random() < 0.2:
            w = np.where(rng.random(w.shape) < 0.5, -127, 127)
        scales = (10 ** rng.uniform(-3.5, -1.5, n_out)).astype(np.float32)
        if rng.random() < 0.2:
            scales[:] = scales[0]
        if tiny:
            scales[int(rng.integers(n_out))] /= np.float32(2.0 ** rng.uniform(5, 12))
        # the requantization multiplier s_in * s_w / s_out: mostly what trained layers have
        # (outputs saturating more or less often), sometimes >= 1/2 or 1 (other code paths)
        mult = 2.0 ** (rng.uniform(-14, -1.2) if rng.random() < 0.9 else rng.uniform(-1.2, 1.5))
        s_in = self.tensors[inputs[0][0]].q.scale
        wide = self.tensors[inputs[0][0]].wide
        narrow = self.int8 and not wide
        zp = int(rng.integers(-128, 128)) if narrow else 0
        span = 10 ** (rng.uniform(1, 6) if rng.random() < 0.9 else 9.3)
        bias = rng.integers(-span, span + 1, n_out).astype(np.int32 if narrow else np.int64)
        if out_scale is not None:  # the output scale given: the weight scales follow from the multipliers
            scales = (out_scale * 2.0 ** rng.uniform(-14, -1.2, n_out) / s_in).astype(np.float32)
        self.tensor(name, n_out, QuantParams(float(out_scale or s_in * scales.max() / mult), zp), wide=wide)
        self.ops.append(Op("fc", list(inputs), name, activation, w.astype(np.int8), scales, bias))
        return name

    def narrowed(self, name):
        """QUANTIZE of an input-stage tensor to int8 (widen_input_stage's /q8 copies)."""
        out = self.tensor(f"{name}/q8", self.tensors[name].channels)
        self.ops.append(Op("requant", [(name, 0)], out))
        return out

    def act(self, name, kind, src):
        if self.int8:
            q = TANH_INT8_OUTPUT if kind == "tanh" else LOGISTIC_INT8_OUTPUT
        else:
            q = INT16_UNIT_OUTPUT
        self.tensor(name, self.tensors[src].channels, q, fixed=True)
        self.ops.append(Op(kind, [(src, 0)], name))
        return name

    def elementwise(self, name, kind, a, b):
        self.tensor(name, self.tensors[a].channels)
        self.ops.append(Op(kind, [(a, 0), (b, 0)], name))
        return name

    def concat(self, name, srcs):
        q = self.tensors[srcs[0]].q
        for s in srcs:
            self.tensors[s].q = q
        self.tensor(name, sum(self.tensors[s].channels for s in srcs), q)
        self.ops.append(Op("concat", [(s, 0) for s in srcs], name))
        return name

    def program(self, output) -> Program:
        return Program(self.precision, self.tensors, self.ops, "x", output)


def gated_program(rng, precision):
    b = Builder(rng, precision)
    c = int(rng.choice([2, 3, 4, 5, 6, 9, 12]))
    b.tensor("x", 1)
    h = b.fc("h", [("x", 0)], c, tiny=rng.random() < 0.8)
    d = int(rng.integers(1, 4))
    taps = [(h, d * (2 - j)) for j in range(3)]
    kinds = [("tanh", "logistic"), ("logistic", "tanh"), ("tanh", "tanh"), ("logistic", "logistic")][int(rng.integers(4))]
    # TANH / LOGISTIC inputs mostly in the ranges trained models give them (+-1 .. +-30)
    scale = [float(10 ** rng.uniform(-4.5, -2.9)) if rng.random() < 0.8 else None for _ in range(2)]
    fa = b.act("fa", kinds[0], b.fc("fa/pre", taps, c, out_scale=scale[0]))
    fb = b.act("fb", kinds[1], b.fc("fb/pre", taps, c, out_scale=scale[1]))
    g = b.elementwise("g", "mul", fa, fb)
    r = b.fc("r", [(g, 0)], c)
    s = b.elementwise("s", "add", *([h, r] if rng.random() < 0.5 else [r, h]))  # residual, either order
    return b.program(b.fc("y", [(s, 0), (s, 1)], 1, "RELU" if rng.random() < 0.3 else "NONE"))


def input_stage_program(rng, precision):
    """int8: the gated unit of the 16-bit input stage (ew_gateq_s16_s8), the FCs on int16 taps of the
    input, each output narrowed to int8 before its activation; int16x8: the same without narrowing."""
    b = Builder(rng, precision)
    c = int(rng.choice([1, 2, 3, 4, 7, 12]))
    b.tensor("x", 1, wide=b.int8)
    d = int(rng.integers(1, 4))
    taps = [("x", d * (3 - j)) for j in range(4)]
    kinds = [("tanh", "logistic"), ("logistic", "tanh"), ("tanh", "tanh"), ("logistic", "logistic")][int(rng.integers(4))]
    # multipliers as trained layers have them (the fused call refuses shifts below -17)
    pre = [b.fc(f"f{k}/pre", taps, c, out_scale=float(10 ** rng.uniform(-4.5, -2.5))) for k in "ab"]
    acts = [b.act(f"f{k}", kind, b.narrowed(p) if b.int8 else p) for k, kind, p in zip("ab", kinds, pre)]
    g = b.elementwise("g", "mul", *acts)
    return b.program(b.fc("y", [(g, 0), (g, 1)], 1, "RELU" if rng.random() < 0.3 else "NONE"))


def residual_program(rng, precision):
    b = Builder(rng, precision)
    c = int(rng.choice([1, 3, 4, 6, 8, 16]))
    b.tensor("x", 1)
    h = b.fc("h", [("x", 0), ("x", 1)], c)
    u = rng.random()  # equal scales (both inputs exact halvings), with or without a clamped FC
    r = b.fc("r", [(h, 0), (h, 2)], c, "RELU" if u < 0.35 or 0.6 <= u < 0.8 else "NONE")
    if u < 0.6:
        b.tensors[r].q = b.tensors[h].q
    s = b.elementwise("s", "add", *([h, r] if rng.random() < 0.5 else [r, h]))
    post = ["tanh", "logistic", None][int(rng.integers(3))]
    t = b.fc("t", [(s, 0), (s, 1)], c, out_scale=float(10 ** rng.uniform(-4.5, -2.9)) if post and rng.random() < 0.8 else None)
    if post:
        t = b.act("t/act", post, t)
    a, a2 = b.fc("a", [(t, 0)], c), b.fc("a2", [(s, 0)], c)
    cat = b.concat("cat", [a, a2])
    return b.program(b.fc("y", [(cat, 0)], 1, "RELU" if rng.random() < 0.5 else "NONE"))


def skips_program(rng, precision):
    """Fully-connected outputs read twice (a residual ADD and a sum of skips: the fused ADD
    also stores them), stand-alone ADDs, RELU / requantization with multipliers above 1."""
    b = Builder(rng, precision)
    c = int(rng.choice([2, 4, 7, 12]))
    b.tensor("x", 1)
    h = b.fc("h", [("x", 0), ("x", 2)], c)
    d1 = b.fc("d1", [(h, 0), (h, 1)], c)
    r1 = b.elementwise("r1", "add", h, d1)
    d2 = b.fc("d2", [(r1, 0), (r1, 1)], c)
    r2 = b.elementwise("r2", "add", *([d2, r1] if rng.random() < 0.5 else [r1, d2]))
    sk = b.elementwise("sk", "add", d1, d2)
    if rng.random() < 0.3:
        b.tensors[sk].q = QuantParams(b.tensors[sk].q.scale / 10 ** rng.uniform(0.5, 4), b.tensors[sk].q.zero_point)
    kind = "relu" if rng.random() < 0.6 else "requant"
    q = b.q(-4, -0.5)
    if precision == "int8" and kind == "relu":
        q = QuantParams(q.scale, -128)
    b.tensor("skr", c, q)
    b.ops.append(Op(kind, [(sk, 0)], "skr"))
    return b.program(b.fc("y", [("skr", 0), (r2, 0)], 1))


PROGRAMS = {"gated": gated_program, "residual": residual_program, "skips": skips_program,
            "input-stage": input_stage_program}


def c_model(prog: Program, c_dir: Path) -> tuple[list[Path], list[Path], str]:
    files, _ = emit_pipeline.render({"receptive_field": prog.receptive_field(), "normalization": {"offset": 0, "scale": 1}},
                                    prog, None, "m")
    for rel, text in files.items():
        (c_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (c_dir / rel).write_text(text)
    srcs, incs = emit_pipeline.c_sources(c_dir, "m")
    return srcs, incs, files["m.c"]


def random_cases(precision: str, n: int, seed: int):
    """(name, program, input codes, expected outputs, C sources, include dirs, model.c text)."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < n:
        kind = list(PROGRAMS)[len(cases) % len(PROGRAMS)]
        prog = PROGRAMS[kind](rng, precision)
        info = np.iinfo(prog.input_dtype)
        codes = rng.integers(info.min, info.max + 1, 300).astype(prog.input_dtype)
        codes[:20] = info.max
        codes[20:40] = info.min
        try:
            want = Engine(prog).run_sequence(codes)
        except ValueError:  # parameters TFLM itself would refuse
            continue
        cases.append((f"{precision}-{kind}-{len(cases)}", prog, codes, want))
    return cases


@pytest.fixture(scope="module", params=["int8", "int16x8"])
def built(request, tmp_path_factory):
    out = []
    for name, prog, codes, want in random_cases(request.param, 20, 11 if request.param == "int8" else 12):
        c_dir = tmp_path_factory.mktemp(name)
        srcs, incs, text = c_model(prog, c_dir)
        out.append((name, prog, codes, want, srcs, incs, text, c_dir))
    return out


def test_fused_kernels_are_used(built):
    """The synthetic programs do go through the fused paths (else the tests below prove little)."""
    text = "\n".join(t for *_, t, _ in built)
    for kernel in (r"ew_gateq_\w+\(", r"ew_addfcq_(?!y_)\w+\(", r"ew_addfcq_y_\w+\(", r"ew_fcq_\w+\(", r"ew_addq_\w+\("):
        assert len(re.findall(kernel, text)) >= 3, kernel
    residual = [t for name, *_, t, _ in built if "residual" in name]
    assert sum("ew_concat_" not in t for t in residual) >= 3  # the fully-connected layer gathered the inputs
    assert any("EW_FCQ_TANH" in t or "EW_FCQ_LOGISTIC" in t or "EW_FCQ_LUT" in t for *_, t, _ in built)
    if built[0][1].dtype == np.int16:
        assert sum("ew_fcq_wide_s16(" in t for *_, t, _ in built) >= 2
        both = [c for _, prog, *_ in built for c in plan_mod.plan(prog, "m").calls
                if c.get("mode") == "EW_ADDFC_HALVE_BOTH"]
        assert len(both) >= 2 and any(c["parts"][0].activation == "RELU" for c in both)  # also clamped
    else:
        assert sum("ew_gateq_s16_s8(" in t for *_, t, _ in built) >= 3
        # inputs whose length is not a multiple of 4, gathered inline: whole quads and straddling ones
        mixed = [c for _, prog, *_ in built for c in plan_mod.plan(prog, "m").calls if c.get("gather") == "mixed"]
        assert sum(any(k == "widen" for k, _, _ in c["pieces"]) and any(k == "words" for k, _, _ in c["pieces"])
                   for c in mixed) >= 2


def test_fused_kernels_host_and_sanitizers(built):
    for name, prog, codes, want, srcs, incs, _, c_dir in built:
        got = ctools.run_host(ctools.build_host(srcs, incs, c_dir / "host"), codes, out_dtype=prog.dtype)
        np.testing.assert_array_equal(got, want, err_msg=f"{name}: host C != numpy engine")
    for name, prog, codes, want, srcs, incs, _, c_dir in built[:4]:
        got = ctools.run_host(ctools.build_host(srcs, incs, c_dir / "asan", sanitize=True), codes, out_dtype=prog.dtype)
        np.testing.assert_array_equal(got, want, err_msg=f"{name}: sanitized host C != numpy engine")


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0plus"])
def test_fused_kernels_on_cortex_m(built, target):
    require(ctools.have_cortex_m_tools(), f"the Cortex-M tools are missing ({ctools.INSTALL_HINT})")
    for name, prog, codes, want, srcs, incs, _, c_dir in built:
        elf, _ = ctools.build_cortex_m(target, srcs, incs, c_dir / target)
        got, _ = ctools.run_qemu(target, elf, codes, out_dtype=prog.dtype)
        np.testing.assert_array_equal(got, want, err_msg=f"{name}: {target} != numpy engine")
