/*
 * Internal: what the sync primitives (event.c, lock.c, queue.c, channel.c,
 * pool.c) share. Every object begins with a gev__sync_head (its hub, the
 * rawlinks of gev_wait watching it, its main wait queue, its kind's magic),
 * and its kind is described once by a gev__sync_kind, so that setting up,
 * checking, destroying and freeing an object, and waiting on it with
 * gev_wait, are one piece of code for all of them (sync.c).
 */
#ifndef GEV_SRC_HUB_SYNC_PRIV_H
#define GEV_SRC_HUB_SYNC_PRIV_H

#include <errno.h>
#include <stdalign.h>
#include <stdint.h>

#include "gev/sync.h"
#include "hub/park.h"
#include "hub/waitable.h"

_Static_assert(sizeof(gev__waitq_storage) == sizeof(gev__waitq),
               "gev: public wait-queue storage must match gev__waitq");
_Static_assert(alignof(gev__waitq_storage) == alignof(gev__waitq),
               "gev: public wait-queue storage must match gev__waitq");

/* The public storage is only ever accessed through this view. */
static inline gev__waitq *gev__wq(gev__waitq_storage *s) {
  return (gev__waitq *)(void *)s;
}

static inline size_t gev__wq_len(const gev__waitq_storage *s) {
  return ((const gev__waitq *)(const void *)s)->len;
}

/* One magic number per kind of object; 0 after destroy. */
enum {
  GEV__MAGIC_EVENT = 0x67657645u,
  GEV__MAGIC_RESULT = 0x67657652u,
  GEV__MAGIC_SEM = 0x67657653u,
  GEV__MAGIC_RLOCK = 0x6765764cu,
  GEV__MAGIC_QUEUE = 0x67657651u,
  GEV__MAGIC_POOL = 0x67657650u,
};

typedef struct gev__sync_xops gev__sync_xops;

/* A kind of sync object. */
typedef struct gev__sync_kind {
  gev__waitable_ops ops; /* first: how gev_wait waits on one (sync.c) */
  unsigned magic;
  /* Optional: what destroy does beyond waking the head's waiters and
   * rawlinks with EIDRM (other wait queues, stored items, memory). */
  void (*teardown)(void *obj);
  /* For gev_wait: non-zero if a wait on obj would end at once; NULL for
   * kinds that cannot be waited on that way. */
  int (*ready)(const void *obj);
  /* For the kinds other threads may use (below); NULL for the others. */
  const gev__sync_xops *x;
} gev__sync_kind;

/* Defines the gev__sync_kind `name` for objects of the given magic. */
#define GEV__SYNC_KIND(name, magic_, teardown_, ready_)                        \
  GEV__SYNC_KIND_X(name, magic_, teardown_, ready_, NULL)
/* The same for a kind other threads may use, with its xops. */
#define GEV__SYNC_KIND_X(name, magic_, teardown_, ready_, x_)                  \
  const gev__sync_kind name = {.ops = GEV__SYNC_WAITABLE_OPS,                  \
                               .magic = (magic_),                              \
                               .teardown = (teardown_),                        \
                               .ready = (ready_),                              \
                               .x = (x_)}
#define GEV__SYNC_WAITABLE_OPS                                                 \
  {                                                                            \
    .check = gev__sync_wait_check, .ready = gev__sync_wait_ready,              \
    .arm = gev__sync_wait_arm, .disarm = gev__sync_wait_disarm                 \
  }
int gev__sync_wait_check(const gev_waitable *w);
int gev__sync_wait_ready(const gev_waitable *w);
int gev__sync_wait_arm(gev__wait_entry *e);
void gev__sync_wait_disarm(gev__wait_entry *e);

/* The value a releaser wakes a waiter with to say "the resource is now
 * yours" (a semaphore unit, a lock, a pool slot). */
extern const char gev__sync_granted;
#define GEV__GRANTED ((void *)&gev__sync_granted)

/* The head of obj, which begins with one. */
static inline gev__sync_head *gev__head(const void *obj) {
  return (gev__sync_head *)obj;
}

/* Sets up obj (size bytes, beginning with a head) as a new object of kind
 * k owned by the calling thread's hub: zeroes it and fills the head.
 * 0, or -1 with EINVAL (obj NULL) or ENOMEM (no hub). */
int gev__sync_setup(void *obj, size_t size, const gev__sync_kind *k);

/* The heap forms: gev__sync_alloc() gets memory for an object (NULL with
 * ENOMEM); gev__sync_made(obj, rc) returns obj if its _init returned 0,
 * else frees it (keeping errno) and returns NULL. So every _new reads
 *     T *x = gev__sync_alloc(sizeof *x);
 *     return gev__sync_made(x, x ? T_init(x, ...) : -1);          */
void *gev__sync_alloc(size_t size);
void *gev__sync_made(void *obj, int rc);

/* What an object's head records as its hub: the hub's id (gev__hub_id),
 * never reused, in the pointer-sized field; it is never dereferenced. */
static inline void *gev__sync_hub_token(unsigned long long id) {
  return (void *)(uintptr_t)id;
}

/* Checks that obj is a live object of kind k owned by the calling
 * thread's hub. 0, or -1 with EINVAL (NULL, destroyed, wrong kind) or
 * EXDEV (another thread's hub, or a hub destroyed since). Inline: every
 * call on a sync object starts with it; gev__sync_check_failed sets the
 * error. */
