/*
 * ew_fcq.c - prepared FULLY_CONNECTED (int8 and 16x8), alone or fused with what reads
 * it (an elementwise function, a gated tanh * sigmoid unit, a residual ADD): the same
 * results as ew_fc_* followed by ew_tanh_s16 / ew_logistic_s16 / ew_lut_s8, ew_mul_*,
 * ew_add_*, from constants arranged at emit time (edgewave/emit/pack.py; layout in
 * edgewave_rt.h).
 *
 * Weights are stored pre-widened to int16 and interleaved four outputs at a time, so
 * that on Armv7E-M / Armv8-M each 32-bit weight load feeds one SMLAD (two MACs) with no
 * unpacking and each input pair is loaded once per four outputs; the four accumulators
 * stay in registers from the bias to the stored result, which is what the fusions buy:
 * no intermediate vector is written, read back, or requantized twice.
 * Accumulation is in int32: for int8 exactly TFLM's wrapping int32 accumulator (the
 * input zero point folded into the bias modulo 2^32); for 16x8 pack.py only uses these
 * kernels when the int64 accumulator provably stays within int32.
 */
#include "ew_assert.h"
#include <string.h>

#include "ew_fast.h"

/* Debug-build checks of the documented layout (edgewave_rt.h): n_pairs even and >= 2,
 * the weight stream and outputs present, the entry point's mode the struct's. */
#define EW_FCQ_OK(p, x, out, md)                                                                    \
    assert((p) != NULL && (p)->w != NULL && (x) != NULL && (p)->n_out >= 0 && (p)->n_pairs >= 2 &&    \
           (p)->n_pairs % 2 == 0 && ((p)->n_out == 0 || (out) != NULL) && (p)->mode == (md))
#define EW_SHIFT_OK(e) ((e) >= 0 && (e) <= 31)
/* int16 inputs are read as 4-byte pairs */
#define EW_ALIGNED4_OK(x) (((uintptr_t)(const void *)(x) & 3u) == 0u)

/* ---- gathers ------------------------------------------------------------------------ */

static inline int32_t pack16(int32_t lo, int32_t hi) { return (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFFu)); }

void ew_gather_s8(const int8_t *const *taps, int32_t n_taps, int32_t tap_len, int32_t n_pairs, int32_t *xw)
{
    int32_t t, i, k = 0;
    assert(n_taps >= 0 && tap_len >= 0 && (n_taps == 0 || taps != NULL) && xw != NULL);
    assert(n_pairs >= 2 && n_pairs % 2 == 0 && (int64_t)n_taps * tap_len <= 2 * (int64_t)n_pairs);
    if ((tap_len & 3) == 0 && tap_len > 0 && n_taps > 0) {
#if defined(EW_ARM_DSP) && defined(__thumb2__)
        /* 6 instructions per 4 inputs (GCC's loop took 9); unaligned LDR is allowed */
        const int8_t *const *tp = taps;
        const int32_t nw = tap_len >> 2;
        int32_t nt = n_taps, n, v, a, b;
        const int8_t *x;
        int32_t *o = xw;
        __asm__ volatile(
            "1:\n\t"
            "ldr %[x], [%[tp]], #4\n\t"
            "mov %[n], %[nw]\n\t"
            "2:\n\t"
            "ldr %[v], [%[x]], #4\n\t"
            "sxtb16 %[a], %[v]\n\t"
            "sxtb16 %[b], %[v], ror #8\n\t"
            "strd %[a], %[b], [%[o]], #8\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 2b\n\t"
            "subs %[nt], %[nt], #1\n\t"
            "bne 1b\n\t"
            : [tp] "+r"(tp), [nt] "+r"(nt), [o] "+r"(o), [x] "=&r"(x), [n] "=&r"(n), [v] "=&r"(v), [a] "=&r"(a),
              [b] "=&r"(b)
            : [nw] "r"(nw)
            : "cc", "memory");
        xw = o;
#else
        for (t = 0; t < n_taps; ++t) {
            const int8_t *x = taps[t], *end = x + tap_len;
            for (; x != end; x += 4) {
                xw[0] = pack16(x[0], x[2]);
                xw[1] = pack16(x[1], x[3]);
                xw += 2;
            }
        }
#endif
        k = tap_len * n_taps / 2;
    } else {
        /* element i goes to word 2 * (i / 4) + (i & 1), half (i >> 1) & 1 */
        for (k = 0; k < n_pairs; ++k) {
            xw[k] = 0;
        }
        k = 0;
        for (t = 0; t < n_taps; ++t) {
            for (i = 0; i < tap_len; ++i, ++k) {
                xw[2 * (k >> 2) + (k & 1)] |= (int32_t)(((uint32_t)taps[t][i] & 0xFFFFu) << (16 * ((k >> 1) & 1)));
            }
        }
        return;
    }
    for (; k < n_pairs; ++k) {
        *xw++ = 0;
    }
}

