/* Shared-stack mode: interleaving coroutines keep their stacks intact,
 * deep parked stacks, mixed modes, and 100,000 parked at once. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gev/coro.h"
#include "testutil.h"

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) {
  gev_test_coro_clean();
  ck_assert_int_eq(gev_test_fd_count(), fds_before);
}

static const gev_coro_opts shared = {.stack_mode = GEV_STACK_SHARED};

static uint32_t checksum(const unsigned char *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 16777619u;
  return h;
}

/* Fills an 8 KiB on-stack buffer from its seed, yields many times, and
 * checks after every resume that buffer and locals are intact. */
static void *interleaver(void *arg) {
  unsigned char buf[8192];
  uintptr_t seed = (uintptr_t)arg;
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (unsigned char)(seed * 31 + i * 7);
  uint32_t sum = checksum(buf, sizeof buf);
  for (int round = 0; round < 50; round++) {
    void *v;
    if (gev_coro_switch(gev_coro_main(), (void *)seed, &v) < 0)
      return NULL;
    if (checksum(buf, sizeof buf) != sum ||
        (uintptr_t)v != seed + (uintptr_t)round)
      return (void *)0xbad;
    buf[round] ^= 1;
    sum = checksum(buf, sizeof buf);
  }
  return (void *)(seed + 1000);
}

static void run_interleaved(int n, const gev_coro_opts *opts_for_odd) {
  gev_coro **cs = calloc((size_t)n, sizeof *cs);
  for (int i = 0; i < n; i++) {
    const gev_coro_opts *o = (i & 1) && opts_for_odd ? opts_for_odd : &shared;
    cs[i] = gev_coro_new(interleaver, NULL, o);
    void *r;
    ck_assert_int_eq(gev_coro_switch(cs[i], (void *)(uintptr_t)i, &r), 0);
    ck_assert_uint_eq((uintptr_t)r, (uintptr_t)i);
  }
  for (int round = 0; round < 50; round++) {
    for (int i = 0; i < n; i++) {
      void *r;
      ck_assert_int_eq(
          gev_coro_switch(cs[i], (void *)(uintptr_t)(i + round), &r), 0);
      if (round < 49)
        ck_assert_uint_eq((uintptr_t)r, (uintptr_t)i);
      else
        ck_assert_uint_eq((uintptr_t)r, (uintptr_t)i + 1000);
    }
  }
  for (int i = 0; i < n; i++) {
    ck_assert(gev_coro_dead(cs[i]));
    gev_coro_free(cs[i]);
  }
  free(cs);
}

START_TEST(test_two_interleave_intact) {
  gev_coro_stats st;
  run_interleaved(2, NULL);
  gev_coro_get_stats(&st);
  ck_assert_uint_gt(st.shared_copies, 100); /* they really were copied */
}
END_TEST

START_TEST(test_many_interleave_intact) { run_interleaved(64, NULL); }
END_TEST

static const gev_coro_opts dedicated = {.stack_mode = GEV_STACK_DEDICATED};
START_TEST(test_mixed_modes_interleave) { run_interleaved(16, &dedicated); }
END_TEST

static unsigned dive(unsigned depth, gev_coro *to) {
  volatile char pad[512];
  pad[0] = (char)depth;
  if (depth == 0) {
    gev_coro_switch(to, NULL, NULL);
    return 1;
  }
  unsigned r = dive(depth - 1, to);
  return r + (pad[0] == (char)depth);
}

static void *deep_parker(void *arg) {
  return (void *)(uintptr_t)dive(200, gev_coro_main()); /* ~100 KiB deep */
}

static void *shallow(void *arg) {
  int x = (int)(intptr_t)arg;
  gev_coro_switch(gev_coro_main(), NULL, NULL);
  return (void *)(intptr_t)(x * 2);
}

START_TEST(test_deep_parked_while_shallow_run) {
  gev_coro_stats st;
  void *r;
  gev_coro *d = gev_coro_new(deep_parker, NULL, &shared);
  ck_assert_int_eq(gev_coro_switch(d, NULL, NULL), 0);
  for (int i = 0; i < 20; i++) {
    gev_coro *s = gev_coro_new(shallow, NULL, &shared);
    gev_coro_switch(s, (void *)(intptr_t)i, NULL);
    gev_coro_switch(s, NULL, &r);
    ck_assert_int_eq((int)(intptr_t)r, i * 2);
    gev_coro_free(s);
  }
  gev_coro_get_stats(&st);
  ck_assert_uint_ge(st.shared_saved, 100 * 1024); /* d's stack is on the heap */
  ck_assert_int_eq(gev_coro_switch(d, NULL, &r), 0);
  ck_assert_uint_eq((uintptr_t)r, 201);
  gev_coro_free(d);
}
END_TEST

