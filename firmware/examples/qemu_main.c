/* Cortex-M and RISC-V runner under QEMU: reads IN.bin (raw ew_in_t codes) through semihosting,
 * steps the model, writes OUT.bin (EW_OUTPUTS codes per step) and prints
 *   EW_RESULT samples=N instructions=M max_step=K
 * where M is the exact instruction count of all ew_model_step_q calls (argument
 * setup and call included), measured with SysTick (Cortex-M) or minstret (RISC-V) under `-icount shift=7`.
 * One counter tick = EW_TICK_NUM/EW_TICK_DEN instructions (SysTick: 5/16 at 25 MHz; QEMU's minstret counts
 * virtual nanoseconds: 1/128).
 * If FB.bin exists, predictions are then fed back (ew_feedback.h); those steps count too.
 * If PLC.bin exists, it is a concealment script instead (ew_plc.h): OUT.bin receives the
 * played input codes, and the counts are of the concealed samples alone:
 *   EW_RESULT samples=<concealed> instructions=M max_step=K played=P
 * If SCORE.bin exists (uint32 window), IN.bin goes through the anomaly score (ew_score.h):
 * OUT.bin receives the window sums, and the counts are of ew_model_score_step.
 * Built with -DEW_PROFILE, the model marks the end of every call (EW_PROFILE_MARK in the generated
 * step) and a plain run then also prints, for each call k (1-based, the last one being the output
 * copy and ring heads), the instructions between mark k-1 and mark k over all steps:
 *   EW_PROFILE call=k instructions=M
 * with the marks' own cost, calibrated by two marks in a row, taken off. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "edgewave_model.h"
#include "ew_feedback.h"
/* The jobs' modes (concealment, anomaly score), for models that have their API; left out on
 * ARMv6-M: QEMU's microbit board has 16 KB of RAM, which the largest models need for themselves. */
#if defined(EW_MODEL_HAS_JOBS) && !defined(__ARM_ARCH_6M__)
#define EW_RUNNER_JOBS 1
#include "ew_plc.h"
#include "ew_score.h"
#endif

#include "ew_counter.h"

#define CHUNK 64

#ifdef EW_PROFILE
#define EW_PROFILE_CALLS 512
static uint64_t profile[EW_PROFILE_CALLS];
static uint32_t profile_t, profile_overhead;
static unsigned profile_calls;

void ew_profile_mark(unsigned k)
{
    const uint32_t now = counter();
    if (k > 0u && k <= EW_PROFILE_CALLS) {
        profile[k - 1u] += instructions(profile_t, now) - profile_overhead;
        if (k > profile_calls) profile_calls = k;
    }
    profile_t = counter();
}

static void profile_calibrate(void)
{
    ew_profile_mark(0u);
    ew_profile_mark(1u);
    profile_overhead = (uint32_t)profile[0];
    profile[0] = 0u;
    profile_calls = 0u;
}

static void profile_print(void)
{
    char b[21];
    for (unsigned k = 0u; k < profile_calls; k++) {
        printf("EW_PROFILE call=%u instructions=%s\n", k + 1u, u64(profile[k], b));
    }
}
#endif

#ifdef EW_RUNNER_JOBS
static uint32_t plc_overhead, plc_t0, plc_max;
static uint64_t plc_total;
static void plc_start(void) { plc_t0 = counter(); }
static void plc_stop(void)
{
    const uint32_t d = instructions(plc_t0, counter()) - plc_overhead;
    plc_total += d;
    if (d > plc_max) plc_max = d;
}

static int conceal(FILE *fs)
{
    static ew_model_state state;
    const ew_plc_clock clock = {plc_start, plc_stop};
    uint64_t concealed;
    char b1[21], b2[21], b3[21], b4[21];
    long played;
    FILE *fo = fopen("OUT.bin", "wb");
    if (!fo) return fail("cannot create OUT.bin");
    played = ew_plc_run(fs, fo, &state, &clock, &concealed);
    fclose(fs);
    if (played < 0) return fail("malformed PLC.bin or I/O error");
    if (fclose(fo) != 0) return fail("cannot write OUT.bin");
    printf("EW_RESULT samples=%s instructions=%s max_step=%s played=%s\n", u64(concealed, b1), u64(plc_total, b2),
           u64(plc_max, b3), u64((uint64_t)played, b4));
    return 0;
}