/* ---- the dot products ----------------------------------------------------------------- */

#ifdef EW_DOT_ASM
#define DOT4_S16(x, n_pairs, w, a0, a1, a2, a3) EW_DOT4_ASM(x, n_pairs, w, a0, a1, a2, a3)
#define DOT4_W(xw, n_pairs, w, a0, a1, a2, a3) EW_DOT4_ASM(xw, n_pairs, w, a0, a1, a2, a3)
#elif defined(__SSE2__) && !defined(EW_FORCE_PORTABLE)
/* Desktop builds (every x86-64 has SSE2): PMADDWD is SMLAD on four outputs at once — the
 * same two 16x16 products summed in 32 bits, accumulated modulo 2^32 — so simulating the
 * device on the host stays bit-exact and fast. */
#include <emmintrin.h>

/* Pair j is the 4 bytes at offset 4j of x: int16 inputs and 16-bit-pair words alike. */
static const int32_t *dot4_pairs(const void *x, int32_t n_pairs, const int32_t *w, int32_t *a0, int32_t *a1,
                                 int32_t *a2, int32_t *a3)
{
    const unsigned char *xb = (const unsigned char *)x;
    __m128i acc = _mm_loadu_si128((const __m128i *)(const void *)w), acc2 = _mm_setzero_si128();
    int32_t j, x0, x1, r[4];
    for (j = 0, w += 4; j + 1 < n_pairs; j += 2, w += 8) {
        memcpy(&x0, xb + 4 * j, sizeof x0);
        memcpy(&x1, xb + 4 * j + 4, sizeof x1);
        acc = _mm_add_epi32(acc, _mm_madd_epi16(_mm_set1_epi32(x0), _mm_loadu_si128((const __m128i *)(const void *)w)));
        acc2 = _mm_add_epi32(acc2, _mm_madd_epi16(_mm_set1_epi32(x1),
                                                  _mm_loadu_si128((const __m128i *)(const void *)(w + 4))));
    }
    if (j < n_pairs) {
        memcpy(&x0, xb + 4 * j, sizeof x0);
        acc = _mm_add_epi32(acc, _mm_madd_epi16(_mm_set1_epi32(x0), _mm_loadu_si128((const __m128i *)(const void *)w)));
        w += 4;
    }
    _mm_storeu_si128((__m128i *)(void *)r, _mm_add_epi32(acc, acc2));
    *a0 = r[0];
    *a1 = r[1];
    *a2 = r[2];
    *a3 = r[3];
    return w;
}
#define DOT4_S16(x, n_pairs, w, a0, a1, a2, a3) ((w) = dot4_pairs(x, n_pairs, w, &(a0), &(a1), &(a2), &(a3)))
#define DOT4_W(xw, n_pairs, w, a0, a1, a2, a3) ((w) = dot4_pairs(xw, n_pairs, w, &(a0), &(a1), &(a2), &(a3)))
#else
static inline int32_t lo16(int32_t v) { return (int32_t)(int16_t)(uint16_t)((uint32_t)v & 0xFFFFu); }
static inline int32_t hi16(int32_t v) { return v >> 16; }
static inline int32_t mac2(int32_t acc, int32_t xl, int32_t xh, int32_t w)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(xl * lo16(w) + xh * hi16(w)));
}

/* biases, then a_k += sum_j (x[2j], x[2j+1]) . w[4j + k]; returns w past the weights */
static const int32_t *dot4_s16(const int16_t *x, int32_t n_pairs, const int32_t *w, int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    int32_t j;
    *a0 = w[0];
    *a1 = w[1];
    *a2 = w[2];
    *a3 = w[3];
    for (j = 0, w += 4; j < n_pairs; ++j, w += 4) {
        const int32_t xl = x[2 * j], xh = x[2 * j + 1];
        *a0 = mac2(*a0, xl, xh, w[0]);
        *a1 = mac2(*a1, xl, xh, w[1]);
        *a2 = mac2(*a2, xl, xh, w[2]);
        *a3 = mac2(*a3, xl, xh, w[3]);
    }
    return w;
}

