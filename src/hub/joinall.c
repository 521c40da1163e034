/*
 * Waiting for many greenlets at once (gevent's joinall, killall, iwait).
 *
 * One heap "multiwait" per call is shared by the waiting coroutine and an
 * internal link on every greenlet it waits for (appended last, so that it
 * runs after the links added before: see greenlet.c). The links count
 * finishes and wake the waiter only when it has something to do.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub_internal.h"

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
    if (skip_ready && gev__greenlet_finished(gs[i]))
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
  double left = deadline - gev_monotonic();
  return left > 0 ? left : 1e-9;
}

static int check_list(gev_greenlet **gs, size_t n) {
  if (!gs && n) {
    errno = EINVAL;
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    if (gev__greenlet_check(gs[i]) < 0)
      return -1;
  return 0;
}

static size_t count_ready(gev_greenlet **gs, size_t n, size_t *failed) {
  size_t k = 0;
  *failed = 0;
  for (size_t i = 0; i < n; i++) {
    if (gev__greenlet_finished(gs[i])) {
      k++;
      *failed += gs[i]->err != 0;
    }
  }
  return k;
}

GEV_EXTERN int gev_joinall(gev_greenlet **gs, size_t n, double timeout,
                           int flags, size_t count) {
  size_t want = count && count < n ? count : n, failed, k;
  double deadline = timeout >= 0 ? gev_monotonic() + timeout : -1;
  multiwait *m;
  int rc = 0;
  if (check_list(gs, n) < 0 || gev__bad_timeout(timeout))
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
  if (rc < 0 && errno == ETIMEDOUT && timeout >= 0 &&
      deadline <= gev_monotonic() && !gev__scopes_expired(gev__task_current()))
    return (int)k; /* our own timeout: report the finished subset */
  return rc < 0 ? -1 : (int)k;
}

GEV_EXTERN int gev_killall(gev_greenlet **gs, size_t n, int block,
                           double timeout) {
  int k;
  if (check_list(gs, n) < 0 || gev__bad_timeout(timeout))
    return -1;
  if (block && gev_in_hub()) {
    errno = EPERM;
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    gev__greenlet_kill_now(gs[i]);
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
  if (check_list(gs, n) < 0 || gev__bad_timeout(timeout))
    return NULL;
  if (!(it = calloc(1, sizeof *it)))
    return NULL;
  if (n && !(it->gs = malloc(n * sizeof *gs)))
    goto out_free;
  if (n)
    memcpy(it->gs, gs, n * sizeof *gs);
  it->n = n;
  it->deadline = timeout >= 0 ? gev_monotonic() + timeout : -1;
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
    if (it->deadline >= 0 && gev_monotonic() >= it->deadline) {
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
