/*
 * Coroutines with greenlet's semantics over the per-CPU switch.
 *
 * Switching. gev_coro_switch() resolves its target first (a dead target
 * forwards to its nearest live ancestor; an error thrown into an unstarted
 * one kills it and forwards to its parent), leaves the value or error in the
 * thread's transfer slot, and switches. Whoever resumes reads the slot.
 *
 * Dedicated stacks are mapped at the first switch into a coroutine (so that
 * a million spawned-but-unstarted coroutines cost no mappings) and go back to
 * the thread's cache the moment the coroutine dies; since a coroutine cannot
 * free the stack it runs on, the dying one leaves itself in t->dying and
 * the next context to run releases it.
 *
 * Shared stacks (greenlet's stack slicing). All shared-mode coroutines of a
 * thread run on one region; t->occupant is the one whose live bytes are in
 * it. Switching to the occupant, or to any dedicated-stack coroutine, is a
 * plain switch: nothing is copied. Switching to a shared coroutine that is
 * not the occupant goes through the scratch context, a small dedicated stack
 * of the thread's: there, with no coroutine running on the region, the
 * occupant's live bytes [sp, top) are saved to an exactly sized heap buffer
 * and the target's are copied back (or its first frame is built), and the
 * scratch context switches on to the target. If the occupant's bytes cannot
 * be saved for lack of memory, the scratch context switches back to the
 * coroutine that came from, whose switch then fails with ENOMEM: nothing
 * was moved. When the switch leaves a coroutine that has just died, the
 * room is made beforehand (the occupant is then suspended, so its size is
 * known), since there is nowhere to go back to.
 *
 * The thread state these work on (creation, exit, configuration) is in
 * thread.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/switch.h"
#include "coro/coro_internal.h"
#include "coro/log_internal.h"
#include "coro/tools.h"

#define DEFAULT_STACK (256 * 1024)
#define MIN_STACK (16 * 1024)
#define SCRATCH_STACK (64 * 1024)

static char scratch_marker;

/* ---- Sanitizer and debugger hooks -------------------------------------- */

static void stack_bounds(const gev__cthread *t, const gev_coro *c,
                         const void **lo, size_t *size) {
  const gev__stack *s = c->mode == GEV_STACK_SHARED ? &t->region : &c->stack;
  *lo = s->lo;
  *size = (size_t)(s->hi - s->lo);
}

/* Tells ASan that this context leaves for [lo, lo+size); a context that
 * will never run again passes NULL so its fake stack is dropped. */
static inline void asan_leave(void **fake, const void *lo, size_t size) {
  if (GEV_ASAN_PRESENT)
    __sanitizer_start_switch_fiber(fake, lo, size);
}
static inline void asan_arrive(void *fake) {
  if (GEV_ASAN_PRESENT)
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
}

/* ---- Shared region ----------------------------------------------------- */

static char *live_bottom(const gev_coro *c) {
  return (char *)c->sp - GEV__SP_MARGIN;
}

static size_t live_length(const gev__cthread *t, const gev_coro *c) {
  return (size_t)(t->region.hi - live_bottom(c));
}

/* Makes c's save buffer len bytes. A buffer that cannot shrink is kept:
 * it is big enough. */
static int size_saved(gev__cthread *t, gev_coro *c, size_t len) {
  char *buf;
  if (len == c->saved_cap)
    return 0;
  if (!(buf = realloc(c->saved, len)))
    return len < c->saved_cap ? 0 : -1;
  t->shared_saved += len;
  t->shared_saved -= c->saved_cap;
  c->saved = buf;
  c->saved_cap = len;
  return 0;
}

/* Saves the occupant's live bytes to its heap buffer, sized to fit. */
static int save_shared(gev__cthread *t, gev_coro *c) {
  size_t len = live_length(t, c);
  if (size_saved(t, c, len) < 0)
    return -1;
  gev__stack_copy(c->saved, live_bottom(c), len);
  c->saved_len = len;
  t->shared_copies++;
  return 0;
}

