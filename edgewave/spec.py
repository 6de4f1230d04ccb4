"""Model specs: a TOML file or the same structure as Python dicts, lowered to a Graph.

A spec is written in the *conceptual* form of the seed article: layers may
have strides and dilations. Lowering turns it into the stride-1 form that is
trained and streamed: a layer's trained dilation is its own dilation times
the product of every conceptual stride before it.

    head = "regression"          # or "mulaw" (categorical over 2**mulaw_bits levels)
    [[layers]]
    type = "conv"                # conv | gated | pool | dense | window | activation
    filters = 16                 #   | residual | concat | skips
    kernel = 2
    dilation = 1
    stride = 1

A final kernel-1 "head" layer with 1 (regression) or 2**mulaw_bits (mulaw)
channels is appended by edgewave, so switching heads is one line.
"""

from __future__ import annotations

import copy
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import UserError
from .graph import ACTIVATIONS, Graph, Node

# Every key a layer type accepts, with its default (None: required).
_COMMON = {"type": None, "name": "", "skip": False}
LAYER_KEYS: dict[str, dict] = {
    "conv": {"filters": None, "kernel": 2, "dilation": 1, "stride": 1, "activation": "linear", "bias": True},
    "gated": {"filters": None, "kernel": 2, "dilation": 1, "stride": 1},
    "pool": {"kind": "avg", "size": 2, "dilation": 1, "stride": 1},
    "dense": {"units": None, "activation": "linear", "bias": True},
    "window": {"units": None, "size": None, "activation": "linear", "bias": True},
    "activation": {"function": None},
    "residual": {"layers": None, "dilations": [1]},
    "concat": {"layers": None, "dilations": [1]},
    "skips": {"activation": "linear", "combine": "sum"},
}
TOP_KEYS = {"head": "regression", "mulaw_bits": 8, "layers": None, "train": {}}
TRAIN_KEYS = {"window": 2048, "batch": 16, "epochs": 40, "steps_per_epoch": 100,
              "learning_rate": 3e-3, "patience": 6}


@dataclass
class Spec:
    head: str
    mulaw_bits: int
    layers: list[dict]
    train: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"head": self.head, "mulaw_bits": self.mulaw_bits, "layers": copy.deepcopy(self.layers),
                "train": dict(self.train)}


def _check_keys(where: str, got: dict, allowed: dict) -> dict:
    if not isinstance(got, dict):
        raise UserError(f"{where}: expected a table of keys, got {type(got).__name__} {got!r:.40}")
    unknown = sorted(set(got) - set(allowed))
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(allowed))}")
    missing = [k for k, v in allowed.items() if v is None and k not in got]
    if missing:
        raise UserError(f"{where}: missing required key {missing[0]!r}")
    return {**allowed, **got}


def _positive_int(where: str, key: str, value, limit: int = 1 << 20) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{where}: {key} must be a positive integer, got {value!r}")
    if value > limit:
        raise UserError(f"{where}: {key}={value} is larger than the supported {limit}")
    return value


