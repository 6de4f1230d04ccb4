"""Write and read TFLite flatbuffers with the schema's Python object API.

Why by hand: the converter decides quantization, op choice and tensor order on its
own; streaming models need every state tensor to carry exactly the quantization of
the activation that fills it, and graphs free of SPACE_TO_BATCH_ND. Writing the
flatbuffer directly controls every tensor.

    b = ModelBuilder("demo")
    x = b.tensor("x", [1, 8], "int8", scale=0.05, zero_point=-3)
    w = b.tensor("w", [4, 8], "int8", scale=w_scales, data=w_q)   # per-channel
    ...
    b.op("FULLY_CONNECTED", [x, w, bias], [y], fused_activation="RELU")
    b.signature("serving_default", inputs={"x": x}, outputs={"y": y})
    model_bytes = b.build()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import flatbuffers
import numpy as np

from edgewave.errors import UserError

try:  # the maintained LiteRT wheel ships the schema at its top level
    from ai_edge_litert import schema_py_generated as schema
except ImportError:  # pragma: no cover - fallbacks for older environments
    try:
        from tensorflow.lite.python import schema_py_generated as schema
    except ImportError:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
# TFLM reads int64 bias and other constants in place: keep every buffer aligned.
_BUFFER_ALIGNMENT = 16

_DTYPES = {  # numpy name -> TensorType
    "float32": schema.TensorType.FLOAT32,
    "int8": schema.TensorType.INT8,
    "uint8": schema.TensorType.UINT8,
    "int16": schema.TensorType.INT16,
    "int32": schema.TensorType.INT32,
    "int64": schema.TensorType.INT64,
    "bool": schema.TensorType.BOOL,
}
_DTYPE_NAMES = {code: name for name, code in _DTYPES.items()}

# Builtin options table of each op this project emits (None: the op has none).
_OPTIONS = {
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "CONV_2D": "Conv2DOptions",
    "CONCATENATION": "ConcatenationOptions",
    "ADD": "AddOptions",
    "MUL": "MulOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "PAD": "PadOptions",
    "STRIDED_SLICE": "StridedSliceOptions",
    "RESHAPE": "ReshapeOptions",
    "QUANTIZE": "QuantizeOptions",
    "DEQUANTIZE": "DequantizeOptions",
    "TANH": None,
    "LOGISTIC": None,
}

_ENUM_OPTIONS = {  # option keyword -> (attribute, enum class)
    "fused_activation": ("fusedActivationFunction", schema.ActivationFunctionType),
    "padding": ("padding", schema.Padding),
}


def _enum_names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_")}


_OP_NAMES = _enum_names(schema.BuiltinOperator)


@dataclass(frozen=True)
class Tensor:
    """Handle to a tensor of the model under construction."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str


def _dtype_name(dtype) -> str:
    name = np.dtype(dtype).name
    if name not in _DTYPES:
        raise ValueError(f"unsupported tensor dtype {name!r}; use one of {sorted(_DTYPES)}")
    return name


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)


class _AlignedBufferT(schema.BufferT):
    """BufferT whose data vector starts on a 16-byte boundary (the stock Pack uses 1)."""

    def Pack(self, builder):
        data = None
        if self.data is not None:
            raw = np.ascontiguousarray(self.data).view(np.uint8).ravel().tobytes()
            builder.StartVector(1, len(raw), _BUFFER_ALIGNMENT)
            # Bulk copy as flatbuffers' own CreateNumpyVector does (which aligns to 1 only).
            builder.head -= len(raw)
            builder.Bytes[builder.head : builder.head + len(raw)] = raw
            data = builder.EndVector()
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        return schema.BufferEnd(builder)