/* Sizes the save buffer of a suspended occupant that target will evict,
 * while the switcher can still be told (the scratch context saves into
 * it). The running occupant's size is known only once it has switched, so
 * the scratch context sizes that one; a dead one is not saved. */
static int reserve_save(gev__cthread *t, const gev_coro *target) {
  gev_coro *occ = t->occupant;
  if (!occ || occ == target || occ == t->head.current || occ->dead)
    return 0;
  return size_saved(t, occ, live_length(t, occ));
}

/* The shadow of the region still describes the previous occupant's frames;
 * clear it rather than report their redzones against the next one. The
 * cost: ASan does not see stack-buffer overflows of shared-mode frames
 * that were evicted and restored. */
static void clear_region_shadow(gev__cthread *t) {
  gev__asan_unpoison(t->region.lo, (size_t)(t->region.hi - t->region.lo));
}

static void restore_shared(gev__cthread *t, gev_coro *c) {
  char *dst = t->region.hi - c->saved_len;
  /* Memcheck marked the region below the last occupant's sp as gone when
   * its frames returned; the bytes we copy in are a live stack again. */
  VALGRIND_MAKE_MEM_UNDEFINED(dst, c->saved_len);
  gev__stack_copy(dst, c->saved, c->saved_len);
  t->shared_copies++;
}

static void drop_saved(gev__cthread *t, gev_coro *c) {
  t->shared_saved -= c->saved_cap;
  free(c->saved);
  c->saved = NULL;
  c->saved_len = c->saved_cap = 0;
}

static int ensure_region(gev__cthread *t) {
  if (t->region.map)
    return 0;
  if (gev__stack_map(t->region_size, &t->region) < 0)
    return -1;
  t->stacks_mapped++;
  return 0;
}

int gev__coro_make_occupant(gev__cthread *t, gev_coro *c) {
  gev_coro *occ = t->occupant;
  if (occ == c)
    return 0;
  if (ensure_region(t) < 0 || (occ && !occ->dead && save_shared(t, occ) < 0)) {
    errno = ENOMEM;
    return -1;
  }
  clear_region_shadow(t);
  restore_shared(t, c);
  t->occupant = c;
  return 0;
}

/* ---- Death and stack release ------------------------------------------- */

static void mark_dead(gev__cthread *t, gev_coro *c) {
  if (c->dead)
    return;
  c->dead = 1;
  c->head.direct = NULL;
  if (c->started && c->mode == GEV_STACK_SHARED)
    t->shared_live--;
}

/* Gives back what a dead coroutine's stack held: its dedicated stack to
 * the cache, or its place in the shared region and its saved bytes. */
static void release_stack(gev__cthread *t, gev_coro *c) {
  gev__tsan_drop(&c->tsan_fiber);
  if (c->mode == GEV_STACK_SHARED) {
    if (t->occupant == c)
      t->occupant = NULL;
    drop_saved(t, c);
  } else {
    gev__stack_put(t, &c->stack);
  }
}

/* Releases the stack of the coroutine that died just before this context
 * resumed. */
static void release_dying(gev__cthread *t) {
  gev_coro *c = t->dying;
  if (!c)
    return;
  t->dying = NULL;
  release_stack(t, c);
}

/* ---- The scratch context ----------------------------------------------- */

/* The occupant could not be saved: return to the context that switched
 * here, whose switch fails (raw_switch sees switch_failed). Nothing has
 * been moved yet. */
static void scratch_go_back(gev__cthread *t, gev_coro *from) {
  const void *lo;
  size_t size;
  t->switch_failed = 1;
  t->head.current = from;
  stack_bounds(t, from, &lo, &size);
  asan_leave(&t->scratch_fake, lo, size);
  gev__tsan_switch(&from->tsan_fiber);
  gev__switch(&t->scratch_sp, from->sp, NULL);
}

