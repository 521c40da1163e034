/* Greenlets created without starting (start, start_later, dropped unstarted,
 * killed unstarted) and links that run only on success or on failure. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "gev/hub.h"
#include "gev/sync.h"
#include "testutil.h"

#define P(i) ((void *)(intptr_t)(i))

static int fds;
static int ran, links_run;
static char log_buf[64];

static void begin(void) {
  fds = gev_test_fd_count();
  ran = links_run = 0;
  log_buf[0] = '\0';
}
static void end(void) { gev_test_all_clean(fds); }

static void *body(void *arg) {
  ran++;
  return arg;
}

static void *failing(void *arg) { return gev_fail(EPIPE, "broken %d", 9); }

static void note(gev_greenlet *g, void *arg) {
  links_run++;
  strcat(log_buf, arg);
}

START_TEST(created_then_started) {
  begin();
  gev_greenlet *g = gev_greenlet_new(body, P(5));
  ck_assert_ptr_nonnull(g);
  gev_sleep(0);
  ck_assert_int_eq(ran, 0); /* not started: never scheduled */
  ck_assert(!gev_greenlet_started(g));
  ck_assert_int_eq(gev_greenlet_join(g, 0.01), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_greenlet_start(g), 0);
  ck_assert_int_eq(gev_greenlet_start(g), 0); /* twice: nothing more */
  void *v;
  ck_assert_int_eq(gev_greenlet_get(g, 5, &v), 0);
  ck_assert_ptr_eq(v, P(5));
  ck_assert_int_eq(ran, 1);
  ck_assert_int_eq(gev_greenlet_start(g), 0); /* finished: nothing */
  gev_greenlet_unref(g);

  gev_spawn_opts o = {.name = "named"};
  g = gev_greenlet_new_ex(&o, body, NULL);
  ck_assert_str_eq(gev_greenlet_name(g), "named");
  double t0 = gev_monotonic();
  ck_assert_int_eq(gev_greenlet_start_later(g, 0.05), 0);
  ck_assert_int_eq(gev_greenlet_start(g), 0); /* already scheduled */
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  ck_assert(gev_monotonic() - t0 >= 0.05);
  ck_assert_int_eq(ran, 2);
  gev_greenlet_unref(g);
  end();
}
END_TEST

START_TEST(unstarted_killed_or_dropped) {
  begin();
  gev_greenlet *g = gev_greenlet_new(body, NULL);
  ck_assert_int_eq(gev_greenlet_link(g, note, "k"), 0);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 5), 0);
  ck_assert(gev_greenlet_ready(g));
  ck_assert(gev_greenlet_successful(g));
  ck_assert_int_eq(ran, 0);
  ck_assert_int_eq(links_run, 1);
  ck_assert_int_eq(gev_greenlet_start(g), 0); /* killed: never runs */
  gev_sleep(0);
  ck_assert_int_eq(ran, 0);
  gev_greenlet_unref(g);

  /* The last handle of a never-started greenlet: it can never run, so it
   * is killed (its links fire) and freed; nothing leaks. */
  g = gev_greenlet_new(body, NULL);
  gev_greenlet_link(g, note, "d");
  gev_greenlet_unref(g);
  ck_assert_int_eq(gev_run(), 0);
  ck_assert_int_eq(ran, 0);
  ck_assert_str_eq(log_buf, "kd");

  /* A scheduled one runs even without a handle. */
  g = gev_greenlet_new(body, NULL);
  gev_greenlet_start(g);
  gev_greenlet_unref(g);
  ck_assert_int_eq(gev_run(), 0);
  ck_assert_int_eq(ran, 1);

  /* Joining one that nothing will start would wait forever: EDEADLK. */
  g = gev_greenlet_new(body, NULL);
  ck_assert_int_eq(gev_greenlet_join(g, -1), -1);
  ck_assert_int_eq(errno, EDEADLK);
  gev_greenlet_unref(g);
  end();
}
END_TEST

