"""`edgewave emit`: render the C for a converted model, then build and measure it where tools exist."""

from __future__ import annotations

import tempfile
from pathlib import Path

import jinja2
import numpy as np

from .. import __version__, ctools
from ..convert import pipeline as convert_pipeline
from ..engine import Engine
from ..errors import UserError
from ..modeldir import atomic_dir
from ..paths import package_dir
from ..plc import model as plc_model
from . import plan as plan_mod
from . import tflm

TARGETS = ("portable", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m0plus", "riscv32")
MARKER = ".edgewave-emit"
MEASURE_SAMPLES = 2000


def runtime_files() -> list[tuple[Path, str]]:
    """(source, path inside C_DIR) for the C runtime."""
    fw = package_dir("firmware")
    out = [(p, f"edgewave_rt/include/{p.name}") for p in sorted((fw / "include").glob("*.h"))]
    out += [(p, f"edgewave_rt/src/{p.name}") for p in sorted((fw / "src").glob("*.[ch]"))]
    return out


def render(manifest: dict, prog, stream: bytes | None, prefix: str, target: str = "portable",
           m4_arena: dict | None = None) -> tuple[dict[str, str], dict]:
    """{relative path: text} for every generated file, plus the numbers the report needs.

    ``target`` is the core the files are for: a Cortex-M or RISC-V core gets its own CMake toolchain file and build
    line; "portable" gets a toolchain file for every core edgewave supports. ``m4_arena``: the smallest
    arenas TFLM's AllocateTensors accepted on Cortex-M4 ({"cmsis_nn": bytes, "reference": bytes}), which
    NAME_TENSOR_ARENA_SIZE is then made from; without it, from TFLM's Python interpreter on this host.

    Without a ``stream`` (tests of the C runtime on synthetic programs) only the model's
    own C files and the runtime are rendered: no TFLM build, CMake or README."""
    p = plan_mod.plan(prog, prefix)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(package_dir("templates"))),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=False)
    info = np.iinfo(prog.input_dtype)
    # The host's figure is only the fallback: not measured when the M4 build's is given.
    arena = tflm.measured_arena_bytes(stream) if stream is not None and not m4_arena else 0
    ram = plan_mod.ram_bytes(p)
    state_struct = plan_mod.state_struct_bytes(p)
    ctx = {
        "version": __version__, "prefix": prefix, "P": prefix.upper(), "guard": f"{prefix.upper()}_H",
        "precision": prog.precision, "receptive_field": manifest["receptive_field"],
        "macs": sum(int(op.weights.size) for op in prog.ops if op.kind == "fc"),
        "outputs": prog.tensors[prog.output].channels, "ram_bytes": ram, "state_struct_bytes": state_struct,
        "stack_bytes": p.stack_bytes, "state_bytes": prog.state_bytes(),
        "sample_rate": manifest.get("sample_rate") or 0,
        "input_scale": repr(prog.tensors[prog.input].q.scale), "input_zero_point": prog.tensors[prog.input].q.zero_point,
        "output_scale": repr(prog.tensors[prog.output].q.scale),
        "output_zero_point": prog.tensors[prog.output].q.zero_point,
        "norm_offset": repr(float(manifest["normalization"]["offset"])),
        "norm_scale": repr(float(manifest["normalization"]["scale"])),
        "head": prog.head, "mulaw_bits": prog.mulaw_bits, "ctype": p.ctype, "in_ctype": p.storage[prog.input].ctype,
        "qmin": info.min, "qmax": info.max, "rings": p.rings, "scratch_size": p.scratch_size,
        "scratch16_size": p.scratch16_size, "consts": p.consts, "calls": p.calls,
        "zero_points": {name: prog.zero_code(name) for name in prog.tensors},
        "plan": p, "input_storage": p.storage[prog.input], "output_storage": p.storage[prog.output],
        **tflm.arena_context(arena, m4_arena), **tflm.glue_context(prog),
        "resolver_ops": [tflm.RESOLVER_METHODS[o] for o in tflm.ops(stream)] if stream is not None else [],
        "model_bytes": tflm.c_array(stream) if stream is not None else "", "model_size": len(stream or b""),
    }
    rule = plc_model.Rule(prog)
    if prog.head == "mulaw":
        ctx["feedback_levels"] = ", ".join(str(int(v)) for v in rule.levels)
    else:
        r = rule.rescale
        ctx["feedback_params"] = ", ".join(str(int(v)) for v in (r.zp_in, r.zp_out, r.mult, r.shift, r.act_min,
                                                                   r.act_max))
    ctx["in_offset"] = -int(info.min)
    cores = [c for c, t in ctools.TARGETS.items() if t.cpu_flags and target in ("portable", c)]
    ctx["toolchains"] = [toolchain_file(c) for c in cores]
    rt = runtime_files()
    ctx["runtime_sources"] = [dst for _, dst in rt if dst.endswith(".c")]
    files = {
        f"{prefix}.h": env.get_template("model.h.j2").render(ctx),
        f"{prefix}.c": env.get_template("model.c.j2").render(ctx),
        "edgewave_model.h": env.get_template("edgewave_model.h.j2").render(ctx),
    }
    if stream is not None:
        files.update({
            f"{prefix}_tflm.h": env.get_template("tflm_model.h.j2").render(ctx),
            f"{prefix}_tflm.cc": env.get_template("tflm_model.cc.j2").render(ctx),
            "edgewave_tflm_model.h": env.get_template("edgewave_tflm_model.h.j2").render(ctx),
            "CMakeLists.txt": env.get_template("CMakeLists.txt.j2").render(ctx),
            "README.md": env.get_template("README.md.j2").render(ctx),
        })
        for t in ctx["toolchains"]:
            files[f"cmake/{t['file']}"] = env.get_template(f"{t['prefix']}.cmake.j2").render(
                ctx, core=t["core"], cpu_flags=t["flags"])
    for src, dst in rt:
        files[dst] = src.read_text()
    numbers = {"ram_bytes": ram, "min_state_bytes": prog.state_bytes(), "tflm_arena_bytes": ctx["arena_need"],
               "tflm_arena_size": ctx["arena_size"], "tflm_arena_measured_on": ctx["arena_measured_on"],
               "tflm_ram_bytes": ctx["arena_need"] + prog.state_bytes(), "macs_per_sample": ctx["macs"],
               "tflite_bytes": len(stream or b"")}
    return files, numbers


