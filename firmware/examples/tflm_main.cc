// TensorFlow Lite Micro runner under QEMU (Cortex-M), the counterpart of qemu_main.c for the generated
// NAME_tflm glue: reads IN.bin (raw ew_tflm_in_t codes) through semihosting, steps the model with
// ew_tflm_fill / Invoke() / ew_tflm_push (what ew_tflm_step does, timed part by part), writes OUT.bin
// (EW_TFLM_OUTPUTS codes per step) and prints
//   TFLM_RESULT samples=N step=S invoke=I fill=F push=P max_step=K arena_min=A arena_used=U stack_bytes=B
// S = F + I + P are exact instruction totals (SysTick under -icount shift=7, as in qemu_main.c, the cost
// of reading the counter subtracted). With -DEW_ARENA_SEARCH, A is the smallest arena (16-byte steps)
// AllocateTensors accepts, found before the run; it can exceed U, TFLM's arena_used_bytes(), since
// Prepare's temporary allocations peak above what stays allocated.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <new>

#include "edgewave_tflm_model.h"

#ifndef EW_ARENA_BYTES  // the arena linked into the runner: the generated constant unless told otherwise
#define EW_ARENA_BYTES EW_TENSOR_ARENA_SIZE
#endif
#ifndef EW_TICK_NUM
#define EW_TICK_NUM 5u
#define EW_TICK_DEN 16u
#endif
#define CHUNK 64
#define STACK_PROBE_BYTES (16 * 1024)
#define STACK_PAINT 0xA5A5A5A5u

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

// Compiler barriers on both sides: no ring or tensor access moves across a reading.
static inline __attribute__((always_inline)) uint32_t now()
{
    __asm__ volatile("" ::: "memory");
    uint32_t v = SYST_CVR;
    __asm__ volatile("" ::: "memory");
    return v;
}

static uint32_t instructions(uint32_t t_before, uint32_t t_after)
{
    uint64_t ticks = (t_before - t_after) & 0xFFFFFFu;  // down-counter, wraps at most once
    return (uint32_t)((ticks * EW_TICK_NUM + EW_TICK_DEN / 2u) / EW_TICK_DEN);
}

// newlib-nano's printf has no %llu
static const char *u64(uint64_t v, char buf[21])
{
    char *p = buf + 20;
    *p = '\0';
    do *--p = (char)('0' + v % 10u); while (v /= 10u);
    return p;
}

static int fail(const char *what)
{
    fprintf(stderr, "error: %s\n", what);
    return 1;
}

alignas(16) static uint8_t g_arena[EW_ARENA_BYTES];
static ew_tflm g_model;

#ifdef EW_ARENA_SEARCH
static size_t smallest_arena()
{
    auto fits = [](size_t size) {
        bool ok = ew_tflm_init(&g_model, g_arena, size) == kTfLiteOk;
        if (g_model.interpreter != nullptr) g_model.interpreter->~MicroInterpreter();
        return ok;
    };
    size_t lo = 0, hi = EW_ARENA_BYTES;  // fits(hi), !fits(lo)
    if (!fits(hi)) return 0;
    while (hi - lo > 16) {
        size_t mid = ((lo + hi) / 2) & ~(size_t)15;
        if (fits(mid)) hi = mid; else lo = mid;
    }
    return hi;
}
#endif

int main(void)
{
    static ew_tflm_in_t in[CHUNK];
    static ew_tflm_out_t out[CHUNK * EW_TFLM_OUTPUTS];
    uint64_t t_fill = 0, t_inv = 0, t_push = 0, samples = 0;
    uint32_t overhead, max_step = 0, stack_bytes = 0;
    size_t arena_min = 0, n;
    FILE *fi, *fo;

#ifdef EW_ARENA_SEARCH
    arena_min = smallest_arena();
#endif
    if (ew_tflm_init(&g_model, g_arena, sizeof g_arena) != kTfLiteOk)
        return fail("ew_tflm_init failed: an op's Prepare refused the model or the arena is too small");
    if (!(fi = fopen("IN.bin", "rb"))) return fail("cannot open IN.bin");
    if (!(fo = fopen("OUT.bin", "wb"))) return fail("cannot create OUT.bin");

    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0u;
    SYST_CSR = 5u;  // enable, processor clock, no interrupt
    {
        uint32_t a = now();
        uint32_t b = now();
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
            uint32_t t0 = now();
            ew_tflm_fill(&g_model, in[i]);
            uint32_t t1 = now();
            TfLiteStatus st = g_model.interpreter->Invoke();
            uint32_t t2 = now();
            ew_tflm_push(&g_model, in[i], &out[i * EW_TFLM_OUTPUTS]);
            uint32_t t3 = now();
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
    printf("TFLM_RESULT samples=%s step=%s invoke=%s fill=%s push=%s max_step=%lu arena_min=%lu arena_used=%lu "
           "stack_bytes=%lu\n",
           u64(samples, b[0]), u64(t_fill + t_inv + t_push, b[1]), u64(t_inv, b[2]), u64(t_fill, b[3]),
           u64(t_push, b[4]), (unsigned long)max_step, (unsigned long)arena_min,
           (unsigned long)g_model.interpreter->arena_used_bytes(), (unsigned long)stack_bytes);
    return 0;
}