/* The scratch context's loop: each switch into it (from raw_switch, with
 * the value in flight in t->xfer_value) makes room for t->pend_to. */
static void scratch_main(gev__cthread *t) __attribute__((noreturn));
static void scratch_main(gev__cthread *t) {
  for (;;) {
    gev_coro *to = t->pend_to;
    gev_coro *occ;
    asan_arrive(t->scratch_fake);
    release_dying(t);
    occ = t->occupant;
    if (occ && occ != to && save_shared(t, occ) < 0) {
      scratch_go_back(t, t->pend_from);
      continue;
    }
    if (occ)
      occ->head.direct = NULL; /* evicted: the next switch restores it */
    clear_region_shadow(t);
    if (to->started) {
      restore_shared(t, to);
    } else {
      VALGRIND_MAKE_MEM_UNDEFINED(t->region.hi - 256, 256);
      to->sp = gev__ctx_make(t->region.lo, t->region.hi);
      t->shared_live++;
    }
    t->occupant = to;
    to->head.direct = t;
    asan_leave(&t->scratch_fake, t->region.lo,
               (size_t)(t->region.hi - t->region.lo));
    to->started = 1;
    gev__tsan_switch(&to->tsan_fiber);
    gev__switch(&t->scratch_sp, to->sp, t->xfer_value);
  }
}

static int ensure_scratch(gev__cthread *t) {
  if (t->scratch_sp)
    return 0;
  if (gev__stack_map(SCRATCH_STACK, &t->scratch) < 0)
    return -1;
  t->stacks_mapped++;
  t->scratch_sp = gev__ctx_make(t->scratch.lo, t->scratch.hi);
  return 0;
}

/* ---- Entry ------------------------------------------------------------- */

static void finish(gev__cthread *t, gev_coro *self, void *result)
    __attribute__((noreturn));

void gev__coro_entry(void *value) {
  gev__cthread *t = gev__cthread_peek();
  gev_coro *self;
  if (value == &scratch_marker)
    scratch_main(t);
  self = t->head.current;
  asan_arrive(NULL);
  release_dying(t);
  finish(t, self, self->fn(value));
}

/* ---- Switching --------------------------------------------------------- */

/* Makes sure target can be switched to: a stack for an unstarted dedicated
 * coroutine; for a shared one the region, the scratch context and room to
 * save a suspended occupant. An unstarted auto-mode coroutine becomes
 * dedicated if a stack is to be had within the budget (stack.c), else
 * shared. -1 with errno ENOMEM; nothing is changed that matters to anyone
 * else. */
static int prepare(gev__cthread *t, gev_coro *target) {
  if (__builtin_expect(target->mode == GEV_STACK_AUTO, 0))
    target->mode =
        gev__stack_get_auto(t, target->stack_size, &target->stack) == 0
            ? GEV_STACK_DEDICATED
            : GEV_STACK_SHARED;
  if (target->mode == GEV_STACK_SHARED) {
    if (t->occupant == target)
      return 0;
    if (ensure_region(t) < 0 || ensure_scratch(t) < 0 ||
        reserve_save(t, target) < 0) {
      errno = ENOMEM;
      return -1;
    }
    return 0;
  }
  if (target->started || target->sp)
    return 0;
  if (!target->stack.map &&
      gev__stack_get(t, target->stack_size, &target->stack) < 0) {
    errno = ENOMEM;
    return -1;
  }
  target->offset = (t->serial++ & 15u) * 64u;
  /* A cached stack's top was "popped" when its last frames returned;
   * tell Memcheck the new first frame is live stack again. */
  VALGRIND_MAKE_MEM_UNDEFINED(target->stack.hi - target->offset - 256,
                              256 + target->offset);
  target->sp =
      gev__ctx_make(target->stack.lo, target->stack.hi - target->offset);
  return 0;
}

