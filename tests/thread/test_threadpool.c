/* The threadpool: results and errors, many jobs from many greenlets,
 * waiters that are killed or time out, resizing under load, idle threads
 * retiring, cancelling, shutting down, and gev_wait over results. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "threadtest.h"

static void *twice_plus_one(void *arg) { return P(I(arg) * 2 + 1); }

static void *fail_job(void *arg) {
  return gev_fail(EIO, "job %d failed", I(arg));
}

START_TEST(apply_and_errors) {
  void *v = NULL;
  thread_test_begin();
  gev_threadpool *pool = gev_threadpool_new(2);
  ck_assert_ptr_nonnull(pool);
  ck_assert_int_eq(gev_threadpool_apply(pool, twice_plus_one, P(20), &v), 0);
  ck_assert_int_eq(I(v), 41);
  ck_assert_int_eq(gev_threadpool_apply(pool, fail_job, P(7), &v), -1);
  ck_assert_int_eq(errno, EIO);
  gev_thread_result *r = gev_threadpool_spawn(pool, fail_job, P(8));
  ck_assert_int_eq(gev_thread_result_wait(r, 10), 0);
  ck_assert_int_eq(gev_thread_result_ready(r), 1);
  ck_assert_int_eq(gev_thread_result_successful(r), 0);
  ck_assert_int_eq(gev_thread_result_error(r), EIO);
  ck_assert_str_eq(gev_thread_result_errmsg(r), "job 8 failed");
  ck_assert_int_eq(gev_thread_result_get(r, 0, &v), -1);
  ck_assert_int_eq(errno, EIO);
  gev_thread_result_unref(r);
  /* The default pool. */
  ck_assert_int_eq(gev_threadpool_apply(NULL, twice_plus_one, P(1), &v), 0);
  ck_assert_int_eq(I(v), 3);
  ck_assert_ptr_eq(gev_threadpool_default(), gev_threadpool_default());
  /* Bad arguments. */
  ck_assert_ptr_null(gev_threadpool_new(0));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_ptr_null(gev_threadpool_spawn(pool, NULL, NULL));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_thread_result_get(NULL, 0, NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_threadpool_set_size(pool, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_threadpool_free(gev_threadpool_default(), 0, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_threadpool_free(pool, 0, 10), 0);
  thread_test_end();
}
END_TEST

/* ---- 100,000 jobs from 1,000 greenlets ---------------------------------- */

enum { GREENLETS = 1000, JOBS_EACH = 100 };
static gev_threadpool *bulk_pool;
static int bulk_bad;

static void *bulk_greenlet(void *arg) {
  int base = I(arg) * JOBS_EACH;
  for (int i = 0; i < JOBS_EACH; i++) {
    void *v = NULL;
    if (gev_threadpool_apply(bulk_pool, twice_plus_one, P(base + i), &v) != 0 ||
        I(v) != (base + i) * 2 + 1)
      bulk_bad++;
  }
  return NULL;
}

START_TEST(hundred_thousand_jobs_from_a_thousand_greenlets) {
  static gev_greenlet *gs[GREENLETS];
  gev_threadpool_stats st;
  thread_test_begin();
  bulk_bad = 0;
  bulk_pool = gev_threadpool_new(4);
  for (int i = 0; i < GREENLETS; i++)
    gs[i] = gev_spawn(bulk_greenlet, P(i));
  ck_assert_int_eq(gev_join_all(gs, GREENLETS, 120), GREENLETS);
  for (int i = 0; i < GREENLETS; i++)
    gev_greenlet_unref(gs[i]);
  ck_assert_int_eq(bulk_bad, 0);
  /* A job is counted just after its result went out: wait for the last. */
  ck_assert_int_eq(gev_threadpool_join(bulk_pool, 10), 0);
  gev_threadpool_get_stats(bulk_pool, &st);
  ck_assert_uint_eq(st.completed, GREENLETS * JOBS_EACH);
  ck_assert_uint_le(st.threads, 4);
  ck_assert_uint_eq(st.queued, 0);
  ck_assert_int_eq(gev_threadpool_free(bulk_pool, 0, 10), 0);
  thread_test_end();
}
END_TEST

/* ---- Waiters that leave -------------------------------------------------- */

static int slow_started, slow_done, cleaned;

static void *slow_job(void *arg) {
  count_add(&slow_started, 1);
  usleep((useconds_t)I(arg) * 1000);
  count_add(&slow_done, 1);
  return malloc(16); /* a value only the cleanup frees */
}

static void free_value(void *arg, void *value) {
  (void)arg;
  free(value);
  count_add(&cleaned, 1);
}

static void *apply_slow(void *arg) {
  gev_thread_result *r =
      gev_threadpool_spawn_ex(NULL, slow_job, arg, free_value);
  int rc = gev_thread_result_get(r, -1, NULL);
  int err = errno;
  gev_thread_result_unref(r);
  return P(rc == 0 ? 0 : err);
}

START_TEST(killed_or_timed_out_waiters_stop_at_once) {
  thread_test_begin();
  slow_done = cleaned = 0;
  gev_greenlet *g = gev_spawn(apply_slow, P(200));
  ck_assert_int_eq(gev_sleep(0.02), 0);
  double t0 = now();
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 5), 0);
  ck_assert(now() - t0 < 0.15); /* well before the job's 0.2 s */
  ck_assert_int_eq(I(gev_greenlet_value(g)), ECANCELED);
  ck_assert_int_eq(count_get(&slow_done), 0);
  gev_greenlet_unref(g);
  /* A timeout. */
  gev_thread_result *r =
      gev_threadpool_spawn_ex(NULL, slow_job, P(100), free_value);
  t0 = now();
  ck_assert_int_eq(gev_thread_result_get(r, 0.02, NULL), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert(now() - t0 >= 0.02);
  gev_thread_result_unref(r);
  /* Both jobs still finish in their threads; their values are freed. The
   * hub keeps running while they are out: gev_run waits for them. */
  ck_assert_int_eq(gev_run(), 0);
  ck_assert_int_eq(count_get(&slow_done), 2);
  ck_assert(wait_for_count(&cleaned, 2, 10));
  thread_test_end();
}
END_TEST