/* the same with the inputs as words (lo16(xw[j]), hi16(xw[j])) */
static const int32_t *dot4_w(const int32_t *xw, int32_t n_pairs, const int32_t *w, int32_t *a0, int32_t *a1, int32_t *a2, int32_t *a3)
{
    int32_t j;
    *a0 = w[0];
    *a1 = w[1];
    *a2 = w[2];
    *a3 = w[3];
    for (j = 0, w += 4; j < n_pairs; ++j, w += 4) {
        const int32_t xl = lo16(xw[j]), xh = hi16(xw[j]);
        *a0 = mac2(*a0, xl, xh, w[0]);
        *a1 = mac2(*a1, xl, xh, w[1]);
        *a2 = mac2(*a2, xl, xh, w[2]);
        *a3 = mac2(*a3, xl, xh, w[3]);
    }
    return w;
}
#define DOT4_S16(x, n_pairs, w, a0, a1, a2, a3) ((w) = dot4_s16(x, n_pairs, w, &(a0), &(a1), &(a2), &(a3)))
#define DOT4_W(xw, n_pairs, w, a0, a1, a2, a3) ((w) = dot4_w(xw, n_pairs, w, &(a0), &(a1), &(a2), &(a3)))
#endif

/* The last group of four may be partial. */
#define STORE4(T, out, n, y0, y1, y2, y3)       \
    do {                                        \
        (out)[0] = (T)(y0);                     \
        if ((n) >= 4) {                         \
            (out)[1] = (T)(y1);                 \
            (out)[2] = (T)(y2);                 \
            (out)[3] = (T)(y3);                 \
        } else {                                \
            if ((n) > 1) {                      \
                (out)[1] = (T)(y1);             \
            }                                   \
            if ((n) > 2) {                      \
                (out)[2] = (T)(y2);             \
            }                                   \
        }                                       \
    } while (0)

/* ---- int16 ------------------------------------------------------------------------------- */

typedef struct {
    int32_t lo, hi, ts, tm, round;
    const int32_t *tbl;
} post16_k;

EW_INLINE int32_t post16(int32_t acc, int32_t r, const post16_k *k, const int mode)
{
    if (mode == EW_FCQ_WIDE) {
        return EW_SSAT((ew_smmul(acc, r) + k->round) >> k->ts, 16);
    }
    int32_t y = ew_smmulr(acc, r);
    if (mode == EW_FCQ_CLAMP) {
        return ew_clamp_fast(y, k->lo, k->hi);
    }
    if (mode == EW_FCQ_USAT) {
        return EW_USAT(y, 15);
    }
    y = EW_SSAT(y, 16);
    if (mode == EW_FCQ_TANH) {
        return ew_tanh16_v(ew_t16_in(y, k->ts, k->tm), k->tbl);
    }
    if (mode == EW_FCQ_LOGISTIC) {
        return ew_logistic16_v(ew_t16_in(y, k->ts, k->tm), k->tbl);
    }
    return y;
}

/* int16 groups end with the four multipliers r. */
EW_INLINE void fcq_s16(const int16_t *x, const ew_fcq *p, int16_t *out, const int mode)
{
    EW_FCQ_OK(p, x, out, mode);
    assert(EW_ALIGNED4_OK(x));
    assert((mode != EW_FCQ_TANH && mode != EW_FCQ_LOGISTIC) || EW_SHIFT_OK(p->t_shift));
    assert(mode != EW_FCQ_WIDE || (p->t_shift >= 1 && p->t_shift <= 31));
    const int32_t *w = p->w;
    const int32_t n_pairs = p->n_pairs;
    post16_k k;
    int32_t left;
    k.lo = p->act_min;
    k.hi = p->act_max;
    k.ts = p->t_shift;
    k.tm = p->t_mult;
    k.round = mode == EW_FCQ_WIDE ? (int32_t)(1u << (p->t_shift - 1)) : 0;
    k.tbl = EW_TANH16_TABLE;
    for (left = p->n_out; left > 0; left -= 4) {
        int32_t a0, a1, a2, a3;
        DOT4_S16(x, n_pairs, w, a0, a1, a2, a3);
        a0 = post16(a0, w[0], &k, mode);
        a1 = post16(a1, w[1], &k, mode);
        a2 = post16(a2, w[2], &k, mode);
        a3 = post16(a3, w[3], &k, mode);
        STORE4(int16_t, out, left, a0, a1, a2, a3);
        out += 4;
        w += 4;
    }
}

/* One entry point per mode, so that a model links only the instances it calls. */
void ew_fcq_sat_s16(const int16_t *x, const ew_fcq *p, int16_t *out) { fcq_s16(x, p, out, EW_FCQ_SAT); }
void ew_fcq_clamp_s16(const int16_t *x, const ew_fcq *p, int16_t *out) { fcq_s16(x, p, out, EW_FCQ_CLAMP); }
void ew_fcq_usat_s16(const int16_t *x, const ew_fcq *p, int16_t *out) { fcq_s16(x, p, out, EW_FCQ_USAT); }
void ew_fcq_tanh_s16(const int16_t *x, const ew_fcq *p, int16_t *out) { fcq_s16(x, p, out, EW_FCQ_TANH); }
void ew_fcq_logistic_s16(const int16_t *x, const ew_fcq *p, int16_t *out) { fcq_s16(x, p, out, EW_FCQ_LOGISTIC); }
void ew_fcq_wide_s16(const int16_t *x, const ew_fcq *p, int16_t *out) { fcq_s16(x, p, out, EW_FCQ_WIDE); }

