"""Hypothesis strategies for random architectures covering the whole spec vocabulary."""

from hypothesis import strategies as st

ACTS = st.sampled_from(["linear", "relu", "tanh", "sigmoid"])


def _leaf(max_dilation: int, max_channels: int):
    ch = st.integers(1, max_channels)
    k = st.integers(1, 5)
    d = st.integers(1, max_dilation)
    return st.one_of(
        st.builds(lambda f, k, d, a, b: {"type": "conv", "filters": f, "kernel": k, "dilation": d, "activation": a,
                                         "bias": b}, ch, k, d, ACTS, st.booleans()),
        st.builds(lambda f, k, d: {"type": "gated", "filters": f, "kernel": k, "dilation": d}, ch, k, d),
        st.builds(lambda kind, s, d: {"type": "pool", "kind": kind, "size": s, "dilation": d},
                  st.sampled_from(["avg", "max"]), st.integers(1, 4), d),
        # without a bias, a linear layer that widens its input folds into the layers reading it
        st.builds(lambda u, a, b: {"type": "dense", "units": u, "activation": a, "bias": b}, ch, ACTS, st.booleans()),
        st.builds(lambda u, s, b: {"type": "window", "units": u, "size": s, "bias": b}, ch, st.integers(1, 5),
                  st.booleans()),
        st.builds(lambda f: {"type": "activation", "function": f}, st.sampled_from(["relu", "tanh", "sigmoid"])),
    )


@st.composite
def specs(draw, max_dilation: int = 64, max_channels: int = 8, max_layers: int = 4, heads=("regression",)):
    """A spec dict with 1..max_layers layers; blocks (residual/concat, with skips) appear often."""
    leaf = _leaf(max_dilation, max_channels)
    layers = []
    for _ in range(draw(st.integers(1, max_layers))):
        kind = draw(st.sampled_from(["leaf", "leaf", "residual", "concat"]))
        if kind == "leaf":
            layers.append(draw(leaf))
        else:
            inner = draw(st.lists(leaf, min_size=1, max_size=2))
            layers.append({"type": kind, "layers": inner, "dilations": draw(st.lists(st.integers(1, 4), min_size=1,
                                                                                       max_size=2))})
    skip_at = draw(st.sets(st.integers(0, len(layers) - 1), max_size=2))
    for i in sorted(skip_at):
        if layers[i]["type"] == "residual":
            layers[i]["skip"] = True
    if any(l.get("skip") for l in layers):
        # skip taps must share a width: give every tapped block's last inner layer the same width
        w = draw(st.integers(1, max_channels))
        for l in layers:
            if l.get("skip"):
                last = l["layers"][-1]
                l["layers"][-1] = {"type": "dense", "units": w, "activation": last.get("activation", "linear")}
        layers.append({"type": "skips", "activation": draw(ACTS), "combine": draw(st.sampled_from(["sum", "concat"]))})
    head = draw(st.sampled_from(list(heads)))
    return {"head": head, "mulaw_bits": 4, "layers": layers}
