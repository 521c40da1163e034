/*
 * Waiting for many objects at once (gevent's wait, iwait, joinall,
 * killall), over any gev_waitable.
 *
 * One heap "multiwait" per call (or iterator) holds an entry per object
 * not ready at the start. Each entry watches its object through the ops
 * of its kind (waitable.h): a link on a greenlet (appended last, so it
 * runs after the links added before: see greenlet.c), a rawlink on a sync
 * object or socket, an io watcher on an fd. When one fires, the entry
 * counts it and wakes the waiting coroutine only when it has something to
 * do (every fire for iwait, the last needed one for wait), so waiting on a
 * batch costs one wake-up. Every watch ends before the multiwait is freed
 * (disarm), so nothing fires into freed memory.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub_internal.h"
#include "hub/waitable.h"

typedef struct gev__multiwait {
  gev__wait_entry *entries; /* one per object */
  size_t n;
  gev__waitq q;       /* the waiting coroutine parks here */
  size_t *fired;      /* ring of fired indices (iwait), NULL for wait */
  gev_waitable *objs; /* iwait: its own copy of the objects */
  size_t nfired, head;
  size_t ready;        /* objects ready so far */
  size_t need;         /* wait: ready objects needed to return */
  size_t failed;       /* greenlets among them that failed */
  int stop_on_failure; /* GEV_JOIN_RAISE_ERROR */
  int gone;            /* a sync object was destroyed (EIDRM) */
} multiwait;

/* ---- Entries ------------------------------------------------------------ */

static int satisfied(const multiwait *m) {
  return m->ready >= m->need || m->gone || (m->stop_on_failure && m->failed);
}

void gev__wait_entry_fire(gev__wait_entry *e, int err, int failed) {
  multiwait *m = e->m;
  if (e->fired)
    return;
  gev__rawlink_del(&e->link);
  gev__wait_entry_unwatch_fd(e);
  e->fired = 1;
  e->gone = err != 0;
  if (err)
    m->gone = 1;
  else
    m->ready++;
  m->failed += failed != 0;
  if (m->fired)
    m->fired[(m->head + m->nfired++) % m->n] = e->index;
  if (m->fired || satisfied(m))
    gev__waitq_wake_one(&m->q, NULL, 0);
}

static void mw_free(multiwait *m) {
  for (size_t i = 0; i < m->n; i++) {
    gev__wait_entry *e = &m->entries[i];
    if (e->armed && !e->fired)
      e->w->ops_->disarm(e);
    free(e->io);
    if (m->fired && e->w->ops_->release)
      e->w->ops_->release(e->w);
  }
  free(m->entries);
  free(m->fired);
  free(m->objs);
  free(m);
}

/* A multiwait over objs. A wait's entries point into the caller's array;
 * an iterator (ring) keeps a copy of its own and holds every object, since
 * it lives across calls. NULL with errno. */
static multiwait *mw_new(const gev_waitable *objs, size_t n, int ring) {
  size_t k = n ? n : 1;
  multiwait *m = calloc(1, sizeof *m);
  if (!m || !(m->entries = calloc(k, sizeof *m->entries)) ||
      (ring && (!(m->fired = calloc(k, sizeof *m->fired)) ||
                !(m->objs = malloc(k * sizeof *m->objs))))) {
    if (m) {
      free(m->entries);
      free(m->fired);
    }
    free(m);
    errno = ENOMEM;
    return NULL;
  }
  m->n = n;
  if (ring && n)
    objs = memcpy(m->objs, objs, n * sizeof *objs);
  for (size_t i = 0; i < n; i++) {
    gev__wait_entry *e = &m->entries[i];
    e->w = &objs[i];
    e->m = m;
    e->index = i;
    if (ring && e->w->ops_->hold)
      e->w->ops_->hold(e->w);
  }
  return m;
}

static int failed_now(const gev_waitable *w) {
  return w->ops_->failed && w->ops_->failed(w);
}

/* Arms every entry not ready yet; the ready ones fire at once. known:
 * the waitables' ready fields already tell (gev_wait just looked). */
static int mw_arm(multiwait *m, int known) {
  for (size_t i = 0; i < m->n; i++) {
    gev__wait_entry *e = &m->entries[i];
    if (known ? e->w->ready : e->w->ops_->ready(e->w)) {
      gev__wait_entry_fire(e, 0, failed_now(e->w));
      continue;
    }
    if (e->w->ops_->arm(e) < 0)
      return -1;
    e->armed = 1;
  }
  return 0;
}

/* ---- Checks and deadlines ----------------------------------------------- */

/* 0 if objs[i] may be waited on, else -1 with errno (also for objs NULL
 * with n > 0, given as i == n). */
