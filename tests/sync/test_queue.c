/* Queue (FIFO, LIFO, priority; bounded; joinable; closable) and Channel. */
#include <stdlib.h>
#include <string.h>

#include "synctest.h"

static gev_queue *q;
static gev_channel *ch;
static int fds;

static void setup(void) {
  fds = gev_test_fd_count();
  log_reset();
}

static void finish(void) {
  spawned_unref_all();
  gev_test_all_clean(fds);
}

static gev_queue *queue_of(gev_queue_order order, size_t maxsize,
                           gev_queue_cmp_fn cmp) {
  gev_queue_opts o = {.order = order, .maxsize = maxsize, .cmp = cmp};
  gev_queue *nq = gev_queue_new(&o);
  ck_assert_ptr_nonnull(nq);
  return nq;
}

static void put_all(const int *v, int n) {
  for (int i = 0; i < n; i++)
    ck_assert_int_eq(gev_queue_put(q, P(v[i]), 0), 0);
}

static void log_drain(void) {
  void *it;
  while (gev_queue_try_get(q, &it) == 0)
    log_add(I(it));
  ck_assert_int_eq(errno, EAGAIN);
}

static int cmp_int(const void *a, const void *b) {
  return (I(a) > I(b)) - (I(a) < I(b));
}

/* Priority by tens only, so equal-priority items show their put order. */
static int cmp_tens(const void *a, const void *b) {
  return cmp_int(P(I(a) / 10), P(I(b) / 10));
}

START_TEST(queue_orders) {
  setup();
  int v[] = {5, 1, 4, 2, 3};
  q = queue_of(GEV_QUEUE_FIFO, 0, NULL);
  put_all(v, 5);
  ck_assert_int_eq(gev_queue_size(q), 5);
  log_drain();
  gev_queue_free(q);
  q = queue_of(GEV_QUEUE_LIFO, 0, NULL);
  put_all(v, 5);
  log_drain();
  gev_queue_free(q);
  q = queue_of(GEV_QUEUE_PRIORITY, 0, cmp_int);
  put_all(v, 5);
  log_drain();
  gev_queue_free(q);
  ck_assert_str_eq(log_str(), "5 1 4 2 3 3 2 4 1 5 1 2 3 4 5");
  log_reset();
  int w[] = {31, 12, 33, 11, 32, 13, 20};
  q = queue_of(GEV_QUEUE_PRIORITY, 0, cmp_tens);
  put_all(w, 7);
  log_drain();
  ck_assert_str_eq(log_str(), "12 11 13 20 31 33 32");
  gev_queue_free(q);
  finish();
}
END_TEST

START_TEST(queue_grows_and_wraps) {
  /* Interleaved puts and gets make the FIFO ring wrap and grow. */
  setup();
  q = queue_of(GEV_QUEUE_FIFO, 0, NULL);
  int next_put = 0, next_get = 0;
  for (int round = 0; round < 50; round++) {
    for (int i = 0; i < round + 3; i++)
      ck_assert_int_eq(gev_queue_put(q, P(next_put++), 0), 0);
    for (int i = 0; i < round + 1; i++) {
      void *it;
      ck_assert_int_eq(gev_queue_get(q, 0, &it), 0);
      ck_assert_int_eq(I(it), next_get++);
    }
  }
  ck_assert_int_eq(gev_queue_size(q), next_put - next_get);
  gev_queue_free(q);
  finish();
}
END_TEST

