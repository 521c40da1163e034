/*
 * Dedicated coroutine stacks: mmap'd, lazily committed (the kernel backs a
 * page only when it is first touched), with a PROT_NONE guard page below
 * the usable range, and a per-thread LIFO cache so that creating and
 * finishing coroutines in a loop maps nothing after warm-up. Each mapping
 * is registered with Valgrind so that its stack-switch heuristics and
 * memcheck treat it as a stack. A stack overflow runs into the guard page;
 * the SIGSEGV handler here, on an alternate signal stack, names the
 * coroutine and aborts.
 *
 * The limit that shapes the rest. Every stack is two memory mappings (the
 * guard page is one, since its protection differs from the stack's), and
 * Linux allows a process vm.max_map_count of them (65,530 by default); a
 * guard page carved out of a larger mapping splits it just the same, and
 * a hole left unmapped instead can be filled by the next mmap of anyone in
 * the process. So a process holds at most about 32,000 guarded stacks, and
 * a parked coroutine's stack costs at least the page its frames touch. The
 * default mode, GEV_STACK_AUTO (gev/coro.h), therefore takes dedicated
 * stacks only while the process holds fewer than a budget of them (a
 * quarter of vm.max_map_count unless set), and gives the coroutines beyond
 * it shared ones, which need no mapping and keep only their live bytes.
 * The count of mapped stacks is process-wide, as the limit is.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "coro/coro_internal.h"
#include "coro/log_internal.h"
#include "coro/tools.h"

/* Cached; threads that make their first coroutine at once may both
 * store it (the same value), hence the atomics. */
size_t gev__page_size(void) {
  static size_t page;
  size_t p = __atomic_load_n(&page, __ATOMIC_RELAXED);
  if (!p) {
    p = (size_t)sysconf(_SC_PAGESIZE);
    __atomic_store_n(&page, p, __ATOMIC_RELAXED);
  }
  return p;
}

/* Stacks mapped in the process (guard + stack mappings each), and the
 * budget GEV_STACK_AUTO keeps to (0: not yet computed). */
static size_t mapped_in_process;
static size_t auto_limit;

static size_t default_auto_limit(void) {
  FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
  long max = 65530; /* Linux's default, when /proc cannot tell */
  if (f) {
    if (fscanf(f, "%ld", &max) != 1 || max < 64)
      max = 65530;
    fclose(f);
  }
  return (size_t)max / 4;
}

size_t gev__stack_auto_limit(void) {
  size_t n = __atomic_load_n(&auto_limit, __ATOMIC_RELAXED);
  if (n == 0) {
    n = default_auto_limit();
    size_t unset = 0;
    if (!__atomic_compare_exchange_n(&auto_limit, &unset, n, 0,
                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED))
      n = unset; /* set meanwhile */
  }
  return n == (size_t)-1 ? 0 : n;
}

GEV_EXTERN void gev_coro_set_auto_limit(size_t stacks) {
  /* 0 is stored as SIZE_MAX, since 0 means "not computed yet". */
  __atomic_store_n(&auto_limit, stacks ? stacks : (size_t)-1, __ATOMIC_RELAXED);
}

GEV_EXTERN size_t gev_coro_auto_limit(void) { return gev__stack_auto_limit(); }