/* Switches from the running coroutine to target (already resolved and
 * prepared), passing value. Returns 0 in cur when something switches
 * back, with *got the value it passed, or -1 with ENOMEM at once when the
 * scratch context could not make room for a shared target (nothing was
 * switched). */
static inline __attribute__((always_inline)) int
raw_switch(gev__cthread *t, gev_coro *cur, gev_coro *target, int dying,
           void *value, void **got) {
  const void *lo;
  size_t size;
  void **fake = dying ? NULL : &cur->asan_fake;
  /* THE TRACE HOOK (gev_set_trace, trace.c). Every switch with a hook set
   * comes here: can_switch_directly() refuses the direct path while
   * t->trace is set, so the direct switch pays one predicted branch on a
   * field next to the thread head and nothing else. */
  if (__builtin_expect(t->trace != NULL, 0))
    gev__trace(t,
               dying         ? GEV_TRACE_FINISH
               : t->xfer_err ? GEV_TRACE_THROW
                             : GEV_TRACE_SWITCH,
               cur, target);
  t->head.current = target;
  if (target->mode == GEV_STACK_SHARED && t->occupant != target) {
    t->pend_to = target;
    t->pend_from = cur;
    t->xfer_value = value;
    asan_leave(fake, t->scratch.lo, (size_t)(t->scratch.hi - t->scratch.lo));
    gev__tsan_switch(&t->scratch_tsan);
    if (!t->scratch_started) {
      t->scratch_started = 1;
      *got = gev__switch(&cur->sp, t->scratch_sp, &scratch_marker);
    } else {
      *got = gev__switch(&cur->sp, t->scratch_sp, NULL);
    }
  } else {
    stack_bounds(t, target, &lo, &size);
    target->started = 1;
    target->head.direct = t;
    asan_leave(fake, lo, size);
    gev__tsan_switch(&target->tsan_fiber);
    *got = gev__switch(&cur->sp, target->sp, value);
  }
  asan_arrive(cur->asan_fake);
  release_dying(t);
  if (__builtin_expect(t->switch_failed, 0)) {
    t->switch_failed = 0;
    errno = ENOMEM;
    return -1;
  }
  return 0;
}

/* Follows greenlet's forwarding rules: dead targets forward to their
 * parent; an error thrown into an unstarted target kills it. The kill
 * error thrown into a dead target is a plain return of nothing, as
 * greenlet turns GreenletExit thrown into a dead greenlet into a return. */
static gev_coro *resolve(gev__cthread *t, gev_coro *target, void **value,
                         int *err) {
  if (target->dead && *err == GEV_EKILL) {
    *err = 0;
    *value = NULL;
  }
  for (;;) {
    if (target->dead) {
      target = target->parent;
      continue;
    }
    if (!target->started && *err) {
      if (t->trace) /* the trace hook: killed before it started */
        gev__trace(t, GEV_TRACE_FINISH, target, target->parent);
      target->dead = 1;
      target->exit_error = *err == GEV_EKILL ? 0 : *err;
      if (*err == GEV_EKILL) {
        *err = 0;
        *value = NULL;
      }
      target = target->parent;
      continue;
    }
    return target;
  }
}

/* The resumed side's reading of a switch: the error thrown in, if any,
 * else the value passed. */
static inline int receive(gev__cthread *t, void *value, void **result) {
  int err = t->xfer_err;
  if (err) {
    t->xfer_err = 0;
    errno = err;
    return -1;
  }
  if (result)
    *result = value;
  return 0;
}

int gev__switch_resumed(void *value, void **result) {
  gev__cthread *t = gev__cthread_peek();
  release_dying(t);
  return receive(t, value, result);
}

#if !GEV__SWITCH_DIRECT_ASM
int gev__switch_direct(void **save_sp, void *load_sp, void *value,
                       void **result) {
  return gev__switch_resumed(gev__switch(save_sp, load_sp, value), result);
}
#endif

