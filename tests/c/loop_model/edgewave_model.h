/* A model whose step runs a loop of a known number of instructions, for testing the runner's counting:
 * input code x (0 <= x) costs exactly 2 x instructions more than input 0 (loop_model.c). One int16 output. */
#ifndef EDGEWAVE_MODEL_H
#define EDGEWAVE_MODEL_H
#include <stdint.h>

typedef int16_t ew_q_t;
typedef ew_q_t ew_in_t;

#define EW_OUTPUTS 1

typedef struct {
    uint32_t steps;
} ew_model_state;

void ew_model_init(ew_model_state *s);
void ew_model_step_q(ew_model_state *s, ew_q_t x, ew_q_t out[EW_OUTPUTS]);
#endif
