/* ew_maxpool_s16.c - MAX_POOL_2D over n_taps tap vectors, per channel (TFLM reference
 * integer MaxPool; edgewave.integer.maxpool_eval with a (1, n_taps) filter). */
#include "ew_assert.h"

#include "ew_fixedpoint.h"

void ew_maxpool_s16(const int16_t *const *taps, int32_t n_taps, int32_t channels,
                   const ew_pool_params *p, int16_t *out)
{
    int32_t c, t;
    assert(n_taps >= 1 && taps != NULL && channels >= 0 && p != NULL && (channels == 0 || out != NULL));
    for (c = 0; c < channels; ++c) {
        int32_t m = taps[0][c];
        for (t = 1; t < n_taps; ++t) {
            m = ew_max(m, taps[t][c]);
        }
        out[c] = (int16_t)ew_clamp(m, p->act_min, p->act_max);
    }
}