static int check_target(gev__cthread **tp, gev_coro *target) {
  gev__cthread *t = gev__cthread_get();
  if (!t)
    return -1;
  if (!target) {
    errno = EINVAL;
    return -1;
  }
  if (target->thr != t) {
    errno = EXDEV; /* cannot switch to a different thread */
    return -1;
  }
  *tp = t;
  return 0;
}

/* Returns as gev__coro_switch_to(), but with `failed` (GEV__SWITCH_FAILED,
 * or -1 for the public calls) when nothing was switched. Out of line, so
 * that the direct switch's callers stay lean, and they tail-call it. */
__attribute__((noinline)) static int switch_to(gev__cthread *t,
                                               gev_coro *target, void *value,
                                               int err, void **result,
                                               int failed) {
  gev_coro *cur = t->head.current;
  target = resolve(t, target, &value, &err);
  if (target != cur) {
    if (prepare(t, target) < 0)
      return failed;
    t->xfer_err = err;
    if (raw_switch(t, cur, target, 0, value, &value) < 0) {
      t->xfer_err = 0;
      return failed;
    }
  } else {
    t->xfer_err = err;
  }
  return receive(t, value, result);
}

/* The common case, kept short: a live, started target of this thread
 * whose stack is in place (dedicated, or the shared region's occupant),
 * which is what head.direct says. */
static inline int can_switch_directly(const gev__cthread *t,
                                      const gev_coro *target) {
  return t && target && target->head.direct == t && target != t->head.current &&
         !t->trace /* the trace hook */;
}

/* The direct switch telling AddressSanitizer (or ThreadSanitizer), out of
 * line: only a process with an ASan runtime (or a TSan build) takes it,
 * and the plain path stays free of checks. */
__attribute__((noinline)) static int switch_directly_annotated(gev__cthread *t,
                                                               gev_coro *target,
                                                               void *value,
                                                               void **result) {
  gev_coro *cur = t->head.current;
  const void *lo;
  size_t size;
  t->head.current = target;
  stack_bounds(t, target, &lo, &size);
  asan_leave(&cur->asan_fake, lo, size);
  gev__tsan_switch(&target->tsan_fiber);
  value = gev__switch(&cur->sp, target->sp, value);
  asan_arrive(cur->asan_fake);
  release_dying(t);
  return receive(t, value, result);
}

/* The direct switch ends in a tail call of the assembly, which returns
 * straight to the caller of gev_coro_switch (see switch.h). */
static inline int switch_directly(gev__cthread *t, gev_coro *target,
                                  void *value, void **result) {
  gev_coro *cur = t->head.current;
  if (GEV_ASAN_PRESENT || GEV_TSAN)
    return switch_directly_annotated(t, target, value, result);
  t->head.current = target;
  return gev__switch_direct(&cur->sp, target->sp, value, result);
}

GEV_EXTERN int gev_coro_switch(gev_coro *target, void *value, void **result) {
  gev__cthread *t = gev__cthread_peek();
  if (__builtin_expect(can_switch_directly(t, target), 1))
    return switch_directly(t, target, value, result);
  if (check_target(&t, target) < 0)
    return -1;
  return switch_to(t, target, value, 0, result, -1);
}

int gev__coro_switch_to(gev_coro *target, void *value, void **result) {
  gev__cthread *t = gev__cthread_peek();
  if (__builtin_expect(can_switch_directly(t, target), 1))
    return switch_directly(t, target, value, result);
  if (check_target(&t, target) < 0)
    return GEV__SWITCH_FAILED;
  return switch_to(t, target, value, 0, result, GEV__SWITCH_FAILED);
}

GEV_EXTERN int gev_coro_throw(gev_coro *target, int err, void **result) {
  gev__cthread *t;
  if (check_target(&t, target) < 0)
    return -1;
  if (err <= 0) {
    errno = EINVAL;
    return -1;
  }
  return switch_to(t, target, NULL, err, result, -1);
}

