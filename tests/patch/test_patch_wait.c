/* The readiness and sleep calls of the cooperative libc: poll, ppoll,
 * select, pselect and epoll_wait park on all their fds at once and report
 * what the kernel reports; nanosleep, clock_nanosleep, usleep and sleep
 * are gev_sleep. Timeouts never end early; kill, Timeout scopes and close
 * interrupt them. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "patchtest.h"

/* ---- poll ---------------------------------------------------------------- */

typedef struct polled {
  struct pollfd fds[3];
  int timeout;
  int r, err;
  double took;
} polled;

static void *do_poll(void *arg) {
  polled *p = arg;
  double t0 = pt_now();
  p->r = poll(p->fds, 3, p->timeout);
  p->err = errno;
  p->took = pt_now() - t0;
  return NULL;
}

/* Three sockets, data on the second only: poll parks on all three and
 * reports exactly that one. */
START_TEST(poll_parks_on_all_fds) {
  int fds = gev_test_fd_count(), sv[3][2];
  polled *p = calloc(1, sizeof *p);
  for (int i = 0; i < 3; i++) {
    pt_socketpair(sv[i]);
    p->fds[i] = (struct pollfd){.fd = sv[i][0], .events = POLLIN};
  }
  p->timeout = -1;
  pt_ticker *ticker = pt_ticker_start();
  pt_spawn(do_poll, p);
  pt_write_later(sv[1][1], "x", 1, 0.05);
  pt_join_all(5);
  ck_assert_int_eq(p->r, 1);
  ck_assert_int_eq(p->fds[0].revents, 0);
  ck_assert_int_eq(p->fds[1].revents, POLLIN);
  ck_assert_int_eq(p->fds[2].revents, 0);
  ck_assert(p->took >= 0.04); /* the writer's gev_sleep(0.05) */
  ck_assert_int_gt(pt_ticker_stop(ticker), 0);
  free(p);
  for (int i = 0; i < 3; i++)
    pt_close_pair(sv[i]);
  pt_all_clean(fds);
}
END_TEST

START_TEST(poll_write_and_hangup) {
  int fds = gev_test_fd_count(), sv[2];
  pt_socketpair(sv);
  struct pollfd p = {.fd = sv[0], .events = POLLOUT};
  ck_assert_int_eq(poll(&p, 1, 1000), 1); /* ready at once */
  ck_assert_int_eq(p.revents, POLLOUT);
  pt_close_later(sv[1], 0.02);
  p.events = POLLIN;
  ck_assert_int_eq(poll(&p, 1, -1), 1);
  ck_assert(p.revents & POLLHUP);
  pt_join_all(5);
  close(sv[0]);
  pt_all_clean(fds);
}
END_TEST

