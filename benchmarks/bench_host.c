/* Host timing harness for generated edgewave C (used by benchmarks/run.py).
 *
 *   bench_host IN.bin OUT.bin REPEATS [WINDOW]
 *
 * IN.bin holds raw ew_in_t input codes (host byte order); OUT.bin gets ew_q_t codes.
 *
 * WINDOW absent or 0 - streaming: every repeat calls ew_model_init once and then
 *   ew_model_step_q for every input; OUT.bin gets EW_OUTPUTS codes per input.
 * WINDOW = W > 0 - naive recompute of the receptive field: for every output t
 *   (t = W-1 .. n-1) the state is reset with ew_model_init and the W inputs
 *   in[t-W+1 .. t] are stepped through; only the last step's output is kept.
 *   That is the arithmetic of the whole-window model (every layer at every
 *   position of the window, causal zero padding) run once per output.
 *   OUT.bin gets EW_OUTPUTS codes per output, for t = W-1 .. n-1.
 *
 * For every repeat one line
 *   EW_BENCH cpu_ns_per_output=<float> wall_ns_per_output=<float> outputs=<n>
 * goes to stdout: the loop's CPU time (CLOCK_THREAD_CPUTIME_ID: time this thread
 * ran, so other load on the machine changes it little) and its wall time
 * (CLOCK_MONOTONIC), per output. OUT.bin holds the last repeat's outputs so that
 * the caller can check them bit for bit. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "edgewave_model.h"

static int fail(const char *what, const char *path)
{
    fprintf(stderr, "error: %s %s\n", what, path);
    return 1;
}

static double now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    static ew_model_state state;
    ew_in_t *in;
    ew_q_t *out, tmp[EW_OUTPUTS];
    FILE *f;
    long bytes;
    size_t n, i, j, k, outputs, window = 0;
    int repeats, r;
    double c0, c1, w0, w1;

    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s IN.bin OUT.bin REPEATS [WINDOW]\n", argc ? argv[0] : "bench_host");
        return 2;
    }
    repeats = atoi(argv[3]);
    if (argc == 5) window = (size_t)strtoul(argv[4], NULL, 10);
    if (repeats < 1) return fail("REPEATS must be >= 1, got", argv[3]);

    if (!(f = fopen(argv[1], "rb"))) return fail("cannot open input", argv[1]);
    if (fseek(f, 0, SEEK_END) != 0 || (bytes = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        return fail("cannot determine the size of", argv[1]);
    if ((unsigned long)bytes % sizeof(ew_in_t) != 0) return fail("size is not a multiple of ew_in_t:", argv[1]);
    n = (size_t)bytes / sizeof(ew_in_t);
    if (n == 0 || (window && n < window)) return fail("too few input samples in", argv[1]);
    in = malloc(n * sizeof *in);
    outputs = window ? n - window + 1 : n;
    out = malloc(outputs * EW_OUTPUTS * sizeof *out);
    if (!in || !out) return fail("out of memory for", argv[1]);
    if (fread(in, sizeof *in, n, f) != n) return fail("cannot read", argv[1]);
    fclose(f);

    for (r = 0; r < repeats; r++) {
        if (window == 0) {
            w0 = now_ns(CLOCK_MONOTONIC);
            c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
            ew_model_init(&state);
            for (i = 0; i < n; i++) ew_model_step_q(&state, in[i], &out[i * EW_OUTPUTS]);
            c1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
            w1 = now_ns(CLOCK_MONOTONIC);
        } else {
            w0 = now_ns(CLOCK_MONOTONIC);
            c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
            for (i = 0; i < outputs; i++) {
                ew_model_init(&state);
                for (j = 0; j < window; j++) ew_model_step_q(&state, in[i + j], tmp);
                for (k = 0; k < EW_OUTPUTS; k++) out[i * EW_OUTPUTS + k] = tmp[k];
            }
            c1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
            w1 = now_ns(CLOCK_MONOTONIC);
        }
        printf("EW_BENCH cpu_ns_per_output=%.3f wall_ns_per_output=%.3f outputs=%lu\n",
               (c1 - c0) / (double)outputs, (w1 - w0) / (double)outputs, (unsigned long)outputs);
    }

    if (!(f = fopen(argv[2], "wb"))) return fail("cannot create output", argv[2]);
    if (fwrite(out, sizeof *out, outputs * EW_OUTPUTS, f) != outputs * EW_OUTPUTS) return fail("cannot write", argv[2]);
    if (fclose(f) != 0) return fail("cannot write", argv[2]);
    free(in);
    free(out);
    return 0;
}
