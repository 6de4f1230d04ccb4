/* Minimal Cortex-M startup for edgewave examples (C99, any M-profile core).
 * Vector table, .data copy, .bss zeroing, FPU enable, newlib semihosting init. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
extern int main(void);
extern void initialise_monitor_handles(void);
extern void __libc_init_array(void);

void Reset_Handler(void);
void Fault_Handler(void);

/* -nostartfiles drops crti/crtn: __libc_init_array / exit still call these. */
void _init(void) {}
void _fini(void) {}

#define FAULT ((uintptr_t)Fault_Handler)
__attribute__((section(".vectors"), used))
const uintptr_t ew_vectors[16] = {
    (uintptr_t)&_estack, (uintptr_t)Reset_Handler,
    FAULT, FAULT, FAULT, FAULT, FAULT, FAULT,  /* NMI, HardFault, MemManage, Bus, Usage, Secure */
    0, 0, 0, FAULT, FAULT, 0, FAULT, FAULT,    /* SVCall, DebugMonitor, PendSV, SysTick */
};

/* Semihosting call (BKPT 0xAB), usable before and without newlib. */
static void semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
}

void Fault_Handler(void)
{
    semihost(0x04 /* SYS_WRITE0 */, "error: Cortex-M fault or unexpected exception\n");
    semihost(0x18 /* SYS_EXIT */, (const void *)0x20023u /* ADP_Stopped_RunTimeErrorUnknown */);
    for (;;) {}
}

void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;  /* CPACR: CP10, CP11 full access */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    initialise_monitor_handles();
    __libc_init_array();
    exit(main());
}
