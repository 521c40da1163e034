/*
 * Greenlets (gevent.Greenlet): spawn, join, kill, links. The helpers over
 * many greenlets (joinall, killall, iwait) are in joinall.c.
 *
 * Lifetime. A greenlet object holds one reference for each handle given
 * out and one "alive" reference from spawn until its links have run; so it
 * is freed when both the user is done with it and it is done. Its coroutine
 * is freed by the hub as soon as it finishes; its task lives in the object.
 *
 * Completion, in the greenlet's own context when fn returns: record value
 * or error, mark ready, queue the "done" callback. The done callback (in
 * the hub) runs the links in order, then wakes the joiners, reports an
 * error nobody linked to, and drops the alive reference. Links added after
 * completion queue the done callback again.
 *
 * Ordering, as gevent's: a join is a link appended last, so whoever waits
 * for a greenlet (join, get, kill with block, joinall, iwait) sees it
 * finished only once the links added before have run. "Ready" (the
 * function returned) and "finished" (ready, and no link left to run)
 * differ only between completion and the done callback.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coro/tools.h"
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
 * them in bursts that outrun glibc's small per-thread cache.
 *
 * A handle used after its last release (a second gev_greenlet_unref is
 * the usual slip) must fail loudly, not corrupt the greenlet that reuses
 * the block. Released blocks are marked dead (magic), poisoned for
 * AddressSanitizer while they wait on the list, and reused oldest first,
 * so a stale handle most likely meets a dead block and aborts with
 * "gev: greenlet handle released twice". (A block already reused by a
 * newer greenlet cannot be told from it: the check is a safety net.) */
#define FREE_GREENLETS_MAX 1024
enum { GREENLET_LIVE = 0x4772656eu, GREENLET_DEAD = 0x64656164u };

static void poison(gev_greenlet *g) {
#ifdef GEV_ASAN
  ASAN_POISON_MEMORY_REGION(g, sizeof *g);
#endif
  (void)g;
}

static void unpoison(gev_greenlet *g) {
#ifdef GEV_ASAN
  ASAN_UNPOISON_MEMORY_REGION(g, sizeof *g);
#endif
  (void)g;
}

/* Aborts with "gev: <rule>" unless g is a live greenlet. */
static void check_alive(const gev_greenlet *g, const char *rule) {
#ifdef GEV_ASAN
  if (__asan_region_is_poisoned((void *)g, sizeof *g))
    gev__die(rule);
#endif
  if (g->magic != GREENLET_LIVE)
    gev__die(rule);
}

static gev_greenlet *greenlet_alloc(gev__hthread *ht) {
  gev_greenlet *g = ht->free_head;
  if (!g)
    g = calloc(1, sizeof *g);
  else {
    unpoison(g);
    ht->free_head = g->next;
    if (!ht->free_head)
      ht->free_tail = NULL;
    ht->nfree_greenlets--;
    memset(g, 0, sizeof *g);
  }
  if (g)
    g->magic = GREENLET_LIVE;
  return g;
}

void gev__greenlet_release_memory(gev_greenlet *g) {
  gev__hthread *ht = gev__hthread_peek();
  /* volatile: a plain store right before free() is optimised away */
  *(volatile unsigned *)&g->magic = GREENLET_DEAD;
  if (!ht || ht->nfree_greenlets >= FREE_GREENLETS_MAX) {
    free(g);
    return;
  }
  g->next = NULL;
  if (ht->free_tail) {
    unpoison(ht->free_tail);
    ht->free_tail->next = g;
    poison(ht->free_tail);
  } else {
    ht->free_head = g;
  }
  ht->free_tail = g;
  ht->nfree_greenlets++;
  poison(g);
}

