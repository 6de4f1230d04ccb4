"""The model vocabulary: receptive field, causality, strides == dilations, heads, pooling, import."""

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from edgewave import spec as spec_mod
from edgewave.errors import UserError
from edgewave.frontend.build import build_model, get_weights
from edgewave.frontend.importer import import_model
from edgewave.frontend.layers import CausalPooling1D
from edgewave.graph import Graph

from strategies import specs


def graph_of(spec_dict) -> Graph:
    return spec_mod.to_graph(spec_mod.parse(spec_dict))


def run(model, x):
    return np.asarray(model(np.asarray(x, np.float32)[None, :, None], training=False))[0]


def smooth_variant(graph: Graph) -> Graph:
    """Same structure and receptive field, but every path carries a perturbation (no relu/max dead zones)."""
    g = Graph.from_dict(graph.to_dict())
    for n in g.nodes:
        if n.activation == "relu":
            n.activation = "tanh"
        if n.pool == "max":
            n.pool = "avg"
    return g


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs(max_dilation=16, heads=("regression", "mulaw")))
def test_receptive_field_and_causality(spec_dict):
    graph = graph_of(spec_dict)
    rf = graph.receptive_field
    rng = np.random.default_rng(0)
    t0 = 7
    x = rng.normal(size=rf + 30)
    bumped = x.copy()
    bumped[t0] += 4.0
    for g, exact in ((graph, False), (smooth_variant(graph), True)):
        keras.utils.set_random_seed(1)
        model = build_model(g)
        changed = np.nonzero(np.abs(run(model, bumped) - run(model, x)).max(-1) > 1e-7)[0]
        assert changed.size == 0 or changed.min() >= t0, "output changed before the input did: not causal"
        assert changed.size == 0 or changed.max() <= t0 + rf - 1, "impulse response longer than receptive field"
        if exact:
            assert changed.max() == t0 + rf - 1, "impulse response shorter than the receptive field"


def _literal_strided(spec_layers, model, graph, x):
    """Evaluate a sequential spec literally, with strides and 'valid' windows, to one output."""
    h = np.asarray(x, np.float64)[:, None]
    names = iter(n for n in graph.nodes if n.op in ("conv", "pool", "mul") and not n.name.endswith(("_tanh", "_sigmoid")))
    act = {"linear": lambda v: v, "relu": lambda v: np.maximum(v, 0), "tanh": np.tanh,
           "sigmoid": lambda v: 1 / (1 + np.exp(-v))}

    def conv(h, name, k, d, s):
        w, b = model.get_layer(name).get_weights()
        n_out = (len(h) - (k - 1) * d - 1) // s + 1
        taps = np.stack([h[j * d: j * d + (n_out - 1) * s + 1: s] for j in range(k)], 1)  # [n, k, c]
        return np.einsum("nkc,kcf->nf", taps, w) + b

    for layer in spec_layers + [{"type": "dense", "units": 1}]:
        node = next(names)
        k, d, s = layer.get("kernel", layer.get("size", 1)), layer.get("dilation", 1), layer.get("stride", 1)
        if layer["type"] == "pool":
            n_out = (len(h) - (k - 1) * d - 1) // s + 1
            taps = np.stack([h[j * d: j * d + (n_out - 1) * s + 1: s] for j in range(k)], 0)
            h = taps.mean(0) if layer["kind"] == "avg" else taps.max(0)
        elif layer["type"] == "gated":
            h = np.tanh(conv(h, f"{node.name}_tanh", k, d, s)) * act["sigmoid"](conv(h, f"{node.name}_sigmoid", k, d, s))
        else:
            h = act[layer.get("activation", "linear")](conv(h, node.name, k, d, s))
    return h


