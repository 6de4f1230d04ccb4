"""What `edgewave emit` ships is what a user builds: its CMakeLists.txt in an example app on the host and, with
each toolchain file it ships, on every Cortex-M and RISC-V core (QEMU), the app's output equal to the numpy engine; and
NAME_tflm.h/.cc against TensorFlow Lite Micro's headers with TFLM's defines."""

import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edgewave import ctools, tflm_tree
from edgewave.convert import pipeline
from edgewave.emit import pipeline as emit_pipeline
from edgewave.emit import tflm
from edgewave.engine import Engine
from edgewave.errors import UserError
from edgewave.paths import package_dir

IN_CI = os.environ.get("CI") == "true"
PREFIX = "tiny"
SAMPLES = 400
CORES = [name for name, t in ctools.TARGETS.items() if t.cpu_flags]
# M4 is the core the README measures: both precisions there, every other shipped toolchain file once.
CORE_CASES = [("cortex-m4", "int8"), ("cortex-m4", "int16x8")] + [(c, "int16x8") for c in CORES if c != "cortex-m4"]
M4 = ctools.TARGETS["cortex-m4"]

needs_cmake = pytest.mark.skipif(shutil.which("cmake") is None and not IN_CI, reason="cmake not installed")
needs_arm = pytest.mark.skipif(not ctools.have_cortex_m_tools() and not IN_CI,
                               reason="arm-none-eabi-gcc / newlib / qemu-system-arm not installed")

# The example app as a user writes it, with the emitted directory outside the project. It links no libm
# itself: the library has to bring what it needs.
APP_CMAKE = """\
cmake_minimum_required(VERSION 3.13)
project(example C)
add_subdirectory(${MODEL_DIR} model)
add_executable(example main.c)
target_link_libraries(example PRIVATE tiny)
if(CMAKE_CROSSCOMPILING)
  # The board's part, as ctools links it: edgewave's QEMU startup code (none on RISC-V: picolibc's crt0) and
  # linker script, the C library with semihosting (newlib-nano, picolibc).
  target_sources(example PRIVATE ${BOARD_SOURCES})
  target_link_options(example PRIVATE ${BOARD_LINK} -L${BOARD_DIR} -T${BOARD_DIR}/${BOARD_LDSCRIPT} -Wl,--fatal-warnings)
endif()
"""

# Two streams side by side, one per API, so state shared between them would show. Floats go out as their
# bits: newlib-nano's printf has no %f.
APP_MAIN = """\
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "tiny.h"
#include "input.h"

int main(void)
{
    static tiny_state sq, sf;
    tiny_q_t y[TINY_OUTPUTS];
    int i, k, nonfinite = 0;
    tiny_init(&sq);
    tiny_init(&sf);
    for (i = 0; i < N_SAMPLES; i++) {
        float v = tiny_step(&sf, xs[i]);
        uint32_t bits;
        tiny_step_q(&sq, codes[i], y);
        memcpy(&bits, &v, sizeof bits);
        nonfinite += !isfinite(v);
        printf("%08lx", (unsigned long)bits);
        for (k = 0; k < TINY_OUTPUTS; k++) printf(" %d", (int)y[k]);
        printf("\\n");
    }
    printf("DONE %d %d\\n", N_SAMPLES, nonfinite);
    return 0;
}
"""


@dataclass
class Emitted:
    c_dir: Path
    prog: object
    stream: bytes
    norm: dict
    report: dict


_EMITTED: dict[str, Emitted] = {}


@pytest.fixture(scope="module")
def emitted(convert_tiny, tmp_path_factory):
    """precision -> Emitted, the tiny model emitted once per module."""

    def get(precision: str) -> Emitted:
        if precision not in _EMITTED:
            out = convert_tiny(precision)
            c_dir = tmp_path_factory.mktemp(f"sdk-{precision}") / "c"
            report = emit_pipeline.write_c(str(out), str(c_dir), PREFIX, measure=False)
            manifest, prog, stream = pipeline.load(out)
            _EMITTED[precision] = Emitted(c_dir, prog, stream, manifest["normalization"], report)
        return _EMITTED[precision]

    return get