def toolchain_file(core: str) -> dict:
    """The CMake toolchain file of a core: cmake/<tool prefix>-<core>.cmake from templates/<tool prefix>.cmake.j2,
    with the flags edgewave builds with (the C library's too: picolibc's headers come from its specs)."""
    t = ctools.TARGETS[core]
    prefix = t.toolchain.prefix
    return {"core": core, "prefix": prefix, "file": f"{prefix}-{core}.cmake",
            "flags": " ".join((*t.cpu_flags, *t.toolchain.libc_cflags))}


def c_sources(c_dir: Path, prefix: str) -> tuple[list[Path], list[Path]]:
    srcs = [c_dir / f"{prefix}.c"] + sorted((c_dir / "edgewave_rt" / "src").glob("*.c"))
    return srcs, [c_dir, c_dir / "edgewave_rt" / "include", c_dir / "edgewave_rt" / "src"]


def measure_input(prog, n: int = MEASURE_SAMPLES) -> np.ndarray:
    """A deterministic stand-in signal (a chirp plus noise in the input's quantized range)."""
    t = np.arange(n)
    x = 1.5 * np.sin(2 * np.pi * (0.002 + 0.1 * t / n) * t) + 0.3 * np.random.default_rng(0).normal(size=n)
    return convert_pipeline.quantize_input(prog, x.astype(np.float32))


def flash_core(target: str) -> str:
    """The core whose flash size the report gives and --flash-budget checks: the target, or the M4."""
    return "cortex-m4" if target == "portable" else target


def verify_and_measure(c_dir: Path, prefix: str, prog, target: str) -> dict:
    """Compile the emitted code, check it against the numpy engine, count instructions on the Cortex-M4 and the
    target (each where its cross tools are installed)."""
    result = {}
    codes = measure_input(prog)
    want = Engine(prog).run_sequence(codes)
    srcs, incs = c_sources(c_dir, prefix)
    with tempfile.TemporaryDirectory(prefix="edgewave-emit-") as tmp:
        tmp = Path(tmp)
        binary = ctools.build_host(srcs, incs, tmp / "host")
        got = ctools.run_host(binary, codes, out_dtype=prog.dtype)
        if not np.array_equal(got, want):
            raise UserError("the emitted C differs from the numpy integer engine on the host; "
                            "please report this as a bug with the OUT_DIR attached")
        result["host_matches_engine"] = True
        for name in sorted({"cortex-m4", target} - {"portable"}):
            if ctools.have_tools(name):
                elf, sizes = ctools.build_cortex_m(name, srcs, incs, tmp / name)
                key = name.replace("cortex-", "")
                result[f"{key}_text_bytes"] = sizes["model"]["text"]
                result[f"{key}_rodata_bytes"] = sizes["model"]["rodata"]
                if ctools.TARGETS[name].machine:
                    out, stats = ctools.run_qemu(name, elf, codes, out_dtype=prog.dtype)
                    if not np.array_equal(out, want):
                        raise UserError(f"the emitted C differs from the numpy engine on {name} (QEMU); please report")
                    per_sample = stats["instructions"] / stats["samples"]
                    result[f"{key}_instructions_per_sample"] = round(per_sample, 1)
        core = flash_core(target).replace("cortex-", "")
        if f"{core}_text_bytes" in result:
            result["flash_core"] = flash_core(target)
            result["flash_bytes"] = result[f"{core}_text_bytes"] + result[f"{core}_rodata_bytes"]
    return result


