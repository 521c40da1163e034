/*
 * Greenlets (gevent.Greenlet): spawn, join, kill, links, and the module
 * helpers over many greenlets (joinall, killall, iwait).
 *
 * Lifetime. A greenlet object holds one reference for each handle given
 * out and one "alive" reference from spawn until its links have run; so it
 * is freed when both the user is done with it and it is done. Its coroutine
 * is freed by the hub as soon as it finishes; its task lives in the object.
 *
 * Completion, in the greenlet's own context when fn returns: record value
 * or error, mark ready, wake joiners, queue the "done" callback. The done
 * callback (in the hub) runs the links in order, reports an error nobody
 * linked to on stderr, and drops the alive reference. Links added after
 * completion queue the done callback again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub_internal.h"

/* ---- Lifetime ---------------------------------------------------------- */

static void list_add(gev__hub *h, gev_greenlet *g) {
  g->next = h->greenlets;
  if (h->greenlets)
    h->greenlets->prev = g;
  h->greenlets = g;
  h->ngreenlets++;
}

static void list_del(gev__hub *h, gev_greenlet *g) {
  if (g->prev)
    g->prev->next = g->next;
  else
    h->greenlets = g->next;
  if (g->next)
    g->next->prev = g->prev;
  h->ngreenlets--;
}

/* Greenlet objects are recycled through a short per-thread free list (in
 * the hub layer's thread block): a spawn-heavy program allocates and frees
 * them in bursts that outrun glibc's small per-thread cache. */
#define FREE_GREENLETS_MAX 1024

static gev_greenlet *greenlet_alloc(gev__tls *tls) {
  gev_greenlet *g = tls->free_greenlets;
  if (!g)
    return calloc(1, sizeof *g);
  tls->free_greenlets = g->next;
  tls->nfree_greenlets--;
  memset(g, 0, sizeof *g);
  return g;
}

void gev__greenlet_release_memory(gev_greenlet *g) {
  gev__tls *tls = gev__tls_peek();
  if (!tls || tls->nfree_greenlets >= FREE_GREENLETS_MAX) {
    free(g);
    return;
  }
  g->next = tls->free_greenlets;
  tls->free_greenlets = g;
  tls->nfree_greenlets++;
}

void gev__greenlet_free_cache(gev__tls *tls) {
  gev_greenlet *g;
  while ((g = tls->free_greenlets)) {
    tls->free_greenlets = g->next;
    free(g);
  }
  tls->nfree_greenlets = 0;
}

/* Links gev adds itself (joinall, iwait) use the node embedded in the
 * greenlet when it is free, so waiting on a batch allocates nothing. */
static void link_free(gev_greenlet *g, struct gev__link *l) {
  if (l == &g->own_link)
    g->own_link_used = 0;
  else
    free(l);
}

void gev__greenlet_free_links(gev_greenlet *g) {
  struct gev__link *l;
  while ((l = g->links)) {
    g->links = l->next;
    link_free(g, l);
  }
}

static void greenlet_free(gev_greenlet *g) {
  if (!g->detached)
    list_del(g->hub, g);
  gev__greenlet_free_links(g);
  gev__task_fini(&g->task);
  free(g->errmsg);
  free(g->name);
  gev__greenlet_release_memory(g);
}

GEV_EXTERN gev_greenlet *gev_greenlet_ref(gev_greenlet *g) {
  if (g)
    g->refs++;
  return g;
}

GEV_EXTERN void gev_greenlet_unref(gev_greenlet *g) {
  if (g && --g->refs == 0)
    greenlet_free(g);
}

/* ---- Completion -------------------------------------------------------- */

static void report_failure(gev_greenlet *g) {
  gev__log(GEV_LOG_ERROR, "gev: greenlet %s failed: %s (%s)",
           gev_greenlet_name(g), g->errmsg ? g->errmsg : strerror(g->err),
           strerror(g->err));
}

