/* ew_assert.h - assert() for the runtime's documented preconditions, included first by every kernel.
 * Debug builds (no NDEBUG) check them on the host; on bare-metal Arm they stay off unless -DEW_RT_ASSERT,
 * because newlib's assert() links fiprintf and malloc, which a board without a heap cannot link. */
#ifndef EW_ASSERT_H
#define EW_ASSERT_H
#if !defined(NDEBUG) && !defined(EW_RT_ASSERT) && defined(__ARM_EABI__) && !defined(__linux__)
#define NDEBUG
#endif
#include <assert.h>
#include <stdint.h>

#ifndef NDEBUG
/* Per-channel requantization: every multiplier 0 or normalised (>= 2^30), every shift in [-31, max_shift]. */
static inline void ew_assert_multipliers(const int32_t *mult, const int32_t *shift, int32_t n, int32_t max_shift)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        assert(mult[i] == 0 || mult[i] >= (1 << 30));
        assert(shift[i] >= -31 && shift[i] <= max_shift);
    }
}
#else
#define ew_assert_multipliers(mult, shift, n, max_shift) ((void)0)
#endif
#endif
