/*
 * The coroutine layer's per-thread state: its creation on a thread's first
 * gev call, its teardown when the thread exits, and the per-thread
 * configuration and counters of gev/coro.h.
 *
 * The state is reached through gev__thread_root, libgev's only thread-local
 * variable (initial-exec: one load from the thread pointer). Its head and
 * the hooks of coro_ext.h are the layer above's way in: the thread-exit
 * hook runs first when the thread exits, with everything still in place,
 * so that the hub can be torn down before the state it stands on goes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "arch/switch.h"
#include "coro/coro_internal.h"
#include "coro/debug_table.h"
#include "coro/tools.h"

#define DEFAULT_REGION (1024 * 1024)

__thread gev__thread_head *gev__thread_root
    __attribute__((tls_model("initial-exec")));

/* Coroutine ids are handed to threads in ranges of ID_RANGE, so that
 * creating a coroutine takes no atomic operation; 0 is never an id. */
#define ID_RANGE 4096u
static unsigned long long next_id_range = 1;

static pthread_key_t thread_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

/* ---- Thread state ------------------------------------------------------ */

static void thread_free(void *p);

static void make_key(void) { pthread_key_create(&thread_key, thread_free); }

static gev_stack_mode env_stack_mode(void) {
  const char *m = getenv("GEV_STACK_MODE");
  if (m && strcmp(m, "shared") == 0)
    return GEV_STACK_SHARED;
  if (m && strcmp(m, "dedicated") == 0)
    return GEV_STACK_DEDICATED;
  return GEV_STACK_AUTO;
}

/* The thread's own stack, so that sanitizers are told where the main
 * coroutine lives when it is switched back to. */
static void main_stack_bounds(gev__cthread *t) {
  pthread_attr_t attr;
  void *addr;
  size_t size;
  if (pthread_getattr_np(pthread_self(), &attr) != 0)
    return; /* LCOV_EXCL_LINE: only fails on ENOMEM */
  if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
    t->main.stack.lo = addr;
    t->main.stack.hi = (char *)addr + size;
  }
  pthread_attr_destroy(&attr);
}

unsigned long long gev__coro_new_id_range(gev__cthread *t) {
  t->next_id = __atomic_fetch_add(&next_id_range, ID_RANGE, __ATOMIC_RELAXED);
  t->id_end = t->next_id + ID_RANGE;
  return t->next_id++;
}

static gev__cthread *thread_new(void) {
  gev__cthread *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  main_stack_bounds(t);
  t->main.thr = t;
  t->main.is_main = 1;
  t->main.tsan_fiber = gev__tsan_current();
  t->main.started = 1;
  t->main.head.direct = t;
  t->main.mode = GEV_STACK_DEDICATED;
  t->main.refs = 1;
  t->main.head.id = gev__coro_new_id(t);
  t->head.current = &t->main;
  t->head.main = &t->main;
  t->default_mode = env_stack_mode();
  t->region_size = DEFAULT_REGION;
  gev__overflow_thread_init(t);
  pthread_once(&key_once, make_key);
  pthread_setspecific(thread_key, t);
  gev__thread_root = &t->head;
  return t;
}

gev__cthread *gev__cthread_new(void) {
  gev__cthread *t = thread_new();
  if (!t)
    errno = ENOMEM;
  return t;
}

gev__thread_head *gev__thread_get(void) {
  gev__cthread *t = gev__cthread_get();
  return t ? &t->head : NULL;
}

int gev__coro_set_hooks(const gev__coro_hooks *hooks) {
  gev__cthread *t = gev__cthread_get();
  if (!t)
    return -1;
  t->hooks = hooks;
  return 0;
}

static void release_idle(gev__cthread *t) {
  gev__coro_free_blocks(t);
  gev__stack_cache_clear(t);
  if (t->region.map) {
    gev__stack_unmap(&t->region);
    t->stacks_mapped--;
  }
  if (t->scratch.map) {
    gev__tsan_drop(&t->scratch_tsan);
    gev__stack_unmap(&t->scratch);
    t->stacks_mapped--;
    t->scratch_sp = NULL;
  }
}

/* Thread exit. The layer above goes first (the hub tears itself down and
 * may still switch), while everything here is intact; then idle stacks are
 * returned. Coroutines still alive are leaked on purpose, with the state
 * they point to: nothing can run them any more. */
static void thread_free(void *p) {
  gev__cthread *t = p;
  const gev__coro_hooks *hooks = t->hooks;
  gev__thread_root = &t->head;
  t->hooks = NULL;
  if (hooks && hooks->thread_exit)
    hooks->thread_exit(&t->head);
  if (t->live == 0 && t->owned_live == 0 && t->head.current == &t->main) {
    release_idle(t);
    gev__overflow_thread_fini(t);
    free(t);
  }
  gev__thread_root = NULL;
}

