"""Program -> what the C templates print: the passes, run in order, and the Plan they fill.

    allocate.tensor_storage  rings for the tensors read at a delay
    fuse.fuse                ops grouped into calls (pack.py proves each prepared call exact)
    allocate.scratch         scratch offsets of the other tensors, per scratch area
    lower.lower              each call's kernel, arguments and constants
    allocate.gather_buffers  the step-local buffers the prepared calls gather into

Every decision is made here; templates/model.c.j2 and calls.j2 print the result.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UserError
from . import allocate, fuse, lower
from .allocate import Storage

if TYPE_CHECKING:
    from ..program import Program

C_KEYWORDS = set("""auto break case char const continue default do double else enum extern float for goto if inline
int long register restrict return short signed sizeof static struct switch typedef union unsigned void volatile
while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic _Noreturn _Static_assert _Thread_local
bool true false NULL asm""".split())


def check_prefix(prefix: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix or ""):
        raise UserError(f"--prefix {prefix!r} is not a valid C identifier; use letters, digits and _ "
                        "(not starting with a digit), e.g. --prefix speech_model")
    if prefix in C_KEYWORDS or keyword.iskeyword(prefix) or prefix.startswith("ew_"):
        raise UserError(f"--prefix {prefix!r} is a C keyword or reserved by edgewave's runtime (ew_*); "
                        "choose another name")
    return prefix


@dataclass
class Plan:
    prefix: str
    ctype: str
    suffix: str
    storage: dict[str, Storage]
    scratch_size: int
    scratch16_size: int = 0  # int8 models: the input stage's int16 tensors, after the int8 storage
    consts: list[dict] = field(default_factory=list)  # see lower.py
    calls: list[dict] = field(default_factory=list)   # see lower.py
    xw_words: int = 0    # the step-local gather buffer of the model type (int32 words)
    xw16_words: int = 0  # the same for an int8 model's 16-bit input stage

    @property
    def rings(self) -> list[Storage]:
        """In state-struct order: the model type's rings, then the input stage's int16 ones."""
        return sorted((s for s in self.storage.values() if s.ring), key=lambda s: s.wide)

    @property
    def stack_bytes(self) -> int:
        """Step-local buffers (not in the state struct)."""
        return 4 * (self.xw_words + self.xw16_words)


def plan(prog: Program, prefix: str) -> Plan:
    assert prog.quantized, "emit.pipeline refuses float programs"
    ctype, suffix = ("int16_t", "s16") if prog.dtype == np.int16 else ("int8_t", "s8")
    storage = allocate.tensor_storage(prog, ctype)
    fops = fuse.fuse(prog)
    scratch = allocate.scratch(prog, fops, storage, align=2 if suffix == "s16" else 1)
    scratch16 = allocate.scratch(prog, fops, storage, wide=True)
    p = Plan(prefix, ctype, suffix, storage, scratch, scratch16)
    lower.lower(p, prog, fops)
    p.xw_words, p.xw16_words = allocate.gather_buffers(p.calls)
    return p


def ram_bytes(p: Plan) -> int:
    """All the RAM a step needs: the state struct plus the gather buffer on the step's stack."""
    return state_struct_bytes(p) + p.stack_bytes


def state_struct_bytes(p: Plan) -> int:
    """sizeof(state) on a 32-bit MCU: ring rows, one uint32 head per ring, the scratch areas."""
    item = 2 if p.suffix == "s16" else 1
    raw = sum(r.rows * r.channels * item for r in p.rings if not r.wide) + max(p.scratch_size, 1) * item
    wide = sum(r.rows * r.channels * 2 for r in p.rings if r.wide) + 2 * p.scratch16_size
    if wide:
        raw = (raw + 1) // 2 * 2 + wide
    raw = (raw + 3) // 4 * 4
    return raw + 4 * len(p.rings)
