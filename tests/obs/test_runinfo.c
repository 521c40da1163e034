/* Backtraces of parked coroutines (gev_coro_backtrace), run info with
 * them, and state dumps on a signal. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gev/hub.h"
#include "gev/monitor.h"
#include "gev/sync.h"
#include "obs_fixture.h"

static void *alpha(void *arg) {
  obs_park_in_alpha(30);
  return arg;
}
static void *beta(void *arg) {
  obs_park_in_beta(arg);
  return NULL;
}
static void *gamma_(void *arg) {
  obs_park_in_gamma(30);
  return arg;
}

static char *run_info_text(void) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  gev_print_run_info(f);
  fclose(f);
  return buf;
}

/* Three greenlets parked in three functions, in the given stack mode. */
static void spawn_three(gev_stack_mode mode, gev_greenlet **gs, gev_event *ev) {
  gev_spawn_opts o = {.stack_mode = mode};
  o.name = "in-alpha";
  gs[0] = gev_spawn_ex(&o, alpha, NULL);
  o.name = "in-beta";
  gs[1] = gev_spawn_ex(&o, beta, ev);
  o.name = "in-gamma";
  gs[2] = gev_spawn_ex(&o, gamma_, NULL);
  ck_assert_int_eq(gev_sleep(0.01), 0);
}

static void kill_three(gev_greenlet **gs, gev_event *ev) {
  ck_assert_int_eq(gev_killall(gs, 3, 1, 5), 0);
  for (int i = 0; i < 3; i++)
    gev_greenlet_unref(gs[i]);
  gev_event_free(ev);
}

static void check_run_info_names(gev_stack_mode mode) {
  gev_greenlet *gs[3];
  gev_event *ev = gev_event_new();
  spawn_three(mode, gs, ev);
  char *info = run_info_text();
  ck_assert_msg(strstr(info, "in-alpha: parked on sleep"), "%s", info);
  ck_assert_msg(strstr(info, "obs_park_in_alpha"), "%s", info);
  ck_assert_msg(strstr(info, "in-beta: parked on Event.wait"), "%s", info);
  ck_assert_msg(strstr(info, "obs_park_in_beta"), "%s", info);
  ck_assert_msg(strstr(info, "obs_park_in_gamma"), "%s", info);
  ck_assert_msg(strstr(info, "gev__waitq_wait"), "%s", info);
  /* Frames in order: the parking function's caller comes after it. */
  ck_assert_msg(strstr(info, "obs_park_in_alpha") < strstr(info, " alpha+0x"),
                "%s", info);
  ck_assert_msg(strstr(info, "main: running"), "%s", info);
  free(info);
  /* The parked greenlets are intact: each still answers. */
  ck_assert_int_eq(gev_event_set(ev), 0);
  ck_assert_int_eq(gev_greenlet_join(gs[1], 5), 0);
  kill_three(gs, ev);
}

START_TEST(test_run_info_dedicated) {
  check_run_info_names(GEV_STACK_DEDICATED);
}
END_TEST

/* Shared stacks: the greenlets' bytes are copied out but the first
 * two, and are brought back to be unwound. */
START_TEST(test_run_info_shared) {
  gev_coro_stats before, after;
  gev_coro_get_stats(&before);
  check_run_info_names(GEV_STACK_SHARED);
  gev_coro_get_stats(&after);
  ck_assert_uint_gt(after.shared_copies, before.shared_copies);
}
END_TEST

/* The log hook gets the same lines. */
START_TEST(test_log_run_info) {
  gev_greenlet *gs[3];
  gev_event *ev = gev_event_new();
  spawn_three(GEV_STACK_DEFAULT, gs, ev);
  gev_log_run_info(GEV_LOG_INFO);
  char *log = obs_log_text();
  ck_assert_msg(strstr(log, "in-gamma: parked on sleep"), "%s", log);
  ck_assert_msg(obs_log_count("obs_park_in_gamma") == 1, "%s", log);
  free(log);
  kill_three(gs, ev);
}
END_TEST

static void *report_from_shared(void *arg) {
  char **out = arg;
  *out = run_info_text();
  return NULL;
}

/* Made from a shared-mode greenlet, which runs on the region itself: the
 * others' saved stacks stay where they are and are reported so. */
START_TEST(test_run_info_from_shared_greenlet) {
  gev_greenlet *gs[3], *r;
  gev_event *ev = gev_event_new();
  gev_spawn_opts o = {.stack_mode = GEV_STACK_SHARED};
  char *info = NULL;
  spawn_three(GEV_STACK_SHARED, gs, ev);
  r = gev_spawn_ex(&o, report_from_shared, &info);
  ck_assert_int_eq(gev_greenlet_join(r, 5), 0);
  ck_assert_msg(strstr(info, "(stack saved ("), "%s", info);
  ck_assert_msg(strstr(info, "(making this report)"), "%s", info);
  free(info);
  gev_greenlet_unref(r);
  kill_three(gs, ev);
}
END_TEST

