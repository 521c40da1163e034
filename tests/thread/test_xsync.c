/* Sync objects across threads: sets and releases from threads without a
 * hub, waiters in 1, 2 and 8 hubs on one object, the ownership rules of
 * Lock and RLock, waiters of other hubs that time out, are killed or see
 * the object destroyed, and objects whose hub is gone. */
#include <stdlib.h>
#include <unistd.h>

#include "threadtest.h"

enum { WAITERS = 5, MAX_HUBS = 8 };

/* One test's shared state: the object and what the waiters saw. */
static gev_event *ev;
static gev_semaphore *sem;
static gev_async_result *ar;
static int ok, failed, registered;
static int fail_errno;

static void tally(int rc) {
  if (rc == 0) {
    count_add(&ok, 1);
  } else {
    fail_errno = errno;
    count_add(&failed, 1);
  }
}

static void reset(void) { ok = failed = registered = fail_errno = 0; }

/* ---- Waiters in several hubs -------------------------------------------- */

static void *event_waiter(void *arg) {
  (void)arg;
  count_add(&registered, 1);
  tally(gev_event_wait(ev, 20));
  return NULL;
}

static void *sem_waiter(void *arg) {
  (void)arg;
  count_add(&registered, 1);
  tally(gev_semaphore_acquire(sem, 20));
  return NULL;
}

static void *result_waiter(void *arg) {
  void *v = NULL;
  (void)arg;
  count_add(&registered, 1);
  int rc = gev_async_result_get(ar, 20, &v);
  tally(rc == 0 && v == P(42) ? 0 : -1);
  return NULL;
}

/* Spawns WAITERS greenlets of fn in this hub and joins them. */
static void run_waiters(void *fn) {
  gev_greenlet *gs[WAITERS];
  for (int i = 0; i < WAITERS; i++)
    gs[i] = gev_spawn((gev_greenlet_fn)fn, NULL);
  gev_join_all(gs, WAITERS, 30);
  for (int i = 0; i < WAITERS; i++)
    gev_greenlet_unref(gs[i]);
}

/* A plain thread that waits until every waiter has started, then does
 * what the test wants done from outside. */
static int total_waiters;
static void (*outside_action)(void);

static void *outsider(void *arg) {
  (void)arg;
  while (count_get(&registered) < total_waiters)
    usleep(1000);
  usleep(10000); /* let the waits reach their hubs */
  outside_action();
  return NULL;
}

/* Waiters in nhubs hubs (this thread's and nhubs - 1 others), the action
 * from a thread without a hub; every waiter must succeed. */
static void waiters_in_hubs(int nhubs, void *waiter, void (*action)(void)) {
  hub_thread threads[MAX_HUBS];
  reset();
  total_waiters = nhubs * WAITERS;
  outside_action = action;
  for (int i = 1; i < nhubs; i++)
    hub_thread_start(&threads[i], run_waiters, waiter);
  pthread_t out = plain_thread_start(outsider, NULL);
  run_waiters(waiter);
  for (int i = 1; i < nhubs; i++)
    ck_assert_int_eq(hub_thread_join(&threads[i]), 0);
  ck_assert_int_eq(pthread_join(out, NULL), 0);
  ck_assert_msg(count_get(&ok) == nhubs * WAITERS,
                "%d hubs: %d ok, %d failed (errno %d)", nhubs, ok, failed,
                fail_errno);
}

static void set_event(void) { ck_assert_int_eq(gev_event_set(ev), 0); }

static void release_all(void) {
  for (int i = 0; i < total_waiters; i++)
    ck_assert_int_eq(gev_semaphore_release(sem), 0);
}

static void set_result(void) {
  ck_assert_int_eq(gev_async_result_set(ar, P(42)), 0);
  ck_assert_int_eq(gev_async_result_set(ar, P(1)), -1);
  ck_assert_int_eq(errno, EALREADY);
}

START_TEST(event_set_from_a_thread_wakes_waiters_in_1_2_8_hubs) {
  thread_test_begin();
  int hubs[] = {1, 2, 8};
  for (int i = 0; i < 3; i++) {
    ev = gev_event_new();
    waiters_in_hubs(hubs[i], event_waiter, set_event);
    gev_event_free(ev);
  }
  thread_test_end();
}
END_TEST

