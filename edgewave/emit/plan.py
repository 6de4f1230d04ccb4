"""Program -> what the C templates print: memory layout, constants, and the kernel calls.

Every decision lives here; the templates only print. Memory: one ring per
tensor that is read at a delay, holding `length + 1` rows so the current
value is written straight into its slot (no copy into the ring afterwards);
every other tensor gets a slot in a scratch area shared by tensors whose
lifetimes do not overlap within a step (int16 slots start 4-byte aligned, so
that the fully-connected kernels read them in place).

Calls: one per op, except that a fully-connected layer takes over the ops that
alone read it where the prepared kernels can do their arithmetic exactly (see
FusedOp): its elementwise function, a gated tanh * sigmoid unit with both layers
and the MUL, a residual ADD, or a concatenation it reads (it gathers the pieces).
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field

import numpy as np

from .. import integer as K
from ..convert.program import Program
from ..errors import UserError

C_KEYWORDS = set("""auto break case char const continue default do double else enum extern float for goto if inline
int long register restrict return short signed sizeof static struct switch typedef union unsigned void volatile
while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic _Noreturn _Static_assert _Thread_local
bool true false NULL asm""".split())


def check_prefix(prefix: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix or ""):
        raise UserError(f"--prefix {prefix!r} is not a valid C identifier; use letters, digits and _ "
                        "(not starting with a digit), e.g. --prefix speech_model")
    if prefix in C_KEYWORDS or keyword.iskeyword(prefix) or prefix.startswith("ew_"):
        raise UserError(f"--prefix {prefix!r} is a C keyword or reserved by edgewave's runtime (ew_*); "
                        "choose another name")
    return prefix


@dataclass
class Storage:
    tensor: str
    channels: int
    ring: str | None = None       # state member holding the ring rows
    head: str | None = None       # state member with the current row's offset (in values)
    rows: int = 0                 # ring rows (= max delay + 1)
    offset: int | None = None     # scratch offset (non-ring tensors)
    wide: bool = False            # int16 in an int8 model (the input stage): own rings and scratch16
    ctype: str = "int8_t"


@dataclass
class Plan:
    prefix: str
    ctype: str
    suffix: str
    storage: dict[str, Storage]
    scratch_size: int
    scratch16_size: int = 0  # int8 models: the input stage's int16 tensors, after the int8 storage
    consts: list[dict] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)
    stack_bytes: int = 0  # step-local buffers (not in the state struct)

    @property
    def rings(self) -> list[Storage]:
        """In state-struct order: the model type's rings, then the input stage's int16 ones."""
        return sorted((s for s in self.storage.values() if s.ring), key=lambda s: s.wide)


def _values(arr) -> str:
    return ", ".join(str(int(v)) for v in np.asarray(arr).ravel())


@dataclass
class FusedOp:
    """One call of the generated step: a program op as it is (kind "op"), or a prepared
    fully-connected layer ("fc") with what reads it folded in: its elementwise function,
    a whole gated unit ("gate": two fully-connected layers, their TANH / LOGISTIC and the
    MUL), or the ADD of a residual connection ("fcadd")."""

    kind: str
    inputs: list[tuple[str, int]]   # the taps the call reads
    output: str                     # the tensor it writes
    parts: list                     # the program ops it computes
    index: int                      # program index of its first part (names its constants)
    prep: dict | None = None        # constants prepared while fusing
    other: tuple[str, int] | None = None  # fcadd: the ADD's other input
    also: str | None = None         # fcadd: the fully-connected output, when other ops read it too


def plan(prog: Program, prefix: str) -> Plan:
    assert prog.quantized, "emit.pipeline refuses float programs"
    ctype, suffix = ("int16_t", "s16") if prog.dtype == np.int16 else ("int8_t", "s8")
    lengths = prog.ring_lengths()
    storage: dict[str, Storage] = {}
    for i, name in enumerate(prog.tensors):
        t = prog.tensors[name]
        wide = prog.dtype_of(name) != prog.dtype
        kind = dict(wide=wide, ctype="int16_t" if wide else ctype)
        if name in lengths:
            storage[name] = Storage(name, t.channels, f"ring{i}", f"head{i}", lengths[name] + 1, **kind)
        else:
            storage[name] = Storage(name, t.channels, **kind)
    fops = _fuse(prog)
    scratch = _allocate_scratch(prog, fops, storage, align=2 if suffix == "s16" else 1)
    scratch16 = _allocate_scratch(prog, fops, storage, wide=True)
    p = Plan(prefix, ctype, suffix, storage, scratch, scratch16)
    xw_words = {False: 0, True: 0}  # the model type's gather buffer, and the int16 input stage's
    for f in fops:
        call = None
        if f.kind != "op":
            call, words = _emit_fused(p, prog, f)
            wide = storage[f.inputs[0][0]].wide
            xw_words[wide] = max(xw_words[wide], words)
        else:
            op = f.parts[0]
            fast = op.kind == "requant" or (op.kind != "fc" and not _touches_wide(prog, op))
            call = _fast_elementwise(p, prog, f.index, op) if fast else None
            if call is None:
                call = _call(p, prog, f.index, op)
        p.calls.append({"taps": [], "tap_ctype": ctype, **call})
    p.stack_bytes = 4 * (xw_words[False] + xw_words[True])
    if xw_words[True]:
        p.calls.insert(0, {"decl": f"union {{ int32_t align; int16_t v[{2 * xw_words[True]}]; }} xw16; "
                                   "/* the 16-bit input stage's fully-connected inputs */",
                           "comment": "", "taps": [], "call": ""})
    if xw_words[False]:
        decl = (f"union {{ int32_t align; int16_t v[{2 * xw_words[False]}]; }} xw; /* fully-connected inputs, 4-byte aligned */"
                if suffix == "s16" else f"int32_t xw[{xw_words[False]}]; /* fully-connected inputs as 16-bit pairs */")
        p.calls.insert(0, {"decl": decl, "comment": "", "taps": [], "call": ""})
    return p


def _touches_wide(prog: Program, op) -> bool:
    return any(prog.tensors[n].wide for n in [op.output, *(n for n, _ in op.inputs)])


def _allocate_scratch(prog: Program, fops: list[FusedOp], storage: dict[str, Storage], align: int = 1,
                      wide: bool = False) -> int:
    """First-fit offsets (multiples of ``align``) for the non-ring tensors of one scratch area (the
    model type's, or with ``wide`` the input stage's int16 one), freeing each after its last reader
    within the step."""
    last_use = {}
    for i, f in enumerate(fops):
        for name, _ in f.inputs + ([f.other] if f.other else []):
            last_use[name] = i
    last_use[prog.output] = len(fops)
    live: list[tuple[int, int, str]] = []  # (offset, size, tensor)
    size = 0

    def place(name):
        nonlocal size
        if storage[name].wide != wide:
            return
        need = -(-storage[name].channels // align) * align
        pos = 0
        for off, sz, _ in sorted(live):
            if off - pos >= need:
                break
            pos = max(pos, off + sz)
        storage[name].offset = pos
        live.append((pos, need, name))
        size = max(size, pos + need)

    if storage[prog.input].ring is None:
        place(prog.input)
    for i, f in enumerate(fops):
        for name in [f.output] + ([f.also] if f.also else []):
            if storage[name].ring is None:
                place(name)
        live[:] = [(o, s, n) for o, s, n in live if last_use.get(n, -1) > i]
    return size


def _ref(p: Plan, name: str, delay: int) -> str:
    s = p.storage[name]
    if s.ring is None:
        assert delay == 0
        return f"&s->{'scratch16' if s.wide else 'scratch'}[{s.offset}]"
    if delay == 0:
        return f"&s->{s.ring}[s->{s.head}]"
    return f"&s->{s.ring}[ew_back(s->{s.head}, {delay * s.channels}u, {s.rows * s.channels}u)]"


def _const(p: Plan, name: str, ctype: str, values) -> str:
    arr = np.asarray(values).ravel()
    p.consts.append({"ctype": ctype, "name": name, "size": len(arr), "data": _values(arr), "struct": None})
    return name


def _struct(p: Plan, name: str, ctype: str, params) -> str:
    fields = {k: v for k, v in vars(params).items() if isinstance(v, int)}
    body = ", ".join(f".{k} = {v}" for k, v in fields.items())
    p.consts.append({"ctype": ctype, "name": name, "struct": body})
    return f"&{name}"


def _call(p: Plan, prog: Program, i: int, op) -> dict:
    T = prog.tensors
    in_wide = p.storage[op.inputs[0][0]].wide
    dtype = "int16" if in_wide else np.dtype(prog.dtype).name
    qin = [T[n].q for n, _ in op.inputs]
    qout = T[op.output].q
    out = _ref(p, op.output, 0)
    taps = [_ref(p, n, d) for n, d in op.inputs]
    names = ", ".join(f"{n}@{d}" if d else n for n, d in op.inputs)
    comment = f"{op.kind} {names} -> {op.output}"
    sfx = "s16" if in_wide else p.suffix
    if in_wide and op.kind == "requant" and not p.storage[op.output].wide:  # the input stage narrows to int8
        st = _struct(p, f"op{i}_params", "ew_requant_params", K.requant_params(qin[0], qout, prog.dtype))
        return {"comment": comment, "call": f"ew_requant_s16_s8({taps[0]}, {T[op.output].channels}, {st}, {out})"}
    if op.kind == "fc":
        n_out, depth = op.weights.shape
        params = K.fc_params(qin[0], op.weight_scales, qout, op.activation, dtype, prog.fc_as_conv(op))
        mult, shift = params.per_channel(n_out)
        w = _const(p, f"op{i}_weights", "int8_t", op.weights)
        bias_type = "int64_t" if sfx == "s16" else "int32_t"
        b = _const(p, f"op{i}_bias", bias_type, op.bias)
        m = _const(p, f"op{i}_mult", "int32_t", mult)
        sh = _const(p, f"op{i}_shift", "int32_t", shift)
        st = _struct(p, f"op{i}_params", "ew_fc_params", params)
        return {"comment": comment, "taps": taps, "tap_ctype": p.storage[op.inputs[0][0]].ctype,
                "call": f"ew_fc_{sfx}(taps, {len(taps)}, {T[op.inputs[0][0]].channels}, {w}, {b}, {n_out}, "
                        f"{m}, {sh}, {st}, {out})"}
    n = T[op.output].channels
    if op.kind in ("tanh", "logistic", "relu", "requant"):
        x = taps[0]
        if sfx == "s8":  # every int8 elementwise function is a 256-entry table made by the exact numpy kernel
            kernel = {"tanh": K.tanh, "logistic": K.logistic, "relu": K.relu, "requant": K.requantize}[op.kind]
            lut = _const(p, f"op{i}_lut", "int8_t", K.lut_s8(kernel, qin[0], qout))
            return {"comment": comment, "call": f"ew_lut_s8({x}, {n}, {lut}, {out})"}
        if op.kind in ("tanh", "logistic"):
            fn = K.tanh_params if op.kind == "tanh" else K.logistic_params
            st = _struct(p, f"op{i}_params", "ew_transcendental_params", fn(qin[0], qout, dtype))
        else:
            fn = K.relu_params if op.kind == "relu" else K.requant_params
            st = _struct(p, f"op{i}_params", "ew_requant_params", fn(qin[0], qout, dtype))
        return {"comment": comment, "call": f"ew_{op.kind}_{sfx}({x}, {n}, {st}, {out})"}
    if op.kind in ("add", "mul"):
        fn, ctype = (K.add_params, "ew_add_params") if op.kind == "add" else (K.mul_params, "ew_mul_params")
        st = _struct(p, f"op{i}_params", ctype, fn(qin[0], qin[1], qout, dtype))
        return {"comment": comment, "call": f"ew_{op.kind}_{sfx}({taps[0]}, {taps[1]}, {n}, {st}, {out})"}
    if op.kind in ("avgpool", "maxpool"):
        st = _struct(p, f"op{i}_params", "ew_pool_params", K.pool_params(qin[0], dtype, out_q=qout))
        return {"comment": comment, "taps": taps,
                "call": f"ew_{op.kind}_{sfx}(taps, {len(taps)}, {n}, {st}, {out})"}
    if op.kind == "concat":
        lens = _const(p, f"op{i}_lens", "int32_t", [T[name].channels for name, _ in op.inputs])
        return {"comment": comment, "taps": taps, "call": f"ew_concat_{sfx}(taps, {lens}, {len(taps)}, {out})"}
    raise AssertionError(op.kind)


# -- prepared fast paths (firmware/src/ew_fcq.c, ew_eltq.c; formulas in edgewave_rt.h) ---------

INT32_LIMIT = (1 << 31) - 4
_POST_KINDS = ("tanh", "logistic", "relu", "requant")


def _wrap32(v: int) -> int:
    return (int(v) + (1 << 31)) % (1 << 32) - (1 << 31)


def _rq(mult: int, shift: int, zp: int, xmax: int) -> tuple[int, int, int, int] | None:
    """(m2, add, neg, shift) of ew_rq for MBQM(x, mult, shift) + zp with |x| <= xmax, or None
    when the single-multiply form is not provably exact (left shifts, zero multiplier, overflow)."""
    mult, shift = int(mult), int(shift)
    if not (1 << 30) <= mult < (1 << 31) or shift > 0 or shift < -31:
        return None
    e = -shift
    add = ((1 << (e - 1)) if e else 0) + zp * (1 << e)
    if abs(add) + (xmax * mult >> 31) + 2 >= INT32_LIMIT:
        return None
    return _wrap32(2 * mult), add, (-1 if e else 0), e


def _t16q(params) -> tuple[int, int, int] | None:
    mult, ls = int(params.input_multiplier), int(params.input_left_shift)
    rnd = (1 << (ls - 1)) if ls > 0 else 0
    if mult < 0 or ls < 0 or ls > 31 or 32768 * mult + rnd >= INT32_LIMIT:
        return None
    return mult, rnd, ls


def _pairs(depth: int, int8: bool) -> list[tuple[int, int]]:
    """Element indices of each 16-bit pair word of the gathered input (see ew_gather_*)."""
    if int8:
        n = -(-depth // 4) * 4
        return [(4 * (j // 2) + (j % 2), 4 * (j // 2) + (j % 2) + 2) for j in range(n // 2)]
    n = -(-depth // 2) * 2
    return [(2 * j, 2 * j + 1) for j in range(n // 2)]


def _t16_fused(params) -> tuple[int, int] | None:
    """(t_shift, t_mult) of an int16 TANH / LOGISTIC input scaling for the prepared kernels:
    (x * mult + round) >> shift == hi32((x << t_shift) * t_mult + 2^31) (see ew_fast.h)."""
    t = _t16q(params)
    if t is None:
        return None
    mult, _, ls = t
    ts, tm = (16, mult << (16 - ls)) if ls <= 16 else (0, mult << (32 - ls))
    return (ts, tm) if tm < (1 << 31) else None


def _fc_consts(prog: Program, op, inputs) -> tuple | None:
    """The per-output constants of a prepared fully-connected layer: (params, [(bias, [consts])]),
    or None when the prepared arithmetic is not provably exact for it."""
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
            rq = _rq(mult, shift, params.zp_out, bound)
            if rq is None or rq[2] != -1:
                return None
            chan.append((_wrap32(2 * (int(bias[o]) - params.zp_in * int(w[o].sum()))), [mult, rq[1], rq[3]]))
        else:
            # TFLM: (acc * reduced + 2^(14 - shift)) >> (15 - shift); with r = reduced << (17 + shift)
            # that is hi32(acc * r + 2^31) (SMMULR) for shifts -17..-1
            if not -17 <= shift <= -1 or mult < 0:
                return None
            reduced = (mult + (1 << 15)) >> 16 if mult < 0x7FFF0000 else 0x7FFF
            chan.append((int(bias[o]), [reduced << (17 + shift)]))
    return params, chan


def _n_pairs(depth: int, int8: bool) -> int:
    n = len(_pairs(depth, int8))
    return max(2, n + (n % 2))  # the DSP loop takes pairs two at a time


def _pack(rows, chan, depth: int, n_pairs: int, int8: bool) -> list[int]:
    """The weight stream of ew_fcq & co.: per group of four output rows (None: a zero row)
    the four biases, the interleaved weight words and each row's constants. int8 weights
    and biases are doubled (see edgewave_rt.h)."""
    pairs = _pairs(depth, int8)
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
                words.append(_wrap32((int(wp[k, a]) & 0xFFFF) | (int(wp[k, b]) << 16)))
        words += [v for c in cg for v in c[1]]
    return words


def _full_range(lo: int, hi: int, int8: bool) -> bool:
    return (lo, hi) == ((-128, 127) if int8 else (-32768, 32767))


def _post_lut(prog: Program, fc_params, qin, post, subtract: int = 0) -> np.ndarray:
    """int8: the table of ``post`` over the fully-connected output, with the layer's
    fused-activation clamp folded in (index y + 128 for any int8 y), less ``subtract``."""
    kernel = {"tanh": K.tanh, "logistic": K.logistic, "relu": K.relu, "requant": K.requantize}[post.kind]
    y = np.clip(np.arange(-128, 128), fc_params.act_min, fc_params.act_max).astype(np.int8)
    return kernel(y, qin, prog.tensors[post.output].q).astype(np.int64) - subtract


def _prep_fc(prog: Program, op, post, inputs) -> dict | None:
    int8 = prog.dtype_of(inputs[0][0]) == np.int8
    c = _fc_consts(prog, op, inputs)
    if c is None:
        return None
    params, chan = c
    fields = {"act_min": params.act_min, "act_max": params.act_max, "t_shift": 0, "t_mult": 0, "lut": None}
    full = _full_range(params.act_min, params.act_max, int8)
    if post is None:
        mode = "EW_FCQ_SAT" if full else ("EW_FCQ_USAT" if not int8 and (params.act_min, params.act_max) == (0, 32767)
                                          else "EW_FCQ_CLAMP")
    elif int8:
        mode, fields["lut"] = "EW_FCQ_LUT", _post_lut(prog, params, prog.tensors[op.output].q, post)
    else:
        if post.kind not in ("tanh", "logistic") or not full:
            return None
        fn = K.tanh_params if post.kind == "tanh" else K.logistic_params
        t = _t16_fused(fn(prog.tensors[op.output].q, prog.tensors[post.output].q, "int16"))
        if t is None:
            return None
        mode, (fields["t_shift"], fields["t_mult"]) = ("EW_FCQ_TANH" if post.kind == "tanh" else "EW_FCQ_LOGISTIC"), t
    depth = op.weights.shape[1]
    n_pairs = _n_pairs(depth, int8)
    n_out = op.weights.shape[0]
    rows = list(op.weights) + [None] * (-n_out % 4)
    words = _pack(rows, chan, depth, n_pairs, int8)
    return {"words": words, "n_out": n_out, "n_pairs": n_pairs, "mode": mode, **fields}


def _prep_gate(prog: Program, fa, pa, fb, pb, mul, inputs) -> dict | None:
    T = prog.tensors
    int8 = prog.dtype == np.int8
    dtype = np.dtype(prog.dtype).name
    if not int8 and (pa.kind, pb.kind) == ("logistic", "tanh"):  # int16 MUL is symmetric: tanh first
        fa, pa, fb, pb = fb, pb, fa, pa
    ca, cb = _fc_consts(prog, fa, inputs), _fc_consts(prog, fb, inputs)
    if ca is None or cb is None or fa.weights.shape != fb.weights.shape:
        return None
    mp = K.mul_params(T[pa.output].q, T[pb.output].q, T[mul.output].q, dtype)
    if not _full_range(mp.act_min, mp.act_max, int8):
        return None
    fields = {}
    if int8:
        la = _post_lut(prog, ca[0], T[fa.output].q, pa, mp.zp_a)
        lb = _post_lut(prog, cb[0], T[fb.output].q, pb, mp.zp_b)
        pmax = int(max(abs(x * y) for x in (la.min(), la.max()) for y in (lb.min(), lb.max())))
        fields.update(mode=0, lut_a=2 * la, lut_b=lb)
    else:
        if not (_full_range(ca[0].act_min, ca[0].act_max, False) and _full_range(cb[0].act_min, cb[0].act_max, False)):
            return None
        ts = []
        for f, post in ((fa, pa), (fb, pb)):
            fn = K.tanh_params if post.kind == "tanh" else K.logistic_params
            ts.append(_t16_fused(fn(T[f.output].q, T[post.output].q, "int16")))
        if None in ts or any(t[0] != 16 for t in ts):  # the gate kernel has t_shift 16 built in
            return None
        mode = {("tanh", "logistic"): "EW_GATE_TANH_LOGISTIC", ("tanh", "tanh"): "EW_GATE_TANH_TANH",
                ("logistic", "logistic"): "EW_GATE_LOGISTIC_LOGISTIC"}[(pa.kind, pb.kind)]
        pmax = 1 << 30
        fields.update(mode=mode, a_mult=ts[0][1], b_mult=ts[1][1])
    rq = _rq(mp.mult, mp.shift, mp.zp_out, pmax)
    if rq is None or rq[2] != -1:
        return None
    if int8:  # the doubled product (lut_a is doubled) takes the multiplier itself
        rq = (mp.mult, *rq[1:])
    depth = fa.weights.shape[1]
    n_pairs = _n_pairs(depth, int8)
    n_out = fa.weights.shape[0]
    rows, chan = [], []
    for c in range(0, n_out, 2):
        idx = [c, c + 1] if c + 1 < n_out else [c, None]
        rows += [fa.weights[i] if i is not None else None for i in idx] + [fb.weights[i] if i is not None else None for i in idx]
        chan += [ca[1][i] if i is not None else None for i in idx] + [cb[1][i] if i is not None else None for i in idx]
    words = _pack(rows, chan, depth, n_pairs, int8)
    return {"words": words, "n_out": n_out, "n_pairs": n_pairs, "m2": rq[0], "add": rq[1],
            "shift": rq[3], "order": (fa, pa, fb, pb), **fields}


def _addin(zp: int, mult: int, shift: int, left_shift: int, int8: bool) -> tuple | None:
    """(zp, sh, mult, c, neg, e) of ew_addin, or None."""
    if not int8 and zp != 0:
        return None
    if mult == 1 << 30 and shift == 0:
        return (zp, left_shift + 1, mult, 0, 0, 0)
    if not (1 << 30) <= mult < (1 << 31) or not -31 <= shift <= -1:
        return None
    e = -shift
    return (zp, left_shift + 1, mult, 1 << (e - 1), -1, e)


def _prep_fcadd(prog: Program, fc, add, side: int, inputs) -> dict | None:
    T = prog.tensors
    int8 = prog.dtype == np.int8
    dtype = np.dtype(prog.dtype).name
    c = _fc_consts(prog, fc, inputs)
    if c is None:
        return None
    params, chan = c
    qa, qb = (T[n].q for n, _ in add.inputs)
    ap = K.add_params(qa, qb, T[add.output].q, dtype)
    sides = [(ap.zp_a, ap.mult_a, ap.shift_a), (ap.zp_b, ap.mult_b, ap.shift_b)]
    info = np.iinfo(prog.dtype)
    from ..integer import fixedpoint as fp

    def scaled(zp, mult, shift, lo, hi):  # what TFLM adds up for every stored value in [lo, hi]
        v = (np.arange(lo, hi + 1, dtype=np.int64) - zp) << ap.left_shift
        return fp.multiply_by_quantized_multiplier(v, mult, shift).astype(np.int64)

    full_out = _full_range(ap.act_min, ap.act_max, int8)
    fields = {"f": (0,) * 6, "o": (0,) * 6, "lut_f": None, "lut_o": None}
    if int8:
        # the fully-connected side (any multiplier) through a table over the clamped y
        y = np.clip(np.arange(-128, 128), params.act_min, params.act_max)
        lut_f = scaled(*sides[side], -128, 127)[y + 128]
        o = _addin(*sides[1 - side], ap.left_shift, True)
        if o is not None and o[5] == 0 and full_out:
            mode = "EW_ADDFC_HALVE_O"
            lut_f = lut_f - (o[0] << (ap.left_shift - 1))
            ro_range = np.arange(-128, 128, dtype=np.int64) << (ap.left_shift - 1)
        else:
            mode = "EW_ADDFC_ANY"
            fields["lut_o"] = ro_range = scaled(*sides[1 - side], -128, 127)
        smax = int(np.abs(lut_f).max()) + int(np.abs(ro_range).max())
        # the kernel adds up doubled terms (tables doubled, the halving shifted one more)
        fields["lut_f"] = 2 * lut_f
        if fields["lut_o"] is not None:
            fields["lut_o"] = 2 * fields["lut_o"]
    else:
        f = _addin(*sides[side], ap.left_shift, False)
        o = _addin(*sides[1 - side], ap.left_shift, False)
        if f is None or o is None:
            return None
        smax = (int(np.abs(scaled(*sides[side], params.act_min, params.act_max)).max())
                + int(np.abs(scaled(*sides[1 - side], info.min, info.max)).max()))
        full = _full_range(params.act_min, params.act_max, False) and full_out
        if full and o[5] == 0 and f[5] > 0:
            mode = "EW_ADDFC_HALVE_O"
        elif full and f[5] == 0 and o[5] > 0:
            mode = "EW_ADDFC_HALVE_F"
        else:
            mode = "EW_ADDFC_ANY"
        fields.update(f=f, o=o)
    ro = _rq(ap.mult_out, ap.shift_out, ap.zp_out, smax)
    if smax * (2 if int8 else 1) >= INT32_LIMIT or ro is None or ro[2] != -1:
        return None
    if int8:  # the doubled sum takes the multiplier itself (as rq8 in ew_fcq.c)
        ro = (ap.mult_out, *ro[1:])
    depth = fc.weights.shape[1]
    n_pairs = _n_pairs(depth, int8)
    n_out = fc.weights.shape[0]
    rows = list(fc.weights) + [None] * (-n_out % 4)
    words = _pack(rows, chan, depth, n_pairs, int8)
    return {"words": words, "n_out": n_out, "n_pairs": n_pairs, "mode": mode,
            "fc_min": params.act_min, "fc_max": params.act_max, "m2": ro[0], "add": ro[1],
            "shift": ro[3], "act_min": ap.act_min, "act_max": ap.act_max, **fields}


def _prep_add(prog: Program, op) -> dict | None:
    """Constants of a stand-alone prepared ADD (ew_addq)."""
    T = prog.tensors
    int8 = prog.dtype == np.int8
    dtype = np.dtype(prog.dtype).name
    qa, qb = (T[n].q for n, _ in op.inputs)
    ap = K.add_params(qa, qb, T[op.output].q, dtype)
    sides = [(ap.zp_a, ap.mult_a, ap.shift_a), (ap.zp_b, ap.mult_b, ap.shift_b)]
    a = _addin(*sides[0], ap.left_shift, int8)
    b = _addin(*sides[1], ap.left_shift, int8)
    if a is None or b is None:
        return None
    info = np.iinfo(prog.dtype)
    from ..integer import fixedpoint as fp
    scaled = [np.abs(fp.multiply_by_quantized_multiplier(
        (np.arange(info.min, info.max + 1, dtype=np.int64) - zp) << ap.left_shift, m, sh)).max() for zp, m, sh in sides]
    smax = int(scaled[0]) + int(scaled[1])
    ro = _rq(ap.mult_out, ap.shift_out, ap.zp_out, smax)
    if smax >= INT32_LIMIT or ro is None or ro[2] != -1:
        return None
    mode = "EW_ADDQ_ANY"
    if _full_range(ap.act_min, ap.act_max, int8):
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
    return {"a": a, "b": b, "mode": mode, "m2": ro[0], "add": ro[1], "shift": ro[3],
            "act_min": ap.act_min, "act_max": ap.act_max}


def _fuse(prog: Program) -> list[FusedOp]:
    """The program's ops grouped into calls (see FusedOp), in an order that respects every
    dependency: a fused call sits where its last-needed input is available."""
    T = prog.tensors
    ops = prog.ops
    pos = {id(op): i for i, op in enumerate(ops)}
    producer = {op.output: op for op in ops}
    rings = set(prog.ring_lengths())
    inputs = {id(op): list(op.inputs) for op in ops}
    done: set[int] = set()
    fused: list[tuple[int, FusedOp]] = []

    # a concatenation read only by fully-connected layers: they gather its inputs instead
    for op in ops:
        if op.kind != "concat":
            continue
        readers = [o for o in ops if any(n == op.output for n, _ in o.inputs)]
        if (readers and op.output not in rings and op.output != prog.output
                and all(o.kind == "fc" and o.inputs == [(op.output, 0)] for o in readers)
                and len({T[n].channels for n, _ in op.inputs}) == 1
                and all(_prep_fc(prog, o, None, list(op.inputs)) is not None for o in readers)):
            for o in readers:
                inputs[id(o)] = list(op.inputs)
            done.add(id(op))

    nreaders: dict[str, int] = {}
    for op in ops:
        if id(op) not in done:
            for n, _ in inputs[id(op)]:
                nreaders[n] = nreaders.get(n, 0) + 1

    def private(name):  # read once, at delay 0, by one op, and not kept
        return nreaders.get(name) == 1 and name not in rings and name not in (prog.output, prog.input)

    def free(*os):  # the input stage's int16 layers run the plain kernels
        return all(o is not None and id(o) not in done and not _touches_wide(prog, o) for o in os)

    def take(kind, parts, anchor, inp, output, prep, other=None):
        done.update(id(o) for o in parts)
        fused.append((pos[id(anchor)], FusedOp(kind, inp, output, parts, pos[id(parts[0])], prep, other)))

    # gated units: MUL(f(FC_a(x)), g(FC_b(x)))
    for m in ops:
        if m.kind != "mul" or not free(m) or len(m.inputs) != 2 or any(d for _, d in m.inputs):
            continue
        (a, _), (b, _) = m.inputs
        pa, pb = producer.get(a), producer.get(b)
        if a == b or not free(pa, pb) or pa.kind not in ("tanh", "logistic") or pb.kind not in ("tanh", "logistic"):
            continue
        (xa, da), (xb, db) = pa.inputs[0], pb.inputs[0]
        fa, fb = producer.get(xa), producer.get(xb)
        if da or db or not free(fa, fb) or fa.kind != "fc" or fb.kind != "fc" or inputs[id(fa)] != inputs[id(fb)]:
            continue
        if not all(private(n) for n in (a, b, xa, xb)):
            continue
        prep = _prep_gate(prog, fa, pa, fb, pb, m, inputs[id(fa)])
        if prep is not None:
            first = fa if pos[id(fa)] < pos[id(fb)] else fb
            take("gate", [first, *(o for o in (fa, pa, fb, pb, m) if o is not first)], first, inputs[id(fa)],
                 m.output, prep)

    # residual ADD of a fully-connected output
    for add in ops:
        if add.kind != "add" or not free(add) or any(d for _, d in add.inputs):
            continue
        for side in (1, 0):
            y, x = add.inputs[side][0], add.inputs[1 - side]
            fc = producer.get(y)
            if y == x[0] or not free(fc) or fc.kind != "fc":
                continue
            if private(y):
                prep = _prep_fcadd(prog, fc, add, side, inputs[id(fc)])
                if prep is not None:
                    take("fcadd", [fc, add], add, inputs[id(fc)], add.output, prep, other=x)
                    break
            elif y not in (prog.output, prog.input) and (x[0] == prog.input or pos[id(producer[x[0]])] < pos[id(fc)]):
                # y is read elsewhere too: the call, at the layer's place (where x already
                # exists and before y's other readers), also stores y
                prep = _prep_fcadd(prog, fc, add, side, inputs[id(fc)])
                if prep is not None:
                    take("fcadd", [fc, add], fc, inputs[id(fc)], add.output, prep, other=x)
                    fused[-1][1].also = y
                    break

    # fully-connected layers, with the elementwise function that alone reads them
    for fc in ops:  # (the input stage's int16x8 layers too, without what reads them)
        if fc.kind != "fc" or id(fc) in done:
            continue
        post = None
        if private(fc.output) and free(fc):
            reader = next((o for o in ops if id(o) not in done and any(n == fc.output for n, _ in inputs[id(o)])), None)
            if reader is not None and reader.kind in _POST_KINDS and reader.inputs == [(fc.output, 0)] and free(reader):
                post = reader
        prep = _prep_fc(prog, fc, post, inputs[id(fc)]) if post is not None else None
        if prep is not None:
            take("fc", [fc, post], fc, inputs[id(fc)], post.output, prep)
            continue
        prep = _prep_fc(prog, fc, None, inputs[id(fc)])
        if prep is not None:
            take("fc", [fc], fc, inputs[id(fc)], fc.output, prep)

    for op in ops:
        if id(op) not in done:
            fused.append((pos[id(op)], FusedOp("op", inputs[id(op)], op.output, [op], pos[id(op)])))
    fused.sort(key=lambda t: t[0])
    return [f for _, f in fused]


def _layout(p: Plan) -> tuple[int, dict[str, int]]:
    """Byte offsets in the state struct (model.h.j2: heads, scratch, rings)."""
    item = 2 if p.suffix == "s16" else 1
    off = 4 * len(p.rings)
    scratch = off
    off += max(p.scratch_size, 1) * item
    rings = {}
    for r in p.rings:
        if not r.wide:  # the input stage's int16 rings follow: no fused call reads them
            rings[r.tensor] = off
            off += r.rows * r.channels * item
    return scratch, rings


def _aligned(p: Plan, name: str) -> bool:
    """Every row of the tensor's storage starts 4-byte aligned (the state struct is 4-byte
    aligned when it holds a ring head)."""
    if not p.rings or p.storage[name].wide:  # the input stage's rows: no promise (memcpy copes)
        return False
    item = 2 if p.suffix == "s16" else 1
    scratch, rings = _layout(p)
    s = p.storage[name]
    if s.ring is None:
        return (scratch + s.offset * item) % 4 == 0
    return rings[name] % 4 == 0 and (s.channels * item) % 4 == 0


def _emit_fused(p: Plan, prog: Program, f: FusedOp) -> tuple[dict, int]:
    T = prog.tensors
    wide = p.storage[f.inputs[0][0]].wide  # an int8 model's int16x8 input stage
    int8 = p.suffix == "s8" and not wide
    sfx = "s16" if wide else p.suffix
    xw = "xw16" if wide and p.suffix == "s8" else "xw"
    pr = f.prep
    i = f.index
    taps = [_ref(p, n, d) for n, d in f.inputs]
    tap_len = T[f.inputs[0][0]].channels
    n_pairs = pr["n_pairs"]
    words = 0
    if int8 and tap_len % 4 == 0:
        # inline widening, 4 inputs at a time, where the emitter knows the lengths
        lines, k = [], 0
        for t, ref in enumerate(taps):
            lines.append(f"const int8_t *const t{t} = {ref};")
            for q in range(tap_len // 4):
                lines.append(f"ew_widen4_s8(&xw[{k}], t{t} + {4 * q});" if q else f"ew_widen4_s8(&xw[{k}], t{t});")
                k += 2
        lines += [f"xw[{j}] = 0;" for j in range(k, n_pairs)]
        pre, x, taps = "".join(line + "\n        " for line in lines), "xw", []
        words = n_pairs
    elif int8 and len(taps) * tap_len <= 16:
        # a few inputs (a model's first layer): packed inline, element by element
        lines = [f"const int8_t *const t{t} = {ref};" for t, ref in enumerate(taps)]
        elem = [f"t{t}[{i}]" for t in range(len(taps)) for i in range(tap_len)]

        def half(i):
            return f"(uint32_t)(int32_t){elem[i]}" if i < len(elem) else None

        for j, (a, b) in enumerate(_pairs(len(elem), True) + [(1 << 20, 1 << 20)] * n_pairs):
            if j == n_pairs:
                break
            lo, hi = half(a), half(b)
            parts = ([f"({hi} << 16)"] if hi else []) + ([f"({lo} & 0xFFFFu)"] if lo else [])
            lines.append(f"xw[{j}] = (int32_t)({' | '.join(parts)});" if parts else f"xw[{j}] = 0;")
        pre, x, taps = "".join(line + "\n        " for line in lines), "xw", []
        words = n_pairs
    elif int8:
        pre, x = f"ew_gather_s8(taps, {len(taps)}, {tap_len}, {n_pairs}, xw);\n        ", "xw"
        words = n_pairs
    elif len(taps) == 1 and tap_len == 2 * n_pairs and tap_len % 4 == 0 and _aligned(p, f.inputs[0][0]):
        pre, x, taps = "", taps[0], []
    else:
        # the emitter knows every length and alignment: plain fixed-size copies, which the
        # compiler turns into word (LDM/STM) moves, instead of a gather loop
        lines, k = [], 0
        for (n, _), ref in zip(f.inputs, taps):
            src = f"EW_ALIGNED4({ref})" if _aligned(p, n) else ref
            lines.append(f"memcpy(&{xw}.v[{k}], {src}, {2 * tap_len});")
            k += tap_len
        lines += [f"{xw}.v[{j}] = 0;" for j in range(k, 2 * n_pairs)]
        pre, x, taps = "".join(line + "\n        " for line in lines), f"{xw}.v", []
        words = n_pairs
    wname = _const(p, f"op{i}_wq", "int32_t", pr["words"])
    head = f".w = {wname}, .n_out = {pr['n_out']}, .n_pairs = {n_pairs}, .mode = {pr['mode']}"
    names = ", ".join(f"{n}@{d}" if d else n for n, d in f.inputs)
    out = _ref(p, f.output, 0)
    sname = f"op{i}_{f.kind}q"
    if f.kind == "fc":
        lut = "NULL"
        if pr["lut"] is not None:
            lut = _const(p, f"op{i}_lut", "int8_t", pr["lut"])
        p.consts.append({"ctype": "ew_fcq", "name": sname,
                         "struct": f"{head}, .act_min = {pr['act_min']}, .act_max = {pr['act_max']}, "
                                   f".t_shift = {pr['t_shift']}, .t_mult = {pr['t_mult']}, .lut = {lut}"})
        call = f"ew_fcq_{pr['mode'][7:].lower()}_{sfx}({x}, &{sname}, {out})"
        comment = f"fc {names} -> {f.parts[0].output}" + (f", {f.parts[1].kind} -> {f.output}" if len(f.parts) > 1 else "")
    elif f.kind == "gate":
        luts = ".lut_a = NULL, .lut_b = NULL"
        if int8:
            la = _const(p, f"op{i}_luta", "int16_t", pr["lut_a"])
            lb = _const(p, f"op{i}_lutb", "int16_t", pr["lut_b"])
            luts = f".lut_a = {la}, .lut_b = {lb}"
        p.consts.append({"ctype": "ew_gateq", "name": sname,
                         "struct": f"{head}, .a_mult = {pr.get('a_mult', 0)}, .b_mult = {pr.get('b_mult', 0)}, {luts}, "
                                   f".m2 = {pr['m2']}, .add = {pr['add']}, .shift = {pr['shift']}"})
        kind = {"EW_GATE_TANH_LOGISTIC": "tl_", "EW_GATE_TANH_TANH": "tt_", "EW_GATE_LOGISTIC_LOGISTIC": "ll_"}.get(pr["mode"], "")
        call = f"ew_gateq_{kind}{p.suffix}({x}, &{sname}, {out})"
        fa, pa, fb, pb = pr["order"]
        comment = (f"gated unit: fc {names} -> {fa.output}, {pa.kind}; fc -> {fb.output}, {pb.kind}; "
                   f"mul -> {f.output}")
    else:
        def addin(v):
            return "{ " + ", ".join(str(int(x)) for x in v) + " }"
        luts = []
        for key in ("lut_f", "lut_o"):
            luts.append("NULL" if pr[key] is None else _const(p, f"op{i}_{key}", "int32_t", pr[key]))
        p.consts.append({"ctype": "ew_addfcq", "name": sname,
                         "struct": f"{head}, .fc_min = {pr['fc_min']}, .fc_max = {pr['fc_max']}, "
                                   f".f = {addin(pr['f'])}, .o = {addin(pr['o'])}, .lut_f = {luts[0]}, "
                                   f".lut_o = {luts[1]}, .m2 = {pr['m2']}, "
                                   f".add = {pr['add']}, .shift = {pr['shift']}, .act_min = {pr['act_min']}, "
                                   f".act_max = {pr['act_max']}"})
        other = _ref(p, *f.other)
        mode = pr["mode"][9:].lower()  # halve_o, halve_f, any
        if f.also:
            call = f"ew_addfcq_y_{mode}_{p.suffix}({x}, &{sname}, {other}, {out}, {_ref(p, f.also, 0)})"
        else:
            call = f"ew_addfcq_{mode}_{p.suffix}({x}, &{sname}, {other}, {out})"
        comment = f"fc {names} -> {f.parts[0].output}; add {f.other[0]} -> {f.output}"
    return {"comment": comment, "taps": taps, "call": pre + call}, words


def _fast_elementwise(p: Plan, prog: Program, i: int, op) -> dict | None:
    T = prog.tensors
    dtype = np.dtype(prog.dtype).name
    sfx = p.suffix
    qin = [T[n].q for n, _ in op.inputs]
    qout = T[op.output].q
    out = _ref(p, op.output, 0)
    taps = [_ref(p, n, d) for n, d in op.inputs]
    names = ", ".join(f"{n}@{d}" if d else n for n, d in op.inputs)
    comment = f"{op.kind} {names} -> {op.output}"
    n = T[op.output].channels
    lo, hi = np.iinfo(prog.dtype).min, np.iinfo(prog.dtype).max

    def rq_body(rq):
        return f"{{ {rq[0]}, {rq[1]}, {rq[2]}, {rq[3]} }}"

    if op.kind == "add":
        prep = _prep_add(prog, op)
        if prep is None:
            return None
        name = f"op{i}_addq"
        addin = [("{ " + ", ".join(str(int(v)) for v in q) + " }") for q in (prep["a"], prep["b"])]
        p.consts.append({"ctype": "ew_addq", "name": name,
                         "struct": f".a = {addin[0]}, .b = {addin[1]}, .mode = {prep['mode']}, .m2 = {prep['m2']}, "
                                   f".add = {prep['add']}, .shift = {prep['shift']}, .act_min = {prep['act_min']}, "
                                   f".act_max = {prep['act_max']}"})
        return {"comment": comment, "call": f"ew_addq_{sfx}({taps[0]}, {taps[1]}, {n}, &{name}, {out})"}
    if op.kind == "mul":
        mp = K.mul_params(qin[0], qin[1], qout, dtype)
        corners = [(a - mp.zp_a) * (b - mp.zp_b) for a in (lo, hi) for b in (lo, hi)]
        pmax = max(abs(c) for c in corners)
        if pmax >= INT32_LIMIT:
            return None
        ro = _rq(mp.mult, mp.shift, mp.zp_out, pmax)
        if ro is None:
            return None
        name = f"op{i}_mulq"
        p.consts.append({"ctype": "ew_mulq", "name": name,
                         "struct": f".out = {rq_body(ro)}, .zp_a = {mp.zp_a}, .zp_b = {mp.zp_b}, "
                                   f".act_min = {mp.act_min}, .act_max = {mp.act_max}"})
        return {"comment": comment, "call": f"ew_mulq_{sfx}({taps[0]}, {taps[1]}, {n}, &{name}, {out})"}
    if sfx != "s16" and not p.storage[op.inputs[0][0]].wide:
        return None
    if op.kind in ("tanh", "logistic"):
        fn = K.tanh_params if op.kind == "tanh" else K.logistic_params
        t = _t16q(fn(qin[0], qout, dtype))
        if t is None:
            return None
        name = f"op{i}_t16q"
        p.consts.append({"ctype": "ew_t16q", "name": name,
                         "struct": f".mult = {t[0]}, .round = {t[1]}, .shift = {t[2]}, "
                                   f".kind = {1 if op.kind == 'tanh' else 2}"})
        return {"comment": comment, "call": f"ew_t16q_s16({taps[0]}, {n}, &{name}, {out})"}
    if op.kind in ("relu", "requant"):
        fn = K.relu_params if op.kind == "relu" else K.requant_params
        rp = fn(qin[0], qout, dtype)
        if rp.zp_in != 0:
            return None
        # a multiplier >= 1: TFLM shifts left first (exact for int16 inputs up to 15 bits), then shift 0
        pre = max(int(rp.shift), 0)
        ro = _rq(rp.mult, min(int(rp.shift), 0), rp.zp_out, 32768 << pre) if pre <= 15 else None
        if ro is None:
            return None
        name = f"op{i}_rq"
        p.consts.append({"ctype": "ew_rq", "name": name, "struct": rq_body(ro)[2:-2]})
        kernel = "ew_requantq_s16" if sfx == "s16" else "ew_requantq_s16_s8"  # the latter: the input stage narrowed
        return {"comment": comment,
                "call": f"{kernel}({taps[0]}, {n}, &{name}, {pre}, {rp.act_min}, {rp.act_max}, {out})"}
    return None


def ram_bytes(p: Plan) -> int:
    """All the RAM a step needs: the state struct plus the gather buffer on the step's stack."""
    return state_struct_bytes(p) + p.stack_bytes


def state_struct_bytes(p: Plan) -> int:
    """sizeof(state) on a 32-bit MCU: ring rows, one uint32 head per ring, the scratch areas."""
    item = 2 if p.suffix == "s16" else 1
    raw = sum(r.rows * r.channels * item for r in p.rings if not r.wide) + max(p.scratch_size, 1) * item
    wide = sum(r.rows * r.channels * 2 for r in p.rings if r.wide) + 2 * p.scratch16_size
    if wide:
        raw = (raw + 1) // 2 * 2 + wide
    raw = (raw + 3) // 4 * 4
    return raw + 4 * len(p.rings)
