/*
 * Internal: the one wait abstraction everything that blocks is built on.
 *
 * Every coroutine that may block (greenlets, the main coroutine) has a task:
 * a heap control block with a wake-up slot, a deadline timer and a node for
 * one wait queue. gev__park() parks the current task until gev__wake() is
 * called for it (from any coroutine of the thread or from a loop callback)
 * or until its deadline passes. Only the first wake of a park counts; a wake
 * also unlinks the task from the wait queue it sits on, so a waker never
 * hands anything to a task that already left.
 *
 * Typical blocking primitive:
 *
 *     while (!resource_available(obj)) {
 *       if (gev__waitq_wait(&obj->waiters, timeout, "Semaphore", NULL) < 0)
 *         return -1;            // errno: ETIMEDOUT, ECANCELED, EPERM ...
 *     }
 *
 * and the releasing side calls gev__waitq_wake_one(&obj->waiters, v, 0).
 * Handing a resource directly to the woken task (wake with a value that
 * says "you got it") avoids barging; with the unlink-on-wake rule above, a
 * wake aimed at a task that was killed first goes to the next one instead.
 */
#ifndef GEV_SRC_HUB_PARK_H
#define GEV_SRC_HUB_PARK_H

#include <errno.h>
#include <math.h>
#include <stddef.h>

#include "coro/coro_ext.h"
#include "coro/log_internal.h"
#include "gev/hub.h"

typedef struct gev__task gev__task;
typedef struct gev__hub gev__hub;
typedef struct gev__hthread gev__hthread;

/* A FIFO of parked tasks. Zero-initialised is empty; no destroy needed once
 * empty. Lives in heap objects only (see the shared-stack rule). */
typedef struct gev__waitq {
  gev__task *head; /* private */
  gev__task *tail; /* private */
  size_t len;      /* ro */
} gev__waitq;

/* The part of the hub layer's per-thread block (struct gev__hthread, hung from
 * the coroutine layer's thread root) that every layer may read. */
typedef struct gev__hthread_head {
  gev__hub *hub;             /* ro: the thread's hub, or NULL */
  unsigned long long hub_id; /* ro: gev__hub_id(hub), 0 without one */
} gev__hthread_head;

static inline const gev__hthread_head *gev__hthread_head_peek(void) {
  gev__thread_head *r = gev__thread_root;
  return r ? (const gev__hthread_head *)r->upper : NULL;
}

/* The hub if it exists, without creating one. */
static inline gev__hub *gev__hub_peek(void) {
  const gev__hthread_head *b = gev__hthread_head_peek();
  return b ? b->hub : NULL;
}
/* Creates the calling thread's hub (it has none); NULL with ENOMEM. */
gev__hub *gev__hub_create(void);
/* The calling thread's hub, created on first use; NULL with ENOMEM. */
static inline gev__hub *gev__hub_get(void) {
  gev__hub *h = gev__hub_peek();
  return __builtin_expect(h != NULL, 1) ? h : gev__hub_create();
}
struct ev_loop *gev__hub_evloop(gev__hub *h);
/* A number naming h and no other hub of the process, ever (a freed hub's
 * address is reused; its id is not). Objects remember the id of their hub
 * to tell "this thread's hub" from "a hub that used to be at this
 * address". gev__hub_current_id() is 0 when the thread has no hub. */
unsigned long long gev__hub_id(const gev__hub *h);
static inline unsigned long long gev__hub_current_id(void) {
  const gev__hthread_head *b = gev__hthread_head_peek();
  return b ? b->hub_id : 0;
}

/* Per-thread slots for the layers above the hub, kept in the hub layer's
 * thread block (itself hung from libgev's one thread-local root). A slot
 * holds one pointer; its release function, if set, runs when the thread
 * exits (after the hub's teardown). */
enum {
  GEV__SLOT_DNS_CONFIG, /* net/dns_config.c: the thread's resolver settings */
  GEV__SLOT_RESOLVER,   /* net/dns.c: the thread's resolver */
  GEV__SLOT_TLS_ERROR,  /* net/tls_error.c: the last TLS error's text */
  GEV__SLOT_JOB,        /* hub/threadpool.c: the pool job this thread runs */
  GEV__NSLOTS
};
/* The slot's address, creating the thread's block if needed (NULL with
 * ENOMEM). */