START_TEST(semaphore_released_from_a_thread_in_1_2_8_hubs) {
  thread_test_begin();
  int hubs[] = {1, 2, 8};
  for (int i = 0; i < 3; i++) {
    sem = gev_semaphore_new(0);
    waiters_in_hubs(hubs[i], sem_waiter, release_all);
    ck_assert_int_eq(gev_semaphore_value(sem), 0);
    gev_semaphore_free(sem);
  }
  thread_test_end();
}
END_TEST

START_TEST(async_result_set_from_a_thread_in_1_2_8_hubs) {
  thread_test_begin();
  int hubs[] = {1, 2, 8};
  for (int i = 0; i < 3; i++) {
    ar = gev_async_result_new();
    waiters_in_hubs(hubs[i], result_waiter, set_result);
    ck_assert_int_eq(gev_async_result_ready(ar), 1);
    gev_async_result_free(ar);
  }
  thread_test_end();
}
END_TEST

/* ---- Errors set from another thread -------------------------------------- */

static void *set_error_msg(void *arg) {
  (void)arg;
  if (gev_async_result_set_error_msg(ar, EIO, "disk %d", 3) != 0)
    abort();
  return NULL;
}

START_TEST(async_result_error_from_a_thread) {
  thread_test_begin();
  ar = gev_async_result_new();
  pthread_t tid = plain_thread_start(set_error_msg, NULL);
  ck_assert_int_eq(gev_async_result_get(ar, 10, NULL), -1);
  ck_assert_int_eq(errno, EIO);
  ck_assert_str_eq(gev_async_result_errmsg(ar), "disk 3");
  ck_assert_int_eq(gev_async_result_successful(ar), 0);
  ck_assert_int_eq(pthread_join(tid, NULL), 0);
  gev_async_result_free(ar);
  thread_test_end();
}
END_TEST

/* ---- Lock and RLock ownership -------------------------------------------- */

static gev_lock *lock;
static gev_rlock *rlock;

static void *release_lock(void *arg) {
  (void)arg;
  return P(gev_lock_release(lock) == 0 ? 0 : errno);
}

static void *lock_taker(void *arg) {
  (void)arg;
  tally(gev_lock_acquire(lock, 10));
  return NULL;
}

START_TEST(lock_released_from_another_thread) {
  void *err;
  thread_test_begin();
  reset();
  lock = gev_lock_new();
  ck_assert_int_eq(gev_lock_acquire(lock, 0), 0);
  gev_greenlet *g = gev_spawn(lock_taker, NULL);
  ck_assert_int_eq(gev_sleep(0.01), 0); /* it waits for the lock */
  pthread_t tid = plain_thread_start(release_lock, NULL);
  ck_assert_int_eq(gev_greenlet_join(g, 10), 0);
  ck_assert_int_eq(pthread_join(tid, &err), 0);
  ck_assert_int_eq(I(err), 0);
  ck_assert_int_eq(ok, 1); /* the waiter got the released lock */
  ck_assert_int_eq(gev_lock_locked(lock), 1);
  ck_assert_int_eq(gev_lock_release(lock), 0);
  /* Releasing an unlocked Lock from another thread is refused at once. */
  tid = plain_thread_start(release_lock, NULL);
  ck_assert_int_eq(pthread_join(tid, &err), 0);
  ck_assert_int_eq(I(err), EPERM);
  ck_assert_int_eq(gev_lock_locked(lock), 0);
  gev_greenlet_unref(g);
  gev_lock_free(lock);
  thread_test_end();
}
END_TEST

static void *release_foreign_rlock(void *arg) {
  (void)arg;
  intptr_t rc = gev_rlock_release(rlock) == -1 && errno == EPERM;
  rc = rc && gev_rlock_is_owned(rlock) == 0 && gev_rlock_locked(rlock) == 1;
  return (void *)rc;
}

/* In another hub: waits for the RLock, re-enters it, releases it in its
 * own thread, level by level. */
