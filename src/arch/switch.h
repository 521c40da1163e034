/*
 * Internal: the stack/register switch, one implementation per CPU and ABI.
 *
 * gev__switch() saves the callee-saved state of the running context on its
 * own stack, stores the resulting stack pointer in *save_sp, loads load_sp
 * and restores the state found there, then returns value in the context it
 * switched to (as the return value of that context's own gev__switch call).
 *
 * gev__switch_direct() is the same switch for coro.c's direct path, which
 * tail-calls it: when its context is resumed, it stores the value received
 * in *result (unless NULL) and returns 0 to the direct path's caller, or,
 * when the switcher left work for the resumed side (a dead coroutine's
 * stack to release, an error thrown in), returns what
 * gev__switch_resumed(value, result) returns. Where the assembly has no
 * such entry (GEV__SWITCH_DIRECT_ASM is 0), coro.c defines it in C over
 * gev__switch().
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
int gev__switch_direct(void **save_sp, void *load_sp, void *value,
                       void **result);
/* coro.c: the resumed side's work after a switch that left some. */
int gev__switch_resumed(void *value, void **result);
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

#if !defined(GEV_SWITCH_UCONTEXT) && defined(__x86_64__)
#define GEV__SWITCH_DIRECT_ASM 1
#else
#define GEV__SWITCH_DIRECT_ASM 0
#endif

/*
 * The saved frame of a suspended context, for debuggers and unwinders:
 * offsets in bytes from its saved stack pointer (gev_coro's sp) of each
 * saved register and of the resume address, the address the context goes
 * on at (a return address into the code that switched; see the assembly
 * file's table for the direct switch's). The stack pointer of the resumed
 * frame is the saved one plus GEV__FRAME_SIZE. The ucontext fallback has
 * no such frame.
 */
#if !defined(GEV_SWITCH_UCONTEXT) && defined(__x86_64__)
#define GEV__FRAME_SIZE 64
#define GEV__FRAME_MXCSR 0
#define GEV__FRAME_X87CW 4
#define GEV__FRAME_R15 8
#define GEV__FRAME_R14 16
#define GEV__FRAME_R13 24
#define GEV__FRAME_R12 32
#define GEV__FRAME_RBX 40
#define GEV__FRAME_RBP 48
#define GEV__FRAME_PC 56
#elif !defined(GEV_SWITCH_UCONTEXT) && defined(__aarch64__)
#define GEV__FRAME_SIZE 176
#define GEV__FRAME_X19 0 /* x19 .. x28 in pairs up to 72 */
#define GEV__FRAME_FP 80 /* x29 */
#define GEV__FRAME_PC 88 /* x30, the link register */
#define GEV__FRAME_D8 96 /* d8 .. d15 up to 152 */
#define GEV__FRAME_FPCR 160
#endif

#endif
