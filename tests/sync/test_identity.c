/* Identity checks use names that are never reused: an RLock's owner is a
 * coroutine id (not the control block's address, which the next coroutine
 * may get), and objects remember their hub's id (not its address, which
 * the next hub may get). */
#include <errno.h>

#include "gev/hub.h"
#include "gev/sync.h"
#include "hub/park.h"
#include "testutil.h"

static int fds;
static void setup(void) { fds = gev_test_fd_count(); }
static void teardown(void) { gev_test_all_clean(fds); }

static gev_rlock *rlock;
static gev_coro *holder_coro, *next_coro;

static void *die_holding(void *arg) {
  (void)arg;
  holder_coro = gev_coro_current();
  gev_rlock_acquire(rlock, -1);
  return NULL; /* never releases */
}

static int next_try, next_err, next_owned;

static void *try_take(void *arg) {
  (void)arg;
  next_coro = gev_coro_current();
  next_try = gev_rlock_try_acquire(rlock);
  next_err = errno;
  next_owned = gev_rlock_is_owned(rlock);
  if (next_try == 0)
    gev_rlock_release(rlock);
  return NULL;
}

START_TEST(test_rlock_of_a_dead_greenlet_is_not_the_next_ones) {
  gev_greenlet *a, *b;
  rlock = gev_rlock_new();
  a = gev_spawn(die_holding, NULL);
  ck_assert_int_eq(gev_greenlet_join(a, 5), 0);
  ck_assert_int_eq(gev_rlock_locked(rlock), 1);
  b = gev_spawn(try_take, NULL);
  ck_assert_int_eq(gev_greenlet_join(b, 5), 0);
  /* The point of the test: b runs in a's recycled control block. */
  ck_assert_ptr_eq(next_coro, holder_coro);
  ck_assert_int_eq(next_try, -1);
  ck_assert_int_eq(next_err, EAGAIN);
  ck_assert_int_eq(next_owned, 0);
  ck_assert_int_eq(gev_rlock_is_owned(rlock), 0);
  gev_greenlet_unref(a);
  gev_greenlet_unref(b);
  gev_rlock_free(rlock);
}
END_TEST

static void *nothing(void *arg) { return arg; }

START_TEST(test_objects_of_a_destroyed_hub_are_foreign) {
  gev_semaphore *sem = gev_semaphore_new(1);
  gev_greenlet *g = gev_spawn(nothing, NULL);
  unsigned long long old_id = gev__hub_current_id();
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  ck_assert_int_eq(gev_hub_destroy(), 0);
  ck_assert_int_eq(gev_sleep(0), 0); /* a new hub, maybe at the same address */
  ck_assert_uint_ne(gev__hub_current_id(), old_id);
  ck_assert_int_eq(gev_semaphore_acquire(sem, 0), -1);
  ck_assert_int_eq(errno, EXDEV);
  ck_assert_int_eq(gev_greenlet_join(g, 0), -1);
  ck_assert_int_eq(errno, EXDEV);
  gev_greenlet_unref(g);
  free(sem); /* its hub is gone: nothing of it is left to destroy */
}
END_TEST

static Suite *identity_suite(void) {
  Suite *s = suite_create("identity");
  TCase *tc = tcase_create("identity");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_rlock_of_a_dead_greenlet_is_not_the_next_ones);
  tcase_add_test(tc, test_objects_of_a_destroyed_hub_are_foreign);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(identity_suite)