class ModelBuilder:
    """Collects tensors, operators and one signature; ``build()`` serializes them."""

    def __init__(self, description: str = "edgewave"):
        self.description = description
        self._tensors: list[schema.TensorT] = []
        self._buffers: list[schema.BufferT] = [_AlignedBufferT()]  # buffer 0: empty sentinel
        self._opcodes: dict[tuple[int, int], int] = {}
        self._operators: list[schema.OperatorT] = []
        self._signature: tuple[str, dict[str, Tensor], dict[str, Tensor]] | None = None

    # -- tensors -----------------------------------------------------------------
    def tensor(
        self,
        name: str,
        shape: Sequence[int],
        dtype,
        scale=None,
        zero_point=None,
        quantized_dimension: int = 0,
        data: np.ndarray | None = None,
    ) -> Tensor:
        """Add a tensor; ``data`` makes it a constant, scale/zero_point may be per-channel."""
        dtype = _dtype_name(dtype)
        shape = tuple(int(d) for d in shape)
        t = schema.TensorT()
        t.name = name
        t.shape = list(shape)
        t.type = _DTYPES[dtype]
        t.buffer = 0
        if scale is not None:
            scales = np.atleast_1d(np.asarray(scale, dtype=np.float32))
            zps = np.zeros(scales.shape, np.int64) if zero_point is None else np.atleast_1d(np.asarray(zero_point, np.int64))
            if zps.shape != scales.shape:
                raise ValueError(f"tensor {name!r}: {zps.size} zero points for {scales.size} scales")
            if scales.size > 1 and shape[quantized_dimension] != scales.size:
                raise ValueError(
                    f"tensor {name!r}: {scales.size} scales but dimension {quantized_dimension} has {shape[quantized_dimension]}"
                )
            q = schema.QuantizationParametersT()
            q.scale = [float(s) for s in scales]
            q.zeroPoint = [int(z) for z in zps]
            q.quantizedDimension = int(quantized_dimension)
            t.quantization = q
        elif zero_point is not None:
            raise ValueError(f"tensor {name!r}: zero_point given without scale")
        if data is not None:
            arr = np.asarray(data)
            if arr.shape != shape:
                raise ValueError(f"tensor {name!r}: data shape {arr.shape} != declared shape {shape}")
            stored = arr.astype(np.dtype(dtype).newbyteorder("<"))
            if not np.array_equal(stored, arr):
                raise ValueError(f"tensor {name!r}: data does not fit {dtype} exactly")
            buf = _AlignedBufferT()
            buf.data = np.ascontiguousarray(stored)
            t.buffer = len(self._buffers)
            self._buffers.append(buf)
        self._tensors.append(t)
        return Tensor(len(self._tensors) - 1, name, shape, dtype)

    def const(self, name: str, data, dtype=None, **quant) -> Tensor:
        """Shorthand for a constant tensor whose shape and dtype come from ``data``."""
        arr = np.asarray(data, dtype=dtype)
        return self.tensor(name, arr.shape, arr.dtype, data=arr, **quant)

    # -- operators ---------------------------------------------------------------
    def op(
        self,
        name: str,
        inputs: Sequence[Tensor | None],
        outputs: Sequence[Tensor],
        version: int = 1,
        **options,
    ) -> None:
        """Add builtin op ``name``; ``None`` in inputs marks an omitted optional input.

        Options use snake_case schema names (``keep_num_dims``, ``axis``, ``new_shape``,
        ``begin_mask`` ...), plus ``fused_activation="RELU"``, ``padding="VALID"``,
        ``filter=(h, w)`` and ``stride=(h, w)`` for pooling.
        """
        code = getattr(schema.BuiltinOperator, name, None)
        if code is None:
            raise ValueError(f"unknown TFLite builtin operator {name!r}")
        op = schema.OperatorT()
        op.opcodeIndex = self._opcode(code, version)
        op.inputs = [-1 if t is None else t.index for t in inputs]
        op.outputs = [t.index for t in outputs]
        table = _OPTIONS.get(name, "".join(part.capitalize() for part in name.split("_")) + "Options")
        if table is not None and hasattr(schema, table + "T"):
            op.builtinOptionsType = getattr(schema.BuiltinOptions, table)
            op.builtinOptions = self._options(getattr(schema, table + "T")(), name, options)
        elif options:
            raise ValueError(f"{name} takes no options, got {sorted(options)}")
        self._operators.append(op)

    def _opcode(self, code: int, version: int) -> int:
        key = (code, version)
        if key not in self._opcodes:
            self._opcodes[key] = len(self._opcodes)
        return self._opcodes[key]

    @staticmethod
    def _options(obj, op_name: str, options: Mapping):
        if op_name == "FULLY_CONNECTED":
            obj.keepNumDims = True  # our default: the output keeps the input's rank
        for key, value in options.items():
            if key in _ENUM_OPTIONS:
                attr, enum = _ENUM_OPTIONS[key]
                value = getattr(enum, str(value).upper())
            elif key in ("filter", "stride"):
                h, w = value
                attr_h, attr_w = ("filterHeight", "filterWidth") if key == "filter" else ("strideH", "strideW")
                setattr(obj, attr_h, int(h))
                setattr(obj, attr_w, int(w))
                continue
            else:
                attr = _camel(key)
                if isinstance(value, (list, tuple, np.ndarray)):
                    value = [int(v) for v in value]
            if not hasattr(obj, attr):
                raise ValueError(f"{op_name} has no option {key!r}")
            setattr(obj, attr, value)
        return obj

    # -- signature and serialization ------------------------------------------------
    def signature(self, key: str, inputs: Mapping[str, Tensor], outputs: Mapping[str, Tensor]) -> None:
        """Name the model's inputs and outputs; they also become the subgraph's I/O in this order."""
        self._signature = (key, dict(inputs), dict(outputs))

    def build(self) -> bytes:
        if self._signature is None:
            raise ValueError("call signature() before build(): inputs and outputs are addressed by name")
        key, inputs, outputs = self._signature
        sub = schema.SubGraphT()
        sub.name = "main"
        sub.tensors = self._tensors
        sub.operators = self._operators
        sub.inputs = [t.index for t in inputs.values()]
        sub.outputs = [t.index for t in outputs.values()]

        sig = schema.SignatureDefT()
        sig.signatureKey = key
        sig.subgraphIndex = 0
        sig.inputs = [_tensor_map(n, t) for n, t in inputs.items()]
        sig.outputs = [_tensor_map(n, t) for n, t in outputs.items()]

        model = schema.ModelT()
        model.version = SCHEMA_VERSION
        model.description = self.description
        model.subgraphs = [sub]
        model.buffers = self._buffers
        model.signatureDefs = [sig]
        model.operatorCodes = []
        for (code, version), _ in sorted(self._opcodes.items(), key=lambda kv: kv[1]):
            oc = schema.OperatorCodeT()
            oc.builtinCode = code
            # Readers older than schema v3a look only at the int8 field; 127 means "see builtinCode".
            oc.deprecatedBuiltinCode = min(code, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
            oc.version = version
            model.operatorCodes.append(oc)

        fb = flatbuffers.Builder(1024)
        fb.Finish(model.Pack(fb), file_identifier=FILE_IDENTIFIER)
        return bytes(fb.Output())


def _tensor_map(name: str, t: Tensor):
    m = schema.TensorMapT()
    m.name = name
    m.tensorIndex = t.index
    return m


# -- reading ------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    quantized_dimension: int
    data: np.ndarray | None  # constant contents, None for activations


@dataclass(frozen=True)
class OpInfo:
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    version: int


@dataclass(frozen=True)
class ModelSummary:
    description: str
    tensors: tuple[TensorInfo, ...]
    ops: tuple[OpInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    signatures: dict  # key -> {"inputs": {name: index}, "outputs": {name: index}}

    @property
    def op_names(self) -> list[str]:
        return [op.name for op in self.ops]

    def tensor(self, name: str) -> TensorInfo:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)


def _seq(values) -> list:
    """Object-API vectors come back as None, lists or numpy arrays; make them lists."""
    return [] if values is None else list(values)


def check_model_bytes(model: bytes) -> "schema.ModelT":
    """Parse TFLite bytes, raising UserError with a one-line reason if they are not a model."""
    model = bytes(model)
    if len(model) < 8 or model[4:8] != FILE_IDENTIFIER:
        raise UserError(
            "not a TFLite model (missing the 'TFL3' file identifier); pass a .tflite flatbuffer"
        )
    try:
        obj = schema.ModelT.InitFromPackedBuf(model, 0)
        if obj.version != SCHEMA_VERSION or not obj.subgraphs:
            raise ValueError(f"schema version {obj.version}, {len(_seq(obj.subgraphs))} subgraphs")
        n_buffers = len(_seq(obj.buffers))
        for sub in obj.subgraphs:
            n = len(_seq(sub.tensors))
            for t in _seq(sub.tensors):
                if not 0 <= t.buffer < max(n_buffers, 1):
                    raise ValueError(f"tensor {t.name!r} points to missing buffer {t.buffer}")
            for op in _seq(sub.operators):
                if not 0 <= op.opcodeIndex < len(_seq(obj.operatorCodes)):
                    raise ValueError(f"operator uses missing opcode {op.opcodeIndex}")
                if any(not -1 <= i < n for i in _seq(op.inputs) + _seq(op.outputs)):
                    raise ValueError("operator refers to a missing tensor")
    except UserError:
        raise
    except Exception as exc:  # flatbuffers raises struct/index/unicode errors on damage
        raise UserError(f"corrupt or truncated TFLite model ({type(exc).__name__}: {exc})") from None
    return obj


def read_model(model: bytes) -> ModelSummary:
    """Summarize a TFLite model: ops, tensors (with quantization and constants), signatures."""
    obj = check_model_bytes(model)
    sub = obj.subgraphs[0]
    tensors = []
    for i, t in enumerate(_seq(sub.tensors)):
        q = t.quantization
        scale = tuple(float(s) for s in _seq(q.scale if q is not None else None))
        zp = tuple(int(z) for z in _seq(q.zeroPoint if q is not None else None))
        dtype = _DTYPE_NAMES.get(t.type, f"type{t.type}")
        data = None
        raw = obj.buffers[t.buffer].data
        if raw is not None and len(raw) > 0 and dtype in _DTYPES:
            shape = tuple(int(d) for d in _seq(t.shape))
            data = np.frombuffer(np.asarray(raw, np.uint8).tobytes(), np.dtype(dtype).newbyteorder("<")).reshape(shape)
        name = t.name.decode() if isinstance(t.name, bytes) else (t.name or "")
        tensors.append(
            TensorInfo(
                i,
                name,
                tuple(int(d) for d in _seq(t.shape)),
                dtype,
                scale,
                zp,
                int(q.quantizedDimension) if q is not None else 0,
                data,
            )
        )
    ops = []
    for op in _seq(sub.operators):
        code = obj.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        ops.append(
            OpInfo(
                _OP_NAMES.get(builtin, f"BUILTIN_{builtin}"),
                tuple(int(i) for i in _seq(op.inputs)),
                tuple(int(i) for i in _seq(op.outputs)),
                int(code.version),
            )
        )
    signatures = {}
    for sig in _seq(obj.signatureDefs):
        key = sig.signatureKey.decode() if isinstance(sig.signatureKey, bytes) else sig.signatureKey
        signatures[key] = {
            side: {(m.name.decode() if isinstance(m.name, bytes) else m.name): int(m.tensorIndex) for m in _seq(getattr(sig, side))}
            for side in ("inputs", "outputs")
        }
    desc = obj.description.decode() if isinstance(obj.description, bytes) else (obj.description or "")
    return ModelSummary(
        desc,
        tuple(tensors),
        tuple(ops),
        tuple(int(i) for i in _seq(sub.inputs)),
        tuple(int(i) for i in _seq(sub.outputs)),
        signatures,
    )