static int b_steps;
static void rlock_in_other_hub(void *arg) {
  (void)arg;
  if (gev_rlock_acquire(rlock, 10) == 0)
    b_steps++;
  if (gev_rlock_is_owned(rlock) == 1)
    b_steps++;
  if (gev_rlock_acquire(rlock, 0) == 0) /* re-entered without asking */
    b_steps++;
  if (gev_rlock_release(rlock) == 0 && gev_rlock_is_owned(rlock) == 1)
    b_steps++;
  if (gev_rlock_release(rlock) == 0 && gev_rlock_is_owned(rlock) == 0)
    b_steps++;
}

static void *rlock_back(void *arg) {
  (void)arg;
  tally(gev_rlock_acquire(rlock, 10));
  if (gev_rlock_release(rlock) != 0)
    count_add(&failed, 1);
  return NULL;
}

START_TEST(rlock_owner_rules_across_threads) {
  void *res;
  hub_thread b;
  thread_test_begin();
  reset();
  b_steps = 0;
  rlock = gev_rlock_new();
  ck_assert_int_eq(gev_rlock_acquire(rlock, 0), 0);
  /* Another thread does not own it: refused, nothing changes. */
  pthread_t tid = plain_thread_start(release_foreign_rlock, NULL);
  ck_assert_int_eq(pthread_join(tid, &res), 0);
  ck_assert_int_eq((int)(intptr_t)res, 1);
  /* A coroutine of another hub waits for it, gets it when released. */
  hub_thread_start(&b, rlock_in_other_hub, NULL);
  ck_assert_int_eq(gev_sleep(0.05), 0);
  ck_assert_int_eq(gev_rlock_release(rlock), 0);
  ck_assert_int_eq(hub_thread_join(&b), 0);
  ck_assert_int_eq(b_steps, 5);
  /* It released it from its thread: it is free here again. */
  gev_greenlet *g = gev_spawn(rlock_back, NULL);
  ck_assert_int_eq(gev_greenlet_join(g, 10), 0);
  ck_assert_int_eq(ok, 1);
  ck_assert_int_eq(failed, 0);
  ck_assert_int_eq(gev_rlock_locked(rlock), 0);
  gev_greenlet_unref(g);
  gev_rlock_free(rlock);
  thread_test_end();
}
END_TEST

/* ---- Waiters of another hub that leave ----------------------------------- */

static int b_errs[4];

static void *killed_waiter(void *arg) {
  (void)arg;
  count_add(&registered, 1);
  gev_semaphore_acquire(sem, -1);
  b_errs[1] = errno;
  return NULL;
}

static void leave_early(void *arg) {
  (void)arg;
  b_errs[0] = gev_semaphore_acquire(sem, 0.05) == 0 ? 0 : errno;
  gev_greenlet *g = gev_spawn(killed_waiter, NULL);
  gev_sleep(0.05);
  gev_greenlet_kill(g, 1, 5);
  gev_greenlet_unref(g);
  /* Timeout 0 asks the owning hub, which has no unit. */
  b_errs[2] = gev_semaphore_acquire(sem, 0) == 0 ? 0 : errno;
  b_errs[3] = gev_semaphore_try_acquire(sem) == 0 ? 0 : errno;
}

START_TEST(waiters_of_another_hub_time_out_and_are_killed) {
  hub_thread b;
  thread_test_begin();
  sem = gev_semaphore_new(0);
  hub_thread_start(&b, leave_early, NULL);
  ck_assert_int_eq(hub_thread_join(&b), 0);
  ck_assert_int_eq(b_errs[0], ETIMEDOUT);
  ck_assert_int_eq(b_errs[1], ECANCELED);
  ck_assert_int_eq(b_errs[2], ETIMEDOUT);
  ck_assert_int_eq(b_errs[3], EAGAIN);
  /* Neither left anything on the queue: a release goes to the count. */
  ck_assert_int_eq(gev_semaphore_release(sem), 0);
  ck_assert_int_eq(gev_semaphore_value(sem), 1);
  gev_semaphore_free(sem);
  thread_test_end();
}
END_TEST

/* Units granted to waiters that are leaving at the same moment are handed
 * back, never lost: after many races the count balances. */
enum { RACES = 300 };
static int taken;

