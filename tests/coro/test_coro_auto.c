/* GEV_STACK_AUTO, the default stack mode: dedicated stacks while the
 * process holds fewer than gev_coro_auto_limit() stacks, shared ones past
 * it, and every coroutine runs correctly whichever it got. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "gev/coro.h"
#include "testutil.h"

static int fds_before;
static size_t limit_before;

static void setup(void) {
  fds_before = gev_test_fd_count();
  limit_before = gev_coro_auto_limit();
  /* No cached stack of an earlier test: this thread maps from zero. */
  ck_assert_int_eq(gev_coro_thread_cleanup(), 0);
}

static void teardown(void) {
  gev_coro_set_auto_limit(limit_before);
  gev_test_coro_clean();
  ck_assert_int_eq(gev_test_fd_count(), fds_before);
}

static const gev_coro_opts auto_opts = {.stack_mode = GEV_STACK_AUTO};

/* Keeps a value in a local across a park, and returns it plus what the
 * resume sent: the frames survived whichever stack they are on. */
static void *park_and_add(void *arg) {
  volatile uintptr_t local = (uintptr_t)arg;
  void *v;
  if (gev_coro_switch(gev_coro_main(), NULL, &v) < 0)
    return NULL;
  return (void *)(local + (uintptr_t)v);
}

static gev_coro *start_parked(uintptr_t arg) {
  gev_coro *c = gev_coro_new(park_and_add, NULL, &auto_opts);
  ck_assert_ptr_nonnull(c);
  ck_assert_int_eq(gev_coro_stack_mode(c), GEV_STACK_AUTO);
  ck_assert_int_eq(gev_coro_switch(c, (void *)arg, NULL), 0);
  return c;
}

static void finish(gev_coro *c, uintptr_t arg) {
  void *r;
  ck_assert_int_eq(gev_coro_switch(c, (void *)1000, &r), 0);
  ck_assert_uint_eq((uintptr_t)r, arg + 1000);
  ck_assert(gev_coro_dead(c));
  gev_coro_free(c);
}

START_TEST(test_within_budget_is_dedicated) {
  gev_coro *c = start_parked(7);
  ck_assert_int_eq(gev_coro_stack_mode(c), GEV_STACK_DEDICATED);
  finish(c, 7);
}
END_TEST

/* Three stacks allowed: three dedicated coroutines, then shared ones (the
 * shared region and scratch stack do not count against them, beyond). */
START_TEST(test_past_budget_is_shared) {
  gev_coro *cs[8];
  gev_coro_set_auto_limit(3);
  ck_assert_uint_eq(gev_coro_auto_limit(), 3);
  for (uintptr_t i = 0; i < 8; i++)
    cs[i] = start_parked(i);
  for (int i = 0; i < 8; i++)
    ck_assert_int_eq(gev_coro_stack_mode(cs[i]),
                     i < 3 ? GEV_STACK_DEDICATED : GEV_STACK_SHARED);
  /* Resumed out of order, each finds its frames intact. */
  for (uintptr_t i = 8; i-- > 0;)
    finish(cs[i], i);
}
END_TEST

/* At the budget, a stack that went back to the thread's cache is still
 * had: the next coroutine is dedicated again. */
START_TEST(test_cached_stack_is_reused_at_budget) {
  gev_coro *a, *b, *c;
  gev_coro_set_auto_limit(2);
  a = start_parked(1);
  b = start_parked(2);
  ck_assert_int_eq(gev_coro_stack_mode(b), GEV_STACK_DEDICATED);
  finish(a, 1); /* its stack goes to the cache */
  c = start_parked(3);
  ck_assert_int_eq(gev_coro_stack_mode(c), GEV_STACK_DEDICATED);
  finish(b, 2);
  finish(c, 3);
}
END_TEST

START_TEST(test_zero_budget_is_all_shared) {
  gev_coro_set_auto_limit(0);
  ck_assert_uint_eq(gev_coro_auto_limit(), 0);
  gev_coro *c = start_parked(5);
  ck_assert_int_eq(gev_coro_stack_mode(c), GEV_STACK_SHARED);
  finish(c, 5);
}
END_TEST

/* An auto coroutine killed before it ever ran never chose a stack. */
START_TEST(test_unstarted_auto_is_freed_without_a_stack) {
  gev_coro_stats st;
  gev_coro *c = gev_coro_new(park_and_add, NULL, &auto_opts);
  ck_assert_int_eq(gev_coro_free(c), 0);
  gev_coro_get_stats(&st);
  ck_assert_uint_eq(st.stacks_mapped, 0);
}
END_TEST

START_TEST(test_default_mode_accepts_auto) {
  gev_stack_mode old = gev_coro_default_stack_mode();
  ck_assert_int_eq(gev_coro_set_default_stack_mode(GEV_STACK_AUTO), 0);
  ck_assert_int_eq(gev_coro_default_stack_mode(), GEV_STACK_AUTO);
  gev_coro *c = gev_coro_new(park_and_add, NULL, NULL);
  ck_assert_int_eq(gev_coro_stack_mode(c), GEV_STACK_AUTO);
  gev_coro_free(c);
  ck_assert_int_eq(gev_coro_set_default_stack_mode(old), 0);
}
END_TEST

static Suite *auto_suite(void) {
  Suite *s = suite_create("coro-auto");
  TCase *tc = tcase_create("auto");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_within_budget_is_dedicated);
  tcase_add_test(tc, test_past_budget_is_shared);
  tcase_add_test(tc, test_cached_stack_is_reused_at_budget);
  tcase_add_test(tc, test_zero_budget_is_all_shared);
  tcase_add_test(tc, test_unstarted_auto_is_freed_without_a_stack);
  tcase_add_test(tc, test_default_mode_accepts_auto);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(auto_suite)
