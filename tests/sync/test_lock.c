/* Semaphore, BoundedSemaphore, Lock, RLock. */
#include "synctest.h"

static gev_semaphore *sem;
static gev_lock *lock;
static gev_rlock *rlock;
static int fds;

static void setup(void) {
  fds = gev_test_fd_count();
  log_reset();
}

static void finish(void) {
  spawned_unref_all();
  gev_test_all_clean(fds);
}

/* Acquires sem, logs its id, holds it for a turn, releases. */
static void *sem_user(void *arg) {
  if (gev_semaphore_acquire(sem, -1) < 0) {
    log_add(-errno);
    return NULL;
  }
  log_add(I(arg));
  gev_sleep(0);
  gev_semaphore_release(sem);
  return NULL;
}

/* Acquires and logs, never releases (the test releases). */
static void *sem_taker(void *arg) {
  log_add(gev_semaphore_acquire(sem, -1) == 0 ? I(arg) : -errno);
  return NULL;
}

static void *sem_short_taker(void *arg) {
  log_add(gev_semaphore_acquire(sem, 0.01) == 0 ? I(arg) : -errno);
  return NULL;
}

START_TEST(semaphore_counts) {
  setup();
  sem = gev_semaphore_new(2);
  ck_assert_ptr_nonnull(sem);
  ck_assert_int_eq(gev_semaphore_value(sem), 2);
  ck_assert_int_eq(gev_semaphore_locked(sem), 0);
  ck_assert_int_eq(gev_semaphore_acquire(sem, -1), 0);
  ck_assert_int_eq(gev_semaphore_try_acquire(sem), 0);
  ck_assert_int_eq(gev_semaphore_locked(sem), 1);
  ck_assert_int_eq(gev_semaphore_try_acquire(sem), -1);
  ck_assert_int_eq(errno, EAGAIN);
  ck_assert_int_eq(gev_semaphore_acquire(sem, 0), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_semaphore_acquire(sem, 0.01), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_semaphore_release(sem), 0);
  ck_assert_int_eq(gev_semaphore_release(sem), 0);
  ck_assert_int_eq(gev_semaphore_release(sem), 0); /* unbounded: grows */
  ck_assert_int_eq(gev_semaphore_value(sem), 3);
  gev_semaphore_free(sem);
  finish();
}
END_TEST

START_TEST(semaphore_waiters_served_fifo) {
  setup();
  sem = gev_semaphore_new(1);
  for (int i = 1; i <= 6; i++)
    spawn_kept(sem_user, P(i));
  run_hub();
  ck_assert_str_eq(log_str(), "1 2 3 4 5 6");
  ck_assert_int_eq(gev_semaphore_value(sem), 1);
  gev_semaphore_free(sem);
  finish();
}
END_TEST

START_TEST(semaphore_release_goes_to_waiter_not_barger) {
  setup();
  sem = gev_semaphore_new(0);
  spawn_kept(sem_taker, P(1));
  ck_assert_int_eq(gev_sleep(0), 0); /* 1 parks */
  ck_assert_int_eq(gev_semaphore_release(sem), 0);
  /* the unit is 1's now, although 1 has not run yet */
  ck_assert_int_eq(gev_semaphore_try_acquire(sem), -1);
  ck_assert_int_eq(errno, EAGAIN);
  ck_assert_int_eq(gev_semaphore_value(sem), 0);
  run_hub();
  ck_assert_str_eq(log_str(), "1");
  gev_semaphore_free(sem);
  finish();
}
END_TEST

START_TEST(semaphore_release_skips_killed_waiter) {
  setup();
  sem = gev_semaphore_new(0);
  spawn_kept(sem_taker, P(1));
  gev_greenlet *b = spawn_kept(sem_taker, P(2));
  spawn_kept(sem_taker, P(3));
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(gev_greenlet_kill(b, 0, 0), 0);
  /* released before the killed waiter has even run */
  ck_assert_int_eq(gev_semaphore_release(sem), 0);
  ck_assert_int_eq(gev_semaphore_release(sem), 0);
  run_hub();
  /* the kill's wake was queued first, so the killed waiter logs first */
  ck_assert_str_eq(log_str(), strf("%d 1 3", -ECANCELED));
  ck_assert_int_eq(gev_semaphore_value(sem), 0);
  ck_assert_int_eq(gev_semaphore_release(sem), 0);
  ck_assert_int_eq(gev_semaphore_value(sem), 1);
  gev_semaphore_free(sem);
  finish();
}
END_TEST

START_TEST(semaphore_release_skips_timed_out_waiter) {
  setup();
  sem = gev_semaphore_new(0);
  spawn_kept(sem_short_taker, P(1));
  spawn_kept(sem_taker, P(2));
  ck_assert_int_eq(gev_sleep(0.05), 0); /* 1 times out */
  ck_assert_int_eq(gev_semaphore_release(sem), 0);
  run_hub();
  ck_assert_str_eq(log_str(), strf("%d 2", -ETIMEDOUT));
  ck_assert_int_eq(gev_semaphore_value(sem), 0);
  gev_semaphore_free(sem);
  finish();
}
END_TEST

