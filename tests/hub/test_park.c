/* How a park ends: only the hub's resume counts as a wake. An invalid
 * switch into a parked coroutine fails its call (EINTR, logged), an error
 * thrown in ends it with that error, and neither loses or doubles a later
 * wake. Also the hub's own lifecycle around parks: its stack is mapped when
 * it is made, its coroutine is not the user's to free, teardown refuses to
 * free a hub a plain coroutine is parked in and gives up on greenlets that
 * ignore their kill, and a foreign ev_break does not end a wait. */
#include <errno.h>
#include <ev.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "failalloc.h"
#include "gev/hub.h"
#include "gev/sync.h"
#include "testutil.h"

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) {
  gev_set_log_fn(NULL, NULL);
  gev_test_all_clean(fds_before);
}

static int nlogged;
static char logged[4][256];
static void capture(gev_log_level level, const char *msg, void *arg) {
  (void)level, (void)arg;
  if (nlogged < 4)
    strncpy(logged[nlogged], msg, sizeof logged[0] - 1);
  nlogged++;
}

static void capture_log(void) {
  nlogged = 0;
  memset(logged, 0, sizeof logged);
  gev_set_log_fn(capture, NULL);
}

/* ---- Invalid switches -------------------------------------------------- */

static gev_coro *victim;
static int victim_rc, victim_err;
static double victim_waited;

static void stray_switch(void *arg) {
  /* From the hub, as a confused callback would: the victim's call fails
   * and it runs until it parks again, which brings us back here. */
  gev_coro_switch(victim, arg, NULL);
}

static void *sleeper(void *arg) {
  double t0;
  victim = gev_coro_current();
  victim_rc = gev_sleep(2);
  victim_err = errno;
  t0 = gev_monotonic();
  if (gev_sleep(0.05) < 0)
    return gev_fail(errno, "second sleep");
  victim_waited = gev_monotonic() - t0;
  return NULL;
}

START_TEST(test_invalid_switch_into_sleep) {
  gev_spawn_opts o = {.name = "dozer"};
  gev_greenlet *g = gev_spawn_ex(&o, sleeper, NULL);
  double t0 = gev_monotonic();
  capture_log();
  ck_assert_int_eq(gev_sleep(0.01), 0);
  gev_run_callback(stray_switch, (void *)0x1234);
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  ck_assert(gev_greenlet_successful(g));
  ck_assert_int_eq(victim_rc, -1);
  ck_assert_int_eq(victim_err, GEV_EINVALID_SWITCH);
  ck_assert_int_eq(victim_err, EINTR);
  ck_assert_double_ge(victim_waited, 0.05); /* the old timer is gone */
  ck_assert_double_lt(gev_monotonic() - t0, 1.5);
  ck_assert_int_eq(nlogged, 1);
  ck_assert_str_eq(logged[0], "gev: invalid switch into dozer parked in sleep");
  gev_greenlet_unref(g);
}
END_TEST

static int pipefd[2];

static void *reader(void *arg) {
  victim = gev_coro_current();
  victim_rc = gev_wait_read(pipefd[0], -1);
  victim_err = errno;
  /* The fd is free to wait on again, and the real readiness arrives. */
  if (gev_wait_read(pipefd[0], 5) < 0)
    return gev_fail(errno, "second wait");
  return (void *)1;
}

START_TEST(test_invalid_switch_into_wait_read) {
  gev_greenlet *g;
  void *v;
  ck_assert_int_eq(pipe(pipefd), 0);
  capture_log();
  g = gev_spawn(reader, NULL);
  ck_assert_int_eq(gev_sleep(0.01), 0);
  gev_run_callback(stray_switch, NULL);
  ck_assert_int_eq(gev_sleep(0.01), 0);
  ck_assert_int_eq(victim_rc, -1);
  ck_assert_int_eq(victim_err, EINTR);
  ck_assert_int_eq(write(pipefd[1], "x", 1), 1);
  ck_assert_int_eq(gev_greenlet_get(g, 5, &v), 0);
  ck_assert_ptr_eq(v, (void *)1);
  ck_assert_int_eq(nlogged, 1);
  ck_assert_msg(strstr(logged[0], "gev: invalid switch into Greenlet-") &&
                    strstr(logged[0], " parked in read fd"),
                "%s", logged[0]);
  gev_greenlet_unref(g);
  close(pipefd[0]);
  close(pipefd[1]);
}
END_TEST