/* The coroutine's function returned: hand its result to the parent chain
 * and never come back. If the parent cannot be switched to for lack of
 * memory (see gev/coro.h), the result is dropped and ENOMEM is thrown to
 * the parent's nearest ancestor that can be; the main coroutine always
 * can. */
static void finish(gev__cthread *t, gev_coro *self, void *result) {
  int err = self->exit_error;
  gev_coro *target;
  void *value = err ? NULL : result;
  mark_dead(t, self);
  t->dying = self;
  target = resolve(t, self->parent, &value, &err);
  while (prepare(t, target) < 0) {
    gev__log(GEV_LOG_ERROR,
             "gev: coroutine %s finished, but its parent %s cannot be "
             "resumed for lack of memory; ENOMEM goes to its ancestors",
             gev_coro_name(self), gev_coro_name(target));
    value = NULL;
    err = ENOMEM;
    target = resolve(t, target->parent, &value, &err);
  }
  t->xfer_err = err;
  raw_switch(t, self, target, 1, value, &value);
  gev__log(GEV_LOG_FATAL, "gev: a dead coroutine was resumed");
  abort();
}

GEV_EXTERN int gev_coro_set_exit_error(int err) {
  gev__cthread *t = gev__cthread_get();
  if (!t)
    return -1;
  if (t->head.current->is_main || err < 0) {
    errno = EINVAL;
    return -1;
  }
  t->head.current->exit_error = err == GEV_EKILL ? 0 : err;
  return 0;
}

/* ---- Creation and release ---------------------------------------------- */

/* Control blocks are recycled through a short per-thread free list: glibc's
 * calloc skips its thread cache, and create/free in a loop is the common
 * pattern (spawned greenlets). A recycled block gets a new id. */
static gev_coro *block_get(gev__cthread *t) {
  gev_coro *c = t->free_blocks;
  if (!c)
    return calloc(1, sizeof *c);
  t->free_blocks = c->parent;
  t->nfree_blocks--;
  memset(c, 0, sizeof *c);
  return c;
}

static void block_put(gev__cthread *t, gev_coro *c) {
  if (t->nfree_blocks >= GEV__FREE_BLOCKS_MAX) {
    free(c);
    return;
  }
  c->parent = t->free_blocks;
  t->free_blocks = c;
  t->nfree_blocks++;
}

void gev__coro_free_blocks(gev__cthread *t) {
  gev_coro *c;
  while ((c = t->free_blocks)) {
    t->free_blocks = c->parent;
    free(c);
  }
  t->nfree_blocks = 0;
}

static int valid_opts(const gev_coro_opts *o, size_t *size,
                      gev_stack_mode *mode, gev__cthread *t) {
  size_t page;
  if (!o || (!o->stack_size && !o->stack_mode)) { /* the usual: defaults */
    *size = DEFAULT_STACK;
    *mode = t->default_mode;
    return 0;
  }
  page = gev__page_size();
  *size = o->stack_size ? o->stack_size : DEFAULT_STACK;
  *mode = o->stack_mode ? o->stack_mode : t->default_mode;
  if (*size < MIN_STACK || *size > GEV__MAX_STACK)
    return -1;
  if (*mode != GEV_STACK_DEDICATED && *mode != GEV_STACK_SHARED &&
      *mode != GEV_STACK_AUTO)
    return -1;
  *size = (*size + page - 1) & ~(page - 1);
  return 0;
}

