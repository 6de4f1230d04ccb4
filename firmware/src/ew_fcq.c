/*
 * ew_fcq.c - prepared FULLY_CONNECTED (int8 and 16x8): the same results as ew_fc_s8 /
 * ew_fc_s16 from constants arranged at emit time (edgewave/emit/plan.py; layout in
 * edgewave_rt.h). Inputs are widened once per call into 16-bit pairs shared by every
 * output; weights are stored pre-widened to int16 and interleaved four outputs at a
 * time, so that on Armv7E-M / Armv8-M each 32-bit weight load feeds one SMLAD (two
 * MACs) with no unpacking, and each input pair is loaded once per four outputs.
 * Accumulation is in int32: for int8 exactly TFLM's wrapping int32 accumulator (the
 * input zero point folded into the bias modulo 2^32); for 16x8 plan.py only uses this
 * kernel when the int64 accumulator provably stays within int32.
 */
#include <string.h>

#include "ew_fast.h"

/* GCC cannot allocate the DSP loop's registers once it is inlined into its callers. */
#if defined(__GNUC__)
#define EW_NOINLINE __attribute__((noinline))
#else
#define EW_NOINLINE
#endif

static inline int32_t lo16(int32_t v) { return (int32_t)(int16_t)(uint16_t)((uint32_t)v & 0xFFFFu); }
static inline int32_t hi16(int32_t v) { return v >> 16; }
static inline int32_t pack16(int32_t lo, int32_t hi) { return (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFFu)); }

void ew_fcq_gather_s8(const int8_t *const *taps, int32_t n_taps, int32_t tap_len, int32_t n_pairs, int32_t *xw)
{
    int32_t t, i, k = 0;
    if ((tap_len & 3) == 0) {
        for (t = 0; t < n_taps; ++t) {
            const int8_t *x = taps[t];
            for (i = 0; i < tap_len; i += 4) {
#ifdef EW_ARM_DSP
                const int8x4_t v = ew_read_s8x4(x + i);
                xw[k] = __sxtb16(v);
                xw[k + 1] = ew_sxtb16_ror8(v);
#else
                xw[k] = pack16(x[i], x[i + 2]);
                xw[k + 1] = pack16(x[i + 1], x[i + 3]);
#endif
                k += 2;
            }
        }
    } else {
        int8_t q[4];
        int32_t n = 0;
        for (t = 0; t < n_taps; ++t) {
            for (i = 0; i < tap_len; ++i) {
                q[n++] = taps[t][i];
                if (n == 4) {
                    xw[k] = pack16(q[0], q[2]);
                    xw[k + 1] = pack16(q[1], q[3]);
                    k += 2;
                    n = 0;
                }
            }
        }
        if (n > 0) {
            for (; n < 4; ++n) {
                q[n] = 0;
            }
            xw[k] = pack16(q[0], q[2]);
            xw[k + 1] = pack16(q[1], q[3]);
            k += 2;
        }
    }
    for (; k < n_pairs; ++k) {
        xw[k] = 0;
    }
}

void ew_fcq_gather_s16(const int16_t *const *taps, int32_t n_taps, int32_t tap_len, int32_t n_pairs, int32_t *xw)
{
    int32_t t, i, k = 0;
    if ((tap_len & 1) == 0) {
        for (t = 0; t < n_taps; ++t) {
            memcpy(xw + k, taps[t], (size_t)tap_len * sizeof(int16_t));
            k += tap_len >> 1;
        }
    } else {
        int32_t n = 0, first = 0;
        for (t = 0; t < n_taps; ++t) {
            for (i = 0; i < tap_len; ++i) {
                if (n == 0) {
                    first = taps[t][i];
                    n = 1;
                } else {
                    xw[k++] = pack16(first, taps[t][i]);
                    n = 0;
                }
            }
        }
        if (n) {
            xw[k++] = pack16(first, 0);
        }
    }
    for (; k < n_pairs; ++k) {
        xw[k] = 0;
    }
}

/* acc[0..3] += sum_j xw[j] . w[j][0..3] (two 16x16 products per word pair), mod 2^32;
 * n_pairs is even (plan.py pads it). */
