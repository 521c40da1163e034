/*
 * The hub: one per thread, a dedicated-stack coroutine running the libev
 * loop, with a FIFO callback queue and the park/wake mechanism every
 * blocking call uses.
 *
 * A turn of the hub (hub_main):
 *   1. drain the callback queue (greenlet starts, wake-ups, user callbacks)
 *      in FIFO order. Callbacks queued meanwhile run in the same pass, but
 *      the pass stops after ~5 ms so that I/O gets its turn;
 *   2. poll: one ev_run iteration without blocking if callbacks are still
 *      queued; otherwise ev_run blocks until a watcher fires and queues
 *      work (gev__run_soon then breaks out of ev_run) or no watcher is left;
 *   3. fired watchers (timers, io, signals, children) wake parked tasks,
 *      which queues them for the next pass.
 * When ev_run returns with nothing queued, no watcher active (its return
 * value) and none pending, the loop is exhausted: the main coroutine, if it
 * waits, is woken successfully if it is in gev_run, with EDEADLK ("would
 * block forever") otherwise. ev_run also returns when other libev code
 * sharing the loop calls ev_break; with watchers still active that is not
 * the end of the work, and the hub just polls again.
 *
 * The queue lives outside libev on purpose: a wake-up or spawn costs a
 * pointer append, with no watcher to start or stop, so a hand-off between
 * two greenlets never enters libev at all.
 *
 * A wake goes through the queue rather than switching at once so that the
 * waker keeps running (gevent's rule: only the hub switches into parked
 * greenlets) and wake-ups are served in order.
 *
 * A parked task knows how its park ended by what its switch to the hub
 * returned: the hub's resume carries a token nothing else can send, for the
 * park generation it was queued for. Anything else is an error thrown in
 * (a wake with that error) or an invalid switch (logged, EINTR), and a
 * resume still queued for that park is stale and dropped when it runs.
 *
 * Per-thread state: the hub layer's block (struct gev__hthread) hangs from the
 * coroutine layer's thread root, and the coroutine layer calls the hooks
 * registered here when a coroutine with a task is freed and when the
 * thread exits (which tears the hub down as gev_hub_destroy does).
 *
 * The callback queue, tasks, park and wake stay in this one file although
 * it is long: a hand-off between greenlets runs through all of them, and
 * in one translation unit the compiler inlines that path (the queue's take,
 * the deadline check, the direct switch). The hub's self-check and its
 * counters, which read the same structures but no hot path, are in
 * verify.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hub/child.h" /* the default loop without libev's reaper */
#include "hub/hub_internal.h"
#include "hub/xthread.h"

#define DRAIN_BUDGET 0.005 /* seconds per callback pass */

static gev__hub *hub_peek(void) { return gev__hub_peek(); }

/* Makes h (or none) the thread's hub. */
static void hthread_set_hub(gev__hthread *ht, gev__hub *h) {
  ht->head.hub = h;
  ht->head.hub_id = h ? h->id : 0;
}

/* ---- Errors ------------------------------------------------------------ */

void gev__die(const char *rule) {
  gev__log(GEV_LOG_FATAL, "gev: %s", rule);
  abort();
}

/* ---- Callback queue ---------------------------------------------------- */

void gev__run_soon(gev__hub *h, gev__cb *cb) {
  if (cb->queued)
    gev__die("a callback was queued twice");
  cb->queued = 1;
  cb->next = NULL;
  if (h->tail)
    h->tail->next = cb;
  else
    h->head = cb;
  h->tail = cb;
  if (h->ncallbacks++ == 0 && h->in_poll)
    ev_break(h->loop, EVBREAK_ONE); /* back to the hub to drain */
}

static gev__cb *dequeue(gev__hub *h) {
  gev__cb *cb = h->head;
  if (!cb)
    return NULL;
  h->head = cb->next;
  if (!h->head)
    h->tail = NULL;
  cb->queued = 0;
  h->ncallbacks--;
  return cb;
}

/* Puts cb, just dequeued, back at the head of the queue. */
static void requeue_front(gev__hub *h, gev__cb *cb) {
  cb->queued = 1;
  cb->next = h->head;
  h->head = cb;
  if (!h->tail)
    h->tail = cb;
  h->ncallbacks++;
}

/* Counts a callback run in this pass (by the hub or on its behalf); every
 * 64 the clock is read, and the pass ends once it has used its budget. */
static void pass_count(gev__hub *h) {
  if ((++h->pass_n & 63) == 0) {
    double now = gev_monotonic();
    if (h->pass_start == 0)
      h->pass_start = now;
    else if (now - h->pass_start > DRAIN_BUDGET)
      h->pass_over = 1;
  }
}