static gev_coro *coro_new(gev__cthread *t, gev_coro_fn fn, gev_coro *parent,
                          const gev_coro_opts *opts) {
  gev_coro *c;
  size_t size;
  gev_stack_mode mode;
  if (!fn || valid_opts(opts, &size, &mode, t) < 0) {
    errno = EINVAL;
    return NULL;
  }
  if (!parent)
    parent = t->head.current;
  if (parent->thr != t) {
    errno = EXDEV;
    return NULL;
  }
  if (!(c = block_get(t)))
    return NULL;
  if (opts && opts->name && !(c->name = strdup(opts->name))) {
    block_put(t, c);
    return NULL;
  }
  c->head.id = gev__coro_new_id(t);
  c->thr = t;
  c->fn = fn;
  c->mode = (unsigned char)mode;
  c->stack_size = size;
  c->refs = 1;
  c->parent = parent;
  parent->refs++;
  if (t->trace) /* the trace hook */
    gev__trace(t, GEV_TRACE_SPAWN, t->head.current, c);
  return c;
}

GEV_EXTERN gev_coro *gev_coro_new(gev_coro_fn fn, gev_coro *parent,
                                  const gev_coro_opts *opts) {
  gev__cthread *t = gev__cthread_get();
  gev_coro *c;
  if (!t || !(c = coro_new(t, fn, parent, opts)))
    return NULL;
  t->live++;
  return c;
}

gev_coro *gev__coro_new_owned(gev_coro_fn fn, gev_coro *parent,
                              const gev_coro_opts *opts) {
  gev__cthread *t = gev__cthread_get();
  gev_coro *c;
  if (!t || !(c = coro_new(t, fn, parent, opts)))
    return NULL;
  c->owned = 1;
  t->owned_live++;
  return c;
}

_Static_assert(offsetof(gev__cthread, head) == 0,
               "gev: a thread's state starts with the head gev__thread_root "
               "points to, which head.direct is compared with");

int gev__coro_prepare(gev_coro *c) {
  gev__cthread *t;
  if (check_target(&t, c) < 0)
    return -1;
  if (c->dead || c == t->head.current ||
      (c->mode == GEV_STACK_DEDICATED && (c->started || c->sp)))
    return 0;
  return prepare(t, c);
}

void gev__coro_exit_to(gev_coro *target, void *value) {
  gev__cthread *t = gev__cthread_peek();
  gev_coro *self = t->head.current;
  if (self->exit_error || target->dead || target == self ||
      prepare(t, target) < 0)
    finish(t, self, value);
  mark_dead(t, self);
  t->dying = self;
  t->xfer_err = 0;
  raw_switch(t, self, target, 1, value, &value);
  gev__log(GEV_LOG_FATAL, "gev: a dead coroutine was resumed");
  abort();
}

static void coro_unref(gev_coro *c) {
  while (c && !c->is_main && --c->refs == 0) {
    gev_coro *parent = c->parent;
    free(c->name);
    block_put(c->thr, c);
    c = parent;
  }
}

/* Discards a suspended coroutine's stack without running it. */
void gev__coro_discard(gev_coro *c) {
  mark_dead(c->thr, c);
  release_stack(c->thr, c);
}

static int would_cycle(const gev_coro *c, const gev_coro *parent) {
  for (const gev_coro *p = parent; p; p = p->parent)
    if (p == c)
      return 1;
  return 0;
}

/* greenlet's GC behaviour: throw the kill error in so the coroutine can
 * unwind, with the freeing coroutine as the place it returns to. */
static void kill_for_free(gev__cthread *t, gev_coro *c) {
  if (!would_cycle(c, t->head.current))
    gev_coro_set_parent(c, t->head.current);
  gev_coro_throw(c, GEV_EKILL, NULL);
  if (!c->dead) {
    gev__log(GEV_LOG_WARNING,
             "gev: coroutine %s ignored the kill error when freed; "
             "its stack is discarded",
             c->name ? c->name : "<unnamed>");
    gev__coro_discard(c);
  }
}