void ew_fcq_s16(const int16_t *x, const ew_fcq *p, int16_t *out)
{
    assert(p != NULL && ((p->mode >= EW_FCQ_SAT && p->mode <= EW_FCQ_LOGISTIC) || p->mode == EW_FCQ_WIDE));
    switch (p->mode) {
    case EW_FCQ_WIDE:
        ew_fcq_wide_s16(x, p, out);
        break;
    case EW_FCQ_CLAMP:
        ew_fcq_clamp_s16(x, p, out);
        break;
    case EW_FCQ_USAT:
        ew_fcq_usat_s16(x, p, out);
        break;
    case EW_FCQ_TANH:
        ew_fcq_tanh_s16(x, p, out);
        break;
    case EW_FCQ_LOGISTIC:
        ew_fcq_logistic_s16(x, p, out);
        break;
    default:
        ew_fcq_sat_s16(x, p, out);
        break;
    }
}

/* One side of a gated unit: requantize, clamp, table input with t_shift 16, TANH or
 * LOGISTIC through the interleaved table (one base for both). */
EW_INLINE int32_t gate16_f(int32_t acc, int32_t r, int32_t tm, const int32_t *tbl, const int logistic)
{
    const int32_t v = ew_smmulr((int32_t)((uint32_t)EW_SSAT(ew_smmulr(acc, r), 16) << 16), tm);
    return logistic ? ew_logistic16_v(v, tbl) : ew_tanh16_v(v, tbl);
}

EW_INLINE void gateq_s16(const int16_t *x, const ew_gateq *p, int16_t *out, const int mode)
{
    EW_FCQ_OK(p, x, out, mode);
    assert(EW_ALIGNED4_OK(x) && EW_SHIFT_OK(p->shift));
    const int32_t *w = p->w;
    const int32_t n_pairs = p->n_pairs;
    const int32_t am = p->a_mult, bm = p->b_mult;
    const int32_t m2 = p->rq_mult, add = p->add, sh = p->shift;
    const int la = mode == EW_GATE_LOGISTIC_LOGISTIC, lb = mode != EW_GATE_TANH_TANH;
    const int32_t *tbl = EW_TANH16_TABLE;
    int32_t left;
    for (left = p->n_out; left > 0; left -= 2) {
        int32_t a0, a1, b0, b1;
        DOT4_S16(x, n_pairs, w, a0, a1, b0, b1);
        /* |f|, |g| <= 32768: the products fit int32 */
        a0 = gate16_f(a0, w[0], am, tbl, la) * gate16_f(b0, w[2], bm, tbl, lb);
        out[0] = (int16_t)EW_SSAT(ew_rq_apply_neg(a0, m2, add, sh), 16);
        if (left >= 2) {
            a1 = gate16_f(a1, w[1], am, tbl, la) * gate16_f(b1, w[3], bm, tbl, lb);
            out[1] = (int16_t)EW_SSAT(ew_rq_apply_neg(a1, m2, add, sh), 16);
        }
        out += 2;
        w += 4;
    }
}

void ew_gateq_tl_s16(const int16_t *x, const ew_gateq *p, int16_t *out) { gateq_s16(x, p, out, EW_GATE_TANH_LOGISTIC); }
void ew_gateq_tt_s16(const int16_t *x, const ew_gateq *p, int16_t *out) { gateq_s16(x, p, out, EW_GATE_TANH_TANH); }
void ew_gateq_ll_s16(const int16_t *x, const ew_gateq *p, int16_t *out) { gateq_s16(x, p, out, EW_GATE_LOGISTIC_LOGISTIC); }

void ew_gateq_s16(const int16_t *x, const ew_gateq *p, int16_t *out)
{
    assert(p != NULL && p->mode >= EW_GATE_TANH_LOGISTIC && p->mode <= EW_GATE_LOGISTIC_LOGISTIC);
    switch (p->mode) {
    case EW_GATE_TANH_TANH:
        ew_gateq_tt_s16(x, p, out);
        break;
    case EW_GATE_LOGISTIC_LOGISTIC:
        ew_gateq_ll_s16(x, p, out);
        break;
    default:
        ew_gateq_tl_s16(x, p, out);
        break;
    }
}

/* One int16 ADD input (ew_addin, zero point 0) in the general form: x << 16 is the
 * (x - zp) << (left_shift + 1) of the formula. */
EW_INLINE int32_t addin16(int32_t x, const ew_addin *q)
{
    return ew_smmlar((int32_t)((uint32_t)x << 16), q->mult, (int32_t)((uint32_t)q->c + (uint32_t)(ew_sign(x) & q->neg))) >> q->e;
}