START_TEST(queue_nonblocking_and_bounds) {
  setup();
  q = queue_of(GEV_QUEUE_FIFO, 2, NULL);
  void *it = P(99);
  ck_assert_int_eq(gev_queue_empty(q), 1);
  ck_assert_int_eq(gev_queue_try_get(q, &it), -1);
  ck_assert_int_eq(errno, EAGAIN);
  ck_assert_int_eq(gev_queue_get(q, 0, &it), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_queue_get(q, 0.01, &it), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_queue_try_peek(q, &it), -1);
  ck_assert_int_eq(errno, EAGAIN);
  ck_assert_int_eq(gev_queue_try_put(q, P(1)), 0);
  ck_assert_int_eq(gev_queue_put(q, P(2), -1), 0);
  ck_assert_int_eq(gev_queue_full(q), 1);
  ck_assert_int_eq(gev_queue_try_put(q, P(3)), -1);
  ck_assert_int_eq(errno, EAGAIN);
  ck_assert_int_eq(gev_queue_put(q, P(3), 0.01), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_queue_size(q), 2);
  ck_assert_int_eq(gev_queue_peek(q, 0, &it), 0);
  ck_assert_int_eq(I(it), 1);
  ck_assert_int_eq(gev_queue_size(q), 2);
  ck_assert_int_eq(gev_queue_get(q, -1, NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  gev_queue_free(q);
  gev_queue_opts bad = {.order = GEV_QUEUE_PRIORITY};
  ck_assert_ptr_null(gev_queue_new(&bad));
  ck_assert_int_eq(errno, EINVAL);
  bad.order = (gev_queue_order)7;
  ck_assert_ptr_null(gev_queue_new(&bad));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_queue_put(NULL, NULL, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  gev_queue dq;
  ck_assert_int_eq(gev_queue_init(&dq, NULL), 0);
  gev_queue_destroy(&dq);
  ck_assert_int_eq(gev_queue_try_put(&dq, NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  finish();
}
END_TEST

static void *getter(void *arg) {
  void *it;
  if (gev_queue_get(q, -1, &it) == 0)
    log_add(I(it));
  else
    log_add(-errno);
  return NULL;
}

static void *putter(void *arg) {
  log_add(gev_queue_put(q, arg, -1) == 0 ? 1000 + I(arg) : -errno);
  return NULL;
}

static void *peeker(void *arg) {
  void *it;
  log_add(gev_queue_peek(q, -1, &it) == 0 ? 500 + I(it) : -errno);
  return NULL;
}

START_TEST(queue_getters_fifo_and_handoff) {
  setup();
  q = queue_of(GEV_QUEUE_FIFO, 0, NULL);
  spawn_kept(peeker, NULL);
  for (int i = 0; i < 3; i++)
    spawn_kept(getter, NULL);
  ck_assert_int_eq(gev_sleep(0), 0);
  for (int i = 1; i <= 3; i++)
    ck_assert_int_eq(gev_queue_put(q, P(i), 0), 0);
  /* handed straight to the parked getters: nothing stored */
  ck_assert_int_eq(gev_queue_size(q), 0);
  ck_assert_int_eq(gev_queue_unfinished(q), 3);
  run_hub();
  ck_assert_str_eq(log_str(), "501 1 2 3");
  gev_queue_free(q);
  finish();
}
END_TEST

START_TEST(queue_putters_fifo_and_kill) {
  setup();
  q = queue_of(GEV_QUEUE_FIFO, 1, NULL);
  ck_assert_int_eq(gev_queue_put(q, P(1), 0), 0);
  spawn_kept(putter, P(2));
  gev_greenlet *b = spawn_kept(putter, P(3));
  spawn_kept(putter, P(4));
  ck_assert_int_eq(gev_sleep(0), 0); /* all three park: full */
  ck_assert_int_eq(gev_greenlet_kill(b, 0, 0), 0);
  void *it;
  for (int want = 1; want <= 4; want++) {
    if (want == 3)
      continue; /* the killed putter's item never enters */
    ck_assert_int_eq(gev_queue_get(q, -1, &it), 0);
    ck_assert_int_eq(I(it), want);
  }
  run_hub();
  /* the kill's wake was queued before the gets' */
  ck_assert_str_eq(log_str(), strf("%d 1002 1004", -ECANCELED));
  ck_assert_int_eq(gev_queue_size(q), 0);
  gev_queue_free(q);
  finish();
}
END_TEST

START_TEST(queue_getter_killed_item_goes_to_next) {
  setup();
  q = queue_of(GEV_QUEUE_FIFO, 0, NULL);
  gev_greenlet *a = spawn_kept(getter, NULL);
  spawn_kept(getter, NULL);
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(gev_greenlet_kill(a, 0, 0), 0);
  ck_assert_int_eq(gev_queue_put(q, P(7), 0), 0);
  run_hub();
  ck_assert_str_eq(log_str(), strf("%d 7", -ECANCELED));
  ck_assert_int_eq(gev_queue_size(q), 0);
  gev_queue_free(q);
  finish();
}
END_TEST

static void *timed_putter(void *arg) {
  log_add(gev_queue_put(q, arg, 0.01) == 0 ? 1000 + I(arg) : -errno);
  return NULL;
}

START_TEST(queue_putter_timeout_leaves_no_item) {
  setup();
  q = queue_of(GEV_QUEUE_LIFO, 1, NULL);
  ck_assert_int_eq(gev_queue_put(q, P(1), 0), 0);
  spawn_kept(timed_putter, P(2));
  spawn_kept(putter, P(3));
  ck_assert_int_eq(gev_sleep(0.05), 0);
  void *it;
  ck_assert_int_eq(gev_queue_get(q, 0, &it), 0);
  ck_assert_int_eq(I(it), 1);
  ck_assert_int_eq(gev_queue_get(q, 0, &it), 0);
  ck_assert_int_eq(I(it), 3);
  run_hub();
  ck_assert_str_eq(log_str(), strf("%d 1003", -ETIMEDOUT));
  gev_queue_free(q);
  finish();
}
END_TEST

static void *worker(void *arg) {
  void *it;
  while (gev_queue_get(q, -1, &it) == 0) {
    gev_sleep(0);
    log_add(I(it));
    gev_queue_task_done(q);
  }
  return NULL;
}

START_TEST(queue_task_done_and_join) {
  setup();
  q = queue_of(GEV_QUEUE_FIFO, 0, NULL);
  ck_assert_int_eq(gev_queue_join(q, 0), 0);
  ck_assert_int_eq(gev_queue_task_done(q), -1);
  ck_assert_int_eq(errno, EOVERFLOW);
  for (int i = 1; i <= 5; i++)
    ck_assert_int_eq(gev_queue_put(q, P(i), 0), 0);
  ck_assert_int_eq(gev_queue_unfinished(q), 5);
  ck_assert_int_eq(gev_queue_join(q, 0), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  spawn_kept(worker, NULL);
  ck_assert_int_eq(gev_queue_join(q, 5), 0);
  ck_assert_str_eq(log_str(), "1 2 3 4 5");
  ck_assert_int_eq(gev_queue_unfinished(q), 0);
  ck_assert_int_eq(gev_queue_close(q), 0);
  run_hub(); /* the worker sees EPIPE and ends */
  gev_queue_free(q);
  finish();
}
END_TEST

START_TEST(queue_close_wakes_everyone) {
  setup();
  q = queue_of(GEV_QUEUE_FIFO, 1, NULL);
  spawn_kept(getter, NULL);
  spawn_kept(peeker, NULL);
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(gev_queue_close(q), 0);
  run_hub();
  ck_assert_str_eq(log_str(), strf("%d %d", -EPIPE, -EPIPE));
  log_reset();
  gev_queue_free(q);

  /* items already queued are still delivered, then EPIPE */
  q = queue_of(GEV_QUEUE_FIFO, 1, NULL);
  ck_assert_int_eq(gev_queue_put(q, P(1), 0), 0);
  spawn_kept(putter, P(2));
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(gev_queue_close(q), 0);
  ck_assert_int_eq(gev_queue_close(q), 0);
  ck_assert_int_eq(gev_queue_closed(q), 1);
  ck_assert_int_eq(gev_queue_put(q, P(3), 0), -1);
  ck_assert_int_eq(errno, EPIPE);
  void *it;
  ck_assert_int_eq(gev_queue_get(q, -1, &it), 0);
  ck_assert_int_eq(I(it), 1);
  ck_assert_int_eq(gev_queue_get(q, -1, &it), -1);
  ck_assert_int_eq(errno, EPIPE);
  run_hub();
  ck_assert_str_eq(log_str(), strf("%d", -EPIPE));
  gev_queue_free(q);
  finish();
}
END_TEST

START_TEST(queue_destroy_wakes_everyone) {
  setup();
  q = queue_of(GEV_QUEUE_FIFO, 1, NULL);
  spawn_kept(getter, NULL);
  spawn_kept(peeker, NULL);
  ck_assert_int_eq(gev_sleep(0), 0);
  gev_queue_free(q);
  run_hub();
  ck_assert_str_eq(log_str(), strf("%d %d", -EIDRM, -EIDRM));
  log_reset();
  q = queue_of(GEV_QUEUE_FIFO, 1, NULL);
  ck_assert_int_eq(gev_queue_put(q, P(1), 0), 0);
  spawn_kept(putter, P(2));
  spawn_kept(putter, P(3));
  ck_assert_int_eq(gev_sleep(0), 0);
  gev_queue_free(q);
  run_hub();
  ck_assert_str_eq(log_str(), strf("%d %d", -EIDRM, -EIDRM));
  finish();
}
END_TEST

/* ---- The pipeline: 100,000 items, 4 producers, 4 consumers ---------- */

enum { PRODUCERS = 4, CONSUMERS = 4, PER_PRODUCER = 25000 };

static unsigned char *seen; /* per item: times received */
/* Last sequence number each consumer got from each producer: a consumer's
 * gets are dequeued one after another, so per producer they must rise. */
static int last_from[CONSUMERS][PRODUCERS];
static int order_errors, got_total;
static int consumed_by[CONSUMERS];

static void *producer(void *arg) {
  int p = I(arg);
  for (int i = 0; i < PER_PRODUCER; i++)
    if (gev_queue_put(q, P(p * PER_PRODUCER + i + 1), -1) < 0)
      return gev_fail(errno, "put");
  return NULL;
}

static void *consumer(void *arg) {
  void *it;
  while (gev_queue_get(q, -1, &it) == 0) {
    int v = I(it) - 1, p = v / PER_PRODUCER, i = v % PER_PRODUCER;
    seen[v]++;
    if (i <= last_from[I(arg)][p])
      order_errors++;
    last_from[I(arg)][p] = i;
    got_total++;
    consumed_by[I(arg)]++;
    if (v % 7 == 0)
      gev_sleep(0); /* vary the interleaving */
  }
  return errno == EPIPE ? NULL : gev_fail(errno, "get");
}

START_TEST(queue_pipeline_100k) {
  setup();
  q = queue_of(GEV_QUEUE_FIFO, 16, NULL);
  seen = calloc(PRODUCERS * PER_PRODUCER, 1);
  ck_assert_ptr_nonnull(seen);
  for (int c = 0; c < CONSUMERS; c++)
    for (int p = 0; p < PRODUCERS; p++)
      last_from[c][p] = -1;
  gev_greenlet *prod[PRODUCERS], *cons[CONSUMERS];
  for (int c = 0; c < CONSUMERS; c++)
    cons[c] = spawn_kept(consumer, P(c));
  for (int p = 0; p < PRODUCERS; p++)
    prod[p] = spawn_kept(producer, P(p));
  ck_assert_int_eq(gev_joinall(prod, PRODUCERS, -1, 0, 0), PRODUCERS);
  for (int p = 0; p < PRODUCERS; p++)
    ck_assert_int_eq(gev_greenlet_successful(prod[p]), 1);
  ck_assert_int_eq(gev_queue_close(q), 0);
  ck_assert_int_eq(gev_joinall(cons, CONSUMERS, -1, 0, 0), CONSUMERS);
  for (int c = 0; c < CONSUMERS; c++) {
    ck_assert_int_eq(gev_greenlet_successful(cons[c]), 1);
    ck_assert_int_gt(consumed_by[c], 0);
  }
  ck_assert_int_eq(got_total, PRODUCERS * PER_PRODUCER);
  ck_assert_int_eq(order_errors, 0);
  for (int v = 0; v < PRODUCERS * PER_PRODUCER; v++)
    ck_assert_int_eq(seen[v], 1);
  ck_assert_int_eq(gev_queue_size(q), 0);
  free(seen);
  gev_queue_free(q);
  run_hub();
  finish();
}
END_TEST

/* ---- Channel --------------------------------------------------------- */

static void *ch_getter(void *arg) {
  void *it;
  log_add(gev_channel_get(ch, -1, &it) == 0 ? I(it) : -errno);
  return NULL;
}

static void *ch_putter(void *arg) {
  log_add(gev_channel_put(ch, arg, -1) == 0 ? 1000 + I(arg) : -errno);
  return NULL;
}

START_TEST(channel_rendezvous) {
  setup();
  ch = gev_channel_new();
  ck_assert_ptr_nonnull(ch);
  void *it;
  ck_assert_int_eq(gev_channel_try_put(ch, P(1)), -1);
  ck_assert_int_eq(errno, EAGAIN);
  ck_assert_int_eq(gev_channel_try_get(ch, &it), -1);
  ck_assert_int_eq(errno, EAGAIN);
  ck_assert_int_eq(gev_channel_put(ch, P(1), 0.01), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  /* putters wait for getters, in order */
  spawn_kept(ch_putter, P(1));
  spawn_kept(ch_putter, P(2));
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_str_eq(log_str(), "");
  ck_assert_int_eq(gev_channel_get(ch, -1, &it), 0);
  ck_assert_int_eq(I(it), 1);
  ck_assert_int_eq(gev_channel_try_get(ch, &it), 0);
  ck_assert_int_eq(I(it), 2);
  run_hub();
  ck_assert_str_eq(log_str(), "1001 1002");
  log_reset();
  /* getters wait for putters */
  spawn_kept(ch_getter, NULL);
  spawn_kept(ch_getter, NULL);
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(gev_channel_put(ch, P(5), -1), 0);
  ck_assert_int_eq(gev_channel_try_put(ch, P(6)), 0);
  run_hub();
  ck_assert_str_eq(log_str(), "5 6");
  gev_channel_free(ch);
  finish();
}
END_TEST

START_TEST(channel_kill_close_destroy) {
  setup();
  ch = gev_channel_new();
  gev_greenlet *a = spawn_kept(ch_putter, P(1));
  spawn_kept(ch_putter, P(2));
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(gev_greenlet_kill(a, 0, 0), 0);
  void *it;
  ck_assert_int_eq(gev_channel_get(ch, -1, &it), 0);
  ck_assert_int_eq(I(it), 2);
  run_hub();
  ck_assert_str_eq(log_str(), strf("%d 1002", -ECANCELED));
  log_reset();
  spawn_kept(ch_putter, P(3));
  spawn_kept(ch_getter, NULL); /* takes 3 */
  spawn_kept(ch_getter, NULL);
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(gev_channel_close(ch), 0);
  run_hub();
  ck_assert_str_eq(log_str(), strf("3 1003 %d", -EPIPE));
  log_reset();
  gev_channel_free(ch);
  gev_channel c;
  ch = &c;
  ck_assert_int_eq(gev_channel_init(ch), 0);
  spawn_kept(ch_putter, P(4));
  ck_assert_int_eq(gev_sleep(0), 0);
  gev_channel_destroy(ch);
  run_hub();
  ck_assert_str_eq(log_str(), strf("%d", -EIDRM));
  ck_assert_int_eq(gev_channel_put(ch, NULL, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  finish();
}
END_TEST

static Suite *queue_suite(void) {
  Suite *s = suite_create("sync_queue");
  TCase *tc = tcase_create("queue");
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, queue_orders);
  tcase_add_test(tc, queue_grows_and_wraps);
  tcase_add_test(tc, queue_nonblocking_and_bounds);
  tcase_add_test(tc, queue_getters_fifo_and_handoff);
  tcase_add_test(tc, queue_putters_fifo_and_kill);
  tcase_add_test(tc, queue_getter_killed_item_goes_to_next);
  tcase_add_test(tc, queue_putter_timeout_leaves_no_item);
  tcase_add_test(tc, queue_task_done_and_join);
  tcase_add_test(tc, queue_close_wakes_everyone);
  tcase_add_test(tc, queue_destroy_wakes_everyone);
  suite_add_tcase(s, tc);
  tc = tcase_create("pipeline");
  tcase_set_timeout(tc, 100);
  tcase_add_test(tc, queue_pipeline_100k);
  suite_add_tcase(s, tc);
  tc = tcase_create("channel");
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, channel_rendezvous);
  tcase_add_test(tc, channel_kill_close_destroy);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(queue_suite)
