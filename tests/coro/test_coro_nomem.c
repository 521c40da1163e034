/* Out of memory in the middle of a switch: the caller gets ENOMEM and
 * nothing moves, and a coroutine whose parent cannot be reached when it
 * finishes hands ENOMEM to the parent's ancestors. Allocations are made to
 * fail with tests/common/failalloc.h. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "failalloc.h"
#include "gev/coro.h"
#include "testutil.h"

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) {
  gev_test_fail_alloc(0, 0, 0);
  gev_set_log_fn(NULL, NULL);
  gev_test_coro_clean();
  ck_assert_int_eq(gev_test_fd_count(), fds_before);
}

static const gev_coro_opts shared = {.stack_mode = GEV_STACK_SHARED};

static int logged;
static char last_log[512];
static void capture(gev_log_level level, const char *msg, void *arg) {
  (void)level, (void)arg;
  logged++;
  strncpy(last_log, msg, sizeof last_log - 1);
}

/* Keeps a marked buffer on its stack, parks, and checks it after every
 * resume; returns its argument plus what it was resumed with. */
static void *marked(void *arg) {
  volatile unsigned char buf[2048];
  void *v;
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (unsigned char)((uintptr_t)arg + i);
  if (gev_coro_switch(gev_coro_main(), NULL, &v) < 0)
    return NULL;
  for (size_t i = 0; i < sizeof buf; i++)
    if (buf[i] != (unsigned char)((uintptr_t)arg + i))
      return (void *)0xbad;
  return (void *)((uintptr_t)arg + (uintptr_t)v);
}

START_TEST(test_no_memory_to_evict_occupant_fails_the_switch) {
  void *r;
  int rc, err;
  gev_coro *a = gev_coro_new(marked, NULL, &shared);
  gev_coro *b = gev_coro_new(marked, NULL, &shared);
  ck_assert_int_eq(gev_coro_switch(a, (void *)100, NULL), 0);
  /* b needs the region: a's bytes must go to the heap first. */
  gev_test_fail_alloc(GEV_TEST_ALLOC_HEAP, 1, 0);
  rc = gev_coro_switch(b, (void *)200, &r);
  err = errno;
  gev_test_fail_alloc(0, 0, 0);
  ck_assert_int_eq(rc, -1);
  ck_assert_int_eq(err, ENOMEM);
  ck_assert(!gev_coro_started(b));
  /* a never left the region and is intact. */
  ck_assert_int_eq(gev_coro_switch(a, (void *)1, &r), 0);
  ck_assert_uint_eq((uintptr_t)r, 101);
  ck_assert_int_eq(gev_coro_switch(b, (void *)200, NULL), 0);
  ck_assert_int_eq(gev_coro_switch(b, (void *)2, &r), 0);
  ck_assert_uint_eq((uintptr_t)r, 202);
  gev_coro_free(a);
  gev_coro_free(b);
}
END_TEST

static gev_coro *g_other;
static int g_errno;

/* A shared coroutine switching straight to another shared one: its own
 * bytes are saved in the scratch context, where a failure must bring it
 * back rather than abort. */
static void *switch_to_other(void *arg) {
  volatile char pad[1500];
  void *v;
  pad[0] = 1;
  gev_test_fail_alloc(GEV_TEST_ALLOC_HEAP, 1, 0);
  int rc = gev_coro_switch(g_other, (void *)7, &v);
  g_errno = rc < 0 ? errno : 0;
  gev_test_fail_alloc(0, 0, 0);
  if (rc == 0 || pad[0] != 1)
    return (void *)0xbad;
  /* Now with memory: the other one runs and comes back here. */
  if (gev_coro_switch(g_other, (void *)7, &v) < 0)
    return (void *)0xbad;
  return (void *)((uintptr_t)v + (uintptr_t)arg);
}

static void *back_to_caller(void *arg) {
  gev_coro *caller = gev_coro_parent(gev_coro_current());
  void *v;
  gev_coro_switch(caller, (void *)((uintptr_t)arg * 10), &v);
  return v;
}

START_TEST(test_scratch_save_failure_returns_to_the_switcher) {
  void *r;
  gev_coro *a = gev_coro_new(switch_to_other, NULL, &shared);
  g_other = gev_coro_new(back_to_caller, a, &shared);
  g_errno = 0;
  ck_assert_int_eq(gev_coro_switch(a, (void *)5, &r), 0);
  ck_assert_int_eq(g_errno, ENOMEM);
  ck_assert_uint_eq((uintptr_t)r, 75);
  ck_assert(gev_coro_dead(a));
  ck_assert_int_eq(gev_coro_switch(g_other, NULL, NULL), 0); /* finishes */
  gev_coro_free(g_other);
  gev_coro_free(a);
}
END_TEST

static void *fail_next_mmap_then_return(void *arg) {
  gev_test_fail_alloc(GEV_TEST_ALLOC_MMAP, 1, 0);
  return arg;
}

static void *never_runs(void *arg) { return arg; }

