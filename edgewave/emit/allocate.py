"""Pass: allocate the memory of the generated step.

One ring per tensor that is read at a delay, holding `length + 1` rows so the current
value is written straight into its slot (no copy into the ring afterwards); every other
tensor gets a slot in a scratch area shared by tensors whose lifetimes do not overlap
within a step (int16 slots start 4-byte aligned, so that the fully-connected kernels read
them in place). The prepared fully-connected calls gather their inputs into buffers on the
step's stack, as large as the largest call needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..program import Program
    from .fuse import FusedOp
    from .plan import Plan


@dataclass
class Storage:
    tensor: str
    channels: int
    ring: str | None = None       # state member holding the ring rows
    head: str | None = None       # state member with the current row's offset (in values)
    rows: int = 0                 # ring rows (= max delay + 1)
    offset: int | None = None     # scratch offset (non-ring tensors)
    wide: bool = False            # int16 in an int8 model (the input stage): own rings and scratch16
    ctype: str = "int8_t"


def tensor_storage(prog: Program, ctype: str) -> dict[str, Storage]:
    """Every tensor's storage: a ring (named after the tensor's index) when read at a delay; the
    scratch offsets follow from ``scratch``."""
    lengths = prog.ring_lengths()
    out: dict[str, Storage] = {}
    for i, name in enumerate(prog.tensors):
        t = prog.tensors[name]
        wide = prog.dtype_of(name) != prog.dtype
        kind = dict(wide=wide, ctype="int16_t" if wide else ctype)
        if name in lengths:
            out[name] = Storage(name, t.channels, f"ring{i}", f"head{i}", lengths[name] + 1, **kind)
        else:
            out[name] = Storage(name, t.channels, **kind)
    return out


def scratch(prog: Program, fops: list[FusedOp], storage: dict[str, Storage], align: int = 1,
                      wide: bool = False) -> int:
    """First-fit offsets (multiples of ``align``) for the non-ring tensors of one scratch area (the
    model type's, or with ``wide`` the input stage's int16 one), freeing each after its last reader
    within the step."""
    last_use = {}
    for i, f in enumerate(fops):
        for name, _ in f.inputs + ([f.other] if f.other else []):
            last_use[name] = i
    last_use[prog.output] = len(fops)
    live: list[tuple[int, int, str]] = []  # (offset, size, tensor)
    size = 0

    def place(name):
        nonlocal size
        if storage[name].wide != wide:
            return
        need = -(-storage[name].channels // align) * align
        pos = 0
        for off, sz, _ in sorted(live):
            if off - pos >= need:
                break
            pos = max(pos, off + sz)
        storage[name].offset = pos
        live.append((pos, need, name))
        size = max(size, pos + need)

    if storage[prog.input].ring is None:
        place(prog.input)
    for i, f in enumerate(fops):
        for name in [f.output] + ([f.also] if f.also else []):
            if storage[name].ring is None:
                place(name)
        live[:] = [(o, s, n) for o, s, n in live if last_use.get(n, -1) > i]
    return size


def gather_buffers(calls: list[dict]) -> tuple[int, int]:
    """int32 words of the step-local buffers the prepared fully-connected calls gather their inputs
    into: the model type's (xw) and the int8 model's 16-bit input stage's (xw16)."""
    words = {False: 0, True: 0}
    for c in calls:
        if "xw_words" in c:
            words[c["wide"]] = max(words[c["wide"]], c["xw_words"])
    return words[False], words[True]


def layout(p: Plan) -> tuple[int, dict[str, int]]:
    """Byte offsets in the state struct (model.h.j2: heads, scratch, rings)."""
    item = 2 if p.suffix == "s16" else 1
    off = 4 * len(p.rings)
    scratch = off
    off += max(p.scratch_size, 1) * item
    rings = {}
    for r in p.rings:
        if not r.wide:  # the input stage's int16 rings follow: no fused call reads them
            rings[r.tensor] = off
            off += r.rows * r.channels * item
    return scratch, rings


def aligned(p: Plan, name: str) -> bool:
    """Every row of the tensor's storage starts 4-byte aligned (the state struct is 4-byte
    aligned when it holds a ring head)."""
    if not p.rings or p.storage[name].wide:  # the input stage's rows: no promise (memcpy copes)
        return False
    item = 2 if p.suffix == "s16" else 1
    scratch, rings = layout(p)
    s = p.storage[name]
    if s.ring is None:
        return (scratch + s.offset * item) % 4 == 0
    return rings[name] % 4 == 0 and (s.channels * item) % 4 == 0

