/*
 * gev/sync.h — synchronisation between greenlets of one hub: Event,
 * AsyncResult, Semaphore / BoundedSemaphore / Lock / RLock, Queue (FIFO,
 * LIFO, priority; bounded or not; joinable), Channel (rendezvous), and
 * Group / Pool of greenlets.
 *
 * Lifetime. Every object comes in two forms:
 *   - heap: gev_x_new() ... gev_x_free();
 *   - embedded in a struct of the caller: gev_x_init() ... gev_x_destroy().
 * The struct layouts below are public only so they can be embedded; their
 * fields are private. An object belongs to the hub of the thread that made
 * it (see "Threads" for the calls other threads may make). A destroyed (or
 * never initialised) embedded object is refused with EINVAL.
 *
 * Threads. Only the owning hub touches an object's wait queues. Queue,
 * Channel, Pool and Group are for its thread only: every call from another
 * thread fails with EXDEV. Event, AsyncResult, Semaphore (bounded too),
 * Lock and RLock may be used from any thread, as gevent's since 20.x:
 *   - set and clear an Event, set an AsyncResult (set, set_error,
 *     set_error_msg), release a Semaphore or Lock, from any thread, with
 *     or without a hub of its own (a pool job, a library's callback
 *     thread). The call returns at once; the owning hub applies it soon
 *     (its loop is woken) and wakes the waiters, in every hub, in order.
 *     Until then the object reads as before, in every thread. Checked at
 *     once by the calling thread: an AsyncResult is set only once (the
 *     loser of two sets gets EALREADY), and a bounded semaphore's bound
 *     (EOVERFLOW; an unlocked Lock: EPERM).
 *   - waits (Event.wait, AsyncResult.get/wait, acquire, try_acquire, and
 *     gev_wait / gev_iwait over these objects) from a greenlet or the main
 *     coroutine of any thread: the caller parks in its own hub; the owning
 *     hub queues the wait with its local waiters (first-come first-served
 *     across hubs) and answers it. A waiter that times out or is killed is
 *     withdrawn, and a unit or lock granted to it meanwhile is passed on.
 *     From another thread a try_acquire, or an acquire with timeout 0,
 *     asks the owning hub and parks until it answers (EAGAIN, or ETIMEDOUT,
 *     when nothing was free). These waits may also fail with ENOMEM.
 *   - RLock: the owner is a coroutine, whatever its thread; it re-enters
 *     and releases in its own thread without asking the owning hub; a
 *     release by any other coroutine fails with EPERM.
 *   - reads (is_set, ready, successful, errmsg once ready, value, locked,
 *     is_owned) from any thread: a snapshot. From another thread, locked
 *     means "no unit free" (the owning hub's queue is not looked at).
 *   - _free from another thread: the owning hub destroys the object (its
 *     waiters, in every hub, wake with EIDRM) and frees it; the caller
 *     must not use it afterwards. _destroy of an embedded object belongs
 *     to its own thread (from another one it does nothing and logs why).
 * The owning hub does this work: while its thread does not run the hub
 * (it computes, or blocks outside gev, e.g. in pthread_join), sets and
 * releases from other threads wait to take effect, and waits of other
 * threads get no answer. Once the owning hub is destroyed, every call on
 * its objects fails with EXDEV, except the reads and _free.
 *
 * THE SHARED-STACK RULE (see gev/coro.h) applies to these objects: in
 * shared-stack mode an object must not live on a coroutine's stack while
 * other coroutines (or the hub) may use it, because that stack is moved
 * away whenever its owner is parked. Embed objects in heap or static
 * storage, or use the _new() forms. gev's own wait state for these objects
 * lives on the heap.
 *
 * Destroying an object. _free()/_destroy() wake every coroutine still
 * parked on the object; their calls fail with EIDRM ("the object was
 * removed", as System V semaphores report) and do not touch the object
 * again. A coroutine that has already been handed a result (woken, but not
 * yet resumed) still returns that result. Destroying an object while
 * another coroutine is running a call on it in any other way is a bug of
 * the caller, as with pthread objects; so is destroying an RLock that is
 * held, which includes one just handed to a waiter that has not run yet
 * (it records itself as owner when it resumes), and destroying a Pool
 * while a spawner it handed a slot to has not run yet (it adds its
 * greenlet when it resumes).
 *
 * Blocking calls take a timeout in seconds (< 0 forever, 0 do not wait,
 * > 0 bound; NaN fails with EINVAL, even where the call would not wait)
 * and can fail with the errors listed in gev/hub.h:
 *   ECANCELED  the caller was killed;
 *   ETIMEDOUT  the timeout ran out (immediately for timeout 0) or an expired
 *              gev_timeout scope of the caller;
 *   EPERM      called from the hub or a loop callback and it would wait;
 *   EDEADLK    the loop ran out of work while the caller still waited;
 *   EIDRM      the object was destroyed while the caller waited;
 *   EINVAL     the timeout is NaN.
 * A call that can complete without waiting never fails with these errors.
 * Waiters are served first-come first-served: a resource that frees up is
 * handed straight to the longest waiter, so a newcomer cannot barge in
 * ahead of it. A waiter that leaves early (killed, timed out) is removed at
 * once, and whatever would have been handed to it goes to the next waiter.
 *
 * The _try_ variants never wait and fail with EAGAIN where the blocking
 * call would have waited.
 *
 * "Not yet" is ETIMEDOUT. A wait whose timeout runs out before the thing
 * it waits for happened (an Event not set, an AsyncResult not ready, a
 * Queue still empty or full, a Semaphore without a free unit, a Pool with
 * members still running) returns -1 with errno ETIMEDOUT; nothing about
 * the object changed. This is how C reports it (sem_timedwait,
 * pthread_cond_timedwait), where gevent returns False or None: test the
 * return value, then errno == ETIMEDOUT for "not yet". A timeout of 0
 * asks without waiting and answers "not yet" the same way.
 */
