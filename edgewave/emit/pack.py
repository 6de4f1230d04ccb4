"""Pass: pack the constants of the prepared kernels (firmware/src/ew_fcq.c, ew_eltq.c; formulas in
edgewave_rt.h) and prove them exact.

Each ``prep_*`` takes program ops and returns the numbers a prepared kernel's struct and weight stream
hold, or None when the single-multiply arithmetic is not provably equal to TFLM's for every input (the
fuse pass then keeps the plain kernels). Nothing here knows C syntax: calls.j2 prints the numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import integer as K
from ..integer import fixedpoint as fp

if TYPE_CHECKING:
    from ..program import Program

INT32_LIMIT = (1 << 31) - 4

# the exact numpy kernel of each elementwise function, and its quantization parameters
ELEMENTWISE = {"tanh": K.tanh, "logistic": K.logistic, "relu": K.relu, "requant": K.requantize}
ELEMENTWISE_PARAMS = {"tanh": K.tanh_params, "logistic": K.logistic_params, "relu": K.relu_params,
                      "requant": K.requant_params}


def wrap32(v: int) -> int:
    return (int(v) + (1 << 31)) % (1 << 32) - (1 << 31)


def rq_form(mult: int, shift: int, zp: int, xmax: int) -> tuple[int, int, int, int] | None:
    """(mult_x2, add, neg, shift) of ew_rq for MBQM(x, mult, shift) + zp with |x| <= xmax, or None
    when the single-multiply form is not provably exact (left shifts, zero multiplier, overflow)."""
    mult, shift = int(mult), int(shift)
    if not (1 << 30) <= mult < (1 << 31) or shift > 0 or shift < -31:
        return None
    e = -shift
    add = ((1 << (e - 1)) if e else 0) + zp * (1 << e)
    if abs(add) + (xmax * mult >> 31) + 2 >= INT32_LIMIT:
        return None
    return wrap32(2 * mult), add, (-1 if e else 0), e


def t16q_form(params) -> tuple[int, int, int] | None:
    mult, ls = int(params.input_multiplier), int(params.input_left_shift)
    rnd = (1 << (ls - 1)) if ls > 0 else 0
    if mult < 0 or ls < 0 or ls > 31 or 32768 * mult + rnd >= INT32_LIMIT:
        return None
    return mult, rnd, ls


def pair_elements(depth: int, int8: bool) -> list[tuple[int, int]]:
    """Element indices of each 16-bit pair word of the gathered input (see ew_gather_*)."""
    if int8:
        n = -(-depth // 4) * 4
        return [(4 * (j // 2) + (j % 2), 4 * (j // 2) + (j % 2) + 2) for j in range(n // 2)]
    n = -(-depth // 2) * 2
    return [(2 * j, 2 * j + 1) for j in range(n // 2)]


def t16_fused_form(params) -> tuple[int, int] | None:
    """(t_shift, t_mult) of an int16 TANH / LOGISTIC input scaling for the prepared kernels:
    (x * mult + round) >> shift == hi32((x << t_shift) * t_mult + 2^31) (see ew_fast.h)."""
    t = t16q_form(params)
    if t is None:
        return None
    mult, _, ls = t
    ts, tm = (16, mult << (16 - ls)) if ls <= 16 else (0, mult << (32 - ls))
    return (ts, tm) if tm < (1 << 31) else None


def fc_consts(prog: Program, op, inputs, wide_shift: int = 0) -> tuple | None:
    """The per-output constants of a prepared fully-connected layer: (params, [(bias, [consts])]),
    or None when the prepared arithmetic is not provably exact for it. ``wide_shift`` e >= 1 gives
    int16's EW_FCQ_WIDE constants instead (see `wide_shift`)."""
    T = prog.tensors
    int8 = prog.dtype_of(inputs[0][0]) == np.int8  # an int8 model's input stage is int16x8
    dtype = "int8" if int8 else "int16"
    params = K.fc_params(T[inputs[0][0]].q, op.weight_scales, T[op.output].q, op.activation, dtype,
                         prog.fc_as_conv(op))
    n_out = op.weights.shape[0]
    mults, shifts = params.per_channel(n_out)
    w = np.asarray(op.weights, np.int64)
    bias = np.zeros(n_out, np.int64) if op.bias is None else np.asarray(op.bias).astype(np.int64)
    if not int8 and op.bias is not None and np.asarray(op.bias).dtype != np.int64:
        return None
    xdev = max(abs(-128 - params.zp_in), abs(127 - params.zp_in)) if int8 else 32768
    bound = int(np.max(np.abs(bias) + np.abs(w).sum(axis=1) * xdev)) if n_out else 0
    if bound * (2 if int8 else 1) >= INT32_LIMIT:  # int8 accumulates doubled (ew_fcq.c rq8)
        return None
    chan = []
    for o in range(n_out):
        mult, shift = int(mults[o]), int(shifts[o])
        if int8:
            rq = rq_form(mult, shift, params.zp_out, bound)
            if rq is None or rq[2] != -1:
                return None
            chan.append((wrap32(2 * (int(bias[o]) - params.zp_in * int(w[o].sum()))), [mult, rq[1], rq[3]]))
        else:
            # TFLM: (acc * reduced + 2^(14 - shift)) >> (15 - shift); with r = reduced << (17 + shift)
            # that is hi32(acc * r + 2^31) (SMMULR) for shifts -17..-1
            if mult < 0:
                return None
            reduced = (mult + (1 << 15)) >> 16 if mult < 0x7FFF0000 else 0x7FFF
            if wide_shift:
                k = 32 + wide_shift - (15 - shift)
                if k < 0 or reduced << k >= INT32_LIMIT:
                    return None
                chan.append((int(bias[o]), [reduced << k]))
                continue
            if not -17 <= shift <= -1:
                return None
            chan.append((int(bias[o]), [reduced << (17 + shift)]))
    return params, chan