/* ---- Resizing under load ------------------------------------------------- */

static int running, peak;

static void *count_concurrency(void *arg) {
  int n = __atomic_add_fetch(&running, 1, __ATOMIC_SEQ_CST);
  int p = __atomic_load_n(&peak, __ATOMIC_SEQ_CST);
  while (n > p && !__atomic_compare_exchange_n(
                      &peak, &p, n, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
    ;
  usleep(2000);
  __atomic_sub_fetch(&running, 1, __ATOMIC_SEQ_CST);
  return arg;
}

/* Spawns n jobs and waits for all; returns the peak concurrency. */
static int burst(gev_threadpool *pool, int n) {
  gev_thread_result **rs = calloc((size_t)n, sizeof *rs);
  __atomic_store_n(&peak, 0, __ATOMIC_SEQ_CST);
  for (int i = 0; i < n; i++)
    rs[i] = gev_threadpool_spawn(pool, count_concurrency, P(i));
  for (int i = 0; i < n; i++) {
    void *v;
    ck_assert_int_eq(gev_thread_result_get(rs[i], 30, &v), 0);
    ck_assert_int_eq(I(v), i);
    gev_thread_result_unref(rs[i]);
  }
  free(rs);
  return count_get(&peak);
}

static void *resize_midway(void *arg) {
  gev_sleep(0.01);
  gev_threadpool_set_size(arg, 6);
  return NULL;
}

START_TEST(resize_under_load) {
  gev_threadpool_stats st;
  thread_test_begin();
  gev_threadpool *pool = gev_threadpool_new(2);
  ck_assert_int_le(burst(pool, 40), 2);
  /* Grown while jobs are queued: more threads start for them at once. */
  gev_greenlet *g = gev_spawn(resize_midway, pool);
  int p = burst(pool, 200);
  ck_assert_int_gt(p, 2);
  ck_assert_int_le(p, 6);
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  gev_greenlet_unref(g);
  /* Shrunk: surplus threads retire, later jobs run one at a time. */
  ck_assert_int_eq(gev_threadpool_set_size(pool, 1), 0);
  ck_assert_int_eq(burst(pool, 20), 1);
  gev_threadpool_get_stats(pool, &st);
  ck_assert_uint_eq(st.max_threads, 1);
  ck_assert_uint_le(st.threads, 1);
  ck_assert_int_eq(gev_threadpool_free(pool, 0, 10), 0);
  thread_test_end();
}
END_TEST

START_TEST(idle_threads_retire) {
  gev_threadpool_stats st;
  thread_test_begin();
  gev_threadpool *pool = gev_threadpool_new(3);
  ck_assert_int_eq(gev_threadpool_set_idle_timeout(pool, 0.05), 0);
  ck_assert_int_le(burst(pool, 6), 3);
  double end = now() + 5;
  do {
    gev_sleep(0.01);
    gev_threadpool_get_stats(pool, &st);
  } while (st.threads > 0 && now() < end);
  ck_assert_uint_eq(st.threads, 0);
  /* They start again when needed. */
  ck_assert_int_ge(burst(pool, 2), 1);
  ck_assert_int_eq(gev_threadpool_free(pool, 0, 10), 0);
  thread_test_end();
}
END_TEST

/* ---- Cancel, shutdown -----------------------------------------------------
 */

static gev_threadpool *stopping_pool;

static void *spawn_while_stopping(void *arg) {
  (void)arg;
  gev_thread_result *r =
      gev_threadpool_spawn(stopping_pool, twice_plus_one, NULL);
  return P(r ? 0 : errno);
}

START_TEST(cancel_and_shutdown) {
  thread_test_begin();
  slow_started = slow_done = cleaned = 0;
  gev_threadpool *pool = gev_threadpool_new(1);
  gev_thread_result *busy = gev_threadpool_spawn(pool, slow_job, P(100));
  gev_thread_result *queued = gev_threadpool_spawn(pool, slow_job, P(1));
  ck_assert(wait_for_count(&slow_started, 1, 10)); /* the first one runs */
  ck_assert_int_eq(gev_thread_result_cancel(busy), -1);
  ck_assert_int_eq(errno, EBUSY);
  ck_assert_int_eq(gev_thread_result_cancel(queued), 0);
  ck_assert_int_eq(gev_thread_result_get(queued, 0, NULL), -1);
  ck_assert_int_eq(errno, ECANCELED);
  ck_assert_int_eq(gev_thread_result_cancel(queued), -1);
  ck_assert_int_eq(errno, EBUSY);
  /* Shutdown with CANCEL: the queued job ends unrun, the running one
   * finishes; new jobs are refused meanwhile. */
  gev_thread_result *more = gev_threadpool_spawn(pool, slow_job, P(1));
  stopping_pool = pool;
  gev_greenlet *g = gev_spawn(spawn_while_stopping, NULL);
  ck_assert_int_eq(gev_threadpool_free(pool, GEV_THREADPOOL_CANCEL, 10), 0);
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  ck_assert_int_eq(I(gev_greenlet_value(g)), ESHUTDOWN);
  gev_greenlet_unref(g);
  void *v = NULL;
  ck_assert_int_eq(gev_thread_result_get(busy, 5, &v), 0);
  free(v);
  ck_assert_int_eq(gev_thread_result_get(more, 5, NULL), -1);
  ck_assert_int_eq(errno, ECANCELED);
  ck_assert_int_eq(count_get(&slow_done), 1);
  gev_thread_result_unref(busy);
  gev_thread_result_unref(queued);
  gev_thread_result_unref(more);
  /* Shutdown with WAIT: queued jobs still run. */
  pool = gev_threadpool_new(1);
  gev_thread_result *rs[3];
  for (int i = 0; i < 3; i++)
    rs[i] = gev_threadpool_spawn(pool, twice_plus_one, P(i));
  ck_assert_int_eq(gev_threadpool_free(pool, GEV_THREADPOOL_WAIT, 10), 0);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(gev_thread_result_get(rs[i], 5, &v), 0);
    ck_assert_int_eq(I(v), 2 * i + 1);
    gev_thread_result_unref(rs[i]);
  }
  thread_test_end();
}
END_TEST

START_TEST(join_waits_until_idle) {
  thread_test_begin();
  slow_done = 0;
  gev_threadpool *pool = gev_threadpool_new(2);
  for (int i = 0; i < 4; i++)
    gev_thread_result_unref(
        gev_threadpool_spawn_ex(pool, slow_job, P(20), free_value));
  ck_assert_int_eq(gev_threadpool_join(pool, 0.001), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_threadpool_join(pool, 10), 0);
  ck_assert_int_eq(count_get(&slow_done), 4);
  ck_assert_int_eq(gev_threadpool_free(pool, 0, 10), 0);
  thread_test_end();
}
END_TEST

/* ---- gev_wait over results, and results of another thread ---------------- */

START_TEST(wait_and_iwait_on_results) {
  gev_waitable w[4];
  gev_thread_result *rs[4];
  thread_test_begin();
  for (int i = 0; i < 4; i++) {
    rs[i] = gev_threadpool_spawn(NULL, i == 2 ? fail_job : slow_job,
                                 P(i == 0 ? 300 : 1));
    w[i] = gev_waitable_thread_result(rs[i]);
  }
  ck_assert_int_ge(gev_wait(w, 4, 10, 2), 2);
  ck_assert_int_eq(w[0].ready, 0);
  gev_iwait *it = gev_iwait_new_any(w, 4, 10);
  size_t seen = 0, idx;
  int rc;
  while ((rc = gev_iwait_next_index(it, &idx)) == 1)
    seen |= 1u << idx;
  ck_assert_int_eq(rc, 0);
  ck_assert_uint_eq(seen, 15);
  gev_iwait_free(it);
  for (int i = 0; i < 4; i++) {
    void *v;
    if (gev_thread_result_get(rs[i], 0, &v) == 0)
      free(v);
    gev_thread_result_unref(rs[i]);
  }
  thread_test_end();
}
END_TEST

static void *get_foreign(void *arg) {
  return P(gev_thread_result_get(arg, 0, NULL) == -1 ? errno : 0);
}

START_TEST(results_belong_to_their_hub) {
  void *err;
  thread_test_begin();
  gev_thread_result *r = gev_threadpool_spawn(NULL, twice_plus_one, P(1));
  pthread_t tid = plain_thread_start(get_foreign, r);
  ck_assert_int_eq(pthread_join(tid, &err), 0);
  ck_assert_int_eq(I(err), EXDEV);
  ck_assert_int_eq(gev_thread_result_get(r, 10, NULL), 0);
  gev_thread_result_unref(r);
  thread_test_end();
}
END_TEST

/* A job that uses gev in its pool thread; the thread's hub goes when the
 * thread retires. */
static void *job_with_a_hub(void *arg) {
  gev_sleep(0.001);
  gev_event *e = gev_event_new();
  gev_event_set(e);
  int rc = gev_event_wait(e, 0);
  gev_event_free(e);
  return P(rc == 0 ? I(arg) : -1);
}

START_TEST(jobs_may_use_gev) {
  void *v;
  gev_threadpool_stats st;
  thread_test_begin();
  gev_threadpool *pool = gev_threadpool_new(2);
  ck_assert_int_eq(gev_threadpool_set_idle_timeout(pool, 0), 0);
  ck_assert_int_eq(gev_threadpool_apply(pool, job_with_a_hub, P(5), &v), 0);
  ck_assert_int_eq(I(v), 5);
  gev_threadpool_get_stats(pool, &st);
  ck_assert_int_eq(gev_threadpool_free(pool, 0, 10), 0);
  thread_test_end();
}
END_TEST

static Suite *threadpool_suite(void) {
  Suite *s = suite_create("threadpool");
  TCase *tc = tcase_create("threadpool");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, apply_and_errors);
  tcase_add_test(tc, hundred_thousand_jobs_from_a_thousand_greenlets);
  tcase_add_test(tc, killed_or_timed_out_waiters_stop_at_once);
  tcase_add_test(tc, resize_under_load);
  tcase_add_test(tc, idle_threads_retire);
  tcase_add_test(tc, cancel_and_shutdown);
  tcase_add_test(tc, join_waits_until_idle);
  tcase_add_test(tc, wait_and_iwait_on_results);
  tcase_add_test(tc, results_belong_to_their_hub);
  tcase_add_test(tc, jobs_may_use_gev);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(threadpool_suite)