int gev__stack_map(size_t size, gev__stack *out) {
  size_t page = gev__page_size();
  size_t total = size + page;
  char *map =
      mmap(NULL, total, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (map == MAP_FAILED)
    return -1;
  if (mprotect(map, page, PROT_NONE) < 0)
    goto out_unmap;
  out->map = map;
  out->map_size = total;
  out->lo = map + page;
  out->hi = map + total;
  out->vg_id = VALGRIND_STACK_REGISTER(out->lo, out->hi);
  __atomic_fetch_add(&mapped_in_process, 1, __ATOMIC_RELAXED);
  return 0;
out_unmap:
  munmap(map, total);
  errno = ENOMEM;
  return -1;
}

void gev__stack_unmap(gev__stack *s) {
  if (!s->map)
    return;
  VALGRIND_STACK_DEREGISTER(s->vg_id);
  /* Frames that never returned leave poisoned shadow behind. */
  gev__asan_unpoison(s->lo, (size_t)(s->hi - s->lo));
  munmap(s->map, s->map_size);
  memset(s, 0, sizeof *s);
  __atomic_fetch_sub(&mapped_in_process, 1, __ATOMIC_RELAXED);
}

/* Takes a cached stack of the size: 0, or -1 if there is none. */
static int cache_take(gev__cthread *t, size_t size, gev__stack *out) {
  for (size_t i = t->ncache; i-- > 0;) {
    if ((size_t)(t->cache[i].hi - t->cache[i].lo) != size)
      continue;
    *out = t->cache[i];
    t->cache[i] = t->cache[--t->ncache];
    return 0;
  }
  return -1;
}

static int map_counted(gev__cthread *t, size_t size, gev__stack *out) {
  if (gev__stack_map(size, out) < 0)
    return -1;
  t->stacks_mapped++;
  return 0;
}

int gev__stack_get(gev__cthread *t, size_t size, gev__stack *out) {
  if (cache_take(t, size, out) == 0)
    return 0;
  return map_counted(t, size, out);
}

int gev__stack_get_auto(gev__cthread *t, size_t size, gev__stack *out) {
  if (cache_take(t, size, out) == 0)
    return 0;
  if (__atomic_load_n(&mapped_in_process, __ATOMIC_RELAXED) >=
      gev__stack_auto_limit())
    return -1;
  return map_counted(t, size, out);
}

void gev__stack_put(gev__cthread *t, gev__stack *s) {
  if (!s->map)
    return;
  gev__asan_unpoison(s->lo, (size_t)(s->hi - s->lo));
  if (t->ncache < GEV__STACK_CACHE_MAX) {
    t->cache[t->ncache++] = *s;
    memset(s, 0, sizeof *s);
    return;
  }
  gev__stack_unmap(s);
  t->stacks_mapped--;
}

void gev__stack_cache_clear(gev__cthread *t) {
  while (t->ncache > 0) {
    gev__stack_unmap(&t->cache[--t->ncache]);
    t->stacks_mapped--;
  }
}

size_t gev__stack_cached(const gev__cthread *t) { return t->ncache; }

/* ---- Overflow reporting ------------------------------------------------ */

/* The dispositions gev's handler replaced, once per process (see
 * gev/coro.h: it is never installed again, so a handler the program
 * installs later stays). */
static struct sigaction old_segv, old_bus;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;

/* The guard page of the stack the current coroutine runs on. A fault a
 * little below it (a large frame stepping over the page) counts too. */
static int in_guard(const gev__cthread *t, const char *addr) {
  const gev_coro *c = t->head.current;
  const gev__stack *s;
  if (!c || c->is_main)
    return 0;
  s = c->mode == GEV_STACK_SHARED ? &t->region : &c->stack;
  if (!s->map)
    return 0;
  return addr < s->lo && addr + 16 * gev__page_size() >= s->map;
}

static void overflow_handler(int sig, siginfo_t *si, void *uctx);

/* Whether the process's disposition for sig is still this file's handler
 * (and not one the program installed after gev, which may be calling it as
 * the handler it replaced). */
static int handler_installed(int sig) {
  struct sigaction cur;
  return sigaction(sig, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
         cur.sa_sigaction == overflow_handler;
}

static void overflow_handler(int sig, siginfo_t *si, void *uctx) {
  gev__cthread *t = gev__cthread_peek();
  struct sigaction *old = sig == SIGBUS ? &old_bus : &old_segv;
  (void)uctx;
  if (t && in_guard(t, si->si_addr)) {
    const char *name = t->head.current->name;
    gev__log_parts(GEV_LOG_FATAL, "gev: stack overflow in coroutine ",
                   name ? name : "<unnamed>", NULL);
    signal(SIGABRT, SIG_DFL);
    abort();
  }
  /* Not ours. Calling the previous handler from here would run it with
   * this handler's mask and flags; instead give the signal back to it:
   * restore its disposition and return, so that the faulting instruction
   * faults again and the kernel delivers the fault as that disposition
   * asks (SIG_DFL dumps core). Unless a handler installed after gev has
   * called this one: its disposition stays, and it goes on from here. */
  if (handler_installed(sig))
    sigaction(sig, old, NULL);
}

static void install_handler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = overflow_handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &old_segv);
  sigaction(SIGBUS, &sa, &old_bus);
}

void gev__overflow_thread_init(gev__cthread *t) {
  stack_t ss, old;
  pthread_once(&handler_once, install_handler);
  if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE))
    return; /* the application installed its own */
  t->altstack_size = 64 * 1024;
  t->altstack = mmap(NULL, t->altstack_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (t->altstack == MAP_FAILED) {
    t->altstack = NULL; /* LCOV_EXCL_LINE: overflow then dies silently */
    return;
  }
  ss.ss_sp = t->altstack;
  ss.ss_size = t->altstack_size;
  ss.ss_flags = 0;
  sigaltstack(&ss, NULL);
}

void gev__overflow_thread_fini(gev__cthread *t) {
  stack_t ss;
  if (!t->altstack)
    return;
  memset(&ss, 0, sizeof ss);
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, NULL);
  munmap(t->altstack, t->altstack_size);
  t->altstack = NULL;
}