/* Before a switch into the coroutine of a callback just taken or run,
 * when many greenlets are parked, the next callbacks' memory is likely
 * cold: it is fetched in a pipeline, each step starting the loads that the
 * previous steps made possible: the third callback's task, the second's
 * coroutine, the next one's stack. */
static inline gev_coro *task_coro_of(const gev__cb *cb) {
  return cb->take == gev__task_take ? ((const gev__task *)cb)->coro : NULL;
}

static inline void prefetch_next(gev__hub *h) {
  gev__cb *n1 = h->head, *n2;
  gev_coro *c;
  if (!n1)
    return;
  if ((c = task_coro_of(n1)))
    gev__coro_prefetch_stack(c);
  if (!(n2 = n1->next))
    return;
  if ((c = task_coro_of(n2)))
    __builtin_prefetch(c);
  if (n2->next)
    __builtin_prefetch(n2->next);
}

/* Runs queued callbacks until the queue is empty or the pass has used its
 * time budget. Coroutines that park or end during the pass may run some of
 * them on the hub's behalf (gev__hub_take_switch). */
static void drain(gev__hub *h) {
  gev__cb *cb;
  h->pass_n = 0;
  h->pass_start = 0;
  h->pass_over = 0;
  h->draining = 1;
  while (!h->stopping && !h->pass_over && (cb = dequeue(h))) {
    prefetch_next(h);
    cb->run(cb);
    pass_count(h);
  }
  h->draining = 0;
  if (h->destroying && h->nrunning == 0 && h->ncallbacks == 0)
    gev__wake(&h->main_task, NULL, 0);
}

int gev__hub_take_switch(gev__hub *h, gev_coro **to, void **value) {
  gev__cb *cb;
  if (!h->draining || h->stopping || h->destroying)
    return 0;
  while (!h->pass_over && (cb = h->head) && cb->take) {
    int r;
    dequeue(h);
    /* Resumes, the common case, without the indirect call. */
    r = cb->take == gev__task_take ? gev__task_take(cb, to, value)
                                   : cb->take(cb, to, value);
    if (r < 0) {
      requeue_front(h, cb);
      return 0;
    }
    pass_count(h);
    if (r > 0) {
      prefetch_next(h);
      return 1;
    }
  }
  return 0;
}

typedef struct user_cb {
  gev__cb cb;
  gev_callback_fn fn;
  void *arg;
} user_cb;

static void run_user_cb(gev__cb *cb) {
  user_cb *u = (user_cb *)cb;
  gev_callback_fn fn = u->fn;
  void *arg = u->arg;
  free(u);
  fn(arg);
}

GEV_EXTERN int gev_run_callback(gev_callback_fn fn, void *arg) {
  gev__hub *h;
  user_cb *u;
  if (!fn) {
    errno = EINVAL;
    return -1;
  }
  if (!(h = gev__hub_get()) || !(u = calloc(1, sizeof *u)))
    return -1;
  u->cb.run = run_user_cb;
  u->fn = fn;
  u->arg = arg;
  gev__run_soon(h, &u->cb);
  return 0;
}

/* ---- Tasks ------------------------------------------------------------- */

static void resume_task(gev__cb *cb) {
  gev__task *t = (gev__task *)cb;
  if (t->orphan) {
    free(t); /* its coroutine was freed while this resume was queued */
    return;
  }
  gev__task_resume(t);
}

int gev__task_take(gev__cb *cb, gev_coro **to, void **value) {
  gev__task *t = (gev__task *)cb;
  if (t->orphan) {
    free(t);
    return 0;
  }
  if (!gev__task_resume_due(t))
    return 0;
  if (!gev__coro_ready(t->coro) && gev__coro_prepare(t->coro) < 0)
    return -1;
  *to = t->coro;
  *value = GEV__RESUME_TOKEN;
  return 1;
}

/* Starts w to fire after seconds, counted from now: libev counts a timer
 * from its cached loop time, which is stale by however long the running
 * greenlet has computed since the loop last polled, so the cache is
 * refreshed first (gevent's loop.update_now() before arming a sleep). */
void gev__timer_start(gev__hub *h, ev_timer *w, double seconds) {
  ev_now_update(h->loop);
  ev_timer_set(w, seconds > 0 ? seconds : 0, 0);
  ev_timer_start(h->loop, w);
  h->nwatchers++;
}

/* A task's deadline came due (deadlines.c). Deadlines are points on
 * gev_monotonic()'s clock and the wheel never serves one early; should the
 * clock say otherwise, it is armed again for the rest: a wait never times
 * out before its time. */