#ifndef GEV_SYNC_H
#define GEV_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "gev/hub.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Private storage for one wait queue (layout-compatible with gev's
 * internal queue; checked at build time). */
typedef struct gev__waitq_storage {
  void *head_;
  void *tail_;
  size_t len_;
} gev__waitq_storage;

/* Private header every object below begins with. */
struct gev__rawlink;
typedef struct gev__sync_head {
  void *hub_;                  /* its hub's id (never an address) */
  struct gev__rawlink *links_; /* gev_wait / gev_iwait watching it */
  gev__waitq_storage waiters_; /* coroutines parked on it */
  unsigned magic_;             /* its kind while alive; 0 once destroyed */
} gev__sync_head;

/* ---- Event (gevent.event.Event) -------------------------------------- */

typedef struct gev_event {
  /* private */
  gev__sync_head h_;
  int flag_;
} gev_event;

/* Creates / initialises an event that is not set. _new returns NULL and
 * _init -1 on error. Errors: EINVAL (e NULL), ENOMEM. */
GEV_EXTERN gev_event *gev_event_new(void);
GEV_EXTERN int gev_event_init(gev_event *e);
/* Wakes its waiters with EIDRM, then frees / invalidates it. NULL does
 * nothing. */
GEV_EXTERN void gev_event_free(gev_event *e);
GEV_EXTERN void gev_event_destroy(gev_event *e);

/* Sets the flag and wakes every waiter (they all return 0, even if the
 * event is cleared before they run). Callable from the hub and loop
 * callbacks, and from any thread (see "Threads"). Returns 0 or -1: EINVAL,
 * EXDEV (its hub is gone), ENOMEM (from another thread). */
GEV_EXTERN int gev_event_set(gev_event *e);
/* Clears the flag. Any thread, as gev_event_set. Returns 0 or -1: EINVAL,
 * EXDEV, ENOMEM. */
GEV_EXTERN int gev_event_clear(gev_event *e);
/* 1 if set, 0 if not, -1 with EINVAL or EXDEV. */
GEV_EXTERN int gev_event_is_set(const gev_event *e);
/* Returns 0 at once if the flag is set, else parks until gev_event_set().
 * -1 with ETIMEDOUT means "not set yet" (gevent's wait() returning False):
 * the timeout ran out, or was 0, before the event was set. Other errors:
 * EINVAL, EXDEV, EIDRM, the other blocking-call errors. */
GEV_EXTERN int gev_event_wait(gev_event *e, double timeout);

/* ---- AsyncResult (gevent.event.AsyncResult) --------------------------- */

