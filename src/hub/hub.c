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
 * When ev_run returns with nothing queued and nothing active, the loop is
 * exhausted: the main coroutine, if it waits, is woken successfully if it
 * is in gev_run, with EDEADLK ("would block forever") otherwise.
 *
 * The queue lives outside libev on purpose: a wake-up or spawn costs a
 * pointer append, with no watcher to start or stop, so a hand-off between
 * two greenlets never enters libev at all.
 *
 * A wake goes through the queue rather than switching at once so that the
 * waker keeps running (gevent's rule: only the hub switches into parked
 * greenlets) and wake-ups are served in order.
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

#define DRAIN_BUDGET 0.005 /* seconds per callback pass */

static __thread gev__hub *tls_hub;

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

/* Runs queued callbacks until the queue is empty or the pass has used its
 * time budget; the clock is read every 64 callbacks only. */
static void drain(gev__hub *h) {
  double start = 0;
  unsigned n = 0;
  gev__cb *cb;
  while (!h->stopping && (cb = dequeue(h))) {
    cb->run(cb);
    if ((++n & 63) == 0) {
      double now = gev_monotonic();
      if (start == 0)
        start = now;
      else if (now - start > DRAIN_BUDGET)
        break;
    }
  }
  if (h->destroying && h->nrunning == 0 && h->ncallbacks == 0)
    gev__wake(&h->main_task, NULL, 0);
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
  gev__hub_switch_out(t->hub, t->coro, NULL);
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

/* The deadline timer fired. Deadlines are points on gev_monotonic()'s
 * clock; libev's timer only approximates one (its own clock reads, the
 * poll's rounding), so a timer that fired early is re-armed for the rest
 * instead of waking the task: a wait never times out before its time. */
static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  gev__task *t = w->data;
  double left = t->deadline_at - gev_monotonic();
  (void)loop, (void)revents;
  t->hub->nwatchers--; /* a one-shot timer stops itself */
  if (left > 0) {
    gev__timer_start(t->hub, w, left);
    return;
  }
  t->scope_fired = t->armed_scope != NULL;
  if (t->armed_scope)
    t->armed_scope->expired = 1;
  gev__wake(t, NULL, ETIMEDOUT);
}

void gev__task_init(gev__task *t, gev__hub *h, gev_coro *c) {
  memset(t, 0, sizeof *t);
  t->resume.run = resume_task;
  t->hub = h;
  t->coro = c;
  ev_init(&t->deadline, deadline_cb);
  t->deadline.data = t;
  c->task = t;
}

void gev__task_fini(gev__task *t) {
  gev__scopes_drop(t);
  if (t->coro && t->coro->task == t)
    t->coro->task = NULL;
}

gev__task *gev__task_of(gev_coro *c) { return c->task; }

/* Tasks of plain coroutines (not greenlets, not main) are allocated on
 * first use and released with the coroutine. */
static void free_plain_task(gev_coro *c) {
  gev__task *t = c->task;
  if (t && !t->greenlet && t != &t->hub->main_task) {
    gev__task_fini(t);
    free(t);
  }
}

gev__task *gev__task_current(void) {
  gev__hub *h = gev__hub_get();
  gev_coro *c;
  gev__task *t;
  if (!h)
    return NULL;
  c = h->thr->current;
  if (c->task)
    return c->task;
  if (c == h->coro) {
    errno = EPERM;
    return NULL;
  }
  if (!(t = malloc(sizeof *t)))
    return NULL;
  gev__task_init(t, h, c);
  return t;
}

/* ---- Park and wake ----------------------------------------------------- */

/* Loop callbacks run on the hub's coroutine, so this covers them too. */
static int in_hub(gev__hub *h) { return h->thr->current == h->coro; }

/* The checks of a task that may change between two parks of one call: a
 * kill, an expired scope. 0 or -1 with errno. */
static int task_may_block(gev__task *t) {
  if (t->killed) {
    errno = ECANCELED;
    return -1;
  }
  if (t->scopes && gev__scopes_expired(t)) {
    errno = ETIMEDOUT;
    return -1;
  }
  return 0;
}

