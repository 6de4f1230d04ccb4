/*
 * ew_eltq.c - prepared elementwise kernels: ADD, MUL, RELU/QUANTIZE (int16), int16
 * TANH/LOGISTIC, with the same results as ew_add_*, ew_mul_*, ew_requant_s16,
 * ew_tanh_s16 / ew_logistic_s16 (constants from edgewave/emit/pack.py; see
 * edgewave_rt.h). Each requantization is one 32x32 high multiply with rounding
 * (SMMLAR) and a shift instead of TFLM's two separate rounding steps.
 */
#include "ew_assert.h"

#include "ew_fast.h"

/* Debug-build checks of the documented preconditions (edgewave_rt.h). */
#define EW_SHIFT_OK(e) ((e) >= 0 && (e) <= 31)
#define EW_ADDIN_OK(q) (EW_SHIFT_OK((q).sh) && EW_SHIFT_OK((q).e) && ((q).neg == 0 || (q).neg == -1))

/* ADD: per element two loads, the input that is not an exact halving as one SMMLAR, the
 * halving as a shift folded into the sum, the output as one SMMLAR (edgewave_rt.h). */
EW_INLINE int32_t addin_any(int32_t x, const ew_addin *q)
{
    const int32_t d = x - q->zp;
    return ew_smmlar((int32_t)((uint32_t)d << q->sh), q->mult, (int32_t)((uint32_t)q->c + (uint32_t)(ew_sign(d) & q->neg))) >> q->e;
}

/* e >= 1, neg -1, for d = x - zp; sh is left_shift + 1 (a constant per type) */
EW_INLINE int32_t addin_e(int32_t d, const int sh, int32_t mult, int32_t c, int32_t e)
{
    return ew_smmlar((int32_t)((uint32_t)d << sh), mult, c + ew_sign(d)) >> e;
}

/* ZP: subtract zero points (int8; int16 has none). SH: left_shift + 1. */
#define EW_ADDQ_BODY(T, BITS, SH, ZP)                                                                      \
    const int32_t m2 = p->mult_x2, add = p->add, sh = p->shift;                                            \
    int32_t i;                                                                                             \
    assert(n >= 0 && (n == 0 || (a != NULL && b != NULL && out != NULL)));                                 \
    assert(p->mode >= EW_ADDQ_HALVE_B && p->mode <= EW_ADDQ_ANY);                                          \
    assert(EW_SHIFT_OK(sh) && EW_ADDIN_OK(p->a) && EW_ADDIN_OK(p->b));                                     \
    assert(p->mode != EW_ADDQ_HALVE_B || p->a.e >= 1);                                                     \
    assert(p->mode != EW_ADDQ_HALVE_A || p->b.e >= 1);                                                     \
    if (p->mode == EW_ADDQ_HALVE_B) {                                                                      \
        const int32_t zp = ZP ? p->a.zp : 0, mult = p->a.mult, c = p->a.c, e = p->a.e;                    \
        for (i = 0; i < n; ++i) {                                                                          \
            const int32_t s = (int32_t)((uint32_t)addin_e(a[i] - zp, SH, mult, c, e) + ((uint32_t)b[i] << (SH - 2))); \
            out[i] = (T)EW_SSAT(ew_rq_apply_neg(s, m2, add, sh), BITS);                                    \
        }                                                                                                  \
    } else if (p->mode == EW_ADDQ_HALVE_A) {                                                               \
        const int32_t zp = ZP ? p->b.zp : 0, mult = p->b.mult, c = p->b.c, e = p->b.e;                    \
        for (i = 0; i < n; ++i) {                                                                          \
            const int32_t s = (int32_t)(((uint32_t)a[i] << (SH - 2)) + (uint32_t)addin_e(b[i] - zp, SH, mult, c, e)); \
            out[i] = (T)EW_SSAT(ew_rq_apply_neg(s, m2, add, sh), BITS);                                    \
        }                                                                                                  \
    } else {                                                                                               \
        const ew_addin qa = p->a, qb = p->b;                                                               \
        const int32_t lo = p->act_min, hi = p->act_max;                                                    \
        for (i = 0; i < n; ++i) {                                                                          \
            const int32_t s = (int32_t)((uint32_t)addin_any(a[i], &qa) + (uint32_t)addin_any(b[i], &qb));  \
            out[i] = (T)ew_clamp_fast(ew_rq_apply_neg(s, m2, add, sh), lo, hi);                            \
        }                                                                                                  \
    }

