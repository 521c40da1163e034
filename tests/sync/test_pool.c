/* Group and Pool: membership, limits, spawn waiting, join, kill, map and
 * imap_unordered. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "synctest.h"

static gev_pool *pool;
static gev_event *gate;
static int fds;
static int running, max_running, finished;

static void setup(void) {
  fds = gev_test_fd_count();
  log_reset();
  running = max_running = finished = 0;
}

static void finish(void) {
  spawned_unref_all();
  gev_test_all_clean(fds);
}

/* Counts how many run at once; yields a few times while "working". */
static void *job(void *arg) {
  if (++running > max_running)
    max_running = running;
  for (int i = 0; i < I(arg) % 3 + 1; i++)
    gev_sleep(0);
  running--;
  finished++;
  return P(I(arg) * 2);
}

/* Waits for the gate, logs its id. */
static void *gated(void *arg) {
  int rc = gev_event_wait(gate, -1);
  log_add(rc == 0 ? I(arg) : -errno);
  return P(I(arg));
}

static void *failing(void *arg) {
  return gev_fail(I(arg), "job %d fails", I(arg));
}

START_TEST(group_tracks_members) {
  setup();
  pool = gev_group_new();
  gate = gev_event_new();
  ck_assert_int_eq(gev_pool_free_count(pool), LONG_MAX);
  gev_greenlet *g[3];
  for (int i = 0; i < 3; i++) {
    g[i] = gev_pool_spawn(pool, gated, P(i), 0);
    ck_assert_ptr_nonnull(g[i]);
  }
  ck_assert_int_eq(gev_pool_count(pool), 3);
  ck_assert_int_eq(gev_pool_contains(pool, g[1]), 1);
  ck_assert_int_eq(gev_pool_join(pool, 0.01), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_pool_discard(pool, g[1]), 0);
  ck_assert_int_eq(gev_pool_discard(pool, g[1]), -1);
  ck_assert_int_eq(errno, ENOENT);
  ck_assert_int_eq(gev_pool_contains(pool, g[1]), 0);
  ck_assert_int_eq(gev_pool_count(pool), 2);
  gev_event_set(gate);
  ck_assert_int_eq(gev_pool_join(pool, 5), 0);
  ck_assert_int_eq(gev_pool_count(pool), 0);
  /* discarded, but still runs */
  ck_assert_int_eq(gev_greenlet_join(g[1], 5), 0);
  ck_assert_str_eq(log_str(), "0 1 2");
  /* add: an outside greenlet joins the group and leaves when done */
  gev_event_clear(gate);
  gev_greenlet *x = spawn_kept(gated, P(9));
  ck_assert_int_eq(gev_pool_add(pool, x, 0), 0);
  ck_assert_int_eq(gev_pool_add(pool, x, 0), 0); /* again: nothing */
  ck_assert_int_eq(gev_pool_count(pool), 1);
  gev_event_set(gate);
  ck_assert_int_eq(gev_pool_join(pool, 5), 0);
  ck_assert_int_eq(gev_pool_add(pool, x, 0), 0); /* finished: nothing */
  ck_assert_int_eq(gev_pool_count(pool), 0);
  for (int i = 0; i < 3; i++)
    gev_greenlet_unref(g[i]);
  gev_pool_free(pool);
  gev_event_free(gate);
  run_hub();
  finish();
}
END_TEST

START_TEST(pool_limits_and_spawn_waits) {
  setup();
  pool = gev_pool_new(2);
  gate = gev_event_new();
  gev_greenlet *a = gev_pool_spawn(pool, gated, P(1), 0);
  gev_greenlet *b = gev_pool_spawn(pool, gated, P(2), 0);
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  ck_assert_int_eq(gev_pool_free_count(pool), 0);
  ck_assert_ptr_null(gev_pool_spawn(pool, gated, P(3), 0));
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_ptr_null(gev_pool_spawn(pool, gated, P(3), 0.01));
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_pool_wait_available(pool, 0.01), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_pool_count(pool), 2);
  gev_event_set(gate);
  /* main parks for a slot and gets one when a member finishes */
  gev_greenlet *c = gev_pool_spawn(pool, gated, P(3), 5);
  ck_assert_ptr_nonnull(c);
  ck_assert_int_le(gev_pool_count(pool), 2);
  ck_assert_int_eq(gev_pool_join(pool, 5), 0);
  ck_assert_int_eq(gev_pool_wait_available(pool, 0), 2);
  ck_assert_str_eq(log_str(), "1 2 3");
  gev_greenlet_unref(a);
  gev_greenlet_unref(b);
  gev_greenlet_unref(c);
  gev_pool_free(pool);
  gev_event_free(gate);
  run_hub();
  finish();
}
END_TEST

