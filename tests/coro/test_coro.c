/* Greenlet semantics of gev_coro, one rule per test. Runs in whichever
 * stack mode GEV_STACK_MODE selects. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "gev/coro.h"
#include "testutil.h"

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) {
  gev_test_coro_clean();
  ck_assert_int_eq(gev_test_fd_count(), fds_before);
}

/* ---- switch and values ---- */

static void *echo_twice(void *arg) {
  void *v;
  ck_assert_int_eq(
      gev_coro_switch(gev_coro_parent(gev_coro_current()), (char *)arg + 1, &v),
      0);
  return (char *)v + 10;
}

START_TEST(test_first_switch_calls_fn_and_values_flow) {
  char buf[64];
  void *r;
  gev_coro *c = gev_coro_new(echo_twice, NULL, NULL);
  ck_assert_ptr_nonnull(c);
  ck_assert(!gev_coro_started(c));
  ck_assert_int_eq(gev_coro_switch(c, buf, &r), 0);
  ck_assert_ptr_eq(r, buf + 1);
  ck_assert(gev_coro_started(c) && !gev_coro_dead(c));
  ck_assert_int_eq(gev_coro_switch(c, buf + 2, &r), 0);
  ck_assert_ptr_eq(r, buf + 12); /* return value goes to the parent */
  ck_assert(gev_coro_dead(c));
  ck_assert_int_eq(gev_coro_free(c), 0);
}
END_TEST

static void *count_up(void *arg) {
  uintptr_t n = (uintptr_t)arg;
  gev_coro *main = gev_coro_main();
  for (;;) {
    void *v;
    if (gev_coro_switch(main, (void *)(n + 1), &v) < 0)
      return NULL;
    n = (uintptr_t)v;
  }
}

START_TEST(test_long_switch_chain) {
  gev_coro *c = gev_coro_new(count_up, NULL, NULL);
  void *v = (void *)0;
  for (int i = 0; i < 100000; i++)
    ck_assert_int_eq(gev_coro_switch(c, v, &v), 0);
  ck_assert_uint_eq((uintptr_t)v, 100000);
  ck_assert_int_eq(gev_coro_free(c), 0); /* kills it: count_up returns */
}
END_TEST

START_TEST(test_switch_to_self_returns_value) {
  void *r;
  int x;
  ck_assert_int_eq(gev_coro_switch(gev_coro_current(), &x, &r), 0);
  ck_assert_ptr_eq(r, &x);
}
END_TEST

/* ---- parents and death ---- */

static void *return_arg(void *arg) { return arg; }

static gev_coro *g_child;
static void *spawn_child_then_finish(void *arg) {
  void *r;
  g_child = gev_coro_new(return_arg, NULL, NULL); /* parent = me */
  ck_assert_ptr_eq(gev_coro_parent(g_child), gev_coro_current());
  gev_coro_switch(gev_coro_main(), NULL, &r);
  return arg;
}

START_TEST(test_dead_target_forwards_to_live_ancestor) {
  int tag;
  void *r;
  gev_coro *c = gev_coro_new(spawn_child_then_finish, NULL, NULL);
  ck_assert_int_eq(gev_coro_switch(c, NULL, &r), 0);
  ck_assert_int_eq(gev_coro_switch(c, NULL, &r), 0); /* c finishes */
  ck_assert(gev_coro_dead(c));
  /* child's parent c is dead: the child's result lands in main. */
  ck_assert_int_eq(gev_coro_switch(g_child, &tag, &r), 0);
  ck_assert_ptr_eq(r, &tag);
  ck_assert(gev_coro_dead(g_child));
  /* switching to a dead coroutine reaches its nearest live ancestor */
  ck_assert_int_eq(gev_coro_switch(g_child, &tag, &r), 0);
  ck_assert_ptr_eq(r, &tag);
  ck_assert_int_eq(gev_coro_free(g_child), 0);
  ck_assert_int_eq(gev_coro_free(c), 0);
}
END_TEST

START_TEST(test_parent_cycle_refused) {
  gev_coro *a = gev_coro_new(return_arg, NULL, NULL);
  gev_coro *b = gev_coro_new(return_arg, a, NULL);
  ck_assert_int_eq(gev_coro_set_parent(a, b), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_coro_set_parent(a, a), -1);
  ck_assert_int_eq(gev_coro_set_parent(gev_coro_main(), a), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_coro_set_parent(b, gev_coro_main()), 0);
  ck_assert_int_eq(gev_coro_set_parent(a, b), 0);
  ck_assert_ptr_eq(gev_coro_parent(a), b);
  gev_coro_free(a);
  gev_coro_free(b);
}
END_TEST

