"""edgewave.tflm_build: stock TensorFlow Lite Micro built from the user's tree for the Cortex-M4, once and cached,
and a program linked against it that runs edgewave's .tflite on QEMU with the same outputs as the host's TFLM.
A cold cache compiles TFLM's core and the tiny model's kernels (about a minute and a half on 2 cores); the
cache under build/ survives between runs of a checkout."""

import subprocess
import time

import numpy as np
import pytest


from edgewave import ctools, tflm_build, tflm_tree
from edgewave.convert import pipeline
from edgewave.emit import tflm
from edgewave.errors import UserError
from edgewave.runners import tflm_interpreter
from edgewave.tflite import read_model

M4 = ctools.TARGETS[tflm_build.TARGET]
PRECISION = "int16x8"
KERNELS = "reference"

# One MicroInterpreter step on the model: every input filled with a byte pattern (pattern_bytes below), one
# Invoke(), every output's bytes into OUT.bin by semihosting, and the EW_RESULT line ctools' QEMU runner
# reads (instructions of the Invoke, from SysTick as qemu_main.c counts). The interpreter and resolver live
# in static storage by placement new: -nostartfiles leaves no __dso_handle for static destructors.
MAIN = """\
#include <cstdint>
#include <cstdio>
#include <new>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

alignas(16) static const unsigned char g_model[] = {{
  {model}
}};
alignas(16) static uint8_t g_arena[{arena}];
using Resolver = tflite::MicroMutableOpResolver<{n_ops}>;
alignas(Resolver) static uint8_t g_resolver_mem[sizeof(Resolver)];
alignas(tflite::MicroInterpreter) static uint8_t g_interp_mem[sizeof(tflite::MicroInterpreter)];

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static int fail(const char *what) {{
  fprintf(stderr, "error: %s\\n", what);
  return 1;
}}

int main(void) {{
  const tflite::Model *model = tflite::GetModel(g_model);
  if (model->version() != TFLITE_SCHEMA_VERSION) return fail("schema version");
  Resolver &resolver = *new (g_resolver_mem) Resolver();
  if (!({register})) return fail("op registration");
  tflite::MicroInterpreter &ip = *new (g_interp_mem) tflite::MicroInterpreter(model, resolver, g_arena, sizeof g_arena);
  if (ip.AllocateTensors() != kTfLiteOk) return fail("AllocateTensors");
  for (size_t k = 0; k < ip.inputs_size(); k++) {{
    TfLiteTensor *t = ip.input(k);
    for (size_t j = 0; j < t->bytes; j++) t->data.uint8[j] = (uint8_t)({pattern});
  }}
  SYST_RVR = 0xFFFFFFu;
  SYST_CVR = 0u;
  SYST_CSR = 5u;
  uint32_t t0 = SYST_CVR;
  if (ip.Invoke() != kTfLiteOk) return fail("Invoke");
  uint32_t ticks = (t0 - SYST_CVR) & 0xFFFFFFu;
  unsigned long instructions = (unsigned long)((ticks * (uint64_t)EW_TICK_NUM + EW_TICK_DEN / 2u) / EW_TICK_DEN);
  FILE *f = fopen("OUT.bin", "wb");
  if (!f) return fail("cannot create OUT.bin");
  for (size_t k = 0; k < ip.outputs_size(); k++)
    if (fwrite(ip.output(k)->data.raw, 1, ip.output(k)->bytes, f) != ip.output(k)->bytes) return fail("write");
  if (fclose(f) != 0) return fail("write");
  printf("EW_RESULT samples=1 instructions=%lu max_step=%lu\\n", instructions, instructions);
  return 0;
}}
"""
PATTERN_C = "j * 7u + k * 13u + 1u"


def pattern_bytes(k: int, n: int) -> bytes:
    """What MAIN writes into input k of n bytes."""
    return bytes((j * 7 + k * 13 + 1) & 0xFF for j in range(n))


@pytest.fixture(scope="module")
def stream(convert_tiny):
    return pipeline.load(convert_tiny(PRECISION))[2]


def test_library_is_built_once_and_then_a_cache_hit(tflm_m4_root, stream):
    ops = tflm.ops(stream)
    built, rerun = [], []
    lib = tflm_build.library(tflm_m4_root, KERNELS, ops, progress=built.append)
    assert lib.is_file() and lib.suffix == ".a" and lib.is_relative_to(tflm_tree._cache_dir().parent)
    assert not built or any(line.startswith("compiling") for line in built), built  # empty: cached before
    mtime = lib.stat().st_mtime_ns
    start = time.monotonic()
    again = tflm_build.library(tflm_m4_root, KERNELS, reversed(ops), progress=rerun.append)
    assert time.monotonic() - start < 2.0 and not rerun, "a rerun with the same key must not rebuild"
    assert again == lib and again.stat().st_mtime_ns == mtime
    # Every op's kernel is in it: an archive member defines its registration.
    symbols = subprocess.run(["arm-none-eabi-nm", "-C", "--defined-only", str(lib)], capture_output=True, text=True,
                             check=True).stdout
    assert all(f"tflite::Register_{op}()" in symbols for op in ops), ops


def test_a_program_linked_with_the_library_runs_on_qemu_as_the_host_tflm_does(tflm_m4_root, stream, tmp_path):
    ops = tflm.ops(stream)
    register = " && ".join(f"resolver.{tflm.RESOLVER_METHODS[o]}() == kTfLiteOk" for o in ops)
    main = tmp_path / "main.cc"
    main.write_text(MAIN.format(model=tflm.c_array(stream), arena=64 * 1024, n_ops=len(ops), register=register,
                                pattern=PATTERN_C))
    elf, sizes = tflm_build.build_program(tflm_m4_root, KERNELS, ops, [main], [], tmp_path / "build",
                                          defines=(f"EW_TICK_NUM={M4.tick[0]}u", f"EW_TICK_DEN={M4.tick[1]}u"))
    assert sizes["model"]["rodata"] >= len(stream) and sizes["bss"] >= 64 * 1024, sizes
    run = tmp_path / "run"
    run.mkdir()
    stats = ctools._qemu(M4, elf, run, timeout=120)
    assert stats["samples"] == 1 and stats["instructions"] > 0, stats

    summary, host = read_model(stream), tflm_interpreter(stream)
    for k in range(len(summary.inputs)):
        d = host.get_input_details(k)
        n = int(np.prod(d["shape"])) * np.dtype(d["dtype"]).itemsize
        host.set_input(np.frombuffer(pattern_bytes(k, n), d["dtype"]).reshape(d["shape"]), k)
    host.invoke()
    want = b"".join(np.ascontiguousarray(host.get_output(k)).tobytes() for k in range(len(summary.outputs)))
    assert (run / "OUT.bin").read_bytes() == want, "TFLM on the Cortex-M4 differs from the host's TFLM"


def test_build_errors_are_one_line_user_errors_naming_the_log(tflm_m4_root, stream, tmp_path):
    bad = tmp_path / "bad.cc"
    bad.write_text("int main(void) { return undeclared; }\n")
    with pytest.raises(UserError, match=r"undeclared.*build\.log"):
        tflm_build.build_program(tflm_m4_root, KERNELS, tflm.ops(stream), [bad], [], tmp_path / "build")
    with pytest.raises(UserError, match="reference, cmsis_nn"):
        tflm_build.library(tflm_m4_root, "fast", ["ADD"])
    with pytest.raises(UserError, match="NO_SUCH_OP"):
        tflm_build.library(tflm_m4_root, KERNELS, ["NO_SUCH_OP"])
