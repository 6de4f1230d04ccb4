"""Build TensorFlow Lite Micro for the Cortex-M4 (QEMU mps2-an386) from a user's TFLM tree, and link programs
against it: what `make bench` and the tests use to run edgewave's ``.tflite`` on stock TFLM, with TFLM's
reference kernels or with CMSIS-NN.

TFLM's own Makefile is the truth for compilers, flags and source lists: it is asked once per tree and kernel
choice (``make print-CXXFLAGS ...`` for ``TARGET=cortex_m_generic TARGET_ARCH=cortex-m4+fp FPU=fpv4-sp-d16
TOOLCHAIN=gcc BUILD_TYPE=release``, every group at -O2; ``OPTIMIZED_KERNEL_DIR=cmsis_nn`` for CMSIS-NN) and
the answer is cached. From its lists only what a model needs is compiled: TFLM's core, the kernels of the
model's ops (the file the Makefile picked, so ``kernels/cmsis_nn/`` where it has one) and, with CMSIS-NN,
the CMSIS-NN functions those kernels call. Objects are cached per source and flags, so another op set
reuses them; archives per op set. Everything lives under ``tflm-lib/`` beside TFLM's unpacked trees
(:func:`edgewave.tflm_tree._cache_dir`) and is written by rename, so a killed build leaves nothing half.

    root = tflm_tree.find()
    lib = tflm_build.library(root, "cmsis_nn", ["ADD", "FULLY_CONNECTED"], progress=print)
    elf, sizes = tflm_build.build_program(root, "reference", ops, ["main.cc", "model_data.cc"], [], out_dir)

The cache notices a new tree (its path), a changed Makefile (the build files' sizes and times), a changed
source (objects are keyed by content), another compiler version and other flags; it does not notice an
edited TFLM header in an unchanged tree: delete ``tflm-lib/`` then.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import ctools, tflm_tree
from .errors import UserError

__all__ = ["KERNELS", "TARGET", "library", "compile_flags", "build_program"]

KERNELS = ("reference", "cmsis_nn")
TARGET = "cortex-m4"  # the ctools target whose board runs the programs
JOBS = 2
MAKEFILE = Path("tensorflow") / "lite" / "micro" / "tools" / "make" / "Makefile"
MAKE_ARGS = ("TARGET=cortex_m_generic", "TARGET_ARCH=cortex-m4+fp", "FPU=fpv4-sp-d16", "TOOLCHAIN=gcc",
             "BUILD_TYPE=release", "CORE_OPTIMIZATION_LEVEL=-O2", "KERNEL_OPTIMIZATION_LEVEL=-O2",
             "THIRD_PARTY_KERNEL_OPTIMIZATION_LEVEL=-O2",
             # Keep TFLM's examples, benchmarks and generated tests out of the parse: they run generators
             # and are no part of the library.
             "MICRO_LITE_EXAMPLE_TESTS=", "MICRO_LITE_BENCHMARKS=", "OLD_MICRO_LITE_BENCHMARKS=",
             "MICRO_LITE_INTEGRATION_TESTS=", "MICRO_LITE_LAYER_BY_LAYER_OUTPUT=",
             "MICRO_LITE_GEN_MUTABLE_OP_RESOLVER_TEST=")
# What the Makefile is asked; a source group's objects are compiled by its rule with its -O level.
MAKE_VARS = ("CXX", "CC", "AR", "CXXFLAGS", "CCFLAGS", "INCLUDES", "CORE_OPTIMIZATION_LEVEL",
             "KERNEL_OPTIMIZATION_LEVEL", "THIRD_PARTY_KERNEL_OPTIMIZATION_LEVEL", "MICROLITE_CC_SRCS",
             "THIRD_PARTY_CC_SRCS", "MICROLITE_CC_KERNEL_SRCS", "THIRD_PARTY_KERNEL_CC_SRCS")
GROUP_LEVEL = {"core": "CORE_OPTIMIZATION_LEVEL", "kernel": "KERNEL_OPTIMIZATION_LEVEL",
               "third_party_kernel": "THIRD_PARTY_KERNEL_OPTIMIZATION_LEVEL"}
# Core sources that only TFLM's own tests link (test models, mock graphs, recording allocators): compiling
# them would double the core's compile time for nothing a MicroInterpreter program pulls from the archive.
TEST_ONLY = frozenset(f"tensorflow/lite/micro/{p}" for p in (
    "test_helpers.cc", "test_helper_custom_ops.cc", "mock_micro_graph.cc", "fake_micro_context.cc",
    "recording_micro_allocator.cc", "arena_allocator/recording_single_arena_buffer_allocator.cc"))
# The reference kernels' directory: it also holds every kernel's <name>_common.cc, optimized or not.
KERNEL_DIR = "tensorflow/lite/micro/kernels"
# Kernel-side helpers every kernel uses (GetInput, micro tensor utilities); not tied to one op.
KERNEL_SUPPORT = (f"{KERNEL_DIR}/kernel_util.cc",)
# -MD writes dependency files: objects here are keyed by content and flags instead.
DROPPED_FLAGS = frozenset({"-MD"})
# Files of the Makefile's directory whose change changes flags or source lists.
BUILD_FILES = ("Makefile", "sources.inc", "third_party.inc", "helper_functions.inc",
               "targets/cortex_m_generic_makefile.inc", "ext_libs/cmsis_nn.inc")


def library(root, kernels: str, ops, progress=None) -> Path:
    """A static archive of TFLM for the Cortex-M4 with the kernels of ``ops`` (TFLite builtin names), built
    once per tree, kernel choice, op set, compiler and flags; a later call returns the cached archive."""
    root, ops = Path(root), sorted(set(ops))
    cfg = _make_config(root, kernels, progress)
    key = _digest(_tree_marker(root), kernels, ops, _compiler_version(cfg["CXX"]), cfg)
    lib_dir = _cache_root() / f"lib-{kernels}-{key}"
    archive = lib_dir / "libtflm.a"
    if archive.is_file():
        return archive
    lib_dir.mkdir(parents=True, exist_ok=True)
    log = lib_dir / "build.log"
    tflm = [("core", s) for s in _core_sources(cfg)] + [("kernel", s) for s in _kernel_sources(root, cfg, ops)]
    objs = _compile_group(root, cfg, tflm, log, progress, f"TFLM sources for {TARGET} ({kernels})")
    objs += _third_party_kernel_objects(root, cfg, objs, log, progress)
    _say(progress, f"archiving {len(objs)} objects into {archive}")
    (lib_dir / "sources.txt").write_text("".join(f"{o}\n" for o in objs))
    tmp = archive.with_name(f"libtflm.a.part-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    _tool([cfg["AR"], "rcs", str(tmp), *map(str, objs)], log, "TFLM archive")
    os.replace(tmp, archive)
    return archive


def compile_flags(root, kernels: str, lang: str = "c++") -> list[str]:
    """Flags for code that includes TFLM headers and links the library of ``kernels``: TFLM's own for this
    target (cpu, defines such as TF_LITE_STATIC_MEMORY and CMSIS_NN, code generation, the core's -O level)
    and its include directories, absolute. ``lang`` is "c++" or "c"."""
    root = Path(root)
    cfg = _make_config(root, kernels)
    flags = cfg["CXXFLAGS"] if lang == "c++" else cfg["CCFLAGS"]
    return [*flags, *cfg["CORE_OPTIMIZATION_LEVEL"], *_absolute_includes(root, cfg["INCLUDES"])]


def build_program(root, kernels: str, ops, sources, include_dirs, out_dir, defines=()) -> tuple[Path, dict]:
    """Compile ``sources`` (C++ or C) with :func:`compile_flags` and link them with the TFLM library of ``ops``,
    edgewave's startup code and mps2-an386 linker script (newlib-nano, rdimon semihosting). Returns the ELF
    and its sizes as :func:`edgewave.ctools.build_cortex_m` reports them, ``model`` being ``sources``' objects."""
    t = ctools.TARGETS[TARGET]
    ctools._require(run=False)
    root, out_dir = Path(root), Path(out_dir)
    (out_dir / "obj").mkdir(parents=True, exist_ok=True)
    log = out_dir / "build.log"
    lib = library(root, kernels, ops)
    cfg = _make_config(root, kernels)
    extra = ctools._flags(include_dirs, defines)
    objs = []
    for i, src in enumerate(map(Path, sources)):
        cpp = src.suffix in (".cc", ".cpp", ".cxx")
        obj = (out_dir / "obj" / f"{i:02d}_{src.stem}.o").resolve()
        cmd = [cfg["CXX"] if cpp else cfg["CC"], *compile_flags(root, kernels, "c++" if cpp else "c"), *extra,
               "-c", str(src.resolve()), "-o", str(obj)]
        _tool(cmd, log, f"{TARGET} TFLM program build")
        objs.append(obj)
    startup = (out_dir / "obj" / "startup.o").resolve()
    cm = ctools.FIRMWARE / "cortex-m"
    # Compiled as ctools compiles it for every Cortex-M program.
    _tool([ctools.ARM_CC, *ctools.CFLAGS, *t.cpu_flags, "-ffunction-sections", "-fdata-sections",
           "-c", str(cm / "startup.c"), "-o", str(startup)], log, f"{TARGET} startup build")
    elf, map_file = (out_dir / "tflm_program.elf").resolve(), (out_dir / "tflm_program.map").resolve()
    # ctools' link line, driven by g++: TFLM's C++ needs libstdc++'s support code (pure virtual calls, new).
    _tool([cfg["CXX"], *t.cpu_flags, "--specs=nano.specs", "--specs=rdimon.specs", "-nostartfiles",
           f"-L{cm}", "-T", str(cm / t.ldscript), "-Wl,--gc-sections", "-Wl,--fatal-warnings",
           f"-Wl,-Map={map_file}", *map(str, objs), str(startup), str(lib), "-lm", "-o", str(elf)],
          log, f"{TARGET} TFLM program link")
    return elf, ctools._sizes(elf, map_file, objs, out_dir)


# --- TFLM's Makefile ---------------------------------------------------------------------------------------

def _make_config(root: Path, kernels: str, progress=None) -> dict:
    """TFLM's Makefile variables (MAKE_VARS; flags and lists split into words) for this tree and kernel
    choice, asked once and cached as JSON."""
    if kernels not in KERNELS:
        raise UserError(f"unknown TFLM kernels {kernels!r}; choose one of {', '.join(KERNELS)}")
    ctools._require(run=False)
    tflm_tree.include_dirs(root, cmsis_nn=kernels == "cmsis_nn")  # a clear error for a tree without downloads
    path = _cache_root() / f"make-{kernels}-{_digest(_tree_marker(root), kernels, _toolchain_root())}.json"
    if path.is_file():
        return json.loads(path.read_text())
    _say(progress, f"asking TFLM's Makefile in {root} for its {kernels} flags and sources ...")
    cfg = _query_make(root, kernels)
    _check_cpu_flags(cfg)
    _write_atomically(path, json.dumps(cfg, indent=1))
    return cfg


def _make_command(root: Path, kernels: str, gendir: Path) -> list[str]:
    args = ["make", "-s", "-C", str(root), "-f", str(MAKEFILE), *MAKE_ARGS,
            f"TARGET_TOOLCHAIN_ROOT={_toolchain_root()}", f"BASE_GENDIR={gendir}"]
    return args + (["OPTIMIZED_KERNEL_DIR=cmsis_nn"] if kernels == "cmsis_nn" else [])


def _query_make(root: Path, kernels: str) -> dict:
    if shutil.which("make") is None:
        raise UserError("make not found: install make (TFLM's Makefile gives the flags and sources)")
    _require_python_modules("numpy", "PIL")
    with tempfile.TemporaryDirectory(prefix="ew_tflm_make_") as tmp:
        tmp = Path(tmp)
        # The Makefile runs `python3` while it parses (specialize_files.py, generate_cc_arrays.py): make it
        # this interpreter, which has numpy and pillow.
        # A script, not a symlink: a venv's python finds its packages only when run by its own path.
        (tmp / "bin").mkdir()
        (tmp / "bin" / "python3").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
        (tmp / "bin" / "python3").chmod(0o755)
        env = {**os.environ, "PATH": f"{tmp / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
        cmd = _make_command(root, kernels, tmp / "gen") + [f"print-{v}" for v in MAKE_VARS]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
        gendir = str(tmp / "gen")
    values = dict(re.findall(r"^(\w+)=(.*)$", proc.stdout, re.M))
    missing = [v for v in MAKE_VARS if v not in values]
    if proc.returncode != 0 or missing:
        raise UserError(f"TFLM's Makefile in {root} did not give its flags: "
                        f"{ctools._first_error(proc.stderr + proc.stdout)}")
    cfg = {}
    for var in MAKE_VARS:
        # The Makefile passes these words to a shell: split them the way it would.
        words = [w for w in shlex.split(values[var]) if w not in DROPPED_FLAGS]
        # The parse's generated-files dir was a temporary one; library sources include nothing from it.
        cfg[var] = [w for w in words if not (w.startswith("-I") and w[2:].startswith(gendir))]
    for tool in ("CXX", "CC", "AR"):
        cfg[tool] = cfg[tool][0]
    return cfg


def _check_cpu_flags(cfg: dict) -> None:
    """The library must run on ctools' Cortex-M4 board: TFLM's -m flags are the target's cpu flags."""
    want = set(ctools.TARGETS[TARGET].cpu_flags) | {"-mlittle-endian"}
    got = {f for f in cfg["CXXFLAGS"] if f.startswith("-m")}
    if got != want:
        raise UserError(f"TFLM's Makefile compiles cortex_m_generic with {' '.join(sorted(got))}, not edgewave's "
                        f"{TARGET} flags {' '.join(sorted(want))}: this TFLM version is not supported")


def _require_python_modules(*names: str) -> None:
    import importlib.util
    if missing := [n for n in names if importlib.util.find_spec(n) is None]:
        raise UserError(f"TFLM's Makefile needs {' and '.join(missing)} in this Python: pip install numpy pillow")


@functools.lru_cache(maxsize=None)
def _toolchain_root() -> str:
    """The directory of the installed arm-none-eabi tools, as TFLM's TARGET_TOOLCHAIN_ROOT (with a slash):
    without it TFLM would download its own compiler."""
    return str(Path(shutil.which(ctools.ARM_CC)).resolve().parent) + os.sep


def _absolute_includes(root: Path, includes: list[str]) -> list[str]:
    return [f"-I{(root / f[2:]).resolve()}" if f.startswith("-I") else f for f in includes]


# --- which sources ------------------------------------------------------------------------------------------

def _core_sources(cfg: dict) -> list[str]:
    return [s for s in cfg["MICROLITE_CC_SRCS"] + cfg["THIRD_PARTY_CC_SRCS"] if s not in TEST_ONLY]


def _kernel_sources(root: Path, cfg: dict, ops: list[str]) -> list[str]:
    """For each op, the kernel file of the Makefile's list that defines its ``Register_<OP>()`` (so the
    cmsis_nn one where the Makefile chose it) and that file's ``<name>_common.cc``; and KERNEL_SUPPORT."""
    listed = cfg["MICROLITE_CC_KERNEL_SRCS"]
    texts = {s: _read(root / s) for s in listed if s.endswith(".cc")} if ops else {}
    chosen = [s for s in KERNEL_SUPPORT if s in listed]
    for op in ops:
        registers = re.compile(rf"\bTFLMRegistration\s+Register_{re.escape(op)}\s*\(\s*\)\s*\{{")
        found = [s for s, text in texts.items() if registers.search(text)]
        if len(found) != 1:
            raise UserError(f"the TFLM tree {root} has {'no' if not found else 'more than one'} kernel "
                            f"registering {op} (Register_{op}) among its sources")
        common = f"{KERNEL_DIR}/{Path(found[0]).stem}_common.cc"
        chosen += [found[0]] + [common] * (common in listed)
    return list(dict.fromkeys(chosen))


def _third_party_kernel_objects(root: Path, cfg: dict, objs: list[Path], log: Path, progress) -> list[Path]:
    """The third-party kernel sources (CMSIS-NN; none for reference kernels) the objects call, transitively:
    the undefined symbols of what is compiled so far, looked up in an index of what each of those files
    defines, until nothing new is needed."""
    index = _definitions_index(root, cfg["THIRD_PARTY_KERNEL_CC_SRCS"])
    chosen: set[str] = set()
    looked_up: set[str] = set()
    undefined = _undefined_symbols(cfg, objs)
    out = []
    while new := sorted({index[s] for s in undefined if s in index} - chosen):
        chosen.update(new)
        looked_up |= undefined
        new_objs = _compile_group(root, cfg, [("third_party_kernel", s) for s in new], log, progress,
                                  "third-party kernel sources (CMSIS-NN)")
        out += new_objs
        undefined = _undefined_symbols(cfg, new_objs) - looked_up
    return out


def _definitions_index(root: Path, sources: list[str]) -> dict[str, str]:
    """symbol -> the C file that defines it. CMSIS-NN writes every external definition at column 0 with its
    type on the same line (``arm_cmsis_nn_status arm_convolve_s8(...``, ``const q15_t table[256] = {``): the
    name before the first parenthesis or bracket of such a line that is not static, a macro or a type."""
    index = {}
    skip = ("static", "typedef", "extern", "#", "}", "{", "struct", "enum", "union")
    for src in sources:
        text = re.sub(r"/\*.*?\*/|//[^\n]*", "", _read(root / src), flags=re.S)
        for line in text.splitlines():
            starts_a_name = line[:1].isalpha() or line[:1] == "_"
            if not starts_a_name or line.startswith(skip):
                continue
            if m := re.match(r"[^(\[=;]*?\b([A-Za-z_]\w*)\s*[(\[]", line):
                index.setdefault(m[1], src)
    return index


def _undefined_symbols(cfg: dict, objs: list[Path]) -> set[str]:
    if not objs:
        return set()
    nm = re.sub(r"ar$", "nm", cfg["AR"])
    out = subprocess.run([nm, "-u", *map(str, objs)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip().startswith("U ")}


# --- compiling ----------------------------------------------------------------------------------------------

def _compile_group(root: Path, cfg: dict, sources: list[tuple[str, str]], log: Path, progress, what: str) -> list[Path]:
    """Objects of (group, source) pairs, compiled JOBS at a time where the cache has none; in order."""
    jobs = [(src, _object_path(root, cfg, group, src), _compile_command(cfg, group, src)) for group, src in sources]
    todo = [j for j in jobs if not j[1].is_file()]
    cached = f", {len(jobs) - len(todo)} cached" if len(todo) < len(jobs) else ""
    _say(progress, f"compiling {len(todo)} {what}{cached} ...")
    with concurrent.futures.ThreadPoolExecutor(JOBS) as pool:
        futures = [pool.submit(_compile_one, root, src, obj, cmd, log) for src, obj, cmd in todo]
        try:
            for f in concurrent.futures.as_completed(futures):
                f.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return [obj for _, obj, _ in jobs]


def _compile_command(cfg: dict, group: str, src: str) -> list[str]:
    """The Makefile's rule for this group: $(CXX) $(CXXFLAGS) $(<GROUP>_OPTIMIZATION_LEVEL) $(INCLUDES) -c."""
    cc, flags = (cfg["CC"], cfg["CCFLAGS"]) if src.endswith((".c", ".S")) else (cfg["CXX"], cfg["CXXFLAGS"])
    return [cc, *flags, *cfg[GROUP_LEVEL[group]], *cfg["INCLUDES"], "-c", src]


def _object_path(root: Path, cfg: dict, group: str, src: str) -> Path:
    """Keyed by tree, compiler version and command (a directory) and by the source's path and content (the
    name): objects are shared by every op set. Names are unique, as archive members must be."""
    cmd = _compile_command(cfg, group, src)
    flags_key = _digest(_tree_marker(root), _compiler_version(cmd[0]), cmd)
    src_key = _digest(src, hashlib.sha256((root / src).read_bytes()).hexdigest())[:8]
    return _cache_root() / "obj" / flags_key / Path(src).parent / f"{Path(src).stem}.{src_key}.o"


def _compile_one(root: Path, src: str, obj: Path, cmd: list[str], log: Path) -> None:
    obj.parent.mkdir(parents=True, exist_ok=True)
    tmp = obj.with_name(f"{obj.name}.part-{os.getpid()}")
    _tool([*cmd, "-o", str(tmp)], log, f"compiling {src}", cwd=root)
    os.replace(tmp, obj)


def _tool(cmd: list[str], log: Path, what: str, cwd: Path | None = None) -> str:
    """ctools' tool runner (output appended to ``log``, which must be a ``build.log``; UserError with the
    first error line) with the log's path in the error: a library's log is in the cache, where nobody looks."""
    try:
        return ctools._tool(cmd, log.parent, what, cwd=cwd)
    except UserError as e:
        raise UserError(f"{e} (log: {log})") from None


# --- cache --------------------------------------------------------------------------------------------------

def _cache_root() -> Path:
    return tflm_tree._cache_dir().parent / "tflm-lib"


def _tree_marker(root: Path) -> list:
    """What identifies a tree's build: its path and the sizes and times of its build files."""
    make_dir = root / MAKEFILE.parent
    stats = [(f, s.st_size, s.st_mtime_ns) for f in BUILD_FILES if (s := _stat(make_dir / f))]
    return [str(root.resolve()), stats]


@functools.lru_cache(maxsize=None)
def _compiler_version(compiler: str) -> str:
    try:
        proc = subprocess.run([compiler, "--version"], capture_output=True, text=True)
    except OSError as e:
        raise UserError(f"{compiler} cannot be run: {e}") from None
    return (proc.stdout.splitlines() or [""])[0]


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.part-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _stat(path: Path):
    try:
        return path.stat()
    except OSError:
        return None


def _read(path: Path) -> str:
    return path.read_text(errors="replace")


def _say(progress, msg: str) -> None:
    if progress is not None:
        progress(msg)
