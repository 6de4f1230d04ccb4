"""Program -> what the C templates print: memory layout, constants, and one kernel call per op.

Every decision lives here; the templates only print. Memory: one ring per
tensor that is read at a delay, holding `length + 1` rows so the current
value is written straight into its slot (no copy into the ring afterwards);
every other tensor gets a slot in a scratch area shared by tensors whose
lifetimes do not overlap within a step.
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
    head: str | None = None       # state member with the current row
    rows: int = 0                 # ring rows (= max delay + 1)
    offset: int | None = None     # scratch offset (non-ring tensors)


@dataclass
class Plan:
    prefix: str
    ctype: str
    suffix: str
    storage: dict[str, Storage]
    scratch_size: int
    consts: list[dict] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)
    stack_bytes: int = 0  # step-local buffers (not in the state struct)

    @property
    def rings(self) -> list[Storage]:
        return [s for s in self.storage.values() if s.ring]


def _values(arr) -> str:
    return ", ".join(str(int(v)) for v in np.asarray(arr).ravel())


def plan(prog: Program, prefix: str) -> Plan:
    assert prog.quantized, "emit.pipeline refuses float programs"
    ctype, suffix = ("int16_t", "s16") if prog.dtype == np.int16 else ("int8_t", "s8")
    lengths = prog.ring_lengths()
    storage: dict[str, Storage] = {}
    for i, name in enumerate(prog.tensors):
        t = prog.tensors[name]
        if name in lengths:
            storage[name] = Storage(name, t.channels, f"ring{i}", f"head{i}", lengths[name] + 1)
        else:
            storage[name] = Storage(name, t.channels)
    scratch = _allocate_scratch(prog, storage)
    p = Plan(prefix, ctype, suffix, storage, scratch)
    readers: dict[str, int] = {}
    for op in prog.ops:
        for name, _ in op.inputs:
            readers[name] = readers.get(name, 0) + 1
    fused: set[int] = set()
    gathered = None  # taps whose gathered inputs are in xw (fast FCs reuse them)
    xw_size = 0
    for i, op in enumerate(prog.ops):
        if i in fused:
            continue
        post = None
        nxt = prog.ops[i + 1] if i + 1 < len(prog.ops) else None
        if (op.kind == "fc" and nxt is not None and nxt.kind in _POST_KINDS and nxt.inputs == [(op.output, 0)]
                and readers.get(op.output) == 1 and storage[op.output].ring is None and op.output != prog.output):
            post = nxt
        call = _fast_fc(p, prog, i, op, post, gathered) if op.kind == "fc" else None
        if call is not None:
            if post is not None and call.pop("fused"):
                fused.add(i + 1)
            gathered = call.pop("gathered")
            xw_size = max(xw_size, call.pop("xw"))
        else:
            call = _fast_elementwise(p, prog, i, op) if op.kind != "fc" else None
            if call is None:
                call = _call(p, prog, i, op)
        p.calls.append({"taps": [], **call})
        written = prog.ops[i + 1].output if i + 1 in fused else op.output
        if gathered is not None and (written in {n for n, _ in gathered[1]} or op.output in {n for n, _ in gathered[1]}):
            gathered = None
    p.stack_bytes = 4 * xw_size
    if xw_size:
        p.calls.insert(0, {"decl": f"int32_t xw[{xw_size}]; /* fully-connected inputs as 16-bit pairs */",
                           "comment": "", "taps": [], "call": ""})
    return p


def _allocate_scratch(prog: Program, storage: dict[str, Storage]) -> int:
    """First-fit offsets for non-ring tensors, freeing each after its last reader within the step."""
    last_use = {}
    for i, op in enumerate(prog.ops):
        for name, _ in op.inputs:
            last_use[name] = i
    last_use[prog.output] = len(prog.ops)
    live: list[tuple[int, int, str]] = []  # (offset, size, tensor)
    size = 0

    def place(name):
        nonlocal size
        need = storage[name].channels
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
    for i, op in enumerate(prog.ops):
        if storage[op.output].ring is None:
            place(op.output)
        live[:] = [(o, s, n) for o, s, n in live if last_use.get(n, -1) > i]
    return size


def _ref(p: Plan, name: str, delay: int) -> str:
    s = p.storage[name]
    if s.ring is None:
        assert delay == 0
        return f"&s->scratch[{s.offset}]"
    if delay == 0:
        return f"s->{s.ring}[s->{s.head}]"
    return f"s->{s.ring}[ew_back(s->{s.head}, {delay}u, {s.rows}u)]"


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
    dtype = np.dtype(prog.dtype).name
    qin = [T[n].q for n, _ in op.inputs]
    qout = T[op.output].q
    out = _ref(p, op.output, 0)
    taps = [_ref(p, n, d) for n, d in op.inputs]
    names = ", ".join(f"{n}@{d}" if d else n for n, d in op.inputs)
    comment = f"{op.kind} {names} -> {op.output}"
    sfx = p.suffix
    if op.kind == "fc":
        n_out, depth = op.weights.shape
        params = K.fc_params(qin[0], op.weight_scales, qout, op.activation, dtype)
        mult, shift = params.per_channel(n_out)
        w = _const(p, f"op{i}_weights", "int8_t", op.weights)
        bias_type = "int64_t" if sfx == "s16" else "int32_t"
        b = _const(p, f"op{i}_bias", bias_type, op.bias)
        m = _const(p, f"op{i}_mult", "int32_t", mult)
        sh = _const(p, f"op{i}_shift", "int32_t", shift)
        st = _struct(p, f"op{i}_params", "ew_fc_params", params)
        return {"comment": comment, "taps": taps,
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
    """Element indices of each 16-bit pair word of the gathered input (see ew_fcq_gather_*)."""
    if int8:
        n = -(-depth // 4) * 4
        return [(4 * (j // 2) + (j % 2), 4 * (j // 2) + (j % 2) + 2) for j in range(n // 2)]
    n = -(-depth // 2) * 2
    return [(2 * j, 2 * j + 1) for j in range(n // 2)]


def _fast_fc(p: Plan, prog: Program, i: int, op, post, gathered) -> dict | None:
    T = prog.tensors
    dtype = np.dtype(prog.dtype).name
    int8 = p.suffix == "s8"
    qin = T[op.inputs[0][0]].q
    qout = T[op.output].q
    n_out, depth = op.weights.shape
    params = K.fc_params(qin, op.weight_scales, qout, op.activation, dtype)
    mults, shifts = params.per_channel(n_out)
    w = np.asarray(op.weights, np.int64)
    bias = np.zeros(n_out, np.int64) if op.bias is None else np.asarray(op.bias).astype(np.int64)
    if not int8 and op.bias is not None and np.asarray(op.bias).dtype != np.int64:
        return None
    if int8:
        xdev = max(abs(-128 - params.zp_in), abs(127 - params.zp_in))
    else:
        xdev = 32768
    bound = int(np.max(np.abs(bias) + np.abs(w).sum(axis=1) * xdev)) if n_out else 0
    if bound >= INT32_LIMIT:
        return None
    chan = []
    for o in range(n_out):
        if int8:
            rq = _rq(mults[o], shifts[o], params.zp_out, bound)
            if rq is None or rq[2] != -1:
                return None
            b = _wrap32(int(bias[o]) - params.zp_in * int(w[o].sum()))
            chan.append((b, (rq[0], rq[1], rq[3])))
        else:
            mult, shift = int(mults[o]), int(shifts[o])
            if shift > 14:
                return None
            reduced = (mult + (1 << 15)) >> 16 if mult < 0x7FFF0000 else 0x7FFF
            ts = 15 - shift
            k = max(0, 33 - ts)
            e = ts + k - 32
            if k > 16 or not 1 <= e <= 31 or reduced < 0:
                return None
            chan.append((int(bias[o]), (reduced << k, 1 << (e - 1), e)))
    groups = -(-n_out // 4)
    chan += [(0, (0, 0, 0))] * (groups * 4 - n_out)
    chan = [v for g in range(groups) for v in [b for b, _ in chan[4 * g:4 * g + 4]]
            + [x for _, q in chan[4 * g:4 * g + 4] for x in q]]
    pairs = _pairs(depth, int8)
    if len(pairs) % 2:  # the DSP loop takes pairs two at a time
        pairs.append((2 * len(pairs) + 2, 2 * len(pairs) + 3))
    wp = np.zeros((groups * 4, 2 * len(pairs) + 4), np.int64)
    wp[:n_out, :depth] = w
    words = []
    for g in range(groups):
        for a, b in pairs:
            for k_ in range(4):
                words.append(_wrap32((int(wp[4 * g + k_, a]) & 0xFFFF) | (int(wp[4 * g + k_, b]) << 16)))
    # fused elementwise function of the single reader
    lut, t16, fused, out_name = "NULL", "NULL", False, op.output
    if post is not None:
        qpost = T[post.output].q
        if int8:
            kernel = {"tanh": K.tanh, "logistic": K.logistic, "relu": K.relu, "requant": K.requantize}[post.kind]
            lut = _const(p, f"op{i + 1}_lut", "int8_t", K.lut_s8(kernel, qout, qpost))
            fused = True
        elif post.kind in ("tanh", "logistic"):
            fn = K.tanh_params if post.kind == "tanh" else K.logistic_params
            t = _t16q(fn(qout, qpost, dtype))
            if t is not None:
                name = f"op{i + 1}_t16q"
                p.consts.append({"ctype": "ew_t16q", "name": name,
                                 "struct": f".mult = {t[0]}, .round = {t[1]}, .shift = {t[2]}, "
                                           f".kind = {1 if post.kind == 'tanh' else 2}"})
                t16, fused = f"&{name}", True
        if fused:
            out_name = post.output
    wname = _const(p, f"op{i}_wq", "int32_t", words)
    cname = _const(p, f"op{i}_chan", "int32_t", chan)
    sname = f"op{i}_fcq"
    p.consts.append({"ctype": "ew_fcq", "name": sname,
                     "struct": f".w = {wname}, .chan = {cname}, .n_out = {n_out}, .n_pairs = {len(pairs)}, "
                               f".act_min = {params.act_min}, .act_max = {params.act_max}, "
                               f".lut = {lut}, .t16 = {t16}"})
    key = tuple(op.inputs)
    taps = [_ref(p, n, d) for n, d in op.inputs]
    names = ", ".join(f"{n}@{d}" if d else n for n, d in op.inputs)
    comment = f"fc {names} -> {op.output}" + (f", {post.kind} -> {post.output}" if fused else "")
    out = _ref(p, out_name, 0)
    call = f"ew_fcq_{p.suffix}(xw, &{sname}, {out})"
    reuse = gathered is not None and gathered[0] == (key, len(pairs)) and all(
        p.storage[n].ring is not None for n, _ in op.inputs)
    if not reuse:
        call = (f"ew_fcq_gather_{p.suffix}(taps, {len(taps)}, {T[op.inputs[0][0]].channels}, {len(pairs)}, xw);\n"
                f"        {call}")
    else:
        taps = []
        comment += " (inputs already gathered)"
    return {"comment": comment, "taps": taps, "call": call, "fused": fused,
            "gathered": ((key, len(pairs)), key), "xw": len(pairs)}


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
    values = np.arange(lo, hi + 1, dtype=np.int64)

    def rq_body(rq):
        return f"{{ {rq[0]}, {rq[1]}, {rq[2]}, {rq[3]} }}"

    if op.kind == "add":
        ap = K.add_params(qin[0], qin[1], qout, dtype)
        xa = (values - ap.zp_a) << ap.left_shift
        xb = (values - ap.zp_b) << ap.left_shift
        if max(np.abs(xa).max(), np.abs(xb).max()) >= (1 << 31):
            return None
        ra = _rq(ap.mult_a, ap.shift_a, 0, int(np.abs(xa).max()))
        rb = _rq(ap.mult_b, ap.shift_b, 0, int(np.abs(xb).max()))
        if ra is None or rb is None:
            return None
        # ew_addq_* assumes neg = -1: multiplier exactly 1/2 on the even (x - zp) << left_shift
        # is an exact halving, (x + 1 - [x < 0]) >> 1 (m2 0, add 1, shift 1)
        halve = (0, 1, -1, 1)
        ra = halve if ra[2] == 0 and ap.mult_a == 1 << 30 and ap.left_shift >= 1 else ra
        rb = halve if rb[2] == 0 and ap.mult_b == 1 << 30 and ap.left_shift >= 1 else rb
        from ..integer import fixedpoint as fp
        sa = fp.multiply_by_quantized_multiplier(xa, ap.mult_a, ap.shift_a)
        sb = fp.multiply_by_quantized_multiplier(xb, ap.mult_b, ap.shift_b)
        smax = max(abs(int(sa.min()) + int(sb.min())), abs(int(sa.max()) + int(sb.max())))
        if smax >= INT32_LIMIT:
            return None
        ro = _rq(ap.mult_out, ap.shift_out, ap.zp_out, smax)
        if ro is None or any(r[2] != -1 for r in (ra, rb, ro)):
            return None
        name = f"op{i}_addq"
        p.consts.append({"ctype": "ew_addq", "name": name,
                         "struct": f".a = {rq_body(ra)}, .b = {rq_body(rb)}, .out = {rq_body(ro)}, "
                                   f".zp_a = {ap.zp_a}, .zp_b = {ap.zp_b}, .left_shift = {ap.left_shift}, "
                                   f".act_min = {ap.act_min}, .act_max = {ap.act_max}"})
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
    if sfx != "s16":
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
        ro = _rq(rp.mult, rp.shift, rp.zp_out, 32768)
        if ro is None:
            return None
        name = f"op{i}_rq"
        p.consts.append({"ctype": "ew_rq", "name": name, "struct": rq_body(ro)[2:-2]})
        return {"comment": comment,
                "call": f"ew_requantq_s16({taps[0]}, {n}, &{name}, {rp.act_min}, {rp.act_max}, {out})"}
    return None


def ram_bytes(p: Plan) -> int:
    """All the RAM a step needs: the state struct plus the gather buffer on the step's stack."""
    return state_struct_bytes(p) + p.stack_bytes


def state_struct_bytes(p: Plan) -> int:
    """sizeof(state) on a 32-bit MCU: ring rows, one uint32 head per ring, the scratch area."""
    item = 2 if p.suffix == "s16" else 1
    rings = sum(r.rows * r.channels * item for r in p.rings)
    raw = rings + p.scratch_size * item
    raw = (raw + 3) // 4 * 4
    return raw + 4 * len(p.rings)