gev__task *gev__blocking_task(void) {
  gev__hub *h = gev__hub_get();
  gev__task *t;
  if (!h)
    return NULL;
  t = h->thr->current->task;
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

int gev__may_block(void) { return gev__blocking_task() ? 0 : -1; }

/* Arms the task's deadline timer: the earlier of the call's timeout,
 * counted from now, and its scopes' deadlines, all on gev_monotonic()'s
 * clock. A wait without either reads no clock at all. */
static void arm_deadline(gev__hub *h, gev__task *t, double timeout) {
  gev_timeout *scope = NULL;
  double now, at;
  t->armed_scope = NULL;
  t->scope_fired = 0;
  if (timeout < 0 && !t->scopes)
    return;
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
    return;
  t->deadline_at = at;
  gev__timer_start(h, &t->deadline, at - now);
}

static void disarm_deadline(gev__hub *h, gev__task *t) {
  if (ev_is_active(&t->deadline)) {
    ev_timer_stop(h->loop, &t->deadline);
    h->nwatchers--;
  }
}

int gev__hub_switch_out(gev__hub *h, gev_coro *to, void *value) {
  return gev_coro_switch(to, value, NULL);
}

static int park_current(gev__hub *h, gev__task *t, const char *what,
                        void **value) {
  t->what = what;
  t->parked = 1;
  h->nparked++;
  gev_coro_switch(h->coro, NULL, NULL);
  h->nparked--;
  t->parked = 0;
  t->what = NULL;
  disarm_deadline(h, t);
  if (t->wake_err) {
    errno = t->wake_err;
    return -1;
  }
  if (value)
    *value = t->wake_value;
  return 0;
}

/* Parks t, which gev__blocking_task() has vetted. */
static int park_task(gev__task *t, double timeout, const char *what,
                     void **value) {
  t->wake_value = NULL;
  t->wake_err = 0;
  t->woken = 0;
  arm_deadline(t->hub, t, timeout);
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

int gev__park(double timeout, const char *what, void **value) {
  gev__task *t;
  if (gev__bad_timeout(timeout) || !(t = gev__blocking_task()))
    return -1;
  if (timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  return park_task(t, timeout, what, value);
}

/* Yields behind the callbacks already queued (gev_sleep(0)). */
int gev__yield(void) {
  gev__task *t = gev__blocking_task();
  if (!t)
    return -1;
  t->wake_value = NULL;
  t->wake_err = 0;
  t->woken = 1;
  t->armed_scope = NULL;
  gev__run_soon(tls_hub, &t->resume);
  return park_current(tls_hub, t, "sleep(0)", NULL);
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
  gev__run_soon(t->hub, &t->resume);
  return 1;
}

int gev__waitq_wait(gev__waitq *q, double timeout, const char *what,
                    void **value) {
  gev__task *t;
  int rc;
  if (gev__bad_timeout(timeout) || !(t = gev__blocking_task()))
    return -1;
  if (timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  t->wq = q;
  t->wq_next = NULL;
  t->wq_prev = q->tail;
  if (q->tail)
    q->tail->wq_next = t;
  else
    q->head = t;
  q->tail = t;
  q->len++;
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
  if (tls_hub)
    tls_hub->nwatchers++;
}

void gev__watcher_stopped(void) {
  if (tls_hub)
    tls_hub->nwatchers--;
}

/* ---- The hub coroutine ------------------------------------------------- */

/* The loop ran out of work: tell the main coroutine if it waits. */
static void loop_exhausted(gev__hub *h) {
  gev__task *m = &h->main_task;
  if (m->parked && !m->woken) {
    gev__wake(m, NULL, h->running_until_idle ? 0 : EDEADLK);
    return;
  }
  if (!m->parked) {
    /* Nobody to wake: go back to the main coroutine with the error. */
    gev_coro_throw(&h->thr->main, EDEADLK, NULL);
  }
}

/* The hub coroutine's body. Whoever first parks starts it, with no useful
 * argument: the hub is found through the thread. */
static void *hub_main(void *arg) {
  gev__hub *h = tls_hub;
  (void)arg;
  while (!h->stopping) {
    drain(h);
    if (h->stopping)
      break;
    if (h->ncallbacks > 0) {
      ev_run(h->loop, EVRUN_NOWAIT); /* the pass ran out of time */
      continue;
    }
    h->in_poll = 1;
    ev_run(h->loop, 0);
    h->in_poll = 0;
    if (!h->stopping && h->ncallbacks == 0)
      loop_exhausted(h);
  }
  return NULL;
}

static int is_main_thread(void) {
  return getpid() == (pid_t)syscall(SYS_gettid);
}

static void hub_free(gev__hub *h) { free(h); }

static gev__hub *hub_new(void) {
  gev__cthread *thr = gev__cthread_get();
  gev_coro_opts o = {.stack_mode = GEV_STACK_DEDICATED, .name = "hub"};
  gev__hub *h;
  if (!thr || !(h = calloc(1, sizeof *h)))
    return NULL;
  h->thr = thr;
  h->is_default = is_main_thread();
  h->loop = h->is_default ? gev__default_loop_open() : ev_loop_new(0);
  if (!h->loop)
    goto out_free;
  h->coro = gev_coro_new(hub_main, &thr->main, &o);
  if (!h->coro)
    goto out_loop;
  gev__task_init(&h->main_task, h, &thr->main);
  gev__coro_free_hook = free_plain_task;
  thr->live--; /* the hub's own coroutine is not the user's to free */
  return h;
out_loop:
  if (!h->is_default)
    ev_loop_destroy(h->loop);
out_free:
  free(h);
  errno = ENOMEM;
  return NULL;
}

static pthread_key_t hub_key;
static pthread_once_t hub_key_once = PTHREAD_ONCE_INIT;

static void hub_thread_exit(void *p) {
  (void)p;
  gev_hub_destroy();
}

static void make_hub_key(void) {
  pthread_key_create(&hub_key, hub_thread_exit);
}

gev__hub *gev__hub_get(void) {
  gev__hub *h = tls_hub;
  if (__builtin_expect(h != NULL, 1))
    return h;
  if (!(h = hub_new()))
    return NULL;
  tls_hub = h;
  pthread_once(&hub_key_once, make_hub_key);
  pthread_setspecific(hub_key, h);
  return h;
}

gev__hub *gev__hub_peek(void) { return tls_hub; }

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
  gev__hub *h = tls_hub;
  return h && in_hub(h);
}

GEV_EXTERN int gev_hub_exists(void) { return tls_hub != NULL; }

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
  gev__hub *h = tls_hub;
  if (!h)
    return 0;
  if (h->thr->current != &h->thr->main) {
    errno = EPERM;
    return -1;
  }
  /* Kill what is alive and let it unwind; the loop then runs until idle
   * (or until nothing but foreign watchers remain). */
  h->destroying = 1;
  gev__greenlet_kill_all(h);
  while (h->nrunning > 0 || h->ncallbacks > 0) {
    size_t before = h->nrunning + h->ncallbacks;
    h->running_until_idle++;
    int rc = gev__park(-1, "destroy", NULL);
    h->running_until_idle--;
    if (rc < 0 || h->nrunning + h->ncallbacks >= before)
      break; /* no progress: what is left cannot be unwound */
  }
  gev__greenlet_detach_all(h);
  h->stopping = 1;
  h->thr->live++; /* balance the count taken off at creation */
  gev_coro_free(h->coro);
  gev__task_fini(&h->main_task);
  gev__loop_destroy(h->loop);
  if (h->is_default) {
    reset_default_loop();
    gev__loop_destroy(ev_default_loop(0)); /* leave no descriptor behind */
  }
  tls_hub = NULL;
  pthread_setspecific(hub_key, NULL);
  hub_free(h);
  gev__greenlet_free_cache();
  return 0;
}

/* ---- Introspection ----------------------------------------------------- */

GEV_EXTERN void gev_hub_get_stats(gev_hub_stats *out) {
  gev__hub *h = tls_hub;
  memset(out, 0, sizeof *out);
  if (!h)
    return;
  out->greenlets = h->ngreenlets;
  out->running = h->nrunning;
  out->parked = h->nparked;
  out->callbacks = h->ncallbacks;
  out->watchers = h->nwatchers;
}

static void verify_waitq(const gev__task *t) {
  const gev__waitq *q = t->wq;
  const gev__task *p;
  size_t n = 0;
  int found = 0;
  if (!q)
    return;
  if (!t->parked)
    gev__die("a task on a wait queue is not parked");
  for (p = q->head; p; p = p->wq_next, n++) {
    if (p == t)
      found = 1;
    if (p->wq != q)
      gev__die("a wait queue holds a task of another queue");
    if (p->wq_next && p->wq_next->wq_prev != p)
      gev__die("wait queue links are inconsistent");
  }
  if (!found || n != q->len)
    gev__die("a task's wait queue does not list it");
}

static void verify_task(const gev__task *t) {
  if (t->woken && t->parked && !t->resume.queued)
    gev__die("a woken task is not queued to resume");
  if (!t->parked && t->wq)
    gev__die("a running task sits on a wait queue");
  if (!t->parked && ev_is_active(&t->deadline))
    gev__die("a running task has an armed deadline");
  verify_waitq(t);
}

GEV_EXTERN int gev_hub_verify(void) {
  gev__hub *h = tls_hub;
  size_t n = 0, running = 0;
  gev__cb *cb;
  gev_greenlet *g;
  if (!h)
    return 0;
  for (cb = h->head; cb; cb = cb->next, n++) {
    if (!cb->queued || (!cb->next && cb != h->tail))
      gev__die("callback queue links are inconsistent");
  }
  if (n != h->ncallbacks)
    gev__die("callback queue length does not match its count");
  n = 0;
  for (g = h->greenlets; g; g = g->next, n++) {
    if (g->hub != h)
      gev__die("a greenlet is listed in another thread's hub");
    if (g->ready && g->coro && !gev_coro_dead(g->coro))
      gev__die("a finished greenlet's coroutine is alive");
    if (g->started && !g->ready)
      running++;
    verify_task(&g->task);
  }
  verify_task(&h->main_task);
  if (n != h->ngreenlets)
    gev__die("greenlet list length does not match its count");
  if (running != h->nrunning)
    gev__die("running greenlet count is wrong");
  return 0;
}

GEV_EXTERN void gev_print_run_info(FILE *out) {
  gev__hub *h = tls_hub;
  gev_greenlet *g;
  if (!h) {
    fprintf(out, "gev: no hub in this thread\n");
    return;
  }
  fprintf(out,
          "gev hub: %zu greenlets, %zu running, %zu parked, "
          "%zu callbacks queued\n",
          h->ngreenlets, h->nrunning, h->nparked, h->ncallbacks);
  if (h->main_task.parked)
    fprintf(out, "  main: parked on %s\n", h->main_task.what);
  for (g = h->greenlets; g; g = g->next)
    gev__greenlet_describe(out, g);
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
static void forget_coro(gev_coro *c) {
  if (c->started && !c->dead)
    gev__coro_discard(c);
  c->task = NULL;
  gev_coro_free(c);
}

static void forget_greenlet(gev_greenlet *g) {
  gev__task_fini(&g->task);
  if (g->coro)
    forget_coro(g->coro);
  gev__greenlet_free_links(g);
  free(g->errmsg);
  free(g->name);
  gev__greenlet_release_memory(g);
}

int gev__hub_forget_after_fork(void) {
  gev__hub *h = tls_hub;
  gev_greenlet *g;
  if (!h)
    return 0;
  if (h->thr->current != &h->thr->main) {
    errno = EPERM;
    return -1;
  }
  h->stopping = 1;
  gev__loop_destroy(h->loop);
  if (h->is_default)
    reset_default_loop();
  while ((g = h->greenlets)) {
    h->greenlets = g->next;
    forget_greenlet(g);
  }
  h->thr->live++; /* balance the count taken off at creation */
  forget_coro(h->coro);
  gev__task_fini(&h->main_task);
  tls_hub = NULL;
  pthread_setspecific(hub_key, NULL);
  hub_free(h);
  return 0;
}
