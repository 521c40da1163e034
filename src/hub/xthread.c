/*
 * Cross-thread wake-ups (see xthread.h): each hub's handle with its inbox
 * and ev_async watcher, the registry of live hubs, and the public calls of
 * gev/thread.h that reach a hub from another thread.
 *
 * Locks: each handle's lock guards its inbox and its closed flag; the
 * registry of hubs (registry.c) maps a hub's id to its handle. Neither
 * lock is ever taken while holding the other, and no message runs under
 * either. The ev_async_send
 * that wakes a hub is made outside the lock, counted in the handle's
 * senders, which the hub's teardown waits out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gev/thread.h"
#include "hub/hooks.h"
#include "hub/xthread.h"

/* Messages run per turn of the watcher before the loop gets its turn
 * (a flood from other threads must not starve I/O). */
#define INBOX_BATCH 256

struct gev_hub {
  pthread_mutex_t lock;
  unsigned refs;         /* atomic: the hub's own, and every holder's */
  unsigned long long id; /* ro: the hub's id */
  /* Under lock. */
  int closed;             /* posts fail (the hub is going or gone) */
  gev__xmsg *head, *tail; /* the inbox, FIFO */
  size_t queued;          /* messages in the inbox (also read unlocked,
                             with atomics, by gev__xhub_purge) */
  unsigned senders;       /* atomic: posters waking the loop right now */
  struct ev_loop *loop;   /* ro while open */
  ev_async async;         /* started by the hub; sent by posters */
  /* The hub's thread only. */
  gev__hub *hub;    /* NULL once finished */
  size_t expect;    /* answers expected from other threads */
  int expect_holds; /* the loop is held for them (ev_ref'd) */
  ev_timer recheck; /* see gev__xhub_exhausted */
};

/* ---- Handles ------------------------------------------------------------ */

gev_hub *gev__xhub_ref(gev_hub *x) {
  __atomic_fetch_add(&x->refs, 1, __ATOMIC_RELAXED);
  return x;
}

void gev__xhub_unref(gev_hub *x) {
  if (__atomic_fetch_sub(&x->refs, 1, __ATOMIC_ACQ_REL) != 1)
    return;
  pthread_mutex_destroy(&x->lock);
  free(x);
}

/* Through the registry of hubs (registry.c): a hub is listed from its
 * creation, its handle set before; the handle is cleared under the
 * registry's lock when the hub finishes, so what is found here may be
 * referenced. */
gev_hub *gev__xhub_find(unsigned long long hub_id) {
  gev_hub *x = NULL;
  gev__registry_lock();
  for (gev__hub *h = gev__registry_first(); h; h = h->reg_next)
    if (h->id == hub_id) {
      if (h->xhub)
        x = gev__xhub_ref(h->xhub);
      break;
    }
  gev__registry_unlock();
  return x;
}

/* ---- Fork -------------------------------------------------------------- */

/* gev_fork: the forking thread holds its own hub's inbox lock across
 * fork(2), so that the child's copy is consistent; the child makes it
 * fresh (no other thread exists there to hold it). The parent's other
 * hubs leave the child's registry (registry.c), so nothing there finds
 * them. */
static void fork_prepare(void) {
  gev__hub *h = gev__hub_peek();
  if (h)
    pthread_mutex_lock(&h->xhub->lock);
}

static void fork_parent(void) {
  gev__hub *h = gev__hub_peek();
  if (h)
    pthread_mutex_unlock(&h->xhub->lock);
}

static void fork_child(void) {
  gev__hub *h = gev__hub_peek();
  if (h)
    pthread_mutex_init(&h->xhub->lock, NULL);
}

static const gev__fork_hooks xthread_fork_hooks = {
    .layer = GEV__LAYER_HUB,
    .prepare = fork_prepare,
    .parent = fork_parent,
    .keep = fork_child,
    .discard = fork_child,
};

/* ---- The inbox --------------------------------------------------------- */