START_TEST(poll_timeout_not_early) {
  int fds = gev_test_fd_count(), sv[2];
  pt_socketpair(sv);
  struct pollfd p = {.fd = sv[0], .events = POLLIN};
  pt_ticker *ticker = pt_ticker_start();
  double t0 = pt_now();
  ck_assert_int_eq(poll(&p, 1, 100), 0);
  ck_assert(pt_now() - t0 >= 0.1);
  ck_assert_int_gt(pt_ticker_stop(ticker), 0);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

/* poll(NULL, 0, ms) is a sleep; it sleeps cooperatively. */
START_TEST(poll_no_fds_sleeps) {
  int fds = gev_test_fd_count();
  pt_ticker *ticker = pt_ticker_start();
  double t0 = pt_now();
  ck_assert_int_eq(poll(NULL, 0, 60), 0);
  ck_assert(pt_now() - t0 >= 0.06);
  ck_assert_int_gt(pt_ticker_stop(ticker), 0);
  pt_all_clean(fds);
}
END_TEST

/* Closing a polled fd wakes the poll, which reports POLLNVAL. */
START_TEST(poll_close_reports_nval) {
  int fds = gev_test_fd_count(), sv[2];
  polled *p = calloc(1, sizeof *p);
  pt_socketpair(sv);
  p->fds[0] = (struct pollfd){.fd = sv[0], .events = POLLIN};
  p->fds[1] = p->fds[2] = (struct pollfd){.fd = -1};
  p->timeout = 5000;
  pt_spawn(do_poll, p);
  pt_close_later(sv[0], 0.02);
  pt_join_all(5);
  ck_assert_int_eq(p->r, 1);
  ck_assert_int_eq(p->fds[0].revents, POLLNVAL);
  ck_assert(p->took < 4);
  free(p);
  close(sv[1]);
  pt_all_clean(fds);
}
END_TEST

START_TEST(poll_kill_ecanceled) {
  int fds = gev_test_fd_count(), sv[2];
  polled *p = calloc(1, sizeof *p);
  pt_socketpair(sv);
  p->fds[0] = (struct pollfd){.fd = sv[0], .events = POLLIN};
  p->fds[1] = p->fds[2] = (struct pollfd){.fd = -1};
  p->timeout = -1;
  gev_greenlet *g = pt_spawn(do_poll, p);
  ck_assert_int_eq(gev_sleep(0.02), 0);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 5), 0);
  ck_assert_int_eq(p->r, -1);
  ck_assert_int_eq(p->err, ECANCELED); /* never EINTR: libraries retry it */
  free(p);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

