/*
 * Waiting: gevent's Waiter, waits on any libev watcher, fd readiness, and
 * sleep. All of them park through gev__park (hub.c), so kill, timeouts and
 * the hub's misuse checks behave the same everywhere.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub/child.h"
#include "hub/fdwait.h"
#include "hub/hub_internal.h"

/* ---- Waiter ------------------------------------------------------------ */

GEV_EXTERN void gev_waiter_init(gev_waiter *w) { memset(w, 0, sizeof *w); }

static void waiter_deliver(gev_waiter *w, void *value, int err,
                           const char *rule) {
  gev__task *t;
  if (!gev_in_hub())
    gev__die(rule);
  /* waiting is checked against its id: a coroutine that left without
   * clearing it (discarded after a fork) may have had its block reused. */
  if (w->waiting && gev_coro_id(w->waiting) == w->owner &&
      (t = gev__coro_upper(w->waiting)) && t->parked && !t->woken) {
    w->waiting = NULL;
    gev__wake(t, value, err);
    return;
  }
  w->value = value;
  w->err = err;
  w->state = 1;
}

GEV_EXTERN void gev_waiter_switch(gev_waiter *w, void *value) {
  waiter_deliver(w, value, 0, "Waiter.switch must be called from the hub");
}

GEV_EXTERN void gev_waiter_throw(gev_waiter *w, int err) {
  waiter_deliver(w, NULL, err > 0 ? err : EINVAL,
                 "Waiter.throw must be called from the hub");
}

GEV_EXTERN int gev_waiter_get(gev_waiter *w, void **value) {
  gev_coro *me;
  int rc;
  if (!w) {
    errno = EINVAL;
    return -1;
  }
  if (w->state) {
    w->state = 0;
    if (w->err) {
      errno = w->err;
      return -1;
    }
    if (value)
      *value = w->value;
    return 0;
  }
  if (w->waiting) {
    errno = EBUSY; /* concurrent object use */
    return -1;
  }
  me = gev_coro_current();
  w->waiting = me;
  w->owner = gev_coro_id(me);
  rc = gev__park(-1, "Waiter", value);
  if (w->waiting == me)
    w->waiting = NULL;
  return rc;
}

GEV_EXTERN int gev_waiter_ready(const gev_waiter *w) { return w && w->state; }

GEV_EXTERN void gev_waiter_clear(gev_waiter *w) {
  if (w) {
    w->state = 0;
    w->value = NULL;
    w->err = 0;
  }
}

/* ---- Any watcher ------------------------------------------------------- */

typedef void (*start_fn)(struct ev_loop *, void *);

static void watcher_fired(struct ev_loop *loop, ev_watcher *w, int revents) {
  (void)loop;
  gev__wake(w->data, (void *)(intptr_t)revents, 0);
}

static int start_watcher(struct ev_loop *l, void *w, gev_watcher_kind kind) {
  switch (kind) {
  case GEV_WATCH_IO:
    ev_io_start(l, w);
    break;
  case GEV_WATCH_TIMER:
    ev_timer_start(l, w);
    break;
  case GEV_WATCH_PERIODIC:
    ev_periodic_start(l, w);
    break;
  case GEV_WATCH_SIGNAL:
    ev_signal_start(l, w);
    break;
  case GEV_WATCH_CHILD:
    ev_child_start(l, w);
    break;
  case GEV_WATCH_STAT:
    ev_stat_start(l, w);
    break;
  case GEV_WATCH_IDLE:
    ev_idle_start(l, w);
    break;
  case GEV_WATCH_ASYNC:
    ev_async_start(l, w);
    break;
  default:
    return -1;
  }
  return 0;
}