void gev__task_deadline_due(gev__task *t) {
  if (t->deadline_at > gev_monotonic() &&
      gev__deadline_arm(t->hub, t, t->deadline_at) == 0)
    return; /* LCOV_EXCL_LINE: the wheel serves no deadline early */
  t->scope_fired = t->armed_scope != NULL;
  if (t->armed_scope)
    t->armed_scope->expired = 1;
  gev__wake(t, NULL, ETIMEDOUT);
}

void gev__task_init(gev__task *t, gev__hub *h, gev_coro *c) {
  memset(t, 0, sizeof *t);
  gev__task_init_zeroed(t, h, c);
}

void gev__task_init_zeroed(gev__task *t, gev__hub *h, gev_coro *c) {
  t->resume.run = resume_task;
  t->resume.take = gev__task_take;
  t->hub = h;
  t->coro = c;
  gev__coro_set_upper(c, t);
}

void gev__task_fini(gev__task *t) {
  gev__scopes_drop(t);
  if (t->coro && gev__coro_upper(t->coro) == t)
    gev__coro_set_upper(t->coro, NULL);
}

gev__task *gev__task_of(gev_coro *c) { return gev__coro_upper(c); }

/* Tasks of plain coroutines (neither greenlets nor main) are allocated on
 * first use, listed in the hub so that its teardown can detach them, and
 * released with the coroutine. */
static int is_plain(const gev__hub *h, const gev__task *t) {
  return !t->greenlet && t != &h->main_task;
}

static void plain_unlink(gev__hub *h, gev__task *t) {
  if (t->plain_prev)
    t->plain_prev->plain_next = t->plain_next;
  else
    h->plain_tasks = t->plain_next;
  if (t->plain_next)
    t->plain_next->plain_prev = t->plain_prev;
  t->plain_prev = t->plain_next = NULL;
}

/* Frees a plain task, or leaves it to its queued resume (which must find
 * it) when there is one. */
static void plain_release(gev__hub *h, gev__task *t) {
  plain_unlink(h, t);
  gev__task_fini(t);
  t->coro = NULL;
  if (t->resume.queued)
    t->orphan = 1;
  else
    free(t);
}

static void waitq_unlink(gev__task *t);
static void disarm_deadline(gev__hub *h, gev__task *t);

/* The coroutine layer's free hook: a coroutine with a task is being freed.
 * Greenlets and the main coroutine detach their tasks themselves; this
 * releases a plain coroutine's, unparking it first if it was discarded
 * while parked. */
static void task_coro_freed(gev_coro *c, void *upper) {
  gev__task *t = upper;
  gev__hub *h = t->hub;
  if (!is_plain(h, t))
    return;
  if (t->parked) {
    waitq_unlink(t);
    disarm_deadline(h, t);
    t->parked = 0;
    h->nparked--;
  }
  plain_release(h, t);
}

static int plain_task_parked(const gev__hub *h) {
  for (const gev__task *t = h->plain_tasks; t; t = t->plain_next)
    if (t->parked)
      return 1;
  return 0;
}

/* Teardown: no plain coroutine is parked (gev_hub_destroy refuses then);
 * their tasks leave with the hub and the next blocking call makes new
 * ones. */
static void detach_plain_tasks(gev__hub *h) {
  while (h->plain_tasks)
    plain_release(h, h->plain_tasks);
}

gev__task *gev__task_current(void) {
  gev__hub *h = gev__hub_get();
  gev_coro *c;
  gev__task *t;
  if (!h)
    return NULL;
  c = h->thr->current;
  if ((t = gev__coro_upper(c)))
    return t;
  if (c == h->coro) {
    errno = EPERM;
    return NULL;
  }
  if (!(t = malloc(sizeof *t)))
    return NULL;
  gev__task_init(t, h, c);
  t->plain_next = h->plain_tasks;
  if (h->plain_tasks)
    h->plain_tasks->plain_prev = t;
  h->plain_tasks = t;
  return t;
}

/* ---- Park and wake ----------------------------------------------------- */

/* Loop callbacks run on the hub's coroutine, so this covers them too. */
static int in_hub(gev__hub *h) { return h->thr->current == h->coro; }

__attribute__((noinline, cold)) static void abandon_if_overdue(gev__hub *h,
                                                               gev__task *t);

/* The checks of a task that may change between two parks of one call: a
 * kill, an expired scope. 0 or -1 with errno. */
static int task_may_block(gev__task *t) {
  if (t->killed) {
    if (t->hub->destroying)
      abandon_if_overdue(t->hub, t);
    errno = ECANCELED;
    return -1;
  }
  if (t->scopes && gev__scopes_expired(t)) {
    errno = ETIMEDOUT;
    return -1;
  }
  return 0;
}

