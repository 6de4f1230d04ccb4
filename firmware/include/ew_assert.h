/* ew_assert.h - assert() for the runtime's documented preconditions, included first by every kernel.
 * Debug builds (no NDEBUG) check them on the host; on bare-metal Arm they stay off unless -DEW_RT_ASSERT,
 * because newlib's assert() links fiprintf and malloc, which a board without a heap cannot link. */
#ifndef EW_ASSERT_H
#define EW_ASSERT_H
#if !defined(NDEBUG) && !defined(EW_RT_ASSERT) && defined(__ARM_EABI__) && !defined(__linux__)
#define NDEBUG
#endif
#include <assert.h>
#endif