/* A value or an error, delivered once, that many coroutines can wait for. */
typedef struct gev_async_result {
  /* private */
  gev__sync_head h_;
  void *value_;
  char *errmsg_; /* heap copy from set_error_msg, or NULL */
  int err_;
  int state_; /* 0 pending, 1 value, 2 error */
} gev_async_result;

/* Errors: EINVAL (r NULL), ENOMEM. */
GEV_EXTERN gev_async_result *gev_async_result_new(void);
GEV_EXTERN int gev_async_result_init(gev_async_result *r);
/* Waiters get EIDRM. The value is not freed: it belongs to the caller;
 * the error message is. */
GEV_EXTERN void gev_async_result_free(gev_async_result *r);
GEV_EXTERN void gev_async_result_destroy(gev_async_result *r);

/* Stores value (the caller keeps ownership of what it points to) and
 * wakes every waiter. Only once: a second set or set_error fails with
 * EALREADY. Callable from the hub, and from any thread (see "Threads").
 * Errors: EINVAL, EXDEV, EALREADY, ENOMEM (from another thread). */
GEV_EXTERN int gev_async_result_set(gev_async_result *r, void *value);
/* Stores error err (> 0) instead; get() then fails with err. Errors:
 * EINVAL (also err <= 0), EXDEV, EALREADY. */
GEV_EXTERN int gev_async_result_set_error(gev_async_result *r, int err);
/* As set_error, with a message (printf format; NULL for none) that the
 * result keeps (gevent keeps the exception object): read it with
 * gev_async_result_errmsg. Errors: those of set_error, ENOMEM (nothing is
 * stored then). */