__attribute__((noinline)) static gev__task *blocking_task_slow(void) {
  gev__hub *h = gev__hub_get();
  gev__task *t;
  if (!h)
    return NULL;
  t = gev__coro_upper(h->thr->current);
  if (!t) {
    if (in_hub(h)) {
      errno = EPERM;
      return NULL;
    }
    if (!(t = gev__task_current()))
      return NULL;
  }
  return task_may_block(t) < 0 ? NULL : t;
}

/* The common case inline: the running coroutine has a task (so the
 * thread has its hub), neither killed nor in a timeout scope. */
static inline gev__task *blocking_task(void) {
  gev__thread_head *r = gev__thread_root;
  gev__task *t;
  if (__builtin_expect(r != NULL, 1) &&
      (t = gev__coro_upper(r->current)) != NULL &&
      __builtin_expect(!t->killed && !t->scopes, 1))
    return t;
  return blocking_task_slow();
}

gev__task *gev__blocking_task(void) { return blocking_task(); }

int gev__may_block(void) { return gev__blocking_task() ? 0 : -1; }

/* Arms the task's deadline: the earlier of the call's timeout, counted
 * from now, and its scopes' deadlines, all on gev_monotonic()'s clock. A
 * wait without either reads no clock at all. 0, or -1 with ENOMEM. */
static int arm_deadline_slow(gev__hub *h, gev__task *t, double timeout) {
  gev_timeout *scope = NULL;
  double now, at;
  now = gev_monotonic();
  at = timeout >= 0 ? now + timeout : HUGE_VAL;
  if (t->scopes) {
    double s = gev__scopes_deadline(t, &scope);
    if (s < at)
      at = s;
    else
      scope = NULL;
  }
  t->armed_scope = scope;
  if (at == HUGE_VAL)
    return 0;
  return gev__deadline_arm(h, t, at);
}

static inline int arm_deadline(gev__hub *h, gev__task *t, double timeout) {
  t->armed_scope = NULL;
  t->scope_fired = 0;
  if (timeout < 0 && !t->scopes)
    return 0; /* no clock read, no deadline */
  return arm_deadline_slow(h, t, timeout);
}

static inline void disarm_deadline(gev__hub *h, gev__task *t) {
  if (gev__deadline_armed(&t->dl))
    gev__deadline_disarm(h, t);
}

/* What the hub resumes a parked task with (hub_internal.h). Nothing
 * outside the hub sends it, so a parked task tells the hub's resume from
 * any other switch into it. */
const char gev__resume_token = 1;

/* A new park of t: the next generation, not woken. A resume queued for an
 * earlier park no longer matches (see gev__task_resume). */
static void park_begin(gev__task *t) {
  t->park_gen++;
  t->wake_value = NULL;
  t->wake_err = 0;
  t->woken = 0;
}

/* Queues the hub's resume of t's current park. A resume still queued from
 * an earlier park (which ended without it) is reused where it stands. */
static void queue_resume(gev__task *t) {
  t->resume_gen = t->park_gen;
  if (!t->resume.queued)
    gev__run_soon(t->hub, &t->resume);
}

void gev__task_resume_failed(gev__task *t) {
  /* No memory to make room on the shared stack: nothing was switched, and
   * the wake stands. Try again on the next pass. */
  gev__log(GEV_LOG_WARNING, "gev: cannot resume %s yet: %s",
           gev_coro_name(t->coro), strerror(errno));
  gev__run_soon(t->hub, &t->resume);
}

static const char *task_name(const gev__task *t) {
  return t->greenlet ? gev_greenlet_name(t->greenlet) : gev_coro_name(t->coro);
}

/* The park of t ended without the hub's resume, as its switch to the hub
 * returned rc (errno set when rc < 0) with value got. Either an error was
 * thrown in (gev_coro_throw; gev_coro_free's kill): a wake with that
 * error, GEV_EKILL making the cancellation sticky as a greenlet kill does.
 * Or something switched in directly: gevent's "Invalid switch", logged and
 * reported as EINTR. A wake delivered before either decides the call
 * instead, so that nothing a waker handed over (a semaphore unit, a queue
 * item) is lost; its queued resume is then stale. Returns -1 with errno
 * for the call, or 0 when the earlier wake stands. */
__attribute__((noinline, cold)) static int
park_interrupted(gev__task *t, int rc, const char *what) {
  int err = rc < 0 ? errno : EINTR;
  if (rc == 0)
    gev__log(GEV_LOG_ERROR, "gev: invalid switch into %s parked in %s",
             task_name(t), what);
  else if (err == GEV_EKILL && rc != GEV__SWITCH_FAILED)
    t->killed = 1;
  if (t->woken && rc != GEV__SWITCH_FAILED)
    return 0;
  waitq_unlink(t);
  errno = err;
  return -1;
}

