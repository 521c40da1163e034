/*
 * Signals through the hub: handlers that run as greenlets, and waiting for
 * a signal with a timeout. See gev/signal.h for the contract.
 *
 * Everything sits on ev_signal watchers, so the only code that runs in the
 * asynchronous signal context is libev's own handler, which records the
 * arrival and wakes the loop. Our watcher callbacks then run in the hub:
 * a handler's callback spawns a greenlet, a waiter's callback wakes the
 * parked task.
 *
 * Bookkeeping, per thread (struct sig_state, on the heap):
 *   - every live handler handle, so gev_hub_destroy() (through the
 *     state's exit hook, hub/hooks.h) and gev_fork_discard() can stop
 *     them: a watcher left active in a destroyed loop would stay on
 *     libev's per-signal list and be called into freed memory later;
 *   - every active waiter, for gev_fork_discard().
 * Per process, a small table says which loop watches each signal, since
 * libev lets a signal be attached to one loop only (it asserts otherwise).
 *
 * Watchers live in heap objects (the shared-stack rule), never on the
 * caller's stack.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

#include <ev.h>

#include "gev/signal.h"
#include "hub/child.h"
#include "hub/hooks.h"
#include "hub/hub_internal.h"
#include "proc/signal_internal.h"

#ifndef NSIG
#define NSIG 65 /* LCOV_EXCL_LINE: every libc we build on defines it */
#endif

struct sig_state;

struct gev_signal {
  ev_signal watcher;       /* private: unref'd, active while attached */
  struct sig_state *state; /* ro: NULL once its hub is gone */
  gev_signal_fn fn;        /* ro */
  void *arg;               /* ro */
  gev_signal *prev, *next; /* private: on state->handlers */
  unsigned char owned;     /* ro: gev's own, freed with its hub */
};

/* A gev_signal_wait in progress: one watcher per awaited signal. */
typedef struct sig_wait {
  gev__task *task;              /* ro: the parked caller */
  struct sig_state *state;      /* ro */
  uint64_t fired;               /* rw: bit signum-1 of each arrival */
  struct sig_wait *prev, *next; /* private: on state->waits */
  size_t n;                     /* ro */
  ev_signal w[];                /* private: active while parked */
} sig_wait;

typedef struct sig_state {
  gev__hub_state base;  /* first: the hub's loop, and the exit hook */
  gev_signal *handlers; /* private: live handler handles */
  sig_wait *waits;      /* private: active waits */
} sig_state;

/* The thread's sig_state is in its slot of the hub layer's thread block
 * (park.h): libgev's only thread-local variable is the coroutine layer's
 * root. */
static gev__hub_state *state_peek(void) {
  return gev__thread_hub_state_peek(GEV__STATE_SIGNALS);
}

/* ---- Which loop owns each signal (process-wide) -------------------------- */

static pthread_mutex_t owners_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ev_loop *owner_loop[NSIG];
static unsigned owner_count[NSIG];

static int valid_signum(int signum) {
  return signum > 0 && signum < NSIG && signum != SIGKILL && signum != SIGSTOP;
}

/* Claims signum for loop: EBUSY if another loop watches it. */
static int owner_claim(struct ev_loop *loop, int signum) {
  int rc = 0;
  pthread_mutex_lock(&owners_lock);
  if (owner_loop[signum] && owner_loop[signum] != loop) {
    errno = EBUSY;
    rc = -1;
  } else {
    owner_loop[signum] = loop;
    owner_count[signum]++;
  }
  pthread_mutex_unlock(&owners_lock);
  return rc;
}

static void owner_release(int signum) {
  pthread_mutex_lock(&owners_lock);
  if (owner_count[signum] > 0 && --owner_count[signum] == 0)
    owner_loop[signum] = NULL;
  pthread_mutex_unlock(&owners_lock);
}

/* SIGCHLD belongs to the default loop, whose reaper watches it from the
 * start (libev attaches it there for good). libev shares one handler per
 * signal between the reaper and every other SIGCHLD watcher, and gev
 * keeps the reaper's handler out until something asks for it: a SIGCHLD
 * watcher holds the reaper while it is active. */
static int sigchld_claim(sig_state *st) {
  if (!ev_is_default_loop(st->base.loop)) {
    errno = EBUSY;
    return -1;
  }
  return gev__reaper_hold(st->base.loop);
}