def write_app(app: Path, e: Emitted) -> np.ndarray:
    """The example project and its input: a chirp's codes and, for the float API, the signal values at the
    codes' centres, which its own rounding maps back to the same codes. Returns the codes."""
    app.mkdir(parents=True, exist_ok=True)
    codes = emit_pipeline.measure_input(e.prog, SAMPLES)
    q = e.prog.tensors[e.prog.input].q
    xs = ((codes.astype(np.float64) - q.zero_point) * q.scale * e.norm["scale"] + e.norm["offset"]).astype(np.float32)
    (app / "CMakeLists.txt").write_text(APP_CMAKE)
    (app / "main.c").write_text(APP_MAIN)
    (app / "input.h").write_text(
        f"#define N_SAMPLES {SAMPLES}\n"
        f"static const tiny_in_t codes[N_SAMPLES] = {{{', '.join(str(int(c)) for c in codes)}}};\n"
        f"static const float xs[N_SAMPLES] = {{{', '.join(f'{float(x):.9g}f' for x in xs)}}};\n")
    return codes


def build(app: Path, build_dir: Path, c_dir: Path, *defines: str) -> Path:
    """Configure and build as a user would, with every compiler warning an error."""
    for cmd in (["cmake", "-S", str(app), "-B", str(build_dir), f"-DMODEL_DIR={c_dir}", "-DCMAKE_BUILD_TYPE=Release",
                 "-DCMAKE_COMPILE_WARNING_AS_ERROR=ON", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON", *defines],
                ["cmake", "--build", str(build_dir), "-j", "2"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"$ {' '.join(cmd)}\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    return build_dir / "example"


def check_output(text: str, codes: np.ndarray, e: Emitted) -> None:
    lines = text.strip().splitlines()
    assert lines and lines[-1] == f"DONE {SAMPLES} 0", f"the app did not finish with finite outputs: {lines[-1:]}"
    rows = [line.split() for line in lines[:-1]]
    assert len(rows) == SAMPLES
    want = Engine(e.prog).run_sequence(codes)
    np.testing.assert_array_equal(np.array([[int(v) for v in r[1:]] for r in rows]), want,
                                  err_msg=f"{PREFIX}_step_q != numpy engine")
    assert e.prog.head == "regression"  # TINY_SPEC: NAME_step returns the one output in signal units
    out_q = e.prog.tensors[e.prog.output].q
    want_f = (want[:, 0].astype(np.float64) - out_q.zero_point) * out_q.scale * e.norm["scale"] + e.norm["offset"]
    got_f = np.array([int(r[0], 16) for r in rows], dtype=np.uint32).view(np.float32)
    np.testing.assert_allclose(got_f, want_f, rtol=1e-5, atol=1e-5 * abs(e.norm["scale"]),
                               err_msg=f"{PREFIX}_step (float) != the engine's prediction in signal units")


def test_a_toolchain_file_for_every_core(emitted):
    e = emitted("int16x8")
    shipped = sorted(p.name for p in (e.c_dir / "cmake").iterdir())
    assert shipped == sorted(emit_pipeline.toolchain_file(c)["file"] for c in CORES)
    assert "riscv64-unknown-elf-riscv32.cmake" in shipped
    assert {c for c, _ in CORE_CASES} == set(CORES), "a shipped toolchain file no test builds with"
    assert f"cmake/arm-none-eabi-cortex-m4.cmake" in e.report["files"]


@needs_arm
def test_target_picks_the_toolchain_file_build_line_and_measured_core(convert_tiny, tmp_path):
    """`emit --target cortex-m7` ships only the M7's toolchain file and build line, and measures flash on the M7;
    the model's C is the same as for `portable`."""
    out = convert_tiny("int16x8")
    portable = emit_pipeline.write_c(str(out), str(tmp_path / "portable"), PREFIX, measure=False)
    m7 = emit_pipeline.write_c(str(out), str(tmp_path / "m7"), PREFIX, "cortex-m7", measure=True)
    assert [f for f in m7["files"] if f.startswith("cmake/")] == ["cmake/arm-none-eabi-cortex-m7.cmake"]
    assert set(portable["files"]) - set(m7["files"]) == {f"cmake/{emit_pipeline.toolchain_file(c)['file']}" for c in CORES} - \
        {"cmake/arm-none-eabi-cortex-m7.cmake"}
    readme = (tmp_path / "m7" / "README.md").read_text()
    assert " ".join(ctools.TARGETS["cortex-m7"].cpu_flags) in readme and "cortex-m4" not in readme
    assert (tmp_path / "m7" / f"{PREFIX}.c").read_bytes() == (tmp_path / "portable" / f"{PREFIX}.c").read_bytes()
    assert m7["flash_core"] == "cortex-m7" and m7["flash_bytes"] == m7["m7_text_bytes"] + m7["m7_rodata_bytes"]
    assert m7["m7_instructions_per_sample"] > 0


@needs_cmake
@pytest.mark.parametrize("precision", ["int8", "int16x8"])
def test_cmake_project_builds_on_the_host_and_matches_the_engine(emitted, precision, tmp_path):
    e = emitted(precision)
    codes = write_app(tmp_path / "app", e)
    exe = build(tmp_path / "app", tmp_path / "build", e.c_dir)
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    check_output(proc.stdout, codes, e)
    # The library's interface is its header directory; its C standard, warnings and runtime headers stay inside.
    commands = {Path(c["file"]).name: c["command"]
                for c in json.loads((tmp_path / "build" / "compile_commands.json").read_text())}
    lib, app = commands[f"{PREFIX}.c"], commands["main.c"]
    assert "-std=c99" in lib and "-Wall" in lib and "-Wpedantic" in lib
    assert f"-I{e.c_dir} " in app + " "
    assert "edgewave_rt" not in app and "-Wpedantic" not in app and "-std=c99" not in app


@needs_cmake
@pytest.mark.parametrize("core,prec", CORE_CASES)
def test_cmake_project_builds_with_the_shipped_toolchain_file_and_runs_on_qemu(emitted, core, prec, tmp_path):
    e = emitted(prec)
    t = ctools.TARGETS[core]
    tc = t.toolchain
    if IN_CI or ctools.have_tools(core):
        assert ctools.have_tools(core), f"CI=true but the {core} tools are missing: {tc.install}"
    else:
        pytest.skip(f"{core} tools missing ({tc.install})")
    board = package_dir("firmware") / tc.board_dir
    codes = write_app(tmp_path / "app", e)
    elf = build(tmp_path / "app", tmp_path / "build", e.c_dir,
                f"-DCMAKE_TOOLCHAIN_FILE={e.c_dir / 'cmake' / emit_pipeline.toolchain_file(core)['file']}",
                f"-DBOARD_DIR={board}", f"-DBOARD_LDSCRIPT={t.ldscript}",
                f"-DBOARD_SOURCES={';'.join(str(board / s) for s in tc.startup)}", f"-DBOARD_LINK={';'.join(f for f in tc.link if f not in tc.libc_cflags)}")  # the toolchain file has those
    head = elf.read_bytes()[:20]
    machine = {ctools.ARM: 40, ctools.RISCV: 243}[tc]  # e_machine: EM_ARM, EM_RISCV
    assert head[:4] == b"\x7fELF" and head[18] == machine, f"not an ELF for {core}"
    # Every object of the app, not only the library's, got the core's flags from the toolchain file.
    commands = json.loads((tmp_path / "build" / "compile_commands.json").read_text())
    assert all(all(f in c["command"] for f in t.cpu_flags) for c in commands)
    proc = ctools.qemu_run(t, elf, tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stdout[-500:] + proc.stderr[-500:]
    check_output(proc.stdout or proc.stderr, codes, e)  # picolibc's stdout: QEMU's semihosting console, stderr


# --- TensorFlow Lite Micro ---------------------------------------------------------------------------------

# The generated translation unit comes first, so it has to stand on its own; after it, what a TFLM user writes
# with the header: the one-call loop. Compiled here on the host and for the M4; tests/test_tflm_runtime.py links
# and runs it.
TFLM_CHECK = """\
#include "tiny_tflm.cc"

static_assert(TINY_TENSOR_ARENA_SIZE % 16 == 0 && TINY_TENSOR_ARENA_SIZE >= {arena}, "arena size");
static_assert(TINY_TFLM_STATE_BYTES == {state}, "ring state size");
static_assert(sizeof(tiny_OpResolver) == sizeof(tflite::MicroMutableOpResolver<{n_ops}>), "one slot per op");

alignas(16) static uint8_t arena[TINY_TENSOR_ARENA_SIZE];
static tiny_tflm model;

int tiny_tflm_check(const tiny_tflm_in_t *x, int n, tiny_tflm_out_t *y)
{{
    if (tiny_tflm_init(&model, arena, sizeof arena) != kTfLiteOk) return 1;
    for (int i = 0; i < n; i++)
        if (tiny_tflm_step(&model, x[i], &y[i * TINY_TFLM_OUTPUTS]) != kTfLiteOk) return 2;
    return 0;
}}
"""

# Compiler, flags and include dirs as TFLM's Makefile builds: cortex_m_generic with CMSIS-NN
# (../shared/tflm-m4/reference/tflm_run.sh) and the host's reference kernels.
CXX_COMMON = ("-std=c++17", "-O2", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics", "-ffunction-sections",
              "-fdata-sections", "-Wall", "-Wextra", "-Wpedantic", "-Werror")
TFLM_BUILDS = {
    "cortex-m4": ("arm-none-eabi-g++", "arm-none-eabi-objcopy", "arm-none-eabi-objdump",
                  (*M4.cpu_flags, "-funsigned-char"),
                  ("TF_LITE_MCU_DEBUG_LOG", "CPU_M4=1", "ARMCM4", "CMSIS_NN"), dict(cmsis_nn=True, arm_cpu="ARMCM4")),
    "host": ("g++", "objcopy", "objdump", (), ("TF_LITE_USE_CTIME",), {}),
}


def section(objcopy: str, obj: Path, name: str, out: Path) -> bytes:
    subprocess.run([objcopy, "-O", "binary", f"--only-section={name}", str(obj), str(out)], check=True)
    return out.read_bytes()


@pytest.mark.parametrize("target,prec", [("cortex-m4", "int8"), ("cortex-m4", "int16x8"), ("host", "int8")])
def test_tflm_files_compile_against_tflm(emitted, tflm_root, target, prec, tmp_path):
    cxx, objcopy, objdump, cpu, target_defines, dirs = TFLM_BUILDS[target]
    if shutil.which(cxx) is None:
        if not IN_CI:
            pytest.skip(f"{cxx} not installed")
    e = emitted(prec)
    header = (e.c_dir / f"{PREFIX}_tflm.h").read_text()
    ops = tflm.ops(e.stream)
    assert sorted(m for m in tflm.RESOLVER_METHODS.values() if f"resolver.{m}()" in header) == \
        sorted(tflm.RESOLVER_METHODS[o] for o in ops), "the resolver must register exactly the model's ops"
    src = tmp_path / "tflm_check.cc"
    src.write_text(TFLM_CHECK.format(arena=e.report["tflm_arena_bytes"], state=e.prog.state_bytes(), n_ops=len(ops)))
    obj = tmp_path / "tflm_check.o"
    # TFLM's own headers are -isystem: their warnings are TFLM's business, ours are errors.
    cmd = [cxx, *cpu, *CXX_COMMON, *(f"-D{d}" for d in (*tflm_tree.DEFINES, *target_defines)),
           *(f for d in tflm_tree.include_dirs(tflm_root, **dirs) for f in ("-isystem", str(d))),
           f"-I{e.c_dir}", "-c", str(src), "-o", str(obj)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"$ {' '.join(cmd)}\n{proc.stderr[-4000:]}"
    # The compiled array is the .tflite byte for byte, 16-byte aligned, and its size constant says so.
    data = f".rodata.g_{PREFIX}_model_data"
    assert section(objcopy, obj, data, tmp_path / "data.bin") == e.stream
    size = section(objcopy, obj, data + "_size", tmp_path / "size.bin")
    assert int.from_bytes(size, "little") == len(e.stream)
    headers = subprocess.run([objdump, "-h", str(obj)], capture_output=True, text=True, check=True).stdout
    (line,) = [l for l in headers.splitlines() if l.split()[1:2] == [data]]
    assert int(line.split()[-1].removeprefix("2**")) >= 4, line


# --- locating a TFLM tree ----------------------------------------------------------------------------------

def fake_tree(base: Path, downloads=("gemmlowp", "flatbuffers/include", "kissfft", "ruy")) -> Path:
    root = base / "tflite-micro"
    (root / "tensorflow" / "lite" / "micro").mkdir(parents=True)
    (root / "tensorflow" / "lite" / "micro" / "micro_interpreter.h").write_text("")
    for d in downloads:
        (root / tflm_tree.DOWNLOADS / d).mkdir(parents=True)
    return root


def test_tflm_tree_from_a_directory_or_a_tarball_unpacked_once(tmp_path, monkeypatch):
    root = fake_tree(tmp_path / "src")
    assert tflm_tree.find(root) == root.resolve()
    assert tflm_tree.find(root.parent) == root.resolve()  # a folder holding only the tree, as a tarball unpacks
    monkeypatch.setenv(tflm_tree.ENV, str(root))
    assert tflm_tree.find() == root.resolve()
    dirs = tflm_tree.include_dirs(root)
    assert dirs[0] == root and root / tflm_tree.DOWNLOADS / "flatbuffers" / "include" in dirs
    with pytest.raises(UserError, match="downloads/cmsis"):
        tflm_tree.include_dirs(root, cmsis_nn=True)

    tarball = tmp_path / "tflm.tar.xz"
    with tarfile.open(tarball, "w:xz") as t:
        t.add(root, arcname="tflite-micro")
    monkeypatch.setenv(tflm_tree.CACHE_ENV, str(tmp_path / "cache"))
    unpacked = tflm_tree.find(tarball)
    assert unpacked.is_relative_to(tmp_path / "cache") and (unpacked / tflm_tree._MARK).is_file()
    (unpacked / "mine").write_text("")  # a second call must reuse the unpacked tree, not unpack again
    assert tflm_tree.find(tarball) == unpacked and (unpacked / "mine").exists()
    assert not [p for p in (tmp_path / "cache" / "tflm").iterdir() if ".part-" in p.name]


@pytest.mark.parametrize("kind", ["missing", "empty dir", "text file", "tarball without a tree"])
def test_a_bad_tflm_setting_is_a_one_line_error(tmp_path, monkeypatch, kind):
    monkeypatch.setenv(tflm_tree.CACHE_ENV, str(tmp_path / "cache"))
    bad = tmp_path / "setting"
    if kind == "empty dir":
        bad.mkdir()
    elif kind == "text file":
        bad.write_text("not a tree")
    elif kind == "tarball without a tree":
        (tmp_path / "x.txt").write_text("x")
        with tarfile.open(bad, "w:xz") as t:
            t.add(tmp_path / "x.txt", arcname="x.txt")
    monkeypatch.setenv(tflm_tree.ENV, str(bad))
    with pytest.raises(UserError) as err:
        tflm_tree.find()
    message = str(err.value)
    assert tflm_tree.ENV in message and str(bad) in message and "\n" not in message
    assert not (tmp_path / "cache" / "tflm").exists() or not list((tmp_path / "cache" / "tflm").iterdir())
