"""A user's Keras 3 model -> Graph (with weights), refusing what cannot stream."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from ..errors import UserError
from ..graph import Graph, Node
from .layers import CausalPooling1D

_ACTS = {"linear": "linear", None: "linear", "relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid"}
_RECURRENT = ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D", "TimeDistributed")
_ATTENTION = ("MultiHeadAttention", "Attention", "AdditiveAttention", "GroupedQueryAttention")
_IDENTITY = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout")
SUPPORTED = ("InputLayer", "Conv1D", "Dense", "Add", "Multiply", "Concatenate", "Activation", "ReLU",
             "CausalPooling1D") + _IDENTITY


def load_keras(path: str | Path) -> keras.Model:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such model file; pass a MODEL_DIR from `edgewave train` or a .keras file")
    if path.suffix != ".keras":
        raise UserError(f"{path}: expected a Keras 3 '.keras' file (save with model.save('model.keras'))")
    try:
        return keras.saving.load_model(path, compile=False,
                                       custom_objects={"CausalPooling1D": CausalPooling1D})
    except Exception as e:  # Keras raises many types for a bad archive
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: cannot load this Keras model ({first[:200]}); "
                        "re-save it with Keras 3 and only standard layers")


def _activation(layer, name: str, allow_softmax: bool) -> str:
    act = layer.get_config().get("activation", "linear")
    if isinstance(act, dict):  # Keras may serialise activations as objects
        act = act.get("config", {}).get("name", act.get("class_name"))
    if act == "softmax" and allow_softmax:
        return "softmax"
    if act not in _ACTS:
        raise UserError(f"layer {name!r}: activation {act!r} is not supported; use linear, relu, tanh or sigmoid")
    return _ACTS[act]


def _refuse(layer) -> None:
    kind = type(layer).__name__
    name = layer.name
    if kind in _RECURRENT or any(type(l).__name__ in _RECURRENT for l in getattr(layer, "_layers", [])):
        raise UserError(f"layer {name!r} ({kind}) is recurrent; edgewave streams causal convolutions only — "
                        "replace it with dilated causal Conv1D layers")
    if kind in _ATTENTION:
        raise UserError(f"layer {name!r} ({kind}) attends over the whole sequence, which cannot stream with a "
                        "fixed ring buffer; replace it with dilated causal Conv1D layers")
    raise UserError(f"layer {name!r} ({kind}) is not supported for streaming; supported layers: "
                    f"{', '.join(SUPPORTED)}")


def _sources(layer) -> list[str]:
    nodes = getattr(layer, "_inbound_nodes", [])
    if len(nodes) != 1:
        raise UserError(f"layer {layer.name!r} is called {len(nodes)} times; edgewave needs each layer used once "
                        "(share weights by copying them into separate layers)")
    return [t._keras_history.operation.name for t in nodes[0].input_tensors]


def import_model(model: keras.Model) -> Graph:
    if isinstance(model, keras.Sequential):
        model = model._functional if getattr(model, "_functional", None) is not None else model
    if len(model.inputs) != 1:
        raise UserError(f"the model has {len(model.inputs)} inputs; edgewave needs one input of shape (time, 1)")
    if len(model.outputs) != 1:
        raise UserError(f"the model has {len(model.outputs)} outputs; edgewave needs exactly one output")
    nodes: list[Node] = []
    weights = {}
    alias: dict[str, str] = {}  # identity layers map to their input
    out_layer = model.outputs[0]._keras_history.operation.name
    head_softmax = False
    for layer in model.layers:
        kind, name = type(layer).__name__, layer.name
        if kind == "InputLayer":
            shape = tuple(layer.batch_shape if hasattr(layer, "batch_shape") else layer.output.shape)
            if len(shape) != 3 or shape[-1] != 1:
                raise UserError(f"input {name!r} has shape {shape}; edgewave needs (batch, time, 1)")
            nodes.append(Node(name, "input", (), 1))
            continue
        srcs = [alias.get(s, s) for s in _sources(layer)]
        chans = {n.name: n.channels for n in nodes}
        is_out = name == out_layer
        if kind in _IDENTITY:
            alias[name] = srcs[0]
            if is_out:
                out_layer = srcs[0]
            continue
        if kind == "Conv1D":
            cfg = layer.get_config()
            if cfg["padding"] == "same":
                raise UserError(f"layer {name!r} (Conv1D) uses padding='same', which pads both sides and so reads "
                                "future samples; it cannot stream — retrain it with padding='causal'")
            if cfg["padding"] not in ("causal", "valid"):
                raise UserError(f"layer {name!r} (Conv1D): padding {cfg['padding']!r} is not supported")
            if tuple(cfg["strides"]) != (1,):
                raise UserError(f"layer {name!r} (Conv1D) has strides {cfg['strides']}; a streaming model produces "
                                "one output per sample — express strides as dilations (see `edgewave spec`)")
            if cfg.get("groups", 1) != 1 or cfg.get("data_format", "channels_last") != "channels_last":
                raise UserError(f"layer {name!r} (Conv1D): grouped or channels_first convs are not supported")
            act = _activation(layer, name, is_out)
            k, d = cfg["kernel_size"][0], cfg["dilation_rate"][0]
            w = layer.get_weights()
            weights[name] = (np.asarray(w[0], np.float32), np.asarray(w[1], np.float32) if cfg["use_bias"] else None)
            nodes.append(Node(name, "conv", (srcs[0],), cfg["filters"], k, d,
                              "linear" if act == "softmax" else act, use_bias=cfg["use_bias"], spec_dilation=d))
            head_softmax |= act == "softmax"
        elif kind == "Dense":
            cfg = layer.get_config()
            act = _activation(layer, name, is_out)
            w = layer.get_weights()
            if w[0].ndim != 2:
                raise UserError(f"layer {name!r} (Dense) is not applied on the last axis")
            weights[name] = (np.asarray(w[0], np.float32)[None], np.asarray(w[1], np.float32) if cfg["use_bias"] else None)
            nodes.append(Node(name, "conv", (srcs[0],), cfg["units"], activation="linear" if act == "softmax" else act,
                              use_bias=cfg["use_bias"]))
            head_softmax |= act == "softmax"
        elif kind in ("Add", "Multiply"):
            nodes.append(Node(name, "add" if kind == "Add" else "mul", tuple(srcs), chans[srcs[0]]))
        elif kind == "Concatenate":
            if layer.get_config()["axis"] not in (-1, 2):
                raise UserError(f"layer {name!r} (Concatenate) must join channels (axis=-1)")
            nodes.append(Node(name, "concat", tuple(srcs), sum(chans[s] for s in srcs)))
        elif kind in ("Activation", "ReLU"):
            if kind == "ReLU":
                cfg = layer.get_config()
                if cfg.get("max_value") is not None or cfg.get("negative_slope", 0) or cfg.get("threshold", 0):
                    raise UserError(f"layer {name!r} (ReLU): only the plain relu is supported")
                act = "relu"
            else:
                act = _activation(layer, name, is_out)
            if act == "softmax":  # the categorical head's softmax: we keep logits
                alias[name] = srcs[0]
                out_layer = srcs[0]
                head_softmax = True
                continue
            nodes.append(Node(name, "act", (srcs[0],), chans[srcs[0]], activation=act))
        elif kind == "CausalPooling1D":
            nodes.append(Node(name, "pool", (srcs[0],), chans[srcs[0]], layer.pool_size, layer.dilation_rate,
                              pool=layer.pooling_type, spec_dilation=layer.dilation_rate))
        else:
            _refuse(layer)
    out_channels = next(n.channels for n in nodes if n.name == out_layer)
    if out_channels == 1 and not head_softmax:
        head, bits = "regression", 8
    elif out_channels >= 4 and out_channels & (out_channels - 1) == 0:
        head, bits = "mulaw", out_channels.bit_length() - 1
    else:
        raise UserError(f"the output has {out_channels} channels; edgewave needs 1 (regression) or 2**bits "
                        "(categorical mu-law head)")
    graph = Graph(nodes=nodes, output=out_layer, head=head, mulaw_bits=bits)
    graph.weights = weights
    return graph