EW_NOINLINE static void dot4(const int32_t *xw, int32_t n_pairs, const int32_t *w, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
#if defined(EW_ARM_DSP) && defined(__thumb2__)
    /* 4 pairs (32 MACs) per iteration: 2 LDRD + 4 LDM + 16 SMLAD + loop = 24 instructions. */
    int32_t x0, x1;
    int32_t n4 = n_pairs >> 2;
    if (n4 > 0) {
        __asm__(
            "1:\n\t"
            "ldrd %[x0], %[x1], [%[xp]], #8\n\t"
            "ldmia %[wp]!, {r4, r5, r6, lr}\n\t"
            "smlad %[a0], %[x0], r4, %[a0]\n\t"
            "smlad %[a1], %[x0], r5, %[a1]\n\t"
            "smlad %[a2], %[x0], r6, %[a2]\n\t"
            "smlad %[a3], %[x0], lr, %[a3]\n\t"
            "ldmia %[wp]!, {r4, r5, r6, lr}\n\t"
            "smlad %[a0], %[x1], r4, %[a0]\n\t"
            "smlad %[a1], %[x1], r5, %[a1]\n\t"
            "smlad %[a2], %[x1], r6, %[a2]\n\t"
            "smlad %[a3], %[x1], lr, %[a3]\n\t"
            "ldrd %[x0], %[x1], [%[xp]], #8\n\t"
            "ldmia %[wp]!, {r4, r5, r6, lr}\n\t"
            "smlad %[a0], %[x0], r4, %[a0]\n\t"
            "smlad %[a1], %[x0], r5, %[a1]\n\t"
            "smlad %[a2], %[x0], r6, %[a2]\n\t"
            "smlad %[a3], %[x0], lr, %[a3]\n\t"
            "ldmia %[wp]!, {r4, r5, r6, lr}\n\t"
            "smlad %[a0], %[x1], r4, %[a0]\n\t"
            "smlad %[a1], %[x1], r5, %[a1]\n\t"
            "smlad %[a2], %[x1], r6, %[a2]\n\t"
            "smlad %[a3], %[x1], lr, %[a3]\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x0] "=&r"(x0), [x1] "=&r"(x1),
              [xp] "+r"(xw), [wp] "+r"(w), [n] "+r"(n4)
            :
            : "r4", "r5", "r6", "lr", "cc", "memory");
    }
    if (n_pairs & 2) {
        __asm__(
            "ldrd %[x0], %[x1], [%[xp]]\n\t"
            "ldmia %[wp]!, {r4, r5, r6, lr}\n\t"
            "smlad %[a0], %[x0], r4, %[a0]\n\t"
            "smlad %[a1], %[x0], r5, %[a1]\n\t"
            "smlad %[a2], %[x0], r6, %[a2]\n\t"
            "smlad %[a3], %[x0], lr, %[a3]\n\t"
            "ldmia %[wp]!, {r4, r5, r6, lr}\n\t"
            "smlad %[a0], %[x1], r4, %[a0]\n\t"
            "smlad %[a1], %[x1], r5, %[a1]\n\t"
            "smlad %[a2], %[x1], r6, %[a2]\n\t"
            "smlad %[a3], %[x1], lr, %[a3]\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x0] "=&r"(x0), [x1] "=&r"(x1),
              [wp] "+r"(w)
            : [xp] "r"(xw)
            : "r4", "r5", "r6", "lr", "memory");
    }
#elif defined(EW_ARM_DSP)
    int32_t j;
    for (j = 0; j < n_pairs; ++j) {
        const int32_t x = xw[j];
        a0 = __smlad(x, w[0], a0);
        a1 = __smlad(x, w[1], a1);
        a2 = __smlad(x, w[2], a2);
        a3 = __smlad(x, w[3], a3);
        w += 4;
    }
#else
    int32_t j;
    for (j = 0; j < n_pairs; ++j) {
        const int32_t xl = lo16(xw[j]), xh = hi16(xw[j]);
        a0 = (int32_t)((uint32_t)a0 + (uint32_t)(xl * lo16(w[0]) + xh * hi16(w[0])));
        a1 = (int32_t)((uint32_t)a1 + (uint32_t)(xl * lo16(w[1]) + xh * hi16(w[1])));
        a2 = (int32_t)((uint32_t)a2 + (uint32_t)(xl * lo16(w[2]) + xh * hi16(w[2])));
        a3 = (int32_t)((uint32_t)a3 + (uint32_t)(xl * lo16(w[3]) + xh * hi16(w[3])));
        w += 4;
    }
#endif
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Per group of four outputs, ``chan`` holds 16 words: the four biases, then
 * (m2 or r, add, shift) for each output. */
void ew_fcq_s8(const int32_t *xw, const ew_fcq *p, int8_t *out)
{
    const int32_t *w = p->w;
    const int32_t *ch = p->chan;
    const int32_t n_pairs = p->n_pairs;
    const int32_t lo = p->act_min, hi = p->act_max;
    const int8_t *lut = p->lut ? p->lut + 128 : NULL;
    int32_t o, k;
    for (o = 0; o < p->n_out; o += 4) {
        int32_t acc[4];
        const int32_t n = p->n_out - o < 4 ? p->n_out - o : 4;
        const int32_t *q = ch + 4;
        acc[0] = ch[0];
        acc[1] = ch[1];
        acc[2] = ch[2];
        acc[3] = ch[3];
        dot4(xw, n_pairs, w, acc);
        w += 4 * n_pairs;
        if (lut) {
            for (k = 0; k < n; ++k, q += 3) {
                out[o + k] = lut[ew_clamp_fast(ew_rq_apply_neg(acc[k], q[0], q[1], q[2]), lo, hi)];
            }
        } else {
            for (k = 0; k < n; ++k, q += 3) {
                out[o + k] = (int8_t)ew_clamp_fast(ew_rq_apply_neg(acc[k], q[0], q[1], q[2]), lo, hi);
            }
        }
        ch += 16;
    }
}

void ew_fcq_s16(const int32_t *xw, const ew_fcq *p, int16_t *out)
{
    const int32_t *w = p->w;
    const int32_t *ch = p->chan;
    const int32_t n_pairs = p->n_pairs;
    const int32_t lo = p->act_min, hi = p->act_max;
    const ew_t16q *t = p->t16;
    int32_t o, k;
    for (o = 0; o < p->n_out; o += 4) {
        int32_t acc[4];
        const int32_t n = p->n_out - o < 4 ? p->n_out - o : 4;
        const int32_t *q = ch + 4;
        acc[0] = ch[0];
        acc[1] = ch[1];
        acc[2] = ch[2];
        acc[3] = ch[3];
        dot4(xw, n_pairs, w, acc);
        w += 4 * n_pairs;
        if (t) {
            for (k = 0; k < n; ++k, q += 3) {
                out[o + k] = (int16_t)ew_t16_apply(ew_clamp_fast(ew_smmla(acc[k], q[0], q[1]) >> q[2], lo, hi), t);
            }
        } else {
            for (k = 0; k < n; ++k, q += 3) {
                out[o + k] = (int16_t)ew_clamp_fast(ew_smmla(acc[k], q[0], q[1]) >> q[2], lo, hi);
            }
        }
        ch += 16;
    }
}