void ew_addq_s8(const int8_t *a, const int8_t *b, int32_t n, const ew_addq *p, int8_t *out)
{
    EW_ADDQ_BODY(int8_t, 8, 21, 1)
}

void ew_addq_s16(const int16_t *a, const int16_t *b, int32_t n, const ew_addq *p, int16_t *out)
{
    EW_ADDQ_BODY(int16_t, 16, 16, 0)
}

void ew_mulq_s8(const int8_t *a, const int8_t *b, int32_t n, const ew_mulq *p, int8_t *out)
{
    assert(n >= 0 && p != NULL && (n == 0 || (a != NULL && b != NULL && out != NULL)));
    assert(EW_SHIFT_OK(p->out.shift));
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
    assert(n >= 0 && p != NULL && (n == 0 || (a != NULL && b != NULL && out != NULL)));
    assert(EW_SHIFT_OK(p->out.shift) && p->zp_a == 0 && p->zp_b == 0);
    const ew_rq q = p->out;
    const int32_t lo = p->act_min, hi = p->act_max;
    int32_t i;
    for (i = 0; i < n; ++i) {
        /* (-32768)^2 = 2^30 still fits int32 */
        const int32_t prod = (int32_t)a[i] * (int32_t)b[i];
        out[i] = (int16_t)ew_clamp_fast(ew_rq_apply(prod, &q), lo, hi);
    }
}

void ew_requantq_s16(const int16_t *x, int32_t n, const ew_rq *q, int32_t pre, int32_t act_min, int32_t act_max, int16_t *out)
{
    assert(n >= 0 && q != NULL && (n == 0 || (x != NULL && out != NULL)));
    assert(EW_SHIFT_OK(q->shift) && EW_SHIFT_OK(pre));
    const ew_rq qq = *q;
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = (int16_t)ew_clamp_fast(ew_rq_apply((int32_t)((uint32_t)(int32_t)x[i] << pre), &qq), act_min, act_max);
    }
}

/* The same into int8: an int8 model's 16-bit input stage narrowed (QUANTIZE int16 -> int8). */
void ew_requantq_s16_s8(const int16_t *x, int32_t n, const ew_rq *q, int32_t pre, int32_t act_min, int32_t act_max, int8_t *out)
{
    assert(n >= 0 && q != NULL && (n == 0 || (x != NULL && out != NULL)));
    assert(EW_SHIFT_OK(q->shift) && EW_SHIFT_OK(pre));
    const ew_rq qq = *q;
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = (int8_t)ew_clamp_fast(ew_rq_apply((int32_t)((uint32_t)(int32_t)x[i] << pre), &qq), act_min, act_max);
    }
}

void ew_t16q_s16(const int16_t *x, int32_t n, const ew_t16q *t, int16_t *out)
{
    assert(n >= 0 && t != NULL && (n == 0 || (x != NULL && out != NULL)));
    assert((t->kind == 1 || t->kind == 2) && EW_SHIFT_OK(t->shift));
    const int32_t m = t->mult, r = t->round, sh = t->shift;
    int32_t i;
#ifndef NDEBUG
    for (i = 0; i < n; ++i) { /* valid while |x| * mult + round < 2^31 */
        assert((x[i] < 0 ? -(int64_t)x[i] : (int64_t)x[i]) * (m < 0 ? -(int64_t)m : (int64_t)m) + r < ((int64_t)1 << 31));
    }
#endif
    if (t->kind == 1) {
        for (i = 0; i < n; ++i) {
            out[i] = (int16_t)ew_tanh16_v((x[i] * m + r) >> sh, EW_TANH16_TABLE);
        }
    } else {
        for (i = 0; i < n; ++i) {
            out[i] = (int16_t)ew_logistic16_v((x[i] * m + r) >> sh, EW_TANH16_TABLE);
        }
    }
}
