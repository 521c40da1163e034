/* How sockets use the loop: a socket's watcher stays active between waits
 * (no epoll_ctl per request when the handler waits on something else),
 * without keeping the loop alive, and is stopped when its fd turns ready
 * while nobody waits (no busy loop). The test counts libev's epoll calls
 * by interposing them. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gev/net.h"
#include "gev/sync.h"
#include "nettest.h"

static unsigned long n_ctl, n_ctl_failed, n_wait;

/* libev reaches these through the PLT, so the definitions here win (the
 * build hides symbols by default: these must be visible). */
#define INTERPOSE __attribute__((visibility("default")))

INTERPOSE int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev) {
  static int (*real)(int, int, int, struct epoll_event *);
  if (!real)
    real = (int (*)(int, int, int, struct epoll_event *))dlsym(RTLD_NEXT,
                                                               "epoll_ctl");
  int rc = real(epfd, op, fd, ev);
  n_ctl++;
  n_ctl_failed += rc < 0;
  return rc;
}

INTERPOSE int epoll_wait(int epfd, struct epoll_event *evs, int max,
                         int timeout) {
  static int (*real)(int, struct epoll_event *, int, int);
  if (!real)
    real = (int (*)(int, struct epoll_event *, int, int))dlsym(RTLD_NEXT,
                                                               "epoll_wait");
  n_wait++;
  return real(epfd, evs, max, timeout);
}

static int fds;
static void setup(void) { fds = gev_test_fd_count(); }
static void teardown(void) { gev_test_all_clean(fds); }

static void socket_pair(gev_socket **a, gev_socket **b) {
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  *a = gev_socket_wrap(sv[0]);
  *b = gev_socket_wrap(sv[1]);
  ck_assert(*a && *b);
}

enum { CYCLES = 2000 };

/* Reads a byte, waits for something else (a timer: through the loop),
 * replies. */
static void *handler(void *arg) {
  gev_socket *s = arg;
  char c;
  while (gev_socket_recv(s, &c, 1, 0) == 1) {
    if (gev_sleep(1e-6) < 0 || gev_socket_sendall(s, &c, 1, 0) < 0)
      return gev_fail(errno, "handler");
  }
  return NULL;
}

START_TEST(waiting_between_read_and_reply_costs_no_epoll_ctl) {
  gev_socket *client, *server;
  socket_pair(&client, &server);
  gev_greenlet *g = gev_spawn(handler, server);
  char c = 'x';
  unsigned long ctl_before = n_ctl, failed_before = n_ctl_failed;
  for (int i = 0; i < CYCLES; i++) {
    ck_assert_int_eq(gev_socket_sendall(client, &c, 1, 0), 0);
    ck_assert_int_eq(gev_socket_recv(client, &c, 1, 0), 1);
  }
  unsigned long ctl = n_ctl - ctl_before, failed = n_ctl_failed - failed_before;
  ck_assert_msg(ctl < 20 && failed < 10,
                "%lu epoll_ctl calls (%lu failed) for %d cycles", ctl, failed,
                CYCLES);
  gev_socket_close(client);
  ck_assert_int_eq(gev_greenlet_get(g, 5, NULL), 0);
  gev_greenlet_unref(g);
  gev_socket_close(server);
}
END_TEST

/* After a wait the watcher stays active, but data that arrives while
 * nobody reads must not make every poll return at once. */
START_TEST(ready_socket_nobody_reads_does_not_spin) {
  gev_socket *a, *b;
  char c = 'x';
  socket_pair(&a, &b);
  ck_assert_int_eq(gev_socket_wait_read(b, 0.01), -1); /* leaves it idle */
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_socket_sendall(a, &c, 1, 0), 0);
  unsigned long before = n_wait;
  ck_assert_int_eq(gev_sleep(0.05), 0);
  ck_assert_msg(n_wait - before < 10, "%lu polls in a 50 ms sleep",
                n_wait - before);
  ck_assert_int_eq(gev_socket_recv(b, &c, 1, 0), 1);
  gev_socket_close(a);
  gev_socket_close(b);
}
END_TEST

static void *reader(void *arg) {
  char c;
  gev_socket_recv(arg, &c, 1, 0);
  return NULL;
}

/* An idle watcher does not keep the loop alive: the hub still notices
 * when nothing is left to do. */
START_TEST(idle_socket_does_not_keep_the_hub_busy) {
  gev_socket *a, *b;
  char c = 'x';
  socket_pair(&a, &b);
  gev_greenlet *g = gev_spawn(reader, b);
  ck_assert_int_eq(gev_sleep(0.001), 0); /* it waits */
  ck_assert_int_eq(gev_socket_sendall(a, &c, 1, 0), 0);
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  gev_greenlet_unref(g);
  ck_assert_int_eq(gev_run(), 0); /* returns although b stays open */
  g = gev_spawn(reader, b);
  ck_assert_int_eq(gev_greenlet_join(g, 0.01), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 5), 0);
  gev_greenlet_unref(g);
  ck_assert_int_eq(gev_run(), 0);
  gev_socket_close(a);
  gev_socket_close(b);
}
END_TEST

static Suite *socket_io_suite(void) {
  Suite *s = suite_create("socket_io");
  TCase *tc = tcase_create("socket_io");
  tcase_set_timeout(tc, 30);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, waiting_between_read_and_reply_costs_no_epoll_ctl);
  tcase_add_test(tc, ready_socket_nobody_reads_does_not_spin);
  tcase_add_test(tc, idle_socket_does_not_keep_the_hub_busy);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(socket_io_suite)