def wide_shift(prog: Program, op, inputs) -> int:
    """The call's rounding shift e of int16's EW_FCQ_WIDE, for multipliers with shifts below -17
    (a channel whose weights are tiny next to the layer's output range, as a trained input lift
    has): TFLM's (acc * reduced + 2^(n-1)) >> n with n = 15 - shift > 32 is
    (hi32(acc * r) + 2^(e-1)) >> e with r = reduced << (32 + e - n), hi32 truncating (SMMUL),
    because floor(floor(v / 2^a) / 2^b) = floor(v / 2^(a+b)) and the 2^(n-1) rounding term is
    a multiple of 2^a. e = max(n) - 32, so r fits while every channel's n >= 17 + e; 0 when no
    shift is below -17 (the SMMULR form applies) or the model is not int16."""
    if prog.dtype_of(inputs[0][0]) != np.int16:
        return 0
    params = K.fc_params(prog.tensors[inputs[0][0]].q, op.weight_scales, prog.tensors[op.output].q, op.activation,
                         "int16", prog.fc_as_conv(op))
    _, shifts = params.per_channel(op.weights.shape[0])
    return max(0, max(15 - int(s) for s in shifts) - 32) if len(shifts) else 0


def pair_words(depth: int, int8: bool) -> int:
    n = len(pair_elements(depth, int8))
    return max(2, n + (n % 2))  # the DSP loop takes pairs two at a time


def weight_stream(rows, chan, depth: int, n_pairs: int, int8: bool) -> list[int]:
    """The weight stream of ew_fcq & co.: per group of four output rows (None: a zero row)
    the four biases, the interleaved weight words and each row's constants. int8 weights
    and biases are doubled (see edgewave_rt.h)."""
    pairs = pair_elements(depth, int8)
    pairs += [(2 * n_pairs + 8, 2 * n_pairs + 9)] * (n_pairs - len(pairs))
    width = 2 * n_pairs + 10
    words = []
    per_row = 3 if int8 else 1
    for g in range(0, len(rows), 4):
        group = rows[g:g + 4]
        cg = [chan[g + k] if group[k] is not None else (0, [0] * per_row) for k in range(4)]
        words += [c[0] for c in cg]
        wp = np.zeros((4, width), np.int64)
        for k, r in enumerate(group):
            if r is not None:
                wp[k, :depth] = np.asarray(r, np.int64) * (2 if int8 else 1)
        for a, b in pairs:
            for k in range(4):
                words.append(wrap32((int(wp[k, a]) & 0xFFFF) | (int(wp[k, b]) << 16)))
        words += [v for c in cg for v in c[1]]
    return words