START_TEST(test_unreachable_parent_sends_enomem_to_ancestors) {
  /* An odd stack size, so that no cached stack fits the parent. */
  gev_coro_opts big = {.stack_size = 72 * 1024,
                       .stack_mode = GEV_STACK_DEDICATED};
  gev_coro_opts child_opts = {.stack_mode = GEV_STACK_DEDICATED};
  gev_coro *parent = gev_coro_new(never_runs, NULL, &big);
  gev_coro *c = gev_coro_new(fail_next_mmap_then_return, parent, &child_opts);
  void *r = (void *)1;
  int rc, err;
  gev_set_log_fn(capture, NULL);
  logged = 0;
  rc = gev_coro_switch(c, (void *)9, &r);
  err = errno;
  gev_test_fail_alloc(0, 0, 0);
  ck_assert_int_eq(rc, -1);
  ck_assert_int_eq(err, ENOMEM);
  ck_assert(gev_coro_dead(c));
  ck_assert(!gev_coro_started(parent) && !gev_coro_dead(parent));
  ck_assert_int_eq(logged, 1);
  ck_assert_msg(strstr(last_log, "cannot be resumed") != NULL, "%s", last_log);
  /* The parent is untouched and can still run. */
  ck_assert_int_eq(gev_coro_switch(parent, (void *)3, &r), 0);
  ck_assert_uint_eq((uintptr_t)r, 3);
  gev_coro_free(c);
  gev_coro_free(parent);
}
END_TEST

static gev_coro *g_child;

static void *spawn_child_and_park(void *arg) {
  void *v;
  g_child = gev_coro_new(never_runs, NULL,
                         &(gev_coro_opts){.stack_mode = GEV_STACK_DEDICATED});
  gev_coro_switch(gev_coro_main(), NULL, &v); /* parked, stack in region */
  return v;
}

static void *park_in_region(void *arg) {
  void *v;
  gev_coro_switch(gev_coro_main(), NULL, &v);
  return v;
}

START_TEST(test_parent_whose_room_cannot_be_made_sends_enomem_up) {
  gev_coro *p = gev_coro_new(spawn_child_and_park, NULL, &shared);
  gev_coro *q = gev_coro_new(park_in_region, NULL, &shared);
  void *r;
  ck_assert_int_eq(gev_coro_switch(p, NULL, NULL), 0);
  ck_assert_int_eq(gev_coro_switch(q, NULL, NULL), 0); /* p saved, q in */
  /* g_child (dedicated, parent p) finishes; reaching p means evicting q,
   * whose buffer cannot be allocated. */
  int rc, err;
  gev_set_log_fn(capture, NULL);
  gev_test_fail_alloc(GEV_TEST_ALLOC_HEAP, 1, 0);
  rc = gev_coro_switch(g_child, (void *)4, &r);
  err = errno;
  gev_test_fail_alloc(0, 0, 0);
  ck_assert_int_eq(rc, -1);
  ck_assert_int_eq(err, ENOMEM);
  ck_assert(gev_coro_dead(g_child) && !gev_coro_dead(p));
  ck_assert_int_eq(gev_coro_switch(p, (void *)11, &r), 0);
  ck_assert_uint_eq((uintptr_t)r, 11);
  ck_assert_int_eq(gev_coro_switch(q, (void *)12, &r), 0);
  ck_assert_uint_eq((uintptr_t)r, 12);
  gev_coro_free(g_child);
  gev_coro_free(p);
  gev_coro_free(q);
}
END_TEST

START_TEST(test_unmappable_stack_fails_the_first_switch) {
  gev_coro_opts o = {.stack_size = 80 * 1024,
                     .stack_mode = GEV_STACK_DEDICATED};
  gev_coro *c = gev_coro_new(never_runs, NULL, &o);
  void *r;
  int rc, err;
  gev_test_fail_alloc(GEV_TEST_ALLOC_MMAP, 1, 0);
  rc = gev_coro_switch(c, (void *)1, &r);
  err = errno;
  gev_test_fail_alloc(0, 0, 0);
  ck_assert_int_eq(rc, -1);
  ck_assert_int_eq(err, ENOMEM);
  ck_assert(!gev_coro_started(c));
  ck_assert_int_eq(gev_coro_switch(c, (void *)1, &r), 0);
  ck_assert_uint_eq((uintptr_t)r, 1);
  gev_coro_free(c);
}
END_TEST

START_TEST(test_failalloc_counts_and_fails_the_nth) {
  void *p, *q, *again;
  int err;
  unsigned long calls, failed;
  gev_test_fail_alloc(GEV_TEST_ALLOC_MALLOC, 2, 1);
  p = malloc(16);
  q = malloc(16);
  err = errno;
  again = malloc(16); /* count 1: only the second one fails */
  calls = gev_test_alloc_calls();
  failed = gev_test_alloc_failed();
  gev_test_fail_alloc(0, 0, 0);
  ck_assert_ptr_nonnull(p);
  ck_assert_ptr_null(q);
  ck_assert_int_eq(err, ENOMEM);
  ck_assert_ptr_nonnull(again);
  ck_assert_uint_eq(calls, 3);
  ck_assert_uint_eq(failed, 1);
  free(p);
  free(again);
}
END_TEST

static Suite *nomem_suite(void) {
  Suite *s = suite_create("coro-nomem");
  TCase *tc = tcase_create("nomem");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_failalloc_counts_and_fails_the_nth);
  tcase_add_test(tc, test_no_memory_to_evict_occupant_fails_the_switch);
  tcase_add_test(tc, test_scratch_save_failure_returns_to_the_switcher);
  tcase_add_test(tc, test_unreachable_parent_sends_enomem_to_ancestors);
  tcase_add_test(tc, test_parent_whose_room_cannot_be_made_sends_enomem_up);
  tcase_add_test(tc, test_unmappable_stack_fails_the_first_switch);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(nomem_suite)