static void run_done(gev__cb *cb) {
  gev_greenlet *g = (gev_greenlet *)((char *)cb - offsetof(gev_greenlet, done));
  struct gev__link *l;
  int user_links = 0;
  g->refs++; /* links may drop handles */
  while ((l = g->links)) {
    g->links = l->next;
    user_links |= !l->internal;
    l->fn(g, l->arg);
    link_free(g, l);
  }
  if (g->err && !user_links && !g->reported) {
    g->reported = 1;
    report_failure(g);
  }
  if (g->alive_ref) {
    g->alive_ref = 0;
    g->refs--;
  }
  gev_greenlet_unref(g);
}

static void schedule_done(gev_greenlet *g) {
  if (!g->done.queued)
    gev__queue(g->hub, &g->done);
}

static void complete(gev_greenlet *g, void *value, int err) {
  g->value = value;
  g->err = err;
  g->ready = 1;
  if (g->started)
    g->hub->nrunning--;
  gev__waitq_wake_all(&g->joiners, NULL, 0);
  schedule_done(g);
}

/* The coroutine body of every greenlet. */
static void *greenlet_main(void *arg) {
  gev_greenlet *g = arg;
  void *value;
  g->fail_err = 0;
  value = g->fn(g->arg);
  if (g->fail_err == ECANCELED)
    g->fail_err = 0;
  complete(g, g->fail_err ? NULL : value, g->fail_err);
  return NULL;
}

/* Hub: switch into the greenlet for its first run; when it comes back
 * dead, release the coroutine. */
static void run_start(gev__cb *cb) {
  gev_greenlet *g =
      (gev_greenlet *)((char *)cb - offsetof(gev_greenlet, start));
  gev__hub *h = g->hub;
  if (g->ready || h->stopping)
    return;
  g->started = 1;
  h->nrunning++;
  if (gev_coro_switch(g->coro, g, NULL) < 0 && !gev_coro_started(g->coro)) {
    /* Its stack could not be mapped: it fails without running. */
    gev_coro *c = g->coro;
    g->coro = NULL;
    g->task.coro = NULL;
    gev__coro_set_upper(c, NULL);
    gev_coro_free(c);
    g->errmsg = strdup("no memory for the greenlet's stack");
    complete(g, NULL, ENOMEM);
  }
}

/* Hub side of every switch into a greenlet: free its coroutine once dead.
 * Called after gev_coro_switch returns in the hub. */
static void reap(gev_greenlet *g) {
  if (g->coro && gev_coro_dead(g->coro)) {
    gev_coro *c = g->coro;
    g->coro = NULL;
    g->task.coro = NULL;
    gev__coro_set_upper(c, NULL);
    gev_coro_free(c);
  }
}

static void run_start_and_reap(gev__cb *cb) {
  gev_greenlet *g =
      (gev_greenlet *)((char *)cb - offsetof(gev_greenlet, start));
  g->refs++;
  run_start(cb);
  reap(g);
  gev_greenlet_unref(g);
}

static void resume_and_reap(gev__cb *cb) {
  gev_greenlet *g = (gev_greenlet *)cb; /* task is the first member */
  g->refs++;
  gev__task_resume(&g->task);
  reap(g);
  gev_greenlet_unref(g);
}

/* ---- Spawning ---------------------------------------------------------- */

static void later_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  gev_greenlet *g = w->data;
  (void)loop, (void)revents;
  g->hub->nwatchers--;
  gev__queue(g->hub, &g->start);
}

static gev_greenlet *greenlet_new(const gev_spawn_opts *o, gev_greenlet_fn fn,
                                  void *arg) {
  gev__hub *h = gev__hub_get();
  gev_coro_opts co = {0};
  gev_greenlet *g;
  if (!h)
    return NULL;
  if (!fn) {
    errno = EINVAL;
    return NULL;
  }
  if (!(g = greenlet_alloc(h->tls)))
    return NULL;
  if (o && o->name && !(g->name = strdup(o->name)))
    goto out_free;
  co.stack_size = o ? o->stack_size : 0;
  co.stack_mode = o ? o->stack_mode : GEV_STACK_DEFAULT;
  co.name = g->name;
  if (!(g->coro = gev_coro_new(greenlet_main, h->coro, &co)))
    goto out_free;
  g->hub = h;
  g->hub_id = gev__hub_id(h);
  g->fn = fn;
  g->arg = arg;
  g->id = ++h->next_id;
  g->refs = 2; /* the handle and the alive reference */
  g->alive_ref = 1;
  gev__task_init(&g->task, h, g->coro);
  g->task.greenlet = g;
  g->task.resume.run = resume_and_reap;
  g->start.run = run_start_and_reap;
  g->done.run = run_done;
  list_add(h, g);
  return g;
out_free:
  free(g->name);
  free(g);
  return NULL;
}