int gev__sync_check_failed(const void *obj, const gev__sync_kind *k);
static inline int gev__sync_check(const void *obj, const gev__sync_kind *k) {
  if (__builtin_expect(obj && gev__head(obj)->magic_ == k->magic &&
                           gev__head(obj)->hub_ ==
                               gev__sync_hub_token(gev__hub_current_id()),
                       1))
    return 0;
  return gev__sync_check_failed(obj, k);
}

/* Destroys obj if it is a live object of kind k (else does nothing):
 * marks it dead, wakes its head's waiters and gev_wait rawlinks with
 * EIDRM, then runs the kind's teardown. gev__sync_free does that and
 * frees it; NULL does nothing. */
void gev__sync_destroy(void *obj, const gev__sync_kind *k);
void gev__sync_free(void *obj, const gev__sync_kind *k);

/* Tells the gev_wait rawlinks of obj that it turned ready. */
void gev__sync_notify(void *obj);

/* The head's wait queue. */
static inline gev__waitq *gev__head_wq(const void *obj) {
  return gev__wq(&gev__head(obj)->waiters_);
}

/* Wakes every task on q with err, returning how many. */
size_t gev__sync_wake_all_err(gev__waitq_storage *q, int err);

/* A waitable naming obj of kind k. */
gev_waitable gev__sync_waitable(void *obj, const gev__sync_kind *k);

/* ---- Other threads (xsync.c) -------------------------------------------
 *
 * Event, AsyncResult, Semaphore (Lock) and RLock may be used from other
 * threads: an object still belongs to the hub that made it, which alone
 * touches its wait queue and its state; other threads read the state
 * (stored with atomic stores by the owner) and ask the owning hub for
 * the rest through its inbox (xthread.h):
 *   - a set, release or clear is posted to the owning hub, which runs the
 *     object's own code there (gev__xsync_call);
 *   - a wait of a coroutine of another hub posts a proxy (gev__xsync_wait):
 *     the owning hub answers it at once if it can (xops.take), else queues
 *     the proxy on the object's wait queue as a task that is never run:
 *     the wake that a local waiter would get goes back to the waiting hub
 *     as the proxy's answer. A waiter that leaves first (timeout, kill)
 *     withdraws its proxy; an answer that granted something (a unit, the
 *     lock) and found the waiter gone is handed back (xops.give_back).
 * A kind's own checks that must not wait for the owning hub (an
 * AsyncResult set only once, a bounded Semaphore's bound, an RLock's
 * owner) are made by the calling thread on the state, with atomics.
 */

/* In the owning hub: decides a wait of coroutine coro (its id) of
 * another hub at once if it can: returns 1 with the outcome in *value and
 * *err (as a wake of a local waiter would carry them), 0 when the waiter
 * must queue. nowait: the caller does not wait (try_acquire, timeout 0).
 * granted: a queued proxy was woken with a grant (an RLock records coro as
 * its owner). In the waiter's thread, give_back undoes a grant whose
 * waiter left before it arrived. Either of the last two may be NULL. */
struct gev__sync_xops {
  /* From any thread: non-zero if a wait would end at once, read with
   * atomic loads (gev_wait's ready for another hub's object). */
  int (*peek)(const void *obj);
  int (*take)(void *obj, unsigned long long coro, int nowait, void **value,
              int *err);
  void (*granted)(void *obj, unsigned long long coro);
  void (*give_back)(void *obj, unsigned long long coro);
};

/* Where obj, a live object of kind k, belongs: 1 to the calling thread's
 * hub, 0 to another hub (or one destroyed since), or -1 with EINVAL
 * (NULL, destroyed, wrong kind). */
static inline int gev__sync_where(const void *obj, const gev__sync_kind *k) {
  if (__builtin_expect(!obj || gev__head(obj)->magic_ != k->magic, 0)) {
    errno = EINVAL;
    return -1;
  }
  return gev__head(obj)->hub_ == gev__sync_hub_token(gev__hub_current_id());
}

/* The id of obj's hub. */
static inline unsigned long long gev__sync_hub_id(const void *obj) {
  return (unsigned long long)(uintptr_t)gev__head(obj)->hub_;
}

/* Runs fn(obj, arg, 0) in obj's hub, which is not the caller's, soon; or
 * fn(obj, arg, EIDRM) if obj is destroyed before (fn must then leave obj
 * alone). 0, or -1: EXDEV (obj's hub is gone), ENOMEM. */
typedef void (*gev__xsync_fn)(void *obj, uintptr_t arg, int err);
int gev__xsync_call(void *obj, gev__xsync_fn fn, uintptr_t arg);

/* The calling coroutine waits on obj, of kind k, which belongs to another
 * hub: parks until that hub answers (see above), for timeout seconds (the
 * answer to nowait is always waited for). Returns as gev__park, with the
 * owning hub's answer (a value, or an error such as EIDRM, EAGAIN), or -1
 * with EXDEV (obj's hub is gone), ENOMEM, or the blocking-call errors. */
int gev__xsync_wait(void *obj, const gev__sync_kind *k, double timeout,
                    int nowait, const char *what, void **value);

/* gev_wait's ops for an object of another hub (sync.c delegates). */
int gev__xsync_watch_arm(gev__wait_entry *e);
void gev__xsync_watch_disarm(gev__wait_entry *e);

/* Relaxed atomic accessors for the state fields other threads read. */
#define GEV__LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define GEV__STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

#endif
