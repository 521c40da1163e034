/* The hub's deadline wheel (src/hub/deadlines.h): timeouts of parked
 * greenlets fire in deadline order and never early, whether near (a
 * slot per tick), seconds away (a slot per second, spread over the ticks
 * as they come near) or far; a wake that comes first disarms them, and no
 * watcher is left behind. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "gev/hub.h"
#include "gev/sync.h"
#include "hub/hub_internal.h"
#include "testutil.h"

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) { gev_test_all_clean(fds_before); }

enum { SLEEPERS = 2000 };

static double woke_deadline[SLEEPERS];
static int nwoke, early;

/* Sleeps arg microseconds; records, in wake order, the deadline gev armed
 * for it (its task keeps it): exactly what the wheel ordered. */
static void *sleep_and_record(void *arg) {
  double delay = (double)(uintptr_t)arg * 1e-6, deadline;
  if (gev_sleep(delay) < 0)
    return gev_fail(errno, "gev_sleep");
  deadline = ((gev__task *)gev__coro_upper(gev_coro_current()))->deadline_at;
  if (gev_monotonic() < deadline)
    early++;
  woke_deadline[nwoke++] = deadline;
  return NULL;
}

START_TEST(test_sleeps_wake_in_deadline_order_never_early) {
  gev_greenlet **gs = calloc(SLEEPERS, sizeof *gs);
  nwoke = early = 0;
  srandom(7);
  for (int i = 0; i < SLEEPERS; i++)
    gs[i] = gev_spawn(sleep_and_record,
                      (void *)(uintptr_t)(random() % 300000)); /* < 0.3 s */
  ck_assert_int_eq(gev_joinall(gs, SLEEPERS, -1, GEV_JOIN_RAISE_ERROR, 0),
                   SLEEPERS);
  ck_assert_int_eq(nwoke, SLEEPERS);
  ck_assert_int_eq(early, 0);
  for (int i = 1; i < SLEEPERS; i++)
    ck_assert_msg(woke_deadline[i] >= woke_deadline[i - 1],
                  "wake %d came %.6f s before the deadline of the one "
                  "before it",
                  i, woke_deadline[i - 1] - woke_deadline[i]);
  for (int i = 0; i < SLEEPERS; i++)
    gev_greenlet_unref(gs[i]);
  free(gs);
}
END_TEST

static gev_event *ev;

/* Waits on ev with a timeout of arg seconds; returns 1 if the event came
 * first. */
static void *wait_with_timeout(void *arg) {
  return (void *)(uintptr_t)(gev_event_wait(ev, (double)(uintptr_t)arg) == 0);
}

/* Timeouts seconds, minutes and months away are armed in the later
 * levels; the event wakes every waiter first and each wake disarms its
 * timeout: no watcher is left. */
START_TEST(test_far_timeouts_are_disarmed_by_wakes) {
  static const uintptr_t timeouts[] = {9, 30, 600, 5000, 30000000};
  enum { N = sizeof timeouts / sizeof timeouts[0] };
  gev_greenlet *gs[N];
  gev_hub_stats st;
  ev = gev_event_new();
  for (int i = 0; i < N; i++)
    gs[i] = gev_spawn(wait_with_timeout, (void *)timeouts[i]);
  ck_assert_int_eq(gev_sleep(0.01), 0);
  gev_hub_get_stats(&st);
  ck_assert_uint_eq(st.watchers, N);
  ck_assert_int_eq(gev_event_set(ev), 0);
  ck_assert_int_eq(gev_joinall(gs, N, -1, GEV_JOIN_RAISE_ERROR, 0), N);
  for (int i = 0; i < N; i++) {
    ck_assert_ptr_eq(gev_greenlet_value(gs[i]), (void *)1);
    gev_greenlet_unref(gs[i]);
  }
  gev_hub_get_stats(&st);
  ck_assert_uint_eq(st.watchers, 0);
  gev_event_free(ev);
}
END_TEST

static double slept_from;

static void *sleep_long(void *arg) {
  slept_from = gev_monotonic();
  if (gev_sleep((double)(uintptr_t)arg) < 0)
    return gev_fail(errno, "gev_sleep");
  return (void *)(uintptr_t)(gev_monotonic() - slept_from >=
                             (double)(uintptr_t)arg);
}

/* A timeout beyond the first level (more than eight seconds away) is
 * spread over it while time passes and fires on time; one of that level
 * that a wake disarms after the spreading leaves nothing behind. */
START_TEST(test_timeout_beyond_the_first_level_fires_on_time) {
  gev_greenlet *sleeper, *waiter;
  ev = gev_event_new();
  sleeper = gev_spawn(sleep_long, (void *)(uintptr_t)9);
  waiter = gev_spawn(wait_with_timeout, (void *)(uintptr_t)11);
  ck_assert_int_eq(gev_greenlet_join(sleeper, -1), 0);
  ck_assert_ptr_eq(gev_greenlet_value(sleeper), (void *)1); /* not early */
  ck_assert_int_eq(gev_event_set(ev), 0);
  ck_assert_int_eq(gev_greenlet_join(waiter, -1), 0);
  ck_assert_ptr_eq(gev_greenlet_value(waiter), (void *)1);
  gev_greenlet_unref(sleeper);
  gev_greenlet_unref(waiter);
  gev_event_free(ev);
}
END_TEST

static Suite *deadlines_suite(void) {
  Suite *s = suite_create("deadlines");
  TCase *tc = tcase_create("deadlines");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_sleeps_wake_in_deadline_order_never_early);
  tcase_add_test(tc, test_far_timeouts_are_disarmed_by_wakes);
  tcase_add_test(tc, test_timeout_beyond_the_first_level_fires_on_time);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(deadlines_suite)
