"""Pass: lower each fused call to a runtime kernel and its constants.

Fills ``Plan.calls`` with one record per call: which macro of templates/calls.j2 prints it
(``macro``), the storage it reads and writes (``inputs``, ``out``: allocate.Storage with
the tap's delay), the kernel's variant and the names of its constants; and ``Plan.consts``
with those constants, in the order the calls need them: arrays (``data``) and struct
initializers (``fields``: (member or None for a positional one, value) pairs, a value being
a number, a constant's name, None for NULL, or a sequence for a nested initializer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import integer as K
from . import pack
from .allocate import aligned
from .fuse import FusedOp, touches_wide

if TYPE_CHECKING:
    from ..program import Program
    from .plan import Plan


def lower(p: Plan, prog: Program, fops: list[FusedOp]) -> None:
    for f in fops:
        if f.kind != "op":
            call = _prepared_fc(p, prog, f)
        else:
            op = f.parts[0]
            fast = op.kind == "requant" or (op.kind != "fc" and not touches_wide(prog, op))
            call = (_prepared_elementwise(p, prog, f.index, op) if fast else None) or _plain(p, prog, f.index, op)
        p.calls.append({"kind": f.kind, "parts": f.parts, "inputs": [(p.storage[n], d) for n, d in f.inputs],
                        "out": p.storage[f.output], "tap_array": False, "tap_ctype": p.ctype, **call})


def _array(p: Plan, name: str, ctype: str, values) -> str:
    p.consts.append({"ctype": ctype, "name": name, "data": [int(v) for v in np.asarray(values).ravel()],
                     "fields": None})
    return name


def _struct(p: Plan, name: str, ctype: str, fields: list[tuple[str | None, object]]) -> str:
    p.consts.append({"ctype": ctype, "name": name, "fields": fields})
    return name


def _params(p: Plan, name: str, ctype: str, params) -> str:
    """A struct of the plain kernels' parameters: every int member of ``params``, in order."""
    return _struct(p, name, ctype, [(k, v) for k, v in vars(params).items() if isinstance(v, int)])


def _plain(p: Plan, prog: Program, i: int, op) -> dict:
    """The reference kernels (firmware/src/ew_<op>_<type>.c), TFLM's arithmetic as it is."""
    T = prog.tensors
    in_wide = p.storage[op.inputs[0][0]].wide
    dtype = "int16" if in_wide else np.dtype(prog.dtype).name
    qin = [T[n].q for n, _ in op.inputs]
    qout = T[op.output].q
    sfx = "s16" if in_wide else p.suffix
    name = f"op{i}_params"
    if in_wide and op.kind == "requant" and not p.storage[op.output].wide:  # the input stage narrows to int8
        st = _params(p, name, "ew_requant_params", K.requant_params(qin[0], qout, prog.dtype))
        return {"macro": "unary", "fn": "requant", "sfx": "s16_s8", "params": st}
    if op.kind == "fc":
        n_out = op.weights.shape[0]
        params = K.fc_params(qin[0], op.weight_scales, qout, op.activation, dtype, prog.fc_as_conv(op))
        mult, shift = params.per_channel(n_out)
        return {"macro": "fc", "sfx": sfx, "tap_array": True, "tap_ctype": p.storage[op.inputs[0][0]].ctype,
                "weights": _array(p, f"op{i}_weights", "int8_t", op.weights),
                "bias": _array(p, f"op{i}_bias", "int64_t" if sfx == "s16" else "int32_t", op.bias),
                "n_out": n_out, "mult": _array(p, f"op{i}_mult", "int32_t", mult),
                "shift": _array(p, f"op{i}_shift", "int32_t", shift),
                "params": _params(p, name, "ew_fc_params", params)}
    if op.kind in pack.ELEMENTWISE:
        if sfx == "s8":  # every int8 elementwise function is a 256-entry table made by the exact numpy kernel
            lut = _array(p, f"op{i}_lut", "int8_t", K.lut_s8(pack.ELEMENTWISE[op.kind], qin[0], qout))
            return {"macro": "lut", "table": lut}
        ctype = "ew_transcendental_params" if op.kind in ("tanh", "logistic") else "ew_requant_params"
        st = _params(p, name, ctype, pack.ELEMENTWISE_PARAMS[op.kind](qin[0], qout, dtype))
        return {"macro": "unary", "fn": op.kind, "sfx": sfx, "params": st}
    if op.kind in ("add", "mul"):
        fn, ctype = (K.add_params, "ew_add_params") if op.kind == "add" else (K.mul_params, "ew_mul_params")
        st = _params(p, name, ctype, fn(qin[0], qin[1], qout, dtype))
        return {"macro": "binary", "fn": op.kind, "sfx": sfx, "params": st}
    if op.kind in ("avgpool", "maxpool"):
        st = _params(p, name, "ew_pool_params", K.pool_params(qin[0], dtype, out_q=qout))
        return {"macro": "pool", "fn": op.kind, "sfx": sfx, "tap_array": True, "params": st}
    if op.kind == "concat":
        lens = _array(p, f"op{i}_lens", "int32_t", [T[name].channels for name, _ in op.inputs])
        return {"macro": "concat", "sfx": sfx, "tap_array": True, "lens": lens}
    raise AssertionError(op.kind)


