"""Lowering: a Graph with float weights -> the float op program (edgewave.program).

The ops and tensors the runtimes will compute, before any precision is chosen: the float
program is what calibration runs, and convert.quantization gives it integer parameters.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..graph import Graph
from ..program import Op, Program, Tensor, connected_groups


def lower(graph: Graph) -> Program:
    """Graph with float weights -> float program (every tensor the runtime will see)."""
    tensors: dict[str, Tensor] = {}
    ops: list[Op] = []

    def tensor(name, channels, fixed=False):
        tensors[name] = Tensor(name, channels, fixed=fixed)
        return name

    ties = _tie_groups(graph)
    for n in graph.nodes:
        if n.op == "input":
            tensor(n.name, 1)
            continue
        src = n.inputs[0]
        if n.op == "conv":
            kernel, bias = graph.weights[n.name]
            k, cin, cout = kernel.shape
            w = kernel.reshape(k * cin, cout).T.astype(np.float32)  # taps oldest first, as Conv1D's kernel
            b = np.zeros(cout, np.float32) if bias is None else bias.astype(np.float32)
            taps = [(src, (k - 1 - j) * n.dilation) for j in range(k)]
            if n.activation in ("tanh", "sigmoid"):
                pre = tensor(f"{n.name}/pre", cout)
                ops.append(Op("fc", taps, pre, weights=w, bias=b))
                _transcendental(ops, tensors, ties, n.name, cout, pre, n.activation)
            else:
                tensor(n.name, cout)
                ops.append(Op("fc", taps, n.name, "RELU" if n.activation == "relu" else "NONE", weights=w, bias=b))
        elif n.op == "pool":
            if n.kernel == 1:  # a size-1 pool is the identity; keep the tensor name with a requant no-op
                tensor(n.name, n.channels)
                ops.append(Op("requant", [(src, 0)], n.name))
                continue
            tensor(n.name, n.channels)
            ops.append(Op(f"{n.pool}pool", [(src, (n.kernel - 1 - j) * n.dilation) for j in range(n.kernel)], n.name))
        elif n.op in ("add", "mul"):
            acc = n.inputs[0]
            for i, other in enumerate(n.inputs[1:], 1):
                out = n.name if i == len(n.inputs) - 1 else tensor(f"{n.name}/partial{i}", n.channels)
                if out == n.name:
                    tensor(n.name, n.channels)
                ops.append(Op(n.op, [(acc, 0), (other, 0)], out))
                acc = out
        elif n.op == "concat":
            tensor(n.name, n.channels)
            ops.append(Op("concat", [(i, 0) for i in n.inputs], n.name))
        elif n.op == "act":
            if n.activation in ("tanh", "sigmoid"):
                _transcendental(ops, tensors, ties, n.name, n.channels, src, n.activation)
            else:
                tensor(n.name, n.channels)
                ops.append(Op("relu" if n.activation == "relu" else "requant", [(src, 0)], n.name))
    unbiased = {n.name for n in graph.nodes if n.op == "conv" and not n.use_bias}
    ops = _fold_linear_lifts(ops, tensors, graph.output, unbiased)
    return Program("float32", tensors, ops, graph.input_name, graph.output, graph.head, graph.mulaw_bits)


MAX_TAPS = 10  # TFLM's CONCATENATION takes at most 10 inputs (kMaxInputNum)


def lower_structure(graph: Graph) -> Program:
    """The lowered program of the graph's structure alone (zero weights), so an untrained spec can be sized."""
    by = graph.by_name
    shaped = dataclasses.replace(graph, weights={
        n.name: (np.zeros((n.kernel, by[n.inputs[0]].channels, n.channels), np.float32),
                 np.zeros(n.channels, np.float32) if n.use_bias else None) for n in graph.nodes if n.op == "conv"})
    return lower(shaped)


def runtime_macs(graph: Graph) -> int:
    """MACs per sample of the lowered program (what every runtime computes: linear lifts folded)."""
    return sum(int(op.weights.size) for op in lower_structure(graph).ops if op.kind == "fc")


def _fold_linear_lifts(ops: list[Op], tensors: dict[str, Tensor], output: str, unbiased: set[str]) -> list[Op]:
    """A linear FULLY_CONNECTED without bias that widens its input (e.g. the 1 -> 12 channel lift
    after the input) is multiplied into the FULLY_CONNECTED layers that read it: they read its
    input instead, at the summed delays. Fewer MACs, and no rounding of the wide intermediate on
    their path (ADDs and others still read it). Without a bias it is exact from the first sample:
    the lift's causal padding (zeros) is what its zero-padded input gives; a bias would not be."""
    for name in [op.output for op in ops]:
        lift = next((op for op in ops if op.output == name), None)  # the current op (readers get rewritten)
        if (lift is None or lift.kind != "fc" or lift.activation != "NONE" or lift.output == output
                or lift.output not in unbiased):
            continue
        src = {n for n, _ in lift.inputs}
        c_in = tensors[lift.inputs[0][0]].channels
        if len(src) != 1 or len(lift.inputs) * c_in >= tensors[lift.output].channels:
            continue
        c = tensors[lift.output].channels
        readers = [op for op in ops if any(n == lift.output for n, _ in op.inputs)]

        def merged_taps(op):
            return len({d + e for _, d in lift.inputs for _, e in op.inputs})

        folded = [op for op in readers if op.kind == "fc" and all(n == lift.output for n, _ in op.inputs)
                  and merged_taps(op) <= MAX_TAPS and merged_taps(op) * c_in <= len(op.inputs) * c]
        if not folded:
            continue
        for op in folded:
            taps: dict[int, np.ndarray] = {}
            for j, (_, e) in enumerate(op.inputs):
                w_j = op.weights[:, j * c:(j + 1) * c].astype(np.float64)
                for i, (x, d) in enumerate(lift.inputs):
                    part = w_j @ lift.weights[:, i * c_in:(i + 1) * c_in].astype(np.float64)
                    taps[d + e] = taps.get(d + e, 0) + part
            delays = sorted(taps, reverse=True)  # oldest first, as lower() orders taps
            x = lift.inputs[0][0]
            ops[ops.index(op)] = dataclasses.replace(
                op, inputs=[(x, d) for d in delays],
                weights=np.concatenate([taps[d] for d in delays], axis=1).astype(np.float32))
        if len(folded) == len(readers):
            ops.remove(lift)
            del tensors[lift.output]
    return ops


def _transcendental(ops, tensors, ties, name, channels, src, activation):
    """TANH/LOGISTIC have a kernel-dictated output scale; requantize if the tensor is tied to others."""
    kind = "tanh" if activation == "tanh" else "logistic"
    if len(ties.get(name, ())) > 1:
        raw = f"{name}/{kind}"
        tensors[raw] = Tensor(raw, channels, fixed=True)
        ops.append(Op(kind, [(src, 0)], raw))
        tensors[name] = Tensor(name, channels)
        ops.append(Op("requant", [(raw, 0)], name))
    else:
        tensors[name] = Tensor(name, channels, fixed=True)
        ops.append(Op(kind, [(src, 0)], name))


def _tie_groups(graph: Graph) -> dict[str, frozenset[str]]:
    """Tensors that must share one quantization: CONCATENATION and pooling copy raw values
    (edgewave.program.tie_groups, on the graph: lower() needs it before the program exists)."""
    joins = [(i, n.name) for n in graph.nodes if n.op == "concat" or (n.op == "pool" and n.kernel > 1)
             for i in n.inputs]
    return {name: frozenset(g) for g in connected_groups([n.name for n in graph.nodes], joins) for name in g}

