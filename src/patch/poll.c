/*
 * Readiness calls: poll, ppoll, select, pselect, epoll_wait.
 *
 * Each asks the kernel first with a zero timeout; if nothing is ready and
 * the caller would wait, it parks on all of its fds at once (one heap
 * record, see park.c) and asks the kernel again when woken or timed out.
 * The kernel's answer is the one returned, so every event kind poll knows
 * (POLLHUP, POLLNVAL, POLLPRI ...) is reported exactly; the park only
 * decides when to ask. epoll_wait parks on the epoll fd itself, which is
 * readable while any fd of its set is ready: its set may have any size.
 */
#include "coop.h"

#include <stdlib.h>
#include <string.h>

/* A timeout given as a timespec, in seconds; -1 for none. Sets *bad for a
 * value the real call rejects (it then reports EINVAL). */
static double timespec_seconds(const struct timespec *ts, int *bad) {
  if (!ts)
    return -1;
  if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L) {
    *bad = 1;
    return 0;
  }
  return (double)ts->tv_sec + (double)ts->tv_nsec / 1e9;
}

/* Seconds left until deadline (< 0: none); 0 once it has passed. */
static double time_left(double deadline) {
  double left;
  if (deadline < 0)
    return -1;
  left = deadline - gev_monotonic();
  return left > 0 ? left : 0;
}

/* ---- poll ---------------------------------------------------------------- */

/* Cooperative poll with a timeout in seconds (< 0: none, never 0). */
static int coop_poll(struct pollfd *fds, nfds_t n, double timeout) {
  double deadline = timeout >= 0 ? gev_monotonic() + timeout : -1, left;
  int r, closed;
  for (;;) {
    r = GEV_REAL(poll)(fds, n, 0);
    if (r != 0)
      return r;
    if ((left = time_left(deadline)) == 0)
      return 0;
    r = gev__patch_park(fds, n, left, &closed);
    if (r < 0)
      return -1;
    if (r == 0)
      return GEV_REAL(poll)(fds, n, 0);
  }
}

GEV_PATCH_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout) {
  if (timeout == 0 || !gev__patch_coop())
    return GEV_REAL(poll)(fds, n, timeout);
  return coop_poll(fds, n, timeout < 0 ? -1 : timeout / 1000.0);
}

GEV_PATCH_EXPORT int ppoll(struct pollfd *fds, nfds_t n,
                           const struct timespec *ts, const sigset_t *mask) {
  int bad = 0;
  double timeout = timespec_seconds(ts, &bad);
  if (mask || bad || timeout == 0 || !gev__patch_coop())
    return GEV_REAL(ppoll)(fds, n, ts, mask);
  return coop_poll(fds, n, timeout);
}

int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts,
                const sigset_t *mask, size_t fdslen);
extern void __chk_fail(void) __attribute__((noreturn));

GEV_PATCH_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout,
                                size_t fdslen) {
  if (fdslen / sizeof *fds < n)
    __chk_fail();
  return poll(fds, n, timeout);
}

GEV_PATCH_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n,
                                 const struct timespec *ts,
                                 const sigset_t *mask, size_t fdslen) {
  if (fdslen / sizeof *fds < n)
    __chk_fail();
  return ppoll(fds, n, ts, mask);
}

/* ---- select -------------------------------------------------------------- */

/* The fds of select's read and write sets as pollfds (exceptional
 * conditions are not watched, see gev/patch.h). Returns how many, or -1
 * with ENOMEM. */
static int sets_to_pollfds(int nfds, const fd_set *r, const fd_set *w,
                           struct pollfd **out) {
  int n = 0;
  *out = NULL;
  for (int fd = 0; fd < nfds; fd++)
    n += (r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w));
  if (n == 0)
    return 0;
  if (!(*out = calloc((size_t)n, sizeof **out)))
    return -1;
  n = 0;
  for (int fd = 0; fd < nfds; fd++) {
    short ev = (short)((r && FD_ISSET(fd, r) ? POLLIN : 0) |
                       (w && FD_ISSET(fd, w) ? POLLOUT : 0));
    if (ev)
      (*out)[n++] = (struct pollfd){.fd = fd, .events = ev};
  }
  return n;
}