def parse(data: dict, source: str = "spec") -> Spec:
    """Validate a spec dict (from TOML or Python) and fill defaults."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: a spec is a table of keys, got {type(data).__name__}")
    top = _check_keys(source, data, TOP_KEYS)
    train = _check_keys(f"{source} [train]", top["train"] if top["train"] is not None else {}, dict(TRAIN_KEYS))
    for key, value in train.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise UserError(f"{source} [train]: {key} must be a positive number, got {value!r}")
        if key != "learning_rate" and not isinstance(value, int):
            raise UserError(f"{source} [train]: {key} must be a whole number, got {value!r}")
    if top["head"] not in ("regression", "mulaw"):
        raise UserError(f"{source}: head must be 'regression' or 'mulaw', got {top['head']!r}")
    bits = top["mulaw_bits"]
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 12:
        raise UserError(f"{source}: mulaw_bits must be an integer from 2 to 12, got {bits!r}")
    layers = _parse_layers(top["layers"], source)
    if not layers:
        raise UserError(f"{source}: the spec has no layers")
    return Spec(head=top["head"], mulaw_bits=bits, layers=layers, train=train)


def _parse_layers(items, where: str) -> list[dict]:
    if not isinstance(items, list):
        raise UserError(f"{where}: 'layers' must be a list of tables ([[layers]] in TOML)")
    out = []
    for i, item in enumerate(items, 1):
        here = f"{where} layer {i}"
        if not isinstance(item, dict) or "type" not in item:
            raise UserError(f"{here}: each layer needs a 'type' ({', '.join(LAYER_KEYS)})")
        kind = item["type"]
        if not isinstance(kind, str) or kind not in LAYER_KEYS:
            raise UserError(f"{here}: unknown layer type {kind!r}; use one of {', '.join(LAYER_KEYS)}")
        layer = _check_keys(f"{here} ({kind})", item, {**_COMMON, **LAYER_KEYS[kind]})
        for key in ("filters", "units", "kernel", "size"):
            if key in LAYER_KEYS[kind]:
                layer[key] = _positive_int(here, key, layer[key], 4096)
        for key in ("dilation", "stride"):
            if key in LAYER_KEYS[kind]:
                layer[key] = _positive_int(here, key, layer[key], 1 << 16)
        for key in ("activation", "function"):
            if key in layer and layer[key] not in ACTIVATIONS:
                raise UserError(f"{here}: {key} must be one of {', '.join(ACTIVATIONS)}, got {layer[key]!r}")
        if kind == "skips" and layer["combine"] not in ("sum", "concat"):
            raise UserError(f"{here}: skips combine must be 'sum' or 'concat', got {layer['combine']!r}")
        if kind == "pool" and layer["kind"] not in ("avg", "max"):
            raise UserError(f"{here}: pool kind must be 'avg' or 'max', got {layer['kind']!r}")
        if kind in ("residual", "concat"):
            layer["layers"] = _parse_layers(layer["layers"], here)
            if not isinstance(layer["dilations"], list) or not layer["dilations"]:
                raise UserError(f"{here}: dilations must be a non-empty list of positive integers")
            layer["dilations"] = [_positive_int(here, "dilations", d, 1 << 16) for d in layer["dilations"]]
        out.append(layer)
    return out


def load(path: str | Path) -> Spec:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise UserError(f"{path}: cannot read spec ({e.strerror}); pass an existing TOML file to --spec")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML ({e}); fix the file or start from `edgewave spec > my.toml`")
    return parse(data, source=str(path))


def default_text() -> str:
    return resources.files("edgewave").joinpath("specs/default.toml").read_text()


def default() -> Spec:
    return parse(tomllib.loads(default_text()), source="default spec")


# -- lowering ----------------------------------------------------------------

MAX_DILATION = 1 << 16  # ring lengths are kept below 2**16 * kernel so C can index them in uint32


class _Lowering:
    def __init__(self):
        self.nodes: list[Node] = [Node("input", "input", (), 1)]
        self.counts: dict[str, int] = {}
        self.stride = 1  # product of conceptual strides so far
        self.skips: list[str] = []

    def name(self, layer: dict, kind: str) -> str:
        if layer.get("name"):
            if any(n.name == layer["name"] for n in self.nodes):
                raise UserError(f"layer name {layer['name']!r} is used twice; names must be unique")
            return layer["name"]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return f"{kind}{self.counts[kind]}"

    def add(self, node: Node) -> Node:
        if node.dilation > MAX_DILATION:
            raise UserError(f"layer {node.name!r}: trained dilation {node.dilation} (strides multiply dilations) "
                            f"exceeds {MAX_DILATION}; use fewer or smaller strides")
        self.nodes.append(node)
        return node

    def conv(self, name, src: Node, filters, kernel=1, dilation=1, stride=1, activation="linear", bias=True):
        node = self.add(Node(name, "conv", (src.name,), filters, kernel, dilation * self.stride, activation,
                             use_bias=bias, spec_stride=stride, spec_dilation=dilation))
        self.stride *= stride
        return node

    def layers(self, layers: list[dict], src: Node, scale: int = 1) -> Node:
        for layer in layers:
            src = self.layer(layer, src, scale)
        return src

    def layer(self, layer: dict, src: Node, scale: int) -> Node:
        kind = layer["type"]
        if kind == "conv":
            out = self.conv(self.name(layer, "conv"), src, layer["filters"], layer["kernel"],
                            layer["dilation"] * scale, layer["stride"], layer["activation"], layer["bias"])
        elif kind == "dense":
            out = self.conv(self.name(layer, "dense"), src, layer["units"], activation=layer["activation"],
                            bias=layer["bias"])
        elif kind == "window":
            # Flatten+Dense over the last `size` conceptual steps == a conv spanning them.
            out = self.conv(self.name(layer, "window"), src, layer["units"], kernel=layer["size"],
                            activation=layer["activation"], bias=layer["bias"])
        elif kind == "gated":
            base = self.name(layer, "gated")
            stride_before = self.stride
            t = self.conv(f"{base}_tanh", src, layer["filters"], layer["kernel"], layer["dilation"] * scale,
                          1, "tanh")
            s = self.conv(f"{base}_sigmoid", src, layer["filters"], layer["kernel"], layer["dilation"] * scale,
                          1, "sigmoid")
            t.spec_stride = s.spec_stride = layer["stride"]
            self.stride = stride_before * layer["stride"]
            out = self.add(Node(base, "mul", (t.name, s.name), layer["filters"]))
        elif kind == "pool":
            name = self.name(layer, f"{layer['kind']}pool")
            d = layer["dilation"] * scale
            out = self.add(Node(name, "pool", (src.name,), src.channels, layer["size"], d * self.stride,
                                pool=layer["kind"], spec_stride=layer["stride"], spec_dilation=d))
            self.stride *= layer["stride"]
        elif kind == "activation":
            out = self.add(Node(self.name(layer, "act"), "act", (src.name,), src.channels,
                                activation=layer["function"]))
        elif kind in ("residual", "concat"):
            out = src
            for d in layer["dilations"]:
                out = self.block(layer, out, scale * d)
            return out  # block() taps skips itself: the inner output, WaveNet-style
        elif kind == "skips":
            if not self.skips:
                raise UserError("a 'skips' layer needs earlier layers marked skip = true")
            chans = [self.node(s).channels for s in self.skips]
            name = self.name(layer, "skips")
            if len(self.skips) == 1:
                out = self.node(self.skips[0])
            elif layer["combine"] == "concat":
                # A following dense layer then weighs every tap on its own, with no chain of ADDs.
                out = self.add(Node(name, "concat", tuple(self.skips), sum(chans)))
            elif len(set(chans)) != 1:
                raise UserError(f"skip taps have different channel counts {sorted(set(chans))}; "
                                "make every skip = true layer the same width, or use combine = \"concat\"")
            else:
                out = self.add(Node(name, "add", tuple(self.skips), chans[0]))
            self.skips = []
            if layer["activation"] != "linear":
                out = self.add(Node(f"{name}_{layer['activation']}", "act", (out.name,), out.channels,
                                    activation=layer["activation"]))
        else:  # pragma: no cover - parse() rejects unknown types
            raise AssertionError(kind)
        if layer.get("skip"):
            self.skips.append(out.name)
        return out

    def block(self, layer: dict, src: Node, scale: int) -> Node:
        kind = layer["type"]
        base = self.name({"name": ""}, kind)
        inner = self.layers(layer["layers"], src, scale)
        if layer.get("skip"):
            self.skips.append(inner.name)
        if kind == "concat":
            return self.add(Node(base, "concat", (src.name, inner.name), src.channels + inner.channels))
        if src.channels != inner.channels:
            src = self.add(Node(f"{base}_proj", "conv", (src.name,), inner.channels))
        return self.add(Node(base, "add", (src.name, inner.name), inner.channels))

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)


def to_graph(spec: Spec) -> Graph:
    low = _Lowering()
    last = low.layers(spec.layers, low.nodes[0])
    if low.skips:
        raise UserError(f"layers {low.skips} are marked skip = true but no 'skips' layer sums them")
    channels = 1 if spec.head == "regression" else 2 ** spec.mulaw_bits
    low.add(Node("head", "conv", (last.name,), channels))
    return Graph(nodes=_live(low.nodes, "head"), output="head", head=spec.head, mulaw_bits=spec.mulaw_bits)


def _live(nodes: list[Node], output: str) -> list[Node]:
    """Drop layers the output does not depend on (e.g. the last residual add when skips feed the head)."""
    by = {n.name: n for n in nodes}
    needed, todo = set(), [output]
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo.extend(by[name].inputs)
    return [n for n in nodes if n.name in needed or n.op == "input"]
