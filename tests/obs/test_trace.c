/* The trace hook (gev_set_trace): the exact events of scripted
 * scenarios. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gev/hub.h"
#include "obs_fixture.h"

/* The events seen, as "EVENT from->to" with coroutine ids. */
static char seen[4096];
static int calls;

static void record(gev_trace_event ev, gev_coro *from, gev_coro *to,
                   void *arg) {
  static const char *names[] = {"spawn", "switch", "throw", "finish"};
  size_t n = strlen(seen);
  ck_assert_ptr_eq(arg, &calls);
  snprintf(seen + n, sizeof seen - n, "%s %llu->%llu;", names[ev],
           gev_coro_id(from), gev_coro_id(to));
  calls++;
}

static gev_coro *main_coro;

static void *child(void *v) {
  ck_assert_int_eq(gev_coro_switch(main_coro, v, NULL), 0);     /* switch */
  ck_assert_int_eq(gev_coro_switch(main_coro, NULL, NULL), -1); /* throw */
  ck_assert_int_eq(errno, EIO);
  return v; /* finish */
}

START_TEST(test_coroutine_scenario) {
  char want[512];
  gev_coro *c, *d;
  unsigned long long m, ci, di;
  seen[0] = '\0';
  calls = 0;
  main_coro = gev_coro_main();
  ck_assert_int_eq(gev_set_trace(record, &calls), 0);
  void *arg;
  ck_assert(gev_get_trace(&arg) == record && arg == &calls);
  c = gev_coro_new(child, NULL, NULL);
  d = gev_coro_new(child, NULL, NULL);
  ck_assert_int_eq(gev_coro_switch(c, (void *)1, NULL), 0);
  ck_assert_int_eq(gev_coro_switch(c, NULL, NULL), 0);
  ck_assert_int_eq(gev_coro_throw(c, EIO, NULL), 0);       /* c returns 1 */
  ck_assert_int_eq(gev_coro_throw(d, GEV_EKILL, NULL), 0); /* never ran */
  ck_assert_int_eq(gev_set_trace(NULL, NULL), 0);
  ck_assert(gev_get_trace(NULL) == NULL);
  m = gev_coro_id(main_coro);
  ci = gev_coro_id(c);
  di = gev_coro_id(d);
  snprintf(want, sizeof want,
           "spawn %llu->%llu;spawn %llu->%llu;"
           "switch %llu->%llu;switch %llu->%llu;"
           "switch %llu->%llu;switch %llu->%llu;"
           "throw %llu->%llu;finish %llu->%llu;"
           "finish %llu->%llu;",
           m, ci, m, di, m, ci, ci, m, m, ci, ci, m, m, ci, ci, m, di, m);
  ck_assert_str_eq(seen, want);
  gev_coro_free(c);
  gev_coro_free(d);
  ck_assert_int_eq(calls, 9); /* nothing after removal */
}
END_TEST

static void *greeter(void *arg) {
  gev_sleep(0);
  return arg;
}

/* A greenlet's life through the hub: spawned, started by the hub, parked
 * in the hub, resumed, finished into the hub. */
START_TEST(test_greenlet_scenario) {
  char want[512];
  gev_greenlet *g;
  unsigned long long m, h, gi;
  ck_assert_int_eq(gev_sleep(0), 0); /* the hub exists and has started */
  seen[0] = '\0';
  calls = 0;
  ck_assert_int_eq(gev_set_trace(record, &calls), 0);
  g = gev_spawn(greeter, NULL);
  ck_assert_int_eq(gev_greenlet_join(g, -1), 0);
  ck_assert_int_eq(gev_set_trace(NULL, NULL), 0);
  m = gev_coro_id(gev_coro_main());
  h = gev_coro_id(gev_hub_coro());
  /* The greenlet's coroutine is the one its spawn event names. */
  ck_assert_int_eq(sscanf(seen, "spawn %*u->%llu;", &gi), 1);
  snprintf(want, sizeof want,
           "spawn %llu->%llu;"                    /* gev_spawn, in main */
           "switch %llu->%llu;"                   /* join parks main */
           "switch %llu->%llu;switch %llu->%llu;" /* started; sleep(0) */
           "switch %llu->%llu;finish %llu->%llu;" /* resumed; returns */
           "switch %llu->%llu;",                  /* join's wake-up */
           m, gi, m, h, h, gi, gi, h, h, gi, gi, h, h, m);
  ck_assert_str_eq(seen, want);
  gev_greenlet_unref(g);
}
END_TEST

static Suite *trace_suite(void) {
  Suite *s = suite_create("trace");
  TCase *tc = tcase_create("trace");
  tcase_add_checked_fixture(tc, obs_setup, obs_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_coroutine_scenario);
  tcase_add_test(tc, test_greenlet_scenario);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(trace_suite)
