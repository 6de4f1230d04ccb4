"""Pass: fuse the program's ops into the calls of the generated step.

One call per op, except that a fully-connected layer takes over the ops that alone read it
where the prepared kernels can do their arithmetic exactly (pack.py proves it): its
elementwise function, a gated tanh * sigmoid unit with both layers and the MUL, a residual
ADD, or a concatenation it reads (it gathers the pieces).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import pack

if TYPE_CHECKING:
    from ..program import Program

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


def touches_wide(prog: Program, op) -> bool:
    """The op reads or writes an int8 model's 16-bit input stage (which runs the plain kernels)."""
    return any(prog.tensors[n].wide for n in [op.output, *(n for n, _ in op.inputs)])


def fuse(prog: Program) -> list[FusedOp]:
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
                and all(pack.prep_fc(prog, o, None, list(op.inputs)) is not None for o in readers)):
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
        return all(o is not None and id(o) not in done and not touches_wide(prog, o) for o in os)

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
        prep = pack.prep_gate(prog, fa, pa, fb, pb, m, inputs[id(fa)])
        if prep is not None:
            first = fa if pos[id(fa)] < pos[id(fb)] else fb
            take("gate", [first, *(o for o in (fa, pa, fb, pb, m) if o is not first)], first, inputs[id(fa)],
                 m.output, prep)

    # the gated unit of an int8 model's 16-bit input stage: MUL(f(QUANTIZE(FC_a(x))), g(QUANTIZE(FC_b(x))))
    def narrowed_fc(name):  # (fc, its QUANTIZE) when `name` is an int16 FC output narrowed to int8
        q = producer.get(name)
        if q is None or q.kind != "requant" or id(q) in done or q.inputs[0][1] or not T[q.inputs[0][0]].wide:
            return None
        f = producer.get(q.inputs[0][0])
        if f is None or f.kind != "fc" or id(f) in done or not private(f.output) or not private(name):
            return None
        return f, q

    for m in ops:
        if m.kind != "mul" or id(m) in done or touches_wide(prog, m) or any(d for _, d in m.inputs):
            continue
        posts = [producer.get(n) for n, _ in m.inputs]
        if m.inputs[0][0] == m.inputs[1][0] or any(o is None or id(o) in done or o.kind not in ("tanh", "logistic")
                                                     or o.inputs[0][1] for o in posts):
            continue
        fq = [narrowed_fc(o.inputs[0][0]) for o in posts]
        if None in fq or not all(private(n) for n, _ in m.inputs) or inputs[id(fq[0][0])] != inputs[id(fq[1][0])]:
            continue
        sides = [(f, q, o) for (f, q), o in zip(fq, posts)]
        prep = pack.prep_gate16x8(prog, sides, m, inputs[id(fq[0][0])])
        if prep is not None:
            parts = [o for side in sides for o in side] + [m]
            first = min(parts, key=lambda o: pos[id(o)])
            take("gate", [first, *(o for o in parts if o is not first)], first, inputs[id(fq[0][0])], m.output, prep)

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
                prep = pack.prep_fcadd(prog, fc, add, side, inputs[id(fc)])
                if prep is not None:
                    take("fcadd", [fc, add], add, inputs[id(fc)], add.output, prep, other=x)
                    break
            elif y not in (prog.output, prog.input) and (x[0] == prog.input or pos[id(producer[x[0]])] < pos[id(fc)]):
                # y is read elsewhere too: the call, at the layer's place (where x already
                # exists and before y's other readers), also stores y
                prep = pack.prep_fcadd(prog, fc, add, side, inputs[id(fc)])
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
            if reader is not None and reader.kind in pack.ELEMENTWISE and reader.inputs == [(fc.output, 0)] and free(reader):
                post = reader
        prep = pack.prep_fc(prog, fc, post, inputs[id(fc)]) if post is not None else None
        if prep is not None:
            take("fc", [fc, post], fc, inputs[id(fc)], post.output, prep)
            continue
        prep = pack.prep_fc(prog, fc, None, inputs[id(fc)])
        if prep is not None:
            take("fc", [fc], fc, inputs[id(fc)], fc.output, prep)

    for op in ops:
        if id(op) not in done:
            fused.append((pos[id(op)], FusedOp("op", inputs[id(op)], op.output, [op], pos[id(op)])))
    fused.sort(key=lambda t: t[0])
    return [f for _, f in fused]