static void *racer(void *arg) {
  (void)arg;
  for (int i = 0; i < RACES; i++)
    if (gev_semaphore_acquire(sem, 0.0005) == 0)
      count_add(&taken, 1);
  return NULL;
}

static void race_in_other_hub(void *arg) {
  gev_greenlet *gs[4];
  (void)arg;
  for (int i = 0; i < 4; i++)
    gs[i] = gev_spawn(racer, NULL);
  gev_join_all(gs, 4, 60);
  for (int i = 0; i < 4; i++)
    gev_greenlet_unref(gs[i]);
}

START_TEST(grants_to_departed_waiters_are_handed_back) {
  hub_thread b;
  int released = 0;
  thread_test_begin();
  taken = 0;
  sem = gev_semaphore_new(0);
  hub_thread_start(&b, race_in_other_hub, NULL);
  for (int i = 0; i < RACES; i++) {
    ck_assert_int_eq(gev_semaphore_release(sem), 0);
    released++;
    gev_sleep(i % 3 ? 0 : 0.0005);
  }
  ck_assert_int_eq(hub_thread_join(&b), 0);
  gev_sleep(0.01); /* hand-backs still on their way */
  ck_assert_int_eq(gev_semaphore_value(sem) + count_get(&taken), released);
  gev_semaphore_free(sem);
  thread_test_end();
}
END_TEST

/* ---- Destroyed objects, gone hubs ---------------------------------------- */

static void wait_for_freed_event(void *arg) {
  (void)arg;
  run_waiters(event_waiter);
}

START_TEST(waiters_of_other_hubs_see_the_object_destroyed) {
  hub_thread b;
  thread_test_begin();
  reset();
  total_waiters = WAITERS;
  ev = gev_event_new();
  hub_thread_start(&b, wait_for_freed_event, NULL);
  while (count_get(&registered) < WAITERS)
    gev_sleep(0.001);
  gev_sleep(0.02); /* their proxies are queued here by now */
  gev_event_free(ev);
  ck_assert_int_eq(hub_thread_join(&b), 0);
  ck_assert_int_eq(failed, WAITERS);
  ck_assert_int_eq(fail_errno, EIDRM);
  thread_test_end();
}
END_TEST

static void *free_from_thread(void *arg) {
  (void)arg;
  gev_event_free(ev);
  return NULL;
}

START_TEST(freed_from_another_thread) {
  thread_test_begin();
  reset();
  ev = gev_event_new();
  gev_greenlet *g = gev_spawn(event_waiter, NULL);
  ck_assert_int_eq(gev_sleep(0.01), 0);
  pthread_t tid = plain_thread_start(free_from_thread, NULL);
  ck_assert_int_eq(gev_greenlet_join(g, 10), 0);
  ck_assert_int_eq(pthread_join(tid, NULL), 0);
  ck_assert_int_eq(failed, 1);
  ck_assert_int_eq(fail_errno, EIDRM);
  gev_greenlet_unref(g);
  thread_test_end();
}
END_TEST

static void *make_objects_and_exit(void *arg) {
  (void)arg;
  ev = gev_event_new();
  sem = gev_semaphore_new(1);
  gev_hub_destroy();
  return NULL;
}

START_TEST(objects_of_a_gone_hub_refuse_with_exdev) {
  thread_test_begin();
  pthread_t tid = plain_thread_start(make_objects_and_exit, NULL);
  ck_assert_int_eq(pthread_join(tid, NULL), 0);
  ck_assert_int_eq(gev_event_set(ev), -1);
  ck_assert_int_eq(errno, EXDEV);
  ck_assert_int_eq(gev_event_wait(ev, 1), -1);
  ck_assert_int_eq(errno, EXDEV);
  ck_assert_int_eq(gev_semaphore_release(sem), -1);
  ck_assert_int_eq(errno, EXDEV);
  ck_assert_int_eq(gev_semaphore_acquire(sem, 1), -1);
  ck_assert_int_eq(errno, EXDEV);
  /* Reads still work; freeing them here is fine: nothing waits. */
  ck_assert_int_eq(gev_event_is_set(ev), 0);
  ck_assert_int_eq(gev_semaphore_value(sem), 1);
  gev_event_free(ev);
  gev_semaphore_free(sem);
  thread_test_end();
}
END_TEST