/* Starts w on the state's loop, claiming its signal first. */
static int watcher_start(sig_state *st, ev_signal *w) {
  if (w->signum == SIGCHLD && sigchld_claim(st) < 0)
    return -1;
  if (owner_claim(st->base.loop, w->signum) < 0) {
    if (w->signum == SIGCHLD)
      gev__reaper_release();
    return -1;
  }
  ev_signal_start(st->base.loop, w);
  gev__watcher_started();
  return 0;
}

static void watcher_stop(sig_state *st, ev_signal *w) {
  if (!ev_is_active(w))
    return;
  ev_signal_stop(st->base.loop, w);
  gev__watcher_stopped();
  owner_release(w->signum);
  if (w->signum == SIGCHLD)
    gev__reaper_release();
}

/* ---- Per-thread state ---------------------------------------------------- */

static void handler_detach(sig_state *st, gev_signal *s);

/* The hub's loop is being destroyed: stop every handler (their handles
 * stay valid, detached, until cancelled). No wait can be active then: the
 * hub has unwound every greenlet and the main coroutine is the destroyer. */
static void state_gone(gev__hub_state *base) {
  sig_state *st = (sig_state *)base;
  while (st->handlers) {
    gev_signal *s = st->handlers;
    handler_detach(st, s);
    if (s->owned)
      free(s); /* nobody else holds it */
  }
}

static void forget_all(void);

static const gev__fork_hooks signal_fork_hooks = {.layer = GEV__LAYER_PROC,
                                                  .discard = forget_all};
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void register_hooks(void) { gev__at_fork(&signal_fork_hooks); }

/* The calling thread's state for its current hub (created if needed), or
 * NULL with errno ENOMEM. */
static sig_state *state_get(void) {
  gev__hub_state **slot = gev__thread_hub_state(GEV__STATE_SIGNALS);
  pthread_once(&hooks_once, register_hooks);
  if (!slot)
    return NULL;
  return (sig_state *)gev__hub_state_get(slot, sizeof(sig_state), state_gone);
}

/* ---- Handlers ------------------------------------------------------------ */

typedef struct handler_call {
  gev_signal_fn fn;
  void *arg;
  int signum;
} handler_call;

static void *handler_main(void *arg) {
  handler_call call = *(handler_call *)arg;
  free(arg);
  call.fn(call.signum, call.arg);
  return NULL;
}

/* In the hub: the signal arrived; run the handler in a new greenlet. */
static void handler_cb(struct ev_loop *loop, ev_signal *w, int revents) {
  gev_signal *s = w->data;
  handler_call *call = malloc(sizeof *call);
  (void)loop, (void)revents;
  if (!call)
    goto out_report;
  call->fn = s->fn;
  call->arg = s->arg;
  call->signum = w->signum;
  if (gev_spawn_raw(handler_main, call) < 0)
    goto out_free;
  return;
out_free:
  free(call);
out_report: /* LCOV_EXCL_LINE: out of memory */
  gev__log(GEV_LOG_ERROR, "gev: out of memory running the handler of signal %d",
           w->signum);
}

static void handler_link(sig_state *st, gev_signal *s) {
  s->state = st;
  s->prev = NULL;
  s->next = st->handlers;
  if (st->handlers)
    st->handlers->prev = s;
  st->handlers = s;
}

/* Stops s and takes it off its state's list; s stays allocated. */
static void handler_detach(sig_state *st, gev_signal *s) {
  if (ev_is_active(&s->watcher))
    ev_ref(st->base.loop); /* undo the unref taken when it started */
  watcher_stop(st, &s->watcher);
  if (s->prev)
    s->prev->next = s->next;
  else
    st->handlers = s->next;
  if (s->next)
    s->next->prev = s->prev;
  s->prev = s->next = NULL;
  s->state = NULL;
}

GEV_EXTERN gev_signal *gev_signal_handler(int signum, gev_signal_fn fn,
                                          void *arg) {
  sig_state *st;
  gev_signal *s;
  if (!fn || !valid_signum(signum)) {
    errno = EINVAL;
    return NULL;
  }
  if (!(st = state_get()) || !(s = calloc(1, sizeof *s)))
    return NULL;
  ev_signal_init(&s->watcher, handler_cb, signum);
  s->watcher.data = s;
  s->fn = fn;
  s->arg = arg;
  if (watcher_start(st, &s->watcher) < 0)
    goto out_free;
  ev_unref(st->base.loop); /* a handler alone does not keep the hub running */
  handler_link(st, s);
  return s;
out_free:
  free(s);
  return NULL;
}