GEV_EXTERN gev_greenlet *gev_spawn_ex(const gev_spawn_opts *opts,
                                      gev_greenlet_fn fn, void *arg) {
  gev_greenlet *g = greenlet_new(opts, fn, arg);
  if (g)
    gev__queue(g->hub, &g->start);
  return g;
}

GEV_EXTERN gev_greenlet *gev_spawn(gev_greenlet_fn fn, void *arg) {
  return gev_spawn_ex(NULL, fn, arg);
}

GEV_EXTERN gev_greenlet *gev_spawn_later(double seconds, gev_greenlet_fn fn,
                                         void *arg) {
  gev_greenlet *g;
  if (seconds < 0 || seconds != seconds) {
    errno = EINVAL;
    return NULL;
  }
  if (!(g = greenlet_new(NULL, fn, arg)))
    return NULL;
  ev_timer_init(&g->later, later_cb, seconds, 0);
  g->later.data = g;
  ev_timer_start(g->hub->loop, &g->later);
  g->hub->nwatchers++;
  return g;
}

GEV_EXTERN int gev_spawn_raw(gev_greenlet_fn fn, void *arg) {
  gev_greenlet *g = gev_spawn(fn, arg);
  if (!g)
    return -1;
  gev_greenlet_unref(g);
  return 0;
}

GEV_EXTERN void *gev_fail(int err, const char *fmt, ...) {
  gev__hub *h = gev__hub_peek();
  gev__task *t;
  gev_greenlet *g;
  va_list ap;
  if (!h || !(t = gev__coro_upper(h->thr->current)) || !(g = t->greenlet) ||
      err <= 0)
    return NULL;
  g->fail_err = err;
  free(g->errmsg);
  g->errmsg = NULL;
  if (fmt) {
    va_start(ap, fmt);
    if (vasprintf(&g->errmsg, fmt, ap) < 0)
      g->errmsg = NULL;
    va_end(ap);
  }
  return NULL;
}

GEV_EXTERN gev_greenlet *gev_getcurrent(void) {
  gev__hub *h = gev__hub_peek();
  gev__task *t;
  if (!h || !(t = gev__coro_upper(h->thr->current)))
    return NULL;
  return t->greenlet;
}

/* ---- Join, get, kill --------------------------------------------------- */

static int check_greenlet(const gev_greenlet *g) {
  if (!g) {
    errno = EINVAL;
    return -1;
  }
  if (g->hub_id != gev__hub_current_id()) { /* its hub may be gone */
    errno = EXDEV;
    return -1;
  }
  return 0;
}

GEV_EXTERN int gev_greenlet_join(gev_greenlet *g, double timeout) {
  int rc = 0;
  if (check_greenlet(g) < 0)
    return -1;
  if (g->ready)
    return 0;
  if (gev_getcurrent() == g) {
    errno = EDEADLK;
    return -1;
  }
  g->refs++;
  while (!g->ready && rc == 0)
    rc = gev__waitq_wait(&g->joiners, timeout, "join", NULL);
  gev_greenlet_unref(g);
  return rc;
}

GEV_EXTERN int gev_greenlet_get(gev_greenlet *g, double timeout, void **value) {
  if (gev_greenlet_join(g, timeout) < 0)
    return -1;
  if (g->err) {
    errno = g->err;
    return -1;
  }
  if (value)
    *value = g->value;
  return 0;
}

static void kill_unstarted(gev_greenlet *g) {
  gev_coro *c = g->coro;
  if (ev_is_active(&g->later)) {
    ev_timer_stop(g->hub->loop, &g->later);
    g->hub->nwatchers--;
  }
  g->coro = NULL;
  g->task.coro = NULL;
  gev__coro_set_upper(c, NULL);
  gev_coro_free(c);
  complete(g, NULL, 0);
}