/* Spawns into the pool, logging when it got its slot. */
static void *spawner(void *arg) {
  gev_greenlet *g = gev_pool_spawn(pool, gated, P(I(arg) * 10), -1);
  if (!g) {
    log_add(-errno);
    return NULL;
  }
  log_add(I(arg));
  gev_greenlet_unref(g);
  return NULL;
}

static int barge_errno;

/* A newcomer tries to take a slot without waiting. */
static void barge_from_link(gev_greenlet *g, void *arg) {
  gev_greenlet *n = gev_pool_spawn(pool, gated, P(99), 0);
  barge_errno = n ? 0 : errno;
  if (n)
    gev_greenlet_unref(n);
}

START_TEST(pool_spawners_served_fifo_and_kill) {
  setup();
  pool = gev_pool_new(1);
  gate = gev_event_new();
  gev_greenlet *first = gev_pool_spawn(pool, gated, P(0), 0);
  spawn_kept(spawner, P(1));
  gev_greenlet *killed = spawn_kept(spawner, P(2));
  spawn_kept(spawner, P(3));
  ck_assert_int_eq(gev_sleep(0), 0); /* all three park for the slot */
  ck_assert_int_eq(gev_greenlet_kill(killed, 1, 1), 0);
  /* a newcomer does not barge ahead of parked spawners */
  ck_assert_ptr_null(gev_pool_spawn(pool, gated, P(99), 0));
  /* runs in the hub right after the pool's own link has handed the freed
   * slot to spawner 1, before spawner 1 runs */
  ck_assert_int_eq(gev_greenlet_link(first, barge_from_link, NULL), 0);
  gev_event_set(gate);
  ck_assert_int_eq(gev_greenlet_join(first, 5), 0);
  run_hub();
  ck_assert_int_eq(barge_errno, ETIMEDOUT);
  ck_assert_str_eq(log_str(), strf("%d 0 1 10 3 30", -ECANCELED));
  gev_greenlet_unref(first);
  gev_pool_free(pool);
  gev_event_free(gate);
  finish();
}
END_TEST

START_TEST(pool_freed_slot_is_reserved_for_woken_spawner) {
  /* One parked spawner: once woken it is off the wait queue, so only the
   * reservation keeps a newcomer from taking its slot. */
  setup();
  pool = gev_pool_new(1);
  gate = gev_event_new();
  gev_greenlet *first = gev_pool_spawn(pool, gated, P(0), 0);
  spawn_kept(spawner, P(1));
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(gev_greenlet_link(first, barge_from_link, NULL), 0);
  barge_errno = -1;
  gev_event_set(gate);
  run_hub();
  ck_assert_int_eq(barge_errno, ETIMEDOUT);
  ck_assert_str_eq(log_str(), "0 1 10");
  gev_greenlet_unref(first);
  gev_pool_free(pool);
  gev_event_free(gate);
  finish();
}
END_TEST

static gev_greenlet *outsider;

static void *adder(void *arg) {
  log_add(gev_pool_add(pool, outsider, -1) == 0 ? 1 : -errno);
  return NULL;
}