def _in_order(op, chan, int8: bool) -> dict:
    """The weight stream of a fully-connected layer whose outputs go in order (zero rows pad the last group)."""
    depth = op.weights.shape[1]
    n_pairs = pair_words(depth, int8)
    n_out = op.weights.shape[0]
    rows = list(op.weights) + [None] * (-n_out % 4)
    return {"words": weight_stream(rows, chan, depth, n_pairs, int8), "n_out": n_out, "n_pairs": n_pairs}


def full_range(lo: int, hi: int, int8: bool) -> bool:
    return (lo, hi) == ((-128, 127) if int8 else (-32768, 32767))


def post_lut(prog: Program, fc_params, qin, post, subtract: int = 0) -> np.ndarray:
    """int8: the table of ``post`` over the fully-connected output, with the layer's
    fused-activation clamp folded in (index y + 128 for any int8 y), less ``subtract``."""
    kernel = ELEMENTWISE[post.kind]
    y = np.clip(np.arange(-128, 128), fc_params.act_min, fc_params.act_max).astype(np.int8)
    return kernel(y, qin, prog.tensors[post.output].q).astype(np.int64) - subtract


def prep_fc(prog: Program, op, post, inputs) -> dict | None:
    """Constants of a prepared FULLY_CONNECTED (ew_fcq) reading ``inputs``, with the elementwise
    ``post`` folded in (or None)."""
    int8 = prog.dtype_of(inputs[0][0]) == np.int8
    c = fc_consts(prog, op, inputs)
    wide = wide_shift(prog, op, inputs) if c is None and post is None else 0
    if wide:
        c = fc_consts(prog, op, inputs, wide)
    if c is None:
        return None
    params, chan = c
    fields = {"act_min": params.act_min, "act_max": params.act_max, "t_shift": 0, "t_mult": 0, "lut": None}
    full = full_range(params.act_min, params.act_max, int8)
    if wide:
        if not full:
            return None
        mode, fields["t_shift"] = "EW_FCQ_WIDE", wide
    elif post is None:
        mode = "EW_FCQ_SAT" if full else ("EW_FCQ_USAT" if not int8 and (params.act_min, params.act_max) == (0, 32767)
                                          else "EW_FCQ_CLAMP")
    elif int8:
        mode, fields["lut"] = "EW_FCQ_LUT", post_lut(prog, params, prog.tensors[op.output].q, post)
    else:
        if post.kind not in ("tanh", "logistic") or not full:
            return None
        t = t16_fused_form(ELEMENTWISE_PARAMS[post.kind](prog.tensors[op.output].q, prog.tensors[post.output].q, "int16"))
        if t is None:
            return None
        mode, (fields["t_shift"], fields["t_mult"]) = ("EW_FCQ_TANH" if post.kind == "tanh" else "EW_FCQ_LOGISTIC"), t
    return {**_in_order(op, chan, int8), "mode": mode, **fields}


def gate_stream(fa, fb, chan_a, chan_b, int8: bool) -> tuple[list[int], int, int]:
    """(weight stream, n_out, n_pairs) of a gated unit: groups of (a[c], a[c+1], b[c], b[c+1])."""
    depth, n_out = fa.weights.shape[1], fa.weights.shape[0]
    n_pairs = pair_words(depth, int8)
    rows, chan = [], []
    for c in range(0, n_out, 2):
        idx = [c, c + 1] if c + 1 < n_out else [c, None]
        rows += [f.weights[i] if i is not None else None for f in (fa, fb) for i in idx]
        chan += [k[i] if i is not None else None for k in (chan_a, chan_b) for i in idx]
    return weight_stream(rows, chan, depth, n_pairs, int8), n_out, n_pairs