static int check_one(const gev_waitable *objs, size_t i, size_t n) {
  if ((!objs && n) || (i < n && !objs[i].ops_)) {
    errno = EINVAL;
    return -1;
  }
  return i < n ? objs[i].ops_->check(&objs[i]) : 0;
}

static int check_objects(const gev_waitable *objs, size_t n) {
  for (size_t i = 0; i <= n; i++)
    if (check_one(objs, i, n) < 0)
      return -1;
  return 0;
}

static double deadline_of(double timeout) {
  return timeout >= 0 ? gev_monotonic() + timeout : -1;
}

static double remaining(double deadline) {
  if (deadline < 0)
    return -1;
  double left = deadline - gev_monotonic();
  return left > 0 ? left : 1e-9;
}

/* After a failed park: 1 if it was the call's own deadline that passed
 * (then "not yet" is the answer, not an error), 0 otherwise. */
static int own_timeout(double deadline) {
  return errno == ETIMEDOUT && deadline >= 0 && deadline <= gev_monotonic() &&
         !gev__scopes_expired(gev__task_current());
}

/* ---- wait --------------------------------------------------------------- */

/* Checks the objects, marks and counts those ready now, and the failed
 * among them. The count, or -1 with errno from a check. */
static long check_and_count(gev_waitable *objs, size_t n, size_t *failed) {
  long k = 0;
  *failed = 0;
  if (check_one(objs, n, n) < 0)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (check_one(objs, i, n) < 0)
      return -1;
    objs[i].ready = objs[i].ops_->ready(&objs[i]) != 0;
    k += objs[i].ready;
    *failed += objs[i].ready && failed_now(&objs[i]);
  }
  return k;
}

/* gev_wait, and gev_joinall with stop_on_failure: waits for want of the
 * objects, marks objs[i].ready, returns how many are ready or -1. */
static int wait_many(gev_waitable *objs, size_t n, double timeout, size_t want,
                     int stop_on_failure, const char *what) {
  double deadline = deadline_of(timeout);
  size_t failed, k;
  long ready;
  multiwait *m;
  int rc = 0, err = 0;
  if (gev__bad_timeout(timeout) ||
      (ready = check_and_count(objs, n, &failed)) < 0)
    return -1;
  k = (size_t)ready;
  if (k >= want || (stop_on_failure && failed) || timeout == 0)
    return (int)k; /* timeout 0 asks without waiting */
  if (!(m = mw_new(objs, n, 0)))
    return -1;
  m->need = want;
  m->stop_on_failure = stop_on_failure;
  if (mw_arm(m, 1) < 0)
    rc = -1;
  while (rc == 0 && !satisfied(m))
    rc = gev__waitq_wait(&m->q, remaining(deadline), what, NULL);
  err = rc < 0 ? errno : m->gone ? EIDRM : 0;
  for (size_t i = 0; i < n; i++)
    objs[i].ready = m->entries[i].fired && !m->entries[i].gone;
  k = m->ready;
  mw_free(m);
  errno = err;
  if (rc < 0 && own_timeout(deadline))
    return (int)k;
  return err ? -1 : (int)k;
}

GEV_EXTERN int gev_wait(gev_waitable *objs, size_t n, double timeout,
                        size_t count) {
  size_t want = count && count < n ? count : n;
  return wait_many(objs, n, timeout, want, 0, "wait");
}

/* ---- Greenlets ---------------------------------------------------------- */

static int greenlet_check(const gev_waitable *w) {
  return gev__greenlet_check(w->obj_);
}

static int greenlet_ready(const gev_waitable *w) {
  return gev__greenlet_finished(w->obj_);
}

static void greenlet_done(gev_greenlet *g, void *arg) {
  gev__wait_entry_fire(arg, 0, g->err != 0);
}

static int greenlet_arm(gev__wait_entry *e) {
  return gev__greenlet_link(e->w->obj_, greenlet_done, e, GEV__LINK_OWN_NODE);
}

static void greenlet_disarm(gev__wait_entry *e) {
  gev_greenlet_unlink(e->w->obj_, greenlet_done, e);
}

static int greenlet_failed(const gev_waitable *w) {
  return ((const gev_greenlet *)w->obj_)->err != 0;
}

static void greenlet_hold(const gev_waitable *w) { gev_greenlet_ref(w->obj_); }

static void greenlet_release(const gev_waitable *w) {
  gev_greenlet_unref(w->obj_);
}

const gev__waitable_ops gev__greenlet_waitable_ops = {
    .check = greenlet_check,
    .ready = greenlet_ready,
    .arm = greenlet_arm,
    .disarm = greenlet_disarm,
    .failed = greenlet_failed,
    .hold = greenlet_hold,
    .release = greenlet_release,
};

