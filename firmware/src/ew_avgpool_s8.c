/* ew_avgpool_s8.c - AVERAGE_POOL_2D over n_taps tap vectors, per channel (TFLM reference
 * integer AveragePool; edgewave.integer.avgpool_eval with a (1, n_taps) filter). */
#include "ew_assert.h"

#include "ew_fixedpoint.h"

void ew_avgpool_s8(const int8_t *const *taps, int32_t n_taps, int32_t channels,
                   const ew_pool_params *p, int8_t *out)
{
    int32_t c, t;
    assert(n_taps >= 1 && taps != NULL && channels >= 0 && p != NULL && (channels == 0 || out != NULL));
    for (c = 0; c < channels; ++c) {
        int32_t acc = 0;
        for (t = 0; t < n_taps; ++t) {
            acc += taps[t][c];
        }
        out[c] = (int8_t)ew_clamp(ew_average(acc, n_taps), p->act_min, p->act_max);
    }
}
