"""Build and run generated C models: on the host, and on Cortex-M and RISC-V cores emulated by QEMU.

A model directory provides ``edgewave_model.h`` (``ew_q_t``, ``EW_OUTPUTS``,
``ew_model_state``, ``ew_model_init``, ``ew_model_step_q``) and ``.c`` files.  The
mains in ``firmware/examples`` stream raw little-endian ``ew_q_t`` codes through it:
``host_main.c`` from files given on its command line, ``qemu_main.c`` from ``IN.bin``
to ``OUT.bin`` via semihosting, printing the exact instruction count of the steps
(SysTick on Cortex-M, ``minstret`` on RISC-V, under ``-icount shift=7``: one instruction = 128 ns of
virtual time).

Compilers run quietly: ``-Werror`` and ``--fatal-warnings`` make every warning an
error, the output of every tool goes to ``<out_dir>/build.log``, and a failure
raises :class:`UserError` with the first error line.
"""

from __future__ import annotations

import contextlib
import functools
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgewave.errors import UserError
from edgewave.paths import package_dir

__all__ = ["TARGETS", "Target", "build_host", "run_host", "build_cortex_m", "run_qemu", "have_cortex_m_tools",
           "have_tools"]

# Installed wheel: edgewave/firmware; source checkout: firmware/ next to edgewave/.
FIRMWARE = package_dir("firmware")

CFLAGS = ("-std=c99", "-O2", "-DNDEBUG", "-Wall", "-Wextra", "-Wpedantic", "-Werror")
INSTALL_HINT = "install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
ARM_CC, ARM_SIZE, QEMU = "arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm"


@dataclass(frozen=True)
class Toolchain:
    """A bare-metal GCC, its C library with semihosting, and the QEMU that runs its boards."""
    prefix: str                  # the tools are <prefix>-gcc, <prefix>-size
    specs: str                   # a specs file of the C library: where gcc finds it, the library is installed
    install: str                 # the hint of a missing tool
    qemu: str
    board_dir: str               # in firmware/: linker scripts (and startup code)
    startup: tuple[str, ...]     # our startup sources in board_dir (none: the C library's crt0)
    link: tuple[str, ...]        # C library and startup flags of the link
    qemu_args: tuple[str, ...] = ()
    libc_cflags: tuple[str, ...] = ()  # where the compiler finds the C library's headers

    @property
    def cc(self) -> str:
        return f"{self.prefix}-gcc"

    @property
    def size(self) -> str:
        return f"{self.prefix}-size"


ARM = Toolchain("arm-none-eabi", "nano.specs", INSTALL_HINT, QEMU, "cortex-m", ("startup.c",),
                ("--specs=nano.specs", "--specs=rdimon.specs", "-nostartfiles"))
# picolibc's own crt0 (.data copy, .bss zeroing, exit through semihosting, traps reported) and picolibc.ld,
# placed by firmware/riscv's board script: less hand-written code than the Cortex-M startup.
RISCV = Toolchain("riscv64-unknown-elf", "picolibc.specs",
                  "install gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc",
                  "qemu-system-riscv32", "riscv", (), ("--specs=picolibc.specs", "--oslib=semihost", "--crt0=semihost"),
                  ("-cpu", "rv32", "-bios", "none"),  # -bios none: QEMU jumps to the ELF, no OpenSBI
                  ("--specs=picolibc.specs",))


