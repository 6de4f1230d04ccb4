/* Free-running generation for the example runners: after the input file, feed each
 * prediction back as the next input. FB.bin (written by edgewave.ctools.Feedback):
 *   uint32 steps, kind, state, levels (little-endian), then
 *   kind 0 (regression): for every output code y (ew_q_t) from the type's minimum up, the
 *          input code (ew_in_t) y is fed back as (edgewave's dequantize-then-quantize, exactly);
 *   kind 1 (categorical): the input code (ew_in_t) of each of `levels` levels, padded to 4 bytes,
 *          then uint32 weights W[d] for every code difference d = max logit - logit;
 *          level k is drawn with probability W[max - q_k] / sum, from a xorshift32 stream
 *          seeded with `state` — the integer sampler of edgewave.simulate, bit for bit. */
#ifndef EW_FEEDBACK_H
#define EW_FEEDBACK_H

#include <stdint.h>
#include <stdio.h>
#include "edgewave_model.h"

#define EW_Q_OFFSET (sizeof(ew_q_t) == 1 ? 128L : 32768L)

typedef struct {
    FILE *f;
    uint32_t steps, kind, state, levels;
    long weights_at;
} ew_feedback;

static uint32_t ew_le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Reads the header; 0 on a malformed file or one that does not fit this model. */
static int ew_feedback_open(ew_feedback *fb, FILE *f)
{
    unsigned char h[16];
    long codes;
    if (fread(h, 1, sizeof h, f) != sizeof h) return 0;
    fb->f = f;
    fb->steps = ew_le32(h);
    fb->kind = ew_le32(h + 4);
    fb->state = ew_le32(h + 8);
    fb->levels = ew_le32(h + 12);
    codes = (long)fb->levels * (long)sizeof(ew_in_t);
    fb->weights_at = 16L + codes + (4L - codes % 4L) % 4L;
    return fb->kind == 0 ? EW_OUTPUTS == 1 : fb->kind == 1 && fb->levels == EW_OUTPUTS;
}

static int ew_feedback_read(const ew_feedback *fb, long at, void *v, size_t size)
{
    return fseek(fb->f, at, SEEK_SET) == 0 && fread(v, size, 1, fb->f) == 1;
}

/* The next input from this step's outputs y; 0 on a read error. */
static int ew_feedback_next(ew_feedback *fb, const ew_q_t *y, ew_in_t *x)
{
    static uint32_t w[EW_OUTPUTS];
    unsigned char b[4];
    uint64_t total = 0, r, run = 0;
    uint32_t s, k;
    ew_q_t top;
    if (fb->kind == 0) {
        return ew_feedback_read(fb, 16L + ((long)y[0] + EW_Q_OFFSET) * (long)sizeof(ew_in_t), x, sizeof *x);
    }
    for (top = y[0], k = 1; k < EW_OUTPUTS; k++) {
        if (y[k] > top) top = y[k];
    }
    for (k = 0; k < EW_OUTPUTS; k++) {
        if (!ew_feedback_read(fb, fb->weights_at + 4L * ((long)top - (long)y[k]), b, 4)) return 0;
        w[k] = ew_le32(b);
        total += w[k];
    }
    s = fb->state;
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    fb->state = s;
    r = ((uint64_t)s * total) >> 32;
    for (k = 0; k + 1 < EW_OUTPUTS; k++) {
        run += w[k];
        if (run > r) break;
    }
    return ew_feedback_read(fb, 16L + (long)k * (long)sizeof(ew_in_t), x, sizeof *x);
}

#endif
