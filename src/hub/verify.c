/*
 * The hub's counters (gev_hub_get_stats) and its self-check
 * (gev_hub_verify): read-only walks over the structures hub.c keeps, which
 * the tests' leak checks call after every test. Nothing here is on a hot
 * path.
 */
#include <string.h>

#include "hub/hub_internal.h"

GEV_EXTERN void gev_hub_get_stats(gev_hub_stats *out) {
  gev__hub *h = gev__hub_peek();
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
  if (!t->parked && gev__deadline_armed(&t->dl))
    gev__die("a running task has an armed deadline");
  verify_waitq(t);
}

GEV_EXTERN int gev_hub_verify(void) {
  gev__hub *h = gev__hub_peek();
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
