/* Additions to the sync API: Pool.spawn_raw, imap's index and error
 * messages, AsyncResult error messages, Queue item destructors. */
#include <stdlib.h>
#include <string.h>

#include "synctest.h"

static void *logged_job(void *arg) {
  gev_sleep(0.001 * I(arg));
  log_add(I(arg));
  return arg;
}

START_TEST(pool_spawn_raw_keeps_no_handle) {
  sync_test_begin();
  gev_pool *p = gev_pool_new(2);
  for (int i = 1; i <= 4; i++)
    ck_assert_int_eq(gev_pool_spawn_raw(p, logged_job, P(i), -1), 0);
  ck_assert_int_eq(gev_pool_join(p, 5), 0);
  ck_assert_str_eq(log_str(), "1 2 3 4");
  ck_assert_int_eq(gev_pool_spawn_raw(p, NULL, NULL, -1), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_pool_spawn_raw(NULL, logged_job, NULL, -1), -1);
  ck_assert_int_eq(errno, EINVAL);
  gev_pool_free(p);
  sync_test_end();
}
END_TEST

static void *odd_fails(void *arg) {
  if (I(arg) % 2)
    return gev_fail(EDOM, "job %d is odd", I(arg));
  return arg;
}

/* Every outcome sets *index; a failed job keeps its message. */
static void drain_imap(gev_pool *p) {
  void *args[4] = {P(0), P(1), P(2), P(3)};
  gev_pool_imap *it = gev_pool_imap_unordered(p, odd_fails, args, 4);
  ck_assert_ptr_nonnull(it);
  int seen = 0, failed = 0;
  size_t idx = 77;
  void *v;
  for (int k = 0; k < 4; k++) {
    int rc = gev_pool_imap_next(it, 5, &idx, &v);
    ck_assert_uint_lt(idx, 4);
    seen |= 1 << idx;
    if (idx % 2) {
      ck_assert_int_eq(rc, -1);
      ck_assert_int_eq(errno, EDOM);
      ck_assert_str_eq(gev_pool_imap_errmsg(it),
                       strf("job %d is odd", (int)idx));
      failed++;
    } else {
      ck_assert_int_eq(rc, 1);
      ck_assert_ptr_eq(v, P(idx));
      ck_assert_ptr_null(gev_pool_imap_errmsg(it));
    }
  }
  ck_assert_int_eq(seen, 15);
  ck_assert_int_eq(failed, 2);
  idx = 77;
  ck_assert_int_eq(gev_pool_imap_next(it, 5, &idx, &v), 0);
  ck_assert_uint_eq(idx, GEV_POOL_NO_INDEX);
  gev_pool_imap_free(it);
}

static void *imap_inside(void *arg) {
  drain_imap(arg); /* a member of a full pool: jobs run in the caller */
  return NULL;
}

