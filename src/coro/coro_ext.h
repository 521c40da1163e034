/*
 * Internal: what the coroutine layer offers the layer above it (the hub),
 * and all that layer may touch. The hub includes this header, never
 * coro_internal.h.
 *
 * The thread root. gev__thread_root is libgev's one thread-local variable
 * (initial-exec, so every access is a single load from the thread pointer,
 * in the static and in the shared library alike). It points to the
 * thread's coroutine state, created on first use, whose head the layer
 * above may read: the running coroutine and the main coroutine. The head
 * also holds one slot, `upper`, that belongs to the layer above: whatever
 * else libgev keeps per thread hangs from it.
 *
 * The coroutine slot. Every coroutine has one pointer for the layer above
 * (the hub's task), NULL when created; the coroutine layer never reads it
 * except to hand it to the free hook.
 *
 * The hooks, registered per thread with gev__coro_set_hooks():
 *   coro_free(c, upper)  gev_coro_free() is releasing c, whose slot holds
 *                        upper (not NULL). c is dead, or suspended and
 *                        about to be discarded; it is not running. The hook
 *                        must not switch. The slot is cleared afterwards.
 *   thread_exit(head)    the thread is exiting (its coroutine state's
 *                        destructor runs). Called once, on the main
 *                        coroutine, before anything is released: the hook
 *                        may switch (the hub tears itself down) but must
 *                        leave the main coroutine running when it returns.
 *                        Coroutines still alive afterwards are leaked on
 *                        purpose, with the thread's coroutine state.
 *
 * Owned coroutines. The hub's own coroutine is created with
 * gev__coro_new_owned(): it is not counted in gev_coro_stats.live (that
 * counts the user's coroutines), gev_coro_free() refuses it with EPERM, and
 * only gev__coro_free_owned() releases it.
 *
 * Identity. gev_coro_id() (gev/coro.h) is a 64-bit serial that is never
 * reused in the process, unlike a control block's address: anything that
 * records "which coroutine" for later comparison records the id.
 */
#ifndef GEV_SRC_CORO_EXT_H
#define GEV_SRC_CORO_EXT_H

#include "gev/coro.h"

/* The part of a thread's coroutine state the layer above may see. */
typedef struct gev__thread_head {
  gev_coro *current; /* ro: the running coroutine */
  gev_coro *main;    /* ro: the thread's main coroutine */
  void *upper;       /* rw by the layer above: its per-thread state */
} gev__thread_head;

/* The thread root: NULL until the thread first uses gev. */
extern __thread gev__thread_head *gev__thread_root
    __attribute__((tls_model("initial-exec")));

/* The calling thread's coroutine state, created if needed (NULL with
 * ENOMEM). */
gev__thread_head *gev__thread_get(void);

/* The part of a control block the layer above may see (its first member,
 * so that a gev_coro pointer is a pointer to it). */
typedef struct gev__coro_head {
  void *upper;           /* rw by the layer above; NULL when created */
  unsigned long long id; /* ro: see gev_coro_id() */
} gev__coro_head;

static inline void *gev__coro_upper(const gev_coro *c) {
  return ((const gev__coro_head *)(const void *)c)->upper;
}

static inline void gev__coro_set_upper(gev_coro *c, void *upper) {
  ((gev__coro_head *)(void *)c)->upper = upper;
}

/* The running coroutine, or NULL if the thread has no coroutine state. */
static inline gev_coro *gev__coro_running(void) {
  gev__thread_head *r = gev__thread_root;
  return r ? r->current : NULL;
}

typedef struct gev__coro_hooks {
  void (*coro_free)(gev_coro *c, void *upper);
  void (*thread_exit)(gev__thread_head *head);
} gev__coro_hooks;

/* Registers the calling thread's hooks (the structure must outlive the
 * thread; NULL removes them). 0, or -1 with ENOMEM. */
int gev__coro_set_hooks(const gev__coro_hooks *hooks);

/* As gev_coro_new(), for a coroutine the layer above owns (see above). */
gev_coro *gev__coro_new_owned(gev_coro_fn fn, gev_coro *parent,
                              const gev_coro_opts *opts);
/* Releases an owned coroutine as gev_coro_free() releases others. */
int gev__coro_free_owned(gev_coro *c);

/* Maps the stack of an unstarted dedicated-mode coroutine now, so that no
 * switch into it can fail for lack of memory. 0, or -1 with ENOMEM. */
int gev__coro_prepare(gev_coro *c);

/* What gev__coro_switch_to() returns when nothing was switched. */
#define GEV__SWITCH_FAILED (-2)

/* gev_coro_switch(), telling its two failures apart: -1 with errno when
 * the switch happened and whoever switched back threw an error in;
 * GEV__SWITCH_FAILED with errno (EINVAL, EXDEV, ENOMEM) when nothing was
 * switched. */
int gev__coro_switch_to(gev_coro *target, void *value, void **result);

/* Bytes of c's stack copied out to the heap (shared mode), else 0. */
size_t gev__coro_saved_bytes(const gev_coro *c);

/* Marks a suspended coroutine dead and releases its stack without running
 * it (after fork, a child must not run the parent's coroutines). */
void gev__coro_discard(gev_coro *c);

#endif
