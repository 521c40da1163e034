/* Greenlets: spawn order, values, errors, join/get, kill, links, joinall,
 * iwait, killall, and the many-greenlets cases. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gev/hub.h"
#include "hub/hub_internal.h"
#include "testutil.h"

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) { gev_test_all_clean(fds_before); }

static int order[64], norder;
static void *record(void *arg) {
  if (norder < 64)
    order[norder++] = (int)(intptr_t)arg;
  return arg;
}

START_TEST(test_spawn_order_is_fifo_and_values_flow) {
  gev_greenlet *gs[10];
  norder = 0;
  for (int i = 0; i < 10; i++)
    gs[i] = gev_spawn(record, (void *)(intptr_t)i);
  ck_assert_int_eq(gev_joinall(gs, 10, -1, 0, 0), 10);
  for (int i = 0; i < 10; i++) {
    void *v;
    ck_assert_int_eq(order[i], i);
    ck_assert(gev_greenlet_ready(gs[i]) && gev_greenlet_successful(gs[i]));
    ck_assert_int_eq(gev_greenlet_get(gs[i], 0, &v), 0);
    ck_assert_int_eq((int)(intptr_t)v, i);
    gev_greenlet_unref(gs[i]);
  }
}
END_TEST

static void *sleeper(void *arg) {
  if (gev_sleep((double)(intptr_t)arg / 1000.0) < 0)
    return gev_fail(errno, "sleep failed");
  if (norder < 64)
    order[norder++] = (int)(intptr_t)arg;
  return NULL;
}

START_TEST(test_sleepers_finish_in_deadline_order) {
  gev_greenlet *gs[5];
  int ms[5] = {50, 10, 40, 20, 30};
  norder = 0;
  for (int i = 0; i < 5; i++)
    gs[i] = gev_spawn(sleeper, (void *)(intptr_t)ms[i]);
  ck_assert_int_eq(gev_joinall(gs, 5, 5, 0, 0), 5);
  for (int i = 0; i < 5; i++) {
    ck_assert_int_eq(order[i], (i + 1) * 10);
    gev_greenlet_unref(gs[i]);
  }
}
END_TEST

/* Each sleeper records the deadline the hub armed for it (a point on
 * gev_monotonic()'s clock) in finish order, and checks it did not wake
 * before it. The hub reads the clock for a deadline a moment before it
 * refreshes libev's time; a sleeper preempted in between wakes late by
 * the preemption, so the order check allows some milliseconds. */
static double *g_order;
static size_t g_n;
static void *rand_sleeper(void *arg) {
  unsigned ms = (unsigned)(uintptr_t)arg;
  if (gev_sleep(ms / 1000.0) < 0)
    return gev_fail(errno, "sleep");
  double deadline = gev__task_current()->deadline_at;
  if (gev_monotonic() < deadline)
    return gev_fail(ETIME, "woke before the deadline");
  g_order[g_n++] = deadline;
  return NULL;
}

START_TEST(test_10000_sleepers_in_deadline_order) {
  enum { N = 10000 };
  g_order = calloc(N, sizeof *g_order);
  g_n = 0;
  srand(42);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(
        gev_spawn_raw(rand_sleeper, (void *)(uintptr_t)(1 + rand() % 200)), 0);
  ck_assert_int_eq(gev_run(), 0);
  ck_assert_uint_eq(g_n, N);
  for (int i = 1; i < N; i++)
    ck_assert_double_le(g_order[i - 1], g_order[i] + 0.01);
  free(g_order);
}
END_TEST

static void *failer(void *arg) {
  return gev_fail(EPIPE, "peer %s went away", (char *)arg);
}

START_TEST(test_failure_value_and_message) {
  void *v;
  gev_greenlet *g = gev_spawn(failer, "alice");
  ck_assert_int_eq(gev_greenlet_get(g, -1, &v), -1);
  ck_assert_int_eq(errno, EPIPE);
  ck_assert(gev_greenlet_ready(g) && !gev_greenlet_successful(g));
  ck_assert_int_eq(gev_greenlet_error(g), EPIPE);
  ck_assert_str_eq(gev_greenlet_errmsg(g), "peer alice went away");
  gev_greenlet_unref(g);
}
END_TEST

static int link_calls[4], nlinks;
static void on_done(gev_greenlet *g, void *arg) {
  link_calls[nlinks++] = (int)(intptr_t)arg;
}
static void unexpected_link(gev_greenlet *g, void *arg) {
  ck_abort_msg("unlinked callback ran");
}

