/* Dedicated stacks: deep recursion, overflow reporting, the stack cache,
 * and create/run/free cycles that must not grow memory. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gev/coro.h"
#include "testutil.h"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) {
  gev_test_coro_clean();
  ck_assert_int_eq(gev_test_fd_count(), fds_before);
}

static long rss_kib(void) {
  long pages = 0, rss = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f)
    return -1;
  if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
    rss = -1;
  fclose(f);
  return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Recursion that uses about 1 KiB of stack per level and cannot be turned
 * into a loop by the compiler. */
static unsigned recurse(unsigned depth) {
  volatile char pad[1000];
  pad[0] = (char)depth;
  pad[999] = (char)(depth >> 8);
  if (depth == 0)
    return 1;
  return recurse(depth - 1) + (unsigned)(pad[0] != (char)depth) +
         (unsigned)(unsigned char)pad[999] * 0u + 1;
}

static void *deep(void *arg) {
  return (void *)(uintptr_t)recurse((unsigned)(uintptr_t)arg);
}

START_TEST(test_deep_recursion_within_limit) {
  gev_coro_opts o = {.stack_size = 256 * 1024,
                     .stack_mode = GEV_STACK_DEDICATED};
  gev_coro *c = gev_coro_new(deep, NULL, &o);
  void *r;
  ck_assert_int_eq(gev_coro_switch(c, (void *)(uintptr_t)200, &r), 0);
  ck_assert_uint_eq((uintptr_t)r, 201);
  gev_coro_free(c);
}
END_TEST

/* Overflows a coroutine with the given options in a forked child and
 * checks it died of SIGABRT saying "gev: stack overflow in coroutine
 * <name>". */
static void expect_overflow_report_limit(const gev_coro_opts *o,
                                         size_t auto_limit) {
  char buf[256] = {0}, want[128];
  int pipefd[2], st;
  ssize_t n, len = 0;
  ck_assert_int_eq(pipe(pipefd), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 2);
    gev_coro_set_auto_limit(auto_limit);
    gev_coro_set_shared_stack_size(128 * 1024);
    gev_coro *c = gev_coro_new(deep, NULL, o);
    gev_coro_switch(c, (void *)(uintptr_t)100000, NULL);
    _exit(0);
  }
  close(pipefd[1]);
  while ((n = read(pipefd[0], buf + len, sizeof buf - 1 - (size_t)len)) > 0)
    len += n;
  close(pipefd[0]);
  waitpid(pid, &st, 0);
  ck_assert(WIFSIGNALED(st));
  ck_assert_int_eq(WTERMSIG(st), SIGABRT);
  snprintf(want, sizeof want, "gev: stack overflow in coroutine %s", o->name);
  ck_assert_msg(strstr(buf, want), "stderr was: %s", buf);
}

static void expect_overflow_report(const gev_coro_opts *o) {
  expect_overflow_report_limit(o, gev_coro_auto_limit());
}

START_TEST(test_overflow_is_reported_with_name) {
  gev_coro_opts o = {.stack_size = 64 * 1024,
                     .name = "deep-diver",
                     .stack_mode = GEV_STACK_DEDICATED};
  expect_overflow_report(&o);
}
END_TEST

START_TEST(test_overflow_in_shared_mode_is_reported) {
  gev_coro_opts o = {.name = "shared-diver", .stack_mode = GEV_STACK_SHARED};
  expect_overflow_report(&o);
}
END_TEST

/* Auto mode within its budget: a dedicated stack, guard page and all. */
START_TEST(test_overflow_in_auto_mode_dedicated_is_reported) {
  gev_coro_opts o = {.stack_size = 64 * 1024,
                     .name = "auto-diver",
                     .stack_mode = GEV_STACK_AUTO};
  expect_overflow_report_limit(&o, 1000);
}
END_TEST

/* Auto mode past its budget: the shared region, whose guard page reports
 * it the same way. */
START_TEST(test_overflow_in_auto_mode_past_budget_is_reported) {
  gev_coro_opts o = {.name = "auto-shared-diver", .stack_mode = GEV_STACK_AUTO};
  expect_overflow_report_limit(&o, 0);
}
END_TEST

static void *noop(void *arg) { return arg; }

START_TEST(test_stack_cache_reuse) {
  gev_coro_stats st;
  gev_coro_opts o = {.stack_mode = GEV_STACK_DEDICATED};
  for (int i = 0; i < 10; i++) {
    gev_coro *c = gev_coro_new(noop, NULL, &o);
    ck_assert_int_eq(gev_coro_switch(c, NULL, NULL), 0);
    gev_coro_free(c);
  }
  gev_coro_get_stats(&st);
  ck_assert_uint_eq(st.stacks_mapped, 1); /* one stack, reused */
  ck_assert_uint_eq(st.stacks_cached, 1);
  /* Unstarted coroutines map nothing. */
  gev_coro *many[100];
  for (int i = 0; i < 100; i++)
    many[i] = gev_coro_new(noop, NULL, &o);
  gev_coro_get_stats(&st);
  ck_assert_uint_eq(st.stacks_mapped, 1);
  ck_assert_uint_eq(st.live, 100);
  for (int i = 0; i < 100; i++)
    gev_coro_free(many[i]);
}
END_TEST

START_TEST(test_100000_cycles_do_not_grow) {
  gev_coro_stats st;
  long before = 0;
  for (int i = 0; i < 100000; i++) {
    if (i == 1000)
      before = rss_kib();
    gev_coro *c = gev_coro_new(noop, NULL, NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(gev_coro_switch(c, (void *)1, NULL), 0);
    ck_assert_int_eq(gev_coro_free(c), 0);
  }
  gev_coro_get_stats(&st);
  ck_assert_uint_le(st.stacks_mapped, 2); /* a stack, maybe the region */
#ifndef __SANITIZE_ADDRESS__
  /* ASan's and Valgrind's quarantines hold freed blocks on purpose: RSS
   * says nothing there; stacks_mapped above still does. */
  if (!RUNNING_ON_VALGRIND)
    ck_assert_int_le(rss_kib() - before, 512);
#else
  (void)before;
#endif
}
END_TEST

static Suite *stack_suite(void) {
  Suite *s = suite_create("coro-stack");
  TCase *tc = tcase_create("stack");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_deep_recursion_within_limit);
  tcase_add_test(tc, test_overflow_is_reported_with_name);
  tcase_add_test(tc, test_overflow_in_shared_mode_is_reported);
  tcase_add_test(tc, test_overflow_in_auto_mode_dedicated_is_reported);
  tcase_add_test(tc, test_overflow_in_auto_mode_past_budget_is_reported);
  tcase_add_test(tc, test_stack_cache_reuse);
  tcase_add_test(tc, test_100000_cycles_do_not_grow);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(stack_suite)
