/* Event and AsyncResult. */
#include <pthread.h>

#include "synctest.h"

static gev_event *ev;
static gev_async_result *ar;
static int fds;

static void setup(void) {
  fds = gev_test_fd_count();
  log_reset();
}

static void finish(void) {
  spawned_unref_all();
  gev_test_all_clean(fds);
}

/* ---- Event ---------------------------------------------------------- */

static void *event_waiter(void *arg) {
  int rc = gev_event_wait(ev, -1);
  log_add(rc == 0 ? I(arg) : -errno);
  return NULL;
}

START_TEST(event_basics) {
  setup();
  ev = gev_event_new();
  ck_assert_ptr_nonnull(ev);
  ck_assert_int_eq(gev_event_is_set(ev), 0);
  ck_assert_int_eq(gev_event_wait(ev, 0), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_event_wait(ev, 0.01), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_event_set(ev), 0);
  ck_assert_int_eq(gev_event_is_set(ev), 1);
  ck_assert_int_eq(gev_event_wait(ev, 0), 0);
  ck_assert_int_eq(gev_event_wait(ev, -1), 0);
  ck_assert_int_eq(gev_event_clear(ev), 0);
  ck_assert_int_eq(gev_event_is_set(ev), 0);
  gev_event_free(ev);
  finish();
}
END_TEST

static void *event_setter(void *arg) {
  ck_assert_int_eq(gev_sleep(0.01), 0);
  log_add(100);
  gev_event_set(ev);
  gev_event_clear(ev); /* waiters were already told */
  return NULL;
}

START_TEST(event_set_wakes_every_waiter) {
  setup();
  ev = gev_event_new();
  for (int i = 1; i <= 3; i++)
    spawn_kept(event_waiter, P(i));
  spawn_kept(event_setter, NULL);
  run_hub();
  ck_assert_str_eq(log_str(), "100 1 2 3");
  ck_assert_int_eq(gev_event_is_set(ev), 0);
  gev_event_free(ev);
  finish();
}
END_TEST

START_TEST(event_main_waits_for_greenlet) {
  setup();
  ev = gev_event_new();
  spawn_kept(event_setter, NULL);
  ck_assert_int_eq(gev_event_wait(ev, 5), 0);
  run_hub();
  gev_event_free(ev);
  finish();
}
END_TEST

static void *event_destroyer(void *arg) {
  gev_event_free(ev);
  ev = NULL;
  return NULL;
}

START_TEST(event_destroy_wakes_waiters_with_eidrm) {
  setup();
  ev = gev_event_new();
  spawn_kept(event_waiter, P(1));
  spawn_kept(event_waiter, P(2));
  spawn_kept(event_destroyer, NULL);
  run_hub();
  ck_assert_str_eq(log_str(), strf("%d %d", -EIDRM, -EIDRM));
  finish();
}
END_TEST

START_TEST(event_kill_while_waiting) {
  setup();
  ev = gev_event_new();
  gev_greenlet *a = spawn_kept(event_waiter, P(1));
  spawn_kept(event_waiter, P(2));
  ck_assert_int_eq(gev_sleep(0), 0); /* both park */
  ck_assert_int_eq(gev_greenlet_kill(a, 1, 1), 0);
  gev_event_set(ev);
  run_hub();
  ck_assert_str_eq(log_str(), strf("%d 2", -ECANCELED));
  gev_event_free(ev);
  finish();
}
END_TEST

