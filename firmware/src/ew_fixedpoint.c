/* ew_fixedpoint.c - out-of-line copies of the fixed-point primitives (for callers
 * outside the kernels, and for the tests). */
#include "ew_assert.h"

#include "ew_fixedpoint.h"

int32_t ew_multiply_by_quantized_multiplier(int32_t x, int32_t mult, int32_t shift)
{
    assert(shift >= -31 && shift <= 31);
    return ew_mbqm(x, mult, shift);
}

int32_t ew_multiply_by_quantized_multiplier_int64(int64_t x, int32_t mult, int32_t shift)
{
    return ew_mbqm64(x, mult, shift);
}