static gev__xmsg *inbox_pop(gev_hub *x) {
  gev__xmsg *m;
  pthread_mutex_lock(&x->lock);
  if ((m = x->head)) {
    x->head = m->next;
    if (!x->head)
      x->tail = NULL;
    __atomic_fetch_sub(&x->queued, 1, __ATOMIC_RELAXED);
  }
  pthread_mutex_unlock(&x->lock);
  return m;
}

int gev__xhub_post(gev_hub *x, gev__xmsg *m) {
  pthread_mutex_lock(&x->lock);
  if (x->closed) {
    pthread_mutex_unlock(&x->lock);
    errno = ESHUTDOWN;
    return -1;
  }
  m->next = NULL;
  if (x->tail)
    x->tail->next = m;
  else
    x->head = m;
  x->tail = m;
  /* The watcher runs until the inbox is empty: a send is needed only when
   * it was. It is made after the unlock (a hub woken on this CPU must not
   * find the lock held), counted in senders, which the hub's teardown
   * waits out before it stops the watcher: a post accepted before the
   * inbox closed never touches a destroyed loop. */
  struct ev_loop *loop = x->loop;
  int wake = __atomic_fetch_add(&x->queued, 1, __ATOMIC_RELAXED) == 0;
  if (wake)
    __atomic_fetch_add(&x->senders, 1, __ATOMIC_ACQ_REL);
  pthread_mutex_unlock(&x->lock);
  if (wake) {
    ev_async_send(loop, &x->async);
    __atomic_fetch_sub(&x->senders, 1, __ATOMIC_RELEASE);
  }
  return 0;
}

static void stop_recheck(gev_hub *x) {
  if (ev_is_active(&x->recheck)) {
    ev_timer_stop(x->loop, &x->recheck);
    x->hub->nwatchers--;
  }
}

/* The hub's side: runs what other threads posted. */
static void inbox_cb(struct ev_loop *loop, ev_async *w, int revents) {
  gev_hub *x = w->data;
  gev__xmsg *m;
  (void)revents;
  stop_recheck(x); /* something came: the wait was not forever */
  for (int n = 0; n < INBOX_BATCH; n++) {
    if (!(m = inbox_pop(x)))
      return;
    m->run(m, 0);
  }
  ev_async_send(loop, w); /* the rest on the next turn */
}

void gev__xhub_purge(gev__hub *h, const void *obj) {
  gev_hub *x = h->xhub;
  gev__xmsg *m, **pp, *found = NULL, **tail = &found;
  if (!x || !__atomic_load_n(&x->queued, __ATOMIC_RELAXED))
    return;
  pthread_mutex_lock(&x->lock);
  x->tail = NULL;
  for (pp = &x->head; (m = *pp);) {
    if (m->about != obj) {
      x->tail = m;
      pp = &m->next;
      continue;
    }
    *pp = m->next;
    __atomic_fetch_sub(&x->queued, 1, __ATOMIC_RELAXED);
    m->next = NULL;
    *tail = m;
    tail = &m->next;
  }
  pthread_mutex_unlock(&x->lock);
  while ((m = found)) {
    found = m->next;
    m->run(m, EIDRM);
  }
}

/* ---- Keeping the loop alive -------------------------------------------- */

/* The async watcher counts as the loop's work while h expects answers. */
static void hold_loop(gev_hub *x, int hold) {
  if (hold == x->expect_holds)
    return;
  x->expect_holds = hold;
  if (hold) {
    ev_ref(x->loop);
    x->hub->nwatchers++;
  } else {
    ev_unref(x->loop);
    x->hub->nwatchers--;
  }
}

void gev__hub_expect(gev__hub *h, int delta) {
  gev_hub *x = h->xhub;
  x->expect += delta;
  hold_loop(x, x->expect > 0 && !x->closed);
}

/* Non-zero when the process has threads other than the caller (from
 * /proc; when that cannot be read, other threads are assumed). */
