/*
 * Context switch fallback over POSIX ucontext, for CPUs without an
 * assembly switch (and selectable with -Dswitch=ucontext so both paths are
 * tested). It is an order of magnitude slower: glibc's swapcontext saves and
 * restores the signal mask with a system call on every switch.
 *
 * The "stack pointer" this file hands out is the address of a context
 * record (a ucontext_t and the value in flight) kept on the context's own
 * stack: in the frame of gev__switch for a suspended context, at the top of
 * the stack for a fresh one. Live bytes can sit below it (swapcontext's own
 * frame), hence GEV__SP_MARGIN. The switcher writes the value it passes
 * into the record of the context it resumes, so no thread-local variable is
 * needed; a fresh context learns where its record is from makecontext's
 * arguments (the address split into two ints, the portable way).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <ucontext.h>

#include "arch/switch.h"

typedef struct ctx {
  ucontext_t uc;
  void *value; /* what the context that resumes this one passes */
} ctx;

static void trampoline(int hi, int lo) {
  uintptr_t addr = ((uintptr_t)(unsigned)hi << 32) | (unsigned)lo;
  gev__coro_entry(((ctx *)addr)->value);
}

void *gev__ctx_make(void *lo, void *hi) {
  uintptr_t top = ((uintptr_t)hi - sizeof(ctx)) & ~(uintptr_t)63;
  ctx *c = (ctx *)top;
  uint64_t addr = (uint64_t)top;
  if (getcontext(&c->uc) < 0)
    abort(); /* LCOV_EXCL_LINE: getcontext cannot fail on Linux */
  c->uc.uc_stack.ss_sp = lo;
  c->uc.uc_stack.ss_size = (size_t)(top - (uintptr_t)lo) - 64;
  c->uc.uc_link = NULL;
  c->value = NULL;
  makecontext(&c->uc, (void (*)(void))trampoline, 2, (int)(addr >> 32),
              (int)(addr & 0xffffffffu));
  return c;
}

void *gev__switch(void **save_sp, void *load_sp, void *value) {
  ctx self;
  ctx *to = load_sp;
  *save_sp = &self;
  to->value = value;
  if (swapcontext(&self.uc, &to->uc) < 0)
    abort(); /* LCOV_EXCL_LINE: only fails on a corrupt context */
  return self.value;
}

/* One word at a time through a compiler barrier, so that the loop cannot
 * be turned into a call of memcpy (see switch.h), and unseen by
 * AddressSanitizer when libgev itself is built with it. */
__attribute__((no_sanitize_address)) void
gev__stack_copy(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  for (; n >= sizeof(uintptr_t); n -= sizeof(uintptr_t)) {
    uintptr_t w;
    __builtin_memcpy(&w, s, sizeof w);
    __builtin_memcpy(d, &w, sizeof w);
    d += sizeof w;
    s += sizeof w;
    __asm__ volatile("" ::: "memory");
  }
  for (; n > 0; n--) {
    *d++ = *s++;
    __asm__ volatile("" ::: "memory");
  }
}