static gev_queue *q;
static void *got[4];
static int ngot, get_errs[4];

/* Gets until two items arrived or a get fails with anything but EINTR;
 * then a last short get must time out (nothing delivered twice). */
static void *getter(void *arg) {
  void *item;
  victim = gev_coro_current();
  for (int i = 0; ngot < 2 && i < 4; i++) {
    if (gev_queue_get(q, -1, &item) == 0)
      got[ngot++] = item;
    else if ((get_errs[i] = errno) != EINTR)
      return NULL;
  }
  if (gev_queue_get(q, 0.05, &item) == 0 || errno != ETIMEDOUT)
    return gev_fail(EPROTO, "an item came twice");
  return NULL;
}

START_TEST(test_invalid_switch_into_queue_get) {
  gev_greenlet *g;
  q = gev_queue_new(NULL);
  ngot = 0;
  memset(get_errs, 0, sizeof get_errs);
  capture_log();
  g = gev_spawn(getter, NULL);
  ck_assert_int_eq(gev_sleep(0.01), 0);
  gev_run_callback(stray_switch, (void *)0x99);
  ck_assert_int_eq(gev_sleep(0.01), 0);
  ck_assert_int_eq(get_errs[0], EINTR);
  ck_assert_int_eq(ngot, 0);
  ck_assert_int_eq(gev_queue_put(q, (void *)11, -1), 0);
  ck_assert_int_eq(gev_queue_put(q, (void *)12, -1), 0);
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  ck_assert(gev_greenlet_successful(g));
  ck_assert_int_eq(ngot, 2);
  ck_assert_ptr_eq(got[0], (void *)11);
  ck_assert_ptr_eq(got[1], (void *)12);
  ck_assert_int_eq(nlogged, 1);
  gev_greenlet_unref(g);
  gev_queue_free(q);
}
END_TEST

/* The wake came first (the item was handed over), the stray switch
 * second, before the hub's resume ran: the item is not lost, and the
 * resume left queued does not wake the next park. */
static void put_then_stray(void *arg) {
  gev_queue_put(q, arg, 0);
  gev_coro_switch(victim, NULL, NULL);
}

static void *get_then_sleep(void *arg) {
  void *item = NULL;
  double t0;
  victim = gev_coro_current();
  if (gev_queue_get(q, -1, &item) < 0)
    return gev_fail(errno, "get");
  got[ngot++] = item;
  t0 = gev_monotonic();
  if (gev_sleep(0.05) < 0)
    return gev_fail(errno, "sleep");
  victim_waited = gev_monotonic() - t0;
  return NULL;
}

START_TEST(test_invalid_switch_after_wake_keeps_the_wake) {
  gev_greenlet *g;
  q = gev_queue_new(NULL);
  ngot = 0;
  capture_log();
  g = gev_spawn(get_then_sleep, NULL);
  ck_assert_int_eq(gev_sleep(0.01), 0);
  gev_run_callback(put_then_stray, (void *)21);
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  ck_assert(gev_greenlet_successful(g));
  ck_assert_int_eq(ngot, 1);
  ck_assert_ptr_eq(got[0], (void *)21);
  ck_assert_double_ge(victim_waited, 0.05);
  ck_assert_int_eq(gev_queue_size(q), 0);
  ck_assert_int_eq(nlogged, 1);
  gev_greenlet_unref(g);
  gev_queue_free(q);
}
END_TEST