static void kill_now(gev_greenlet *g) {
  if (g->ready)
    return;
  g->killed = 1;
  if (!g->started) {
    kill_unstarted(g);
    return;
  }
  g->task.killed = 1;
  gev__wake(&g->task, NULL, ECANCELED);
}

GEV_EXTERN int gev_greenlet_kill(gev_greenlet *g, int block, double timeout) {
  if (check_greenlet(g) < 0)
    return -1;
  if (block && gev_in_hub()) {
    errno = EPERM;
    return -1;
  }
  kill_now(g);
  if (!block || g->ready || gev_getcurrent() == g)
    return 0;
  return gev_greenlet_join(g, timeout);
}

void gev__greenlet_kill_all(gev__hub *h) {
  for (gev_greenlet *g = h->greenlets; g; g = g->next)
    kill_now(g);
}

/* The hub goes away: greenlet objects still held by handles stay valid
 * (all finished) but leave its list. */
/* gev_hub_destroy gives up on g, which went on making blocking calls long
 * after its kill: it ends as failed with ECANCELED (its joiners and links
 * learn so) and never runs again; its coroutine is left suspended, and
 * leaked on purpose (see abandon_if_overdue in hub.c). */
void gev__greenlet_abandon(gev_greenlet *g) {
  gev__log(GEV_LOG_ERROR, "gev: greenlet %s ignored kill; abandoning it",
           gev_greenlet_name(g));
  g->coro = NULL;
  g->reported = 1;
  free(g->errmsg);
  g->errmsg = strdup("ignored its kill; abandoned");
  complete(g, NULL, ECANCELED);
}

void gev__greenlet_detach_all(gev__hub *h) {
  gev_greenlet *g;
  while ((g = h->greenlets)) {
    h->greenlets = g->next;
    g->detached = 1;
    g->prev = g->next = NULL;
  }
  h->ngreenlets = 0;
}

/* ---- Links ------------------------------------------------------------- */

int gev__greenlet_link(gev_greenlet *g, gev_link_fn fn, void *arg,
                       int internal) {
  struct gev__link *l, **tail;
  if (check_greenlet(g) < 0)
    return -1;
  if (!fn) {
    errno = EINVAL;
    return -1;
  }
  if (internal && !g->own_link_used) {
    l = &g->own_link;
    g->own_link_used = 1;
    memset(l, 0, sizeof *l);
  } else if (!(l = calloc(1, sizeof *l))) {
    return -1;
  }
  l->fn = fn;
  l->arg = arg;
  l->internal = internal;
  for (tail = &g->links; *tail; tail = &(*tail)->next)
    ;
  *tail = l;
  if (g->ready && !g->done.queued) {
    g->refs++;
    g->alive_ref = 1;
    schedule_done(g);
  }
  return 0;
}

GEV_EXTERN int gev_greenlet_link(gev_greenlet *g, gev_link_fn fn, void *arg) {
  return gev__greenlet_link(g, fn, arg, 0);
}

GEV_EXTERN int gev_greenlet_unlink(gev_greenlet *g, gev_link_fn fn, void *arg) {
  struct gev__link **p, *l;
  if (check_greenlet(g) < 0)
    return -1;
  for (p = &g->links; (l = *p); p = &l->next) {
    if (l->fn == fn && l->arg == arg) {
      *p = l->next;
      link_free(g, l);
      return 0;
    }
  }
  errno = ENOENT;
  return -1;
}

/* ---- Queries ----------------------------------------------------------- */

GEV_EXTERN int gev_greenlet_started(const gev_greenlet *g) {
  return g && g->started;
}
GEV_EXTERN int gev_greenlet_ready(const gev_greenlet *g) {
  return g && g->ready;
}
GEV_EXTERN int gev_greenlet_successful(const gev_greenlet *g) {
  return g && g->ready && !g->err;
}
GEV_EXTERN void *gev_greenlet_value(const gev_greenlet *g) {
  return g && g->ready ? g->value : NULL;
}
GEV_EXTERN int gev_greenlet_error(const gev_greenlet *g) {
  return g ? g->err : 0;
}
GEV_EXTERN const char *gev_greenlet_errmsg(const gev_greenlet *g) {
  if (!g || !g->err)
    return NULL;
  return g->errmsg ? g->errmsg : strerror(g->err);
}

