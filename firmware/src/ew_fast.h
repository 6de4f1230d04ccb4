/*
 * ew_fast.h - internal: the per-element arithmetic of the prepared kernels (ew_*q_*),
 * whose constants edgewave/emit/plan.py computes (see edgewave_rt.h, "prepared fast
 * paths", for the formulas and the conditions under which they are exact).
 */
#ifndef EW_FAST_H
#define EW_FAST_H

#include <stdint.h>

#include "ew_arm_dsp.h"
#include "ew_fixedpoint.h"

#if defined(__ARM_ARCH) && (__ARM_ARCH >= 7) && !defined(__ARM_ARCH_6M__) && defined(__thumb2__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(EW_FORCE_PORTABLE)
#define EW_HAVE_SMMUL 1
#endif

/* hi32(x * m + 2^31 + a * 2^32), modulo 2^32 (SMMLAR). */
static inline int32_t ew_smmlar(int32_t x, int32_t m, int32_t a)
{
#ifdef EW_HAVE_SMMUL
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(m), "r"(a));
    return r;
#else
    const uint64_t p = (uint64_t)((int64_t)x * (int64_t)m) + ((uint64_t)(uint32_t)a << 32) + 0x80000000u;
    return (int32_t)(uint32_t)(p >> 32);
#endif
}

/* hi32(x * m + a * 2^32), modulo 2^32 (SMMLA). */
static inline int32_t ew_smmla(int32_t x, int32_t m, int32_t a)
{
#ifdef EW_HAVE_SMMUL
    int32_t r;
    __asm__("smmla %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(m), "r"(a));
    return r;
#else
    const uint64_t p = (uint64_t)((int64_t)x * (int64_t)m) + ((uint64_t)(uint32_t)a << 32);
    return (int32_t)(uint32_t)(p >> 32);
#endif
}

/* Double-rounding requantization + zero point (ew_rq). */
static inline int32_t ew_rq_apply(int32_t x, const ew_rq *q)
{
    /* x >> 31 is an arithmetic shift on every compiler we support (GCC, Clang, Arm): one ASR, no branch. */
    /* cppcheck-suppress shiftTooManyBitsSigned */
    const uint32_t a = (uint32_t)q->add + (uint32_t)x + (uint32_t)((x >> 31) & q->neg);
    return ew_smmlar(x, q->m2, (int32_t)a) >> q->shift;
}

/* The same with neg = -1 (e >= 1), as the int8 fully-connected kernel uses it. */
static inline int32_t ew_rq_apply_neg(int32_t x, int32_t m2, int32_t add, int32_t shift)
{
    /* cppcheck-suppress shiftTooManyBitsSigned */
    const uint32_t a = (uint32_t)add + (uint32_t)x + (uint32_t)(x >> 31);
    return ew_smmlar(x, m2, (int32_t)a) >> shift;
}

static inline int32_t ew_clamp_fast(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* int16 TANH / LOGISTIC from the interpolation tables of ew_sigmoid_pairs.c:
 * tanh:     T[h] = {(u[h] - 32768) * 256 + 128, u[h+1] - u[h]}, T[255] = {32767 * 256 + 128, 0};
 *           y = (T0 + (a & 255) * T1) >> 8 with a = min(|v|, 65535), h = a >> 8;
 *           result sign(v) * y: TFLM's negative branch (-R + 2^23 + 2^7 - 1) >> 8 equals
 *           -((R - 2^23 + 2^7) >> 8), since (255 - P) >> 8 == -(P >> 8) for every integer P.
 * logistic: T[h] = {u[h] * 512 + 512, u[h+1] - u[h]}, T[255] = {32767 * 1024 + 512, 0};
 *           y = (T0 + (a & 511) * T1) >> 10 with a = min(|v|, 131071), h = a >> 9;
 *           result y for v >= 0, 32768 - y for v < 0. */
extern const int32_t ew_tanh16_pairs[512];
extern const int32_t ew_logistic16_pairs[512];

static inline int32_t ew_t16_apply(int32_t x, const ew_t16q *t)
{
    const int32_t v = (x * t->mult + t->round) >> t->shift;
    /* cppcheck-suppress shiftTooManyBitsSigned */
    const int32_t s = v >> 31;
    int32_t a = (v ^ s) - s;
    int32_t y;
    if (t->kind == 1) {
        const int32_t *e;
        a = a > 65535 ? 65535 : a;
        e = &ew_tanh16_pairs[(a >> 8) * 2];
        y = (e[0] + (a & 255) * e[1]) >> 8;
        return (y ^ s) - s;
    } else {
        const int32_t *e;
        a = a > 131071 ? 131071 : a;
        e = &ew_logistic16_pairs[(a >> 9) * 2];
        y = (e[0] + (a & 511) * e[1]) >> 10;
        return (y ^ s) + (s & 32769);
    }
}

#endif /* EW_FAST_H */
