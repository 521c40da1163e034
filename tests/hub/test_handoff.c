/* Switching on the hub's behalf: a greenlet that parks or ends while the
 * hub is in a callback pass switches straight to the next coroutine the
 * hub would switch to. It must keep the hub's order (wake order, FIFO with
 * every other callback) and its time budget (a pass ends after a few
 * milliseconds, so timers and I/O run even while greenlets hand off to
 * each other without end). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "gev/hub.h"
#include "gev/sync.h"
#include "testutil.h"

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) { gev_test_all_clean(fds_before); }

static int order[16], norder;
static void record(int who) {
  if (norder < 16)
    order[norder++] = who;
}

/* ---- Wake order -------------------------------------------------------- */

static gev_event *evs[3];

static void *wait_then_record(void *arg) {
  int who = (int)(intptr_t)arg;
  if (gev_event_wait(evs[who], -1) < 0)
    return gev_fail(errno, "wait");
  record(who);
  return NULL;
}

static void on_callback(void *arg) { record((int)(intptr_t)arg); }

/* Wakes 2, queues a callback, wakes 0 then 1, and parks: they run in that
 * order, the callback in its place between them. */
static void *waker(void *arg) {
  (void)arg;
  gev_event_set(evs[2]);
  gev_run_callback(on_callback, (void *)(intptr_t)9);
  gev_event_set(evs[0]);
  gev_event_set(evs[1]);
  if (gev_sleep(0) < 0)
    return gev_fail(errno, "sleep");
  record(7);
  return NULL;
}

START_TEST(test_resumes_keep_wake_order_and_callbacks_their_place) {
  gev_greenlet *gs[4];
  norder = 0;
  for (int i = 0; i < 3; i++) {
    evs[i] = gev_event_new();
    gs[i] = gev_spawn(wait_then_record, (void *)(intptr_t)i);
  }
  ck_assert_int_eq(gev_sleep(0), 0); /* all three parked */
  gs[3] = gev_spawn(waker, NULL);
  ck_assert_int_eq(gev_joinall(gs, 4, -1, GEV_JOIN_RAISE_ERROR, 0), 4);
  ck_assert_int_eq(norder, 5);
  ck_assert_int_eq(order[0], 2);
  ck_assert_int_eq(order[1], 9);
  ck_assert_int_eq(order[2], 0);
  ck_assert_int_eq(order[3], 1);
  ck_assert_int_eq(order[4], 7);
  for (int i = 0; i < 4; i++)
    gev_greenlet_unref(gs[i]);
  for (int i = 0; i < 3; i++)
    gev_event_free(evs[i]);
}
END_TEST

/* ---- The time budget ----------------------------------------------------- */

static gev_semaphore *ping, *pong;
static volatile int stop;
static long rounds;

static void *pinger(void *arg) {
  (void)arg;
  while (!stop) {
    if (gev_semaphore_release(ping) < 0 || gev_semaphore_acquire(pong, -1) < 0)
      return gev_fail(errno, "pinger");
    rounds++;
  }
  gev_semaphore_release(ping);
  return NULL;
}

static void *ponger(void *arg) {
  (void)arg;
  while (!stop) {
    if (gev_semaphore_acquire(ping, -1) < 0 || gev_semaphore_release(pong) < 0)
      return gev_fail(errno, "ponger");
  }
  return NULL;
}

static double woke_late;

/* Sleeps 20 ms among the ping-pong, notes how late it woke, then stops it. */
static void *timekeeper(void *arg) {
  double t0 = gev_monotonic();
  (void)arg;
  if (gev_sleep(0.02) < 0)
    return gev_fail(errno, "sleep");
  woke_late = gev_monotonic() - t0 - 0.02;
  stop = 1;
  return NULL;
}

/* Two greenlets handing a semaphore to each other never let the hub run a
 * pass to its end; the pass's budget still hands control back to the
 * hub, whose timers fire. (The bound is generous: a loaded machine may be
 * slow, but a starved timer would never fire and the test would time out.) */
START_TEST(test_endless_handoffs_leave_timers_their_turn) {
  gev_greenlet *gs[3];
  ping = gev_semaphore_new(0);
  pong = gev_semaphore_new(0);
  stop = 0;
  rounds = 0;
  gs[0] = gev_spawn(timekeeper, NULL);
  gs[1] = gev_spawn(ponger, NULL);
  gs[2] = gev_spawn(pinger, NULL);
  ck_assert_int_eq(gev_joinall(gs, 3, -1, GEV_JOIN_RAISE_ERROR, 0), 3);
  ck_assert_int_gt(rounds, 0);
  ck_assert_msg(woke_late < 2.0, "the sleeper woke %.3f s late", woke_late);
  for (int i = 0; i < 3; i++)
    gev_greenlet_unref(gs[i]);
  gev_semaphore_free(ping);
  gev_semaphore_free(pong);
}
END_TEST

/* ---- Ends ---------------------------------------------------------------- */

static void *just_record(void *arg) {
  record((int)(intptr_t)arg);
  return arg;
}

/* Greenlets that end start the next ones themselves; links and joins (the
 * hub's done callbacks, queued behind the starts) still see every one
 * finished, with its value, and every coroutine is released. */
START_TEST(test_ends_start_the_next_in_spawn_order) {
  gev_greenlet *gs[10];
  norder = 0;
  for (int i = 0; i < 10; i++)
    gs[i] = gev_spawn(just_record, (void *)(intptr_t)i);
  ck_assert_int_eq(gev_joinall(gs, 10, -1, 0, 0), 10);
  for (int i = 0; i < 10; i++) {
    ck_assert_int_eq(order[i], i);
    ck_assert_ptr_eq(gev_greenlet_value(gs[i]), (void *)(intptr_t)i);
    gev_greenlet_unref(gs[i]);
  }
  ck_assert_int_eq(gev_hub_verify(), 0);
}
END_TEST

static Suite *handoff_suite(void) {
  Suite *s = suite_create("handoff");
  TCase *tc = tcase_create("handoff");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_resumes_keep_wake_order_and_callbacks_their_place);
  tcase_add_test(tc, test_endless_handoffs_leave_timers_their_turn);
  tcase_add_test(tc, test_ends_start_the_next_in_spawn_order);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(handoff_suite)