GEV_EXTERN const char *gev_greenlet_name(const gev_greenlet *g) {
  gev_greenlet *m = (gev_greenlet *)g;
  if (!g)
    return NULL;
  if (!m->name) {
    char buf[32];
    snprintf(buf, sizeof buf, "Greenlet-%lu", g->id);
    m->name = strdup(buf);
  }
  return m->name ? m->name : "Greenlet";
}

GEV_EXTERN int gev_greenlet_set_name(gev_greenlet *g, const char *name) {
  char *copy;
  if (!g || !name) {
    errno = EINVAL;
    return -1;
  }
  if (!(copy = strdup(name)))
    return -1;
  free(g->name);
  g->name = copy;
  return 0;
}

void gev__greenlet_describe(FILE *out, gev_greenlet *g) {
  const char *state = !g->started && !g->ready ? "not started"
                      : g->ready       ? (g->err ? "failed" : "finished")
                      : g->task.parked ? "parked"
                                       : "running";
  fprintf(out, "  %s: %s", gev_greenlet_name(g), state);
  if (g->task.parked && g->task.what)
    fprintf(out, " on %s", g->task.what);
  if (g->task.killed && !g->ready)
    fprintf(out, " (killed)");
  fputc('\n', out);
}

/* ---- Many greenlets ---------------------------------------------------- */

/* Shared state of one joinall/iwait: heap, counted by its links. */
typedef struct multiwait {
  gev__task *task;     /* the waiting coroutine's task */
  gev__waitq q;        /* it parks here */
  gev_greenlet **done; /* ring of finished greenlets (iwait) */
  size_t ndone, head, cap;
  size_t finished, failed;
  size_t need;       /* joinall: finishes still needed to return */
  int stop_on_error; /* joinall: GEV_JOIN_RAISE_ERROR */
  unsigned refs;     /* owner + outstanding links */
  double deadline;
  int owner_gone;
} multiwait;

static void mw_unref(multiwait *m) {
  if (--m->refs == 0) {
    free(m->done);
    free(m);
  }
}

static int mw_satisfied(const multiwait *m) {
  return m->finished >= m->need || (m->stop_on_error && m->failed);
}

/* Link run as each greenlet finishes: counts it, and wakes the waiter only
 * when it has something to do (every finish for iwait, the last needed
 * one for joinall), so joining a batch costs one wake-up. */
static void mw_link(gev_greenlet *g, void *arg) {
  multiwait *m = arg;
  if (!m->owner_gone) {
    m->finished++;
    if (g->err)
      m->failed++;
    if (m->done)
      m->done[(m->head + m->ndone++) % m->cap] = g;
    if (m->done || mw_satisfied(m))
      gev__waitq_wake_one(&m->q, NULL, 0);
  }
  mw_unref(m);
}

/* Links every greenlet of gs, or with skip_ready only those not finished
 * yet (their count is the caller's). */
static multiwait *mw_new(gev_greenlet **gs, size_t n, int ring,
                         int skip_ready) {
  multiwait *m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  m->refs = 1;
  if (ring && n && !(m->done = calloc(n, sizeof *m->done))) {
    free(m);
    return NULL;
  }
  m->cap = n;
  for (size_t i = 0; i < n; i++) {
    if (skip_ready && gs[i]->ready)
      continue;
    if (gev__greenlet_link(gs[i], mw_link, m, 1) < 0)
      continue;
    m->refs++;
  }
  return m;
}

static void mw_release(multiwait *m, gev_greenlet **gs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (gev_greenlet_unlink(gs[i], mw_link, m) == 0)
      m->refs--;
  }
  m->owner_gone = 1;
  mw_unref(m);
}

static double remaining(double deadline) {
  if (deadline < 0)
    return -1;
  double left = deadline - ev_time();
  return left > 0 ? left : 1e-9;
}