/* ---- Per-thread configuration ------------------------------------------ */

GEV_EXTERN int gev_coro_set_default_stack_mode(gev_stack_mode mode) {
  gev__cthread *t = gev__cthread_get();
  if (!t)
    return -1;
  if (mode != GEV_STACK_DEDICATED && mode != GEV_STACK_SHARED &&
      mode != GEV_STACK_AUTO) {
    errno = EINVAL;
    return -1;
  }
  t->default_mode = mode;
  return 0;
}

GEV_EXTERN gev_stack_mode gev_coro_default_stack_mode(void) {
  gev__cthread *t = gev__cthread_get();
  return t ? t->default_mode : GEV_STACK_AUTO;
}

/* The region can move only when no live coroutine's frames are on it or
 * saved from it: a parked shared coroutine's frames hold pointers into the
 * region, and would be restored at another address. */
GEV_EXTERN int gev_coro_set_shared_stack_size(size_t bytes) {
  gev__cthread *t = gev__cthread_get();
  size_t page = gev__page_size();
  if (!t)
    return -1;
  if (bytes < 64 * 1024 || bytes > GEV__MAX_STACK) {
    errno = EINVAL;
    return -1;
  }
  if (t->shared_live > 0) {
    errno = EBUSY;
    return -1;
  }
  if (t->region.map) {
    gev__stack_unmap(&t->region);
    t->stacks_mapped--;
    t->occupant = NULL; /* dead: nothing of it is left to keep */
  }
  t->region_size = (bytes + page - 1) & ~(page - 1);
  return 0;
}

GEV_EXTERN void gev_coro_get_stats(gev_coro_stats *out) {
  gev__cthread *t = gev__cthread_get();
  memset(out, 0, sizeof *out);
  if (!t)
    return;
  out->live = t->live;
  out->stacks_mapped = t->stacks_mapped;
  out->stacks_cached = t->ncache;
  out->shared_saved = t->shared_saved;
  out->shared_copies = t->shared_copies;
}

GEV_EXTERN int gev_coro_thread_cleanup(void) {
  gev__cthread *t = gev__cthread_get();
  if (!t)
    return -1;
  if (t->live != 0 || t->head.current != &t->main) {
    errno = EBUSY;
    return -1;
  }
  t->occupant = NULL; /* only a dead occupant can remain once none is live */
  release_idle(t);
  t->scratch_started = 0;
  return 0;
}

/* ---- The table for debuggers ------------------------------------------- */

/* Where a control block keeps its id, name, state and saved stack pointer,
 * where the thread state keeps the running coroutine and the shared
 * region's occupant, and the saved frame of the switch (arch/switch.h):
 * see debug_table.h. Here because this file is in every program that uses
 * gev, also one linked with the static library. */
#if defined(GEV_SWITCH_UCONTEXT)
#define ARCH "ucontext"
#elif defined(__x86_64__)
#define ARCH "x86_64"
#elif defined(__aarch64__)
#define ARCH "aarch64"
#else
#define ARCH "unknown"
#endif

GEV_EXTERN const gev__debug_entry gev__debug_coro[] = {
    GEV__DEBUG_CONST("version", 1),
    GEV__DEBUG_TEXT("arch", ARCH),
    GEV__DEBUG_CONST("frame.known", GEV__FRAME_KNOWN),
#if GEV__FRAME_KNOWN
    GEV__DEBUG_CONST("frame.size", GEV__FRAME_SIZE),
    GEV__DEBUG_CONST("frame.pc", GEV__FRAME_PC),
#endif
    GEV__DEBUG_TEXT("frame.regs", GEV__FRAME_REGS),
    GEV__DEBUG_CONST("mode.shared", GEV_STACK_SHARED),
    GEV__DEBUG_FIELD("coro.upper", gev_coro, head.upper),
    GEV__DEBUG_FIELD("coro.id", gev_coro, head.id),
    GEV__DEBUG_FIELD("coro.sp", gev_coro, sp),
    GEV__DEBUG_FIELD("coro.thr", gev_coro, thr),
    GEV__DEBUG_FIELD("coro.name", gev_coro, name),
    GEV__DEBUG_FIELD("coro.mode", gev_coro, mode),
    GEV__DEBUG_FIELD("coro.started", gev_coro, started),
    GEV__DEBUG_FIELD("coro.dead", gev_coro, dead),
    GEV__DEBUG_FIELD("coro.is_main", gev_coro, is_main),
    GEV__DEBUG_FIELD("coro.saved_len", gev_coro, saved_len),
    GEV__DEBUG_FIELD("thread.current", gev__cthread, head.current),
    GEV__DEBUG_FIELD("thread.main", gev__cthread, head.main),
    GEV__DEBUG_FIELD("thread.occupant", gev__cthread, occupant),
    GEV__DEBUG_END,
};
