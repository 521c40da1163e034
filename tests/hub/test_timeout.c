/* Timeout scopes: expiry is sticky until cancelled, scopes nest, and the
 * call's own timeout is told apart from a scope's. */
#include <errno.h>
#include <unistd.h>

#include "gev/hub.h"
#include "testutil.h"

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) { gev_test_all_clean(fds_before); }

START_TEST(test_scope_expires_and_is_sticky) {
  gev_timeout *t = gev_timeout_start(0.02);
  ck_assert_ptr_nonnull(t);
  ck_assert(!gev_timeout_expired(t));
  ck_assert_int_eq(gev_sleep(5), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert(gev_timeout_expired(t));
  ck_assert_int_eq(gev_sleep(0), -1); /* sticky */
  ck_assert_int_eq(errno, ETIMEDOUT);
  gev_timeout_cancel(t);
  ck_assert_int_eq(gev_sleep(0.001), 0);
}
END_TEST

START_TEST(test_nested_earliest_wins) {
  gev_timeout *outer = gev_timeout_start(0.02);
  gev_timeout *inner = gev_timeout_start(10);
  ck_assert_int_eq(gev_sleep(5), -1);
  ck_assert(gev_timeout_expired(outer));
  ck_assert(!gev_timeout_expired(inner));
  gev_timeout_cancel(inner);
  gev_timeout_cancel(outer);
  outer = gev_timeout_start(10);
  inner = gev_timeout_start(0.01);
  ck_assert_int_eq(gev_sleep(5), -1);
  ck_assert(gev_timeout_expired(inner) && !gev_timeout_expired(outer));
  gev_timeout_cancel(inner);
  ck_assert_int_eq(gev_sleep(0.001), 0); /* outer still pending, fine */
  gev_timeout_cancel(outer);
}
END_TEST

START_TEST(test_call_timeout_inside_scope) {
  gev_timeout *t = gev_timeout_start(10);
  ck_assert_int_eq(gev_wait_read(0, 0.01) == 0 || errno == ETIMEDOUT, 1);
  ck_assert(!gev_timeout_expired(t));
  ck_assert_int_eq(gev_sleep(0.001), 0);
  gev_timeout_cancel(t);
}
END_TEST

START_TEST(test_cpu_bound_code_not_interrupted_but_next_call_fails) {
  gev_timeout *t = gev_timeout_start(0.01);
  usleep(20000); /* never yields */
  ck_assert(gev_timeout_expired(t));
  ck_assert_int_eq(gev_sleep(0), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  gev_timeout_cancel(t);
}
END_TEST

static void *scoped_joiner(void *arg) {
  gev_timeout *t = gev_timeout_start(0.02);
  int rc = gev_greenlet_join(arg, -1);
  int err = errno;
  int expired = gev_timeout_expired(t);
  gev_timeout_cancel(t);
  if (rc == 0 || err != ETIMEDOUT || !expired)
    return gev_fail(EPROTO, "join was not interrupted by the scope");
  return NULL;
}

static void *long_sleep(void *arg) {
  gev_sleep(10);
  return NULL;
}

START_TEST(test_scope_in_greenlet_interrupts_join) {
  gev_greenlet *sleeper = gev_spawn(long_sleep, NULL);
  gev_greenlet *j = gev_spawn(scoped_joiner, sleeper);
  ck_assert_int_eq(gev_greenlet_join(j, 2), 0);
  ck_assert_msg(gev_greenlet_successful(j), "%s", gev_greenlet_errmsg(j));
  gev_greenlet_kill(sleeper, 1, 1);
  gev_greenlet_unref(sleeper);
  gev_greenlet_unref(j);
}
END_TEST

static Suite *timeout_suite(void) {
  Suite *s = suite_create("timeout");
  TCase *tc = tcase_create("timeout");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_scope_expires_and_is_sticky);
  tcase_add_test(tc, test_nested_earliest_wins);
  tcase_add_test(tc, test_call_timeout_inside_scope);
  tcase_add_test(tc, test_cpu_bound_code_not_interrupted_but_next_call_fails);
  tcase_add_test(tc, test_scope_in_greenlet_interrupts_join);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(timeout_suite)
