/*
 * ew_fast.h - internal: the per-element arithmetic of the prepared kernels (ew_*q_*),
 * whose constants edgewave/emit/pack.py computes (see edgewave_rt.h, "prepared fast
 * paths", for the formulas and the conditions under which they are exact), and the
 * four-output dot product they share.
 */
#ifndef EW_FAST_H
#define EW_FAST_H

#include <stdint.h>

#include "ew_arm_dsp.h"
#include "ew_fixedpoint.h"

#if defined(__ARM_ARCH) && (__ARM_ARCH >= 7) && !defined(__ARM_ARCH_6M__) && defined(__thumb2__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(EW_FORCE_PORTABLE)
#define EW_HAVE_SMMUL 1
#endif

#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT && !defined(EW_FORCE_PORTABLE)
#include <arm_acle.h>
#define EW_HAVE_SAT 1
#endif

/* The kernels are written once as inline bodies with a constant "mode" argument and
 * instantiated per mode, so each instance is straight-line code with no per-element
 * branches; GCC only specialises that way when the body is really inlined. */
#if defined(__GNUC__)
#define EW_INLINE static inline __attribute__((always_inline))
#else
#define EW_INLINE static inline
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

/* hi32(x * m + 2^31) (SMMULR). */
static inline int32_t ew_smmulr(int32_t x, int32_t m)
{
#ifdef EW_HAVE_SMMUL
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(x), "r"(m));
    return r;
#else
    const uint64_t p = (uint64_t)((int64_t)x * (int64_t)m) + 0x80000000u;
    return (int32_t)(uint32_t)(p >> 32);
#endif
}

/* hi32(x * m), truncated (SMMUL). */
static inline int32_t ew_smmul(int32_t x, int32_t m)
{
#ifdef EW_HAVE_SMMUL
    int32_t r;
    __asm__("smmul %0, %1, %2" : "=r"(r) : "r"(x), "r"(m));
    return r;
#else
    return (int32_t)(uint32_t)((uint64_t)((int64_t)x * (int64_t)m) >> 32);
#endif
}

