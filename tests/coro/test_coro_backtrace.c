/* Backtraces of suspended coroutines (gev_coro_backtrace) in both stack
 * modes, and the trace hook, in the coroutine suite: so they also run
 * under Valgrind, with the ucontext switch and on AArch64 under qemu. */
#include <errno.h>
#include <string.h>

#include "gev/coro.h"
#include "testutil.h"

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) {
  gev_test_coro_clean();
  ck_assert_int_eq(gev_test_fd_count(), fds_before);
}

static gev_coro *main_coro;

__attribute__((noinline)) void coro_bt_parks_here(int depth);
__attribute__((noinline)) void coro_bt_parks_here(int depth) {
  if (depth > 0) {
    coro_bt_parks_here(depth - 1);
    __asm__ volatile("" ::: "memory"); /* no tail call */
    return;
  }
  gev_coro_switch(main_coro, NULL, NULL);
  __asm__ volatile("" ::: "memory");
}

static void *body(void *arg) {
  coro_bt_parks_here((int)(long)arg);
  return NULL;
}

/* How many frames of c's backtrace are coro_bt_parks_here; -1 if the
 * build cannot unwind parked coroutines. */
static int frames_in_parker(gev_coro *c) {
  void *frames[64];
  char where[256];
  int n = gev_coro_backtrace(c, frames, 64), k = 0;
  if (n < 0 && errno == ENOTSUP)
    return -1;
  ck_assert_int_gt(n, 0);
  for (int i = 0; i < n; i++)
    k += strstr(gev_describe_address(frames[i], 0, where, sizeof where),
                "coro_bt_parks_here+") != NULL;
  return k;
}

static void check_mode(gev_stack_mode mode) {
  gev_coro_opts o = {.stack_mode = mode};
  gev_coro *a, *b;
  int k;
  main_coro = gev_coro_main();
  a = gev_coro_new(body, NULL, &o);
  b = gev_coro_new(body, NULL, &o);
  ck_assert_int_eq(gev_coro_switch(a, (void *)2, NULL), 0);
  ck_assert_int_eq(gev_coro_switch(b, (void *)4, NULL), 0);
  /* In shared mode a is copied out now, b occupies the region. */
  k = frames_in_parker(a);
  if (k >= 0) {
    ck_assert_int_eq(k, 3);
    ck_assert_int_eq(frames_in_parker(b), 5);
  }
  /* Both resume intact and finish. */
  ck_assert_int_eq(gev_coro_switch(a, NULL, NULL), 0);
  ck_assert_int_eq(gev_coro_switch(b, NULL, NULL), 0);
  ck_assert(gev_coro_dead(a) && gev_coro_dead(b));
  gev_coro_free(a);
  gev_coro_free(b);
}

START_TEST(test_backtrace_dedicated) { check_mode(GEV_STACK_DEDICATED); }
END_TEST

START_TEST(test_backtrace_shared) { check_mode(GEV_STACK_SHARED); }
END_TEST

static int events[8], nevents;
static void count(gev_trace_event ev, gev_coro *from, gev_coro *to, void *arg) {
  (void)from, (void)to, (void)arg;
  if (nevents < 8)
    events[nevents++] = (int)ev;
}

static void *quick(void *arg) { return arg; }

START_TEST(test_trace_events) {
  gev_coro *c;
  nevents = 0;
  ck_assert_int_eq(gev_set_trace(count, NULL), 0);
  c = gev_coro_new(quick, NULL, NULL);
  ck_assert_int_eq(gev_coro_switch(c, NULL, NULL), 0);
  ck_assert_int_eq(gev_set_trace(NULL, NULL), 0);
  gev_coro_free(c);
  ck_assert_int_eq(nevents, 3);
  ck_assert_int_eq(events[0], GEV_TRACE_SPAWN);
  ck_assert_int_eq(events[1], GEV_TRACE_SWITCH);
  ck_assert_int_eq(events[2], GEV_TRACE_FINISH);
}
END_TEST

static Suite *backtrace_suite(void) {
  Suite *s = suite_create("coro_backtrace");
  TCase *tc = tcase_create("coro_backtrace");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_backtrace_dedicated);
  tcase_add_test(tc, test_backtrace_shared);
  tcase_add_test(tc, test_trace_events);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(backtrace_suite)