static gev_coro *main_coro;
static void *parker(void *arg) {
  gev_coro_switch(main_coro, arg, NULL);
  return NULL;
}

START_TEST(test_coro_backtrace_calls) {
  void *frames[16];
  char buf[256];
  main_coro = gev_coro_main();
  gev_coro *c = gev_coro_new(parker, NULL, NULL);
  ck_assert_int_eq(gev_coro_backtrace(c, frames, 16), 0); /* not started */
  ck_assert_int_eq(gev_coro_switch(c, NULL, NULL), 0);
  int n = gev_coro_backtrace(c, frames, 16), found = 0;
  ck_assert_int_ge(n, 3);
  for (int i = 0; i < n; i++)
    found |= strstr(gev_describe_address(frames[i], 0, buf, sizeof buf),
                    "parker+0x") != NULL;
  ck_assert(found);
  ck_assert_int_eq(gev_coro_backtrace(c, frames, 1), 1);
  ck_assert_int_eq(gev_coro_backtrace(c, NULL, 0), 0);
  n = gev_coro_backtrace(gev_coro_current(), frames, 16);
  ck_assert_int_ge(n, 1);
  ck_assert_ptr_nonnull(strstr(
      gev_describe_address(frames[0], 0, buf, sizeof buf), "test_coro_"));
  ck_assert_int_eq(gev_coro_backtrace(NULL, frames, 16), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_coro_backtrace(c, NULL, 4), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_coro_backtrace(c, frames, -1), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_coro_switch(c, NULL, NULL), 0); /* it finishes */
  ck_assert_int_eq(gev_coro_backtrace(c, frames, 16), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_coro_free(c), 0);
  ck_assert_ptr_nonnull(strstr(
      gev_describe_address((void *)parker, 1, buf, sizeof buf), "parker+0x0"));
  ck_assert_ptr_nonnull(
      strstr(gev_describe_address(NULL, 1, buf, sizeof buf), "??"));
}
END_TEST

static gev_coro *foreign;
static pthread_barrier_t barrier;
static void *idle_body(void *arg) { return arg; }
static void *make_foreign(void *arg) {
  (void)arg;
  foreign = gev_coro_new(idle_body, NULL, NULL);
  pthread_barrier_wait(&barrier); /* made */
  pthread_barrier_wait(&barrier); /* tested */
  gev_coro_free(foreign);
  gev_coro_thread_cleanup();
  return NULL;
}

START_TEST(test_coro_backtrace_other_thread) {
  pthread_t th;
  void *frames[4];
  pthread_barrier_init(&barrier, NULL, 2);
  pthread_create(&th, NULL, make_foreign, NULL);
  pthread_barrier_wait(&barrier);
  ck_assert_int_eq(gev_coro_backtrace(foreign, frames, 4), -1);
  ck_assert_int_eq(errno, EXDEV);
  pthread_barrier_wait(&barrier);
  pthread_join(th, NULL);
  pthread_barrier_destroy(&barrier);
}
END_TEST

/* gev_dump_on_signal: the signal makes the hub log run info with the
 * parked greenlets' backtraces. */
START_TEST(test_dump_on_signal) {
  gev_greenlet *gs[3];
  gev_event *ev = gev_event_new();
  struct sigaction sa;
  spawn_three(GEV_STACK_DEFAULT, gs, ev);
  ck_assert_int_eq(gev_dump_on_signal(SIGUSR2), 0);
  ck_assert_int_eq(gev_dump_on_signal(SIGUSR2), 0); /* once only */
  ck_assert_int_eq(gev_dump_on_signal(0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(obs_log_count("run info follows"), 0);
  kill(getpid(), SIGUSR2);
  ck_assert_int_eq(gev_sleep(0.05), 0);
  char *log = obs_log_text();
  ck_assert_msg(obs_log_count("run info follows") == 1, "%s", log);
  ck_assert_msg(strstr(log, "in-alpha: parked on sleep"), "%s", log);
  ck_assert_msg(strstr(log, "obs_park_in_beta"), "%s", log);
  free(log);
  kill_three(gs, ev);
  /* The handler goes with the hub (and so does the disposition). */
  gev_hub_destroy();
  sigaction(SIGUSR2, NULL, &sa);
  ck_assert(sa.sa_handler == SIG_DFL);
}
END_TEST

static Suite *runinfo_suite(void) {
  Suite *s = suite_create("runinfo");
  TCase *tc = tcase_create("runinfo");
  tcase_add_checked_fixture(tc, obs_setup, obs_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_run_info_dedicated);
  tcase_add_test(tc, test_run_info_shared);
  tcase_add_test(tc, test_log_run_info);
  tcase_add_test(tc, test_run_info_from_shared_greenlet);
  tcase_add_test(tc, test_coro_backtrace_calls);
  tcase_add_test(tc, test_coro_backtrace_other_thread);
  tcase_add_test(tc, test_dump_on_signal);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(runinfo_suite)