static int check_list(gev_greenlet **gs, size_t n) {
  if (!gs && n) {
    errno = EINVAL;
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    if (check_greenlet(gs[i]) < 0)
      return -1;
  return 0;
}

static size_t count_ready(gev_greenlet **gs, size_t n, size_t *failed) {
  size_t k = 0;
  *failed = 0;
  for (size_t i = 0; i < n; i++) {
    if (gs[i]->ready) {
      k++;
      *failed += gs[i]->err != 0;
    }
  }
  return k;
}

GEV_EXTERN int gev_joinall(gev_greenlet **gs, size_t n, double timeout,
                           int flags, size_t count) {
  size_t want = count && count < n ? count : n, failed, k;
  double deadline = timeout >= 0 ? ev_time() + timeout : -1;
  multiwait *m;
  int rc = 0;
  if (check_list(gs, n) < 0)
    return -1;
  k = count_ready(gs, n, &failed);
  if (k >= want || ((flags & GEV_JOIN_RAISE_ERROR) && failed))
    return (int)k;
  if (!(m = mw_new(gs, n, 0, 1)))
    return -1;
  m->need = want - k;
  m->stop_on_error = (flags & GEV_JOIN_RAISE_ERROR) != 0;
  while (!mw_satisfied(m)) {
    rc = gev__waitq_wait(&m->q, remaining(deadline), "joinall", NULL);
    if (rc < 0)
      break;
  }
  int err = errno;
  mw_release(m, gs, n);
  errno = err;
  k = count_ready(gs, n, &failed);
  if (rc < 0 && errno == ETIMEDOUT && timeout >= 0 && deadline <= ev_time() &&
      !gev__scopes_expired(gev__task_current()))
    return (int)k; /* our own timeout: report the finished subset */
  return rc < 0 ? -1 : (int)k;
}

GEV_EXTERN int gev_killall(gev_greenlet **gs, size_t n, int block,
                           double timeout) {
  int k;
  if (check_list(gs, n) < 0)
    return -1;
  if (block && gev_in_hub()) {
    errno = EPERM;
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    kill_now(gs[i]);
  if (!block)
    return 0;
  k = gev_joinall(gs, n, timeout, 0, 0);
  if (k < 0)
    return -1;
  if ((size_t)k < n) {
    errno = ETIMEDOUT;
    return -1;
  }
  return 0;
}

struct gev_iwait {
  multiwait *m;
  gev_greenlet **gs;
  size_t n, returned;
  double deadline;
};

GEV_EXTERN gev_iwait *gev_iwait_new(gev_greenlet **gs, size_t n,
                                    double timeout) {
  gev_iwait *it;
  if (check_list(gs, n) < 0)
    return NULL;
  if (!(it = calloc(1, sizeof *it)))
    return NULL;
  if (n && !(it->gs = malloc(n * sizeof *gs)))
    goto out_free;
  if (n)
    memcpy(it->gs, gs, n * sizeof *gs);
  it->n = n;
  it->deadline = timeout >= 0 ? ev_time() + timeout : -1;
  for (size_t i = 0; i < n; i++)
    gev_greenlet_ref(gs[i]);
  if (!(it->m = mw_new(gs, n, 1, 0)))
    goto out_unref;
  return it;
out_unref:
  for (size_t i = 0; i < n; i++)
    gev_greenlet_unref(gs[i]);
  free(it->gs);
out_free:
  free(it);
  return NULL;
}

GEV_EXTERN gev_greenlet *gev_iwait_next(gev_iwait *it) {
  multiwait *m;
  if (!it) {
    errno = EINVAL;
    return NULL;
  }
  m = it->m;
  while (m->ndone == 0) {
    if (it->returned == it->n) {
      errno = 0;
      return NULL;
    }
    if (it->deadline >= 0 && ev_time() >= it->deadline) {
      errno = ETIMEDOUT;
      return NULL;
    }
    if (gev__waitq_wait(&m->q, remaining(it->deadline), "iwait", NULL) < 0)
      return NULL;
  }
  gev_greenlet *g = m->done[m->head];
  m->head = (m->head + 1) % m->cap;
  m->ndone--;
  it->returned++;
  return g;
}

GEV_EXTERN void gev_iwait_free(gev_iwait *it) {
  if (!it)
    return;
  mw_release(it->m, it->gs, it->n);
  for (size_t i = 0; i < it->n; i++)
    gev_greenlet_unref(it->gs[i]);
  free(it->gs);
  free(it);
}
