/* Deterministic integer recurrence (see edgewave_model.h).  Right shifts of
 * negative values are arithmetic (GCC's documented behaviour), like Python's >>. */
#include "edgewave_model.h"

#ifdef EW_DUMMY_INT8
#define Q_MIN (-128)
#define Q_MAX 127
#else
#define Q_MIN (-32768)
#define Q_MAX 32767
#endif

static const int32_t coef[EW_DUMMY_TAPS] = {3, -5, 7, -2, 1, 4, -6, 2};

static ew_q_t sat(int32_t v) { return (ew_q_t)(v < Q_MIN ? Q_MIN : v > Q_MAX ? Q_MAX : v); }

void ew_model_init(ew_model_state *s)
{
    uint32_t i;
    for (i = 0; i < EW_DUMMY_TAPS; i++) s->ring[i] = 0;
    s->acc = 0;
    s->pos = 0;
}

void ew_model_step_q(ew_model_state *s, ew_q_t x, ew_q_t out[EW_OUTPUTS])
{
    int32_t fir = 0;
    uint32_t i;
    s->pos = (s->pos + 1u) % EW_DUMMY_TAPS;
    s->ring[s->pos] = x;
    for (i = 0; i < EW_DUMMY_TAPS; i++)
        fir += coef[i] * s->ring[(s->pos + EW_DUMMY_TAPS - i) % EW_DUMMY_TAPS];
    s->acc = ((s->acc * 7) >> 3) + (fir >> 2);
    out[0] = sat(s->acc >> 2);
    out[1] = sat(fir >> 1);
}
