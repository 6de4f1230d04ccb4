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

    @property
    def rings(self) -> list[Storage]:
        return [s for s in self.storage.values() if s.ring]


def _values(arr) -> str:
    return ", ".join(str(int(v)) for v in np.asarray(arr).ravel())


def plan(prog: Program, prefix: str) -> Plan:
    if not prog.quantized:
        raise UserError("emit needs an int8 or int16x8 OUT_DIR; float32 models have no integer C runtime — "
                        "convert with --precision int16x8 or int8")
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
    for i, op in enumerate(prog.ops):
        p.calls.append({"taps": [], **_call(p, prog, i, op)})
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


def ram_bytes(p: Plan) -> int:
    """sizeof(state) on a 32-bit MCU: ring rows, one uint32 head per ring, the scratch area."""
    item = 2 if p.suffix == "s16" else 1
    rings = sum(r.rows * r.channels * item for r in p.rings)
    raw = rings + p.scratch_size * item
    raw = (raw + 3) // 4 * 4
    return raw + 4 * len(p.rings)
