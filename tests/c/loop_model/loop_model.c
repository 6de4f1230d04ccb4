/* The loop is written in assembly so that its cost does not depend on the compiler: a test (skipped) branch,
 * then x iterations of two instructions (decrement, branch back). Built with -DEW_PROFILE, a step is two
 * profiled calls, x and then 2 x iterations, marked as the generated step marks its calls. */
#include "edgewave_model.h"

void ew_model_init(ew_model_state *s) { s->steps = 0; }

static void spin(uint32_t n)
{
#if defined(__riscv)
    __asm__ volatile("beqz %0, 2f\n1:\n\taddi %0, %0, -1\n\tbnez %0, 1b\n2:" : "+r"(n));
#elif defined(__thumb__)
    /* GCC hands ARMv6-M inline assembly over in divided syntax (and restores unified after it). */
    __asm__ volatile(".syntax unified\n\tcmp %0, #0\n\tbeq 2f\n1:\n\tsubs %0, %0, #1\n\tbne 1b\n2:"
                     : "+l"(n) : : "cc");
#else
#error "loop_model.c: no known loop for this architecture"
#endif
}

#ifdef EW_PROFILE
void ew_profile_mark(unsigned k);

void ew_model_step_q(ew_model_state *s, ew_q_t x, ew_q_t out[EW_OUTPUTS])
{
    ew_profile_mark(0u);
    spin((uint32_t)(uint16_t)x);
    ew_profile_mark(1u);
    spin(2u * (uint32_t)(uint16_t)x);
    ew_profile_mark(2u);
    s->steps++;
    out[0] = x;
    ew_profile_mark(3u);
}
#else
void ew_model_step_q(ew_model_state *s, ew_q_t x, ew_q_t out[EW_OUTPUTS])
{
    spin((uint32_t)(uint16_t)x);
    s->steps++;
    out[0] = x;
}
#endif