static void *sem_killer(void *arg) {
  gev_greenlet_kill(arg, 0, 0);
  gev_semaphore_release(sem);
  return NULL;
}

START_TEST(semaphore_kill_and_release_in_same_turn) {
  /* A greenlet kills the first waiter and releases in one go: the unit
   * must reach the second waiter and nothing may be lost. */
  setup();
  sem = gev_semaphore_new(0);
  gev_greenlet *a = spawn_kept(sem_taker, P(1));
  spawn_kept(sem_taker, P(2));
  ck_assert_int_eq(gev_sleep(0), 0);
  spawn_kept(sem_killer, a);
  run_hub();
  ck_assert_str_eq(log_str(), strf("%d 2", -ECANCELED));
  gev_semaphore_free(sem);
  finish();
}
END_TEST

START_TEST(bounded_semaphore_refuses_extra_release) {
  setup();
  gev_semaphore s;
  ck_assert_int_eq(gev_bounded_semaphore_init(&s, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_bounded_semaphore_init(&s, 2), 0);
  ck_assert_int_eq(gev_semaphore_release(&s), -1);
  ck_assert_int_eq(errno, EOVERFLOW);
  ck_assert_int_eq(gev_semaphore_value(&s), 2);
  ck_assert_int_eq(gev_semaphore_acquire(&s, 0), 0);
  ck_assert_int_eq(gev_semaphore_release(&s), 0);
  ck_assert_int_eq(gev_semaphore_release(&s), -1);
  ck_assert_int_eq(errno, EOVERFLOW);
  gev_semaphore_destroy(&s);
  ck_assert_int_eq(gev_semaphore_acquire(&s, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  sem = gev_bounded_semaphore_new(1);
  ck_assert_ptr_nonnull(sem);
  gev_semaphore_free(sem);
  ck_assert_ptr_null(gev_bounded_semaphore_new(0));
  finish();
}
END_TEST

START_TEST(semaphore_destroy_wakes_waiters) {
  setup();
  sem = gev_semaphore_new(0);
  spawn_kept(sem_taker, P(1));
  spawn_kept(sem_taker, P(2));
  ck_assert_int_eq(gev_sleep(0), 0);
  gev_semaphore_free(sem);
  run_hub();
  ck_assert_str_eq(log_str(), strf("%d %d", -EIDRM, -EIDRM));
  ck_assert_int_eq(gev_semaphore_release(NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  finish();
}
END_TEST

/* ---- Lock ---------------------------------------------------------- */

static void *lock_user(void *arg) {
  if (gev_lock_acquire(lock, -1) < 0) {
    log_add(-errno);
    return NULL;
  }
  log_add(I(arg));
  gev_sleep(0.001);
  log_add(I(arg) * 10);
  gev_lock_release(lock);
  return NULL;
}

START_TEST(lock_excludes_and_orders) {
  setup();
  lock = gev_lock_new();
  ck_assert_int_eq(gev_lock_locked(lock), 0);
  ck_assert_int_eq(gev_lock_release(lock), -1);
  ck_assert_int_eq(errno, EPERM);
  for (int i = 1; i <= 3; i++)
    spawn_kept(lock_user, P(i));
  run_hub();
  ck_assert_str_eq(log_str(), "1 10 2 20 3 30");
  ck_assert_int_eq(gev_lock_try_acquire(lock), 0);
  ck_assert_int_eq(gev_lock_locked(lock), 1);
  ck_assert_int_eq(gev_lock_try_acquire(lock), -1);
  ck_assert_int_eq(errno, EAGAIN);
  ck_assert_int_eq(gev_lock_acquire(lock, 0.01), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  gev_lock_free(lock);
  finish();
}
END_TEST

static void *lock_releaser(void *arg) {
  log_add(gev_lock_release(lock) == 0 ? 1 : -errno);
  return NULL;
}

START_TEST(lock_released_by_another_greenlet) {
  setup();
  gev_lock l;
  lock = &l;
  ck_assert_int_eq(gev_lock_init(lock), 0);
  ck_assert_int_eq(gev_lock_acquire(lock, -1), 0);
  spawn_kept(lock_releaser, NULL);
  ck_assert_int_eq(gev_lock_acquire(lock, 5), 0); /* main parks */
  ck_assert_str_eq(log_str(), "1");
  run_hub();
  gev_lock_destroy(lock);
  ck_assert_int_eq(gev_lock_locked(lock), -1);
  ck_assert_int_eq(errno, EINVAL);
  finish();
}
END_TEST

/* ---- RLock --------------------------------------------------------- */

static void *rlock_user(void *arg) {
  if (gev_rlock_acquire(rlock, -1) < 0) {
    log_add(-errno);
    return NULL;
  }
  ck_assert_int_eq(gev_rlock_acquire(rlock, 0), 0); /* re-entry */
  ck_assert_int_eq(gev_rlock_is_owned(rlock), 1);
  log_add(I(arg));
  gev_sleep(0.001);
  ck_assert_int_eq(gev_rlock_release(rlock), 0);
  ck_assert_int_eq(gev_rlock_locked(rlock), 1); /* still held once */
  gev_sleep(0);
  ck_assert_int_eq(gev_rlock_release(rlock), 0);
  ck_assert_int_eq(gev_rlock_is_owned(rlock), 0);
  return NULL;
}

static void *rlock_intruder(void *arg) {
  log_add(gev_rlock_release(rlock) == 0 ? 1 : -errno);
  log_add(gev_rlock_try_acquire(rlock) == 0 ? 1 : -errno);
  return NULL;
}

START_TEST(rlock_reentrant_and_owner_checked) {
  setup();
  rlock = gev_rlock_new();
  ck_assert_int_eq(gev_rlock_release(rlock), -1);
  ck_assert_int_eq(errno, EPERM);
  ck_assert_int_eq(gev_rlock_acquire(rlock, -1), 0);
  ck_assert_int_eq(gev_rlock_acquire(rlock, -1), 0);
  ck_assert_int_eq(gev_rlock_try_acquire(rlock), 0);
  spawn_kept(rlock_intruder, NULL);
  ck_assert_int_eq(gev_sleep(0.001), 0);
  ck_assert_str_eq(log_str(), strf("%d %d", -EPERM, -EAGAIN));
  log_reset();
  for (int i = 1; i <= 3; i++)
    spawn_kept(rlock_user, P(i));
  ck_assert_int_eq(gev_sleep(0.001), 0);
  ck_assert_str_eq(log_str(), ""); /* main still holds it */
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(gev_rlock_release(rlock), 0);
  ck_assert_int_eq(gev_rlock_release(rlock), -1);
  ck_assert_int_eq(errno, EPERM);
  run_hub();
  ck_assert_str_eq(log_str(), "1 2 3");
  ck_assert_int_eq(gev_rlock_locked(rlock), 0);
  gev_rlock_free(rlock);
  finish();
}
END_TEST

static void *rlock_taker(void *arg) {
  if (gev_rlock_acquire(rlock, -1) < 0) {
    log_add(-errno); /* the lock may be gone (EIDRM): do not touch it */
    return NULL;
  }
  log_add(I(arg));
  ck_assert_int_eq(gev_rlock_is_owned(rlock), 1);
  gev_rlock_release(rlock);
  return NULL;
}

START_TEST(rlock_kill_and_timeout_while_waiting) {
  setup();
  rlock = gev_rlock_new();
  ck_assert_int_eq(gev_rlock_acquire(rlock, -1), 0);
  gev_greenlet *a = spawn_kept(rlock_taker, P(1));
  spawn_kept(rlock_taker, P(2));
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(gev_greenlet_kill(a, 0, 0), 0);
  ck_assert_int_eq(gev_rlock_release(rlock), 0);
  run_hub();
  ck_assert_str_eq(log_str(), strf("%d 2", -ECANCELED));
  ck_assert_int_eq(gev_rlock_locked(rlock), 0);
  /* a timed wait gives up; the lock stays with its owner */
  ck_assert_int_eq(gev_rlock_acquire(rlock, -1), 0);
  log_reset();
  spawn_kept(rlock_taker, P(3));
  ck_assert_int_eq(gev_sleep(0), 0);
  spawned_unref_all();
  gev_rlock_free(rlock); /* waiter gets EIDRM */
  run_hub();
  ck_assert_str_eq(log_str(), strf("%d", -EIDRM));
  finish();
}
END_TEST

static Suite *lock_suite(void) {
  Suite *s = suite_create("sync_lock");
  TCase *tc = tcase_create("semaphore");
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, semaphore_counts);
  tcase_add_test(tc, semaphore_waiters_served_fifo);
  tcase_add_test(tc, semaphore_release_goes_to_waiter_not_barger);
  tcase_add_test(tc, semaphore_release_skips_killed_waiter);
  tcase_add_test(tc, semaphore_release_skips_timed_out_waiter);
  tcase_add_test(tc, semaphore_kill_and_release_in_same_turn);
  tcase_add_test(tc, bounded_semaphore_refuses_extra_release);
  tcase_add_test(tc, semaphore_destroy_wakes_waiters);
  suite_add_tcase(s, tc);
  tc = tcase_create("lock");
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, lock_excludes_and_orders);
  tcase_add_test(tc, lock_released_by_another_greenlet);
  tcase_add_test(tc, rlock_reentrant_and_owner_checked);
  tcase_add_test(tc, rlock_kill_and_timeout_while_waiting);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(lock_suite)