/* ---- Errors thrown into a parked coroutine ------------------------------ */

static int plain_rc, plain_err;
static gev_semaphore *sem;

static void *plain_acquirer(void *arg) {
  plain_rc = gev_semaphore_acquire(sem, -1);
  plain_err = errno;
  return arg;
}

/* A plain coroutine parked while main is not: the hub runs out of work
 * and tells main so (EDEADLK), leaving the coroutine parked. */
static void park_plain(gev_coro *c, void *value) {
  ck_assert_int_eq(gev_coro_switch(c, value, NULL), -1);
  ck_assert_int_eq(errno, EDEADLK);
}

START_TEST(test_throw_into_parked_plain_coroutine) {
  gev_coro *c = gev_coro_new(plain_acquirer, NULL, NULL);
  void *r;
  sem = gev_semaphore_new(0);
  park_plain(c, (void *)3);
  ck_assert_int_eq(gev_coro_throw(c, EIO, &r), 0);
  ck_assert_int_eq(plain_rc, -1);
  ck_assert_int_eq(plain_err, EIO);
  ck_assert_ptr_eq(r, (void *)3);
  /* The semaphore has no stale waiter: a release is kept for later. */
  ck_assert_int_eq(gev_semaphore_release(sem), 0);
  ck_assert_int_eq(gev_semaphore_value(sem), 1);
  gev_coro_free(c);
  gev_semaphore_free(sem);
}
END_TEST

START_TEST(test_free_of_parked_plain_coroutine_cancels_it) {
  gev_coro *c = gev_coro_new(plain_acquirer, NULL, NULL);
  sem = gev_semaphore_new(0);
  park_plain(c, NULL);
  ck_assert_int_eq(gev_hub_destroy(), -1); /* it would wake into freed hub */
  ck_assert_int_eq(errno, EBUSY);
  ck_assert_int_eq(gev_coro_free(c), 0);
  ck_assert_int_eq(plain_rc, -1);
  ck_assert_int_eq(plain_err, ECANCELED);
  ck_assert_int_eq(gev_semaphore_release(sem), 0);
  ck_assert_int_eq(gev_semaphore_value(sem), 1);
  gev_semaphore_free(sem);
}
END_TEST

/* Acquires, reports to main, and again, until freed. */
static void *plain_rounds(void *arg) {
  for (;;) {
    plain_rc = gev_semaphore_acquire(sem, -1);
    plain_err = errno;
    if (gev_coro_switch(gev_coro_main(), NULL, NULL) < 0)
      return arg;
  }
}

START_TEST(test_plain_coroutine_task_survives_hub_teardown) {
  gev_coro *c = gev_coro_new(plain_rounds, NULL, NULL);
  sem = gev_semaphore_new(0);
  park_plain(c, NULL);
  ck_assert_int_eq(gev_coro_throw(c, EIO, NULL), 0);
  ck_assert_int_eq(plain_err, EIO);
  gev_semaphore_free(sem);
  /* c is suspended outside the hub, with a task of this hub. */
  ck_assert_int_eq(gev_hub_destroy(), 0);
  sem = gev_semaphore_new(0); /* a new hub */
  park_plain(c, NULL);
  ck_assert_int_eq(gev_coro_throw(c, ETIMEDOUT, NULL), 0);
  ck_assert_int_eq(plain_rc, -1);
  ck_assert_int_eq(plain_err, ETIMEDOUT);
  gev_coro_free(c);
  gev_semaphore_free(sem);
}
END_TEST

/* ---- The hub's own stack and coroutine --------------------------------- */