START_TEST(test_links_run_once_in_order_also_after_completion) {
  gev_greenlet *g = gev_spawn(record, NULL);
  nlinks = 0;
  ck_assert_int_eq(gev_greenlet_link(g, on_done, (void *)1), 0);
  ck_assert_int_eq(gev_greenlet_link(g, unexpected_link, NULL), 0);
  ck_assert_int_eq(gev_greenlet_link(g, on_done, (void *)2), 0);
  ck_assert_int_eq(gev_greenlet_unlink(g, unexpected_link, NULL), 0);
  ck_assert_int_eq(gev_greenlet_unlink(g, unexpected_link, NULL), -1);
  ck_assert_int_eq(errno, ENOENT);
  ck_assert_int_eq(gev_greenlet_join(g, -1), 0);
  ck_assert_int_eq(gev_sleep(0), 0); /* links run from the hub */
  ck_assert_int_eq(nlinks, 2);
  ck_assert_int_eq(link_calls[0], 1);
  ck_assert_int_eq(link_calls[1], 2);
  ck_assert_int_eq(gev_greenlet_link(g, on_done, (void *)3), 0);
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(nlinks, 3);
  ck_assert_int_eq(link_calls[2], 3);
  gev_greenlet_unref(g);
}
END_TEST

static int g_ran;
static void *mark(void *arg) {
  g_ran = 1;
  return NULL;
}

START_TEST(test_kill_before_start_never_runs_links_fire) {
  gev_greenlet *g = gev_spawn(mark, NULL);
  g_ran = 0;
  nlinks = 0;
  gev_greenlet_link(g, on_done, (void *)7);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, -1), 0);
  ck_assert(gev_greenlet_ready(g) && gev_greenlet_successful(g));
  ck_assert(!gev_greenlet_started(g));
  ck_assert_int_eq(gev_sleep(0.01), 0);
  ck_assert(!g_ran);
  ck_assert_int_eq(nlinks, 1);
  gev_greenlet_unref(g);
  g = gev_spawn_later(0.01, mark, NULL);
  ck_assert_int_eq(gev_greenlet_kill(g, 0, -1), 0);
  ck_assert_int_eq(gev_sleep(0.03), 0);
  ck_assert(!g_ran);
  gev_greenlet_unref(g);
}
END_TEST

static int g_err_seen[3];
static void *sleep_then_sleep(void *arg) {
  int *seen = arg;
  seen[0] = gev_sleep(10) < 0 ? errno : 0;
  seen[1] = gev_sleep(0) < 0 ? errno : 0; /* sticky */
  seen[2] = gev_wait_read(0, 1) < 0 ? errno : 0;
  return NULL;
}

START_TEST(test_kill_parked_on_timer_is_sticky) {
  gev_greenlet *g = gev_spawn(sleep_then_sleep, g_err_seen);
  ck_assert_int_eq(gev_sleep(0.01), 0);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 2), 0);
  ck_assert_int_eq(g_err_seen[0], ECANCELED);
  ck_assert_int_eq(g_err_seen[1], ECANCELED);
  ck_assert_int_eq(g_err_seen[2], ECANCELED);
  ck_assert(gev_greenlet_successful(g));
  gev_greenlet_unref(g);
}
END_TEST

static int g_pipe[2];
static void *read_pipe(void *arg) {
  if (gev_wait_read(g_pipe[0], -1) < 0)
    return gev_fail(errno, "wait_read");
  return (void *)1;
}

START_TEST(test_fd_wait_and_kill_parked_on_fd) {
  ck_assert_int_eq(pipe(g_pipe), 0);
  gev_greenlet *g = gev_spawn(read_pipe, NULL);
  gev_greenlet *g2 = gev_spawn(read_pipe, NULL);
  ck_assert_int_eq(gev_sleep(0.01), 0);
  ck_assert(gev_greenlet_ready(g2)); /* second reader refused */
  ck_assert_int_eq(gev_greenlet_error(g2), EBUSY);
  ck_assert_int_eq(write(g_pipe[1], "x", 1), 1);
  void *v;
  ck_assert_int_eq(gev_greenlet_get(g, 1, &v), 0);
  ck_assert_ptr_eq(v, (void *)1);
  gev_greenlet_unref(g);
  gev_greenlet_unref(g2);
  char c;
  ck_assert_int_eq(read(g_pipe[0], &c, 1), 1);
  g = gev_spawn(read_pipe, NULL);
  ck_assert_int_eq(gev_sleep(0.01), 0);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 1), 0);
  ck_assert(gev_greenlet_ready(g));
  gev_greenlet_unref(g);
  close(g_pipe[0]);
  close(g_pipe[1]);
}
END_TEST