START_TEST(test_main_queries) {
  gev_coro *m = gev_coro_main();
  ck_assert_ptr_eq(m, gev_coro_current());
  ck_assert(gev_coro_is_main(m) && gev_coro_started(m) && !gev_coro_dead(m));
  ck_assert_ptr_null(gev_coro_parent(m));
  ck_assert_str_eq(gev_coro_name(m), "main");
  ck_assert_int_eq(gev_coro_free(m), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_str_eq(gev_version(), GEV_VERSION_STRING);
}
END_TEST

/* ---- throw ---- */

static int g_caught;
static void *catch_one(void *arg) {
  void *r;
  int rc = gev_coro_switch(gev_coro_main(), NULL, &r);
  g_caught = rc < 0 ? errno : 0;
  return (void *)(uintptr_t)0x77;
}

START_TEST(test_throw_reports_error_in_target) {
  void *r;
  gev_coro *c = gev_coro_new(catch_one, NULL, NULL);
  gev_coro_switch(c, NULL, &r);
  ck_assert_int_eq(gev_coro_throw(c, EIO, &r), 0);
  ck_assert_int_eq(g_caught, EIO);
  ck_assert_uint_eq((uintptr_t)r, 0x77);
  gev_coro_free(c);
}
END_TEST

static int g_ran;
static void *mark_ran(void *arg) {
  g_ran = 1;
  return arg;
}

START_TEST(test_throw_into_unstarted_kills_without_running) {
  void *r = (void *)1;
  gev_coro *c = gev_coro_new(mark_ran, NULL, NULL);
  g_ran = 0;
  ck_assert_int_eq(gev_coro_throw(c, GEV_EKILL, &r), 0); /* kill: a value */
  ck_assert_ptr_null(r);
  ck_assert(gev_coro_dead(c) && !g_ran);
  gev_coro_free(c);

  c = gev_coro_new(mark_ran, NULL, NULL);
  ck_assert_int_eq(gev_coro_throw(c, EPIPE, &r), -1); /* error to parent */
  ck_assert_int_eq(errno, EPIPE);
  ck_assert(gev_coro_dead(c) && !g_ran);
  ck_assert_int_eq(gev_coro_exit_error(c), EPIPE);
  gev_coro_free(c);
}
END_TEST

static void *fail_with(void *arg) {
  gev_coro_set_exit_error((int)(uintptr_t)arg);
  return (void *)5;
}

START_TEST(test_exit_error_goes_to_parent_kill_is_success) {
  void *r;
  gev_coro *c = gev_coro_new(fail_with, NULL, NULL);
  ck_assert_int_eq(gev_coro_switch(c, (void *)(uintptr_t)ENOENT, &r), -1);
  ck_assert_int_eq(errno, ENOENT);
  ck_assert_int_eq(gev_coro_exit_error(c), ENOENT);
  gev_coro_free(c);
  c = gev_coro_new(fail_with, NULL, NULL);
  ck_assert_int_eq(gev_coro_switch(c, (void *)(uintptr_t)GEV_EKILL, &r), 0);
  ck_assert_uint_eq((uintptr_t)r, 5);
  ck_assert_int_eq(gev_coro_exit_error(c), 0);
  gev_coro_free(c);
  ck_assert_int_eq(gev_coro_set_exit_error(EIO), -1); /* main */
}
END_TEST

static int g_unwound;
static void *park_forever(void *arg) {
  void *r;
  while (gev_coro_switch(gev_coro_main(), NULL, &r) == 0)
    ;
  g_unwound = errno;
  return NULL;
}

START_TEST(test_free_suspended_throws_kill) {
  void *r;
  gev_coro *c = gev_coro_new(park_forever, NULL, NULL);
  gev_coro_switch(c, NULL, &r);
  g_unwound = 0;
  ck_assert_int_eq(gev_coro_free(c), 0);
  ck_assert_int_eq(g_unwound, GEV_EKILL);
}
END_TEST

START_TEST(test_kill_thrown_into_dead_is_a_plain_return) {
  void *r = (void *)1;
  gev_coro *c = gev_coro_new(return_arg, NULL, NULL);
  ck_assert_int_eq(gev_coro_switch(c, (void *)5, &r), 0);
  ck_assert(gev_coro_dead(c));
  /* greenlet: GreenletExit thrown into a dead greenlet becomes a return */
  ck_assert_int_eq(gev_coro_throw(c, GEV_EKILL, &r), 0);
  ck_assert_ptr_null(r);
  /* any other error still goes to the nearest live ancestor */
  ck_assert_int_eq(gev_coro_throw(c, EPIPE, &r), -1);
  ck_assert_int_eq(errno, EPIPE);
  gev_coro_free(c);
}
END_TEST

START_TEST(test_ids_are_never_reused) {
  unsigned long long seen[64];
  ck_assert_uint_ne(gev_coro_id(gev_coro_main()), 0);
  ck_assert_uint_eq(gev_coro_id(NULL), 0);
  for (int i = 0; i < 64; i++) {
    /* Freed blocks are recycled: the same address comes back at once. */
    gev_coro *c = gev_coro_new(return_arg, NULL, NULL);
    seen[i] = gev_coro_id(c);
    ck_assert_uint_ne(seen[i], gev_coro_id(gev_coro_main()));
    for (int j = 0; j < i; j++)
      ck_assert_uint_ne(seen[i], seen[j]);
    gev_coro_free(c);
  }
}
END_TEST

/* ---- bad input ---- */

START_TEST(test_bad_input) {
  gev_coro_opts o = {.stack_size = 1};
  ck_assert_ptr_null(gev_coro_new(NULL, NULL, NULL));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_ptr_null(gev_coro_new(return_arg, NULL, &o));
  ck_assert_int_eq(errno, EINVAL);
  o.stack_size = (size_t)1 << 40;
  ck_assert_ptr_null(gev_coro_new(return_arg, NULL, &o));
  o.stack_size = 0;
  o.stack_mode = (gev_stack_mode)42;
  ck_assert_ptr_null(gev_coro_new(return_arg, NULL, &o));
  ck_assert_int_eq(gev_coro_switch(NULL, NULL, NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_coro_throw(gev_coro_main(), 0, NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_coro_free(NULL), 0);
  ck_assert_int_eq(gev_coro_set_default_stack_mode((gev_stack_mode)9), -1);
}
END_TEST

static void *free_self(void *arg) {
  int rc = gev_coro_free(gev_coro_current());
  return (void *)(intptr_t)(rc < 0 ? errno : 0);
}

START_TEST(test_free_running_refused) {
  void *r;
  gev_coro *c = gev_coro_new(free_self, NULL, NULL);
  gev_coro_switch(c, NULL, &r);
  ck_assert_int_eq((intptr_t)r, EBUSY);
  gev_coro_free(c);
}
END_TEST

/* ---- threads ---- */

static gev_coro *g_other;
static void *thread_main(void *arg) {
  int *res = arg;
  res[0] = gev_coro_switch(g_other, NULL, NULL);
  res[1] = errno;
  res[2] = gev_coro_free(g_other);
  res[3] = errno;
  res[4] = gev_coro_thread_cleanup();
  return NULL;
}

START_TEST(test_switch_to_other_thread_refused) {
  pthread_t th;
  int res[5];
  g_other = gev_coro_new(mark_ran, NULL, NULL);
  g_ran = 0;
  ck_assert_int_eq(pthread_create(&th, NULL, thread_main, res), 0);
  pthread_join(th, NULL);
  ck_assert_int_eq(res[0], -1);
  ck_assert_int_eq(res[1], EXDEV);
  ck_assert_int_eq(res[2], -1);
  ck_assert_int_eq(res[3], EXDEV);
  ck_assert_int_eq(res[4], 0);
  ck_assert(!g_ran && !gev_coro_started(g_other));
  gev_coro_free(g_other);
}
END_TEST

static void *thread_pingpong(void *arg) {
  gev_coro *c = gev_coro_new(count_up, NULL, NULL);
  void *v = 0;
  for (int i = 0; i < 1000; i++)
    gev_coro_switch(c, v, &v);
  gev_coro_free(c);
  gev_coro_thread_cleanup();
  return v;
}

START_TEST(test_coroutines_in_two_threads) {
  pthread_t a, b;
  void *ra, *rb;
  pthread_create(&a, NULL, thread_pingpong, NULL);
  pthread_create(&b, NULL, thread_pingpong, NULL);
  pthread_join(a, &ra);
  pthread_join(b, &rb);
  ck_assert_uint_eq((uintptr_t)ra, 1000);
  ck_assert_uint_eq((uintptr_t)rb, 1000);
}
END_TEST

/* ---- floating point state follows the coroutine ---- */

static void *fp_work(void *arg) {
  volatile double x = 1.0;
  for (int i = 0; i < 100; i++) {
    x = x * 1.0000001 + 0.5;
    gev_coro_switch(gev_coro_main(), NULL, NULL);
  }
  return NULL;
}

START_TEST(test_callee_saved_state_survives) {
  gev_coro *c = gev_coro_new(fp_work, NULL, NULL);
  volatile double acc = 0;
  for (int i = 0; i < 100; i++) {
    acc += i * 0.25;
    gev_coro_switch(c, NULL, NULL);
  }
  ck_assert(acc == 1237.5);
  gev_coro_free(c);
}
END_TEST

static Suite *coro_suite(void) {
  Suite *s = suite_create("coro");
  TCase *tc = tcase_create("semantics");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_first_switch_calls_fn_and_values_flow);
  tcase_add_test(tc, test_long_switch_chain);
  tcase_add_test(tc, test_switch_to_self_returns_value);
  tcase_add_test(tc, test_dead_target_forwards_to_live_ancestor);
  tcase_add_test(tc, test_parent_cycle_refused);
  tcase_add_test(tc, test_main_queries);
  tcase_add_test(tc, test_throw_reports_error_in_target);
  tcase_add_test(tc, test_throw_into_unstarted_kills_without_running);
  tcase_add_test(tc, test_exit_error_goes_to_parent_kill_is_success);
  tcase_add_test(tc, test_free_suspended_throws_kill);
  tcase_add_test(tc, test_kill_thrown_into_dead_is_a_plain_return);
  tcase_add_test(tc, test_ids_are_never_reused);
  tcase_add_test(tc, test_bad_input);
  tcase_add_test(tc, test_free_running_refused);
  tcase_add_test(tc, test_switch_to_other_thread_refused);
  tcase_add_test(tc, test_coroutines_in_two_threads);
  tcase_add_test(tc, test_callee_saved_state_survives);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(coro_suite)