def prep_gate(prog: Program, fa, pa, fb, pb, mul, inputs) -> dict | None:
    """Constants of a prepared gated unit (ew_gateq): MUL(pa(fa(x)), pb(fb(x)))."""
    T = prog.tensors
    int8 = prog.dtype == np.int8
    dtype = np.dtype(prog.dtype).name
    if not int8 and (pa.kind, pb.kind) == ("logistic", "tanh"):  # int16 MUL is symmetric: tanh first
        fa, pa, fb, pb = fb, pb, fa, pa
    ca, cb = fc_consts(prog, fa, inputs), fc_consts(prog, fb, inputs)
    if ca is None or cb is None or fa.weights.shape != fb.weights.shape:
        return None
    mp = K.mul_params(T[pa.output].q, T[pb.output].q, T[mul.output].q, dtype)
    if not full_range(mp.act_min, mp.act_max, int8):
        return None
    fields = {}
    if int8:
        la = post_lut(prog, ca[0], T[fa.output].q, pa, mp.zp_a)
        lb = post_lut(prog, cb[0], T[fb.output].q, pb, mp.zp_b)
        pmax = int(max(abs(x * y) for x in (la.min(), la.max()) for y in (lb.min(), lb.max())))
        fields.update(mode=0, lut_a=2 * la, lut_b=lb)
    else:
        if not (full_range(ca[0].act_min, ca[0].act_max, False) and full_range(cb[0].act_min, cb[0].act_max, False)):
            return None
        ts = []
        for f, post in ((fa, pa), (fb, pb)):
            ts.append(t16_fused_form(ELEMENTWISE_PARAMS[post.kind](T[f.output].q, T[post.output].q, "int16")))
        if None in ts or any(t[0] != 16 for t in ts):  # the gate kernel has t_shift 16 built in
            return None
        mode = {("tanh", "logistic"): "EW_GATE_TANH_LOGISTIC", ("tanh", "tanh"): "EW_GATE_TANH_TANH",
                ("logistic", "logistic"): "EW_GATE_LOGISTIC_LOGISTIC"}[(pa.kind, pb.kind)]
        pmax = 1 << 30
        fields.update(mode=mode, a_mult=ts[0][1], b_mult=ts[1][1])
    rq = rq_form(mp.mult, mp.shift, mp.zp_out, pmax)
    if rq is None or rq[2] != -1:
        return None
    if int8:  # the doubled product (lut_a is doubled) takes the multiplier itself
        rq = (mp.mult, *rq[1:])
    words, n_out, n_pairs = gate_stream(fa, fb, ca[1], cb[1], int8)
    return {"words": words, "n_out": n_out, "n_pairs": n_pairs, "rq_mult": rq[0], "add": rq[1],
            "shift": rq[3], "order": (fa, pa, fb, pb), **fields}


def prep_gate16x8(prog: Program, sides, mul, inputs) -> dict | None:
    """Constants of the gated unit of an int8 model's 16-bit input stage (ew_gateq_s16_s8):
    MUL(pa(QUANTIZE(fa(x))), pb(QUANTIZE(fb(x)))) with ``sides`` ((fa, qa, pa), (fb, qb, pb)), the
    fully-connected layers on int16 x, QUANTIZE narrowing their int16 outputs to int8."""
    T = prog.tensors
    (fa, qa, pa), (fb, qb, pb) = sides
    if fa.weights.shape != fb.weights.shape:
        return None
    consts, narrow, luts = [], [], []
    mp = K.mul_params(T[pa.output].q, T[pb.output].q, T[mul.output].q, "int8")
    if not full_range(mp.act_min, mp.act_max, True):
        return None
    for (f, q, post), zp in zip(sides, (mp.zp_a, mp.zp_b)):
        c = fc_consts(prog, f, inputs)
        rp = K.requant_params(T[f.output].q, T[q.output].q, "int8")
        nq = prep_requant(rp)
        if c is None or nq is None or not full_range(c[0].act_min, c[0].act_max, False) \
                or not full_range(rp.act_min, rp.act_max, True):
            return None
        consts.append(c[1])
        narrow.append(nq)
        luts.append(post_lut(prog, rp, T[q.output].q, post, zp))
    la, lb = luts
    # as ew_gateq's int8 form: the doubled product (lut_a is doubled) takes the multiplier itself
    pmax = int(max(abs(x * y) for x in (la.min(), la.max()) for y in (lb.min(), lb.max())))
    rq = rq_form(mp.mult, mp.shift, mp.zp_out, pmax)
    if rq is None or rq[2] != -1:
        return None
    words, n_out, n_pairs = gate_stream(fa, fb, *consts, False)
    return {"words": words, "n_out": n_out, "n_pairs": n_pairs,
            "mode": 0, "narrow_a": narrow[0], "narrow_b": narrow[1], "lut_a": 2 * la, "lut_b": lb,
            "rq_mult": mp.mult, "add": rq[1], "shift": rq[3], "order": (fa, pa, fb, pb)}