static gev_greenlet *g_target;
static void *join_target(void *arg) {
  if (gev_greenlet_join(g_target, -1) < 0)
    return gev_fail(errno, "join");
  return (void *)2;
}

START_TEST(test_kill_parked_on_join) {
  g_target = gev_spawn(sleeper, (void *)(intptr_t)5000);
  gev_greenlet *j = gev_spawn(join_target, NULL);
  ck_assert_int_eq(gev_sleep(0.01), 0);
  ck_assert_int_eq(gev_greenlet_kill(j, 1, 1), 0);
  ck_assert_int_eq(gev_greenlet_error(j), ECANCELED == 0); /* success */
  ck_assert(gev_greenlet_successful(j));
  ck_assert_int_eq(gev_greenlet_kill(g_target, 1, 1), 0);
  gev_greenlet_unref(j);
  gev_greenlet_unref(g_target);
}
END_TEST

START_TEST(test_joinall_timeout_returns_finished_subset) {
  gev_greenlet *gs[4];
  gs[0] = gev_spawn(sleeper, (void *)(intptr_t)1);
  gs[1] = gev_spawn(sleeper, (void *)(intptr_t)2);
  gs[2] = gev_spawn(sleeper, (void *)(intptr_t)3000);
  gs[3] = gev_spawn(sleeper, (void *)(intptr_t)3000);
  ck_assert_int_eq(gev_joinall(gs, 4, 0.2, 0, 0), 2);
  ck_assert(!gev_greenlet_ready(gs[2]));             /* not killed */
  ck_assert_int_eq(gev_joinall(gs, 4, -1, 0, 1), 2); /* count */
  ck_assert_int_eq(gev_killall(gs, 4, 1, 1), 0);
  for (int i = 0; i < 4; i++) {
    ck_assert(gev_greenlet_ready(gs[i]));
    gev_greenlet_unref(gs[i]);
  }
}
END_TEST

START_TEST(test_joinall_stops_at_first_error) {
  gev_greenlet *gs[2];
  gs[0] = gev_spawn(sleeper, (void *)(intptr_t)3000);
  gs[1] = gev_spawn(failer, "x");
  ck_assert_int_eq(gev_joinall(gs, 2, 5, GEV_JOIN_RAISE_ERROR, 0), 1);
  ck_assert_int_eq(gev_killall(gs, 2, 1, 1), 0);
  gev_greenlet_unref(gs[0]);
  gev_greenlet_unref(gs[1]);
}
END_TEST

START_TEST(test_iwait_yields_in_finish_order) {
  gev_greenlet *gs[3], *g;
  gs[0] = gev_spawn(sleeper, (void *)(intptr_t)30);
  gs[1] = gev_spawn(sleeper, (void *)(intptr_t)10);
  gs[2] = gev_spawn(sleeper, (void *)(intptr_t)2000);
  gev_iwait *it = gev_iwait_new(gs, 3, 0.3);
  ck_assert_ptr_eq(gev_iwait_next(it), gs[1]);
  ck_assert_ptr_eq(gev_iwait_next(it), gs[0]);
  g = gev_iwait_next(it);
  ck_assert_ptr_null(g);
  ck_assert_int_eq(errno, ETIMEDOUT);
  gev_iwait_free(it);
  gev_killall(gs, 3, 1, 1);
  it = gev_iwait_new(gs, 3, -1);
  for (int i = 0; i < 3; i++)
    ck_assert_ptr_nonnull(gev_iwait_next(it));
  ck_assert_ptr_null(gev_iwait_next(it));
  ck_assert_int_eq(errno, 0);
  gev_iwait_free(it);
  for (int i = 0; i < 3; i++)
    gev_greenlet_unref(gs[i]);
}
END_TEST

static void *join_self(void *arg) {
  if (gev_greenlet_join(gev_getcurrent(), -1) < 0)
    return gev_fail(errno, "join self");
  return NULL;
}

START_TEST(test_misuse_errors) {
  gev_greenlet *g = gev_spawn(join_self, NULL);
  ck_assert_int_eq(gev_greenlet_join(g, -1), 0);
  ck_assert_int_eq(gev_greenlet_error(g), EDEADLK);
  gev_greenlet_unref(g);
  ck_assert_ptr_null(gev_spawn(NULL, NULL));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_greenlet_join(NULL, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_ptr_null(gev_spawn_later(-1, mark, NULL));
  ck_assert_ptr_null(gev_getcurrent());
  ck_assert_int_eq(gev_joinall(NULL, 2, 0, 0, 0), -1);
}
END_TEST

static void *wait_forever(void *arg) {
  gev_waiter *w = arg;
  if (gev_waiter_get(w, NULL) < 0)
    return gev_fail(errno, "waiter");
  return NULL;
}

START_TEST(test_would_block_forever) {
  gev_waiter *w = malloc(sizeof *w);
  gev_waiter_init(w);
  gev_greenlet *g = gev_spawn(wait_forever, w);
  ck_assert_int_eq(gev_greenlet_join(g, -1), -1);
  ck_assert_int_eq(errno, EDEADLK);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 1), 0);
  gev_greenlet_unref(g);
  free(w);
}
END_TEST

