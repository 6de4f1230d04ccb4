/* Anomaly scoring for the example runners: every input code through ew_model_score_step, each
 * step's window sum (uint64, host byte order) to `out`. The clock hooks bracket each call. */
#ifndef EW_SCORE_H
#define EW_SCORE_H

#include <stdint.h>
#include <stdio.h>
#include "edgewave_model.h"
#include "ew_plc.h" /* ew_plc_clock */

/* The runners' ring (edgewave.anomaly.detect.MAX_WINDOW). */
#define EW_SCORE_MAX_WINDOW 32768u
#define EW_SCORE_CHUNK 64

/* Returns the samples scored, or -1 on a bad window or an I/O error. */
static long ew_score_run(FILE *in, FILE *out, uint32_t window, ew_model_state *s, const ew_plc_clock *clock)
{
    static uint32_t ring[EW_SCORE_MAX_WINDOW];
    static ew_in_t x[EW_SCORE_CHUNK];
    static uint64_t sums[EW_SCORE_CHUNK];
    ew_q_t y[EW_OUTPUTS];
    ew_model_score sc;
    long total = 0;
    size_t n, i;
    if (window < 1u || window > EW_SCORE_MAX_WINDOW) return -1;
    ew_model_init(s);
    ew_model_score_init(&sc, ring, window);
    while ((n = fread(x, sizeof x[0], EW_SCORE_CHUNK, in)) > 0) {
        for (i = 0; i < n; i++) {
            clock->start();
            sums[i] = ew_model_score_step(s, &sc, x[i], y);
            clock->stop();
        }
        if (fwrite(sums, sizeof sums[0], n, out) != n) return -1;
        total += (long)n;
    }
    return ferror(in) ? -1 : total;
}

#endif