@dataclass(frozen=True)
class Target:
    name: str
    cpu_flags: tuple[str, ...]
    machine: str | None      # QEMU board that runs it; None: build only
    ldscript: str | None     # in the toolchain's board_dir
    tick: tuple[int, int] = (5, 16)  # instructions per counter tick (num, den); SysTick: 1e9 / (f_cpu · 128 ns)
    toolchain: Toolchain = ARM


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("host", (), None, None),
    # microbit is an nRF51 Cortex-M0 at 16 MHz: same ARMv6-M instruction set as the M0+.
    Target("cortex-m0plus", ("-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"),
           "microbit", "microbit.ld", (125, 256)),
    Target("cortex-m4", ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
           "mps2-an386", "mps2-an386.ld"),
    Target("cortex-m7", ("-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"),
           "mps2-an500", "mps2-an500.ld"),
    # AN505 runs secure at 20 MHz: code 0x10000000, RAM 0x38000000.
    Target("cortex-m33", ("-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"),
           "mps2-an505", "mps2-an505.ld", (25, 64)),
    # rv32imac, the ISA of ESP32-C3/C6, CH32V3 and GD32VF103 (the picolibc multilib of that name), on QEMU's virt
    # board: its RAM holds any model, where sifive_e has 16 KB. Under -icount QEMU's minstret counts
    # nanoseconds of virtual time, 128 per instruction at shift=7.
    Target("riscv32", ("-march=rv32imac", "-mabi=ilp32"), "virt", "qemu-virt.ld", (1, 128), RISCV),
)}


def _missing(run: bool, tc: Toolchain = ARM) -> list[str]:
    missing = [t for t in (tc.cc, tc.size) + ((tc.qemu,) if run else ()) if not shutil.which(t)]
    if shutil.which(tc.cc) and not _have_libc(tc.cc, tc.specs):
        missing.append(f"its C library ({tc.specs})")
    return missing


@functools.lru_cache(maxsize=None)
def _have_libc(cc: str, specs: str) -> bool:
    out = subprocess.run([cc, f"-print-file-name={specs}"], capture_output=True, text=True).stdout.strip()
    return Path(out).is_absolute() and Path(out).is_file()


def have_cortex_m_tools() -> bool:
    """True when arm-none-eabi-gcc with newlib and qemu-system-arm are installed."""
    return not _missing(run=True)


def have_tools(target: str) -> bool:
    """True when the compiler, C library and QEMU of a cross target are installed."""
    return not _missing(run=True, tc=_target(target).toolchain)


def _require(run: bool, tc: Toolchain = ARM) -> None:
    if missing := _missing(run, tc):
        raise UserError(f"{', '.join(missing)} not found: {tc.install}")


def _target(name: str | Target) -> Target:
    if isinstance(name, Target):  # a board of the caller's own (tests: a Cortex-M3)
        return name
    if name not in TARGETS or name == "host":
        raise UserError(f"unknown Cortex-M target {name!r}; choose one of {', '.join(list(TARGETS)[1:])}")
    return TARGETS[name]


def _first_error(text: str) -> str:
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    pat = re.compile(r"\berror\b|undefined reference|multiple definition|cannot find|no such file", re.I)
    hits = [l for l in lines if pat.search(l) and not l.startswith(("collect2", "cc1"))]
    return (hits or lines or ["(no output)"])[0]


def _tool(cmd: list[str], out_dir: Path, what: str, cwd: Path | None = None) -> str:
    """Run a build tool, append its output to build.log, raise UserError on failure."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    except OSError as e:
        raise UserError(f"{what} failed: {e}") from None
    with open(out_dir / "build.log", "a") as log:
        log.write("$ " + " ".join(cmd) + "\n" + proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise UserError(f"{what} failed: {_first_error(proc.stderr + proc.stdout)}")
    return proc.stdout


def _flags(include_dirs, defines) -> list[str]:
    return [f"-I{Path(d).resolve()}" for d in include_dirs] + [f"-D{d}" for d in defines]


def build_host(sources, include_dirs, out_dir, defines=(), sanitize=False) -> Path:
    """Compile the model sources with ``firmware/examples/host_main.c`` into ``out_dir/ew_host``."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise UserError("no C compiler found: install gcc")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / "ew_host"
    extra = ["-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"] if sanitize else []
    srcs = [str(Path(s).resolve()) for s in sources] + [str(FIRMWARE / "examples" / "host_main.c")]
    _tool([cc, *CFLAGS, *extra, *_flags(include_dirs, defines), *srcs, "-o", str(exe), "-lm"], out_dir, "host C build")
    return exe