START_TEST(test_hub_stack_unmappable_fails_at_creation) {
  int rc, err;
  double t0;
  gev_semaphore *s;
  ck_assert_int_eq(gev_hub_destroy(), 0);
  ck_assert_int_eq(gev_coro_thread_cleanup(), 0); /* no cached stack */
  t0 = gev_monotonic();
  gev_test_fail_alloc(GEV_TEST_ALLOC_MMAP, 1, 0);
  rc = gev_sleep(1.0);
  err = errno;
  s = gev_semaphore_new(0);
  gev_test_fail_alloc(0, 0, 0);
  ck_assert_int_eq(rc, -1);
  ck_assert_int_eq(err, ENOMEM);
  ck_assert_ptr_null(s);
  ck_assert_double_lt(gev_monotonic() - t0, 0.9);
  /* With memory back, the hub comes. */
  ck_assert_int_eq(gev_sleep(0.01), 0);
}
END_TEST

START_TEST(test_hub_coroutine_cannot_be_freed) {
  ck_assert_int_eq(gev_coro_free(gev_hub_coro()), -1);
  ck_assert_int_eq(errno, EPERM);
  ck_assert_int_eq(gev_sleep(0.001), 0);
}
END_TEST

/* ---- Teardown and greenlets that ignore their kill ---------------------- */

static void *ignore_kill(void *arg) {
  volatile unsigned long *failures = arg;
  for (;;)
    if (gev_sleep(0.001) < 0)
      (*failures)++;
  return NULL;
}

/* In a child: the abandoned greenlet's stack is leaked on purpose. */
START_TEST(test_destroy_abandons_greenlet_that_ignores_kill) {
  int st;
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    static volatile unsigned long failures;
    gev_spawn_opts o = {.name = "stubborn"};
    gev_greenlet *g;
    double t0, took;
    capture_log();
    g = gev_spawn_ex(&o, ignore_kill, (void *)&failures);
    gev_sleep(0.01);
    t0 = gev_monotonic();
    if (gev_hub_destroy() != 0)
      _exit(2);
    took = gev_monotonic() - t0;
    if (took < GEV_HUB_DESTROY_GRACE || took > 10 * GEV_HUB_DESTROY_GRACE)
      _exit(3);
    if (failures == 0 || !gev_greenlet_ready(g) ||
        gev_greenlet_error(g) != ECANCELED)
      _exit(4);
    if (nlogged < 1 ||
        strcmp(logged[0], "gev: greenlet stubborn ignored kill; abandoning it"))
      _exit(5);
    _exit(42);
  }
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 42, "child status %d", st);
}
END_TEST

/* ---- Other libev code on the hub's loop --------------------------------- */

static void break_loop(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)w, (void)revents;
  ev_break(loop, EVBREAK_ALL);
}

START_TEST(test_foreign_ev_break_does_not_end_a_sleep) {
  struct ev_loop *loop = gev_hub_loop();
  ev_timer t;
  double t0 = gev_monotonic();
  ev_timer_init(&t, break_loop, 0.01, 0.01);
  ev_timer_start(loop, &t);
  ck_assert_int_eq(gev_sleep(0.3), 0);
  ck_assert_double_ge(gev_monotonic() - t0, 0.3);
  ev_timer_stop(loop, &t);
}
END_TEST

static Suite *park_suite(void) {
  Suite *s = suite_create("park");
  TCase *tc = tcase_create("park");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_invalid_switch_into_sleep);
  tcase_add_test(tc, test_invalid_switch_into_wait_read);
  tcase_add_test(tc, test_invalid_switch_into_queue_get);
  tcase_add_test(tc, test_invalid_switch_after_wake_keeps_the_wake);
  tcase_add_test(tc, test_throw_into_parked_plain_coroutine);
  tcase_add_test(tc, test_free_of_parked_plain_coroutine_cancels_it);
  tcase_add_test(tc, test_plain_coroutine_task_survives_hub_teardown);
  tcase_add_test(tc, test_hub_stack_unmappable_fails_at_creation);
  tcase_add_test(tc, test_hub_coroutine_cannot_be_freed);
  tcase_add_test(tc, test_destroy_abandons_greenlet_that_ignores_kill);
  tcase_add_test(tc, test_foreign_ev_break_does_not_end_a_sleep);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(park_suite)
