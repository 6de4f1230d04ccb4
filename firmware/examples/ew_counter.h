/* ew_counter.h - exact instruction counting and printing for edgewave's QEMU runners (qemu_main.c,
 * tflm_main.cc): SysTick on Cortex-M, minstret on RISC-V, both under QEMU's -icount shift=7, where one
 * tick is EW_TICK_NUM/EW_TICK_DEN instructions (set per board by edgewave/ctools.py). */
#ifndef EW_COUNTER_H
#define EW_COUNTER_H

#include <stdint.h>
#include <stdio.h>

#ifndef EW_TICK_NUM
#define EW_TICK_NUM 5u
#define EW_TICK_DEN 16u
#endif
#if defined(__riscv)
/* The low word of minstret, an up-counter: 2^32 ticks, 33 M instructions under QEMU, bound one step. The
 * CSR read needs Zicsr, which picolibc's rv32imac multilib does not name: enabled for this instruction only. */
static inline uint32_t counter(void)
{
    uint32_t v;
    __asm__ volatile(".option push\n\t.option arch, +zicsr\n\tcsrr %0, minstret\n\t.option pop" : "=r"(v));
    return v;
}
static inline void counter_start(void) {}
#define TICKS(t_before, t_after) ((uint64_t)(uint32_t)((t_after) - (t_before)))
#else
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static inline uint32_t counter(void) { return SYST_CVR; }
static inline void counter_start(void)
{
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0u;
    SYST_CSR = 5u; /* enable, processor clock, no interrupt */
}
#define TICKS(t_before, t_after) ((uint64_t)(((t_before) - (t_after)) & 0xFFFFFFu)) /* down, wraps at most once */
#endif

static inline uint32_t instructions(uint32_t t_before, uint32_t t_after)
{
    uint64_t ticks = TICKS(t_before, t_after);
    return (uint32_t)((ticks * EW_TICK_NUM + EW_TICK_DEN / 2u) / EW_TICK_DEN);
}

/* newlib-nano's printf has no %llu */
static inline const char *u64(uint64_t v, char buf[21])
{
    char *p = buf + 20;
    *p = '\0';
    do *--p = (char)('0' + v % 10u); while (v /= 10u);
    return p;
}

static inline int fail(const char *what)
{
    fprintf(stderr, "error: %s\n", what);
    return 1;
}

#endif /* EW_COUNTER_H */