START_TEST(links_by_outcome) {
  begin();
  gev_greenlet *ok = gev_spawn(body, NULL), *bad = gev_spawn(failing, NULL);
  ck_assert_int_eq(gev_greenlet_link_value(ok, note, "v"), 0);
  ck_assert_int_eq(gev_greenlet_link_exception(ok, note, "x"), 0);
  ck_assert_int_eq(gev_greenlet_link_value(bad, note, "V"), 0);
  ck_assert_int_eq(gev_greenlet_link_exception(bad, note, "X"), 0);
  ck_assert_int_eq(gev_greenlet_link(bad, note, "A"), 0);
  ck_assert_int_eq(gev_join_all((gev_greenlet *[]){ok, bad}, 2, 5), 2);
  ck_assert_str_eq(log_buf, "vXA");
  ck_assert_str_eq(gev_greenlet_errmsg(bad), "broken 9");
  /* Added after the end: run (or dropped) at once, by outcome. */
  gev_greenlet_link_exception(ok, note, "1");
  gev_greenlet_link_value(ok, note, "2");
  ck_assert_int_eq(gev_greenlet_join(ok, 5), 0);
  ck_assert_str_eq(log_buf, "vXA2");
  /* unlink finds any kind. */
  gev_greenlet *g = gev_greenlet_new(body, NULL);
  gev_greenlet_link_value(g, note, "u");
  ck_assert_int_eq(gev_greenlet_unlink(g, note, "u"), 0);
  ck_assert_int_eq(gev_greenlet_link_value(NULL, note, "u"), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_greenlet_link_exception(g, NULL, NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_greenlet_start(NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_greenlet_start_later(g, -1), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_greenlet_start_later(g, 0.0 / 0.0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_ptr_null(gev_greenlet_new(NULL, NULL));
  ck_assert_int_eq(errno, EINVAL);
  gev_greenlet_unref(g);
  gev_greenlet_unref(ok);
  gev_greenlet_unref(bad);
  end();
}
END_TEST

/* The report rule (hub.h, gev_fail): a failure is logged unless someone
 * observed it as it happened, a waiter or a link of the program's. */
static char logged[256];
static void capture(gev_log_level level, const char *msg, void *arg) {
  strncat(logged, msg, sizeof logged - strlen(logged) - 1);
}

/* Waits for g's links to have run without observing g. */
static void wait_unobserved(gev_greenlet *g) {
  for (int i = 0; i < 5000 && !gev_greenlet_ready(g); i++)
    gev_sleep(0.001);
  gev_sleep(0); /* its links run in the hub's next pass */
  gev_sleep(0);
}

static void observe_link_value(gev_greenlet *g) {
  gev_greenlet_link_value(g, note, "v");
  wait_unobserved(g);
}
static void observe_link_exception(gev_greenlet *g) {
  gev_greenlet_link_exception(g, note, "x");
  wait_unobserved(g);
}
static void observe_nothing(gev_greenlet *g) { wait_unobserved(g); }
static void observe_get(gev_greenlet *g) {
  ck_assert_int_eq(gev_greenlet_get(g, 5, NULL), -1);
}
static void observe_joinall(gev_greenlet *g) {
  ck_assert_int_eq(gev_join_all(&g, 1, 5), 1);
}
static void observe_late_join(gev_greenlet *g) {
  wait_unobserved(g); /* already reported when it died */
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
}
static void observe_pool_member(gev_greenlet *g) {
  wait_unobserved(g); /* see pool_member_failures_are_reported */
}

/* Spawns a failing greenlet, lets observe() watch it, and says whether
 * its failure was logged. */
static int reported(void (*observe)(gev_greenlet *g)) {
  logged[0] = '\0';
  gev_set_log_fn(capture, NULL);
  gev_greenlet *g = gev_spawn(failing, NULL);
  observe(g);
  gev_greenlet_unref(g);
  gev_set_log_fn(NULL, NULL);
  return strstr(logged, "gev: greenlet") && strstr(logged, "broken 9");
}

START_TEST(failure_report_counts_observers) {
  begin();
  ck_assert(reported(observe_nothing));
  ck_assert(reported(observe_link_value)); /* did not run: not observed */
  ck_assert(!reported(observe_link_exception));
  ck_assert(!reported(observe_get));
  ck_assert(!reported(observe_joinall));
  ck_assert(reported(observe_late_join));
  end();
}
END_TEST

/* A Pool's own bookkeeping link does not hide its members' failures. */
START_TEST(pool_member_failures_are_reported) {
  begin();
  logged[0] = '\0';
  gev_set_log_fn(capture, NULL);
  gev_pool *p = gev_pool_new(2);
  gev_greenlet *g = gev_pool_spawn(p, failing, NULL, 5);
  ck_assert_ptr_nonnull(g);
  observe_pool_member(g);
  ck_assert_ptr_nonnull(strstr(logged, "broken 9"));
  gev_greenlet_unref(g);
  ck_assert_int_eq(gev_pool_join(p, 5), 0);
  gev_pool_free(p);
  gev_set_log_fn(NULL, NULL);
  end();
}
END_TEST

static Suite *greenlet_api_suite(void) {
  Suite *s = suite_create("greenlet_api");
  TCase *tc = tcase_create("greenlet_api");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, created_then_started);
  tcase_add_test(tc, unstarted_killed_or_dropped);
  tcase_add_test(tc, links_by_outcome);
  tcase_add_test(tc, failure_report_counts_observers);
  tcase_add_test(tc, pool_member_failures_are_reported);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(greenlet_api_suite)
