/* The clock rule: a wait of T seconds never returns its timeout before T
 * seconds of monotonic time since the call, whatever the caller did before
 * it. Every test first computes for a while without yielding, which leaves
 * libev's cached loop time behind the real one, then waits and checks the
 * elapsed time from the call (a lower bound only: the machine is shared). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "gev/dns.h"
#include "gev/net.h"
#include "gev/sync.h"
#include "testutil.h"

#define BURN 0.1 /* seconds of computing before each wait */

static int fds_before;
static void setup(void) {
  fds_before = gev_test_fd_count();
  /* The loop polls once, so its cached time is fresh right now. */
  ck_assert_int_eq(gev_sleep(0.001), 0);
}
static void teardown(void) { gev_test_all_clean(fds_before); }

/* Computes for seconds without yielding to the hub. */
static void burn(double seconds) {
  double t0 = gev_monotonic();
  while (gev_monotonic() - t0 < seconds)
    ;
}

/* Asserts that at least want seconds passed since t0. */
#define ASSERT_WAITED(t0, want)                                                \
  do {                                                                         \
    double waited_ = gev_monotonic() - (t0);                                   \
    ck_assert_msg(waited_ >= (want), "waited %.3f s, asked for %.3f s",        \
                  waited_, (double)(want));                                    \
  } while (0)

/* Computes for BURN seconds, then makes call, which must fail with
 * ETIMEDOUT (errno is cleared first), no sooner than seconds after it
 * started. */
