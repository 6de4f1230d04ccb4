"""The framework-neutral layer graph: the one place that knows the architecture.

Every later step (Keras builder, importer, conversion, integer engine, C
emission) reads this graph, so receptive field, MAC counts and ring-buffer
sizes are computed here and nowhere else.

Time is implicit: every node produces one vector of ``channels`` values per
input sample (the stride-1 "practice" form of the seed article). A node that
looks back in time (conv or pool with kernel > 1) reads the samples
``t - (k-1)*d, ..., t - d, t`` of its input, so streaming it needs the last
``(k-1)*d`` input vectors: one ring buffer per *tensor*, sized for its most
demanding consumer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import UserError

OPS = ("input", "conv", "pool", "add", "mul", "concat", "act")
ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid")
POOLS = ("avg", "max")
HEADS = ("regression", "mulaw")


@dataclass
class Node:
    """One layer. ``dilation`` is the trained (stride-1) dilation.

    ``spec_stride`` and ``spec_dilation`` keep the conceptual form the user
    wrote, only for display: the trained model never strides.
    """

    name: str
    op: str
    inputs: tuple[str, ...] = ()
    channels: int = 1
    kernel: int = 1
    dilation: int = 1
    activation: str = "linear"
    pool: str = ""
    use_bias: bool = True
    spec_stride: int = 1
    spec_dilation: int = 1

    @property
    def history(self) -> int:
        """Past input vectors this node reads besides the current one."""
        return (self.kernel - 1) * self.dilation if self.op in ("conv", "pool") else 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["inputs"] = list(self.inputs)
        return d


@dataclass
class Graph:
    nodes: list[Node]
    output: str
    head: str = "regression"
    mulaw_bits: int = 8
    # name -> (kernel [k, c_in, c_out], bias [c_out] or None); empty until trained
    weights: dict[str, tuple[np.ndarray, np.ndarray | None]] = field(default_factory=dict, repr=False)

    # -- structure -------------------------------------------------------
    def __post_init__(self):
        self.validate()

    @property
    def by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    def node(self, name: str) -> Node:
        return self.by_name[name]

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in n.inputs]

    def validate(self) -> None:
        seen: dict[str, Node] = {}
        for n in self.nodes:
            if n.name in seen:
                raise UserError(f"layer name {n.name!r} is used twice; give every layer a unique name")
            if n.op not in OPS:
                raise UserError(f"layer {n.name!r}: unknown op {n.op!r}; use one of {', '.join(OPS)}")
            for i in n.inputs:
                if i not in seen:
                    raise UserError(f"layer {n.name!r} reads {i!r}, which is not defined before it")
            if n.channels < 1:
                raise UserError(f"layer {n.name!r}: channels must be ≥ 1, got {n.channels}")
            if n.kernel < 1 or n.dilation < 1:
                raise UserError(f"layer {n.name!r}: kernel and dilation must be ≥ 1, got {n.kernel} and {n.dilation}")
            if n.activation not in ACTIVATIONS:
                raise UserError(f"layer {n.name!r}: unknown activation {n.activation!r}; use one of {', '.join(ACTIVATIONS)}")
            ins = [seen[i] for i in n.inputs]
            if n.op == "input":
                if ins:
                    raise UserError(f"input {n.name!r} cannot have inputs")
            elif n.op in ("add", "mul"):
                if len(ins) < 2 or any(i.channels != n.channels for i in ins):
                    raise UserError(
                        f"layer {n.name!r}: {n.op} needs ≥ 2 inputs with {n.channels} channels each, got "
                        f"{[i.channels for i in ins]}; add a 1x1 conv to match channels")
            elif n.op == "concat":
                if len(ins) < 2 or sum(i.channels for i in ins) != n.channels:
                    raise UserError(f"layer {n.name!r}: concat channels must be the sum of its inputs'")
            elif len(ins) != 1:
                raise UserError(f"layer {n.name!r}: {n.op} takes exactly one input")
            elif n.op in ("pool", "act") and ins[0].channels != n.channels:
                raise UserError(f"layer {n.name!r}: {n.op} keeps the channel count ({ins[0].channels})")
            if n.op == "pool" and n.pool not in POOLS:
                raise UserError(f"layer {n.name!r}: pool kind must be avg or max, got {n.pool!r}")
            seen[n.name] = n
        inputs = [n for n in self.nodes if n.op == "input"]
        if len(inputs) != 1 or inputs[0].channels != 1:
            raise UserError("the model needs exactly one input with one channel (one sample per time step)")
        if self.output not in seen:
            raise UserError(f"output {self.output!r} is not a layer of the model")
        if self.head not in HEADS:
            raise UserError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")
        want = 1 if self.head == "regression" else 2 ** self.mulaw_bits
        if seen[self.output].channels != want:
            raise UserError(
                f"the {self.head} head needs {want} output channel(s); the last layer has {seen[self.output].channels}")

    @property
    def input_name(self) -> str:
        return next(n.name for n in self.nodes if n.op == "input")

    # -- the numbers every step needs -----------------------------------------
    def spans(self) -> dict[str, int]:
        """How far back in input samples each node's current output reaches."""
        span: dict[str, int] = {}
        for n in self.nodes:
            span[n.name] = max((span[i] for i in n.inputs), default=0) + n.history
        return span

    @property
    def receptive_field(self) -> int:
        return self.spans()[self.output] + 1

    def ring_lengths(self) -> dict[str, int]:
        """Per tensor: how many past vectors its consumers need (0: no buffer)."""
        need = {n.name: 0 for n in self.nodes}
        for n in self.nodes:
            for i in n.inputs:
                need[i] = max(need[i], n.history)
        return need

    def state_elements(self) -> int:
        by = self.by_name
        return sum(length * by[name].channels for name, length in self.ring_lengths().items())

    def macs_per_sample(self) -> int:
        by = self.by_name
        return sum(n.kernel * by[n.inputs[0]].channels * n.channels for n in self.nodes if n.op == "conv")

    def values_per_sample(self) -> int:
        """Activation values one streaming step computes: what requantization and elementwise work scale with."""
        return sum(n.channels for n in self.nodes if n.op != "input")

    def params(self) -> int:
        by = self.by_name
        return sum(n.kernel * by[n.inputs[0]].channels * n.channels + (n.channels if n.use_bias else 0)
                   for n in self.nodes if n.op == "conv")

    # -- serialisation ---------------------------------------------------------
    def to_dict(self) -> dict:
        return {"head": self.head, "mulaw_bits": self.mulaw_bits, "output": self.output,
                "nodes": [n.to_dict() for n in self.nodes]}

    @classmethod
    def from_dict(cls, d: dict) -> "Graph":
        nodes = [Node(**{**n, "inputs": tuple(n["inputs"])}) for n in d["nodes"]]
        return cls(nodes=nodes, output=d["output"], head=d.get("head", "regression"),
                   mulaw_bits=int(d.get("mulaw_bits", 8)))


def describe(graph: Graph) -> list[dict]:
    """Rows for `edgewave info`: conceptual and trained form side by side."""
    by = graph.by_name
    spans = graph.spans()
    rows = []
    for n in graph.nodes:
        rows.append({
            "name": n.name, "op": n.op if n.op != "pool" else f"{n.pool}pool",
            "inputs": list(n.inputs), "channels": n.channels, "kernel": n.kernel,
            "stride": n.spec_stride, "dilation": n.spec_dilation, "trained_dilation": n.dilation,
            "activation": n.activation if n.op in ("conv", "act") else "",
            "macs": n.kernel * by[n.inputs[0]].channels * n.channels if n.op == "conv" else 0,
            "span": spans[n.name],
        })
    return rows