static int other_threads(void) {
  char buf[1024], *p;
  /* pid (comm) state ... : num_threads is the 18th field after comm,
   * whose name may hold spaces and parentheses. */
  if (gev__read_proc("/proc/self/stat", buf, sizeof buf) <= 0 ||
      !(p = strrchr(buf, ')')))
    return 1;
  for (int field = 0; field < 18 && p; field++)
    p = strchr(p + 1, ' ');
  return !p || strtol(p + 1, NULL, 10) != 1;
}

static void recheck_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  gev_hub *x = w->data;
  (void)loop, (void)revents;
  x->hub->nwatchers--; /* one-shot; the loop runs dry again and asks */
}

/* A message posted by a thread that has exited since still counts: it is
 * in the inbox, and the next poll runs it. */
int gev__xhub_exhausted(gev__hub *h) {
  gev_hub *x = h->xhub;
  if (!x || x->closed ||
      (!other_threads() && !__atomic_load_n(&x->queued, __ATOMIC_RELAXED)))
    return 0;
  if (!ev_is_active(&x->recheck))
    gev__timer_start(h, &x->recheck, GEV__XHUB_RECHECK);
  return 1;
}

/* ---- Lifecycle --------------------------------------------------------- */

int gev__xhub_open(gev__hub *h) {
  gev_hub *x = calloc(1, sizeof *x);
  if (!x) {
    errno = ENOMEM;
    return -1;
  }
  pthread_mutex_init(&x->lock, NULL);
  x->refs = 1; /* the hub's */
  x->id = gev__hub_id(h);
  x->hub = h;
  x->loop = gev__hub_evloop(h);
  ev_async_init(&x->async, inbox_cb);
  x->async.data = x;
  ev_async_start(x->loop, &x->async);
  ev_unref(x->loop); /* not work by itself: see hold_loop */
  ev_init(&x->recheck, recheck_cb);
  x->recheck.data = x;
  h->xhub = x; /* before the hub is listed (hub.c) */
  gev__at_fork(&xthread_fork_hooks);
  return 0;
}

void gev__xhub_close(gev__hub *h) {
  gev_hub *x = h->xhub;
  pthread_mutex_lock(&x->lock);
  x->closed = 1;
  pthread_mutex_unlock(&x->lock);
  hold_loop(x, 0);
  stop_recheck(x);
  gev__proxies_close(h);
  if (gev__xhub_pending(h))
    ev_async_send(x->loop, &x->async);
}

int gev__xhub_pending(gev__hub *h) {
  gev_hub *x = h->xhub;
  size_t n;
  pthread_mutex_lock(&x->lock);
  n = x->queued;
  pthread_mutex_unlock(&x->lock);
  return n > 0;
}

int gev__xhub_closed(gev__hub *h) { return h->xhub->closed; }

void gev__xhub_finish(gev__hub *h) {
  gev_hub *x = h->xhub;
  gev__xmsg *m;
  /* Normally empty by now; whatever is left (the drain gave up) runs. */
  while ((m = inbox_pop(x)))
    m->run(m, 0);
  gev__proxies_finish(h);
  hold_loop(x, 0);
  stop_recheck(x);
  /* The inbox is closed: no new sender comes; let the last ones finish. */
  while (__atomic_load_n(&x->senders, __ATOMIC_ACQUIRE))
    sched_yield();
  ev_ref(x->loop); /* libev's rule before stopping an unref'd watcher */
  ev_async_stop(x->loop, &x->async);
  pthread_mutex_lock(&x->lock);
  x->loop = NULL;
  pthread_mutex_unlock(&x->lock);
  x->hub = NULL;
  gev__registry_lock(); /* gev__xhub_find reads it under this lock */
  h->xhub = NULL;
  gev__registry_unlock();
  gev__xhub_unref(x);
}

