"""The names callers still reach as `program.<name>` or `convert.program`.

The program is split by job: the representation is edgewave.program (below convert, so the
engine, runners and emitters need nothing of convert), the lowering convert.lowering and the
quantization search convert.quantization. Callers that take a module and use its attributes
(pipeline, tests) and work in progress elsewhere (realtime, the cost model) still name this
module; new code imports from the three modules instead.
"""

from ..program import from_files, to_files
from .lowering import lower, lower_structure, runtime_macs
from .quantization import (C16, fc_weight_scale, int8_lut_agrees, int8_rescale_agrees, int16_scale, quantize,
                           scale_grid, widen_input_stage)

__all__ = ["C16", "fc_weight_scale", "from_files", "int8_lut_agrees", "int8_rescale_agrees", "int16_scale", "lower",
           "lower_structure", "quantize", "runtime_macs", "scale_grid", "to_files", "widen_input_stage"]
