/*
 * The threadpool (gev/thread.h): a FIFO of jobs under one lock, worker
 * threads that take them, and results that come back to the spawning hub
 * through its inbox (xthread.h).
 *
 * A job's life: spawn (any coroutine, or the hub) queues the result
 * object, which is the job, and holds the hub's expectation so its loop
 * runs until the answer is back; a worker takes it (QUEUED -> RUNNING by
 * compare-and-swap, so that a cancel racing with the worker has one
 * winner), runs it, stores the outcome, marks it DONE (release: a thread
 * that reads DONE may read the outcome) and posts its completion to the
 * spawning hub, which wakes the waiters and fires gev_wait's rawlinks. A
 * cancel (or the pool's CANCEL shutdown) moves a queued job to DONE
 * itself; the worker that later finds it in the queue drops it.
 *
 * References on a result: the spawner's handle, the job's (dropped by
 * the completion, or by the worker when the spawning hub is gone), and the
 * queue's while it is in the queue. The last one runs the cleanup.
 *
 * The pool's memory: a reference of its creator (until gev_threadpool_free)
 * and one per thread; the last one frees it, so a thread never runs on a
 * freed pool. Waits for the pool (join, free) are Events of the waiter's
 * hub, set by the worker that makes the pool idle or empty.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gev/sync.h"
#include "gev/thread.h"
#include "hub/hooks.h"
#include "hub/hub_internal.h"
#include "hub/waitable.h"
#include "hub/xthread.h"

#define DEFAULT_SIZE 10

/* A job's error reaches waiters as the wake error ERR_BASE + err, so that
 * it is told apart from a failure of the wait itself (as AsyncResult). */
enum { ERR_BASE = 1 << 20 };

enum { JOB_QUEUED, JOB_CLAIMED, JOB_RUNNING, JOB_DONE };

#define RESULT_MAGIC 0x67657654u

struct gev_thread_result {
  unsigned magic;
  unsigned refs; /* atomic */
  int state;     /* atomic: JOB_* */
  /* The job: written at spawn, read by the thread that runs it. */
  gev_thread_fn fn;
  void *arg;
  gev_thread_cleanup_fn cleanup;
  gev_thread_result *next; /* the pool's queue, under its lock */
  /* The outcome: written before state turns DONE. */
  void *value;
  int err;
  char *errmsg;
  /* The spawning hub's side. */
  unsigned long long hub_id; /* ro */
  gev_hub *home;             /* ro: a reference */
  gev__xmsg done;            /* the completion, posted to home */
  gev__waitq waiters;
  gev__rawlink *links; /* gev_wait's */
};

/* Someone waiting for the pool: until idle (join) or without threads
 * (free). Listed under the pool lock; ev belongs to the waiter's hub. */
typedef struct pool_waiter {
  struct pool_waiter *next;
  gev_event *ev;
  int for_exit;
} pool_waiter;

struct gev_threadpool {
  pthread_mutex_t lock;
  pthread_cond_t work;            /* idle threads wait here */
  gev_thread_result *head, *tail; /* queued jobs */
  size_t queued, max, threads, idle, busy;
  size_t retiring; /* threads counted in threads that are on their way out */
  unsigned long long completed;
  double idle_timeout;
  int stopping;
  int is_default;
  unsigned refs; /* the creator's, one per thread */
  pool_waiter *waiters;
};

/* ---- Results ------------------------------------------------------------ */

static int job_state(const gev_thread_result *r) {
  return __atomic_load_n(&r->state, __ATOMIC_ACQUIRE);
}

static void result_release(gev_thread_result *r) {
  if (__atomic_fetch_sub(&r->refs, 1, __ATOMIC_ACQ_REL) != 1)
    return;
  if (r->cleanup)
    r->cleanup(r->arg, job_state(r) == JOB_DONE && !r->err ? r->value : NULL);
  gev__xhub_unref(r->home);
  free(r->errmsg);
  r->magic = 0;
  free(r);
}

/* In the spawning hub: the job has finished. */
static void finish_here(gev_thread_result *r) {
  gev__hub *h = gev__hub_peek();
  gev__waitq_wake_all(&r->waiters, r->err ? NULL : r->value,
                      r->err ? ERR_BASE + r->err : 0);
  gev__rawlink_fire_all(&r->links, 0);
  if (h)
    gev__hub_expect(h, -1);
}