GEV_EXTERN int gev_async_result_set_error_msg(gev_async_result *r, int err,
                                              const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The stored error's message: the one given to set_error_msg, else
 * strerror(err); NULL when no error is stored (pending or a value) or r
 * is invalid. The string belongs to r and lives as long as it does. */
GEV_EXTERN const char *gev_async_result_errmsg(const gev_async_result *r);
/* Waits for the result. 0 with *value (value may be NULL) if a value was
 * set; -1 with errno = the stored error if an error was set; or -1 with
 * EINVAL, EXDEV, EIDRM or a blocking-call error; ETIMEDOUT means "not
 * ready yet" (gevent raises Timeout). A stored error of ETIMEDOUT can be
 * told apart with gev_async_result_ready(). */
GEV_EXTERN int gev_async_result_get(gev_async_result *r, double timeout,
                                    void **value);
/* Waits until the result is ready, whatever it is. 0, or -1 with EINVAL,
 * EXDEV, EIDRM or a blocking-call error (ETIMEDOUT: "not ready yet"). */
GEV_EXTERN int gev_async_result_wait(gev_async_result *r, double timeout);
/* 1/0, or -1 with EINVAL or EXDEV. successful is 1 only for a value. */
GEV_EXTERN int gev_async_result_ready(const gev_async_result *r);
GEV_EXTERN int gev_async_result_successful(const gev_async_result *r);

/* ---- Semaphore, BoundedSemaphore, Lock (gevent.lock) ------------------ */

typedef struct gev_semaphore {
  /* private */
  gev__sync_head h_;
  unsigned long count_;
  unsigned long bound_;    /* 0: unbounded */
  unsigned long xpending_; /* releases from other threads on their way */
} gev_semaphore;

/* A semaphore with value units (it may grow past value on release).
 * Errors: EINVAL (s NULL), ENOMEM. */
GEV_EXTERN gev_semaphore *gev_semaphore_new(unsigned long value);
GEV_EXTERN int gev_semaphore_init(gev_semaphore *s, unsigned long value);
/* A bounded semaphore: releasing it past its initial value fails with
 * EOVERFLOW. Errors: EINVAL (s NULL or value 0), ENOMEM. */
GEV_EXTERN gev_semaphore *gev_bounded_semaphore_new(unsigned long value);
GEV_EXTERN int gev_bounded_semaphore_init(gev_semaphore *s,
                                          unsigned long value);
/* Waiters get EIDRM. */
GEV_EXTERN void gev_semaphore_free(gev_semaphore *s);
GEV_EXTERN void gev_semaphore_destroy(gev_semaphore *s);

/* Takes one unit, parking while there is none. 0, or -1: EINVAL, EXDEV,
 * EIDRM, blocking-call errors (then no unit was taken; ETIMEDOUT: none
 * came free in time). */
GEV_EXTERN int gev_semaphore_acquire(gev_semaphore *s, double timeout);
/* Takes one unit if one is free and nobody waits. 0 or -1: EAGAIN, EINVAL,
 * EXDEV. */
GEV_EXTERN int gev_semaphore_try_acquire(gev_semaphore *s);
/* Returns one unit: to the first waiter if any, else to the count.
 * Callable from the hub, and from any thread (see "Threads"). 0 or -1:
 * EINVAL, EXDEV, EOVERFLOW (a bounded semaphore already at its bound;
 * nothing changes), ENOMEM (from another thread). */
GEV_EXTERN int gev_semaphore_release(gev_semaphore *s);
/* Free units, or -1 with EINVAL or EXDEV. */
GEV_EXTERN long gev_semaphore_value(const gev_semaphore *s);
/* 1 if no unit is free (acquire would wait), 0 if not, -1 on error. */
GEV_EXTERN int gev_semaphore_locked(const gev_semaphore *s);

/* A plain lock: a bounded semaphore of one. Any coroutine may release it
 * (as gevent.lock.Lock); use gev_rlock for an owner-checked lock. */
typedef struct gev_lock {
  gev_semaphore sem_; /* private */
} gev_lock;

/* Errors: EINVAL (l NULL), ENOMEM. */
GEV_EXTERN gev_lock *gev_lock_new(void);
GEV_EXTERN int gev_lock_init(gev_lock *l);
/* Waiters get EIDRM. */
GEV_EXTERN void gev_lock_free(gev_lock *l);
GEV_EXTERN void gev_lock_destroy(gev_lock *l);
/* As gev_semaphore_acquire / try_acquire. */
GEV_EXTERN int gev_lock_acquire(gev_lock *l, double timeout);
GEV_EXTERN int gev_lock_try_acquire(gev_lock *l);
/* Unlocks (handing the lock to the first waiter if any). Any coroutine of
 * any thread may (see "Threads"). 0 or -1: EINVAL, EXDEV, EPERM (not
 * locked), ENOMEM. */
GEV_EXTERN int gev_lock_release(gev_lock *l);
/* 1 locked, 0 unlocked, -1 with EINVAL or EXDEV. */
GEV_EXTERN int gev_lock_locked(const gev_lock *l);

/* ---- RLock: owner-aware, re-entrant ---------------------------------- */

typedef struct gev_rlock {
  /* private */
  gev__sync_head h_;
  unsigned long long owner_; /* the owning coroutine's id, 0 when free */
  unsigned long depth_;
} gev_rlock;

/* Errors: EINVAL (l NULL), ENOMEM. */
GEV_EXTERN gev_rlock *gev_rlock_new(void);
GEV_EXTERN int gev_rlock_init(gev_rlock *l);
/* Waiters get EIDRM. */
GEV_EXTERN void gev_rlock_free(gev_rlock *l);
GEV_EXTERN void gev_rlock_destroy(gev_rlock *l);
/* Acquires for the running coroutine; if it already owns the lock, only
 * counts one level deeper. 0, or -1: EINVAL, EXDEV, EOVERFLOW (depth
 * counter full), EIDRM, blocking-call errors (ETIMEDOUT: "still held by
 * another coroutine"). */
GEV_EXTERN int gev_rlock_acquire(gev_rlock *l, double timeout);
/* 0 or -1: EAGAIN (owned by another coroutine or waited for), EINVAL,
 * EXDEV, EOVERFLOW. */
GEV_EXTERN int gev_rlock_try_acquire(gev_rlock *l);
/* Undoes one acquire; the last one hands the lock to the first waiter.
 * The owner may release from its own thread, whatever hub the lock
 * belongs to (see "Threads"). 0 or -1: EINVAL, EXDEV, EPERM (the caller
 * does not own it), ENOMEM. */
GEV_EXTERN int gev_rlock_release(gev_rlock *l);
/* 1 if some coroutine owns it, 0 if not, -1 with EINVAL or EXDEV. */
GEV_EXTERN int gev_rlock_locked(const gev_rlock *l);
/* 1 if the running coroutine owns it, 0 if not, -1 on error. */
GEV_EXTERN int gev_rlock_is_owned(const gev_rlock *l);

/* ---- Queue (gevent.queue) ------------------------------------------- */

typedef enum gev_queue_order {
  GEV_QUEUE_FIFO = 0,
  GEV_QUEUE_LIFO,
  GEV_QUEUE_PRIORITY, /* smallest item first, per the queue's cmp; equal
                         items come out in put order */
} gev_queue_order;

/* Compares two items of a priority queue: < 0 if a goes first. */
typedef int (*gev_queue_cmp_fn)(const void *a, const void *b);

/* Releases an item the queue drops (see gev_queue_opts.item_free). */
typedef void (*gev_queue_item_free_fn)(void *item);

typedef struct gev_queue_opts {
  gev_queue_order order;
  size_t maxsize;       /* 0: unbounded */
  gev_queue_cmp_fn cmp; /* required for GEV_QUEUE_PRIORITY, else unused */
  /* Optional: called for each item still stored when the queue is
   * destroyed or freed (also after a close, for the items no getter took),
   * so that a queue of heap items does not leak them. Items that were
   * handed out, and items of putters whose put failed, are never passed to
   * it: they belong to the getter / the putter. It must not block; it is
   * called from the destroying coroutine, in the queue's get order. */
  gev_queue_item_free_fn item_free;
} gev_queue_opts;

typedef struct gev_queue {
  /* private */
  gev__sync_head h_; /* its waiters are the getters */
  gev__waitq_storage putters_;
  gev__waitq_storage peekers_;
  gev__waitq_storage joiners_;
  void *put_head_; /* parked putters' records, FIFO */
  void *put_tail_;
  void *slots_;    /* ring (FIFO), stack (LIFO) or heap (PRIORITY) */
  size_t cap_;     /* slots allocated */
  size_t first_;   /* ring start */
  size_t count_;   /* items stored */
  size_t maxsize_; /* SIZE_MAX unbounded, 0 rendezvous (Channel) */
  uint64_t seq_;   /* put counter, orders equal priorities */
  size_t unfinished_;
  gev_queue_cmp_fn cmp_;
  gev_queue_item_free_fn item_free_;
  int order_;
  int closed_;
} gev_queue;

/* Creates / initialises a queue; opts NULL is an unbounded FIFO.
 * Items are opaque pointers (NULL allowed); the queue frees none of them
 * itself, except through opts->item_free when it is destroyed.
 * Errors: EINVAL (q NULL, unknown order, PRIORITY without cmp), ENOMEM. */
GEV_EXTERN gev_queue *gev_queue_new(const gev_queue_opts *opts);
GEV_EXTERN int gev_queue_init(gev_queue *q, const gev_queue_opts *opts);
/* Waiters (getters, putters, peekers, joiners) get EIDRM. Items still
 * queued are passed to the queue's item_free if it has one (in get
 * order), else dropped without being freed. */
GEV_EXTERN void gev_queue_free(gev_queue *q);
GEV_EXTERN void gev_queue_destroy(gev_queue *q);

/* Adds item, parking while the queue is full. A parked getter receives it
 * directly. Callable from the hub when it need not wait. 0, or -1:
 * EINVAL, EXDEV, EPIPE (the queue is closed, or was closed while the
 * caller waited: the item was not added), EIDRM, ENOMEM, blocking-call
 * errors (ETIMEDOUT: "still full", the item was not added and is still
 * the caller's). */
GEV_EXTERN int gev_queue_put(gev_queue *q, void *item, double timeout);
/* As put, never waiting: EAGAIN when full. */
GEV_EXTERN int gev_queue_try_put(gev_queue *q, void *item);
/* Removes and returns the next item in *item, parking while the queue is
 * empty. A freed slot goes to the first parked putter. 0, or -1: EINVAL
 * (also item NULL), EXDEV, EPIPE (closed and empty), EIDRM, blocking-call
 * errors (ETIMEDOUT: "still empty", gevent's Empty after a timeout). */
GEV_EXTERN int gev_queue_get(gev_queue *q, double timeout, void **item);
/* As get, never waiting: EAGAIN when empty. */
GEV_EXTERN int gev_queue_try_get(gev_queue *q, void **item);
/* Returns the next item without removing it, parking while the queue is
 * empty. Errors as get (ETIMEDOUT: "still empty"). */
GEV_EXTERN int gev_queue_peek(gev_queue *q, double timeout, void **item);
/* As peek, never waiting: EAGAIN when empty. */
GEV_EXTERN int gev_queue_try_peek(gev_queue *q, void **item);
/* Items stored, or -1 with EINVAL or EXDEV. */
GEV_EXTERN long gev_queue_size(const gev_queue *q);
/* 1 if empty / full, 0 if not, -1 with EINVAL or EXDEV. An unbounded
 * queue is never full. */
GEV_EXTERN int gev_queue_empty(const gev_queue *q);
GEV_EXTERN int gev_queue_full(const gev_queue *q);

/* Joinable use (gevent's JoinableQueue; every queue supports it): each
 * successful put counts one unfinished task; task_done marks one finished.
 * 0 or -1: EINVAL, EXDEV, EOVERFLOW (called more often than put). */
GEV_EXTERN int gev_queue_task_done(gev_queue *q);
/* Parks until every task put so far is done. 0 or -1: EINVAL, EXDEV,
 * EIDRM, blocking-call errors (ETIMEDOUT: "tasks still unfinished"). */
GEV_EXTERN int gev_queue_join(gev_queue *q, double timeout);
/* Unfinished tasks, or -1 with EINVAL or EXDEV. */
GEV_EXTERN long gev_queue_unfinished(const gev_queue *q);

/* Closes the queue (as a Go channel or Python's Queue.shutdown): later
 * puts fail with EPIPE; parked putters are woken with EPIPE (their items
 * are not added and stay theirs); getters still receive the items already
 * queued, then fail with EPIPE, and parked getters and peekers are woken
 * with EPIPE. Items nobody gets go to item_free when the queue is
 * destroyed. Closing twice does nothing. Callable from the hub. 0 or -1:
 * EINVAL, EXDEV. */
GEV_EXTERN int gev_queue_close(gev_queue *q);
/* 1 if closed, 0 if not, -1 with EINVAL or EXDEV. */
GEV_EXTERN int gev_queue_closed(const gev_queue *q);

/* ---- Channel: unbuffered rendezvous (gevent.queue.Channel) ------------ */

/* A put waits until a getter takes the item; a get waits for a putter. */
typedef struct gev_channel {
  gev_queue q_; /* private */
} gev_channel;

/* Errors: EINVAL (c NULL), ENOMEM. */
GEV_EXTERN gev_channel *gev_channel_new(void);
GEV_EXTERN int gev_channel_init(gev_channel *c);
/* Parked putters and getters get EIDRM. */
GEV_EXTERN void gev_channel_free(gev_channel *c);
GEV_EXTERN void gev_channel_destroy(gev_channel *c);
/* Hands item to a getter: at once if one is parked (put then returns
 * without waiting for it to run), else parks until one takes it. Errors
 * as gev_queue_put. */
GEV_EXTERN int gev_channel_put(gev_channel *c, void *item, double timeout);
/* 0 if a getter was parked, else -1 EAGAIN; other errors as put. */
GEV_EXTERN int gev_channel_try_put(gev_channel *c, void *item);
/* Takes an item from the first parked putter, parking until one comes.
 * Errors as gev_queue_get. */
GEV_EXTERN int gev_channel_get(gev_channel *c, double timeout, void **item);
/* 0 if a putter was parked, else -1 EAGAIN; other errors as get. */
GEV_EXTERN int gev_channel_try_get(gev_channel *c, void **item);
/* As gev_queue_close: parked putters and getters get EPIPE. */
GEV_EXTERN int gev_channel_close(gev_channel *c);

/* ---- Group and Pool (gevent.pool) ------------------------------------ */

/* A set of greenlets. A Group has no size limit; a Pool of size n runs at
 * most n at once and makes spawn wait while it is full. Members leave the
 * set by themselves when they finish. The set holds its own reference to
 * each member; the handles returned to the caller are the caller's. */
typedef struct gev_pool {
  /* private */
  gev__sync_head h_;                 /* its waiters are the joiners */
  gev__waitq_storage slot_waiters_;  /* spawn/add waiting for a slot */
  gev__waitq_storage avail_waiters_; /* wait_available */
  void *members_;                    /* list of member nodes */
  size_t count_;
  size_t reserved_; /* slots handed to woken spawners */
  size_t size_;     /* 0: unlimited (a Group) */
} gev_pool;
typedef gev_pool gev_group;

/* A Pool running at most size greenlets (size 0: unlimited, a Group).
 * Errors: EINVAL (p NULL), ENOMEM. */
GEV_EXTERN gev_pool *gev_pool_new(size_t size);
GEV_EXTERN int gev_pool_init(gev_pool *p, size_t size);
/* gev_pool_new(0). */
GEV_EXTERN gev_group *gev_group_new(void);
/* Forgets the members without killing them (they run on), wakes waiters
 * with EIDRM and frees / invalidates the pool. */
GEV_EXTERN void gev_pool_free(gev_pool *p);
GEV_EXTERN void gev_pool_destroy(gev_pool *p);

/* Spawns fn(arg) as a member, first parking while the pool is full
 * (FIFO among spawners). Returns a new handle owned by the caller
 * (gev_greenlet_unref it), or NULL: EINVAL (p or fn NULL), EXDEV, ENOMEM,
 * blocking-call errors (ETIMEDOUT: no slot in time). */
GEV_EXTERN gev_greenlet *gev_pool_spawn(gev_pool *p, gev_greenlet_fn fn,
                                        void *arg, double timeout);
/* Fire and forget: as gev_pool_spawn, keeping no handle (the pool holds
 * its own reference until the member finishes), as gev_spawn_raw. 0, or
 * -1 with the errors of gev_pool_spawn. */
GEV_EXTERN int gev_pool_spawn_raw(gev_pool *p, gev_greenlet_fn fn, void *arg,
                                  double timeout);
/* Adds an existing greenlet (taking a reference of the pool's own),
 * parking while the pool is full. Adding a member again or a finished
 * greenlet does nothing. 0 or -1: EINVAL, EXDEV, ENOMEM, blocking-call
 * errors. */
GEV_EXTERN int gev_pool_add(gev_pool *p, gev_greenlet *g, double timeout);
/* Removes g from the set without killing it. 0 or -1: EINVAL, EXDEV,
 * ENOENT (not a member). */
GEV_EXTERN int gev_pool_discard(gev_pool *p, gev_greenlet *g);
/* 1 if g is a member, 0 if not, -1 with EINVAL or EXDEV. */
GEV_EXTERN int gev_pool_contains(const gev_pool *p, const gev_greenlet *g);
/* Members, or -1 with EINVAL or EXDEV. */
GEV_EXTERN long gev_pool_count(const gev_pool *p);
/* Free slots (LONG_MAX for a Group), or -1 with EINVAL or EXDEV. */
GEV_EXTERN long gev_pool_free_count(const gev_pool *p);
/* Parks until a slot is free; returns the free count (> 0) or -1: EINVAL,
 * EXDEV, EIDRM, blocking-call errors (ETIMEDOUT: "still full"). */
GEV_EXTERN long gev_pool_wait_available(gev_pool *p, double timeout);
/* Parks until the set is empty. 0 or -1: EINVAL, EXDEV, EIDRM,
 * blocking-call errors (ETIMEDOUT: "members still running"; gevent's
 * join() returns False then). */
GEV_EXTERN int gev_pool_join(gev_pool *p, double timeout);
/* Kills every member; with block, then joins for timeout. 0 or -1:
 * EINVAL, EXDEV, ENOMEM, blocking-call errors. */
GEV_EXTERN int gev_pool_kill(gev_pool *p, int block, double timeout);

/*
 * Work from inside the pool. A member that waited for a slot of its own
 * pool could wait for itself: in a Pool(1), or whenever every member does
 * the same, nobody would ever free one (the wait ends in EDEADLK, or hangs
 * while anything else keeps the hub busy). So, as gevent's Pool.apply, the
 * calls below run a job in the calling greenlet itself when the caller is
 * a member of the pool: gev_pool_apply always, gev_pool_map and
 * gev_pool_imap_next whenever no slot is free (the caller's own slot does
 * that job; free slots are still used). gev_pool_spawn and gev_pool_add
 * keep waiting for a slot (their job must be a greenlet of its own).
 *
 * A job run in the caller is called as a greenlet body would be: its
 * gev_fail() becomes the job's error (the caller's greenlet is not marked
 * failed); its blocking calls are the caller's, so a kill or a Timeout
 * scope of the caller interrupts them.
 */

/* Runs fn(arg) through the pool and waits for its result (gevent's
 * apply): in a new member, waiting for a slot, or in the caller itself
 * when the caller is a member (see above). 0 with *result (result may be
 * NULL) when fn succeeded; -1 with errno = fn's error (gev_fail) if it
 * failed; or -1: EINVAL (p or fn NULL), EXDEV, ENOMEM, blocking-call
 * errors (then a job already started in a member is killed). Bound the
 * wait with a gev_timeout scope if needed. */
GEV_EXTERN int gev_pool_apply(gev_pool *p, gev_greenlet_fn fn, void *arg,
                              void **result);

/* Runs fn(args[i]) for i < n through the pool and waits for all of them;
 * results[i] gets each return value (NULL for a job that failed). A member
 * of the pool calling it runs a job itself whenever no slot is free (see
 * above). 0 when every job succeeded; -1 with errno = the error of the
 * first failed job (by index); or -1: EINVAL, EXDEV, ENOMEM, blocking-call
 * errors (then the jobs already spawned are killed and results is
 * unspecified). */
GEV_EXTERN int gev_pool_map(gev_pool *p, gev_greenlet_fn fn, void *const *args,
                            void **results, size_t n);
/* As gev_pool_map, with timeout (seconds, < 0 none) as one deadline for
 * the whole call: when it passes, the jobs still running are killed and
 * the call fails with ETIMEDOUT (a job running in the caller meets the
 * deadline at its next blocking call). */
GEV_EXTERN int gev_pool_map_timeout(gev_pool *p, gev_greenlet_fn fn,
                                    void *const *args, void **results, size_t n,
                                    double timeout);

/* Iterates fn(args[i]) results as they finish, in completion order
 * (gevent's imap_unordered). Jobs are spawned into the pool as slots free
 * up. args must stay valid until the iterator is freed. */
typedef struct gev_pool_imap gev_pool_imap;
/* Errors: EINVAL (p or fn NULL, args NULL with n > 0), EXDEV, ENOMEM. */
GEV_EXTERN gev_pool_imap *gev_pool_imap_unordered(gev_pool *p,
                                                  gev_greenlet_fn fn,
                                                  void *const *args, size_t n);
/* What gev_pool_imap_next stores in *index when its outcome is not about
 * one job (all returned, or the call itself failed). */
#define GEV_POOL_NO_INDEX SIZE_MAX

/* Next finished job. *index is set for every outcome (when index is not
 * NULL), *value only for a job that succeeded:
 *   1   job *index succeeded with *value;
 *   -1  job *index failed: errno = its error, and gev_pool_imap_errmsg()
 *       its message; iteration may go on;
 *   0   all n were returned; *index = GEV_POOL_NO_INDEX;
 *   -1  with *index = GEV_POOL_NO_INDEX: the call failed: EINVAL, EXDEV,
 *       ENOMEM, EIDRM (the pool was destroyed), blocking-call errors
 *       (ETIMEDOUT: "not yet", no job finished in time).
 * When no slot is free, none of the iterator's jobs runs and the caller
 * is a member of the pool, the next job runs in the caller (see "Work
 * from inside the pool"). */
GEV_EXTERN int gev_pool_imap_next(gev_pool_imap *it, double timeout,
                                  size_t *index, void **value);
/* The message of the failed job that gev_pool_imap_next returned last
 * (its gev_fail message, else strerror of its error); NULL if the last
 * job it returned succeeded, or none was returned. Valid until the next
 * gev_pool_imap_next or gev_pool_imap_free. */
GEV_EXTERN const char *gev_pool_imap_errmsg(const gev_pool_imap *it);
/* Kills the jobs still running (without waiting) and frees the iterator.
 * NULL does nothing. */
GEV_EXTERN void gev_pool_imap_free(gev_pool_imap *it);

/* ---- Waiting on sync objects with gev_wait / gev_iwait ---------------- */

/* gev_waitable constructors (see gev/hub.h): ready when the event is set;
 * the result is ready; an acquire would not wait; a get would not wait (an
 * item, a parked putter, or closed). Waiting takes nothing. */
GEV_EXTERN gev_waitable gev_waitable_event(gev_event *e);
GEV_EXTERN gev_waitable gev_waitable_async_result(gev_async_result *r);
GEV_EXTERN gev_waitable gev_waitable_semaphore(gev_semaphore *s);
GEV_EXTERN gev_waitable gev_waitable_lock(gev_lock *l);
GEV_EXTERN gev_waitable gev_waitable_queue(gev_queue *q);
GEV_EXTERN gev_waitable gev_waitable_channel(gev_channel *c);

#ifdef __cplusplus
}
#endif
#endif
