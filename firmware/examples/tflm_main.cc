// TensorFlow Lite Micro runner under QEMU (Cortex-M), the counterpart of qemu_main.c for the generated
// NAME_tflm glue: reads IN.bin (raw ew_tflm_in_t codes) through semihosting, steps the model with
// ew_tflm_fill / Invoke() / ew_tflm_push (what ew_tflm_step does, timed part by part), writes OUT.bin
// (EW_TFLM_OUTPUTS codes per step) and prints
//   TFLM_RESULT samples=N step=S invoke=I fill=F push=P max_step=K arena_used=U stack_bytes=B glue_bytes=G
// S = F + I + P are exact instruction totals (SysTick under -icount shift=7, as in qemu_main.c, the cost
// of reading the counter subtracted). U is TFLM's arena_used_bytes(): the smallest arena AllocateTensors
// accepts can be larger, since Prepare's temporary allocations peak above what stays allocated.
// G = sizeof(ew_tflm): the interpreter, its op resolver and the rings, which live outside the arena.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <new>

#include "edgewave_tflm_model.h"
#include "ew_counter.h"

#ifndef EW_ARENA_BYTES  // the arena linked into the runner: the generated constant unless told otherwise
#define EW_ARENA_BYTES EW_TENSOR_ARENA_SIZE
#endif
#define CHUNK 64
#define STACK_PROBE_BYTES (16 * 1024)
#define STACK_PAINT 0xA5A5A5A5u

alignas(16) static uint8_t g_arena[EW_ARENA_BYTES];
static ew_tflm g_model;

// ARENA.bin (one uint32): only try ew_tflm_init with that many bytes of the arena and print
//   TFLM_TRY arena=A    before, and after it    TFLM_FITS arena=A ok=0|1
// With some arenas that are too small, TFLM's CMSIS-NN CONV_2D Prepare faults instead of failing (it uses
// AllocatePersistentBuffer's result unchecked): a fault after TFLM_TRY means "does not fit".
static int probe_arena(FILE *f)
{
    uint32_t size = 0;
    size_t got = fread(&size, sizeof size, 1, f);
    fclose(f);
    if (got != 1 || size > EW_ARENA_BYTES) return fail("ARENA.bin must hold one uint32 no larger than the linked arena");
    printf("TFLM_TRY arena=%lu\n", (unsigned long)size);
    fflush(stdout);
    int ok = ew_tflm_init(&g_model, g_arena, size) == kTfLiteOk;
    printf("TFLM_FITS arena=%lu ok=%d\n", (unsigned long)size, ok);
    return 0;
}

int main(void)
{
    static ew_tflm_in_t in[CHUNK];
    static ew_tflm_out_t out[CHUNK * EW_TFLM_OUTPUTS];
    uint64_t t_fill = 0, t_inv = 0, t_push = 0, samples = 0;
    uint32_t overhead, max_step = 0, stack_bytes = 0;
    size_t n;
    FILE *fi, *fo;

    if ((fi = fopen("ARENA.bin", "rb")) != NULL) return probe_arena(fi);
    if (ew_tflm_init(&g_model, g_arena, sizeof g_arena) != kTfLiteOk)
        return fail("ew_tflm_init failed: an op's Prepare refused the model or the arena is too small");
    if (!(fi = fopen("IN.bin", "rb"))) return fail("cannot open IN.bin");
    if (!(fo = fopen("OUT.bin", "wb"))) return fail("cannot create OUT.bin");

    counter_start();
    {
        uint32_t a = counter();
        uint32_t b = counter();
        overhead = instructions(a, b);
    }
    bool probe = true;
    while ((n = fread(in, sizeof in[0], CHUNK, fi)) > 0) {
        for (size_t i = 0; i < n; i++) {
            uintptr_t sp = 0;
            if (probe) {  // paint the stack below us: the first step's high-water mark is the step's stack
                __asm__ volatile("mov %0, sp" : "=r"(sp));
                for (volatile uint32_t *p = (volatile uint32_t *)(sp - STACK_PROBE_BYTES); p < (volatile uint32_t *)sp; p++)
                    *p = STACK_PAINT;
            }
            uint32_t t0 = counter();
            ew_tflm_fill(&g_model, in[i]);
            uint32_t t1 = counter();
            TfLiteStatus st = g_model.interpreter->Invoke();
            uint32_t t2 = counter();
            ew_tflm_push(&g_model, in[i], &out[i * EW_TFLM_OUTPUTS]);
            uint32_t t3 = counter();
            if (st != kTfLiteOk) return fail("Invoke() failed");
            if (probe) {
                const uint32_t *p = (const uint32_t *)(sp - STACK_PROBE_BYTES);
                while (p < (const uint32_t *)sp && *p == STACK_PAINT) p++;
                stack_bytes = (uint32_t)(sp - (uintptr_t)p);
                probe = false;
            }
            uint32_t f = instructions(t0, t1) - overhead, v = instructions(t1, t2) - overhead,
                     p = instructions(t2, t3) - overhead;
            t_fill += f;
            t_inv += v;
            t_push += p;
            if (f + v + p > max_step) max_step = f + v + p;
        }
        samples += n;
        if (fwrite(out, sizeof out[0], n * EW_TFLM_OUTPUTS, fo) != n * EW_TFLM_OUTPUTS) return fail("cannot write OUT.bin");
    }
    if (ferror(fi)) return fail("cannot read IN.bin");
    fclose(fi);
    if (fclose(fo) != 0) return fail("cannot write OUT.bin");
    char b[5][21];
    printf("TFLM_RESULT samples=%s step=%s invoke=%s fill=%s push=%s max_step=%lu arena_used=%lu "
           "stack_bytes=%lu glue_bytes=%lu\n",
           u64(samples, b[0]), u64(t_fill + t_inv + t_push, b[1]), u64(t_inv, b[2]), u64(t_fill, b[3]),
           u64(t_push, b[4]), (unsigned long)max_step, (unsigned long)g_model.interpreter->arena_used_bytes(), (unsigned long)stack_bytes,
           (unsigned long)sizeof(ew_tflm));
    return 0;
}
