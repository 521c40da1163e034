/*
 * Parking on fds (see coop.h, WAITS), the close wake-up, and the counters
 * of gev_patch_get_stats.
 *
 * A park is one heap record: a gev_event the caller waits on, one libev
 * io watcher per fd whose callback sets the event, and a timer for the
 * call's timeout. The first watcher to fire wakes the caller; any that
 * fire after it only set the event again. The caller then stops them all.
 * Nothing of it lives on the caller's stack, which in shared-stack mode is
 * copied away while parked.
 *
 * The timeout is the record's own timer rather than gev_event_wait's, so
 * that any ETIMEDOUT from the wait is known to be a gev_timeout scope of
 * the caller. The timer is checked against gev_monotonic() when it fires
 * and re-armed if libev's cached loop time made it early: a wait of T
 * seconds never ends before T seconds have passed since the call.
 *
 * close() runs in some coroutine of the thread while the hub is not in
 * libev (greenlets only ever run between the hub's loop iterations), so it
 * may stop a parked record's watchers itself before the fd goes away, then
 * set the record's event; the parked caller sees "closed" when it resumes.
 */
#include "coop.h"

#include <ev.h>
#include <pthread.h>
#include <stdlib.h>

#include "gev/sync.h"

typedef struct park {
  gev_event ready;          /* set by a watcher, the timer or close */
  struct park *prev, *next; /* on this thread's list (see mine) */
  unsigned fork_gen;        /* fork generation it was linked in */
  int closed;               /* one of its fds was closed by this thread */
  int timed_out;            /* the timer fired at or after the deadline */
  double deadline;          /* gev_monotonic() seconds; < 0 none */
  ev_timer timer;           /* timer.data: this record */
  size_t n;
  ev_io io[]; /* io[i].data: this record */
} park;

/* This thread's parked records and counters. A fork child starts afresh:
 * records linked before the fork (fork_gen differs) are left alone. */
static __thread struct {
  park *head;
  size_t parked, watchers;
} mine;
static atomic_uint fork_gen;

static void in_fork_child(void) {
  mine.head = NULL;
  mine.parked = mine.watchers = 0;
  atomic_fetch_add(&fork_gen, 1);
  gev__fd_reset_waiters();
}

__attribute__((constructor)) static void register_fork_handler(void) {
  pthread_atfork(NULL, NULL, in_fork_child);
}

static void fired(struct ev_loop *loop, ev_io *w, int revents) {
  park *p = w->data;
  (void)loop;
  (void)revents;
  gev_event_set(&p->ready);
}

static void timer_fired(struct ev_loop *loop, ev_timer *w, int revents) {
  park *p = w->data;
  double left = p->deadline - gev_monotonic();
  (void)revents;
  if (left > 0) {
    ev_timer_set(w, left, 0);
    ev_timer_start(loop, w);
    return;
  }
  p->timed_out = 1;
  gev_event_set(&p->ready);
}

/* libev interest for poll events; 0 when neither reading nor writing. */
static int ev_interest(short events) {
  int m = 0;
  if (events & (POLLIN | POLLRDNORM | POLLRDBAND | POLLRDHUP))
    m |= EV_READ;
  if (events & (POLLOUT | POLLWRNORM | POLLWRBAND))
    m |= EV_WRITE;
  return m;
}

static void link_park(park *p) {
  p->fork_gen = atomic_load(&fork_gen);
  p->next = mine.head;
  if (mine.head)
    mine.head->prev = p;
  mine.head = p;
  mine.parked++;
  for (size_t i = 0; i < p->n; i++)
    gev__fd_waiter(p->io[i].fd, 1);
}

static void stop_watcher(struct ev_loop *loop, ev_io *w) {
  if (ev_is_active(w)) {
    ev_io_stop(loop, w);
    mine.watchers--;
  }
}

static void unlink_park(struct ev_loop *loop, park *p) {
  int same_process = p->fork_gen == atomic_load(&fork_gen);
  for (size_t i = 0; i < p->n; i++) {
    if (same_process) {
      stop_watcher(loop, &p->io[i]);
      gev__fd_waiter(p->io[i].fd, -1);
    } else {
      ev_io_stop(loop, &p->io[i]);
    }
  }
  if (ev_is_active(&p->timer))
    ev_timer_stop(loop, &p->timer);
  if (!same_process)
    return;
  if (p->prev)
    p->prev->next = p->next;
  else
    mine.head = p->next;
  if (p->next)
    p->next->prev = p->prev;
  mine.parked--;
}