/* The same for e >= 1 (neg = -1 needs no mask). */
EW_INLINE int32_t addin16_neg(int32_t x, int32_t mult, int32_t c, int32_t e)
{
    return ew_smmlar((int32_t)((uint32_t)x << 16), mult, c + ew_sign(x)) >> e;
}

/* The fully-connected output y clamped as the layer clamps it. */
EW_INLINE int32_t fc16_y(int32_t acc, int32_t r, const ew_addfcq *p, const int mode)
{
    const int32_t y = ew_smmulr(acc, r);
    return mode == EW_ADDFC_ANY || mode == EW_ADDFC_HALVE_BOTH ? ew_clamp_fast(y, p->fc_min, p->fc_max)
                                                              : EW_SSAT(y, 16);
}

/* ADD(y, other) for the clamped y; an exact halving is x << 14. */
EW_INLINE int32_t add16(int32_t y, int32_t other, const ew_addfcq *p, const int mode)
{
    int32_t s;
    if (mode == EW_ADDFC_HALVE_O) {
        s = (int32_t)((uint32_t)addin16_neg(y, p->f.mult, p->f.c, p->f.e) + ((uint32_t)other << 14));
    } else if (mode == EW_ADDFC_HALVE_F) {
        s = (int32_t)(((uint32_t)y << 14) + (uint32_t)addin16_neg(other, p->o.mult, p->o.c, p->o.e));
    } else if (mode == EW_ADDFC_HALVE_BOTH) {
        s = (int32_t)((uint32_t)(y + other) << 14);
    } else {
        s = (int32_t)((uint32_t)addin16(y, &p->f) + (uint32_t)addin16(other, &p->o));
    }
    s = ew_rq_apply_neg(s, p->rq_mult, p->add, p->shift);
    return mode == EW_ADDFC_ANY || mode == EW_ADDFC_HALVE_BOTH ? ew_clamp_fast(s, p->act_min, p->act_max)
                                                              : EW_SSAT(s, 16);
}

#define ADD16_OUT(k, acc)                                  \
    do {                                                   \
        const int32_t y_ = fc16_y(acc, w[k], p, mode);     \
        if (store_y) {                                     \
            yo[k] = (int16_t)y_;                           \
        }                                                  \
        out[k] = (int16_t)add16(y_, other[k], p, mode);    \
    } while (0)

EW_INLINE void addfcq_s16(const int16_t *x, const ew_addfcq *pp, const int16_t *other, int16_t *out, int16_t *yo,
                          const int mode, const int store_y)
{
    EW_FCQ_OK(pp, x, out, mode);
    assert(EW_ALIGNED4_OK(x) && other != NULL && (!store_y || yo != NULL) && EW_SHIFT_OK(pp->shift));
    assert(EW_SHIFT_OK(pp->f.e) && EW_SHIFT_OK(pp->o.e));
    assert(mode != EW_ADDFC_HALVE_O || pp->f.e >= 1);
    assert(mode != EW_ADDFC_HALVE_F || pp->o.e >= 1);
    /* a local copy: the dot product's memory clobber would otherwise reload every field */
    const ew_addfcq k = *pp, *p = &k;
    const int32_t *w = p->w;
    const int32_t n_pairs = p->n_pairs;
    int32_t left;
    for (left = p->n_out; left > 0; left -= 4) {
        int32_t a0, a1, a2, a3;
        DOT4_S16(x, n_pairs, w, a0, a1, a2, a3);
        ADD16_OUT(0, a0);
        if (left >= 4) {
            ADD16_OUT(1, a1);
            ADD16_OUT(2, a2);
            ADD16_OUT(3, a3);
        } else {
            if (left > 1) {
                ADD16_OUT(1, a1);
            }
            if (left > 2) {
                ADD16_OUT(2, a2);
            }
        }
        other += 4;
        out += 4;
        if (store_y) {
            yo += 4;
        }
        w += 4;
    }
}

void ew_addfcq_halve_o_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out)
{
    addfcq_s16(x, p, other, out, NULL, EW_ADDFC_HALVE_O, 0);
}

void ew_addfcq_halve_f_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out)
{
    addfcq_s16(x, p, other, out, NULL, EW_ADDFC_HALVE_F, 0);
}

void ew_addfcq_any_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out)
{
    addfcq_s16(x, p, other, out, NULL, EW_ADDFC_ANY, 0);
}

void ew_addfcq_halve_both_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out)
{
    addfcq_s16(x, p, other, out, NULL, EW_ADDFC_HALVE_BOTH, 0);
}

void ew_addfcq_y_halve_o_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out, int16_t *y_out)
{
    addfcq_s16(x, p, other, out, y_out, EW_ADDFC_HALVE_O, 1);
}