START_TEST(imap_index_and_errmsg) {
  sync_test_begin();
  gev_pool *p = gev_pool_new(2);
  drain_imap(p);
  gev_pool *one = gev_pool_new(1);
  gev_greenlet *g = gev_pool_spawn(one, imap_inside, one, -1);
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  ck_assert(gev_greenlet_successful(g));
  gev_greenlet_unref(g);
  /* A failed call (not a job's) sets GEV_POOL_NO_INDEX. */
  size_t idx = 5;
  ck_assert_int_eq(gev_pool_imap_next(NULL, 0, &idx, NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_uint_eq(idx, GEV_POOL_NO_INDEX);
  void *args[1] = {P(1)};
  gev_pool_imap *it = gev_pool_imap_unordered(p, logged_job, args, 1);
  idx = 5;
  ck_assert_int_eq(gev_pool_imap_next(it, 0, &idx, NULL), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_uint_eq(idx, GEV_POOL_NO_INDEX);
  ck_assert_ptr_null(gev_pool_imap_errmsg(NULL));
  gev_pool_imap_free(it);
  gev_pool_free(p);
  gev_pool_free(one);
  sync_test_end();
}
END_TEST

START_TEST(async_result_error_message) {
  sync_test_begin();
  gev_async_result *r = gev_async_result_new();
  ck_assert_ptr_null(gev_async_result_errmsg(r)); /* pending */
  ck_assert_int_eq(gev_async_result_set_error_msg(r, 0, "x"), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_async_result_set_error_msg(r, EPROTO, "bad %s", "frame"),
                   0);
  ck_assert_str_eq(gev_async_result_errmsg(r), "bad frame");
  ck_assert_int_eq(gev_async_result_get(r, 0, NULL), -1);
  ck_assert_int_eq(errno, EPROTO);
  ck_assert_int_eq(gev_async_result_set_error_msg(r, EIO, NULL), -1);
  ck_assert_int_eq(errno, EALREADY);
  gev_async_result_free(r);
  /* Without a message: strerror; with a value: none. */
  gev_async_result a;
  ck_assert_int_eq(gev_async_result_init(&a), 0);
  gev_async_result_set_error(&a, EPIPE);
  ck_assert_str_eq(gev_async_result_errmsg(&a), strerror(EPIPE));
  gev_async_result_destroy(&a);
  ck_assert_ptr_null(gev_async_result_errmsg(&a)); /* destroyed */
  ck_assert_int_eq(gev_async_result_init(&a), 0);
  gev_async_result_set(&a, P(1));
  ck_assert_ptr_null(gev_async_result_errmsg(&a));
  gev_async_result_destroy(&a);
  sync_test_end();
}
END_TEST

static int freed_sum, freed_n;
static void item_free(void *item) {
  freed_sum += *(int *)item;
  freed_n++;
  free(item);
}

static int *boxed(int v) {
  int *p = malloc(sizeof *p);
  *p = v;
  return p;
}

static int cmp_boxed(const void *a, const void *b) {
  return *(const int *)a - *(const int *)b;
}

static void *putter(void *arg) {
  int *item = boxed(100);
  if (gev_queue_put(arg, item, -1) < 0)
    free(item); /* a failed put leaves the item ours */
  return NULL;
}

START_TEST(queue_item_destructor) {
  sync_test_begin();
  freed_sum = freed_n = 0;
  gev_queue_opts o = {.maxsize = 3, .item_free = item_free};
  gev_queue *q = gev_queue_new(&o);
  for (int i = 1; i <= 3; i++)
    ck_assert_int_eq(gev_queue_put(q, boxed(i), 0), 0);
  spawn_kept(putter, q); /* parks: the queue is full */
  gev_sleep(0);
  void *got;
  ck_assert_int_eq(gev_queue_get(q, 0, &got), 0); /* ours now */
  ck_assert_int_eq(*(int *)got, 1);
  free(got);
  ck_assert_int_eq(gev_queue_close(q), 0); /* items stay for getters */
  ck_assert_int_eq(freed_n, 0);
  gev_queue_free(q); /* 2, 3 and the putter's 100, which got in */
  ck_assert_int_eq(freed_n, 3);
  ck_assert_int_eq(freed_sum, 105);
  run_hub();

  /* Embedded, priority order; a putter woken by destroy keeps its item. */
  freed_sum = freed_n = 0;
  gev_queue pq;
  o = (gev_queue_opts){.order = GEV_QUEUE_PRIORITY,
                       .maxsize = 2,
                       .cmp = cmp_boxed,
                       .item_free = item_free};
  ck_assert_int_eq(gev_queue_init(&pq, &o), 0);
  gev_queue_put(&pq, boxed(5), 0);
  gev_queue_put(&pq, boxed(4), 0);
  spawn_kept(putter, &pq);
  gev_sleep(0);
  gev_queue_destroy(&pq);
  ck_assert_int_eq(freed_n, 2);
  ck_assert_int_eq(freed_sum, 9);
  run_hub();
  sync_test_end();
}
END_TEST

static Suite *sync_api_suite(void) {
  Suite *s = suite_create("sync_api");
  TCase *tc = tcase_create("sync_api");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, pool_spawn_raw_keeps_no_handle);
  tcase_add_test(tc, imap_index_and_errmsg);
  tcase_add_test(tc, async_result_error_message);
  tcase_add_test(tc, queue_item_destructor);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(sync_api_suite)