static park *park_new(struct ev_loop *loop, const struct pollfd *fds, size_t n,
                      double timeout) {
  park *p = calloc(1, sizeof *p + n * sizeof(ev_io));
  if (!p)
    return NULL;
  if (gev_event_init(&p->ready) < 0) {
    free(p);
    return NULL;
  }
  p->deadline = -1;
  if (timeout >= 0) {
    p->deadline = gev_monotonic() + timeout;
    ev_timer_init(&p->timer, timer_fired, timeout, 0);
    p->timer.data = p;
    ev_timer_start(loop, &p->timer);
  }
  for (size_t i = 0; i < n; i++) {
    int interest = ev_interest(fds[i].events);
    if (fds[i].fd < 0 || !interest)
      continue;
    ev_io_init(&p->io[p->n], fired, fds[i].fd, interest);
    p->io[p->n].data = p;
    ev_io_start(loop, &p->io[p->n]);
    mine.watchers++;
    p->n++;
  }
  return p;
}

int gev__patch_park(const struct pollfd *fds, size_t n, double timeout,
                    int *closed) {
  struct ev_loop *loop = gev_hub_loop();
  park *p;
  int rc, err, timed_out;
  if (!loop || !(p = park_new(loop, fds, n, timeout)))
    return -1;
  link_park(p);
  rc = gev_event_wait(&p->ready, -1);
  err = errno;
  unlink_park(loop, p);
  *closed = p->closed;
  timed_out = p->timed_out;
  gev_event_destroy(&p->ready);
  free(p);
  if (rc < 0) { /* killed, a gev_timeout scope, or gev refused to wait */
    errno = err;
    return -1;
  }
  return timed_out && !*closed ? 0 : 1;
}

/* The real poll for one fd, for callers outside a cooperative context. */
static int wait_fd_real(int fd, short events, double left) {
  struct pollfd pfd = {.fd = fd, .events = events};
  int ms = left < 0 ? -1 : (int)(left * 1000 + 0.999);
  int r = GEV_REAL(poll)(&pfd, 1, ms);
  if (r < 0)
    return -1;
  if (r == 0) {
    errno = EAGAIN;
    return -1;
  }
  if (pfd.revents & POLLNVAL) {
    errno = EBADF;
    return -1;
  }
  return 0;
}

int gev__patch_wait_fd(int fd, short events, double deadline) {
  struct pollfd pfd = {.fd = fd, .events = events};
  double left = -1;
  int closed = 0, r;
  if (deadline >= 0 && (left = deadline - gev_monotonic()) <= 0) {
    errno = EAGAIN;
    return -1;
  }
  if (!gev__patch_coop())
    return wait_fd_real(fd, events, left);
  r = gev__patch_park(&pfd, 1, left, &closed);
  if (closed) {
    errno = EBADF;
    return -1;
  }
  if (r == 0) {
    errno = EAGAIN;
    return -1;
  }
  return r < 0 ? -1 : 0;
}

void gev__patch_fd_closing(int fd) {
  gev__fd *e = gev__fd_slot(fd, 0);
  struct ev_loop *loop;
  if (!e || !atomic_load_explicit(&e->waiters, memory_order_relaxed) ||
      !mine.head || !gev_hub_exists() || !(loop = gev_hub_loop()))
    return;
  for (park *p = mine.head; p; p = p->next) {
    for (size_t i = 0; i < p->n; i++) {
      if (p->io[i].fd == fd && ev_is_active(&p->io[i])) {
        stop_watcher(loop, &p->io[i]);
        p->closed = 1;
        gev_event_set(&p->ready);
      }
    }
  }
}

GEV_EXTERN void gev_patch_get_stats(gev_patch_stats *out) {
  if (!out)
    return;
  out->parked = mine.parked;
  out->watchers = mine.watchers;
  out->addrinfos = gev__patch_addrinfo_count();
}