def addin_form(zp: int, mult: int, shift: int, left_shift: int, int8: bool) -> tuple | None:
    """(zp, sh, mult, c, neg, e) of ew_addin, or None."""
    if not int8 and zp != 0:
        return None
    if mult == 1 << 30 and shift == 0:
        return (zp, left_shift + 1, mult, 0, 0, 0)
    if not (1 << 30) <= mult < (1 << 31) or not -31 <= shift <= -1:
        return None
    e = -shift
    return (zp, left_shift + 1, mult, 1 << (e - 1), -1, e)


def _add_sides(ap) -> list[tuple[int, int, int]]:
    """(zp, mult, shift) of each input of an ADD."""
    return [(ap.zp_a, ap.mult_a, ap.shift_a), (ap.zp_b, ap.mult_b, ap.shift_b)]


def _add_scaled(ap, zp: int, mult: int, shift: int, lo: int, hi: int) -> np.ndarray:
    """What TFLM adds up for every stored value of one ADD input in [lo, hi]."""
    v = (np.arange(lo, hi + 1, dtype=np.int64) - zp) << ap.left_shift
    return fp.multiply_by_quantized_multiplier(v, mult, shift).astype(np.int64)


def prep_fcadd(prog: Program, fc, add, side: int, inputs) -> dict | None:
    """Constants of a prepared residual ADD (ew_addfcq) whose input ``side`` is the layer ``fc``."""
    T = prog.tensors
    int8 = prog.dtype == np.int8
    dtype = np.dtype(prog.dtype).name
    c = fc_consts(prog, fc, inputs)
    if c is None:
        return None
    params, chan = c
    qa, qb = (T[n].q for n, _ in add.inputs)
    ap = K.add_params(qa, qb, T[add.output].q, dtype)
    sides = _add_sides(ap)
    info = np.iinfo(prog.dtype)
    full_out = full_range(ap.act_min, ap.act_max, int8)
    fields = {"f": (0,) * 6, "o": (0,) * 6, "lut_f": None, "lut_o": None}
    if int8:
        # the fully-connected side (any multiplier) through a table over the clamped y
        y = np.clip(np.arange(-128, 128), params.act_min, params.act_max)
        lut_f = _add_scaled(ap, *sides[side], -128, 127)[y + 128]
        o = addin_form(*sides[1 - side], ap.left_shift, True)
        if o is not None and o[5] == 0 and full_out:
            mode = "EW_ADDFC_HALVE_O"
            lut_f = lut_f - (o[0] << (ap.left_shift - 1))
            ro_range = np.arange(-128, 128, dtype=np.int64) << (ap.left_shift - 1)
        else:
            mode = "EW_ADDFC_ANY"
            fields["lut_o"] = ro_range = _add_scaled(ap, *sides[1 - side], -128, 127)
        smax = int(np.abs(lut_f).max()) + int(np.abs(ro_range).max())
        # the kernel adds up doubled terms (tables doubled, the halving shifted one more)
        fields["lut_f"] = 2 * lut_f
        if fields["lut_o"] is not None:
            fields["lut_o"] = 2 * fields["lut_o"]
    else:
        f = addin_form(*sides[side], ap.left_shift, False)
        o = addin_form(*sides[1 - side], ap.left_shift, False)
        if f is None or o is None:
            return None
        smax = (int(np.abs(_add_scaled(ap, *sides[side], params.act_min, params.act_max)).max())
                + int(np.abs(_add_scaled(ap, *sides[1 - side], info.min, info.max)).max()))
        full = full_range(params.act_min, params.act_max, False) and full_out
        if o[5] == 0 and f[5] == 0:
            mode = "EW_ADDFC_HALVE_BOTH"
        elif full and o[5] == 0 and f[5] > 0:
            mode = "EW_ADDFC_HALVE_O"
        elif full and f[5] == 0 and o[5] > 0:
            mode = "EW_ADDFC_HALVE_F"
        else:
            mode = "EW_ADDFC_ANY"
        fields.update(f=f, o=o)
    ro = rq_form(ap.mult_out, ap.shift_out, ap.zp_out, smax)
    if smax * (2 if int8 else 1) >= INT32_LIMIT or ro is None or ro[2] != -1:
        return None
    if int8:  # the doubled sum takes the multiplier itself (as rq8 in ew_fcq.c)
        ro = (ap.mult_out, *ro[1:])
    return {**_in_order(fc, chan, int8), "mode": mode,
            "fc_min": params.act_min, "fc_max": params.act_max, "rq_mult": ro[0], "add": ro[1],
            "shift": ro[3], "act_min": ap.act_min, "act_max": ap.act_max, **fields}