static void *raw_job(void *arg) {
  (*(int *)arg)++;
  return NULL;
}

START_TEST(test_spawn_raw_and_run_until_idle) {
  int n = 0;
  for (int i = 0; i < 1000; i++)
    ck_assert_int_eq(gev_spawn_raw(raw_job, &n), 0);
  ck_assert_int_eq(gev_run(), 0);
  ck_assert_int_eq(n, 1000);
}
END_TEST

static void *spin_forever_parked(void *arg) {
  gev_sleep(100);
  return NULL;
}

START_TEST(test_unjoined_greenlets_do_not_leak) {
  for (int i = 0; i < 100; i++)
    gev_spawn_raw(record, NULL);
  gev_greenlet *g = gev_spawn(spin_forever_parked, NULL);
  gev_greenlet_unref(g); /* nobody holds it; destroy kills it */
  ck_assert_int_eq(gev_sleep(0.01), 0);
  ck_assert_int_eq(gev_hub_destroy(), 0);
}
END_TEST

/* A greenlet whose stack cannot be mapped fails with ENOMEM, never runs,
 * and its links fire. In a child, under an address-space limit (not under
 * ASan, whose shadow memory needs the address space). */
START_TEST(test_stack_mapping_failure_fails_the_greenlet) {
#ifndef __SANITIZE_ADDRESS__
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit rl = {512u << 20, 512u << 20};
    gev_spawn_opts o = {.stack_size = (size_t)1 << 30,
                        .stack_mode = GEV_STACK_DEDICATED};
    setrlimit(RLIMIT_AS, &rl);
    g_ran = 0;
    nlinks = 0;
    gev_greenlet *g = gev_spawn_ex(&o, mark, NULL);
    gev_greenlet_link(g, on_done, (void *)9);
    int rc = gev_greenlet_join(g, 2);
    gev_sleep(0);
    int ok =
        rc == 0 && gev_greenlet_error(g) == ENOMEM && !g_ran && nlinks == 1;
    gev_greenlet_unref(g);
    _exit(ok ? 0 : 1);
  }
  int st;
  waitpid(pid, &st, 0);
  ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
#endif
}
END_TEST

/* A join is a link appended last (gevent's order): whoever waits for a
 * greenlet sees the links added before the wait already run. */
static int cleanups;
static void cleanup_link(gev_greenlet *g, void *arg) { cleanups++; }

static void *quick(void *arg) { return arg; }
static void *long_sleep(void *arg) {
  gev_sleep(10);
  return arg;
}

/* Joins the greenlet in arg, which finished already when this starts but
 * whose links have not run yet; returns how many cleanups it then saw. */
static void *join_ready(void *arg) {
  if (!gev_greenlet_ready(arg))
    return gev_fail(EPROTO, "the joined greenlet should be ready");
  if (gev_greenlet_join(arg, -1) < 0)
    return gev_fail(errno, "join");
  return (void *)(intptr_t)cleanups;
}

START_TEST(test_waiters_see_earlier_links_run) {
  gev_greenlet *g;
  void *v;
  /* join, get, kill with block */
  cleanups = 0;
  g = gev_spawn(quick, NULL);
  ck_assert_int_eq(gev_greenlet_link(g, cleanup_link, NULL), 0);
  ck_assert_int_eq(gev_greenlet_join(g, -1), 0);
  ck_assert_int_eq(cleanups, 1);
  gev_greenlet_unref(g);
  g = gev_spawn(quick, NULL);
  ck_assert_int_eq(gev_greenlet_link(g, cleanup_link, NULL), 0);
  ck_assert_int_eq(gev_greenlet_get(g, -1, &v), 0);
  ck_assert_int_eq(cleanups, 2);
  gev_greenlet_unref(g);
  g = gev_spawn(long_sleep, NULL);
  ck_assert_int_eq(gev_greenlet_link(g, cleanup_link, NULL), 0);
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, -1), 0);
  ck_assert_int_eq(cleanups, 3);
  gev_greenlet_unref(g);
  /* joinall and iwait */
  gev_greenlet *gs[2] = {gev_spawn(quick, NULL), gev_spawn(quick, NULL)};
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(gev_greenlet_link(gs[i], cleanup_link, NULL), 0);
  ck_assert_int_eq(gev_joinall(gs, 2, -1, 0, 0), 2);
  ck_assert_int_eq(cleanups, 5);
  for (int i = 0; i < 2; i++)
    gev_greenlet_unref(gs[i]);
  gs[0] = gev_spawn(quick, NULL);
  gs[1] = gev_spawn(quick, NULL);
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(gev_greenlet_link(gs[i], cleanup_link, NULL), 0);
  gev_iwait *it = gev_iwait_new(gs, 2, -1);
  ck_assert_ptr_eq(gev_iwait_next(it), gs[0]);
  ck_assert_int_ge(cleanups, 6); /* gs[1] may have finished meanwhile */
  ck_assert_ptr_eq(gev_iwait_next(it), gs[1]);
  ck_assert_int_eq(cleanups, 7);
  gev_iwait_free(it);
  for (int i = 0; i < 2; i++)
    gev_greenlet_unref(gs[i]);
}
END_TEST