void gev__xhub_forget(gev__hub *h) {
  gev_hub *x = h->xhub;
  gev__xmsg *m;
  x->closed = 1;
  while ((m = x->head)) {
    x->head = m->next;
    m->run(m, ESHUTDOWN);
  }
  x->tail = NULL;
  __atomic_store_n(&x->queued, 0, __ATOMIC_RELAXED);
  x->loop = NULL;
  x->hub = NULL;
  h->xhub = NULL;
  gev__xhub_unref(x);
}

gev_hub *gev__xhub_of(gev__hub *h) { return h->xhub; }

gev_hub *gev__xhub_self(void) {
  gev__hub *h = gev__hub_get();
  return h ? h->xhub : NULL;
}

/* ---- gev's own threads ------------------------------------------------- */

typedef struct spawn_call {
  void *(*fn)(void *);
  void *arg;
} spawn_call;

static void *spawned(void *p) {
  spawn_call call = *(spawn_call *)p;
  sigset_t faults;
  free(p);
  sigemptyset(&faults);
  sigaddset(&faults, SIGSEGV);
  sigaddset(&faults, SIGBUS);
  sigaddset(&faults, SIGILL);
  sigaddset(&faults, SIGFPE);
  pthread_sigmask(SIG_UNBLOCK, &faults, NULL);
  return call.fn(call.arg);
}

int gev__thread_spawn(pthread_t *tid, int detached, void *(*fn)(void *),
                      void *arg) {
  spawn_call *call = malloc(sizeof *call);
  pthread_attr_t attr;
  sigset_t all, old;
  int rc;
  if (!call)
    return ENOMEM;
  call->fn = fn;
  call->arg = arg;
  if ((rc = pthread_attr_init(&attr)) != 0) {
    free(call);
    return rc;
  }
  pthread_attr_setdetachstate(&attr, detached ? PTHREAD_CREATE_DETACHED
                                              : PTHREAD_CREATE_JOINABLE);
  sigfillset(&all); /* the new thread starts with every signal blocked */
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = pthread_create(tid, &attr, spawned, call);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (rc != 0)
    free(call);
  return rc;
}

/* ---- Public calls ------------------------------------------------------ */

GEV_EXTERN gev_hub *gev_hub_current(void) {
  gev_hub *x = gev__xhub_self();
  return x ? gev__xhub_ref(x) : NULL;
}

GEV_EXTERN gev_hub *gev_hub_ref(gev_hub *h) {
  return h ? gev__xhub_ref(h) : NULL;
}

GEV_EXTERN void gev_hub_unref(gev_hub *h) {
  if (h)
    gev__xhub_unref(h);
}

GEV_EXTERN int gev_hub_alive(const gev_hub *h) {
  int closed;
  if (!h) {
    errno = EINVAL;
    return -1;
  }
  pthread_mutex_lock((pthread_mutex_t *)&h->lock);
  closed = h->closed;
  pthread_mutex_unlock((pthread_mutex_t *)&h->lock);
  return !closed;
}

GEV_EXTERN int gev_hub_is_current(const gev_hub *h) {
  return h && h->id == gev__hub_current_id();
}

typedef struct user_msg {
  gev__xmsg m;
  gev_callback_fn fn;
  void *arg;
} user_msg;

static void run_user_msg(gev__xmsg *m, int err) {
  user_msg *u = (user_msg *)m;
  gev_callback_fn fn = u->fn;
  void *arg = u->arg;
  free(u);
  if (!err)
    fn(arg);
}

GEV_EXTERN int gev_run_callback_threadsafe(gev_hub *h, gev_callback_fn fn,
                                           void *arg) {
  user_msg *u;
  if (!h || !fn) {
    errno = EINVAL;
    return -1;
  }
  if (!(u = calloc(1, sizeof *u))) {
    errno = ENOMEM;
    return -1;
  }
  u->m.run = run_user_msg;
  u->fn = fn;
  u->arg = arg;
  if (gev__xhub_post(h, &u->m) < 0) {
    free(u);
    return -1;
  }
  return 0;
}