/* Leaves the parking coroutine: for the hub, or for whatever the hub would
 * switch to next (gev__hub_take_switch). The usual case inline: the head
 * of the queue is a due resume of a coroutine ready to be switched to.
 * Returns as gev__coro_switch_to. */
static inline int switch_away(gev__hub *h, void **got) {
  gev_coro *to;
  void *v;
  gev__cb *cb = h->head;
  if (__builtin_expect(h->draining && cb != NULL, 1)) {
    gev__task *t = (gev__task *)cb;
    if (cb->take == gev__task_take && !h->pass_over && !t->orphan &&
        gev__task_resume_due(t) && gev__coro_ready(t->coro) && !h->stopping &&
        !h->destroying) {
      dequeue(h);
      pass_count(h);
      prefetch_next(h);
      return gev__coro_switch_to(t->coro, GEV__RESUME_TOKEN, got);
    }
    if (gev__hub_take_switch(h, &to, &v))
      return gev__coro_switch_to(to, v, got);
  }
  return gev__coro_switch_to(h->coro, NULL, got);
}

/* Inlined: it is the heart of every blocking call. */
static inline __attribute__((always_inline)) int
park_current(gev__hub *h, gev__task *t, const char *what, void **value) {
  void *got = NULL;
  int rc;
  t->what = what;
  t->parked = 1;
  t->parked_at = h->turn_time;
  h->nparked++;
  rc = switch_away(h, &got);
  h->nparked--;
  t->parked = 0;
  disarm_deadline(h, t);
  if (__builtin_expect(rc != 0 || got != GEV__RESUME_TOKEN || !t->woken, 0) &&
      park_interrupted(t, rc, what) < 0) {
    t->what = NULL;
    return -1;
  }
  t->what = NULL;
  if (t->wake_err) {
    errno = t->wake_err;
    return -1;
  }
  if (value)
    *value = t->wake_value;
  return 0;
}

/* Parks t, which gev__blocking_task() has vetted. */
static inline __attribute__((always_inline)) int
park_task(gev__task *t, double timeout, const char *what, void **value) {
  park_begin(t);
  if (arm_deadline(t->hub, t, timeout) < 0)
    return -1;
  return park_current(t->hub, t, what, value);
}