START_TEST(poll_timeout_scope_etimedout) {
  int fds = gev_test_fd_count(), sv[2];
  pt_socketpair(sv);
  struct pollfd p = {.fd = sv[0], .events = POLLIN};
  gev_timeout *t = gev_timeout_start(0.05);
  double t0 = pt_now();
  ck_assert_int_eq(poll(&p, 1, 5000), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert(pt_now() - t0 >= 0.04); /* gev's own Timeout */
  gev_timeout_cancel(t);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

START_TEST(ppoll_parks) {
  int fds = gev_test_fd_count(), sv[2];
  pt_socketpair(sv);
  struct pollfd p = {.fd = sv[0], .events = POLLIN};
  struct timespec ts = {5, 0}, short_ts = {0, 50000000};
  pt_ticker *ticker = pt_ticker_start();
  pt_write_later(sv[1], "y", 1, 0.03);
  ck_assert_int_eq(ppoll(&p, 1, &ts, NULL), 1);
  ck_assert_int_eq(p.revents, POLLIN);
  ck_assert_int_gt(pt_ticks(ticker), 0);
  char c;
  ck_assert_int_eq(read(sv[0], &c, 1), 1);
  double t0 = pt_now();
  ck_assert_int_eq(ppoll(&p, 1, &short_ts, NULL), 0);
  ck_assert(pt_now() - t0 >= 0.05);
  /* with a signal mask the real call runs: the hub waits meanwhile */
  sigset_t mask;
  sigemptyset(&mask);
  long before = pt_ticks(ticker);
  ck_assert_int_eq(ppoll(&p, 1, &short_ts, &mask), 0);
  ck_assert_int_eq(pt_ticks(ticker), before);
  pt_ticker_stop(ticker);
  pt_join_all(5);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

/* ---- select and pselect -------------------------------------------------- */

START_TEST(select_parks_and_updates_timeout) {
  int fds = gev_test_fd_count(), a[2], b[2];
  pt_socketpair(a);
  pt_socketpair(b);
  fd_set r;
  FD_ZERO(&r);
  FD_SET(a[0], &r);
  FD_SET(b[0], &r);
  struct timeval tv = {5, 0};
  pt_ticker *ticker = pt_ticker_start();
  pt_write_later(b[1], "s", 1, 0.03);
  int nfds = (a[0] > b[0] ? a[0] : b[0]) + 1;
  ck_assert_int_eq(select(nfds, &r, NULL, NULL, &tv), 1);
  ck_assert(!FD_ISSET(a[0], &r));
  ck_assert(FD_ISSET(b[0], &r));
  ck_assert(tv.tv_sec < 5); /* the time left, as Linux reports it */
  ck_assert(tv.tv_sec >= 4);
  ck_assert_int_gt(pt_ticker_stop(ticker), 0);
  /* timeout: the sets come back empty */
  char c;
  ck_assert_int_eq(read(b[0], &c, 1), 1);
  FD_ZERO(&r);
  FD_SET(a[0], &r);
  tv = (struct timeval){0, 50000};
  double t0 = pt_now();
  ck_assert_int_eq(select(a[0] + 1, &r, NULL, NULL, &tv), 0);
  ck_assert(pt_now() - t0 >= 0.05);
  ck_assert(!FD_ISSET(a[0], &r));
  ck_assert_int_eq(tv.tv_sec, 0);
  ck_assert_int_eq(tv.tv_usec, 0);
  /* writable at once */
  fd_set w;
  FD_ZERO(&w);
  FD_SET(a[0], &w);
  ck_assert_int_eq(select(a[0] + 1, NULL, &w, NULL, NULL), 1);
  pt_join_all(5);
  pt_close_pair(a);
  pt_close_pair(b);
  pt_all_clean(fds);
}
END_TEST

START_TEST(select_no_fds_sleeps) {
  int fds = gev_test_fd_count();
  struct timeval tv = {0, 60000};
  pt_ticker *ticker = pt_ticker_start();
  double t0 = pt_now();
  ck_assert_int_eq(select(0, NULL, NULL, NULL, &tv), 0);
  ck_assert(pt_now() - t0 >= 0.06);
  ck_assert_int_gt(pt_ticker_stop(ticker), 0);
  pt_all_clean(fds);
}
END_TEST

START_TEST(pselect_parks) {
  int fds = gev_test_fd_count(), sv[2];
  pt_socketpair(sv);
  fd_set r;
  FD_ZERO(&r);
  FD_SET(sv[0], &r);
  struct timespec ts = {5, 0};
  pt_ticker *ticker = pt_ticker_start();
  pt_write_later(sv[1], "p", 1, 0.03);
  ck_assert_int_eq(pselect(sv[0] + 1, &r, NULL, NULL, &ts, NULL), 1);
  ck_assert(FD_ISSET(sv[0], &r));
  ck_assert_int_eq(ts.tv_sec, 5); /* pselect leaves it alone */
  ck_assert_int_gt(pt_ticker_stop(ticker), 0);
  pt_join_all(5);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

/* ---- epoll_wait ---------------------------------------------------------- */

START_TEST(epoll_wait_parks) {
  int fds = gev_test_fd_count(), sv[2];
  pt_socketpair(sv);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = sv[0]}, out[4];
  ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev), 0);
  pt_ticker *ticker = pt_ticker_start();
  pt_write_later(sv[1], "e", 1, 0.03);
  ck_assert_int_eq(epoll_wait(ep, out, 4, -1), 1);
  ck_assert_int_eq(out[0].data.fd, sv[0]);
  ck_assert_int_gt(pt_ticker_stop(ticker), 0);
  char c;
  ck_assert_int_eq(read(sv[0], &c, 1), 1);
  double t0 = pt_now();
  ck_assert_int_eq(epoll_wait(ep, out, 4, 50), 0);
  ck_assert(pt_now() - t0 >= 0.05);
  pt_join_all(5);
  close(ep);
  pt_close_pair(sv);
  pt_all_clean(fds);
}
END_TEST

/* The epoll set may be large: gev waits on the epoll fd itself. */
START_TEST(epoll_wait_large_set) {
  enum { N = 300 };
  int fds = gev_test_fd_count(), (*sv)[2] = calloc(N, sizeof *sv);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < N; i++) {
    pt_socketpair(sv[i]);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_ADD, sv[i][0], &ev), 0);
  }
  pt_write_later(sv[N - 7][1], "L", 1, 0.03);
  struct epoll_event out[8];
  ck_assert_int_eq(epoll_wait(ep, out, 8, 5000), 1);
  ck_assert_uint_eq(out[0].data.u32, N - 7);
  pt_join_all(5);
  close(ep);
  for (int i = 0; i < N; i++)
    pt_close_pair(sv[i]);
  free(sv);
  pt_all_clean(fds);
}
END_TEST