int gev__signal_handler_owned(int signum, gev_signal_fn fn) {
  sig_state *st = (sig_state *)state_peek();
  gev_signal *s;
  for (s = st ? st->handlers : NULL; s; s = s->next)
    if (s->owned && s->fn == fn && s->watcher.signum == signum)
      return 0;
  if (!(s = gev_signal_handler(signum, fn, NULL)))
    return -1;
  s->owned = 1;
  return 0;
}

GEV_EXTERN int gev_signal_cancel(gev_signal *s) {
  if (!s)
    return 0;
  if (s->state) {
    if (&s->state->base != state_peek()) {
      errno = EXDEV;
      return -1;
    }
    handler_detach(s->state, s);
  }
  free(s);
  return 0;
}

GEV_EXTERN int gev_signal_signum(const gev_signal *s) {
  if (!s) {
    errno = EINVAL;
    return -1;
  }
  return s->watcher.signum;
}

/* ---- Waiting ------------------------------------------------------------- */

/* In the hub: one of the awaited signals arrived. The first arrival wakes
 * the task; others of the same turn only add their bit. */
static void wait_cb(struct ev_loop *loop, ev_signal *w, int revents) {
  sig_wait *sw = w->data;
  (void)loop, (void)revents;
  sw->fired |= UINT64_C(1) << (w->signum - 1);
  gev__wake(sw->task, NULL, 0);
}

static void wait_stop_all(sig_wait *sw) {
  for (size_t i = 0; i < sw->n; i++)
    watcher_stop(sw->state, &sw->w[i]);
}

static void wait_link(sig_state *st, sig_wait *sw) {
  sw->prev = NULL;
  sw->next = st->waits;
  if (st->waits)
    st->waits->prev = sw;
  st->waits = sw;
}

static void wait_unlink(sig_state *st, sig_wait *sw) {
  if (sw->prev)
    sw->prev->next = sw->next;
  else
    st->waits = sw->next;
  if (sw->next)
    sw->next->prev = sw->prev;
}

/* Creates the wait's watchers and starts them; NULL with errno. */
static sig_wait *wait_new(sig_state *st, const int *signums, size_t n) {
  sig_wait *sw = calloc(1, sizeof *sw + n * sizeof sw->w[0]);
  if (!sw)
    return NULL;
  sw->task = gev__task_current();
  sw->state = st;
  for (size_t i = 0; i < n; i++) {
    ev_signal_init(&sw->w[i], wait_cb, signums[i]);
    sw->w[i].data = sw;
    if (watcher_start(st, &sw->w[i]) < 0)
      goto out_stop;
    sw->n = i + 1;
  }
  wait_link(st, sw);
  return sw;
out_stop:
  wait_stop_all(sw);
  free(sw);
  return NULL;
}

static int lowest_signal(uint64_t mask) { return __builtin_ctzll(mask) + 1; }

static int check_signums(const int *signums, size_t n) {
  if (!signums || n == 0 || n > 64) {
    errno = EINVAL;
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    if (!valid_signum(signums[i])) {
      errno = EINVAL;
      return -1;
    }
  }
  return 0;
}

GEV_EXTERN int gev_signal_wait_any(const int *signums, size_t n,
                                   double timeout) {
  sig_state *st;
  sig_wait *sw;
  int rc;
  if (check_signums(signums, n) < 0 || gev__may_block() < 0)
    return -1;
  if (!(st = state_get()) || !(sw = wait_new(st, signums, n)))
    return -1;
  rc = gev__park(timeout, "signal", NULL);
  wait_stop_all(sw);
  wait_unlink(st, sw);
  if (sw->fired) /* a signal that came with a timeout or kill still wins */
    rc = lowest_signal(sw->fired);
  free(sw);
  return rc;
}

GEV_EXTERN int gev_signal_wait(int signum, double timeout) {
  return gev_signal_wait_any(&signum, 1, timeout);
}

/* ---- After fork ---------------------------------------------------------- */

/* The signal layer's discard hook (hub/hooks.h): drops the parent's
 * signal state in a forked child without running anything. Stops every
 * watcher (so libev's per-signal lists hold nothing that points into the
 * old hub) and frees handles and waits. The parent's handle pointers are
 * dangling in the child afterwards. */
static void forget_all(void) {
  sig_state *st = (sig_state *)state_peek();
  if (!st)
    return;
  while (st->handlers) {
    gev_signal *s = st->handlers;
    handler_detach(st, s);
    free(s);
  }
  while (st->waits) {
    sig_wait *sw = st->waits;
    wait_stop_all(sw);
    wait_unlink(st, sw);
    free(sw);
  }
  gev__hub_state_drop(&st->base);
}