/* The joiner starts after the joined greenlet returned but before its
 * links ran (its done callback is queued behind the joiner's start). */
START_TEST(test_join_of_ready_greenlet_waits_for_its_links) {
  cleanups = 0;
  gev_greenlet *g = gev_spawn(quick, NULL);
  ck_assert_int_eq(gev_greenlet_link(g, cleanup_link, NULL), 0);
  gev_greenlet *j = gev_spawn(join_ready, g);
  void *seen;
  ck_assert_int_eq(gev_greenlet_get(j, -1, &seen), 0);
  ck_assert_int_eq((int)(intptr_t)seen, 1);
  gev_greenlet_unref(j);
  gev_greenlet_unref(g);
}
END_TEST

static void unref_twice(void) {
  gev_greenlet *g = gev_spawn(quick, NULL);
  gev_greenlet_join(g, -1);
  gev_greenlet_unref(g);
  gev_greenlet_unref(g); /* the bug */
}

static void unref_twice_after_reuse_attempts(void) {
  gev_greenlet *g = gev_spawn(quick, NULL);
  gev_greenlet_join(g, -1);
  gev_greenlet_unref(g);
  /* Newer greenlets come and go; the released block waits its turn. */
  for (int i = 0; i < 10; i++) {
    gev_greenlet *other = gev_spawn(quick, NULL);
    gev_greenlet_join(other, -1);
    gev_greenlet_unref(other);
  }
  gev_greenlet_join(g, -1); /* the bug */
}

START_TEST(test_released_handle_aborts_loudly) {
  const char *out = gev_test_child_aborts(unref_twice);
  ck_assert_msg(strstr(out, "gev: greenlet handle released twice"), "%s", out);
  out = gev_test_child_aborts(unref_twice_after_reuse_attempts);
  ck_assert_msg(strstr(out, "gev: greenlet handle used after its last release"),
                "%s", out);
}
END_TEST

static Suite *greenlet_suite(void) {
  Suite *s = suite_create("greenlet");
  TCase *tc = tcase_create("greenlet");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_spawn_order_is_fifo_and_values_flow);
  tcase_add_test(tc, test_sleepers_finish_in_deadline_order);
  tcase_add_test(tc, test_10000_sleepers_in_deadline_order);
  tcase_add_test(tc, test_failure_value_and_message);
  tcase_add_test(tc, test_links_run_once_in_order_also_after_completion);
  tcase_add_test(tc, test_waiters_see_earlier_links_run);
  tcase_add_test(tc, test_join_of_ready_greenlet_waits_for_its_links);
  tcase_add_test(tc, test_released_handle_aborts_loudly);
  tcase_add_test(tc, test_kill_before_start_never_runs_links_fire);
  tcase_add_test(tc, test_kill_parked_on_timer_is_sticky);
  tcase_add_test(tc, test_fd_wait_and_kill_parked_on_fd);
  tcase_add_test(tc, test_kill_parked_on_join);
  tcase_add_test(tc, test_joinall_timeout_returns_finished_subset);
  tcase_add_test(tc, test_joinall_stops_at_first_error);
  tcase_add_test(tc, test_iwait_yields_in_finish_order);
  tcase_add_test(tc, test_misuse_errors);
  tcase_add_test(tc, test_would_block_forever);
  tcase_add_test(tc, test_spawn_raw_and_run_until_idle);
  tcase_add_test(tc, test_unjoined_greenlets_do_not_leak);
  tcase_add_test(tc, test_stack_mapping_failure_fails_the_greenlet);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(greenlet_suite)
