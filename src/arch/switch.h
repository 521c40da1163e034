/*
 * Internal: the stack/register switch, one implementation per CPU and ABI.
 *
 * gev__switch() saves the callee-saved state of the running context on its
 * own stack, stores the resulting stack pointer in *save_sp, loads load_sp
 * and restores the state found there, then returns value in the context it
 * switched to (as the return value of that context's own gev__switch call).
 *
 * gev__ctx_make() prepares a fresh context at the top of the stack
 * [lo, hi) and returns its stack pointer. The first switch to it calls
 * gev__coro_entry(value) on that stack; gev__coro_entry must never return.
 *
 * GEV__SP_MARGIN is how far below a saved stack pointer live bytes of the
 * context may sit: 0 for the assembly switches, which save everything above
 * sp; the ucontext fallback keeps its context record on the stack and its
 * saved pointer is not the real sp, so it asks for a margin.
 */
#ifndef GEV_SRC_ARCH_SWITCH_H
#define GEV_SRC_ARCH_SWITCH_H

#include <stddef.h>

void *gev__switch(void **save_sp, void *load_sp, void *value);
void *gev__ctx_make(void *lo, void *hi);
void gev__coro_entry(void *value) __attribute__((noreturn));

/* Copies n bytes of stack from src to dst (not overlapping) without going
 * through memcpy, which a sanitizer in the program may intercept and which
 * would then check the stack frames' redzones it copies. */
void gev__stack_copy(void *dst, const void *src, size_t n);

#ifdef GEV_SWITCH_UCONTEXT
#define GEV__SP_MARGIN 1024
#else
#define GEV__SP_MARGIN 0
#endif

#endif