def test_conceptual_strides_equal_trained_dilations():
    layers = [
        {"type": "conv", "filters": 4, "kernel": 3, "stride": 2, "activation": "tanh"},
        {"type": "gated", "filters": 3, "kernel": 2, "dilation": 2, "stride": 2},
        {"type": "pool", "kind": "avg", "size": 2, "stride": 2},
        {"type": "conv", "filters": 5, "kernel": 2, "dilation": 3, "stride": 3, "activation": "relu"},
        {"type": "pool", "kind": "max", "size": 3},
        {"type": "window", "units": 2, "size": 3},
    ]
    spec_dict = {"layers": layers}
    graph = graph_of(spec_dict)
    trained = {n.name: n.dilation for n in graph.nodes if n.op in ("conv", "pool")}
    # product rule: each layer's dilation times every conceptual stride before it
    assert trained["conv1"] == 1 and trained["gated1_tanh"] == 2 * 2 and trained["avgpool1"] == 4
    assert trained["conv2"] == 3 * 8 and trained["maxpool1"] == 24 and trained["window1"] == 24
    keras.utils.set_random_seed(3)
    model = build_model(graph)
    rng = np.random.default_rng(5)
    x = rng.normal(size=graph.receptive_field)
    literal = _literal_strided(spec_mod.parse(spec_dict).layers, model, graph, x)
    assert literal.shape == (1, 1), "the strided network over one receptive field gives exactly one output"
    np.testing.assert_allclose(run(model, x)[-1], literal[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("stride", [1, 2])
def test_window_head_equals_flatten_dense(stride):
    size, units = 4, 3
    graph = graph_of({"layers": [{"type": "conv", "filters": 2, "kernel": 2, "stride": stride},
                                 {"type": "window", "units": units, "size": size}]})
    keras.utils.set_random_seed(4)
    model = build_model(graph)
    x = np.random.default_rng(6).normal(size=64)
    features = keras.Model(model.input, model.get_layer("conv1").output)
    h = np.asarray(features(x[None, :, None].astype(np.float32)))[0]
    picked = h[len(h) - 1 - (size - 1) * stride::stride]  # the window's last `size` conceptual steps
    dense = keras.Sequential([keras.Input((size, 2)), keras.layers.Flatten(), keras.layers.Dense(units)])
    w, b = model.get_layer("window1").get_weights()
    dense.layers[-1].set_weights([w.reshape(size * 2, units), b])
    window_out = keras.Model(model.input, model.get_layer("window1").output)
    np.testing.assert_allclose(np.asarray(window_out(x[None, :, None].astype(np.float32)))[0, -1],
                               np.asarray(dense(picked[None].astype(np.float32)))[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("size,dilation", [(1, 1), (2, 1), (3, 2), (4, 5)])
def test_pooling_matches_brute_force(kind, size, dilation):
    x = np.random.default_rng(size * 10 + dilation).normal(size=(2, 40, 3)).astype(np.float32)
    got = np.asarray(CausalPooling1D(kind, size, dilation)(x))
    want = np.zeros_like(x)
    for t in range(40):
        taps = [x[:, t - j * dilation] if t - j * dilation >= 0 else np.zeros_like(x[:, 0]) for j in range(size)]
        want[:, t] = np.mean(taps, 0) if kind == "avg" else np.max(taps, 0)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def _user_model(out_units=1, softmax=False):
    L = keras.layers
    inp = keras.Input((None, 1), name="audio")
    h = L.Conv1D(6, 1, name="lift")(inp)
    a = L.Conv1D(6, 3, dilation_rate=2, padding="causal", activation="tanh", name="filt")(h)
    b = L.Conv1D(6, 3, dilation_rate=2, padding="causal", activation="sigmoid", name="gate")(h)
    g = L.Multiply(name="gated")([a, b])
    r = L.Add(name="res")([h, L.Dense(6, name="res_dense")(g)])
    p = L.CausalPooling1D("max", 3, 4, name="pool") if hasattr(L, "CausalPooling1D") else CausalPooling1D(
        "max", 3, 4, name="pool")
    c = L.Concatenate(name="cat")([r, p(r)])  # DenseNet order: block input first
    z = L.ReLU(name="relu")(L.Activation("tanh", name="act")(c))
    z = L.Dropout(0.1, name="drop")(z)
    out = L.Dense(out_units, activation="softmax" if softmax else None, name="out")(z)
    return keras.Model(inp, out)


def test_imported_model_equals_spec_twin():
    keras.utils.set_random_seed(8)
    user = _user_model()
    imported = import_model(user)
    twin = graph_of({"layers": [
        {"type": "dense", "units": 6},
        {"type": "residual", "layers": [{"type": "gated", "filters": 6, "kernel": 3, "dilation": 2},
                                        {"type": "dense", "units": 6}]},
        {"type": "concat", "layers": [{"type": "pool", "kind": "max", "size": 3, "dilation": 4}]},
        {"type": "activation", "function": "tanh"},
        {"type": "activation", "function": "relu"},
    ]})
    assert imported.receptive_field == twin.receptive_field == 1 + 2 * 2 + 2 * 4
    assert imported.macs_per_sample() == twin.macs_per_sample()
    assert imported.params() == twin.params() == user.count_params()
    assert imported.state_elements() == twin.state_elements()
    twin_model = build_model(twin)
    convs = [n.name for n in twin.nodes if n.op == "conv"]
    for name, (w, b) in zip(convs, imported.weights.values()):
        twin_model.get_layer(name).set_weights([w, b])
    x = np.random.default_rng(9).normal(size=200)
    want = run(user, x)
    np.testing.assert_allclose(run(build_model(imported), x), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run(twin_model, x), want, rtol=1e-5, atol=1e-6)


def test_categorical_head_import_keeps_logits():
    keras.utils.set_random_seed(2)
    user = _user_model(out_units=16, softmax=True)
    g = import_model(user)
    assert g.head == "mulaw" and g.mulaw_bits == 4
    x = np.random.default_rng(1).normal(size=50)
    logits = run(build_model(g), x)
    np.testing.assert_allclose(keras.ops.softmax(logits, -1), run(user, x), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("make,phrase", [
    (lambda L, x: L.Conv1D(2, 3, padding="same")(x), "padding='same'"),
    (lambda L, x: L.LSTM(2, return_sequences=True)(x), "recurrent"),
    (lambda L, x: L.Bidirectional(L.GRU(2, return_sequences=True))(x), "recurrent"),
    (lambda L, x: L.MultiHeadAttention(1, 2)(x, x), "attends"),
    (lambda L, x: L.Conv1D(2, 3, strides=2)(x), "strides"),
    (lambda L, x: L.Reshape((-1, 1, 1))(x), "not supported"),
])
def test_non_streaming_layers_are_refused(make, phrase):
    L = keras.layers
    inp = keras.Input((32, 1))
    out = L.Dense(1)(make(L, inp))
    with pytest.raises(UserError, match=phrase.replace("(", r"\(").replace("'", ".")):
        import_model(keras.Model(inp, out))


def test_multiple_outputs_refused():
    inp = keras.Input((None, 1))
    with pytest.raises(UserError, match="outputs"):
        import_model(keras.Model(inp, [keras.layers.Dense(1)(inp), keras.layers.Dense(1)(inp)]))


@pytest.mark.parametrize("bad,phrase", [
    ({"layers": [{"type": "conv", "filters": 2, "kernal": 3}]}, "unknown key 'kernal'"),
    ({"layers": [{"type": "conv", "filters": 2, "kernel": 0}]}, "positive integer"),
    ({"layers": [{"type": "conv", "filters": -1}]}, "positive integer"),
    ({"layers": [{"type": "lstm"}]}, "unknown layer type"),
    ({"layers": []}, "no layers"),
    ({"layers": [{"type": "dense", "units": 2}], "head": "softmax"}, "head"),
    ({"layers": [{"type": "conv", "filters": 2, "dilation": 1 << 17}]}, "larger than"),
    ({"layers": [{"type": "conv", "filters": 2, "stride": 512}, {"type": "conv", "filters": 2, "stride": 512},
                 {"type": "conv", "filters": 2}]}, "exceeds"),
    ({"layers": [{"type": "dense", "units": 2, "skip": True}]}, "skips"),
    ({"layers": [{"type": "dense", "units": 2, "skip": True}, {"type": "skips", "combine": "max"}]}, "combine"),
    ({"layers": [{"type": "dense", "units": 2, "skip": True}, {"type": "dense", "units": 3, "skip": True},
                 {"type": "skips"}]}, "combine = \"concat\""),
    ({"layers": [{"type": "dense", "units": 2}], "colour": 1}, "unknown key 'colour'"),
])
def test_bad_specs_are_refused(bad, phrase):
    with pytest.raises(UserError, match=phrase):
        spec_mod.to_graph(spec_mod.parse(bad))


def test_default_spec_is_a_gated_wavenet():
    g = spec_mod.to_graph(spec_mod.default())
    assert g.receptive_field == 256
    assert sum(n.activation == "tanh" for n in g.nodes) == 4
    assert g.macs_per_sample() < 10_000