static void *wait_epoll(void *arg) {
  struct epoll_event out[1];
  int r = epoll_wait(I(arg), out, 1, 5000);
  return P(r < 0 ? -errno : r);
}

START_TEST(epoll_wait_close_ebadf) {
  int fds = gev_test_fd_count();
  int ep = epoll_create1(0);
  gev_greenlet *g = pt_spawn(wait_epoll, P(ep));
  pt_close_later(ep, 0.02);
  void *v;
  ck_assert_int_eq(gev_greenlet_get(g, 5, &v), 0);
  ck_assert_int_eq(I(v), -EBADF);
  pt_all_clean(fds);
}
END_TEST

/* ---- Sleeps -------------------------------------------------------------- */

START_TEST(nanosleep_parks) {
  int fds = gev_test_fd_count();
  struct timespec ts = {0, 60000000};
  pt_ticker *ticker = pt_ticker_start();
  double t0 = pt_now();
  ck_assert_int_eq(nanosleep(&ts, NULL), 0);
  ck_assert(pt_now() - t0 >= 0.06);
  ck_assert_int_gt(pt_ticker_stop(ticker), 0);
  ts.tv_nsec = 2000000000L; /* invalid: the real call says so */
  ck_assert_int_eq(nanosleep(&ts, NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  pt_all_clean(fds);
}
END_TEST

typedef struct slept {
  int r, err;
  struct timespec rem;
} slept;

static void *long_nanosleep(void *arg) {
  slept *s = arg;
  struct timespec ts = {10, 0};
  s->r = nanosleep(&ts, &s->rem);
  s->err = errno;
  return NULL;
}

START_TEST(nanosleep_kill_reports_rem) {
  int fds = gev_test_fd_count();
  slept *s = calloc(1, sizeof *s);
  gev_greenlet *g = pt_spawn(long_nanosleep, s);
  ck_assert_int_eq(gev_sleep(0.02), 0);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 5), 0);
  ck_assert_int_eq(s->r, -1);
  ck_assert_int_eq(s->err, ECANCELED);
  ck_assert(s->rem.tv_sec >= 9 && s->rem.tv_sec <= 10);
  free(s);
  pt_all_clean(fds);
}
END_TEST

static void *clock_sleep_killed(void *arg) {
  slept *s = arg;
  struct timespec ts = {10, 0};
  errno = 1234;
  s->r = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &s->rem);
  s->err = errno;
  return NULL;
}

START_TEST(clock_nanosleep_relative_absolute) {
  int fds = gev_test_fd_count();
  pt_ticker *ticker = pt_ticker_start();
  struct timespec ts = {0, 50000000}, now;
  double t0 = pt_now();
  ck_assert_int_eq(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL), 0);
  ck_assert(pt_now() - t0 >= 0.05);
  /* absolute, on two clocks */
  clockid_t clocks[] = {CLOCK_MONOTONIC, CLOCK_REALTIME};
  for (int i = 0; i < 2; i++) {
    clock_gettime(clocks[i], &now);
    struct timespec until = now;
    until.tv_nsec += 50000000;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    ck_assert_int_eq(clock_nanosleep(clocks[i], TIMER_ABSTIME, &until, NULL),
                     0);
    clock_gettime(clocks[i], &now);
    ck_assert(now.tv_sec > until.tv_sec ||
              (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec));
  }
  ck_assert_int_gt(pt_ticker_stop(ticker), 0);
  /* killed: the error is returned, errno left alone */
  slept *s = calloc(1, sizeof *s);
  gev_greenlet *g = pt_spawn(clock_sleep_killed, s);
  ck_assert_int_eq(gev_sleep(0.02), 0);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 5), 0);
  ck_assert_int_eq(s->r, ECANCELED);
  ck_assert_int_eq(s->err, 1234);
  ck_assert(s->rem.tv_sec >= 9);
  free(s);
  pt_all_clean(fds);
}
END_TEST