static void result_done(gev__xmsg *m, int err) {
  gev_thread_result *r =
      (gev_thread_result *)(void *)((char *)m -
                                    offsetof(gev_thread_result, done));
  if (!err)
    finish_here(r);
  result_release(r); /* the job's */
}

/* Publishes the outcome (already stored) and sends the completion home;
 * with the spawning hub gone, nobody waits: the job's reference goes. */
static void complete(gev_thread_result *r) {
  __atomic_store_n(&r->state, JOB_DONE, __ATOMIC_RELEASE);
  if (gev__xhub_post(r->home, &r->done) < 0)
    result_release(r);
}

/* Claims a queued job for a cancel: 1 if it will never run. */
static int claim_queued(gev_thread_result *r, int to) {
  int queued = JOB_QUEUED;
  return __atomic_compare_exchange_n(&r->state, &queued, to, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

static void cancel_claimed(gev_thread_result *r) {
  r->err = ECANCELED;
  r->value = NULL;
}

/* ---- gev_fail in a job --------------------------------------------------- */

int gev__job_fail(int err, const char *fmt, va_list ap) {
  gev_thread_result *r = gev__thread_slot_peek(GEV__SLOT_JOB);
  if (!r)
    return 0;
  r->err = err;
  free(r->errmsg);
  r->errmsg = NULL;
  if (fmt && vasprintf(&r->errmsg, fmt, ap) < 0)
    r->errmsg = NULL;
  return 1;
}

/* ---- Pool threads ------------------------------------------------------- */

static void pool_unref_locked(gev_threadpool *p, int *last) {
  *last = --p->refs == 0;
}

static void pool_release_memory(gev_threadpool *p) {
  pthread_cond_destroy(&p->work);
  pthread_mutex_destroy(&p->lock);
  free(p);
}

/* Sets the events of waiters whose condition holds. */
static void notify_locked(gev_threadpool *p) {
  for (pool_waiter *w = p->waiters; w; w = w->next) {
    int met = w->for_exit ? p->threads == 0 : p->queued == 0 && p->busy == 0;
    if (met)
      gev_event_set(w->ev);
  }
}

/* start + seconds, as a timespec on CLOCK_MONOTONIC. */
static struct timespec after(struct timespec start, double seconds) {
  double whole = floor(seconds);
  start.tv_sec += (time_t)whole;
  start.tv_nsec += (long)((seconds - whole) * 1e9);
  if (start.tv_nsec >= 1000000000L) {
    start.tv_sec++;
    start.tv_nsec -= 1000000000L;
  }
  return start;
}

/* The next job for a thread, waiting for one while it may. NULL when the
 * thread is to retire (the pool shrank or stops, or it idled for the
 * pool's idle timeout, counted from when it became idle); it is then
 * counted as retiring. */
static gev_thread_result *next_job_locked(gev_threadpool *p) {
  struct timespec idle_since, deadline;
  int rc = 0;
  clock_gettime(CLOCK_MONOTONIC, &idle_since);
  for (;;) {
    gev_thread_result *r;
    if (p->threads - p->retiring > p->max)
      break;
    while ((r = p->head)) {
      p->head = r->next;
      if (!p->head)
        p->tail = NULL;
      p->queued--;
      if (claim_queued(r, JOB_RUNNING)) {
        /* The queue's reference goes; the job's keeps r. */
        __atomic_fetch_sub(&r->refs, 1, __ATOMIC_RELAXED);
        p->busy++;
        return r;
      }
      /* Cancelled while queued: the queue's reference goes. */
      pthread_mutex_unlock(&p->lock);
      result_release(r);
      pthread_mutex_lock(&p->lock);
    }
    if (p->stopping || p->idle_timeout == 0 || rc == ETIMEDOUT)
      break;
    p->idle++;
    if (p->idle_timeout > 0) {
      deadline = after(idle_since, p->idle_timeout);
      rc = pthread_cond_timedwait(&p->work, &p->lock, &deadline);
    } else {
      pthread_cond_wait(&p->work, &p->lock);
    }
    p->idle--;
  }
  p->retiring++;
  return NULL;
}

static void run_job(gev_thread_result *r, void **slot) {
  if (slot)
    *slot = r;
  void *value = r->fn(r->arg);
  if (slot)
    *slot = NULL;
  r->value = r->err ? NULL : value;
  complete(r);
}

static void *worker_main(void *arg) {
  gev_threadpool *p = arg;
  void **slot = gev__thread_slot(GEV__SLOT_JOB); /* NULL: no gev_fail */
  gev_thread_result *r;
  int last;
  pthread_mutex_lock(&p->lock);
  while ((r = next_job_locked(p))) {
    pthread_mutex_unlock(&p->lock);
    run_job(r, slot);
    pthread_mutex_lock(&p->lock);
    p->busy--;
    p->completed++;
    notify_locked(p);
  }
  pthread_mutex_unlock(&p->lock);
  /* A job may have used gev here: that hub goes before the thread counts
   * as gone (its descriptors with it). */
  if (gev_hub_exists())
    gev_hub_destroy();
  pthread_mutex_lock(&p->lock);
  p->retiring--;
  p->threads--;
  notify_locked(p);
  pool_unref_locked(p, &last);
  pthread_mutex_unlock(&p->lock);
  if (last)
    pool_release_memory(p);
  return NULL;
}

/* Starts one more thread (detached; it counts itself out when it
 * retires). 0 or -1 with errno. */
static int start_thread_locked(gev_threadpool *p) {
  pthread_t tid;
  int rc = gev__thread_spawn(&tid, 1, worker_main, p);
  if (rc != 0) {
    errno = rc;
    return -1;
  }
  p->threads++;
  p->refs++;
  return 0;
}

/* Wakes or starts threads for the queued jobs, up to the size. A thread
 * that cannot be started is not an error while another can run the job. */
static int staff_locked(gev_threadpool *p) {
  if (p->idle > 0)
    pthread_cond_signal(&p->work);
  while (p->queued > p->idle && p->threads - p->retiring < p->max)
    if (start_thread_locked(p) < 0)
      return p->threads - p->retiring > 0 ? 0 : -1;
  return 0;
}

/* ---- Pools -------------------------------------------------------------- */

static gev_threadpool *pool_make(size_t max_threads) {
  gev_threadpool *p = calloc(1, sizeof *p);
  pthread_condattr_t ca;
  if (!p) {
    errno = ENOMEM;
    return NULL;
  }
  pthread_mutex_init(&p->lock, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->work, &ca);
  pthread_condattr_destroy(&ca);
  p->max = max_threads;
  p->idle_timeout = GEV_THREADPOOL_IDLE_TIMEOUT;
  p->refs = 1;
  return p;
}

GEV_EXTERN gev_threadpool *gev_threadpool_new(size_t max_threads) {
  if (max_threads == 0) {
    errno = EINVAL;
    return NULL;
  }
  return pool_make(max_threads);
}

static gev_threadpool *default_pool;
static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t env_size(void) {
  const char *s = getenv("GEV_THREADPOOL_SIZE");
  char *end;
  long n;
  if (!s || !*s)
    return DEFAULT_SIZE;
  n = strtol(s, &end, 10);
  if (*end || n < 1 || n > 100000) {
    gev__log(GEV_LOG_WARNING,
             "gev: GEV_THREADPOOL_SIZE=%s is not a number of threads; "
             "using %d",
             s, DEFAULT_SIZE);
    return DEFAULT_SIZE;
  }
  return (size_t)n;
}

/* A forked child has none of the parent's pool threads: its default pool
 * is a new one, made on first use (the parent's is left as it is). */
static void fork_child(void) {
  pthread_mutex_init(&default_lock, NULL);
  __atomic_store_n(&default_pool, NULL, __ATOMIC_RELEASE);
}

static const gev__fork_hooks pool_fork_hooks = {
    .layer = GEV__LAYER_HUB, .keep = fork_child, .discard = fork_child};

GEV_EXTERN gev_threadpool *gev_threadpool_default(void) {
  gev_threadpool *p = __atomic_load_n(&default_pool, __ATOMIC_ACQUIRE);
  if (p)
    return p;
  pthread_mutex_lock(&default_lock);
  if (!(p = default_pool) && (p = pool_make(env_size()))) {
    p->is_default = 1;
    gev__at_fork(&pool_fork_hooks);
    __atomic_store_n(&default_pool, p, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&default_lock);
  return p;
}

GEV_EXTERN int gev_threadpool_set_size(gev_threadpool *p, size_t max_threads) {
  int rc = 0;
  if (!p || max_threads == 0) {
    errno = EINVAL;
    return -1;
  }
  pthread_mutex_lock(&p->lock);
  if (p->stopping) {
    errno = ESHUTDOWN;
    rc = -1;
  } else {
    p->max = max_threads;
    if (p->threads - p->retiring > p->max)
      pthread_cond_broadcast(&p->work); /* idle ones retire now */
    staff_locked(p);
  }
  pthread_mutex_unlock(&p->lock);
  return rc;
}

GEV_EXTERN int gev_threadpool_set_idle_timeout(gev_threadpool *p,
                                               double seconds) {
  if (!p || isnan(seconds)) {
    errno = EINVAL;
    return -1;
  }
  pthread_mutex_lock(&p->lock);
  p->idle_timeout = seconds;
  pthread_cond_broadcast(&p->work); /* idle ones take the new timeout */
  pthread_mutex_unlock(&p->lock);
  return 0;
}

GEV_EXTERN void gev_threadpool_get_stats(gev_threadpool *p,
                                         gev_threadpool_stats *out) {
  memset(out, 0, sizeof *out);
  if (!p)
    return;
  pthread_mutex_lock(&p->lock);
  out->max_threads = p->max;
  out->threads = p->threads;
  out->busy = p->busy;
  out->queued = p->queued;
  out->completed = p->completed;
  pthread_mutex_unlock(&p->lock);
}

/* ---- Spawning ------------------------------------------------------------ */

/* Takes r, the last job queued, off the queue again. */
static void unqueue_locked(gev_threadpool *p, gev_thread_result *r) {
  gev_thread_result **pp = &p->head, *prev = NULL;
  while (*pp != r) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  *pp = NULL;
  p->tail = prev;
  p->queued--;
}

static gev_thread_result *result_new(gev__hub *h, gev_thread_fn fn, void *arg,
                                     gev_thread_cleanup_fn cleanup) {
  gev_thread_result *r = calloc(1, sizeof *r);
  if (!r) {
    errno = ENOMEM;
    return NULL;
  }
  r->magic = RESULT_MAGIC;
  r->refs = 3; /* the caller's, the job's, the queue's */
  r->state = JOB_QUEUED;
  r->fn = fn;
  r->arg = arg;
  r->cleanup = cleanup;
  r->hub_id = gev__hub_id(h);
  r->home = gev__xhub_ref(gev__xhub_of(h));
  r->done.run = result_done;
  return r;
}

GEV_EXTERN gev_thread_result *
gev_threadpool_spawn_ex(gev_threadpool *p, gev_thread_fn fn, void *arg,
                        gev_thread_cleanup_fn cleanup) {
  gev__hub *h;
  gev_thread_result *r;
  int err = 0;
  if (!fn) {
    errno = EINVAL;
    return NULL;
  }
  if ((!p && !(p = gev_threadpool_default())) || !(h = gev__hub_get()) ||
      !(r = result_new(h, fn, arg, cleanup)))
    return NULL;
  pthread_mutex_lock(&p->lock);
  if (p->stopping) {
    err = ESHUTDOWN;
  } else {
    if (p->tail)
      p->tail->next = r;
    else
      p->head = r;
    p->tail = r;
    p->queued++;
    if (staff_locked(p) < 0) { /* no thread at all could be started */
      err = errno;
      unqueue_locked(p, r);
    }
  }
  pthread_mutex_unlock(&p->lock);
  if (err) {
    r->cleanup = NULL; /* "a spawn that fails never calls it" */
    r->refs = 1;
    result_release(r);
    errno = err;
    return NULL;
  }
  gev__hub_expect(h, +1);
  return r;
}

GEV_EXTERN gev_thread_result *
gev_threadpool_spawn(gev_threadpool *p, gev_thread_fn fn, void *arg) {
  return gev_threadpool_spawn_ex(p, fn, arg, NULL);
}

GEV_EXTERN int gev_threadpool_apply(gev_threadpool *p, gev_thread_fn fn,
                                    void *arg, void **value) {
  gev_thread_result *r;
  int rc, err;
  if (gev__may_block() < 0 || !(r = gev_threadpool_spawn(p, fn, arg)))
    return -1;
  rc = gev_thread_result_get(r, -1, value);
  err = errno;
  gev_thread_result_unref(r);
  errno = err;
  return rc;
}

/* ---- Waiting for the pool ------------------------------------------------ */

/* Parks the caller until w's condition holds (see notify_locked), for up
 * to timeout seconds. 0 or -1 with errno. */
static int pool_wait(gev_threadpool *p, int for_exit, double timeout) {
  pool_waiter w = {.for_exit = for_exit};
  int rc;
  if (!(w.ev = gev_event_new()))
    return -1;
  pthread_mutex_lock(&p->lock);
  w.next = p->waiters;
  p->waiters = &w;
  notify_locked(p); /* it may hold already */
  pthread_mutex_unlock(&p->lock);
  rc = gev_event_wait(w.ev, timeout);
  int err = errno;
  pthread_mutex_lock(&p->lock);
  for (pool_waiter **pp = &p->waiters; *pp; pp = &(*pp)->next)
    if (*pp == &w) {
      *pp = w.next;
      break;
    }
  pthread_mutex_unlock(&p->lock);
  gev_event_free(w.ev);
  errno = err;
  return rc;
}

GEV_EXTERN int gev_threadpool_join(gev_threadpool *p, double timeout) {
  if (!p) {
    errno = EINVAL;
    return -1;
  }
  if (gev__bad_timeout(timeout) || gev__may_block() < 0)
    return -1;
  return pool_wait(p, 0, timeout);
}

GEV_EXTERN int gev_threadpool_free(gev_threadpool *p, int flags,
                                   double timeout) {
  gev_thread_result *cancelled = NULL, *r;
  int rc = 0, last;
  if (!p || p->is_default || (flags & ~GEV_THREADPOOL_CANCEL)) {
    errno = EINVAL;
    return -1;
  }
  if (gev__bad_timeout(timeout) || (timeout != 0 && gev__may_block() < 0))
    return -1;
  pthread_mutex_lock(&p->lock);
  p->stopping = 1;
  if (flags & GEV_THREADPOOL_CANCEL) {
    cancelled = p->head;
    p->head = p->tail = NULL;
    p->queued = 0;
  }
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->lock);
  while ((r = cancelled)) {
    cancelled = r->next;
    if (claim_queued(r, JOB_CLAIMED)) {
      cancel_claimed(r);
      complete(r);
    }
    result_release(r); /* the queue's */
  }
  if (timeout != 0)
    rc = pool_wait(p, 1, timeout);
  pthread_mutex_lock(&p->lock);
  if (rc == 0 && p->threads > 0) {
    errno = ETIMEDOUT;
    rc = -1;
  }
  pool_unref_locked(p, &last);
  pthread_mutex_unlock(&p->lock);
  if (last)
    pool_release_memory(p);
  return rc;
}

/* ---- Results: the public calls ------------------------------------------ */

/* r is a live result of the calling thread's hub: 0, or -1 with errno. */
static int result_check(const gev_thread_result *r) {
  if (!r || r->magic != RESULT_MAGIC) {
    errno = EINVAL;
    return -1;
  }
  if (r->hub_id != gev__hub_current_id()) {
    errno = EXDEV;
    return -1;
  }
  return 0;
}

/* The outcome of a finished job: 0 with *value, or -1 with its error. */
static int outcome(const gev_thread_result *r, void **value) {
  if (r->err) {
    errno = r->err;
    return -1;
  }
  if (value)
    *value = r->value;
  return 0;
}

/* Waits for the job: 0 or -1 with errno; *stored tells a job's error from
 * a failure of the wait. */
static int result_wait(gev_thread_result *r, double timeout, void **value,
                       int *stored) {
  void *v = NULL;
  *stored = 0;
  if (result_check(r) < 0 || gev__bad_timeout(timeout))
    return -1;
  if (job_state(r) == JOB_DONE) {
    *stored = 1;
    return outcome(r, value);
  }
  if (timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  if (gev__waitq_wait(&r->waiters, timeout, "ThreadResult.get", &v) == 0) {
    *stored = 1;
    if (value)
      *value = v;
    return 0;
  }
  if (errno > ERR_BASE) {
    *stored = 1;
    errno -= ERR_BASE;
  }
  return -1;
}

GEV_EXTERN int gev_thread_result_get(gev_thread_result *r, double timeout,
                                     void **value) {
  int stored;
  return result_wait(r, timeout, value, &stored);
}

GEV_EXTERN int gev_thread_result_wait(gev_thread_result *r, double timeout) {
  int stored;
  if (result_wait(r, timeout, NULL, &stored) < 0 && !stored)
    return -1;
  return 0;
}

static int result_valid(const gev_thread_result *r) {
  if (r && r->magic == RESULT_MAGIC)
    return 1;
  errno = EINVAL;
  return 0;
}

GEV_EXTERN int gev_thread_result_ready(const gev_thread_result *r) {
  return result_valid(r) ? job_state(r) == JOB_DONE : -1;
}

GEV_EXTERN int gev_thread_result_successful(const gev_thread_result *r) {
  return result_valid(r) ? job_state(r) == JOB_DONE && !r->err : -1;
}

GEV_EXTERN int gev_thread_result_error(const gev_thread_result *r) {
  if (!result_valid(r))
    return -1;
  return job_state(r) == JOB_DONE ? r->err : 0;
}

GEV_EXTERN const char *gev_thread_result_errmsg(const gev_thread_result *r) {
  if (!result_valid(r) || job_state(r) != JOB_DONE || !r->err)
    return NULL;
  return r->errmsg ? r->errmsg : strerror(r->err);
}

GEV_EXTERN int gev_thread_result_cancel(gev_thread_result *r) {
  if (result_check(r) < 0)
    return -1;
  if (!claim_queued(r, JOB_CLAIMED)) {
    errno = EBUSY;
    return -1;
  }
  cancel_claimed(r);
  __atomic_store_n(&r->state, JOB_DONE, __ATOMIC_RELEASE);
  finish_here(r);
  result_release(r); /* the job's; the queue's goes with the worker */
  return 0;
}

GEV_EXTERN gev_thread_result *gev_thread_result_ref(gev_thread_result *r) {
  if (r)
    __atomic_fetch_add(&r->refs, 1, __ATOMIC_RELAXED);
  return r;
}

GEV_EXTERN void gev_thread_result_unref(gev_thread_result *r) {
  if (r)
    result_release(r);
}

/* ---- gev_wait's view ----------------------------------------------------- */

static int tr_check(const gev_waitable *w) { return result_check(w->obj_); }

static int tr_ready(const gev_waitable *w) {
  return job_state(w->obj_) == JOB_DONE;
}

static void tr_fired(gev__rawlink *l, int err) {
  gev__wait_entry *e = (gev__wait_entry *)(void *)l;
  const gev_thread_result *r = e->w->obj_;
  gev__wait_entry_fire(e, err, !err && r->err != 0);
}

static int tr_arm(gev__wait_entry *e) {
  gev_thread_result *r = e->w->obj_;
  e->link.fire = tr_fired;
  gev__rawlink_add(&r->links, &e->link);
  return 0;
}

static void tr_disarm(gev__wait_entry *e) { gev__rawlink_del(&e->link); }

static int tr_failed(const gev_waitable *w) {
  const gev_thread_result *r = w->obj_;
  return job_state(r) == JOB_DONE && r->err != 0;
}

static void tr_hold(const gev_waitable *w) { gev_thread_result_ref(w->obj_); }

static void tr_release(const gev_waitable *w) {
  gev_thread_result_unref(w->obj_);
}

static const gev__waitable_ops thread_result_ops = {
    .check = tr_check,
    .ready = tr_ready,
    .arm = tr_arm,
    .disarm = tr_disarm,
    .failed = tr_failed,
    .hold = tr_hold,
    .release = tr_release,
};

GEV_EXTERN gev_waitable gev_waitable_thread_result(gev_thread_result *r) {
  return (gev_waitable){.ops_ = &thread_result_ops, .obj_ = r, .fd_ = -1};
}