void ew_addfcq_y_halve_f_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out, int16_t *y_out)
{
    addfcq_s16(x, p, other, out, y_out, EW_ADDFC_HALVE_F, 1);
}

void ew_addfcq_y_any_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out, int16_t *y_out)
{
    addfcq_s16(x, p, other, out, y_out, EW_ADDFC_ANY, 1);
}

void ew_addfcq_y_halve_both_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out,
                                int16_t *y_out)
{
    addfcq_s16(x, p, other, out, y_out, EW_ADDFC_HALVE_BOTH, 1);
}

void ew_addfcq_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out)
{
    assert(p != NULL && p->mode >= EW_ADDFC_HALVE_O && p->mode <= EW_ADDFC_HALVE_BOTH);
    switch (p->mode) {
    case EW_ADDFC_HALVE_O:
        ew_addfcq_halve_o_s16(x, p, other, out);
        break;
    case EW_ADDFC_HALVE_F:
        ew_addfcq_halve_f_s16(x, p, other, out);
        break;
    case EW_ADDFC_HALVE_BOTH:
        ew_addfcq_halve_both_s16(x, p, other, out);
        break;
    default:
        ew_addfcq_any_s16(x, p, other, out);
        break;
    }
}

void ew_addfcq_y_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out, int16_t *y_out)
{
    assert(p != NULL && p->mode >= EW_ADDFC_HALVE_O && p->mode <= EW_ADDFC_HALVE_BOTH);
    switch (p->mode) {
    case EW_ADDFC_HALVE_O:
        ew_addfcq_y_halve_o_s16(x, p, other, out, y_out);
        break;
    case EW_ADDFC_HALVE_F:
        ew_addfcq_y_halve_f_s16(x, p, other, out, y_out);
        break;
    case EW_ADDFC_HALVE_BOTH:
        ew_addfcq_y_halve_both_s16(x, p, other, out, y_out);
        break;
    default:
        ew_addfcq_y_any_s16(x, p, other, out, y_out);
        break;
    }
}

/* ---- int8 -------------------------------------------------------------------------------- */

/* int8 requantization of a doubled accumulator (pack.py doubles the weights and the bias,
 * which it checks keeps |acc| < 2^31): with x2 = 2 * acc, TFLM's MultiplyByQuantizedMultiplier
 * plus zp_out is hi32(x2 * mult + 2^31 + (add + (x2 < 0 ? -1 : 0)) * 2^32) >> shift, the
 * ew_rq form with the doubling done by the multiply-accumulates instead of the mult_x2 trick:
 * one instruction less per output. int8 groups end with (mult, add, shift) per output;
 * k is a literal (the LDRD offset is an immediate). */
#define RQ8(acc2, w, k, y)                                                   \
    do {                                                                     \
        int32_t m_, a_;                                                      \
        EW_LOAD_PAIR(w, 3 * (k), m_, a_);                                    \
        assert(EW_SHIFT_OK((w)[3 * (k) + 2]));                               \
        (y) = ew_smmlar((acc2), m_, a_ + ew_sign(acc2)) >> (w)[3 * (k) + 2]; \
    } while (0)

EW_INLINE int32_t post8(int32_t y, int32_t lo, int32_t hi, const int8_t *lut, const int mode)
{
    if (mode == EW_FCQ_CLAMP) {
        return ew_clamp_fast(y, lo, hi);
    }
    if (mode == EW_FCQ_LUT) {
        return lut[EW_SSAT(y, 8)];
    }
    return EW_SSAT(y, 8);
}

EW_INLINE void fcq_s8(const int32_t *xw, const ew_fcq *p, int8_t *out, const int mode)
{
    EW_FCQ_OK(p, xw, out, mode);
    assert(mode != EW_FCQ_LUT || p->lut != NULL);
    const int32_t *w = p->w;
    const int32_t n_pairs = p->n_pairs, lo = p->act_min, hi = p->act_max;
    const int8_t *lut = mode == EW_FCQ_LUT ? p->lut + 128 : NULL;
    int32_t left;
    for (left = p->n_out; left > 0; left -= 4) {
        int32_t a0, a1, a2, a3;
        DOT4_W(xw, n_pairs, w, a0, a1, a2, a3);
        RQ8(a0, w, 0, a0);
        RQ8(a1, w, 1, a1);
        RQ8(a2, w, 2, a2);
        RQ8(a3, w, 3, a3);
        a0 = post8(a0, lo, hi, lut, mode);
        a1 = post8(a1, lo, hi, lut, mode);
        a2 = post8(a2, lo, hi, lut, mode);
        a3 = post8(a3, lo, hi, lut, mode);
        STORE4(int8_t, out, left, a0, a1, a2, a3);
        out += 4;
        w += 12;
    }
}