def _prepared_elementwise(p: Plan, prog: Program, i: int, op) -> dict | None:
    """The prepared elementwise kernels (firmware/src/ew_eltq.c), or None where pack.py cannot
    prove them exact."""
    T = prog.tensors
    dtype = np.dtype(prog.dtype).name
    sfx = p.suffix
    if op.kind == "add":
        prep = pack.prep_add(prog, op)
        if prep is None:
            return None
        st = _struct(p, f"op{i}_addq", "ew_addq", [(k, prep[k]) for k in ("a", "b", "mode", "mult_x2", "add", "shift",
                                                                             "act_min", "act_max")])
        return {"macro": "binary", "fn": "addq", "sfx": sfx, "params": st}
    if op.kind == "mul":
        prep = pack.prep_mul(prog, op)
        if prep is None:
            return None
        st = _struct(p, f"op{i}_mulq", "ew_mulq", list(prep.items()))
        return {"macro": "binary", "fn": "mulq", "sfx": sfx, "params": st}
    if sfx != "s16" and not p.storage[op.inputs[0][0]].wide:
        return None
    params = pack.ELEMENTWISE_PARAMS[op.kind](T[op.inputs[0][0]].q, T[op.output].q, dtype) \
        if op.kind in pack.ELEMENTWISE else None
    if op.kind in ("tanh", "logistic"):
        t = pack.t16q_form(params)
        if t is None:
            return None
        st = _struct(p, f"op{i}_t16q", "ew_t16q", [("mult", t[0]), ("round", t[1]), ("shift", t[2]),
                                                   ("kind", 1 if op.kind == "tanh" else 2)])
        return {"macro": "unary", "fn": "t16q", "sfx": "s16", "params": st}
    if op.kind in ("relu", "requant"):
        prep = pack.prep_requant(params)
        if prep is None:
            return None
        pre, ro = prep
        st = _struct(p, f"op{i}_rq", "ew_rq", [(None, v) for v in ro])
        # ew_requantq_s16_s8: the input stage narrowed
        return {"macro": "requantq", "sfx": "s16" if sfx == "s16" else "s16_s8", "params": st, "pre": pre,
                "act_min": params.act_min, "act_max": params.act_max}
    return None