START_TEST(event_bad_input) {
  setup();
  gev_event e;
  ck_assert_int_eq(gev_event_init(NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_event_set(NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_event_wait(NULL, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_event_init(&e), 0);
  gev_event_destroy(&e);
  ck_assert_int_eq(gev_event_set(&e), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_event_is_set(&e), -1);
  ck_assert_int_eq(errno, EINVAL);
  gev_event_destroy(&e); /* twice: harmless */
  gev_event_free(NULL);
  finish();
}
END_TEST

static void *event_wait_from_hub_cb(void *arg) { return NULL; }

static void hub_callback(void *arg) {
  int *out = arg;
  out[0] = gev_event_wait(ev, -1);
  out[1] = errno;
  out[2] = gev_event_set(ev); /* not blocking: allowed in the hub */
}

START_TEST(event_wait_in_hub_is_eperm) {
  setup();
  static int out[3];
  ev = gev_event_new();
  spawn_kept(event_wait_from_hub_cb, NULL);
  ck_assert_int_eq(gev_run_callback(hub_callback, out), 0);
  run_hub();
  ck_assert_int_eq(out[0], -1);
  ck_assert_int_eq(out[1], EPERM);
  ck_assert_int_eq(out[2], 0);
  ck_assert_int_eq(gev_event_is_set(ev), 1);
  gev_event_free(ev);
  finish();
}
END_TEST

/* Another thread: every call on this thread's queues, channels and pools
 * fails with EXDEV, with or without a hub of its own. (Events, results,
 * semaphores and locks may be used from other threads: tests/thread.) */
static gev_queue *xq;
static gev_channel *xch;
static gev_pool *xpool;

static void *noop(void *arg) { return arg; }

enum { FOREIGN_CALLS = 5 };

static void *foreign_thread(void *arg) {
  static int errs[FOREIGN_CALLS + 1];
  void *it;
  int n = 0;
  errs[n++] = gev_queue_try_put(xq, NULL) < 0 ? errno : 0;
  errs[n++] = gev_channel_try_get(xch, &it) < 0 ? errno : 0;
  errs[n++] = gev_pool_spawn(xpool, noop, NULL, 0) ? 0 : errno;
  gev_hub_loop(); /* now with a hub of its own */
  errs[n++] = gev_queue_get(xq, 0, &it) < 0 ? errno : 0;
  errs[n++] = gev_pool_join(xpool, 0) < 0 ? errno : 0;
  errs[n] = gev_hub_destroy();
  return errs;
}

START_TEST(objects_refuse_other_threads) {
  setup();
  xq = gev_queue_new(NULL);
  xch = gev_channel_new();
  xpool = gev_pool_new(1);
  pthread_t th;
  int *errs;
  ck_assert_int_eq(pthread_create(&th, NULL, foreign_thread, NULL), 0);
  ck_assert_int_eq(pthread_join(th, (void **)&errs), 0);
  for (int i = 0; i < FOREIGN_CALLS; i++)
    ck_assert_msg(errs[i] == EXDEV, "call %d: errno %d", i, errs[i]);
  ck_assert_int_eq(errs[FOREIGN_CALLS], 0);
  /* nothing changed */
  ck_assert_int_eq(gev_queue_size(xq), 0);
  ck_assert_int_eq(gev_pool_count(xpool), 0);
  gev_queue_free(xq);
  gev_channel_free(xch);
  gev_pool_free(xpool);
  finish();
}
END_TEST

/* ---- AsyncResult ------------------------------------------------------ */

static void *result_getter(void *arg) {
  void *v = NULL;
  if (gev_async_result_get(ar, -1, &v) == 0)
    log_add(I(v));
  else
    log_add(-errno);
  return NULL;
}

static void *result_waiter(void *arg) {
  log_add(gev_async_result_wait(ar, -1) == 0 ? 0 : -errno);
  return NULL;
}

START_TEST(result_value_reaches_every_getter) {
  setup();
  ar = gev_async_result_new();
  ck_assert_int_eq(gev_async_result_ready(ar), 0);
  ck_assert_int_eq(gev_async_result_successful(ar), 0);
  spawn_kept(result_getter, NULL);
  spawn_kept(result_getter, NULL);
  spawn_kept(result_waiter, NULL);
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(gev_async_result_set(ar, P(7)), 0);
  run_hub();
  ck_assert_str_eq(log_str(), "7 7 0");
  ck_assert_int_eq(gev_async_result_ready(ar), 1);
  ck_assert_int_eq(gev_async_result_successful(ar), 1);
  void *v;
  ck_assert_int_eq(gev_async_result_get(ar, 0, &v), 0);
  ck_assert_ptr_eq(v, P(7));
  ck_assert_int_eq(gev_async_result_set(ar, P(8)), -1);
  ck_assert_int_eq(errno, EALREADY);
  ck_assert_int_eq(gev_async_result_set_error(ar, EIO), -1);
  ck_assert_int_eq(errno, EALREADY);
  gev_async_result_free(ar);
  finish();
}
END_TEST

START_TEST(result_error_reaches_getters_and_waiters) {
  setup();
  ar = gev_async_result_new();
  spawn_kept(result_getter, NULL);
  spawn_kept(result_waiter, NULL);
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(gev_async_result_set_error(ar, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_async_result_set_error(ar, ECONNRESET), 0);
  run_hub();
  /* the getter reports the stored error, the waiter just readiness */
  ck_assert_str_eq(log_str(), strf("%d 0", -ECONNRESET));
  ck_assert_int_eq(gev_async_result_successful(ar), 0);
  ck_assert_int_eq(gev_async_result_ready(ar), 1);
  ck_assert_int_eq(gev_async_result_get(ar, 0, NULL), -1);
  ck_assert_int_eq(errno, ECONNRESET);
  ck_assert_int_eq(gev_async_result_wait(ar, 0), 0);
  gev_async_result_free(ar);
  finish();
}
END_TEST

START_TEST(result_kill_error_is_not_a_stored_error) {
  /* A killed waiter fails with ECANCELED even though ECANCELED could also
   * be a stored error: wait must not report it as "ready". */
  setup();
  ar = gev_async_result_new();
  gev_greenlet *w = spawn_kept(result_waiter, NULL);
  spawn_kept(result_getter, NULL);
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(gev_greenlet_kill(w, 1, 1), 0);
  ck_assert_int_eq(gev_async_result_set_error(ar, ECANCELED), 0);
  run_hub();
  ck_assert_str_eq(log_str(), strf("%d %d", -ECANCELED, -ECANCELED));
  ck_assert_int_eq(gev_async_result_wait(ar, 0), 0);
  gev_async_result_free(ar);
  finish();
}
END_TEST

START_TEST(result_timeout_and_destroy) {
  setup();
  ar = gev_async_result_new();
  ck_assert_int_eq(gev_async_result_get(ar, 0.01, NULL), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_async_result_wait(ar, 0), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  spawn_kept(result_getter, NULL);
  spawn_kept(result_waiter, NULL);
  ck_assert_int_eq(gev_sleep(0), 0);
  gev_async_result_free(ar);
  run_hub();
  ck_assert_str_eq(log_str(), strf("%d %d", -EIDRM, -EIDRM));
  /* embedded form */
  gev_async_result r;
  ck_assert_int_eq(gev_async_result_init(&r), 0);
  ck_assert_int_eq(gev_async_result_set(&r, NULL), 0);
  gev_async_result_destroy(&r);
  ck_assert_int_eq(gev_async_result_ready(&r), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_async_result_get(NULL, 0, NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  finish();
}
END_TEST

static Suite *event_suite(void) {
  Suite *s = suite_create("sync_event");
  TCase *tc = tcase_create("event");
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, event_basics);
  tcase_add_test(tc, event_set_wakes_every_waiter);
  tcase_add_test(tc, event_main_waits_for_greenlet);
  tcase_add_test(tc, event_destroy_wakes_waiters_with_eidrm);
  tcase_add_test(tc, event_kill_while_waiting);
  tcase_add_test(tc, event_bad_input);
  tcase_add_test(tc, event_wait_in_hub_is_eperm);
  tcase_add_test(tc, objects_refuse_other_threads);
  suite_add_tcase(s, tc);
  tc = tcase_create("async_result");
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, result_value_reaches_every_getter);
  tcase_add_test(tc, result_error_reaches_getters_and_waiters);
  tcase_add_test(tc, result_kill_error_is_not_a_stored_error);
  tcase_add_test(tc, result_timeout_and_destroy);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(event_suite)