void ew_fcq_sat_s8(const int32_t *xw, const ew_fcq *p, int8_t *out) { fcq_s8(xw, p, out, EW_FCQ_SAT); }
void ew_fcq_clamp_s8(const int32_t *xw, const ew_fcq *p, int8_t *out) { fcq_s8(xw, p, out, EW_FCQ_CLAMP); }
void ew_fcq_lut_s8(const int32_t *xw, const ew_fcq *p, int8_t *out) { fcq_s8(xw, p, out, EW_FCQ_LUT); }

void ew_fcq_s8(const int32_t *xw, const ew_fcq *p, int8_t *out)
{
    assert(p != NULL && (p->mode == EW_FCQ_SAT || p->mode == EW_FCQ_CLAMP || p->mode == EW_FCQ_LUT));
    switch (p->mode) {
    case EW_FCQ_CLAMP:
        ew_fcq_clamp_s8(xw, p, out);
        break;
    case EW_FCQ_LUT:
        ew_fcq_lut_s8(xw, p, out);
        break;
    default:
        ew_fcq_sat_s8(xw, p, out);
        break;
    }
}

/* lut_a holds 2 (f(y) - zp_a): the doubled product takes the ew_rq form of rq8. */
void ew_gateq_s8(const int32_t *xw, const ew_gateq *p, int8_t *out)
{
    EW_FCQ_OK(p, xw, out, 0);
    assert(p->lut_a != NULL && p->lut_b != NULL && EW_SHIFT_OK(p->shift));
    const int32_t *w = p->w;
    const int32_t n_pairs = p->n_pairs;
    const int16_t *la = p->lut_a + 128, *lb = p->lut_b + 128;
    const int32_t m = p->rq_mult, add = p->add, sh = p->shift;
    int32_t left;
    for (left = p->n_out; left > 0; left -= 2) {
        int32_t a0, a1, b0, b1, ya, yb;
        DOT4_W(xw, n_pairs, w, a0, a1, b0, b1);
        RQ8(a0, w, 0, ya);
        RQ8(b0, w, 2, yb);
        a0 = la[EW_SSAT(ya, 8)] * lb[EW_SSAT(yb, 8)];
        out[0] = (int8_t)EW_SSAT(ew_smmlar(a0, m, add + ew_sign(a0)) >> sh, 8);
        if (left >= 2) {
            RQ8(a1, w, 1, ya);
            RQ8(b1, w, 3, yb);
            a1 = la[EW_SSAT(ya, 8)] * lb[EW_SSAT(yb, 8)];
            out[1] = (int8_t)EW_SSAT(ew_smmlar(a1, m, add + ew_sign(a1)) >> sh, 8);
        }
        out += 2;
        w += 12;
    }
}

/* One side of the input stage's gated unit: the fully-connected layer's int16 output (the ew_fcq
 * int16 form, full range), then QUANTIZE to int8. */
EW_INLINE int32_t narrow8(int32_t acc, int32_t r, const ew_rq *q, int32_t pre)
{
    const int32_t y = EW_SSAT(ew_smmulr(acc, r), 16);
    return EW_SSAT(ew_rq_apply((int32_t)((uint32_t)y << pre), q), 8);
}

void ew_gateq_s16_s8(const int16_t *x, const ew_gateq16x8 *p, int8_t *out)
{
    EW_FCQ_OK(p, x, out, 0);
    assert(EW_ALIGNED4_OK(x) && p->lut_a != NULL && p->lut_b != NULL && EW_SHIFT_OK(p->shift));
    assert(EW_SHIFT_OK(p->narrow_a.shift) && EW_SHIFT_OK(p->narrow_b.shift) && EW_SHIFT_OK(p->pre_a) &&
           EW_SHIFT_OK(p->pre_b));
    const int32_t *w = p->w;
    const int32_t n_pairs = p->n_pairs;
    const ew_rq qa = p->narrow_a, qb = p->narrow_b;
    const int32_t pa = p->pre_a, pb = p->pre_b;
    const int16_t *la = p->lut_a + 128, *lb = p->lut_b + 128;
    const int32_t m = p->rq_mult, add = p->add, sh = p->shift;
    int32_t left;
    for (left = p->n_out; left > 0; left -= 2) {
        int32_t a0, a1, b0, b1;
        DOT4_S16(x, n_pairs, w, a0, a1, b0, b1);
        a0 = la[narrow8(a0, w[0], &qa, pa)] * lb[narrow8(b0, w[2], &qb, pb)];
        out[0] = (int8_t)EW_SSAT(ew_smmlar(a0, m, add + ew_sign(a0)) >> sh, 8);
        if (left >= 2) {
            a1 = la[narrow8(a1, w[1], &qa, pa)] * lb[narrow8(b1, w[3], &qb, pb)];
            out[1] = (int8_t)EW_SSAT(ew_smmlar(a1, m, add + ew_sign(a1)) >> sh, 8);
        }
        out += 2;
        w += 4;
    }
}