static inline int32_t ew_clamp_fast(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* Saturation to n-bit signed / unsigned ranges: one SSAT / USAT where the core has them. */
#ifdef EW_HAVE_SAT
#define EW_SSAT(v, n) ((int32_t)__ssat((v), (n)))
#define EW_USAT(v, n) ((int32_t)__usat((v), (n)))
#else
#define EW_SSAT(v, n) ew_clamp_fast((v), -(1 << ((n) - 1)), (1 << ((n) - 1)) - 1)
#define EW_USAT(v, n) ew_clamp_fast((v), 0, (1 << (n)) - 1)
#endif

/* x >> 31 is an arithmetic shift on every compiler we support (GCC, Clang, Arm): one ASR, no branch. */
/* cppcheck-suppress shiftTooManyBitsSigned */
static inline int32_t ew_sign(int32_t x) { return x >> 31; }

/* Double-rounding requantization + zero point (ew_rq). */
static inline int32_t ew_rq_apply(int32_t x, const ew_rq *q)
{
    const uint32_t a = (uint32_t)q->add + (uint32_t)x + (uint32_t)(ew_sign(x) & q->neg);
    return ew_smmlar(x, q->mult_x2, (int32_t)a) >> q->shift;
}

/* The same with neg = -1 (e >= 1). */
static inline int32_t ew_rq_apply_neg(int32_t x, int32_t m2, int32_t add, int32_t shift)
{
    const uint32_t a = (uint32_t)add + (uint32_t)x + (uint32_t)ew_sign(x);
    return ew_smmlar(x, m2, (int32_t)a) >> shift;
}

/* The two words at e + off (off 0 or 2 words) with one LDRD: GCC emits two LDRs and
 * would not fold the offset. */
#ifdef EW_HAVE_SMMUL
#define EW_LOAD_PAIR(e, off, b, s) \
    __asm__("ldrd %0, %1, [%2, %3]" : "=r"(b), "=r"(s) : "r"(e), "i"(4 * (off)), "m"(*(const int32_t(*)[(off) + 2])(e)))
#else
#define EW_LOAD_PAIR(e, off, b, s) ((b) = (e)[off], (s) = (e)[(off) + 1])
#endif

/* int16 TANH / LOGISTIC from the signed interpolation tables of ew_sigmoid_pairs.c,
 * given centred (segment j = v >> 8 or v >> 9 may be negative). TFLM's table input is
 * v = (x * mult + round) >> shift; the prepared kernels compute it as
 * hi32((x << s) * m + 2^31) (SMMULR), s = 16 and m = mult << (16 - shift) for shift <= 16,
 * s = 0 and m = mult << (32 - shift) above (the same quotient with the rounding term
 * 2^(shift-1) scaled to 2^31; pack.py checks m < 2^31). The entry index saturates to
 * -256..255 (one SSAT with the shift folded in); the outermost entries have slope 0,
 * so v itself needs no clamp: everything beyond is TFLM's saturated value. */
extern const int32_t ew_t16_sgn[2048];
#define EW_TANH16_TABLE (ew_t16_sgn + 1024)

EW_INLINE int32_t ew_t16_in(int32_t x, int32_t s, int32_t m)
{
    return ew_smmulr((int32_t)((uint32_t)x << s), m);
}

/* tbl is the tanh base (EW_TANH16_TABLE) for both functions. */
EW_INLINE int32_t ew_tanh16_v(int32_t v, const int32_t *tbl)
{
    int32_t b, s;
    const int32_t *e = tbl + 4 * EW_SSAT(v >> 8, 9);
    EW_LOAD_PAIR(e, 0, b, s);
    return (b + v * s) >> 8;
}

EW_INLINE int32_t ew_logistic16_v(int32_t v, const int32_t *tbl)
{
    int32_t b, s;
    const int32_t *e = tbl + 4 * EW_SSAT(v >> 9, 9);
    EW_LOAD_PAIR(e, 2, b, s);
    return (b + v * s) >> 10;
}

/* ---- the four-output dot product --------------------------------------------------
 * A group of four outputs is stored as its four int32 biases (the accumulators' start)
 * followed by n_pairs * 4 weight words (two int16 weights each, one word per output and
 * input pair) and then the group's requantization constants, all in one stream ``w``, so
 * one pointer walks the whole layer. EW_DOT4_* loads the biases, accumulates
 * a_k += sum_j x[j] . w[4j + k] (two MACs per SMLAD, modulo 2^32; n_pairs even, >= 2) and
 * leaves w at the constants. */
#if defined(EW_ARM_DSP) && defined(__thumb2__)
#define EW_DOT_ASM 1
/* Two input pairs of the four outputs: one LDRD of x (x0x1, then x2x3) and, per pair, one LDM of the four
 * weight words and four SMLAD (16 MACs). The head (n_pairs 2 mod 4) runs it once, the loop twice. */
#define EW_DOT4_TWO_PAIRS_ASM_                                                                 \
    "ldrd r12, lr, [%[xp]], #8\n\t"                                                            \
    "ldmia %[wp]!, {r8, r9, r10, r11}\n\t"                                                     \
    "smlad %[a0], r12, r8, %[a0]\n\t"                                                          \
    "smlad %[a1], r12, r9, %[a1]\n\t"                                                          \
    "smlad %[a2], r12, r10, %[a2]\n\t"                                                         \
    "smlad %[a3], r12, r11, %[a3]\n\t"                                                         \
    "ldmia %[wp]!, {r8, r9, r10, r11}\n\t"                                                     \
    "smlad %[a0], lr, r8, %[a0]\n\t"                                                           \
    "smlad %[a1], lr, r9, %[a1]\n\t"                                                           \
    "smlad %[a2], lr, r10, %[a2]\n\t"                                                          \
    "smlad %[a3], lr, r11, %[a3]\n\t"
/* The loop needs 13 registers; with that many clobbers GCC's allocator gives up
 * ("impossible constraints") in some inlining contexts and with some flags (an FPU,
 * -O0). So the operands sit in fixed registers r0-r6 and the block saves the five it
 * works in itself: PUSH + POP per call instead of a failed build.
 * Two pairs (16 MACs) first when n_pairs is 2 mod 4, then 4 pairs (32 MACs) per
 * iteration: 2 LDRD + 4 LDM + 16 SMLAD + loop = 24 instructions. */
#define EW_DOT4_ASM(xptr, n_pairs, wptr, acc0, acc1, acc2, acc3)                                \
    do {                                                                                       \
        register int32_t a0_ __asm__("r0");                                                    \
        register int32_t a1_ __asm__("r1");                                                    \
        register int32_t a2_ __asm__("r2");                                                    \
        register int32_t a3_ __asm__("r3");                                                    \
        register const void *xp_ __asm__("r4") = (xptr);                                       \
        register const int32_t *wp_ __asm__("r5") = (wptr);                                    \
        register int32_t n_ __asm__("r6") = (n_pairs);                                         \
        __asm__ volatile(                                                                      \
            "ldmia %[wp]!, {r0, r1, r2, r3}\n\t"                                               \
            "push {r8, r9, r10, r11, lr}\n\t"                                                  \
            "lsrs %[n], %[n], #2\n\t"                                                          \
            "bcc 2f\n\t"                                                                       \
            EW_DOT4_TWO_PAIRS_ASM_                                                             \
            "2:\n\t"                                                                           \
            "beq 3f\n\t"                                                                       \
            "1:\n\t"                                                                           \
            EW_DOT4_TWO_PAIRS_ASM_                                                             \
            EW_DOT4_TWO_PAIRS_ASM_                                                             \
            "subs %[n], %[n], #1\n\t"                                                          \
            "bne 1b\n\t"                                                                       \
            "3:\n\t"                                                                           \
            "pop {r8, r9, r10, r11, lr}\n\t"                                                   \
            : [a0] "=&r"(a0_), [a1] "=&r"(a1_), [a2] "=&r"(a2_), [a3] "=&r"(a3_), [xp] "+r"(xp_), \
              [wp] "+r"(wp_), [n] "+r"(n_)                                                     \
            :                                                                                  \
            : "r12", "cc", "memory");                                                          \
        (acc0) = a0_;                                                                          \
        (acc1) = a1_;                                                                          \
        (acc2) = a2_;                                                                          \
        (acc3) = a3_;                                                                          \
        (wptr) = wp_;                                                                          \
    } while (0)
#endif

#endif /* EW_FAST_H */