static inline __attribute__((always_inline)) int coro_free(gev__cthread *t,
                                                           gev_coro *c) {
  if (c == t->head.current) {
    errno = EBUSY;
    return -1;
  }
  if (c->started && !c->dead)
    kill_for_free(t, c);
  if (!c->started) {
    mark_dead(t, c);
    release_stack(t, c); /* gev__coro_prepare may have mapped one */
  }
  if (c->mode == GEV_STACK_SHARED && c->saved)
    drop_saved(t, c);
  c->handle_freed = 1;
  if (c->head.upper && t->hooks && t->hooks->coro_free)
    t->hooks->coro_free(c, c->head.upper);
  c->head.upper = NULL;
  if (c->owned)
    t->owned_live--;
  else
    t->live--;
  coro_unref(c);
  return 0;
}

static int check_free(gev__cthread **tp, gev_coro *c) {
  if (check_target(tp, c) < 0)
    return -1;
  if (c->is_main || c->handle_freed) {
    errno = EINVAL;
    return -1;
  }
  return 0;
}

GEV_EXTERN int gev_coro_free(gev_coro *c) {
  gev__cthread *t;
  if (!c)
    return 0;
  if (check_free(&t, c) < 0)
    return -1;
  if (c->owned) {
    errno = EPERM; /* the hub's own coroutine */
    return -1;
  }
  return coro_free(t, c);
}

int gev__coro_free_owned(gev_coro *c) {
  gev__cthread *t;
  if (check_free(&t, c) < 0)
    return -1;
  if (!c->owned) {
    errno = EINVAL;
    return -1;
  }
  return coro_free(t, c);
}

/* ---- Queries ----------------------------------------------------------- */

void gev__coro_prefetch_stack(const gev_coro *c) {
  const char *p = c->saved ? c->saved : (const char *)c->sp;
  if (p) {
    __builtin_prefetch(p);
    __builtin_prefetch(p + 64);
  }
}

GEV_EXTERN gev_coro *gev_coro_current(void) {
  gev__cthread *t = gev__cthread_get();
  return t ? t->head.current : NULL;
}

GEV_EXTERN gev_coro *gev_coro_main(void) {
  gev__cthread *t = gev__cthread_get();
  return t ? &t->main : NULL;
}

GEV_EXTERN gev_coro *gev_coro_parent(const gev_coro *c) {
  return c ? c->parent : NULL;
}

GEV_EXTERN int gev_coro_set_parent(gev_coro *c, gev_coro *parent) {
  if (!c || !parent || c->is_main) {
    errno = EINVAL;
    return -1;
  }
  if (c->thr != parent->thr || c->thr != gev__cthread_peek()) {
    errno = EXDEV;
    return -1;
  }
  if (would_cycle(c, parent)) {
    errno = EINVAL;
    return -1;
  }
  parent->refs++;
  coro_unref(c->parent);
  c->parent = parent;
  return 0;
}

GEV_EXTERN int gev_coro_started(const gev_coro *c) { return c && c->started; }
GEV_EXTERN int gev_coro_dead(const gev_coro *c) { return c && c->dead; }
GEV_EXTERN int gev_coro_is_main(const gev_coro *c) { return c && c->is_main; }
GEV_EXTERN unsigned long long gev_coro_id(const gev_coro *c) {
  return c ? c->head.id : 0;
}
GEV_EXTERN gev_stack_mode gev_coro_stack_mode(const gev_coro *c) {
  return c ? (gev_stack_mode)c->mode : GEV_STACK_DEFAULT;
}
GEV_EXTERN const char *gev_coro_name(const gev_coro *c) {
  if (!c)
    return NULL;
  if (c->is_main)
    return "main";
  return c->name ? c->name : "<unnamed>";
}
GEV_EXTERN int gev_coro_exit_error(const gev_coro *c) {
  return c && c->dead ? c->exit_error : 0;
}
GEV_EXTERN void gev_coro_set_data(gev_coro *c, void *data) {
  if (c)
    c->data = data;
}
GEV_EXTERN void *gev_coro_data(const gev_coro *c) { return c ? c->data : NULL; }