/* The tables hold doubled terms (and the halving is shifted one more), so the doubled sum
 * takes the ew_rq form of rq8: one instruction less per output. y is clamped to the full
 * range (the layer's own clamp is in lut_f). */
EW_INLINE int32_t add8(int32_t y, int32_t other, const ew_addfcq *p, const int32_t *lf, const int32_t *lo, const int mode)
{
    int32_t s;
    if (mode == EW_ADDFC_HALVE_O) {
        s = (int32_t)((uint32_t)lf[y] + ((uint32_t)other << 20));
        return EW_SSAT(ew_smmlar(s, p->rq_mult, p->add + ew_sign(s)) >> p->shift, 8);
    }
    s = (int32_t)((uint32_t)lf[y] + (uint32_t)lo[other]);
    return ew_clamp_fast(ew_smmlar(s, p->rq_mult, p->add + ew_sign(s)) >> p->shift, p->act_min, p->act_max);
}

#define ADD8_OUT(k, acc)                                                    \
    do {                                                                    \
        int32_t y_;                                                         \
        RQ8(acc, w, k, y_);                                                 \
        y_ = EW_SSAT(y_, 8);                                                \
        if (store_y) {                                                      \
            yo[k] = (int8_t)ew_clamp_fast(y_, p->fc_min, p->fc_max);        \
        }                                                                   \
        out[k] = (int8_t)add8(y_, other[k], p, lf, lo, mode);               \
    } while (0)

EW_INLINE void addfcq_s8(const int32_t *xw, const ew_addfcq *pp, const int8_t *other, int8_t *out, int8_t *yo,
                         const int mode, const int store_y)
{
    EW_FCQ_OK(pp, xw, out, mode);
    assert(other != NULL && (!store_y || yo != NULL) && pp->lut_f != NULL && EW_SHIFT_OK(pp->shift));
    assert(mode == EW_ADDFC_HALVE_O || pp->lut_o != NULL);
    /* a local copy: the dot product's memory clobber would otherwise reload every field */
    const ew_addfcq k = *pp, *p = &k;
    const int32_t *w = p->w;
    const int32_t *lf = p->lut_f + 128, *lo = mode == EW_ADDFC_HALVE_O ? NULL : p->lut_o + 128;
    const int32_t n_pairs = p->n_pairs;
    int32_t left;
    for (left = p->n_out; left > 0; left -= 4) {
        int32_t a0, a1, a2, a3;
        DOT4_W(xw, n_pairs, w, a0, a1, a2, a3);
        ADD8_OUT(0, a0);
        if (left > 1) {
            ADD8_OUT(1, a1);
        }
        if (left > 2) {
            ADD8_OUT(2, a2);
        }
        if (left > 3) {
            ADD8_OUT(3, a3);
        }
        other += 4;
        out += 4;
        if (store_y) {
            yo += 4;
        }
        w += 12;
    }
}

void ew_addfcq_halve_o_s8(const int32_t *xw, const ew_addfcq *p, const int8_t *other, int8_t *out)
{
    addfcq_s8(xw, p, other, out, NULL, EW_ADDFC_HALVE_O, 0);
}

void ew_addfcq_any_s8(const int32_t *xw, const ew_addfcq *p, const int8_t *other, int8_t *out)
{
    addfcq_s8(xw, p, other, out, NULL, EW_ADDFC_ANY, 0);
}

void ew_addfcq_y_halve_o_s8(const int32_t *xw, const ew_addfcq *p, const int8_t *other, int8_t *out, int8_t *y_out)
{
    addfcq_s8(xw, p, other, out, y_out, EW_ADDFC_HALVE_O, 1);
}

void ew_addfcq_y_any_s8(const int32_t *xw, const ew_addfcq *p, const int8_t *other, int8_t *out, int8_t *y_out)
{
    addfcq_s8(xw, p, other, out, y_out, EW_ADDFC_ANY, 1);
}

void ew_addfcq_s8(const int32_t *xw, const ew_addfcq *p, const int8_t *other, int8_t *out)
{
    if (p->mode == EW_ADDFC_HALVE_O) {
        ew_addfcq_halve_o_s8(xw, p, other, out);
    } else {
        ew_addfcq_any_s8(xw, p, other, out);
    }
}

void ew_addfcq_y_s8(const int32_t *xw, const ew_addfcq *p, const int8_t *other, int8_t *out, int8_t *y_out)
{
    if (p->mode == EW_ADDFC_HALVE_O) {
        ew_addfcq_y_halve_o_s8(xw, p, other, out, y_out);
    } else {
        ew_addfcq_y_any_s8(xw, p, other, out, y_out);
    }
}
