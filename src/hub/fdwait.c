/*
 * Waiting for fd readiness (see fdwait.h): the watcher life cycle, and the
 * hub's own state for it, created on first use: the waits it keeps for
 * raw fds, and the list of lazy waits whose watchers may be active while
 * nobody waits, which are stopped when the loop goes away.
 *
 * Watcher states, per direction:
 *   inactive  ev_io stopped;
 *   armed     active and referenced, a task parked on it;
 *   idle      active but unreferenced (ev_unref): a lazy wait that ended.
 * gev counts every active watcher in the hub's nwatchers, idle ones too.
 * libev requires an unreferenced watcher to be referenced again before it
 * is stopped, which stop_dir() does.
 */
#include <stdlib.h>
#include <string.h>

#include "hub/fdwait.h"
#include "hub/hub_internal.h"

struct gev__fdwaits {
  gev__hub *hub;      /* ro */
  gev__fdwait **byfd; /* raw-fd waits, indexed by fd (NULL: none yet) */
  size_t nfds;
  gev__fdwait *lazy;  /* lazy waits (sockets) of this hub */
  ev_cleanup cleanup; /* stops and frees everything with the loop */
};

/* ---- Watchers -------------------------------------------------------- */

static struct ev_loop *loop_of(const gev__fdwait *fw) { return fw->hub->loop; }

static void stop_dir(gev__fdwait *fw, int dir) {
  if (!ev_is_active(&fw->io[dir]))
    return;
  if (fw->idle[dir]) {
    ev_ref(loop_of(fw));
    fw->idle[dir] = 0;
  }
  ev_io_stop(loop_of(fw), &fw->io[dir]);
  fw->hub->nwatchers--;
}

static void fd_ready(struct ev_loop *loop, ev_io *w, int revents) {
  gev__fdwait *fw = w->data;
  int dir = w == &fw->io[GEV__FD_WRITE];
  (void)loop, (void)revents;
  if (fw->parked[dir])
    gev__wake(fw->parked[dir], NULL, 0);
  else
    stop_dir(fw, dir); /* else epoll reports it again every turn */
}

/* Makes the watcher of dir wait for its task. */
static void arm(gev__fdwait *fw, int dir) {
  ev_io *w = &fw->io[dir];
  if (fw->idle[dir]) {
    ev_ref(loop_of(fw));
    fw->idle[dir] = 0;
    return;
  }
  if (!fw->lazy) /* the fd may name another file since the last wait */
    ev_io_set(w, w->fd, dir == GEV__FD_WRITE ? EV_WRITE : EV_READ);
  ev_io_start(loop_of(fw), w);
  fw->hub->nwatchers++;
}

/* The wait of dir ended: idle (lazy) or stopped (eager). */
static void disarm(gev__fdwait *fw, int dir) {
  if (!ev_is_active(&fw->io[dir]))
    return; /* stopped meanwhile: the fd turned ready, or a close */
  if (!fw->lazy) {
    stop_dir(fw, dir);
    return;
  }
  ev_unref(loop_of(fw));
  fw->idle[dir] = 1;
}