typedef struct select_args {
  int nfds;
  fd_set *sets[3]; /* the caller's read, write, except sets (or NULL) */
  fd_set saved[3]; /* what they held on entry */
} select_args;

/* The real select with a zero timeout on fresh copies of the sets. */
static int select_now(select_args *a) {
  struct timeval zero = {0, 0};
  for (int i = 0; i < 3; i++)
    if (a->sets[i])
      *a->sets[i] = a->saved[i];
  return GEV_REAL(select)(a->nfds, a->sets[0], a->sets[1], a->sets[2], &zero);
}

/* Cooperative select with a timeout in seconds (< 0: none, never 0). */
static int coop_select(select_args *a, double timeout) {
  double deadline = timeout >= 0 ? gev_monotonic() + timeout : -1, left;
  struct pollfd *pfds;
  int n, r, closed;
  for (int i = 0; i < 3; i++)
    if (a->sets[i])
      a->saved[i] = *a->sets[i];
  if ((n = sets_to_pollfds(a->nfds, a->sets[0], a->sets[1], &pfds)) < 0)
    return -1;
  for (;;) {
    r = select_now(a);
    if (r != 0 || (left = time_left(deadline)) == 0)
      break;
    r = gev__patch_park(pfds, (size_t)n, left, &closed);
    if (r <= 0) {
      if (r == 0)
        r = select_now(a);
      break;
    }
  }
  free(pfds);
  return r;
}

GEV_PATCH_EXPORT int select(int nfds, fd_set *restrict r, fd_set *restrict w,
                            fd_set *restrict x, struct timeval *restrict tv) {
  select_args a = {.nfds = nfds, .sets = {r, w, x}};
  double timeout = -1, deadline;
  int rc;
  if (tv) {
    if (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000)
      return GEV_REAL(select)(nfds, r, w, x, tv); /* EINVAL */
    timeout = (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
  }
  if (timeout == 0 || nfds < 0 || nfds > FD_SETSIZE || !gev__patch_coop())
    return GEV_REAL(select)(nfds, r, w, x, tv);
  deadline = timeout >= 0 ? gev_monotonic() + timeout : -1;
  rc = coop_select(&a, timeout);
  if (tv) { /* Linux reports the time left */
    double left = time_left(deadline);
    tv->tv_sec = (time_t)left;
    tv->tv_usec = (suseconds_t)((left - (double)tv->tv_sec) * 1e6);
  }
  return rc;
}

GEV_PATCH_EXPORT int pselect(int nfds, fd_set *restrict r, fd_set *restrict w,
                             fd_set *restrict x,
                             const struct timespec *restrict ts,
                             const sigset_t *restrict mask) {
  select_args a = {.nfds = nfds, .sets = {r, w, x}};
  int bad = 0;
  double timeout = timespec_seconds(ts, &bad);
  if (mask || bad || timeout == 0 || nfds < 0 || nfds > FD_SETSIZE ||
      !gev__patch_coop())
    return GEV_REAL(pselect)(nfds, r, w, x, ts, mask);
  return coop_select(&a, timeout);
}

/* ---- epoll_wait ---------------------------------------------------------- */

GEV_PATCH_EXPORT int epoll_wait(int epfd, struct epoll_event *events, int max,
                                int timeout) {
  struct pollfd pfd = {.fd = epfd, .events = POLLIN};
  double deadline, left;
  int r, closed;
  if (timeout == 0 || max <= 0 || !gev__patch_coop())
    return GEV_REAL(epoll_wait)(epfd, events, max, timeout);
  deadline = timeout > 0 ? gev_monotonic() + timeout / 1000.0 : -1;
  for (;;) {
    r = GEV_REAL(epoll_wait)(epfd, events, max, 0);
    if (r != 0 || (left = time_left(deadline)) == 0)
      return r;
    r = gev__patch_park(&pfd, 1, left, &closed);
    if (r < 0)
      return -1;
    if (r == 0)
      return GEV_REAL(epoll_wait)(epfd, events, max, 0);
  }
}
