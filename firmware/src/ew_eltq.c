/*
 * ew_eltq.c - prepared elementwise kernels: ADD, MUL, RELU/QUANTIZE (int16), int16
 * TANH/LOGISTIC, with the same results as ew_add_*, ew_mul_*, ew_requant_s16,
 * ew_tanh_s16 / ew_logistic_s16 (constants from edgewave/emit/plan.py; see
 * edgewave_rt.h). Each requantization is one 32x32 high multiply with rounding
 * (SMMLAR) and a shift instead of TFLM's two separate rounding steps.
 */
#include "ew_fast.h"

/* ADD in two passes over chunks of up to 16 elements, so that each pass's constants
 * stay in registers: t = rescaled a + rescaled b, then out = clamp(rescaled t).
 * plan.py gives every ew_rq of an ADD neg = -1 (an input with multiplier exactly 1/2,
 * mult 2^30 and shift 0, becomes m2 0, add 1, shift 1: (x + 1 + (x < 0 ? -1 : 0)) >> 1
 * is x / 2 for the even x = (a - zp) << left_shift). */
#define EW_ADD_CHUNK 16

#define EW_ADDQ_BODY(T)                                                                                  \
    const int32_t sh = p->left_shift;                                                                    \
    const uint32_t za = (uint32_t)p->zp_a << sh, zb = (uint32_t)p->zp_b << sh;                           \
    const int32_t ma = p->a.m2, aa = p->a.add, ea = p->a.shift;                                          \
    const int32_t mb = p->b.m2, ab = p->b.add, eb = p->b.shift;                                          \
    const int32_t mo = p->out.m2, ao = p->out.add, eo = p->out.shift;                                    \
    const int32_t lo = p->act_min, hi = p->act_max;                                                      \
    int32_t t[EW_ADD_CHUNK];                                                                             \
    int32_t i0, i, m;                                                                                    \
    for (i0 = 0; i0 < n; i0 += m) {                                                                      \
        m = n - i0 < EW_ADD_CHUNK ? n - i0 : EW_ADD_CHUNK;                                               \
        for (i = 0; i < m; ++i) {                                                                        \
            const int32_t xa = (int32_t)(((uint32_t)(int32_t)a[i0 + i] << sh) - za);                     \
            const int32_t xb = (int32_t)(((uint32_t)(int32_t)b[i0 + i] << sh) - zb);                     \
            t[i] = ew_rq_apply_neg(xa, ma, aa, ea) + ew_rq_apply_neg(xb, mb, ab, eb);                    \
        }                                                                                                \
        for (i = 0; i < m; ++i) {                                                                        \
            out[i0 + i] = (T)ew_clamp_fast(ew_rq_apply_neg(t[i], mo, ao, eo), lo, hi);                   \
        }                                                                                                \
    }

void ew_addq_s8(const int8_t *a, const int8_t *b, int32_t n, const ew_addq *p, int8_t *out)
{
    EW_ADDQ_BODY(int8_t)
}

void ew_addq_s16(const int16_t *a, const int16_t *b, int32_t n, const ew_addq *p, int16_t *out)
{
    EW_ADDQ_BODY(int16_t)
}

void ew_mulq_s8(const int8_t *a, const int8_t *b, int32_t n, const ew_mulq *p, int8_t *out)
{
    const ew_rq q = p->out;
    const int32_t za = p->zp_a, zb = p->zp_b, lo = p->act_min, hi = p->act_max;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t prod = (a[i] - za) * (b[i] - zb);
        out[i] = (int8_t)ew_clamp_fast(ew_rq_apply(prod, &q), lo, hi);
    }
}

void ew_mulq_s16(const int16_t *a, const int16_t *b, int32_t n, const ew_mulq *p, int16_t *out)
{
    const ew_rq q = p->out;
    const int32_t lo = p->act_min, hi = p->act_max;
    int32_t i;
    for (i = 0; i < n; ++i) {
        /* (-32768)^2 = 2^30 still fits int32 */
        const int32_t prod = (int32_t)a[i] * (int32_t)b[i];
        out[i] = (int16_t)ew_clamp_fast(ew_rq_apply(prod, &q), lo, hi);
    }
}

void ew_requantq_s16(const int16_t *x, int32_t n, const ew_rq *q, int32_t act_min, int32_t act_max, int16_t *out)
{
    const ew_rq qq = *q;
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = (int16_t)ew_clamp_fast(ew_rq_apply(x[i], &qq), act_min, act_max);
    }
}

void ew_t16q_s16(const int16_t *x, int32_t n, const ew_t16q *t, int16_t *out)
{
    const ew_t16q tt = *t;
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = (int16_t)ew_t16_apply(x[i], &tt);
    }
}