int gev__fdwait_wait(gev__fdwait *fw, int dir, gev__task *t, double timeout,
                     const char *what) {
  int rc;
  if (fw->parked[dir]) {
    errno = EBUSY; /* concurrent object use */
    return -1;
  }
  if (timeout == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  arm(fw, dir);
  fw->parked[dir] = t;
  rc = gev__park_task(t, timeout, what, NULL);
  fw->parked[dir] = NULL;
  disarm(fw, dir);
  return rc;
}

/* Stops fw's watchers and takes it off the hub's list; wakes the tasks
 * parked on it with err, or (err 0) just forgets them. */
static void fdwait_end(gev__fdwait *fw, int err) {
  for (int dir = GEV__FD_READ; dir <= GEV__FD_WRITE; dir++) {
    stop_dir(fw, dir);
    if (fw->parked[dir] && err)
      gev__wake(fw->parked[dir], NULL, err);
    if (!err)
      fw->parked[dir] = NULL;
  }
  if (!fw->linked)
    return;
  if (fw->prev)
    fw->prev->next = fw->next;
  else
    fw->hub->fdwaits->lazy = fw->next;
  if (fw->next)
    fw->next->prev = fw->prev;
  fw->prev = fw->next = NULL;
  fw->linked = 0;
}

void gev__fdwait_stop(gev__fdwait *fw, int err) { fdwait_end(fw, err); }

/* ---- The hub's state --------------------------------------------------- */

/* The loop is being destroyed (with the hub, or after a fork): no task of
 * it will run again, so parked ones are forgotten, not woken. */
static void cleanup_cb(struct ev_loop *loop, ev_cleanup *w, int revents) {
  struct gev__fdwaits *st = w->data;
  (void)revents;
  /* Stopped before it is freed: libev's list of cleanup watchers must not
   * keep a pointer into freed memory while the other cleanups run. */
  ev_cleanup_stop(loop, w);
  while (st->lazy)
    fdwait_end(st->lazy, 0);
  for (size_t fd = 0; fd < st->nfds; fd++) {
    if (st->byfd[fd]) {
      fdwait_end(st->byfd[fd], 0);
      free(st->byfd[fd]);
    }
  }
  st->hub->fdwaits = NULL;
  free(st->byfd);
  free(st);
}

static struct gev__fdwaits *state_get(gev__hub *h) {
  struct gev__fdwaits *st = h->fdwaits;
  if (st)
    return st;
  if (!(st = calloc(1, sizeof *st)))
    return NULL;
  st->hub = h;
  ev_cleanup_init(&st->cleanup, cleanup_cb);
  st->cleanup.data = st;
  ev_cleanup_start(h->loop, &st->cleanup);
  h->fdwaits = st;
  return st;
}

int gev__fdwait_init(gev__fdwait *fw, gev__hub *h, int fd, int lazy) {
  struct gev__fdwaits *st = state_get(h);
  if (!st) {
    errno = ENOMEM;
    return -1;
  }
  memset(fw, 0, sizeof *fw);
  fw->hub = h;
  fw->lazy = (unsigned char)(lazy != 0);
  for (int dir = GEV__FD_READ; dir <= GEV__FD_WRITE; dir++) {
    ev_io_init(&fw->io[dir], fd_ready, fd,
               dir == GEV__FD_WRITE ? EV_WRITE : EV_READ);
    fw->io[dir].data = fw;
  }
  if (lazy) {
    fw->next = st->lazy;
    if (st->lazy)
      st->lazy->prev = fw;
    st->lazy = fw;
    fw->linked = 1;
  }
  return 0;
}

/* Makes room in the raw-fd table for fd. 0, or -1 with ENOMEM. */
static int table_grow(struct gev__fdwaits *st, int fd) {
  size_t n = st->nfds ? st->nfds : 64;
  while (n <= (size_t)fd)
    n *= 2;
  gev__fdwait **t = realloc(st->byfd, n * sizeof *t);
  if (!t)
    return -1;
  memset(t + st->nfds, 0, (n - st->nfds) * sizeof *t);
  st->byfd = t;
  st->nfds = n;
  return 0;
}

gev__fdwait *gev__fdwait_for_fd(gev__hub *h, int fd) {
  struct gev__fdwaits *st = state_get(h);
  gev__fdwait *fw;
  if (!st || ((size_t)fd >= st->nfds && table_grow(st, fd) < 0))
    goto out_nomem;
  if ((fw = st->byfd[fd]))
    return fw;
  if (!(fw = malloc(sizeof *fw)))
    goto out_nomem;
  gev__fdwait_init(fw, h, fd, 0);
  st->byfd[fd] = fw;
  return fw;
out_nomem:
  errno = ENOMEM;
  return NULL;
}