def prep_add(prog: Program, op) -> dict | None:
    """Constants of a stand-alone prepared ADD (ew_addq)."""
    T = prog.tensors
    int8 = prog.dtype == np.int8
    dtype = np.dtype(prog.dtype).name
    qa, qb = (T[n].q for n, _ in op.inputs)
    ap = K.add_params(qa, qb, T[op.output].q, dtype)
    sides = _add_sides(ap)
    a = addin_form(*sides[0], ap.left_shift, int8)
    b = addin_form(*sides[1], ap.left_shift, int8)
    if a is None or b is None:
        return None
    info = np.iinfo(prog.dtype)
    scaled = [np.abs(_add_scaled(ap, zp, m, sh, info.min, info.max)).max() for zp, m, sh in sides]
    smax = int(scaled[0]) + int(scaled[1])
    ro = rq_form(ap.mult_out, ap.shift_out, ap.zp_out, smax)
    if smax >= INT32_LIMIT or ro is None or ro[2] != -1:
        return None
    mode = "EW_ADDQ_ANY"
    if full_range(ap.act_min, ap.act_max, int8):
        for m, (r, h) in (("EW_ADDQ_HALVE_B", (0, 1)), ("EW_ADDQ_HALVE_A", (1, 0))):
            qr, qh = [a, b][r], [a, b][h]
            if qh[5] == 0 and qr[5] > 0:
                # int8: the halved side's -(zp << (left_shift - 1)) joins the other side's rounding term
                c = qr[3] - (qh[0] << (ap.left_shift - 1) << qr[5])
                if abs(c) + ((int(scaled[r]) + 1) << qr[5]) < INT32_LIMIT:
                    fixed = (qr[0], qr[1], qr[2], c, qr[4], qr[5])
                    a, b = (fixed, b) if r == 0 else (a, fixed)
                    mode = m
                break
    return {"a": a, "b": b, "mode": mode, "mult_x2": ro[0], "add": ro[1], "shift": ro[3],
            "act_min": ap.act_min, "act_max": ap.act_max}



def prep_mul(prog: Program, op) -> dict | None:
    """Constants of a stand-alone prepared MUL (ew_mulq): the product's ew_rq form."""
    T = prog.tensors
    lo, hi = np.iinfo(prog.dtype).min, np.iinfo(prog.dtype).max
    mp = K.mul_params(T[op.inputs[0][0]].q, T[op.inputs[1][0]].q, T[op.output].q, np.dtype(prog.dtype).name)
    corners = [(a - mp.zp_a) * (b - mp.zp_b) for a in (lo, hi) for b in (lo, hi)]
    pmax = max(abs(c) for c in corners)
    if pmax >= INT32_LIMIT:
        return None
    ro = rq_form(mp.mult, mp.shift, mp.zp_out, pmax)
    if ro is None:
        return None
    return {"out": ro, "zp_a": mp.zp_a, "zp_b": mp.zp_b, "act_min": mp.act_min, "act_max": mp.act_max}


def prep_requant(rp) -> tuple[int, tuple] | None:
    """(pre, ew_rq form) of an int16-input RELU / requantization (ew_requantq_*) with params ``rp``."""
    if rp.zp_in != 0:
        return None
    # a multiplier >= 1: TFLM shifts left first (exact for int16 inputs up to 15 bits), then shift 0
    pre = max(int(rp.shift), 0)
    ro = rq_form(rp.mult, min(int(rp.shift), 0), rp.zp_out, 32768 << pre) if pre <= 15 else None
    return None if ro is None else (pre, ro)
