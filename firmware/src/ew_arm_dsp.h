/*
 * ew_arm_dsp.h - internal: helpers for the Arm DSP-extension (__ARM_FEATURE_DSP) paths
 * of the fully-connected kernels. Include only when EW_ARM_DSP is defined.
 */
#ifndef EW_ARM_DSP_H
#define EW_ARM_DSP_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(EW_FORCE_PORTABLE)
#define EW_ARM_DSP 1
#include <arm_acle.h>

/* Four int8 / two int16 from any address: one LDR (Cortex-M3 and up load unaligned words). */
static inline int32_t ew_read_s8x4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline int32_t ew_read_s16x2(const int16_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* SXTB16 / SXTAB16 of the value rotated right by 8 (bytes 1 and 3), in one instruction:
 * the ACLE has no rotated forms and GCC does not fuse a separate ROR. */
static inline int16x2_t ew_sxtb16_ror8(int8x4_t v)
{
    int16x2_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

static inline int16x2_t ew_sxtab16_ror8(int16x2_t a, int8x4_t v)
{
    int16x2_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(v));
    return r;
}

/* (lo16(a), lo16(b)) and (hi16(a), hi16(b)): PKHBT / PKHTB, which GCC does not form. */
static inline int16x2_t ew_pack_lo(int32_t a, int32_t b)
{
    int16x2_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

static inline int16x2_t ew_pack_hi(int32_t a, int32_t b)
{
    int16x2_t r;
    __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
#endif

#endif /* EW_ARM_DSP_H */