static int score(FILE *fw)
{
    static ew_model_state state;
    const ew_plc_clock clock = {plc_start, plc_stop};
    unsigned char w[4];
    char b1[21], b2[21], b3[21];
    long scored;
    FILE *fi, *fo;
    const int ok = fread(w, 1, 4, fw) == 4;
    fclose(fw);
    if (!ok) return fail("cannot read SCORE.bin");
    if (!(fi = fopen("IN.bin", "rb"))) return fail("cannot open IN.bin");
    if (!(fo = fopen("OUT.bin", "wb"))) return fail("cannot create OUT.bin");
    scored = ew_score_run(fi, fo, ew_plc_le32(w), &state, &clock);
    fclose(fi);
    if (scored < 0) return fail("bad window in SCORE.bin or I/O error");
    if (fclose(fo) != 0) return fail("cannot write OUT.bin");
    printf("EW_RESULT samples=%s instructions=%s max_step=%s\n", u64((uint64_t)scored, b1), u64(plc_total, b2),
           u64(plc_max, b3));
    return 0;
}
#endif

int main(void)
{
    static ew_model_state state;
    static ew_in_t in[CHUNK];
    static ew_q_t out[CHUNK * EW_OUTPUTS];
    ew_q_t last[EW_OUTPUTS] = {0};
    uint64_t total = 0, samples = 0;
    uint32_t overhead, max_step = 0, t0, t1, d;
    char b1[21], b2[21], b3[21];
    FILE *fi, *fo;
    size_t n, i;

    counter_start();
    t0 = counter();
    t1 = counter();
    overhead = instructions(t0, t1); /* cost of the measurement itself */
#ifdef EW_PROFILE
    profile_calibrate();
#endif
#ifdef EW_RUNNER_JOBS
    plc_start(); /* the hooks' own cost, taken off every measured call */
    plc_stop();
    plc_overhead = (uint32_t)plc_total;
    plc_total = 0;
    plc_max = 0;
    if ((fi = fopen("PLC.bin", "rb")) != NULL) return conceal(fi);
    if ((fi = fopen("SCORE.bin", "rb")) != NULL) return score(fi);
#endif

    if (!(fi = fopen("IN.bin", "rb"))) return fail("cannot open IN.bin");
    if (!(fo = fopen("OUT.bin", "wb"))) return fail("cannot create OUT.bin");

    ew_model_init(&state);
    while ((n = fread(in, sizeof in[0], CHUNK, fi)) > 0) {
        for (i = 0; i < n; i++) {
            t0 = counter();
            ew_model_step_q(&state, in[i], &out[i * EW_OUTPUTS]);
            t1 = counter();
            d = instructions(t0, t1) - overhead;
            total += d;
            if (d > max_step) max_step = d;
        }
        samples += n;
        memcpy(last, &out[(n - 1) * EW_OUTPUTS], sizeof last);
        if (fwrite(out, sizeof out[0], n * EW_OUTPUTS, fo) != n * EW_OUTPUTS) return fail("cannot write OUT.bin");
    }
    if (ferror(fi)) return fail("cannot read IN.bin");
    fclose(fi);
    if ((fi = fopen("FB.bin", "rb")) != NULL) {
        ew_feedback fb;
        uint32_t k;
        ew_in_t x;
        if (samples == 0 || !ew_feedback_open(&fb, fi)) return fail("FB.bin does not fit this model or state");
        for (k = 0; k < fb.steps; k++) {
            if (!ew_feedback_next(&fb, last, &x)) return fail("cannot read FB.bin");
            t0 = counter();
            ew_model_step_q(&state, x, last);
            t1 = counter();
            d = instructions(t0, t1) - overhead;
            total += d;
            if (d > max_step) max_step = d;
            if (fwrite(last, sizeof last[0], EW_OUTPUTS, fo) != EW_OUTPUTS) return fail("cannot write OUT.bin");
        }
        samples += fb.steps;
        fclose(fi);
    }
    if (fclose(fo) != 0) return fail("cannot write OUT.bin");
    printf("EW_RESULT samples=%s instructions=%s max_step=%s\n", u64(samples, b1), u64(total, b2),
           u64(max_step, b3));
#ifdef EW_PROFILE
    profile_print();
#endif
    return 0;
}