void gev__greenlet_free_cache(gev__hthread *ht) {
  gev_greenlet *g;
  while ((g = ht->free_head)) {
    unpoison(g);
    ht->free_head = g->next;
    free(g);
  }
  ht->free_tail = NULL;
  ht->nfree_greenlets = 0;
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

#define USED_AFTER_RELEASE "greenlet handle used after its last release"

GEV_EXTERN gev_greenlet *gev_greenlet_ref(gev_greenlet *g) {
  if (g) {
    check_alive(g, USED_AFTER_RELEASE);
    g->refs++;
  }
  return g;
}

/* Never started, not scheduled, not finished: only a start could run it. */
static int dormant(const gev_greenlet *g) {
  return !g->started && !g->scheduled && !g->ready;
}

GEV_EXTERN void gev_greenlet_unref(gev_greenlet *g) {
  if (!g)
    return;
  check_alive(g, "greenlet handle released twice");
  if (--g->refs == 0)
    greenlet_free(g);
  else if (g->refs == 1 && g->alive_ref && dormant(g))
    gev__greenlet_kill_now(g); /* the last handle of an unstarted one */
}

/* ---- Completion -------------------------------------------------------- */

static void report_failure(gev_greenlet *g) {
  gev__log(GEV_LOG_ERROR, "gev: greenlet %s failed: %s (%s)",
           gev_greenlet_name(g), g->errmsg ? g->errmsg : strerror(g->err),
           strerror(g->err));
}

/* Ready with no link left to run: what joiners wait for. */
int gev__greenlet_finished(const gev_greenlet *g) {
  return g->ready && !g->done.queued;
}

/* Whether link l runs for g's outcome. */
static int link_applies(const struct gev__link *l, const gev_greenlet *g) {
  return l->when == GEV__LINK_ALWAYS ||
         (l->when == GEV__LINK_EXCEPTION) == (g->err != 0);
}

static void reap(gev_greenlet *g);

static void run_done(gev__cb *cb) {
  gev_greenlet *g = (gev_greenlet *)((char *)cb - offsetof(gev_greenlet, done));
  struct gev__link *l;
  /* Someone observed the outcome: a joiner waits, or a link that is not
   * gev's bookkeeping runs (a user's, or a joinall/iwait/gev_wait). */
  int observed = g->joiners.len > 0;
  reap(g);
  g->refs++; /* links may drop handles */
  while ((l = g->links)) {
    g->links = l->next;
    if (link_applies(l, g)) {
      observed |= !(l->flags & GEV__LINK_QUIET);
      l->fn(g, l->arg);
    }
    link_free(g, l);
  }
  if (gev__greenlet_finished(
          g)) /* no link added meanwhile queued another pass */
    gev__waitq_wake_all(&g->joiners, NULL, 0);
  if (g->err && !observed && !g->reported) {
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
    gev__run_soon(g->hub, &g->done);
}

static void complete(gev_greenlet *g, void *value, int err) {
  g->value = value;
  g->err = err;
  g->ready = 1;
  if (g->started)
    g->hub->nrunning--;
  schedule_done(g); /* runs the links, then wakes the joiners */
}

/* The coroutine body of every greenlet. Once complete, it ends by
 * switching to what the hub would run next when that is another switch
 * (gev__hub_take_switch), else to the hub, its parent. */
static void *greenlet_main(void *arg) {
  gev_greenlet *g = arg;
  gev_coro *to;
  void *value;
  g->fail_err = 0;
  value = g->fn(g->arg);
  if (g->fail_err == ECANCELED)
    g->fail_err = 0;
  complete(g, g->fail_err ? NULL : value, g->fail_err);
  if (gev__hub_take_switch(g->hub, &to, &value))
    gev__coro_exit_to(to, value);
  return NULL;
}

void *gev__greenlet_run_inline(gev_greenlet_fn fn, void *arg, int *err,
                               char **msg) {
  gev_greenlet *g = gev_getcurrent();
  int saved_err;
  char *saved_msg;
  void *value;
  if (msg)
    *msg = NULL;
  if (!g) {
    *err = 0;
    return fn(arg);
  }
  saved_err = g->fail_err;
  saved_msg = g->errmsg;
  g->fail_err = 0;
  g->errmsg = NULL;
  value = fn(arg);
  *err = g->fail_err == ECANCELED ? 0 : g->fail_err;
  if (msg && *err)
    *msg = g->errmsg; /* the caller's now */
  else
    free(g->errmsg);
  g->fail_err = saved_err;
  g->errmsg = saved_msg;
  return *err ? NULL : value;
}

/* Frees g's coroutine once it is dead: from its done callback, which the
 * hub runs after the coroutine has ended (whoever it ended switching to). */
static void reap(gev_greenlet *g) {
  if (g->coro && gev_coro_dead(g->coro)) {
    gev_coro *c = g->coro;
    g->coro = NULL;
    g->task.coro = NULL;
    gev__coro_set_upper(c, NULL);
    gev_coro_free(c);
  }
}

/* What a start does before its switch; 0 if g is not to run (finished, or
 * the hub stops). */
static int start_begin(gev_greenlet *g) {
  gev__hub *h = g->hub;
  g->scheduled = 0;
  if (g->ready || h->stopping)
    return 0;
  g->started = 1;
  h->nrunning++;
  return 1;
}

/* Hub: switch into the greenlet for its first run. */
static void run_start(gev__cb *cb) {
  gev_greenlet *g =
      (gev_greenlet *)((char *)cb - offsetof(gev_greenlet, start));
  if (!start_begin(g))
    return;
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

/* The start's take: only once the switch cannot fail (the stack is
 * mapped); otherwise the hub runs it and handles the failure. */
static int take_start(gev__cb *cb, gev_coro **to, void **value) {
  gev_greenlet *g =
      (gev_greenlet *)((char *)cb - offsetof(gev_greenlet, start));
  if (!g->ready && !g->hub->stopping && !gev__coro_ready(g->coro) &&
      gev__coro_prepare(g->coro) < 0)
    return -1;
  if (!start_begin(g))
    return 0;
  *to = g->coro;
  *value = g;
  return 1;
}

static void resume_greenlet(gev__cb *cb) {
  gev_greenlet *g = (gev_greenlet *)cb; /* task is the first member */
  gev__task_resume(&g->task);
}

/* ---- Spawning ---------------------------------------------------------- */

/* spawn_later's timer: starts the greenlet once its time has come on
 * gev_monotonic()'s clock (a timer that fired early is re-armed). */
static void later_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  gev_greenlet *g = w->data;
  double left = g->later_at - gev_monotonic();
  (void)loop, (void)revents;
  g->hub->nwatchers--;
  if (left > 0)
    gev__timer_start(g->hub, w, left);
  else
    gev__run_soon(g->hub, &g->start);
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
  if (!(g = greenlet_alloc(h->ht)))
    return NULL;
  if (o && o->name && !(g->name = strdup(o->name)))
    goto out_free;
  co.stack_size = o ? o->stack_size : 0;
  co.stack_mode = o ? o->stack_mode : GEV_STACK_DEFAULT;
  co.name = g->name;
  if (!(g->coro = gev_coro_new(greenlet_main, h->coro, &co)))
    goto out_free;
  g->hub = h;
  g->hub_id = h->id;
  g->fn = fn;
  g->arg = arg;
  g->id = ++h->next_id;
  g->refs = 2; /* the handle and the alive reference */
  g->alive_ref = 1;
  gev__task_init_zeroed(&g->task, h, g->coro); /* g came zeroed */
  g->task.greenlet = g;
  g->task.resume.run = resume_greenlet;
  g->task.resume.take = gev__task_take;
  g->start.run = run_start;
  g->start.take = take_start;
  g->done.run = run_done;
  list_add(h, g);
  return g;
out_free:
  free(g->name);
  free(g);
  return NULL;
}

GEV_EXTERN gev_greenlet *gev_greenlet_new_ex(const gev_spawn_opts *opts,
                                             gev_greenlet_fn fn, void *arg) {
  return greenlet_new(opts, fn, arg);
}

GEV_EXTERN gev_greenlet *gev_greenlet_new(gev_greenlet_fn fn, void *arg) {
  return greenlet_new(NULL, fn, arg);
}

/* 1 if g may be scheduled now, 0 if it is already started, scheduled or
 * finished (a start does nothing then), -1 with errno if g is bad. */
static int startable(gev_greenlet *g) {
  if (gev__greenlet_check(g) < 0)
    return -1;
  return g->started || g->scheduled || g->ready ? 0 : 1;
}

static void schedule_start(gev_greenlet *g) {
  g->scheduled = 1;
  gev__run_soon(g->hub, &g->start);
}

GEV_EXTERN int gev_greenlet_start(gev_greenlet *g) {
  int rc = startable(g);
  if (rc > 0)
    schedule_start(g);
  return rc < 0 ? -1 : 0;
}

GEV_EXTERN int gev_greenlet_start_later(gev_greenlet *g, double seconds) {
  if (seconds < 0 || seconds != seconds) {
    errno = EINVAL;
    return -1;
  }
  int rc = startable(g);
  if (rc <= 0)
    return rc;
  g->scheduled = 1;
  ev_init(&g->later, later_cb);
  g->later.data = g;
  g->later_at = gev_monotonic() + seconds;
  gev__timer_start(g->hub, &g->later, seconds);
  return 0;
}

GEV_EXTERN gev_greenlet *gev_spawn_ex(const gev_spawn_opts *opts,
                                      gev_greenlet_fn fn, void *arg) {
  gev_greenlet *g = greenlet_new(opts, fn, arg);
  if (g)
    schedule_start(g);
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
  if ((g = greenlet_new(NULL, fn, arg)))
    gev_greenlet_start_later(g, seconds);
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
  if (err <= 0)
    return NULL;
  if (!h || !(t = gev__coro_upper(h->thr->current)) || !(g = t->greenlet)) {
    va_start(ap, fmt); /* a pool job's failure, if this is one */
    gev__job_fail(err, fmt, ap);
    va_end(ap);
    return NULL;
  }
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

int gev__greenlet_check(const gev_greenlet *g) {
  if (!g) {
    errno = EINVAL;
    return -1;
  }
  check_alive(g, USED_AFTER_RELEASE);
  if (g->hub_id != gev__hub_current_id()) { /* its hub may be gone */
    errno = EXDEV;
    return -1;
  }
  return 0;
}

GEV_EXTERN int gev_greenlet_join(gev_greenlet *g, double timeout) {
  int rc = 0;
  if (gev__greenlet_check(g) < 0 || gev__bad_timeout(timeout))
    return -1;
  if (gev__greenlet_finished(g))
    return 0;
  if (gev_getcurrent() == g) {
    errno = EDEADLK;
    return -1;
  }
  g->refs++;
  while (!gev__greenlet_finished(g) && rc == 0)
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

void gev__greenlet_kill_now(gev_greenlet *g) {
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
  if (gev__greenlet_check(g) < 0 || gev__bad_timeout(timeout))
    return -1;
  if (block && gev_in_hub()) {
    errno = EPERM;
    return -1;
  }
  gev__greenlet_kill_now(g);
  if (!block || gev__greenlet_finished(g) || gev_getcurrent() == g)
    return 0;
  return gev_greenlet_join(g, timeout);
}

void gev__greenlet_kill_all(gev__hub *h) {
  for (gev_greenlet *g = h->greenlets; g; g = g->next)
    gev__greenlet_kill_now(g);
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

/* Appends a link that runs when (GEV__LINK_*). */
static int link_add(gev_greenlet *g, gev_link_fn fn, void *arg, int flags,
                    int when) {
  struct gev__link *l, **tail;
  if (gev__greenlet_check(g) < 0)
    return -1;
  if (!fn) {
    errno = EINVAL;
    return -1;
  }
  if ((flags & GEV__LINK_OWN_NODE) && !g->own_link_used) {
    l = &g->own_link;
    g->own_link_used = 1;
    memset(l, 0, sizeof *l);
  } else if (!(l = calloc(1, sizeof *l))) {
    return -1;
  }
  l->fn = fn;
  l->arg = arg;
  l->flags = flags;
  l->when = when;
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

int gev__greenlet_link(gev_greenlet *g, gev_link_fn fn, void *arg, int flags) {
  return link_add(g, fn, arg, flags, GEV__LINK_ALWAYS);
}

int gev__greenlet_link_quiet(gev_greenlet *g, gev_link_fn fn, void *arg) {
  return link_add(g, fn, arg, GEV__LINK_QUIET, GEV__LINK_ALWAYS);
}

GEV_EXTERN int gev_greenlet_link(gev_greenlet *g, gev_link_fn fn, void *arg) {
  return link_add(g, fn, arg, 0, GEV__LINK_ALWAYS);
}

GEV_EXTERN int gev_greenlet_link_value(gev_greenlet *g, gev_link_fn fn,
                                       void *arg) {
  return link_add(g, fn, arg, 0, GEV__LINK_VALUE);
}

GEV_EXTERN int gev_greenlet_link_exception(gev_greenlet *g, gev_link_fn fn,
                                           void *arg) {
  return link_add(g, fn, arg, 0, GEV__LINK_EXCEPTION);
}

GEV_EXTERN int gev_greenlet_unlink(gev_greenlet *g, gev_link_fn fn, void *arg) {
  struct gev__link **p, *l;
  if (gev__greenlet_check(g) < 0)
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