/* The owning hub goes while waiters of other hubs wait: they are told at
 * once (EXDEV), not left parked. */
static int waiter_parked;

static void own_then_go(void *arg) {
  (void)arg;
  sem = gev_semaphore_new(0);
  count_add(&registered, 1);
  while (!count_get(&waiter_parked))
    gev_sleep(0.001);
  gev_sleep(0.02); /* its proxy is queued here by now; then this thread's
                       hub is destroyed (hub_thread) */
}

START_TEST(waiters_hear_when_the_owning_hub_goes) {
  hub_thread owner;
  thread_test_begin();
  reset();
  waiter_parked = 0;
  hub_thread_start(&owner, own_then_go, NULL);
  while (count_get(&registered) < 1)
    gev_sleep(0.001);
  gev_greenlet *g = gev_spawn(sem_waiter, NULL);
  ck_assert_int_eq(gev_sleep(0.01), 0);
  count_add(&waiter_parked, 1);
  double t0 = now();
  ck_assert_int_eq(gev_greenlet_join(g, 10), 0);
  ck_assert(now() - t0 < 5);
  ck_assert_int_eq(failed, 1);
  ck_assert_int_eq(fail_errno, EXDEV);
  gev_greenlet_unref(g);
  ck_assert_int_eq(hub_thread_join(&owner), 0);
  gev_semaphore_free(sem); /* its hub is gone: freed here */
  thread_test_end();
}
END_TEST

/* ---- gev_wait on an object of another hub -------------------------------- */

static int watch_rc, watch_ready;

static void watch_event(void *arg) {
  (void)arg;
  gev_waitable w[2] = {gev_waitable_event(ev), gev_waitable_semaphore(sem)};
  count_add(&registered, 1);
  watch_rc = gev_wait(w, 2, 10, 1);
  watch_ready = w[0].ready * 2 + w[1].ready;
  /* And one that times out, which withdraws its watches. */
  gev_event *mine = gev_event_new();
  gev_waitable w2[2] = {gev_waitable_event(mine), gev_waitable_semaphore(sem)};
  if (gev_wait(w2, 2, 0.02, 1) != 0)
    watch_rc = -100;
  gev_event_free(mine);
}

START_TEST(gev_wait_on_objects_of_another_hub) {
  hub_thread b;
  thread_test_begin();
  reset();
  ev = gev_event_new();
  sem = gev_semaphore_new(0);
  hub_thread_start(&b, watch_event, NULL);
  while (count_get(&registered) < 1)
    gev_sleep(0.001);
  gev_sleep(0.02);
  gev_event_set(ev);
  ck_assert_int_eq(hub_thread_join(&b), 0);
  ck_assert_int_eq(watch_rc, 1);
  ck_assert_int_eq(watch_ready, 2);
  gev_event_free(ev);
  gev_semaphore_free(sem);
  thread_test_end();
}
END_TEST

static Suite *xsync_suite(void) {
  Suite *s = suite_create("xsync");
  TCase *tc = tcase_create("xsync");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, event_set_from_a_thread_wakes_waiters_in_1_2_8_hubs);
  tcase_add_test(tc, semaphore_released_from_a_thread_in_1_2_8_hubs);
  tcase_add_test(tc, async_result_set_from_a_thread_in_1_2_8_hubs);
  tcase_add_test(tc, async_result_error_from_a_thread);
  tcase_add_test(tc, lock_released_from_another_thread);
  tcase_add_test(tc, rlock_owner_rules_across_threads);
  tcase_add_test(tc, waiters_of_another_hub_time_out_and_are_killed);
  tcase_add_test(tc, grants_to_departed_waiters_are_handed_back);
  tcase_add_test(tc, waiters_of_other_hubs_see_the_object_destroyed);
  tcase_add_test(tc, freed_from_another_thread);
  tcase_add_test(tc, objects_of_a_gone_hub_refuse_with_exdev);
  tcase_add_test(tc, gev_wait_on_objects_of_another_hub);
  tcase_add_test(tc, waiters_hear_when_the_owning_hub_goes);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(xsync_suite)