#define ASSERT_TIMES_OUT_AFTER_WORK(call, seconds)                             \
  do {                                                                         \
    burn(BURN);                                                                \
    double t0_ = gev_monotonic();                                              \
    errno = 0;                                                                 \
    (void)(call);                                                              \
    ck_assert_msg(errno == ETIMEDOUT, #call ": %s", strerror(errno));          \
    ASSERT_WAITED(t0_, seconds);                                               \
  } while (0)

static void *sleeper(void *arg) {
  gev_sleep(*(double *)arg);
  return NULL;
}

START_TEST(test_sleep_after_cpu_work) {
  burn(BURN);
  double t0 = gev_monotonic();
  ck_assert_int_eq(gev_sleep(0.2), 0);
  ASSERT_WAITED(t0, 0.2);
}
END_TEST

static double greenlet_slept;

static void *burn_then_sleep(void *arg) {
  burn(BURN);
  double t0 = gev_monotonic();
  if (gev_sleep(0.2) < 0)
    return gev_fail(errno, "sleep");
  greenlet_slept = gev_monotonic() - t0;
  return arg;
}

START_TEST(test_sleep_in_greenlet_after_cpu_work) {
  gev_greenlet *g = gev_spawn(burn_then_sleep, NULL);
  ck_assert_int_eq(gev_greenlet_get(g, -1, NULL), 0);
  ck_assert_msg(greenlet_slept >= 0.2, "slept %.3f s", greenlet_slept);
  gev_greenlet_unref(g);
}
END_TEST

START_TEST(test_event_wait_after_cpu_work) {
  gev_event *e = gev_event_new();
  ASSERT_TIMES_OUT_AFTER_WORK(gev_event_wait(e, 0.1), 0.1);
  gev_event_free(e);
}
END_TEST

START_TEST(test_queue_and_semaphore_after_cpu_work) {
  gev_queue *q = gev_queue_new(NULL);
  gev_semaphore *s = gev_semaphore_new(0);
  void *item;
  ASSERT_TIMES_OUT_AFTER_WORK(gev_queue_get(q, 0.1, &item), 0.1);
  ASSERT_TIMES_OUT_AFTER_WORK(gev_semaphore_acquire(s, 0.1), 0.1);
  gev_semaphore_free(s);
  gev_queue_free(q);
}
END_TEST

START_TEST(test_timeout_scope_after_cpu_work) {
  burn(BURN);
  double t0 = gev_monotonic();
  gev_timeout *t = gev_timeout_start(0.15);
  ck_assert_int_eq(gev_sleep(5), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ASSERT_WAITED(t0, 0.15);
  gev_timeout_cancel(t);
  /* A scope started before the work counts the work too, but no less. */
  t0 = gev_monotonic();
  t = gev_timeout_start(0.2);
  burn(BURN);
  ck_assert(!gev_timeout_expired(t));
  ck_assert_int_eq(gev_sleep(5), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ASSERT_WAITED(t0, 0.2);
  gev_timeout_cancel(t);
}
END_TEST

START_TEST(test_join_joinall_iwait_after_cpu_work) {
  double long_sleep = 5;
  gev_greenlet *g = gev_spawn(sleeper, &long_sleep);
  ASSERT_TIMES_OUT_AFTER_WORK(gev_greenlet_join(g, 0.1), 0.1);
  burn(BURN);
  double t0 = gev_monotonic();
  ck_assert_int_eq(gev_joinall(&g, 1, 0.1, 0, 0), 0);
  ASSERT_WAITED(t0, 0.1);
  burn(BURN);
  t0 = gev_monotonic();
  gev_iwait *it = gev_iwait_new(&g, 1, 0.1);
  burn(BURN);
  ck_assert_ptr_null(gev_iwait_next(it));
  ck_assert_int_eq(errno, ETIMEDOUT);
  ASSERT_WAITED(t0, 0.1);
  gev_iwait_free(it);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, -1), 0);
  gev_greenlet_unref(g);
}
END_TEST

static void *job(void *arg) {
  if (gev_sleep((double)(intptr_t)arg / 10) < 0)
    return gev_fail(errno, "sleep interrupted");
  return arg;
}

/* The README's example in a program whose start-up takes a while: the
 * spawns create the hub (and its loop), then the work, then the join. */
START_TEST(test_readme_example_with_startup_work) {
  gev_greenlet *jobs[3];
  ck_assert_int_eq(gev_hub_destroy(), 0);
  for (intptr_t i = 0; i < 3; i++)
    jobs[i] = gev_spawn(job, (void *)(i + 1));
  burn(0.05);
  ck_assert_int_eq(gev_joinall(jobs, 3, 2.0, 0, 0), 3);
  for (int i = 0; i < 3; i++) {
    ck_assert(gev_greenlet_successful(jobs[i]));
    gev_greenlet_unref(jobs[i]);
  }
}
END_TEST

static void *blocker(void *arg) {
  gev_pool *p = arg;
  gev_sleep(5);
  (void)p;
  return NULL;
}

START_TEST(test_pool_waits_after_cpu_work) {
  gev_pool *p = gev_pool_new(1);
  gev_greenlet *g = gev_pool_spawn(p, blocker, p, -1);
  ASSERT_TIMES_OUT_AFTER_WORK(gev_pool_spawn(p, blocker, p, 0.1), 0.1);
  ASSERT_TIMES_OUT_AFTER_WORK(gev_pool_join(p, 0.1), 0.1);
  ASSERT_TIMES_OUT_AFTER_WORK(gev_pool_wait_available(p, 0.1), 0.1);
  ck_assert_int_eq(gev_pool_kill(p, 1, -1), 0);
  gev_greenlet_unref(g);
  gev_pool_free(p);
}
END_TEST

static void *record_start(void *arg) {
  *(double *)arg = gev_monotonic();
  return NULL;
}

START_TEST(test_spawn_later_after_cpu_work) {
  static double started;
  burn(BURN);
  double t0 = gev_monotonic();
  gev_greenlet *g = gev_spawn_later(0.15, record_start, &started);
  ck_assert_int_eq(gev_greenlet_join(g, -1), 0);
  ck_assert_msg(started - t0 >= 0.15, "started after %.3f s", started - t0);
  gev_greenlet_unref(g);
}
END_TEST

START_TEST(test_fd_and_watcher_waits_after_cpu_work) {
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  ASSERT_TIMES_OUT_AFTER_WORK(gev_wait_read(p[0], 0.1), 0.1);
  ev_timer *t = malloc(sizeof *t);
  ev_timer_init(t, NULL, 0.1, 0);
  burn(BURN);
  double t0 = gev_monotonic();
  ck_assert_int_eq(gev_wait_watcher(t, GEV_WATCH_TIMER, -1), EV_TIMER);
  ASSERT_WAITED(t0, 0.1);
  free(t);
  close(p[0]);
  close(p[1]);
}
END_TEST

START_TEST(test_socket_timeouts_after_cpu_work) {
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  gev_socket *a = gev_socket_wrap(sv[0]), *b = gev_socket_wrap(sv[1]);
  char buf[4096];
  memset(buf, 'x', sizeof buf);
  ck_assert_int_eq(gev_socket_settimeout(a, 0.1), 0);
  ASSERT_TIMES_OUT_AFTER_WORK(gev_socket_recv(a, buf, sizeof buf, 0), 0.1);
  ASSERT_TIMES_OUT_AFTER_WORK(gev_socket_wait_read(a, 0.1), 0.1);
  /* sendall's timeout is a deadline for the whole call: nobody reads b,
   * so the buffers fill up and it must wait out the full 0.1 s. */
  burn(BURN);
  double t0 = gev_monotonic();
  int rc;
  while ((rc = gev_socket_sendall(a, buf, sizeof buf, 0)) == 0)
    t0 = gev_monotonic();
  ck_assert_int_eq(errno, ETIMEDOUT);
  ASSERT_WAITED(t0, 0.1);
  gev_socket_close(a);
  gev_socket_close(b);
}
END_TEST

/* A UDP "server" on loopback that never answers. */
static int black_hole(char *server, size_t len) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
  snprintf(server, len, "127.0.0.1:%d", ntohs(a.sin_port));
  return fd;
}

