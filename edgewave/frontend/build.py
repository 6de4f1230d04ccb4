"""Graph -> Keras model (the training, "practice" form), and weights back out."""

from __future__ import annotations

import keras
import numpy as np

from ..graph import Graph
from .layers import CausalPooling1D


def build_model(graph: Graph, window: int | None = None) -> keras.Model:
    """A functional model over [batch, time, 1]; time may be None (any length)."""
    tensors = {}
    for n in graph.nodes:
        ins = [tensors[i] for i in n.inputs]
        if n.op == "input":
            out = keras.Input((window, 1), name=n.name)
        elif n.op == "conv":
            out = keras.layers.Conv1D(n.channels, n.kernel, dilation_rate=n.dilation, padding="causal",
                                      activation=None if n.activation == "linear" else n.activation,
                                      use_bias=n.use_bias, name=n.name)(ins[0])
        elif n.op == "pool":
            out = CausalPooling1D(n.pool, n.kernel, n.dilation, name=n.name)(ins[0])
        elif n.op == "add":
            out = keras.layers.Add(name=n.name)(ins)
        elif n.op == "mul":
            out = keras.layers.Multiply(name=n.name)(ins)
        elif n.op == "concat":
            out = keras.layers.Concatenate(axis=-1, name=n.name)(ins)
        elif n.op == "act":
            out = keras.layers.Activation(n.activation, name=n.name)(ins[0])
        else:  # pragma: no cover - Graph.validate() rejects other ops
            raise AssertionError(n.op)
        tensors[n.name] = out
    model = keras.Model(tensors[graph.input_name], tensors[graph.output], name="edgewave")
    if graph.weights:
        set_weights(model, graph)
    return model


def get_weights(model: keras.Model, graph: Graph) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    out = {}
    for n in graph.nodes:
        if n.op == "conv":
            w = model.get_layer(n.name).get_weights()
            out[n.name] = (np.asarray(w[0], np.float32), np.asarray(w[1], np.float32) if n.use_bias else None)
    return out


def set_weights(model: keras.Model, graph: Graph) -> None:
    for name, (kernel, bias) in graph.weights.items():
        model.get_layer(name).set_weights([kernel] if bias is None else [kernel, bias])
