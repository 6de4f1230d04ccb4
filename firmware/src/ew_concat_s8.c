/* ew_concat_s8.c - CONCATENATION of int8_t vectors along the channel axis (raw copy). */
#include "ew_assert.h"
#include <string.h>

#include "ew_fixedpoint.h"

void ew_concat_s8(const int8_t *const *srcs, const int32_t *lens, int32_t n_srcs, int8_t *out)
{
    int32_t i;
    assert(n_srcs >= 0 && (n_srcs == 0 || (srcs != NULL && lens != NULL && out != NULL)));
    for (i = 0; i < n_srcs; ++i) {
        if (lens[i] > 0) {
            memcpy(out, srcs[i], (size_t)lens[i] * sizeof(*out));
            out += lens[i];
        }
    }
}
