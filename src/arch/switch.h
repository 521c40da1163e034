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
 *
 * The saved frame. This header is the one description of the frame a
 * suspended context leaves at its saved stack pointer: the assembly files
 * build and read it with the GEV__FRAME_* offsets below (and say so in
 * their frame tables), the debugger table (src/coro/thread.c) hands the
 * same numbers to the gdb extension (tools/gdb/gev.py), and
 * gev__call_parked() unwinds through them. Change the frame here, and
 * everything that reads it follows.
 *
 * GEV__FRAME_SIZE is the frame's size: a suspended context resumes with
 * sp = saved sp + GEV__FRAME_SIZE at the address stored at GEV__FRAME_PC.
 * GEV__FRAME_REGS lists, for debuggers, "name:offset" of every register
 * restored from the frame (gdb's register names), the resume address as
 * "pc:offset".
 */
#ifndef GEV_SRC_ARCH_SWITCH_H
#define GEV_SRC_ARCH_SWITCH_H

#define GEV__STR_(x) #x
#define GEV__STR(x) GEV__STR_(x)

#if defined(__x86_64__) && !defined(GEV_SWITCH_UCONTEXT)
#define GEV__FRAME_CSR 0 /* MXCSR (4 bytes), x87 control word (2 bytes) */
#define GEV__FRAME_R15 8
#define GEV__FRAME_R14 16
#define GEV__FRAME_R13 24
#define GEV__FRAME_R12 32
#define GEV__FRAME_RBX 40
#define GEV__FRAME_RBP 48
#define GEV__FRAME_PC 56 /* the return address */
#define GEV__FRAME_SIZE 64
/* The register list, one register per line. */
/* clang-format off */
#define GEV__FRAME_REGS                                                        \
  "pc:" GEV__STR(GEV__FRAME_PC)                                                \
  " rbp:" GEV__STR(GEV__FRAME_RBP)                                             \
  " rbx:" GEV__STR(GEV__FRAME_RBX)                                             \
  " r12:" GEV__STR(GEV__FRAME_R12)                                             \
  " r13:" GEV__STR(GEV__FRAME_R13)                                             \
  " r14:" GEV__STR(GEV__FRAME_R14)                                             \
  " r15:" GEV__STR(GEV__FRAME_R15)
/* clang-format on */
#define GEV__FRAME_KNOWN 1
#elif defined(__aarch64__) && !defined(GEV_SWITCH_UCONTEXT)
#define GEV__FRAME_X19 0 /* x19..x28 in pairs up to 72 */
#define GEV__FRAME_X29 80
#define GEV__FRAME_PC 88 /* x30, the link register */
#define GEV__FRAME_D8 96 /* d8..d15 in pairs up to 152 */
#define GEV__FRAME_FPCR 160
#define GEV__FRAME_SIZE 176
#define GEV__FRAME_REGS                                                        \
  "pc:88 x29:80 x19:0 x20:8 x21:16 x22:24 x23:32 x24:40 x25:48 x26:56 "        \
  "x27:64 x28:72"
#define GEV__FRAME_KNOWN 1
#else
#define GEV__FRAME_KNOWN 0
#define GEV__FRAME_REGS ""
#endif

#ifndef __ASSEMBLER__
#include <stddef.h>

void *gev__switch(void **save_sp, void *load_sp, void *value);
void *gev__ctx_make(void *lo, void *hi);
void gev__coro_entry(void *value) __attribute__((noreturn));

/* Copies n bytes of stack from src to dst (not overlapping) without going
 * through memcpy, which a sanitizer in the program may intercept and which
 * would then check the stack frames' redzones it copies. */
void gev__stack_copy(void *dst, const void *src, size_t n);

/* Calls fn(arg) on the stack whose top is stack_top (16-byte aligned),
 * in a frame whose unwind information says that its caller is the
 * suspended context with saved stack pointer saved_sp: an unwinder
 * started in fn (backtrace(), a debugger) walks from fn straight into the
 * suspended context's frames. Neither stack is written but the new one.
 * Only where GEV__FRAME_KNOWN (the assembly switches). */
void gev__call_parked(const void *saved_sp, void *stack_top, void (*fn)(void *),
                      void *arg);
#endif

#ifdef GEV_SWITCH_UCONTEXT
#define GEV__SP_MARGIN 1024
#else
#define GEV__SP_MARGIN 0
#endif

#endif