GEV_EXTERN gev_waitable gev_waitable_greenlet(gev_greenlet *g) {
  return (gev_waitable){
      .ops_ = &gev__greenlet_waitable_ops, .obj_ = g, .fd_ = -1};
}

/* A waitable per greenlet, in a heap array (NULL with ENOMEM). */
static gev_waitable *greenlet_waitables(gev_greenlet **gs, size_t n) {
  gev_waitable *ws;
  if (!gs && n) {
    errno = EINVAL;
    return NULL;
  }
  if (!(ws = malloc((n ? n : 1) * sizeof *ws))) {
    errno = ENOMEM;
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    ws[i] = gev_waitable_greenlet(gs[i]);
  return ws;
}

/* The count of finished greenlets among gs. */
static int count_finished(gev_greenlet **gs, size_t n) {
  int k = 0;
  for (size_t i = 0; i < n; i++)
    k += gev__greenlet_finished(gs[i]);
  return k;
}

/* gev_joinall waiting for every greenlet without stopping at a failure:
 * then waiting for each in turn is waiting for all, and costs a park only
 * for those not yet finished when their turn comes, with no link, wait
 * entry or allocation per greenlet (a batch of spawned greenlets that the
 * hub runs while the caller waits for the first costs one park). Returns
 * as gev_joinall. */
/* Vets the arguments of the calls over many greenlets: 0, or -1 with
 * errno (EINVAL for NULL or NaN, a handle's own errors). */
static int check_greenlets(gev_greenlet **gs, size_t n, double timeout) {
  if (!gs && n) {
    errno = EINVAL;
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    if (gev__greenlet_check(gs[i]) < 0)
      return -1;
  return gev__bad_timeout(timeout) ? -1 : 0;
}

static int join_each(gev_greenlet **gs, size_t n, double timeout) {
  double deadline;
  if (check_greenlets(gs, n, timeout) < 0)
    return -1;
  deadline = deadline_of(timeout);
  for (size_t i = 0; i < n; i++) {
    gev_greenlet *g = gs[i];
    int rc = 0;
    if (gev__greenlet_finished(g))
      continue;
    if (timeout == 0)
      return count_finished(gs, n); /* asks without waiting */
    gev_greenlet_ref(g); /* a link may drop the caller's handle meanwhile */
    while (rc == 0 && !gev__greenlet_finished(g))
      rc = gev__waitq_wait(&g->joiners, remaining(deadline), "joinall", NULL);
    if (rc < 0) {
      int err = errno;
      gev_greenlet_unref(g);
      errno = err;
      return own_timeout(deadline) ? count_finished(gs, n) : -1;
    }
    gev_greenlet_unref(g);
  }
  return (int)n;
}

GEV_EXTERN int gev_joinall(gev_greenlet **gs, size_t n, double timeout,
                           int flags, size_t count) {
  size_t want = count && count < n ? count : n;
  gev_waitable *ws;
  if (flags & ~GEV_JOIN_RAISE_ERROR) {
    errno = EINVAL;
    return -1;
  }
  if (want == n && !(flags & GEV_JOIN_RAISE_ERROR))
    return join_each(gs, n, timeout);
  if (!(ws = greenlet_waitables(gs, n)))
    return -1;
  int rc =
      wait_many(ws, n, timeout, want, flags & GEV_JOIN_RAISE_ERROR, "joinall");
  int err = errno;
  free(ws);
  errno = err;
  return rc;
}

GEV_EXTERN int gev_join_all(gev_greenlet **gs, size_t n, double timeout) {
  return gev_joinall(gs, n, timeout, GEV_JOIN_ALL, 0);
}

GEV_EXTERN int gev_killall(gev_greenlet **gs, size_t n, int block,
                           double timeout) {
  int k;
  if (check_greenlets(gs, n, timeout) < 0)
    return -1;
  if (block && gev_in_hub()) {
    errno = EPERM;
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    gev__greenlet_kill_now(gs[i]);
  if (!block)
    return 0;
  k = gev_joinall(gs, n, timeout, GEV_JOIN_ALL, 0);
  if (k < 0)
    return -1;
  if ((size_t)k < n) {
    errno = ETIMEDOUT;
    return -1;
  }
  return 0;
}

/* ---- Raw fds ------------------------------------------------------------- */

int gev__fd_ready_now(int fd, int events) {
  struct pollfd p = {.fd = fd};
  int rc;
  p.events = (short)(((events & GEV_WAIT_READ) ? POLLIN : 0) |
                     ((events & GEV_WAIT_WRITE) ? POLLOUT : 0));
  while ((rc = poll(&p, 1, 0)) < 0 && errno == EINTR)
    ;
  return rc > 0;
}

static void fd_fired(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop, (void)revents;
  gev__wait_entry_fire(w->data, 0, 0); /* stops w */
}

int gev__wait_entry_watch_fd(gev__wait_entry *e, int fd, int events) {
  if (!e->io && !(e->io = malloc(sizeof *e->io))) {
    errno = ENOMEM;
    return -1;
  }
  ev_io_init(e->io, fd_fired, fd,
             ((events & GEV_WAIT_READ) ? EV_READ : 0) |
                 ((events & GEV_WAIT_WRITE) ? EV_WRITE : 0));
  e->io->data = e;
  ev_io_start(gev_hub_loop(), e->io);
  gev__watcher_started();
  return 0;
}

void gev__wait_entry_unwatch_fd(gev__wait_entry *e) {
  if (!e->io || !ev_is_active(e->io))
    return;
  ev_io_stop(gev_hub_loop(), e->io);
  gev__watcher_stopped();
}

static int fd_check(const gev_waitable *w) {
  if (w->fd_ < 0) {
    errno = EBADF;
    return -1;
  }
  if (!(w->events_ & (GEV_WAIT_READ | GEV_WAIT_WRITE)) ||
      (w->events_ & ~(GEV_WAIT_READ | GEV_WAIT_WRITE))) {
    errno = EINVAL;
    return -1;
  }
  return gev__hub_get() ? 0 : -1;
}

static int fd_ready(const gev_waitable *w) {
  return gev__fd_ready_now(w->fd_, w->events_);
}

static int fd_arm(gev__wait_entry *e) {
  return gev__wait_entry_watch_fd(e, e->w->fd_, e->w->events_);
}

const gev__waitable_ops gev__fd_waitable_ops = {
    .check = fd_check,
    .ready = fd_ready,
    .arm = fd_arm,
    .disarm = gev__wait_entry_unwatch_fd,
};

GEV_EXTERN gev_waitable gev_waitable_fd(int fd, int events) {
  return (gev_waitable){
      .ops_ = &gev__fd_waitable_ops, .fd_ = fd, .events_ = events};
}

/* ---- iwait -------------------------------------------------------------- */

struct gev_iwait {
  multiwait *m;
  size_t returned;
  double deadline;
  int greenlets; /* made by gev_iwait_new: next() may return greenlets */
};

GEV_EXTERN gev_iwait *gev_iwait_new_any(const gev_waitable *objs, size_t n,
                                        double timeout) {
  gev_iwait *it;
  if (check_objects(objs, n) < 0 || gev__bad_timeout(timeout))
    return NULL;
  if (!(it = calloc(1, sizeof *it))) {
    errno = ENOMEM;
    return NULL;
  }
  it->deadline = deadline_of(timeout);
  if (!(it->m = mw_new(objs, n, 1)))
    goto out_free;
  if (mw_arm(it->m, 0) < 0)
    goto out_free_mw;
  return it;
out_free_mw:
  mw_free(it->m);
out_free:
  free(it);
  return NULL;
}

GEV_EXTERN gev_iwait *gev_iwait_new(gev_greenlet **gs, size_t n,
                                    double timeout) {
  gev_waitable *ws = greenlet_waitables(gs, n);
  if (!ws)
    return NULL;
  gev_iwait *it = gev_iwait_new_any(ws, n, timeout);
  int err = errno;
  free(ws);
  if (it)
    it->greenlets = 1;
  errno = err;
  return it;
}

GEV_EXTERN int gev_iwait_next_index(gev_iwait *it, size_t *index) {
  multiwait *m;
  if (!it) {
    errno = EINVAL;
    return -1;
  }
  m = it->m;
  while (m->nfired == 0) {
    if (it->returned == m->n)
      return 0;
    if (it->deadline >= 0 && gev_monotonic() >= it->deadline) {
      errno = ETIMEDOUT;
      return -1;
    }
    if (gev__waitq_wait(&m->q, remaining(it->deadline), "iwait", NULL) < 0)
      return -1;
  }
  size_t i = m->fired[m->head];
  m->head = (m->head + 1) % m->n;
  m->nfired--;
  it->returned++;
  if (index)
    *index = i;
  if (m->entries[i].gone) {
    errno = EIDRM;
    return -1;
  }
  return 1;
}

GEV_EXTERN gev_greenlet *gev_iwait_next(gev_iwait *it) {
  size_t i;
  int rc;
  if (it && !it->greenlets) {
    errno = EINVAL;
    return NULL;
  }
  rc = gev_iwait_next_index(it, &i);
  if (rc <= 0) {
    if (rc == 0)
      errno = 0;
    return NULL;
  }
  return it->m->entries[i].w->obj_;
}

GEV_EXTERN void gev_iwait_free(gev_iwait *it) {
  if (!it)
    return;
  mw_free(it->m);
  free(it);
}