START_TEST(usleep_and_sleep_park) {
  int fds = gev_test_fd_count();
  pt_ticker *ticker = pt_ticker_start();
  double t0 = pt_now();
  ck_assert_int_eq(usleep(50000), 0);
  ck_assert(pt_now() - t0 >= 0.05);
  long after_usleep = pt_ticks(ticker);
  ck_assert_int_gt(after_usleep, 0);
  t0 = pt_now();
  ck_assert_uint_eq(sleep(1), 0);
  ck_assert(pt_now() - t0 >= 1);
  ck_assert_int_gt(pt_ticker_stop(ticker), after_usleep);
  pt_all_clean(fds);
}
END_TEST

static void *long_sleep(void *arg) {
  (void)arg;
  return P(sleep(10));
}

START_TEST(sleep_killed_returns_time_left) {
  int fds = gev_test_fd_count();
  gev_greenlet *g = pt_spawn(long_sleep, NULL);
  ck_assert_int_eq(gev_sleep(0.02), 0);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 5), 0);
  ck_assert_int_eq(I(gev_greenlet_value(g)), 10);
  pt_all_clean(fds);
}
END_TEST

static void *note_order(void *arg) {
  int *order = arg;
  order[order[0]++ + 1] = 2;
  return NULL;
}

/* A sleep of 0 yields to the greenlets already queued. */
START_TEST(zero_sleep_yields) {
  int fds = gev_test_fd_count();
  int *order = calloc(4, sizeof *order);
  struct timespec zero = {0, 0};
  pt_spawn(note_order, order);
  ck_assert_int_eq(nanosleep(&zero, NULL), 0);
  order[order[0]++ + 1] = 1;
  ck_assert_int_eq(order[1], 2);
  ck_assert_int_eq(order[2], 1);
  free(order);
  pt_all_clean(fds);
}
END_TEST

/* No hub: the real sleeps, and still no hub afterwards. */
START_TEST(no_hub_sleeps_are_real) {
  int fds = gev_test_fd_count();
  struct timespec ts = {0, 20000000};
  struct pollfd none;
  ck_assert(!gev_hub_exists());
  ck_assert_int_eq(nanosleep(&ts, NULL), 0);
  ck_assert_int_eq(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL), 0);
  ck_assert_int_eq(usleep(1000), 0);
  ck_assert_int_eq(poll(&none, 0, 10), 0);
  ck_assert(!gev_hub_exists());
  pt_all_clean(fds);
}
END_TEST

static Suite *patch_wait_suite(void) {
  Suite *s = suite_create("patch_wait");
  TCase *tc = tcase_create("wait");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, poll_parks_on_all_fds);
  tcase_add_test(tc, poll_write_and_hangup);
  tcase_add_test(tc, poll_timeout_not_early);
  tcase_add_test(tc, poll_no_fds_sleeps);
  tcase_add_test(tc, poll_close_reports_nval);
  tcase_add_test(tc, poll_kill_ecanceled);
  tcase_add_test(tc, poll_timeout_scope_etimedout);
  tcase_add_test(tc, ppoll_parks);
  tcase_add_test(tc, select_parks_and_updates_timeout);
  tcase_add_test(tc, select_no_fds_sleeps);
  tcase_add_test(tc, pselect_parks);
  tcase_add_test(tc, epoll_wait_parks);
  tcase_add_test(tc, epoll_wait_large_set);
  tcase_add_test(tc, epoll_wait_close_ebadf);
  tcase_add_test(tc, nanosleep_parks);
  tcase_add_test(tc, nanosleep_kill_reports_rem);
  tcase_add_test(tc, clock_nanosleep_relative_absolute);
  tcase_add_test(tc, usleep_and_sleep_park);
  tcase_add_test(tc, sleep_killed_returns_time_left);
  tcase_add_test(tc, zero_sleep_yields);
  tcase_add_test(tc, no_hub_sleeps_are_real);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(patch_wait_suite)
