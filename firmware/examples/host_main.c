/* Host runner: prog IN.bin OUT.bin [FB.bin]  or  prog --conceal PLC.bin OUT.bin
 *                                           or  prog --score WINDOW IN.bin OUT.bin
 * IN.bin holds raw ew_in_t input codes, OUT.bin receives EW_OUTPUTS raw ew_q_t
 * codes per input, both in the host's byte order (little-endian on x86/Arm).
 * With FB.bin, predictions are then fed back (ew_feedback.h).
 * On stdout: "steps N step_ns T", the monotonic time spent in ew_model_step_q alone
 * (file I/O excluded), which is what `simulate --backend c` reports per sample.
 * With --conceal, PLC.bin is a concealment script (ew_plc.h); OUT.bin receives the played
 * input codes and stdout "steps N step_ns T" for the concealed samples alone.
 * With --score, OUT.bin receives each step's anomaly window sum (ew_score.h) and the time is
 * that of ew_model_score_step. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime in C99 mode */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "edgewave_model.h"
#include "ew_feedback.h"
#ifdef EW_MODEL_HAS_JOBS /* the jobs' modes, for models that have their API */
#include "ew_plc.h"
#include "ew_score.h"
#endif

#define CHUNK 256

static unsigned long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (unsigned long long)t.tv_sec * 1000000000ull + (unsigned long long)t.tv_nsec;
}

static int fail(const char *what, const char *path)
{
    fprintf(stderr, "error: %s %s\n", what, path);
    return 1;
}

#ifdef EW_MODEL_HAS_JOBS
static unsigned long long plc_t0, plc_ns;
static void plc_start(void) { plc_t0 = now_ns(); }
static void plc_stop(void) { plc_ns += now_ns() - plc_t0; }

static int conceal(const char *script_path, const char *out_path)
{
    static ew_model_state state;
    const ew_plc_clock clock = {plc_start, plc_stop};
    uint64_t concealed;
    FILE *fs, *fo;
    long played;
    if (!(fs = fopen(script_path, "rb"))) return fail("cannot open", script_path);
    if (!(fo = fopen(out_path, "wb"))) return fail("cannot create output", out_path);
    played = ew_plc_run(fs, fo, &state, &clock, &concealed);
    fclose(fs);
    if (played < 0) return fail("malformed concealment script or I/O error:", script_path);
    if (fclose(fo) != 0) return fail("cannot write", out_path);
    printf("steps %llu step_ns %llu\n", (unsigned long long)concealed, plc_ns);
    return 0;
}

static int score(const char *window, const char *in_path, const char *out_path)
{
    static ew_model_state state;
    const ew_plc_clock clock = {plc_start, plc_stop};
    char *end;
    const unsigned long w = strtoul(window, &end, 10);
    FILE *fi, *fo;
    long scored;
    if (*window == '\0' || *end != '\0' || w > EW_SCORE_MAX_WINDOW) return fail("bad window", window);
    if (!(fi = fopen(in_path, "rb"))) return fail("cannot open input", in_path);
    if (!(fo = fopen(out_path, "wb"))) return fail("cannot create output", out_path);
    scored = ew_score_run(fi, fo, (uint32_t)w, &state, &clock);
    fclose(fi);
    if (scored < 0) return fail("cannot score (bad window or I/O error):", in_path);
    if (fclose(fo) != 0) return fail("cannot write", out_path);
    printf("steps %ld step_ns %llu\n", scored, plc_ns);
    return 0;
}
#endif

int main(int argc, char **argv)
{
    static ew_model_state state;
    static ew_in_t in[CHUNK];
    static ew_q_t out[CHUNK * EW_OUTPUTS];
    ew_q_t last[EW_OUTPUTS] = {0};
    FILE *fi, *fo;
    long bytes;
    size_t n, i;
    unsigned long long steps = 0, step_ns = 0, t0;

#ifdef EW_MODEL_HAS_JOBS
    if (argc == 4 && strcmp(argv[1], "--conceal") == 0) return conceal(argv[2], argv[3]);
    if (argc == 5 && strcmp(argv[1], "--score") == 0) return score(argv[2], argv[3], argv[4]);
#endif
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s IN.bin OUT.bin [FB.bin]\n", argc ? argv[0] : "prog");
        return 2;
    }
    if (!(fi = fopen(argv[1], "rb"))) return fail("cannot open input", argv[1]);
    if (fseek(fi, 0, SEEK_END) != 0 || (bytes = ftell(fi)) < 0 || fseek(fi, 0, SEEK_SET) != 0)
        return fail("cannot determine the size of", argv[1]);
    if ((unsigned long)bytes % sizeof(ew_in_t) != 0)
        return fail("size is not a multiple of sizeof(ew_in_t):", argv[1]);
    if (!(fo = fopen(argv[2], "wb"))) return fail("cannot create output", argv[2]);

    ew_model_init(&state);
    while ((n = fread(in, sizeof in[0], CHUNK, fi)) > 0) {
        t0 = now_ns();
        for (i = 0; i < n; i++) ew_model_step_q(&state, in[i], &out[i * EW_OUTPUTS]);
        step_ns += now_ns() - t0;
        steps += n;
        memcpy(last, &out[(n - 1) * EW_OUTPUTS], sizeof last);
        if (fwrite(out, sizeof out[0], n * EW_OUTPUTS, fo) != n * EW_OUTPUTS)
            return fail("cannot write", argv[2]);
    }
    if (ferror(fi)) return fail("cannot read", argv[1]);
    fclose(fi);
    if (argc == 4) {
        ew_feedback fb;
        FILE *f = fopen(argv[3], "rb");
        uint32_t k;
        ew_in_t x;
        if (!f || bytes == 0 || !ew_feedback_open(&fb, f)) return fail("cannot generate (a primed model) from", argv[3]);
        for (k = 0; k < fb.steps; k++) {
            if (!ew_feedback_next(&fb, last, &x)) return fail("cannot read", argv[3]);
            t0 = now_ns();
            ew_model_step_q(&state, x, last);
            step_ns += now_ns() - t0;
            steps++;
            if (fwrite(last, sizeof last[0], EW_OUTPUTS, fo) != EW_OUTPUTS) return fail("cannot write", argv[2]);
        }
        fclose(f);
    }
    if (fclose(fo) != 0) return fail("cannot write", argv[2]);
    printf("steps %llu step_ns %llu\n", steps, step_ns);
    return 0;
}