void **gev__thread_slot(int which);
/* The slot's value, or NULL when the thread has no block yet. */
void *gev__thread_slot_peek(int which);
/* Sets the slot (creating the block if needed). 0, or -1 with ENOMEM. */
int gev__thread_slot_set(int which, void *value);
/* Sets the function that releases the slot's value at thread exit. */
void gev__thread_slot_on_exit(int which, void (*release)(void *));

/* The same for the per-hub states of hooks.h (gev__hub_state_get takes
 * the slot's address): one slot per subsystem, cleared by the state's own
 * exit hook when the hub goes. */
typedef struct gev__hub_state gev__hub_state;
enum {
  GEV__STATE_SIGNALS,   /* proc/signal.c */
  GEV__STATE_PROCESSES, /* proc/process.c */
  GEV__NSTATES
};
/* The slot's address, creating the thread's block if needed (NULL with
 * ENOMEM). */
gev__hub_state **gev__thread_hub_state(int which);
/* The slot's value, or NULL when the thread has no block yet. */
gev__hub_state *gev__thread_hub_state_peek(int which);

/* The current coroutine's task, created on first use (NULL with ENOMEM, or
 * EPERM in the hub). */
gev__task *gev__task_current(void);

/* Refuses a NaN timeout or seconds argument: returns 1 with errno EINVAL
 * for NaN, else 0. Every public call taking one checks it on entry, even
 * where it would not wait (NaN is a caller's bug, never "forever"). */
static inline int gev__bad_timeout(double t) {
  if (!isnan(t))
    return 0;
  errno = EINVAL;
  return 1;
}

/* Checks that the caller may block: not the hub (EPERM), not killed
 * (ECANCELED), no expired timeout scope (ETIMEDOUT). 0 or -1/errno. */
int gev__may_block(void);

/* The running coroutine's task if it may block now (the checks of
 * gev__may_block); NULL with errno otherwise. */
gev__task *gev__blocking_task(void);

/* As gev__park, for t, which gev__blocking_task() returned earlier in the
 * same call (a socket call that tried its syscall first, a loop of waits):
 * checks again only what may have changed meanwhile (a kill, an expired
 * scope), without looking the hub up. */
int gev__park_task(gev__task *t, double timeout, const char *what,
                   void **value);

/* Parks the current task until woken or until timeout seconds (< 0:
 * none; the task's timeout scopes also apply). what names the wait for
 * gev_print_run_info ("sleep", "Queue.get", "read fd 5" ...), a static
 * string. Returns 0 with *value from the waker (value may be NULL), or -1
 * with errno: the waker's err, ETIMEDOUT, ECANCELED, EPERM, EDEADLK,
 * EINVAL (timeout NaN), ENOMEM (the deadline could not be armed). */
int gev__park(double timeout, const char *what, void **value);

/* Wakes t with value (err == 0) or error err. The first wake of a park
 * wins; later ones are ignored. Returns 1 if this wake counted, 0 if t was
 * not parked or already woken. Callable from any coroutine of the thread,
 * and from loop callbacks. */
int gev__wake(gev__task *t, void *value, int err);

/* Parks the current task on q (appended: FIFO). Returns as gev__park; on
 * any return the task is no longer on q. */
int gev__waitq_wait(gev__waitq *q, double timeout, const char *what,
                    void **value);
/* Appends t, a task that stands for a wait elsewhere (xsync.c's
 * proxies: parked, never run), to q without parking anything. */
void gev__waitq_append(gev__waitq *q, gev__task *t);
/* Wakes the first task of q; returns 1, or 0 if q was empty. */
int gev__waitq_wake_one(gev__waitq *q, void *value, int err);
/* Wakes every task on q; returns how many. */
size_t gev__waitq_wake_all(gev__waitq *q, void *value, int err);
/* The first task on q, or NULL. */
gev__task *gev__waitq_first(const gev__waitq *q);

/* Counts a gev-owned libev watcher as started/stopped (for leak checks in
 * gev_hub_get_stats and the verifier). */
void gev__watcher_started(void);
void gev__watcher_stopped(void);

/* As gev_greenlet_link, for gev's own bookkeeping of a greenlet (a pool's
 * membership, a server's connection list): running it does not count as
 * someone having observed a failure, so a failed pool member or server
 * handler is still reported through the log hook. */
int gev__greenlet_link_quiet(gev_greenlet *g, gev_link_fn fn, void *arg);

/* Aborts with "gev: <rule>" on stderr. */
void gev__die(const char *rule) __attribute__((noreturn));

#endif