def _codes(codes) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 1 or codes.dtype not in (np.int8, np.int16):
        raise UserError(f"input codes must be a 1-D int8 or int16 array, got {codes.dtype} with shape {codes.shape}")
    return codes


def _read_outputs(path: Path, codes: np.ndarray, generated: int = 0, out_dtype=None) -> np.ndarray:
    out_dtype = np.dtype(out_dtype or codes.dtype)
    out = np.fromfile(path, dtype=out_dtype.newbyteorder("<")).astype(out_dtype)
    steps = len(codes) + generated
    if steps == 0:
        return out.reshape(0, 0)
    if out.size % steps:
        raise UserError(f"{path.name} holds {out.size} codes, not a multiple of the {steps} steps")
    return out.reshape(steps, -1)


@dataclass(frozen=True)
class Feedback:
    """Generation by the example runners after their input (firmware/examples/ew_feedback.h): `steps` more steps,
    each fed `table[y - min code]` (one output), or, with `weights`, the integer sampler's level `table[k]`.
    Tables hold input codes, indexed by output codes (of another type in an int8 model's 16-bit input)."""
    steps: int
    table: np.ndarray
    state: int = 0
    weights: np.ndarray | None = None

    def write(self, path: Path, in_dtype, out_dtype) -> int:
        info = np.iinfo(out_dtype)
        kind, levels = (0, 0) if self.weights is None else (1, len(self.table))
        if len(self.weights if kind else self.table) != info.max - info.min + 1:
            raise UserError(f"feedback needs one entry per {np.dtype(out_dtype).name} output code")
        codes = np.asarray(self.table, np.dtype(in_dtype).newbyteorder("<")).tobytes()
        parts = [np.array([self.steps, kind, self.state, levels], "<u4").tobytes(), codes]
        if kind:
            parts += [b"\0" * (-len(codes) % 4), np.asarray(self.weights, "<u4").tobytes()]
        path.write_bytes(b"".join(parts))
        return self.steps


