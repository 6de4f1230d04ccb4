/* Dummy model with the generated-model API, for testing the C tooling.
 * int16 codes by default, int8 codes with -DEW_DUMMY_INT8.
 * tests/test_ctools.py holds the Python reference of the same recurrence. */
#ifndef EDGEWAVE_MODEL_H
#define EDGEWAVE_MODEL_H
#include <stdint.h>

#ifdef EW_DUMMY_INT8
typedef int8_t ew_q_t;
#else
typedef int16_t ew_q_t;
#endif
typedef ew_q_t ew_in_t; /* input codes: the output type here */

#define EW_OUTPUTS 2   /* two outputs per step, to exercise the output layout */
#define EW_DUMMY_TAPS 8

typedef struct {
    ew_q_t ring[EW_DUMMY_TAPS]; /* last EW_DUMMY_TAPS inputs */
    int32_t acc;                /* leaky integrator */
    uint32_t pos;               /* slot of the newest input */
} ew_model_state;

void ew_model_init(ew_model_state *s);
void ew_model_step_q(ew_model_state *s, ew_q_t x, ew_q_t out[EW_OUTPUTS]);
#endif