START_TEST(test_dns_timeouts_after_cpu_work) {
  char server[64];
  struct in_addr addr;
  int hole = black_hole(server, sizeof server);
  ck_assert_int_eq(gev_dns_set_servers(server), 0);
  ck_assert_int_eq(gev_dns_set_timeout(30), 0);
  ck_assert_int_eq(gev_dns_set_tries(1), 0);
  burn(BURN);
  double t0 = gev_monotonic();
  gev_timeout *t = gev_timeout_start(0.15);
  ck_assert_int_eq(gev_gethostbyname("nowhere.test", &addr), EAI_SYSTEM);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ASSERT_WAITED(t0, 0.15);
  gev_timeout_cancel(t);
  ASSERT_TIMES_OUT_AFTER_WORK(gev_create_connection("nowhere.test", 80, 0.15),
                              0.15);
  ck_assert_int_eq(gev_dns_set_servers(NULL), 0);
  ck_assert_int_eq(gev_dns_set_timeout(5), 0);
  ck_assert_int_eq(gev_dns_set_tries(4), 0);
  close(hole);
}
END_TEST

/* NaN is no timeout: every call refuses it with EINVAL, also where it would
 * not have waited, instead of waiting forever. */
#define ASSERT_EINVAL(call)                                                    \
  do {                                                                         \
    errno = 0;                                                                 \
    ck_assert_msg((call) == -1, #call " did not fail");                        \
    ck_assert_msg(errno == EINVAL, #call ": errno %d", errno);                 \
  } while (0)
#define ASSERT_NULL_EINVAL(call)                                               \
  do {                                                                         \
    errno = 0;                                                                 \
    ck_assert_msg((call) == NULL, #call " did not fail");                      \
    ck_assert_msg(errno == EINVAL, #call ": errno %d", errno);                 \
  } while (0)

START_TEST(test_nan_timeouts_refused) {
  double nan = NAN;
  void *item;
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  ASSERT_EINVAL(gev_sleep(nan));
  gev_greenlet *g = gev_spawn(sleeper, &(double){0.001});
  ASSERT_EINVAL(gev_greenlet_join(g, nan));
  ASSERT_EINVAL(gev_greenlet_get(g, nan, NULL));
  ASSERT_EINVAL(gev_joinall(&g, 1, nan, 0, 0));
  ASSERT_NULL_EINVAL(gev_iwait_new(&g, 1, nan));
  ASSERT_EINVAL(gev_greenlet_kill(g, 1, nan));
  ck_assert_int_eq(gev_greenlet_join(g, -1), 0);
  ASSERT_EINVAL(gev_greenlet_join(g, nan)); /* even when finished */
  gev_greenlet_unref(g);
  ASSERT_NULL_EINVAL(gev_spawn_later(nan, sleeper, &(double){0}));
  ASSERT_NULL_EINVAL(gev_timeout_start(nan));
  ASSERT_EINVAL(gev_wait_read(p[0], nan));
  ASSERT_EINVAL(gev_wait_write(p[1], nan)); /* ready at once */
  ev_timer *t = malloc(sizeof *t);
  ev_timer_init(t, NULL, 0.01, 0);
  ASSERT_EINVAL(gev_wait_watcher(t, GEV_WATCH_TIMER, nan));
  ck_assert(!ev_is_active(t));
  free(t);

  gev_event *e = gev_event_new();
  ASSERT_EINVAL(gev_event_wait(e, nan));
  gev_event_set(e);
  ASSERT_EINVAL(gev_event_wait(e, nan));
  gev_event_free(e);
  gev_async_result *r = gev_async_result_new();
  ASSERT_EINVAL(gev_async_result_get(r, nan, &item));
  ASSERT_EINVAL(gev_async_result_wait(r, nan));
  gev_async_result_free(r);
  gev_semaphore *sem = gev_semaphore_new(1);
  ASSERT_EINVAL(gev_semaphore_acquire(sem, nan));
  ck_assert_int_eq(gev_semaphore_value(sem), 1); /* nothing taken */
  gev_semaphore_free(sem);
  gev_rlock *rl = gev_rlock_new();
  ASSERT_EINVAL(gev_rlock_acquire(rl, nan));
  gev_rlock_free(rl);
  gev_queue *q = gev_queue_new(NULL);
  ASSERT_EINVAL(gev_queue_get(q, nan, &item));
  ASSERT_EINVAL(gev_queue_put(q, NULL, nan));
  ck_assert_int_eq(gev_queue_size(q), 0); /* nothing added */
  ASSERT_EINVAL(gev_queue_peek(q, nan, &item));
  ASSERT_EINVAL(gev_queue_join(q, nan));
  gev_queue_free(q);
  gev_channel *c = gev_channel_new();
  ASSERT_EINVAL(gev_channel_get(c, nan, &item));
  ASSERT_EINVAL(gev_channel_put(c, NULL, nan));
  gev_channel_free(c);
  gev_pool *pool = gev_pool_new(1);
  ASSERT_NULL_EINVAL(gev_pool_spawn(pool, sleeper, &(double){0}, nan));
  ck_assert_int_eq(gev_pool_count(pool), 0);
  ASSERT_EINVAL(gev_pool_join(pool, nan));
  ASSERT_EINVAL(gev_pool_wait_available(pool, nan));
  ASSERT_EINVAL(gev_pool_kill(pool, 1, nan));
  gev_pool_free(pool);

  close(p[0]);
  close(p[1]);
  gev_socket *s = gev_socket_new(AF_INET, SOCK_STREAM, 0);
  ck_assert_ptr_nonnull(s);
  ASSERT_EINVAL(gev_socket_settimeout(s, nan));
  ck_assert(gev_socket_gettimeout(s) < 0);
  ASSERT_EINVAL(gev_socket_wait_read(s, nan));
  ASSERT_EINVAL(gev_socket_wait_write(s, nan));
  gev_socket_close(s);
  ASSERT_NULL_EINVAL(gev_create_connection("127.0.0.1", 9, nan));
  ASSERT_EINVAL(gev_dns_set_timeout(nan));
}
END_TEST

static Suite *clock_suite(void) {
  Suite *s = suite_create("clock");
  TCase *tc = tcase_create("after cpu work");
  tcase_set_timeout(tc, 30);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_sleep_after_cpu_work);
  tcase_add_test(tc, test_sleep_in_greenlet_after_cpu_work);
  tcase_add_test(tc, test_event_wait_after_cpu_work);
  tcase_add_test(tc, test_queue_and_semaphore_after_cpu_work);
  tcase_add_test(tc, test_timeout_scope_after_cpu_work);
  tcase_add_test(tc, test_join_joinall_iwait_after_cpu_work);
  tcase_add_test(tc, test_readme_example_with_startup_work);
  tcase_add_test(tc, test_pool_waits_after_cpu_work);
  tcase_add_test(tc, test_spawn_later_after_cpu_work);
  tcase_add_test(tc, test_fd_and_watcher_waits_after_cpu_work);
  tcase_add_test(tc, test_socket_timeouts_after_cpu_work);
  tcase_add_test(tc, test_dns_timeouts_after_cpu_work);
  suite_add_tcase(s, tc);
  tc = tcase_create("nan");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_nan_timeouts_refused);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(clock_suite)