def _prepared_fc(p: Plan, prog: Program, f: FusedOp) -> dict:
    """A prepared fully-connected call (firmware/src/ew_fcq.c) with the constants pack.py prepared while fusing."""
    wide = p.storage[f.inputs[0][0]].wide  # an int8 model's int16x8 input stage
    pr = f.prep
    i = f.index
    n_pairs = pr["n_pairs"]
    call = {"sfx": "s16" if wide else p.suffix, "wide": wide, "n_pairs": n_pairs, "mode": pr["mode"],
            "params": f"op{i}_{f.kind}q",
            **_gather(p, prog, f, p.suffix == "s8" and not wide, n_pairs)}
    head = [("w", _array(p, f"op{i}_wq", "int32_t", pr["words"])), ("n_out", pr["n_out"]), ("n_pairs", n_pairs),
            ("mode", pr["mode"])]

    def table(key, ctype, name):  # (member, its table's name or None: NULL)
        return key, None if pr.get(key) is None else _array(p, f"op{i}_{name}", ctype, pr[key])

    if f.kind == "fc":
        _struct(p, call["params"], "ew_fcq", head + [(k, pr[k]) for k in ("act_min", "act_max", "t_shift", "t_mult")]
                + [table("lut", "int8_t", "lut")])
        return {**call, "macro": "fcq"}
    if f.kind == "gate" and "narrow_a" in pr:  # an int8 model's input stage: int16 in, int8 out
        (pre_a, na), (pre_b, nb) = pr["narrow_a"], pr["narrow_b"]
        luts = [table(k, "int16_t", k.replace("_", "")) for k in ("lut_a", "lut_b")]
        _struct(p, call["params"], "ew_gateq16x8", head + [("narrow_a", list(na)), ("narrow_b", list(nb)),
                                                          ("pre_a", pre_a), ("pre_b", pre_b)]
                + luts + [(k, pr[k]) for k in ("rq_mult", "add", "shift")])
        return {**call, "macro": "gateq16x8", "order": pr["order"]}
    if f.kind == "gate":
        luts = [table(k, "int16_t", k.replace("_", "")) for k in ("lut_a", "lut_b")]
        _struct(p, call["params"], "ew_gateq", head + [("a_mult", pr.get("a_mult", 0)), ("b_mult", pr.get("b_mult", 0))]
                + luts + [(k, pr[k]) for k in ("rq_mult", "add", "shift")])
        return {**call, "macro": "gateq", "order": pr["order"]}
    luts = [table(k, "int32_t", k) for k in ("lut_f", "lut_o")]
    _struct(p, call["params"], "ew_addfcq", head + [("fc_min", pr["fc_min"]), ("fc_max", pr["fc_max"]),
                                                   ("f", [int(x) for x in pr["f"]]), ("o", [int(x) for x in pr["o"]])]
            + luts + [(k, pr[k]) for k in ("rq_mult", "add", "shift", "act_min", "act_max")])
    return {**call, "macro": "addfcq", "other": (p.storage[f.other[0]], f.other[1]),
            "also": p.storage[f.also] if f.also else None}


def _gather(p: Plan, prog: Program, f: FusedOp, int8: bool, n_pairs: int) -> dict:
    """How a prepared fully-connected call gets its input pairs (``gather``, see calls.j2), and the
    int32 words of step-local buffer that takes (``xw_words``)."""
    n_taps = len(f.inputs)
    tap_len = prog.tensors[f.inputs[0][0]].channels
    if int8 and tap_len % 4 == 0:
        # inline widening, 4 inputs at a time, where the emitter knows the lengths
        return {"gather": "widen", "quads": tap_len // 4, "xw_words": n_pairs}
    if int8 and n_taps * tap_len <= 16:
        # a few inputs (a model's first layer): packed inline, element by element; each word is
        # (low, high) half, each a (tap, index) or None for a zero
        elem = [(t, k) for t in range(n_taps) for k in range(tap_len)]
        pairs = (pack.pair_elements(len(elem), True) + [(1 << 20, 1 << 20)] * n_pairs)[:n_pairs]
        words = [tuple(elem[k] if k < len(elem) else None for k in pair) for pair in pairs]
        return {"gather": "inline", "words": words, "xw_words": n_pairs}
    if int8:
        # lengths that are not a multiple of 4: each quad of the concatenated input that lies in one
        # tap is widened inline as above, the quads that straddle two taps are packed element by element
        pieces = []
        for q in range(0, len(elem := [(t, k) for t in range(n_taps) for k in range(tap_len)]), 4):
            quad = elem[q:q + 4]
            if len(quad) == 4 and quad[0][0] == quad[3][0]:
                pieces.append(("widen", q // 2, quad[0]))
            else:
                quad += [None] * (4 - len(quad))
                pieces.append(("words", q // 2, [(quad[0], quad[2]), (quad[1], quad[3])]))
        return {"gather": "mixed", "pieces": pieces, "used_words": 2 * len(pieces), "xw_words": n_pairs}
    if n_taps == 1 and tap_len == 2 * n_pairs and tap_len % 4 == 0 and aligned(p, f.inputs[0][0]):
        return {"gather": "direct"}
    # the emitter knows every length and alignment: plain fixed-size copies, which the
    # compiler turns into word (LDM/STM) moves, instead of a gather loop
    return {"gather": "copy", "aligned": [aligned(p, n) for n, _ in f.inputs], "xw_words": n_pairs}