static void *park_once(void *arg) {
  void *v;
  gev_coro_switch(gev_coro_main(), arg, &v);
  return (void *)((uintptr_t)v + 1);
}

START_TEST(test_100000_parked_then_resumed) {
  enum { N = 100000 };
  gev_coro **cs = malloc(N * sizeof *cs);
  gev_coro_stats st;
  for (int i = 0; i < N; i++) {
    cs[i] = gev_coro_new(park_once, NULL, &shared);
    ck_assert_ptr_nonnull(cs[i]);
    ck_assert_int_eq(gev_coro_switch(cs[i], NULL, NULL), 0);
  }
  gev_coro_get_stats(&st);
  ck_assert_uint_eq(st.live, N);
  /* Each parked coroutine keeps only its live bytes, far below one page
   * (the ucontext fallback keeps its ~1 KiB context record on the stack). */
  ck_assert_uint_lt(st.shared_saved / N, 4096);
  for (int i = 0; i < N; i++) {
    void *r;
    ck_assert_int_eq(gev_coro_switch(cs[i], (void *)(uintptr_t)i, &r), 0);
    ck_assert_uint_eq((uintptr_t)r, (uintptr_t)i + 1);
    gev_coro_free(cs[i]);
  }
  free(cs);
  gev_coro_get_stats(&st);
  ck_assert_uint_eq(st.shared_saved, 0); /* memory returned */
}
END_TEST

START_TEST(test_env_default_and_region_size) {
  gev_stack_mode m = gev_coro_default_stack_mode();
  const char *env = getenv("GEV_STACK_MODE");
  gev_stack_mode want = GEV_STACK_AUTO;
  if (env && !strcmp(env, "shared"))
    want = GEV_STACK_SHARED;
  else if (env && !strcmp(env, "dedicated"))
    want = GEV_STACK_DEDICATED;
  ck_assert_int_eq(m, want);
  ck_assert_int_eq(gev_coro_set_shared_stack_size(1000), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_coro_set_shared_stack_size(512 * 1024), 0);
  gev_coro *c = gev_coro_new(park_once, NULL, &shared);
  gev_coro_switch(c, NULL, NULL);
  ck_assert_int_eq(gev_coro_set_shared_stack_size(256 * 1024), -1);
  ck_assert_int_eq(errno, EBUSY);
  gev_coro_free(c);
  ck_assert_int_eq(gev_coro_stack_mode(gev_coro_main()), GEV_STACK_DEDICATED);
}
END_TEST

/* The region's occupant dies while another shared coroutine is parked:
 * the region may not move under the parked one's frames. */
static void *park_with_pointer(void *arg) {
  volatile int local = 7;
  volatile int *volatile p = &local; /* an address in the region */
  void *v;
  gev_coro_switch(gev_coro_main(), NULL, &v);
  return (void *)(intptr_t)(*p + (int)(intptr_t)v);
}

START_TEST(test_region_size_refused_while_a_parked_one_lives) {
  gev_coro *parked = gev_coro_new(park_with_pointer, NULL, &shared);
  gev_coro *quick = gev_coro_new(park_once, NULL, &shared);
  void *r;
  ck_assert_int_eq(gev_coro_switch(parked, NULL, NULL), 0);
  ck_assert_int_eq(gev_coro_switch(quick, NULL, NULL), 0);
  ck_assert_int_eq(gev_coro_switch(quick, (void *)1, NULL), 0); /* dies */
  ck_assert(gev_coro_dead(quick));
  ck_assert_int_eq(gev_coro_set_shared_stack_size(256 * 1024), -1);
  ck_assert_int_eq(errno, EBUSY);
  ck_assert_int_eq(gev_coro_switch(parked, (void *)1, &r), 0);
  ck_assert_int_eq((int)(intptr_t)r, 8);
  /* Nothing alive on the region any more: it may move now. */
  ck_assert_int_eq(gev_coro_set_shared_stack_size(256 * 1024), 0);
  gev_coro_free(quick);
  gev_coro_free(parked);
  ck_assert_int_eq(gev_coro_set_shared_stack_size(1024 * 1024), 0);
}
END_TEST

static Suite *shared_suite(void) {
  Suite *s = suite_create("coro-shared");
  TCase *tc = tcase_create("shared");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_two_interleave_intact);
  tcase_add_test(tc, test_many_interleave_intact);
  tcase_add_test(tc, test_mixed_modes_interleave);
  tcase_add_test(tc, test_deep_parked_while_shallow_run);
  tcase_add_test(tc, test_100000_parked_then_resumed);
  tcase_add_test(tc, test_env_default_and_region_size);
  tcase_add_test(tc, test_region_size_refused_while_a_parked_one_lives);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(shared_suite)