START_TEST(pool_add_waits_for_a_slot) {
  setup();
  pool = gev_pool_new(1);
  gate = gev_event_new();
  gev_greenlet *first = gev_pool_spawn(pool, gated, P(0), 0);
  outsider = spawn_kept(gated, P(5));
  ck_assert_int_eq(gev_pool_add(pool, outsider, 0), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_pool_add(pool, outsider, 0.01), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_pool_add(pool, NULL, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  spawn_kept(adder, NULL);
  ck_assert_int_eq(gev_sleep(0), 0); /* the adder parks */
  ck_assert_int_eq(gev_pool_contains(pool, outsider), 0);
  ck_assert_int_eq(gev_greenlet_kill(first, 1, 5), 0);
  ck_assert_int_eq(gev_sleep(0.001), 0);
  ck_assert_int_eq(gev_pool_contains(pool, outsider), 1);
  ck_assert_int_eq(gev_pool_free_count(pool), 0);
  gev_event_set(gate);
  ck_assert_int_eq(gev_pool_join(pool, 5), 0);
  run_hub();
  ck_assert_str_eq(log_str(), strf("%d 1 5", -ECANCELED));
  gev_greenlet_unref(first);
  gev_pool_free(pool);
  gev_event_free(gate);
  finish();
}
END_TEST

static void *avail_waiter(void *arg) {
  long n = gev_pool_wait_available(pool, -1);
  log_add(n > 0 ? (int)n : -errno);
  return NULL;
}

START_TEST(pool_wait_available_and_kill) {
  setup();
  pool = gev_pool_new(2);
  gate = gev_event_new();
  gev_greenlet *a = gev_pool_spawn(pool, gated, P(1), 0);
  gev_greenlet *b = gev_pool_spawn(pool, gated, P(2), 0);
  spawn_kept(avail_waiter, NULL);
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(gev_pool_kill(pool, 1, 5), 0);
  ck_assert_int_eq(gev_pool_count(pool), 0);
  run_hub();
  /* the killed members log ECANCELED; the waiter saw a free slot */
  ck_assert_int_eq(gev_greenlet_ready(a), 1);
  ck_assert_int_eq(gev_greenlet_ready(b), 1);
  const char *l = log_str();
  ck_assert_msg(strstr(l, strf("%d %d", -ECANCELED, -ECANCELED)) != NULL,
                "log: %s", l);
  ck_assert_int_eq(gev_pool_wait_available(pool, 0), 2);
  gev_greenlet_unref(a);
  gev_greenlet_unref(b);
  gev_pool_free(pool);
  gev_event_free(gate);
  finish();
}
END_TEST

static void *pool_joiner(void *arg) {
  log_add(gev_pool_join(pool, -1) == 0 ? 1 : -errno);
  return NULL;
}

START_TEST(pool_destroy_wakes_waiters) {
  setup();
  pool = gev_pool_new(1);
  gate = gev_event_new();
  gev_greenlet *a = gev_pool_spawn(pool, gated, P(1), 0);
  spawn_kept(spawner, P(2));
  spawn_kept(pool_joiner, NULL);
  spawn_kept(avail_waiter, NULL);
  ck_assert_int_eq(gev_sleep(0), 0);
  gev_pool_free(pool);
  /* gev_run would wait for a too: let the three waiters run instead */
  ck_assert_int_eq(gev_sleep(0.01), 0);
  ck_assert_str_eq(log_str(), strf("%d %d %d", -EIDRM, -EIDRM, -EIDRM));
  log_reset();
  gev_event_set(gate);
  ck_assert_int_eq(gev_greenlet_join(a, 5), 0); /* forgotten, not killed */
  ck_assert_str_eq(log_str(), "1");
  gev_greenlet_unref(a);
  gev_event_free(gate);
  ck_assert_int_eq(gev_pool_count(NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  gev_pool p;
  ck_assert_int_eq(gev_pool_init(&p, 3), 0);
  gev_pool_destroy(&p);
  ck_assert_ptr_null(gev_pool_spawn(&p, job, NULL, 0));
  ck_assert_int_eq(errno, EINVAL);
  finish();
}
END_TEST

START_TEST(pool_of_10_runs_10000_jobs) {
  setup();
  pool = gev_pool_new(10);
  for (int i = 0; i < 10000; i++) {
    gev_greenlet *g = gev_pool_spawn(pool, job, P(i), -1);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_le(gev_pool_count(pool), 10);
    gev_greenlet_unref(g);
  }
  ck_assert_int_eq(gev_pool_join(pool, -1), 0);
  ck_assert_int_eq(finished, 10000);
  ck_assert_int_le(max_running, 10);
  ck_assert_int_eq(max_running, 10);
  gev_pool_free(pool);
  run_hub();
  finish();
}
END_TEST

START_TEST(pool_map_keeps_order) {
  setup();
  enum { N = 200 };
  static void *args[N], *results[N];
  for (int i = 0; i < N; i++)
    args[i] = P(i);
  pool = gev_pool_new(7);
  ck_assert_int_eq(gev_pool_map(pool, job, args, results, N), 0);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(I(results[i]), 2 * i);
  ck_assert_int_le(max_running, 7);
  /* failures: first by index wins, failed results are NULL */
  static void *errs[4] = {P(0), P(0), P(0), P(0)};
  errs[1] = P(EIO);
  errs[3] = P(ENOSPC);
  ck_assert_int_eq(gev_pool_map(pool, failing, errs + 1, results, 1), -1);
  ck_assert_int_eq(errno, EIO);
  ck_assert_ptr_null(results[0]);
  ck_assert_int_eq(gev_pool_map(pool, job, NULL, results, 0), 0);
  ck_assert_int_eq(gev_pool_map(pool, NULL, args, results, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  gev_pool_free(pool);
  run_hub();
  finish();
}
END_TEST

START_TEST(pool_imap_unordered_yields_all) {
  setup();
  enum { N = 300 };
  static void *args[N];
  static int got[N];
  for (int i = 0; i < N; i++)
    args[i] = P(i);
  pool = gev_pool_new(5);
  gev_pool_imap *it = gev_pool_imap_unordered(pool, job, args, N);
  ck_assert_ptr_nonnull(it);
  size_t idx;
  void *v;
  int n = 0, rc, out_of_order = 0;
  while ((rc = gev_pool_imap_next(it, 5, &idx, &v)) == 1) {
    ck_assert_uint_lt(idx, N);
    ck_assert_int_eq(I(v), 2 * (int)idx);
    got[idx]++;
    out_of_order += (int)idx != n;
    n++;
  }
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(n, N);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(got[i], 1);
  ck_assert_int_gt(out_of_order, 0); /* jobs of varying length */
  ck_assert_int_le(max_running, 5);
  ck_assert_int_eq(gev_pool_imap_next(it, 0, &idx, &v), 0);
  gev_pool_imap_free(it);
  gev_pool_free(pool);
  run_hub();
  finish();
}
END_TEST

START_TEST(pool_imap_errors_timeout_and_early_free) {
  setup();
  static void *errs[3] = {P(EIO), P(EIO), P(EIO)};
  pool = gev_pool_new(2);
  gev_pool_imap *it = gev_pool_imap_unordered(pool, failing, errs, 3);
  size_t idx = 99;
  int fails = 0;
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(gev_pool_imap_next(it, 5, &idx, NULL), -1);
    ck_assert_int_eq(errno, EIO);
    ck_assert_uint_lt(idx, 3);
    fails++;
  }
  ck_assert_int_eq(gev_pool_imap_next(it, 5, &idx, NULL), 0);
  gev_pool_imap_free(it);

  gate = gev_event_new();
  static void *ids[4] = {P(1), P(2), P(3), P(4)};
  it = gev_pool_imap_unordered(pool, gated, ids, 4);
  ck_assert_int_eq(gev_pool_imap_next(it, 0.02, &idx, NULL), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_pool_count(pool), 2);
  gev_pool_imap_free(it); /* kills the two running jobs */
  ck_assert_int_eq(gev_pool_join(pool, 5), 0);
  ck_assert_str_eq(log_str(), strf("%d %d", -ECANCELED, -ECANCELED));
  log_reset();

  /* freed while its jobs have finished but their links have not run */
  gev_event_clear(gate);
  it = gev_pool_imap_unordered(pool, gated, ids, 2);
  ck_assert_int_eq(gev_pool_imap_next(it, 0, &idx, NULL), -1);
  ck_assert_int_eq(errno, ETIMEDOUT); /* both jobs spawned, parked */
  gev_event_set(gate);
  ck_assert_int_eq(gev_sleep(0), 0); /* they finish; links still queued */
  gev_pool_imap_free(it);
  ck_assert_int_eq(gev_pool_join(pool, 5), 0);
  ck_assert_str_eq(log_str(), "1 2");
  ck_assert_ptr_null(gev_pool_imap_unordered(pool, NULL, ids, 1));
  ck_assert_int_eq(errno, EINVAL);
  gev_event_free(gate);
  gev_pool_free(pool);
  run_hub();
  finish();
}
END_TEST

/* ---- Work from inside the pool ------------------------------------- */

static void *square(void *arg) { return P(I(arg) * I(arg)); }

static void *square_or_fail(void *arg) {
  gev_sleep(0);
  if (I(arg) == 3)
    return gev_fail(EDOM, "three");
  return P(I(arg) * I(arg));
}

static void *const map_args[4] = {P(1), P(2), P(3), P(4)};

/* A member maps through its own pool. */
static void *member_maps(void *arg) {
  void *results[4];
  if (gev_pool_map(pool, square, map_args, results, 4) < 0)
    return gev_fail(errno, "map from a member");
  for (int i = 0; i < 4; i++)
    log_add(I(results[i]));
  return arg;
}

START_TEST(pool_map_from_a_member_of_a_full_pool) {
  setup();
  pool = gev_pool_new(1);
  gev_greenlet *g = gev_pool_spawn(pool, member_maps, NULL, -1);
  ck_assert_int_eq(gev_greenlet_get(g, 5, NULL), 0);
  ck_assert_str_eq(log_str(), "1 4 9 16");
  gev_greenlet_unref(g);
  /* Two members of a Pool(2) mapping at once: each uses its own slot. */
  log_reset();
  gev_pool_free(pool);
  pool = gev_pool_new(2);
  gev_greenlet *a = gev_pool_spawn(pool, member_maps, NULL, -1);
  gev_greenlet *b = gev_pool_spawn(pool, member_maps, NULL, -1);
  ck_assert_int_eq(gev_greenlet_get(a, 5, NULL), 0);
  ck_assert_int_eq(gev_greenlet_get(b, 5, NULL), 0);
  ck_assert_str_eq(log_str(), "1 4 9 16 1 4 9 16");
  gev_greenlet_unref(a);
  gev_greenlet_unref(b);
  gev_pool_free(pool);
  finish();
}
END_TEST

/* A member iterates imap_unordered over its own full pool. */
static void *member_imaps(void *arg) {
  gev_pool_imap *it = gev_pool_imap_unordered(pool, square, map_args, 4);
  size_t index;
  void *value;
  int rc, sum = 0;
  while ((rc = gev_pool_imap_next(it, 5, &index, &value)) == 1)
    sum += I(value);
  int err = errno;
  gev_pool_imap_free(it);
  if (rc < 0)
    return gev_fail(err, "imap from a member");
  return P(sum);
}

START_TEST(pool_imap_from_a_member_of_a_full_pool) {
  setup();
  pool = gev_pool_new(1);
  gev_greenlet *g = gev_pool_spawn(pool, member_imaps, NULL, -1);
  void *sum;
  ck_assert_int_eq(gev_greenlet_get(g, 5, &sum), 0);
  ck_assert_int_eq(I(sum), 1 + 4 + 9 + 16);
  gev_greenlet_unref(g);
  gev_pool_free(pool);
  finish();
}
END_TEST

/* Pool(1): an apply from inside an apply returns the value (gevent). */
static void *nested_apply(void *arg) {
  void *v;
  if (gev_pool_apply(pool, square, arg, &v) < 0)
    return gev_fail(errno, "inner apply");
  /* A failing job fails the apply, not the caller's greenlet. */
  if (gev_pool_apply(pool, square_or_fail, P(3), NULL) == 0 || errno != EDOM)
    return gev_fail(EPROTO, "inner failure not reported");
  return P(I(v) + 1);
}

START_TEST(pool_apply_runs_inline_in_a_member) {
  setup();
  pool = gev_pool_new(1);
  void *v;
  ck_assert_int_eq(gev_pool_apply(pool, square, P(7), &v), 0);
  ck_assert_int_eq(I(v), 49);
  ck_assert_int_eq(gev_pool_apply(pool, nested_apply, P(5), &v), 0);
  ck_assert_int_eq(I(v), 26);
  ck_assert_int_eq(gev_pool_apply(pool, square_or_fail, P(3), &v), -1);
  ck_assert_int_eq(errno, EDOM);
  ck_assert_int_eq(gev_pool_apply(pool, NULL, NULL, &v), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_pool_apply(NULL, square, NULL, &v), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_pool_count(pool), 0);
  gev_pool_free(pool);
  /* A Group member's apply runs inline too. */
  pool = gev_group_new();
  gev_greenlet *g = gev_pool_spawn(pool, nested_apply, P(2), -1);
  ck_assert_int_eq(gev_greenlet_get(g, 5, &v), 0);
  ck_assert_int_eq(I(v), 5);
  gev_greenlet_unref(g);
  gev_pool_free(pool);
  finish();
}
END_TEST

static void *long_job(void *arg) {
  gev_sleep(10);
  return arg;
}

static void *applier(void *arg) {
  gev_pool_apply(pool, long_job, NULL, NULL);
  log_add(-errno);
  return NULL;
}

START_TEST(pool_apply_interrupted_abandons_the_job) {
  setup();
  pool = gev_pool_new(1);
  gev_greenlet *g = spawn_kept(applier, NULL);
  ck_assert_int_eq(gev_sleep(0.01), 0);
  ck_assert_int_eq(gev_pool_count(pool), 1);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 5), 0);
  ck_assert_int_eq(gev_pool_join(pool, 5), 0); /* the job was killed */
  ck_assert_str_eq(log_str(), strf("%d", -ECANCELED));
  gev_pool_free(pool);
  finish();
}
END_TEST

START_TEST(pool_map_timeout_kills_the_rest) {
  setup();
  pool = gev_pool_new(2);
  void *results[4];
  void *const args[4] = {P(1), P(2), P(3), P(4)};
  double t0 = gev_monotonic();
  ck_assert_int_eq(gev_pool_map_timeout(pool, long_job, args, results, 4, 0.05),
                   -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert(gev_monotonic() - t0 >= 0.05);
  ck_assert_int_eq(gev_pool_join(pool, 5), 0);
  ck_assert_int_eq(gev_pool_map_timeout(pool, square, args, results, 4, 5), 0);
  ck_assert_int_eq(I(results[3]), 16);
  ck_assert_int_eq(
      gev_pool_map_timeout(pool, square_or_fail, args, results, 4, 5), -1);
  ck_assert_int_eq(errno, EDOM);
  gev_pool_free(pool);
  finish();
}
END_TEST

static Suite *pool_suite(void) {
  Suite *s = suite_create("sync_pool");
  TCase *tc = tcase_create("pool");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, group_tracks_members);
  tcase_add_test(tc, pool_limits_and_spawn_waits);
  tcase_add_test(tc, pool_spawners_served_fifo_and_kill);
  tcase_add_test(tc, pool_freed_slot_is_reserved_for_woken_spawner);
  tcase_add_test(tc, pool_add_waits_for_a_slot);
  tcase_add_test(tc, pool_wait_available_and_kill);
  tcase_add_test(tc, pool_destroy_wakes_waiters);
  tcase_add_test(tc, pool_of_10_runs_10000_jobs);
  tcase_add_test(tc, pool_map_keeps_order);
  tcase_add_test(tc, pool_imap_unordered_yields_all);
  tcase_add_test(tc, pool_imap_errors_timeout_and_early_free);
  tcase_add_test(tc, pool_map_from_a_member_of_a_full_pool);
  tcase_add_test(tc, pool_imap_from_a_member_of_a_full_pool);
  tcase_add_test(tc, pool_apply_runs_inline_in_a_member);
  tcase_add_test(tc, pool_apply_interrupted_abandons_the_job);
  tcase_add_test(tc, pool_map_timeout_kills_the_rest);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(pool_suite)
