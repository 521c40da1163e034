/*
 * The fork hook registry and per-hub state with an exit hook (see
 * hub/hooks.h). The hub's own fork hooks are the registry's first entry;
 * other layers add theirs when they first make state.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "hub/hooks.h"
#include "hub/hub_internal.h"

#define MAX_HOOKS 16

/* Keep: the loop rebuilds its epoll set and wake-up pipe, which the
 * parent shares, at its next iteration and re-arms every watcher. */
static void hub_keep(void) {
  gev__hub *h = gev__hub_peek();
  if (h)
    ev_loop_fork(gev__hub_evloop(h));
}

/* Discard: see gev__hub_forget_after_fork (the caller checked that it
 * runs in the main coroutine). */
static void hub_discard(void) { gev__hub_forget_after_fork(); }

static const gev__fork_hooks hub_hooks = {
    .layer = GEV__LAYER_HUB, .keep = hub_keep, .discard = hub_discard};

static pthread_mutex_t hooks_lock = PTHREAD_MUTEX_INITIALIZER;
static const gev__fork_hooks *hooks[MAX_HOOKS] = {&hub_hooks};
static atomic_size_t nhooks = 1;

void gev__at_fork(const gev__fork_hooks *h) {
  size_t n, i;
  pthread_mutex_lock(&hooks_lock);
  n = atomic_load(&nhooks);
  for (i = 0; i < n && hooks[i] != h; i++)
    ;
  if (i == n) {
    if (n == MAX_HOOKS)
      gev__die("more fork hooks than the registry holds");
    /* Sorted by layer, in registration order within a layer. */
    for (i = n; i > 0 && hooks[i - 1]->layer > h->layer; i--)
      hooks[i] = hooks[i - 1];
    hooks[i] = h;
    atomic_store(&nhooks, n + 1);
  }
  pthread_mutex_unlock(&hooks_lock);
}

typedef void (*hook_fn)(void);

static hook_fn pick(const gev__fork_hooks *h, int kind) {
  switch (kind) {
  case 0:
    return h->prepare;
  case 1:
    return h->parent;
  case 2:
    return h->keep;
  default:
    return h->discard;
  }
}

static void run(int kind, int top_first) {
  size_t n = atomic_load(&nhooks);
  for (size_t k = 0; k < n; k++) {
    hook_fn fn = pick(hooks[top_first ? n - 1 - k : k], kind);
    if (fn)
      fn();
  }
}

/* In the parent the lock keeps a registration in another thread from
 * moving entries under the loop; in a child no other thread runs. */
void gev__fork_run_prepare(void) {
  pthread_mutex_lock(&hooks_lock);
  run(0, 1);
  pthread_mutex_unlock(&hooks_lock);
}

void gev__fork_run_parent(void) {
  pthread_mutex_lock(&hooks_lock);
  run(1, 0);
  pthread_mutex_unlock(&hooks_lock);
}

void gev__fork_run_keep(void) { run(2, 0); }
void gev__fork_run_discard(void) { run(3, 1); }

/* ---- Per-hub state ------------------------------------------------------- */

static void state_release(gev__hub_state *st) {
  if (*st->slot == st)
    *st->slot = NULL;
  free(st);
}

static void state_cleanup_cb(struct ev_loop *loop, ev_cleanup *w, int revents) {
  gev__hub_state *st = w->data;
  (void)revents;
  ev_cleanup_stop(loop, w); /* before the memory goes (see fdwait.c) */
  st->gone(st);
  state_release(st);
}

gev__hub_state *gev__hub_state_get(gev__hub_state **slot, size_t size,
                                   void (*gone)(gev__hub_state *st)) {
  gev__hub *h = gev__hub_get();
  gev__hub_state *st = *slot;
  if (!h)
    return NULL;
  if (st && st->loop == gev__hub_evloop(h))
    return st;
  if (!(st = calloc(1, size)))
    return NULL;
  st->loop = gev__hub_evloop(h);
  st->slot = slot;
  st->gone = gone;
  ev_cleanup_init(&st->cleanup, state_cleanup_cb);
  st->cleanup.data = st;
  ev_cleanup_start(st->loop, &st->cleanup);
  *slot = st;
  return st;
}

void gev__hub_state_drop(gev__hub_state *st) {
  ev_cleanup_stop(st->loop, &st->cleanup);
  state_release(st);
}