def _host(binary, args: list[str], cwd: Path, timeout: float, timing: dict | None) -> None:
    """Runs a host runner in `cwd`; a `timing` dict receives what it reported on stdout: ``steps`` and
    ``step_seconds``, the time spent in the measured calls alone (its own monotonic clock, file I/O and
    process start excluded)."""
    try:
        proc = subprocess.run([str(Path(binary).resolve()), *args], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UserError(f"{Path(binary).name} did not finish within {timeout:g} s") from None
    if proc.returncode != 0:
        raise UserError(f"{Path(binary).name} failed (exit {proc.returncode}): {_first_error(proc.stderr)}")
    if timing is not None:
        m = re.search(r"^steps (\d+) step_ns (\d+)$", proc.stdout, re.M)
        if m is None:
            raise UserError(f"{Path(binary).name} did not report its step time: rebuild it with this edgewave")
        timing.update(steps=int(m[1]), step_seconds=int(m[2]) * 1e-9)


@contextlib.contextmanager
def _workdir(prefix: str, codes: np.ndarray | None = None, feedback=None, out_dtype=None,
             files: dict[str, bytes] | None = None):
    """A temporary directory for one run of a runner (host or QEMU, which read and write it by name): ``IN.bin``
    holding ``codes`` little-endian, ``FB.bin`` with a ``feedback``, and ``files`` {name: bytes}. Yields the
    directory and the feedback steps (0 without)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        tmp = Path(tmp)
        if codes is not None:
            codes.astype(codes.dtype.newbyteorder("<")).tofile(tmp / "IN.bin")
        steps = feedback.write(tmp / "FB.bin", codes.dtype, out_dtype) if feedback else 0
        for name, data in (files or {}).items():
            (tmp / name).write_bytes(data)
        yield tmp, steps


def run_host(binary, codes, timeout: float = 300, feedback=None, out_dtype=None, timing: dict | None = None) -> np.ndarray:
    """Stream ``codes`` through a host binary; returns outputs shaped (samples, EW_OUTPUTS) of ``out_dtype``
    (the codes' dtype unless given). With ``feedback`` (a :class:`Feedback`), generate that many more steps
    after the input. A ``timing`` dict receives the time of the step function alone (see `_host`)."""
    codes = _codes(codes)
    out_dtype = np.dtype(out_dtype or codes.dtype)
    with _workdir("ew_host_", codes, feedback, out_dtype) as (tmp, steps):
        _host(binary, ["IN.bin", "OUT.bin", *(["FB.bin"] if steps else [])], tmp, timeout, timing)
        return _read_outputs(tmp / "OUT.bin", codes, steps, out_dtype)


def _section_kind(name: str) -> str | None:
    # RISC-V adds .init (picolibc's crt0) and the small-data sections that gp addresses.
    for kind, prefixes in (("text", (".text", ".ARM.exidx", ".vectors", ".init")), ("rodata", (".rodata", ".srodata")),
                           ("data", (".data", ".sdata")), ("bss", (".bss", ".sbss", "COMMON"))):
        if name.startswith(prefixes):
            return kind
    return None


def _sizes(elf: Path, map_file: Path, model_objs: list[Path], out_dir: Path, tc: Toolchain = ARM) -> dict:
    """text/rodata/data/bss bytes of the whole image, and under "model" of the model's own objects (object
    files, or archives: all their members that were linked)."""
    sizes = dict.fromkeys(("text", "rodata", "data", "bss"), 0)
    for line in _tool([tc.size, "-A", str(elf)], out_dir, tc.size).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and (kind := _section_kind(parts[0])):
            sizes[kind] += int(parts[1])
    model = dict.fromkeys(sizes, 0)
    memory_map = map_file.read_text().split("Linker script and memory map", 1)[-1]
    names = {str(o) for o in model_objs}
    # input-section lines: " .text.fn  0xADDR  0xSIZE  /path/obj.o" (name may wrap onto its own line)
    for name, addr, size, obj in re.findall(r"^ (\.\S+|COMMON)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+) (\S+\.o)\)?$",
                                            memory_map, re.M):
        if (obj in names or obj.split("(")[0] in names) and (kind := _section_kind(name)):
            model[kind] += int(size, 16)
    sizes["model"] = model
    return sizes


def build_cortex_m(target, sources, include_dirs, out_dir, defines=(), main=None) -> tuple[Path, dict]:
    """Link the model sources with the startup code and ``qemu_main.c`` for a cross target (Cortex-M or RISC-V):
    a name in :data:`TARGETS` or a :class:`Target`. ``main``: another C file with ``main`` instead of
    ``qemu_main.c`` (the C runtime's own tests); it runs the same way, with the C library's semihosting.

    Returns the ELF and its sizes in bytes: ``text``, ``rodata``, ``data``, ``bss`` of the
    whole image (the C library's stdio included) and ``model`` with the same keys for the model's
    own objects after ``--gc-sections``.
    """
    t = _target(target)
    tc = t.toolchain
    _require(run=False, tc=tc)
    out_dir = Path(out_dir)
    (out_dir / "obj").mkdir(parents=True, exist_ok=True)
    board = FIRMWARE / tc.board_dir
    cflags = [*CFLAGS, *t.cpu_flags, *tc.libc_cflags, "-ffunction-sections", "-fdata-sections",
              f"-DEW_TICK_NUM={t.tick[0]}u", f"-DEW_TICK_DEN={t.tick[1]}u", *_flags(include_dirs, defines)]
    objs = []
    startup = [board / s for s in tc.startup]
    for i, src in enumerate([*sources, *startup, main or FIRMWARE / "examples" / "qemu_main.c"]):
        obj = (out_dir / "obj" / f"{i:02d}_{Path(src).stem}.o").resolve()
        _tool([tc.cc, *cflags, "-c", str(Path(src).resolve()), "-o", str(obj)], out_dir, f"{t.name} C build")
        objs.append(obj)
    elf, map_file = (out_dir / f"edgewave_{t.name}.elf").resolve(), (out_dir / f"edgewave_{t.name}.map").resolve()
    _tool([tc.cc, *t.cpu_flags, *tc.link,
           f"-L{board}", "-T", str(board / t.ldscript), "-Wl,--gc-sections", "-Wl,--fatal-warnings",
           f"-Wl,-Map={map_file}", *map(str, objs), "-lm", "-o", str(elf)], out_dir, f"{t.name} link")
    return elf, _sizes(elf, map_file, objs[:len(sources)], out_dir, tc)


_RESULT = re.compile(r"EW_RESULT samples=(\d+) instructions=(\d+) max_step=(\d+)(?: played=(\d+))?")
_PROFILE = re.compile(r"EW_PROFILE call=(\d+) instructions=(\d+)")


def qemu_run(t: Target, elf, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Runs the ELF on its board in `cwd` (where its semihosted files are), counting instructions exactly."""
    cmd = [t.toolchain.qemu, "-M", t.machine, *t.toolchain.qemu_args, "-nographic", "-monitor", "none",
           "-serial", "none", "-semihosting-config", "enable=on,target=native",
           "-icount", "shift=7,align=off,sleep=off", "-kernel", str(Path(elf).resolve())]
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UserError(f"QEMU {t.machine} did not finish within {timeout:g} s") from None


def qemu_result(t: Target, elf, cwd: Path, timeout: float, result: re.Pattern) -> re.Match:
    """:func:`qemu_run`, and the match of `result` in what the program printed; no match is an error."""
    proc = qemu_run(t, elf, cwd, timeout)
    # picolibc prints through the semihosting console, which QEMU (no chardev given) writes to its stderr.
    match = result.search(proc.stdout) or result.search(proc.stderr)
    if proc.returncode != 0 or not match:
        raise UserError(f"QEMU {t.machine} failed (exit {proc.returncode}): {_first_error(proc.stderr + proc.stdout)}")
    return match


def _runnable(target: str) -> Target:
    """The target, when QEMU has a board for it and its tools are installed (else UserError)."""
    t = _target(target)
    if t.machine is None:
        raise UserError(f"{t.name} is build-only: QEMU has no board for it")
    _require(run=True, tc=t.toolchain)
    return t


def _qemu(t: Target, elf, cwd: Path, timeout: float) -> dict:
    """The EW_RESULT counts of a run of qemu_main.c."""
    match = qemu_result(t, elf, cwd, timeout, _RESULT)
    stats = {k: int(v) for k, v in zip(("samples", "instructions", "max_step", "played"), match.groups())
             if v is not None}
    calls = _PROFILE.findall(match.string)
    if calls:  # an EW_PROFILE build: each call's instructions over all steps, in the step's order
        stats["profile"] = [int(n) for _, n in sorted(calls, key=lambda c: int(c[0]))]
    return stats


def run_qemu(target, elf, codes, timeout: float = 300, feedback=None, out_dtype=None) -> tuple[np.ndarray, dict]:
    """Stream ``codes`` through an ELF from :func:`build_cortex_m` on its QEMU board.

    Returns the outputs shaped (samples, EW_OUTPUTS) of ``out_dtype`` (the codes' unless given)
    and ``{"instructions", "samples", "max_step"}``: the exact instructions of all
    ``ew_model_step_q`` calls and of the longest one (QEMU counts instructions, not cycles).
    An ELF built with ``defines=("EW_PROFILE",)`` adds ``"profile"``: the instructions of each of
    the step's calls over all steps, in plan order, then the output copy and ring heads.
    """
    t = _runnable(target)
    codes = _codes(codes)
    out_dtype = np.dtype(out_dtype or codes.dtype)
    with _workdir("ew_qemu_", codes, feedback, out_dtype) as (tmp, steps):
        stats = _qemu(t, elf, tmp, timeout)
        if stats["samples"] != len(codes) + steps:
            raise UserError(f"QEMU {t.machine} stepped {stats['samples']} of {len(codes) + steps} samples")
        return _read_outputs(tmp / "OUT.bin", codes, steps, out_dtype), stats


def plc_script(codes: np.ndarray, gaps, fade: int) -> bytes:
    """The concealment script of firmware/examples/ew_plc.h for received input codes and the
    (start, gap end, fade end) of every gap (edgewave.plc.model.plan)."""
    codes = _codes(codes)
    le = codes.dtype.newbyteorder("<")
    parts, t = [], 0

    def record(kind, a, b):
        parts.append(np.array([kind, b - a, fade], "<u4").tobytes())
        if kind != 1:
            data = codes[a:b].astype(le).tobytes()
            parts.append(data + b"\0" * (-len(data) % 4))

    for a, b, e in gaps:
        if a > t:
            record(0, t, a)
        record(1, a, b)
        if e > b:
            record(2, b, e)
        t = e
    if t < len(codes):
        record(0, t, len(codes))
    return b"".join(parts)


def conceal_host(binary, script: bytes, samples: int, in_dtype, timing: dict, timeout: float = 300) -> np.ndarray:
    """The played input codes of a concealment script on a host runner; `timing` receives the
    concealed samples (`steps`) and the time spent concealing them (`step_seconds`)."""
    with _workdir("ew_host_", files={"PLC.bin": script}) as (tmp, _):
        _host(binary, ["--conceal", "PLC.bin", "OUT.bin"], tmp, timeout, timing)
        return _per_sample(tmp / "OUT.bin", samples, in_dtype, "played")


def conceal_qemu(target, elf, script: bytes, samples: int, in_dtype, timeout: float = 3600) -> tuple[np.ndarray, dict]:
    """The played input codes of a concealment script on a QEMU board, and the exact instructions
    of the concealed samples alone (`samples` in the stats is how many were concealed)."""
    t = _runnable(target)
    with _workdir("ew_qemu_", files={"PLC.bin": script}) as (tmp, _):
        stats = _qemu(t, elf, tmp, timeout)
        return _per_sample(tmp / "OUT.bin", samples, in_dtype, "played"), stats


def _per_sample(path: Path, samples: int, dtype, did: str, stored=None) -> np.ndarray:
    """What a runner wrote, one value a sample: little-endian ``stored`` values (``dtype`` unless given) as
    ``dtype``; another count than ``samples`` is an error (the runner ``did`` so many)."""
    dtype = np.dtype(dtype)
    out = np.fromfile(path, dtype=np.dtype(stored or dtype).newbyteorder("<")).astype(dtype)
    if out.size != samples:
        raise UserError(f"the runner {did} {out.size} of {samples} samples")
    return out


def score_host(binary, codes, window: int, timing: dict, timeout: float = 300) -> np.ndarray:
    """The anomaly window sums (uint64 per sample) of a host runner; `timing` receives the time
    spent in the score step (`step_seconds`)."""
    codes = _codes(codes)
    with _workdir("ew_host_", codes) as (tmp, _):
        _host(binary, ["--score", str(int(window)), "IN.bin", "OUT.bin"], tmp, timeout, timing)
        return _per_sample(tmp / "OUT.bin", len(codes), np.int64, "scored", "u8")


def score_qemu(target, elf, codes, window: int, timeout: float = 3600) -> tuple[np.ndarray, dict]:
    """The anomaly window sums on a QEMU board, and the exact instructions of the score steps."""
    t = _runnable(target)
    codes = _codes(codes)
    with _workdir("ew_qemu_", codes, files={"SCORE.bin": np.array([window], "<u4").tobytes()}) as (tmp, _):
        stats = _qemu(t, elf, tmp, timeout)
        return _per_sample(tmp / "OUT.bin", len(codes), np.int64, "scored", "u8"), stats