def accumulator_bits(prog) -> int:
    """Worst-case bits of any FULLY_CONNECTED accumulator of the model's own type (not an int8
    model's int16x8 input stage, which accumulates in int64): |bias| + sum_k |w| * max |x - zp|.

    int8 kernels accumulate in int32 like TFLM; a layer that could exceed it is refused
    here instead of wrapping silently on the device.
    """
    worst = 0
    for op in prog.ops:
        if op.kind != "fc" or prog.dtype_of(op.inputs[0][0]) != prog.dtype:
            continue
        zp = prog.tensors[op.inputs[0][0]].q.zero_point
        info = np.iinfo(prog.dtype)
        span = max(info.max - zp, zp - info.min)
        bound = np.abs(op.bias.astype(np.float64)) + np.abs(op.weights.astype(np.float64)).sum(axis=1) * span
        worst = max(worst, float(bound.max()))
    return int(np.ceil(np.log2(worst + 1))) + 1 if worst else 1


def write_c(out_dir: str, c_dir: str, prefix: str = "model", target: str = "portable", measure: bool = True,
            ram_budget: int | None = None, flash_budget: int | None = None, tflm_dir=None, progress=None) -> dict:
    """Render the C of OUT_DIR into C_DIR (all files or none), then build, check and measure it.
    ``tflm_dir``: a TFLM tree (or tarball) to measure NAME_TENSOR_ARENA_SIZE on, on the Cortex-M4 build
    with reference kernels and with CMSIS-NN (when ``measure``)."""
    prefix = plan_mod.check_prefix(prefix)
    if target not in TARGETS:
        raise UserError(f"--target {target!r} is not one of {', '.join(TARGETS)}")
    manifest, prog, stream = convert_pipeline.load(out_dir)
    if not prog.quantized:
        raise UserError("emit needs an int8 or int16x8 OUT_DIR; float32 models have no integer C runtime — "
                        "convert with --precision int16x8 or int8")
    acc_bits = accumulator_bits(prog)
    if prog.dtype == np.int8 and acc_bits > 32:
        raise UserError(f"a layer's worst-case accumulator needs {acc_bits} bits, more than the int32 TFLM uses; "
                        "make the layer narrower (fewer inputs per output) or use --precision int16x8")
    m4_arena = m4_arenas(manifest, prog, stream, prefix, tflm_dir, progress) if measure and tflm_dir else None
    files, numbers = render(manifest, prog, stream, prefix, target, m4_arena)
    numbers["accumulator_bits"] = acc_bits
    if m4_arena:
        numbers["tflm_m4_arena_bytes"] = m4_arena
    with atomic_dir(c_dir, MARKER) as tmp:
        for rel, text in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        (tmp / MARKER).write_text(f"edgewave {__version__}\n")
        report = {"files": sorted(files), **numbers, "target": target, "prefix": prefix}
        if measure:
            report.update(verify_and_measure(tmp, prefix, prog, target))
            if "m4_instructions_per_sample" in report:
                report["m4_instructions_per_mac"] = round(report["m4_instructions_per_sample"] / numbers["macs_per_sample"], 3)
        _check_budgets(report, ram_budget, flash_budget)
    return report


def m4_arenas(manifest: dict, prog, stream: bytes, prefix: str, tflm_dir, progress=None) -> dict[str, int]:
    """The smallest arenas TFLM's AllocateTensors accepts for the model on Cortex-M4, per kernel choice."""
    from .. import tflm_run, tflm_tree

    root = tflm_tree.find(tflm_dir)
    ctools._require(run=True)
    files, _ = render(manifest, prog, stream, prefix)
    with tempfile.TemporaryDirectory(prefix="edgewave-tflm-") as tmp:
        c_dir = Path(tmp) / "c"
        for rel, text in files.items():
            (c_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (c_dir / rel).write_text(text)
        if progress:
            progress(f"measuring TFLM's arena on Cortex-M4 (QEMU) with {root}")
        return tflm_run.smallest_arenas(c_dir, prefix, tflm.ops(stream), root, Path(tmp) / "work", progress)


def _check_budgets(report: dict, ram_budget: int | None, flash_budget: int | None) -> None:
    if ram_budget is not None and report["ram_bytes"] > ram_budget:
        raise UserError(f"the model needs {report['ram_bytes']} bytes of RAM, over --ram-budget {ram_budget}; "
                        "use fewer channels or smaller dilations, or int8 (half the state of int16x8)")
    if flash_budget is not None:
        if "flash_bytes" not in report:
            raise UserError("--flash-budget needs the flash size from a Cortex-M build: install gcc-arm-none-eabi "
                            "libnewlib-arm-none-eabi and do not pass --no-measure")
        if report["flash_bytes"] > flash_budget:
            raise UserError(f"the model needs {report['flash_bytes']} bytes of flash on {report['flash_core']}, over "
                            f"--flash-budget {flash_budget}; use fewer or narrower layers")