static void stop_watcher(struct ev_loop *l, void *w, gev_watcher_kind kind) {
  switch (kind) {
  case GEV_WATCH_IO:
    ev_io_stop(l, w);
    break;
  case GEV_WATCH_TIMER:
    ev_timer_stop(l, w);
    break;
  case GEV_WATCH_PERIODIC:
    ev_periodic_stop(l, w);
    break;
  case GEV_WATCH_SIGNAL:
    ev_signal_stop(l, w);
    break;
  case GEV_WATCH_CHILD:
    ev_child_stop(l, w);
    break;
  case GEV_WATCH_STAT:
    ev_stat_stop(l, w);
    break;
  case GEV_WATCH_IDLE:
    ev_idle_stop(l, w);
    break;
  case GEV_WATCH_ASYNC:
    ev_async_stop(l, w);
    break;
  }
}

int gev__wait_raw_watcher(void *watcher, gev_watcher_kind kind,
                          double timeout) {
  ev_watcher *w = watcher;
  gev__hub *h = gev__hub_get();
  void *saved_data;
  void (*saved_cb)(struct ev_loop *, ev_watcher *, int);
  void *revents = NULL;
  int rc;
  saved_data = w->data;
  saved_cb = w->cb;
  w->data = gev__task_current();
  ev_set_cb(w, watcher_fired);
  /* A timer's "after" counts from libev's cached time, which is stale by
   * whatever the caller computed since the last poll. */
  if (kind == GEV_WATCH_TIMER || kind == GEV_WATCH_PERIODIC)
    ev_now_update(h->loop);
  start_watcher(h->loop, w, kind);
  h->nwatchers++;
  rc = gev__park(timeout, "watcher", &revents);
  stop_watcher(h->loop, w, kind);
  ev_clear_pending(h->loop, w);
  h->nwatchers--;
  w->data = saved_data;
  ev_set_cb(w, saved_cb);
  return rc < 0 ? -1 : (int)(intptr_t)revents;
}

GEV_EXTERN int gev_wait_watcher(void *watcher, gev_watcher_kind kind,
                                double timeout) {
  ev_watcher *w = watcher;
  if (!w || (unsigned)kind > GEV_WATCH_ASYNC || ev_is_active(w) ||
      isnan(timeout)) {
    errno = EINVAL;
    return -1;
  }
  if (gev__may_block() < 0)
    return -1;
  if (kind == GEV_WATCH_CHILD) /* pidfd or the reaper: see hub/child.h */
    return gev__child_wait_watcher(watcher, timeout);
  return gev__wait_raw_watcher(watcher, kind, timeout);
}

/* ---- fd readiness ------------------------------------------------------ */

/* One waiter per fd and direction, through the hub's wait for that fd
 * (fdwait.h: the same mechanism as sockets, eager since gev does not see
 * when a raw fd is closed). */
static int wait_fd(int fd, int dir, double timeout) {
  gev__task *t;
  gev__fdwait *fw;
  if (gev__bad_timeout(timeout))
    return -1;
  if (fd < 0) {
    errno = EBADF;
    return -1;
  }
  if (!(t = gev__blocking_task()) || !(fw = gev__fdwait_for_fd(t->hub, fd)))
    return -1;
  return gev__fdwait_wait(fw, dir, t, timeout,
                          dir == GEV__FD_WRITE ? "write fd" : "read fd");
}

GEV_EXTERN int gev_wait_read(int fd, double timeout) {
  return wait_fd(fd, GEV__FD_READ, timeout);
}

GEV_EXTERN int gev_wait_write(int fd, double timeout) {
  return wait_fd(fd, GEV__FD_WRITE, timeout);
}

/* ---- sleep ------------------------------------------------------------- */

GEV_EXTERN int gev_sleep(double seconds) {
  gev__task *t;
  if (gev__bad_timeout(seconds))
    return -1;
  if (seconds <= 0)
    return gev__yield();
  if (gev__park(seconds, "sleep", NULL) == 0)
    return 0; /* woken early by someone: still counts as slept */
  if (errno != ETIMEDOUT)
    return -1;
  t = gev__task_current();
  return t->scope_fired ? -1 : 0;
}
