/*
 * Context switch fallback over POSIX ucontext, for CPUs without an
 * assembly switch (and selectable with -Dswitch=ucontext so both paths are
 * tested). It is an order of magnitude slower: glibc's swapcontext saves and
 * restores the signal mask with a system call on every switch.
 *
 * The "stack pointer" this file hands out is the address of a ucontext_t
 * kept on the context's own stack: in the frame of gev__switch for a
 * suspended context, at the top of the stack for a fresh one. Live bytes can
 * sit below it (swapcontext's own frame), hence GEV__SP_MARGIN.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <ucontext.h>

#include "arch/switch.h"

static __thread void *transfer;

static void trampoline(void) { gev__coro_entry(transfer); }

void *gev__ctx_make(void *lo, void *hi) {
  uintptr_t top = ((uintptr_t)hi - sizeof(ucontext_t)) & ~(uintptr_t)63;
  ucontext_t *uc = (ucontext_t *)top;
  if (getcontext(uc) < 0)
    abort(); /* LCOV_EXCL_LINE: getcontext cannot fail on Linux */
  uc->uc_stack.ss_sp = lo;
  uc->uc_stack.ss_size = (size_t)(top - (uintptr_t)lo) - 64;
  uc->uc_link = NULL;
  makecontext(uc, trampoline, 0);
  return uc;
}

void *gev__switch(void **save_sp, void *load_sp, void *value) {
  ucontext_t self;
  *save_sp = &self;
  transfer = value;
  if (swapcontext(&self, (ucontext_t *)load_sp) < 0)
    abort(); /* LCOV_EXCL_LINE: only fails on a corrupt context */
  return transfer;
}
