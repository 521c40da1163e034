/* A program built with AddressSanitizer, using a libgev built without it,
 * in shared-stack mode: saving and restoring a coroutine's stack copies
 * the program's instrumented frames (redzones and all) and must not go
 * through the sanitizer's memcpy, which would report them. Built by
 * tests/coro/meson.build with -fsanitize=address against the plain
 * library; exits 77 (skipped) where the compiler has no ASan runtime. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "gev/coro.h"
#include "testutil.h"

#ifdef GEV_TEST_NO_ASAN
int main(void) {
  puts("no AddressSanitizer runtime for this compiler: skipped");
  return 77;
}
#else

static const gev_coro_opts shared = {.stack_mode = GEV_STACK_SHARED};

/* Frames of different shapes, each with an instrumented local array that
 * is checked after every resume. */
static int deep_frame(int depth, int seed) {
  char buf[96 + 32 * (depth % 3)];
  int sum = 0;
  memset(buf, (char)(seed + depth), sizeof buf);
  if (depth > 0)
    sum = deep_frame(depth - 1, seed);
  else if (gev_coro_switch(gev_coro_main(), NULL, NULL) < 0)
    return -1000000;
  for (size_t i = 0; i < sizeof buf; i++)
    sum += buf[i] == (char)(seed + depth);
  return sum;
}

static void *worker(void *arg) {
  int seed = (int)(intptr_t)arg;
  int total = 0;
  for (int round = 0; round < 20; round++)
    total += deep_frame(3 + (seed + round) % 4, seed);
  return (void *)(intptr_t)total;
}

static int expected(int seed) {
  int total = 0;
  for (int round = 0; round < 20; round++)
    for (int d = 0; d <= 3 + (seed + round) % 4; d++)
      total += 96 + 32 * (d % 3);
  return total;
}

START_TEST(test_shared_stacks_in_an_asan_program) {
  enum { N = 4 };
  gev_coro *cs[N];
  int done = 0;
  for (int i = 0; i < N; i++)
    cs[i] = gev_coro_new(worker, NULL, &shared);
  while (done < N) {
    for (int i = 0; i < N; i++) {
      void *r;
      if (gev_coro_dead(cs[i]))
        continue;
      ck_assert_int_eq(gev_coro_switch(cs[i], (void *)(intptr_t)i, &r), 0);
      if (gev_coro_dead(cs[i])) {
        ck_assert_int_eq((int)(intptr_t)r, expected(i));
        done++;
      }
    }
  }
  for (int i = 0; i < N; i++)
    gev_coro_free(cs[i]);
  gev_test_coro_clean();
}
END_TEST

static Suite *asan_app_suite(void) {
  Suite *s = suite_create("asan-app");
  TCase *tc = tcase_create("shared");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_shared_stacks_in_an_asan_program);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(asan_app_suite)
#endif
