/* Threads that use the hub and exit without gev_hub_destroy(): the hub is
 * torn down by the thread's exit, before the coroutine state it stands on
 * is released, and nothing is left behind. Runs under ASan and Valgrind
 * (in the coro suite), in both stack modes. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#include "gev/dns.h"
#include "gev/hub.h"
#include "testutil.h"

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) {
  gev_test_coro_clean();
  ck_assert_int_eq(gev_test_fd_count(), fds_before);
}

static void *sleep_and_return(void *arg) {
  (void)arg;
  return (void *)(intptr_t)(gev_sleep(0.01) == 0 ? 0 : errno);
}

static void run_threads(void *(*fn)(void *), int n) {
  for (int i = 0; i < n; i++) {
    pthread_t th;
    void *rc;
    ck_assert_int_eq(pthread_create(&th, NULL, fn, NULL), 0);
    ck_assert_int_eq(pthread_join(th, &rc), 0);
    ck_assert_int_eq((int)(intptr_t)rc, 0);
  }
}

START_TEST(test_100_threads_sleep_and_return) {
  run_threads(sleep_and_return, 100);
}
END_TEST

static void *napper(void *arg) {
  gev_sleep(10);
  (*(int *)arg)++;
  return NULL;
}

static int unwound;

/* Leaves greenlets parked, a callback queued and a timer armed: the exit
 * kills and unwinds the greenlets as gev_hub_destroy would. */
static void *leave_work_behind(void *arg) {
  (void)arg;
  for (int i = 0; i < 3; i++)
    gev_spawn_raw(napper, &unwound);
  gev_sleep(0.001);
  return NULL;
}

START_TEST(test_exit_with_greenlets_alive_unwinds_them) {
  unwound = 0;
  run_threads(leave_work_behind, 10);
  ck_assert_int_eq(unwound, 30);
}
END_TEST

/* A thread that created its coroutine state and never touched the hub. */
static void *coro_only(void *arg) {
  (void)arg;
  return gev_coro_current() ? NULL : (void *)(intptr_t)ENOMEM;
}

START_TEST(test_exit_without_hub) { run_threads(coro_only, 20); }
END_TEST

/* Per-thread state of other layers (here the resolver's settings) hangs
 * from the same thread block and goes with it. */
static void *set_dns_servers(void *arg) {
  (void)arg;
  if (gev_dns_set_servers("127.0.0.1:5353,[::1]:5353") < 0)
    return (void *)(intptr_t)errno;
  return sleep_and_return(NULL);
}

START_TEST(test_exit_releases_other_layers_thread_state) {
  run_threads(set_dns_servers, 20);
}
END_TEST

static Suite *thread_exit_suite(void) {
  Suite *s = suite_create("thread-exit");
  TCase *tc = tcase_create("exit");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_100_threads_sleep_and_return);
  tcase_add_test(tc, test_exit_with_greenlets_alive_unwinds_them);
  tcase_add_test(tc, test_exit_without_hub);
  tcase_add_test(tc, test_exit_releases_other_layers_thread_state);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(thread_exit_suite)