int gev__park_task(gev__task *t, double timeout, const char *what,
                   void **value) {
  if (gev__bad_timeout(timeout) || task_may_block(t) < 0)
    return -1;
  if (timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  return park_task(t, timeout, what, value);
}

/* gev_hub_destroy waits for the greenlets it killed to return. One that
 * is still making blocking calls (which all fail with ECANCELED) when the
 * grace has passed ignores its kill: it is abandoned here, inside the
 * call, parked for good. Its coroutine and stack are leaked on purpose:
 * it cannot be unwound, and its frames may hold addresses the program
 * still uses, so the memory is not reused. */
__attribute__((noinline, cold)) static void abandon_if_overdue(gev__hub *h,
                                                               gev__task *t) {
  if (!t->greenlet || gev_monotonic() < h->destroy_grace_end)
    return;
  gev__greenlet_abandon(t->greenlet);
  park_begin(t);
  park_current(h, t, "abandoned", NULL);
  gev__die("an abandoned greenlet was resumed");
}

int gev__park(double timeout, const char *what, void **value) {
  gev__task *t;
  if (gev__bad_timeout(timeout) || !(t = blocking_task()))
    return -1;
  if (timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  return park_task(t, timeout, what, value);
}

/* Yields behind the callbacks already queued (gev_sleep(0)). */
int gev__yield(void) {
  gev__task *t = blocking_task();
  if (!t)
    return -1;
  park_begin(t);
  t->woken = 1;
  t->armed_scope = NULL;
  queue_resume(t);
  return park_current(t->hub, t, "sleep(0)", NULL);
}

static void waitq_unlink(gev__task *t) {
  gev__waitq *q = t->wq;
  if (!q)
    return;
  if (t->wq_prev)
    t->wq_prev->wq_next = t->wq_next;
  else
    q->head = t->wq_next;
  if (t->wq_next)
    t->wq_next->wq_prev = t->wq_prev;
  else
    q->tail = t->wq_prev;
  q->len--;
  t->wq = NULL;
  t->wq_prev = t->wq_next = NULL;
}

int gev__wake(gev__task *t, void *value, int err) {
  if (!t || !t->parked || t->woken)
    return 0;
  t->woken = 1;
  t->wake_value = value;
  t->wake_err = err;
  waitq_unlink(t);
  queue_resume(t);
  return 1;
}

static inline void waitq_append(gev__waitq *q, gev__task *t) {
  t->wq = q;
  t->wq_next = NULL;
  t->wq_prev = q->tail;
  if (q->tail)
    q->tail->wq_next = t;
  else
    q->head = t;
  q->tail = t;
  q->len++;
}

void gev__waitq_append(gev__waitq *q, gev__task *t) { waitq_append(q, t); }

int gev__waitq_wait(gev__waitq *q, double timeout, const char *what,
                    void **value) {
  gev__task *t;
  int rc;
  if (gev__bad_timeout(timeout) || !(t = blocking_task()))
    return -1;
  if (timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  waitq_append(q, t);
  rc = park_task(t, timeout, what, value);
  waitq_unlink(t);
  return rc;
}

int gev__waitq_wake_one(gev__waitq *q, void *value, int err) {
  gev__task *t = q->head;
  if (!t)
    return 0;
  return gev__wake(t, value, err);
}

size_t gev__waitq_wake_all(gev__waitq *q, void *value, int err) {
  size_t n = 0;
  while (q->head)
    n += (size_t)gev__wake(q->head, value, err);
  return n;
}

gev__task *gev__waitq_first(const gev__waitq *q) { return q->head; }

void gev__watcher_started(void) {
  gev__hub *h = hub_peek();
  if (h)
    h->nwatchers++;
}

void gev__watcher_stopped(void) {
  gev__hub *h = hub_peek();
  if (h)
    h->nwatchers--;
}

/* ---- The hub coroutine ------------------------------------------------- */

/* The loop ran out of work: tell the main coroutine if it waits. */
static void loop_exhausted(gev__hub *h) {
  gev__task *m = &h->main_task;
  if (m->parked && !m->woken) {
    /* Another thread may still end the wait (xthread.h). */
    if (!h->running_until_idle && gev__xhub_exhausted(h))
      return;
    gev__wake(m, NULL, h->running_until_idle ? 0 : EDEADLK);
    return;
  }
  if (!m->parked) {
    /* Nobody to wake: go back to the main coroutine with the error. */
    gev_coro_throw(h->thr->main, EDEADLK, NULL);
  }
}

/* The hub coroutine's body. Whoever first parks starts it, with no useful
 * argument: the hub is found through the thread. */
static void *hub_main(void *arg) {
  gev__hub *h = hub_peek();
  int active;
  (void)arg;
  while (!h->stopping) {
    /* The blocking monitor (monitor.c) watches this counter from its
     * thread: a turn that does not come round in time is a blocked hub.
     * The time is the hub's notion of "now" for wait times. */
    __atomic_store_n(&h->turns, h->turns + 1, __ATOMIC_RELAXED);
    h->turn_time = gev_monotonic();
    drain(h);
    if (h->stopping)
      break;
    if (h->ncallbacks > 0) {
      ev_run(h->loop, EVRUN_NOWAIT); /* the pass ran out of time */
      continue;
    }
    __atomic_store_n(&h->in_poll, 1, __ATOMIC_RELAXED);
    active = ev_run(h->loop, 0);
    __atomic_store_n(&h->in_poll, 0, __ATOMIC_RELAXED);
    /* ev_run returns the number of active watchers: with some left it was
     * broken out of (gev__queue, or other libev code's ev_break), and the
     * work is not over. */
    if (!h->stopping && h->ncallbacks == 0 && active == 0 &&
        ev_pending_count(h->loop) == 0)
      loop_exhausted(h);
  }
  return NULL;
}

static int is_main_thread(void) {
  return getpid() == (pid_t)syscall(SYS_gettid);
}

/* Frees the hub's memory; its loop, with the watchers in it, is gone. */
static void hub_free(gev__hub *h) {
  gev__registry_remove(h);
  gev__deadlines_free(h);
  free(h);
}

static unsigned long long next_hub_id = 1;

static gev__hub *hub_new(gev__hthread *ht) {
  gev__thread_head *thr = gev__thread_get();
  gev_coro_opts o = {.stack_mode = GEV_STACK_DEDICATED, .name = "hub"};
  gev__hub *h;
  if (!thr || !(h = calloc(1, sizeof *h)))
    return NULL;
  h->thr = thr;
  h->ht = ht;
  h->id = __atomic_fetch_add(&next_hub_id, 1, __ATOMIC_RELAXED);
  h->is_default = is_main_thread();
  h->loop = h->is_default ? gev__default_loop_open() : ev_loop_new(0);
  if (!h->loop)
    goto out_free;
  h->coro = gev__coro_new_owned(hub_main, thr->main, &o);
  if (!h->coro)
    goto out_loop;
  /* Map the hub's stack now: every park switches to the hub, and a park
   * must never find it unreachable. */
  if (gev__coro_prepare(h->coro) < 0 || gev__deadlines_init(h) < 0)
    goto out_coro;
  gev__task_init(&h->main_task, h, thr->main);
  if (gev__xhub_open(h) < 0)
    goto out_task;
  h->turn_time = gev_monotonic();
  gev__registry_add(h); /* visible to other threads from here on */
  return h;
out_task:
  gev__task_fini(&h->main_task);
out_coro:
  gev__coro_free_owned(h->coro);
out_loop:
  if (!h->is_default)
    ev_loop_destroy(h->loop);
out_free:
  free(h);
  errno = ENOMEM;
  return NULL;
}

/* ---- The thread's hub layer block -------------------------------------- */

static void hub_thread_exit(gev__thread_head *head);

static const gev__coro_hooks hub_hooks = {
    .coro_free = task_coro_freed,
    .thread_exit = hub_thread_exit,
};

static gev__hthread *hthread_get(void) {
  gev__hthread *ht = gev__hthread_peek();
  gev__thread_head *head;
  if (ht)
    return ht;
  if (!(head = gev__thread_get()) || !(ht = calloc(1, sizeof *ht)))
    return NULL;
  head->upper = ht;
  gev__coro_set_hooks(&hub_hooks);
  return ht;
}

/* The thread exits: the coroutine layer's destructor calls this first, on
 * the main coroutine, with everything still in place. The hub goes as
 * gev_hub_destroy() takes it down, then the slots and the block. A hub
 * that cannot go (a plain coroutine parked in it) is left, with all it
 * holds, rather than freed under that coroutine. */
static void hub_thread_exit(gev__thread_head *head) {
  gev__hthread *ht = head->upper;
  if (!ht)
    return;
  if (ht->head.hub && gev_hub_destroy() < 0) {
    gev__log(GEV_LOG_WARNING,
             "gev: a thread exits with a hub it cannot tear down (%s); the "
             "hub is left as it is",
             strerror(errno));
    gev__registry_remove(ht->head.hub); /* its thread is gone */
    return;
  }
  for (int i = 0; i < GEV__NSLOTS; i++) {
    if (ht->slot[i] && ht->slot_release[i])
      ht->slot_release[i](ht->slot[i]);
  }
  gev__greenlet_free_cache(ht);
  head->upper = NULL;
  free(ht);
}

void **gev__thread_slot(int which) {
  gev__hthread *ht = hthread_get();
  return ht ? &ht->slot[which] : NULL;
}

gev__hub_state **gev__thread_hub_state(int which) {
  gev__hthread *ht = hthread_get();
  return ht ? &ht->states[which] : NULL;
}

gev__hub_state *gev__thread_hub_state_peek(int which) {
  gev__hthread *ht = gev__hthread_peek();
  return ht ? ht->states[which] : NULL;
}

int gev__thread_slot_set(int which, void *value) {
  void **slot = gev__thread_slot(which);
  if (!slot)
    return -1;
  *slot = value;
  return 0;
}

void *gev__thread_slot_peek(int which) {
  gev__hthread *ht = gev__hthread_peek();
  return ht ? ht->slot[which] : NULL;
}

void gev__thread_slot_on_exit(int which, void (*release)(void *)) {
  gev__hthread *ht = hthread_get();
  if (ht)
    ht->slot_release[which] = release;
}

gev__hub *gev__hub_create(void) {
  gev__hthread *ht = hthread_get();
  gev__hub *h;
  if (!ht || !(h = hub_new(ht)))
    return NULL;
  hthread_set_hub(ht, h);
  gev__monitor_hub_created();
  return h;
}

unsigned long long gev__hub_id(const gev__hub *h) { return h ? h->id : 0; }

struct ev_loop *gev__hub_evloop(gev__hub *h) {
  return h->loop;
}

GEV_EXTERN struct ev_loop *gev_hub_loop(void) {
  gev__hub *h = gev__hub_get();
  return h ? h->loop : NULL;
}

GEV_EXTERN gev_coro *gev_hub_coro(void) {
  gev__hub *h = gev__hub_get();
  return h ? h->coro : NULL;
}

GEV_EXTERN int gev_in_hub(void) {
  gev__hub *h = hub_peek();
  return h && in_hub(h);
}

GEV_EXTERN int gev_hub_exists(void) { return hub_peek() != NULL; }

GEV_EXTERN int gev_run(void) {
  gev__hub *h = gev__hub_get();
  gev__task *t;
  int rc;
  if (!h)
    return -1;
  if (in_hub(h)) {
    errno = EPERM;
    return -1;
  }
  t = gev__task_current();
  if (!t)
    return -1;
  if (t->greenlet) {
    errno = EDEADLK;
    return -1;
  }
  h->running_until_idle++;
  rc = gev__park(-1, "run", NULL);
  h->running_until_idle--;
  return rc;
}

/* ---- Teardown ---------------------------------------------------------- */

/* libev's default loop lives in static memory, and its count of active,
 * referenced watchers survives ev_loop_destroy(): watchers left active
 * (by the program before gev_hub_destroy, or by the parent before a fork)
 * would keep the next default loop from ever running out of work (gev_run
 * and gev_hub_destroy would hang). libev 4.33 has no getter
 * for the count, but ev_run returns it: re-create the default loop now,
 * run one non-blocking iteration to read it, and bring it back to zero.
 * The next hub picks this fresh loop up through ev_default_loop(). */
static void reset_default_loop(void) {
  struct ev_loop *loop = gev__default_loop_open();
  int n;
  if (!loop)
    return; /* LCOV_EXCL_LINE: the next hub reports the failure */
  n = ev_run(loop, EVRUN_NOWAIT);
  for (; n > 0; n--)
    ev_unref(loop);
  for (; n < 0; n++)
    ev_ref(loop);
}

GEV_EXTERN int gev_hub_destroy(void) {
  gev__hub *h = hub_peek();
  gev__hthread *ht;
  if (!h)
    return 0;
  if (h->thr->current != h->thr->main) {
    errno = EPERM;
    return -1;
  }
  if (plain_task_parked(h)) {
    errno = EBUSY; /* it would wake into a freed hub */
    return -1;
  }
  /* Kill what is alive and let it unwind; the loop then runs until idle
   * (or until nothing but foreign watchers remain). A greenlet that goes
   * on past the grace is abandoned (abandon_if_overdue). */
  h->destroying = 1;
  h->destroy_grace_end = gev_monotonic() + GEV_HUB_DESTROY_GRACE;
  gev__xhub_close(h); /* other threads' posts fail from here on */
  gev__greenlet_kill_all(h);
  while (h->nrunning > 0 || h->ncallbacks > 0 || gev__xhub_pending(h)) {
    size_t before = h->nrunning + h->ncallbacks;
    h->running_until_idle++;
    int rc = gev__park(-1, "destroy", NULL);
    h->running_until_idle--;
    if (rc < 0 || h->nrunning + h->ncallbacks >= before)
      break; /* no progress: what is left cannot be unwound */
  }
  gev__xhub_finish(h);
  gev__greenlet_detach_all(h);
  h->stopping = 1;
  gev__coro_free_owned(h->coro);
  detach_plain_tasks(h);
  gev__task_fini(&h->main_task);
  gev__loop_destroy(h->loop);
  if (h->is_default) {
    reset_default_loop();
    gev__loop_destroy(ev_default_loop(0)); /* leave no descriptor behind */
  }
  ht = h->ht;
  hthread_set_hub(ht, NULL);
  hub_free(h);
  gev__greenlet_free_cache(ht);
  return 0;
}

/* ---- After fork: forgetting the parent's hub --------------------------- */

/*
 * Fork support (the hub's discard hook, see hub/hooks.h). A forked
 * child holds a copy of the parent's hub: its loop (sharing the parent's
 * epoll and eventfd descriptors), its greenlets and their stacks. The child
 * must not run any of them, so they are released here as if they had died
 * without unwinding: stacks are returned to the cache or dropped, control
 * blocks freed, the loop destroyed (which runs its ev_cleanup watchers, the
 * resolver's among them, while the hub is still intact). Handles the
 * parent's code held (greenlets, sockets, events) dangle afterwards.
 */

/* Marks c dead and releases its stack and control block without switching
 * to it. */
static void forget_coro(gev_coro *c, int owned) {
  if (gev_coro_started(c) && !gev_coro_dead(c))
    gev__coro_discard(c);
  gev__coro_set_upper(c, NULL);
  if (owned)
    gev__coro_free_owned(c);
  else
    gev_coro_free(c);
}

static void forget_greenlet(gev_greenlet *g) {
  gev__task_fini(&g->task);
  if (g->coro)
    forget_coro(g->coro, 0);
  gev__greenlet_free_links(g);
  free(g->errmsg);
  free(g->name);
  gev__greenlet_release_memory(g);
}

int gev__hub_forget_after_fork(void) {
  gev__hub *h = hub_peek();
  gev_greenlet *g;
  if (!h)
    return 0;
  if (h->thr->current != h->thr->main) {
    errno = EPERM;
    return -1;
  }
  h->stopping = 1;
  gev__xhub_forget(h);
  gev__loop_destroy(h->loop);
  if (h->is_default)
    reset_default_loop();
  while ((g = h->greenlets)) {
    h->greenlets = g->next;
    forget_greenlet(g);
  }
  forget_coro(h->coro, 1);
  detach_plain_tasks(h);
  gev__task_fini(&h->main_task);
  hthread_set_hub(h->ht, NULL);
  hub_free(h);
  return 0;
}
