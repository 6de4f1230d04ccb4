/* Free-running generation for the example runners: after the input file, feed each
 * prediction back as the next input. FB.bin holds a little-endian uint32 N (steps to
 * generate) and then, for every output code y from the type's minimum up, the input
 * code that y is fed back as (computed by edgewave, so that it equals the Python
 * backends' dequantize-then-quantize exactly). Single-output (regression) models only. */
#ifndef EW_FEEDBACK_H
#define EW_FEEDBACK_H

#include <stdint.h>
#include <stdio.h>
#include "edgewave_model.h"

#define EW_Q_OFFSET (sizeof(ew_q_t) == 1 ? 128L : 32768L)

/* Steps to generate from FB.bin's header; 0 on a malformed file. */
static uint32_t ew_feedback_steps(FILE *fb)
{
    unsigned char h[4];
    if (fread(h, 1, 4, fb) != 4) return 0;
    return (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
}

/* The input code output y is fed back as; 0 on a read error. */
static int ew_feedback_next(FILE *fb, ew_q_t y, ew_q_t *x)
{
    return fseek(fb, 4L + ((long)y + EW_Q_OFFSET) * (long)sizeof(ew_q_t), SEEK_SET) == 0 &&
           fread(x, sizeof *x, 1, fb) == 1;
}

#endif
