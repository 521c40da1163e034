/* Many greenlets alive at once in the default stack mode: 200,000 parked
 * greenlets (more than the process's memory mappings could hold as
 * dedicated stacks, about 32,000) all start, park, wake and finish. Past
 * the auto-mode budget they run on shared stacks; the test checks that
 * both kinds were there (unless the environment asked for shared stacks)
 * and that no spawn or start failed. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "gev/hub.h"
#include "gev/sync.h"
#include "testutil.h"

enum { N = 200000 };

static int fds_before;
static gev_stack_mode mode_before;
static size_t limit_before;

static void setup(void) {
  fds_before = gev_test_fd_count();
  mode_before = gev_coro_default_stack_mode();
  limit_before = gev_coro_auto_limit();
  /* Valgrind tracks only so many memory mappings (VG_N_SEGMENTS): a
   * smaller budget of dedicated stacks there, both kinds still used. */
  if (gev_test_under_valgrind())
    gev_coro_set_auto_limit(1000);
  /* The default configuration; a run that forces dedicated stacks
   * everywhere is limited by mappings, as gev/coro.h says. */
  if (mode_before == GEV_STACK_DEDICATED)
    gev_coro_set_default_stack_mode(GEV_STACK_AUTO);
}

static void teardown(void) {
  gev_test_all_clean(fds_before);
  gev_coro_set_default_stack_mode(mode_before);
  gev_coro_set_auto_limit(limit_before);
}

static gev_event *go;
static size_t ndedicated, nshared;

/* Parks on the event, then returns its argument plus one, counting the
 * stack it ran on. */
static void *park_on_event(void *arg) {
  volatile uintptr_t local = (uintptr_t)arg;
  if (gev_coro_stack_mode(gev_coro_current()) == GEV_STACK_DEDICATED)
    ndedicated++;
  else
    nshared++;
  if (gev_event_wait(go, -1) < 0)
    return gev_fail(errno, "gev_event_wait");
  return (void *)(local + 1);
}

START_TEST(test_200000_parked_greenlets_in_default_mode) {
  gev_greenlet **gs = calloc(N, sizeof *gs);
  gev_hub_stats st;
  ck_assert_ptr_nonnull(gs);
  go = gev_event_new();
  ndedicated = nshared = 0;
  for (uintptr_t i = 0; i < N; i++) {
    gs[i] = gev_spawn(park_on_event, (void *)i);
    ck_assert_ptr_nonnull(gs[i]);
  }
  ck_assert_int_eq(gev_sleep(0), 0); /* every start runs first */
  gev_hub_get_stats(&st);
  ck_assert_uint_eq(st.parked, N);
  ck_assert_uint_eq(ndedicated + nshared, N);
  if (gev_coro_default_stack_mode() == GEV_STACK_AUTO) {
    ck_assert_uint_gt(ndedicated, 0);
    ck_assert_uint_le(ndedicated, gev_coro_auto_limit());
    ck_assert_uint_gt(nshared, N / 2);
  }
  ck_assert_int_eq(gev_event_set(go), 0);
  ck_assert_int_eq(gev_joinall(gs, N, -1, GEV_JOIN_RAISE_ERROR, 0), N);
  for (uintptr_t i = 0; i < N; i++) {
    ck_assert_ptr_eq(gev_greenlet_value(gs[i]), (void *)(i + 1));
    gev_greenlet_unref(gs[i]);
  }
  free(gs);
  gev_event_free(go);
}
END_TEST

static Suite *scale_suite(void) {
  Suite *s = suite_create("scale");
  TCase *tc = tcase_create("scale");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_200000_parked_greenlets_in_default_mode);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(scale_suite)
