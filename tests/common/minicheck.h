/*
 * The subset of Check's API the coroutine tests use, for builds where
 * Check is not available (the AArch64 cross build run under qemu-user).
 * Each test runs in a forked child with an alarm, as Check does; an
 * assertion failure prints file:line and ends the child with status 1.
 */
#ifndef GEV_MINICHECK_H
#define GEV_MINICHECK_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CK_NORMAL 0

typedef void (*mc_fn)(void);
typedef struct TCase {
  const char *name;
  mc_fn setup, teardown;
  mc_fn tests[64];
  const char *names[64];
  int n, timeout;
  struct TCase *next;
} TCase;
typedef struct Suite {
  const char *name;
  TCase *cases;
} Suite;
typedef struct SRunner {
  Suite *s;
  int failed;
} SRunner;

static inline Suite *suite_create(const char *name) {
  Suite *s = calloc(1, sizeof *s);
  s->name = name;
  return s;
}
static inline TCase *tcase_create(const char *name) {
  TCase *tc = calloc(1, sizeof *tc);
  tc->name = name;
  tc->timeout = 30;
  return tc;
}
static inline void suite_add_tcase(Suite *s, TCase *tc) {
  TCase **p = &s->cases;
  while (*p)
    p = &(*p)->next;
  *p = tc;
}
static inline void tcase_add_checked_fixture(TCase *tc, mc_fn su, mc_fn td) {
  tc->setup = su;
  tc->teardown = td;
}
static inline void tcase_set_timeout(TCase *tc, double t) {
  tc->timeout = (int)t;
}
#define tcase_add_test(tc, fn) mc_add((tc), fn, #fn)
static inline void mc_add(TCase *tc, mc_fn fn, const char *name) {
  tc->names[tc->n] = name;
  tc->tests[tc->n++] = fn;
}
static inline SRunner *srunner_create(Suite *s) {
  SRunner *r = calloc(1, sizeof *r);
  r->s = s;
  return r;
}
static inline int mc_timeout_scale(void) {
  const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
  return m && atoi(m) > 0 ? atoi(m) : 1;
}
static inline void srunner_run_all(SRunner *r, int mode) {
  int total = 0;
  (void)mode;
  printf("Running suite(s): %s\n", r->s->name);
  for (TCase *tc = r->s->cases; tc; tc = tc->next) {
    for (int i = 0; i < tc->n; i++, total++) {
      pid_t pid = fork();
      int st;
      if (pid == 0) {
        alarm((unsigned)(tc->timeout * mc_timeout_scale()));
        if (tc->setup)
          tc->setup();
        tc->tests[i]();
        if (tc->teardown)
          tc->teardown();
        fflush(stdout);
        _exit(0);
      }
      waitpid(pid, &st, 0);
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("%s: %s failed (%s %d)\n", tc->name, tc->names[i],
               WIFSIGNALED(st) ? "signal" : "status",
               WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        r->failed++;
      }
    }
  }
  printf("%d%%: Checks: %d, Failures: %d, Errors: 0\n",
         total ? 100 * (total - r->failed) / total : 100, total, r->failed);
}
static inline int srunner_ntests_failed(SRunner *r) { return r->failed; }
static inline void srunner_free(SRunner *r) { free(r); }

#define START_TEST(name) static void name(void)
#define END_TEST

#define mc_fail(...)                                                           \
  do {                                                                         \
    fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                            \
    fprintf(stderr, __VA_ARGS__);                                              \
    fputc('\n', stderr);                                                       \
    _exit(1);                                                                  \
  } while (0)
#define ck_assert(e)                                                           \
  do {                                                                         \
    if (!(e))                                                                  \
      mc_fail("assertion '%s' failed", #e);                                    \
  } while (0)
#define ck_assert_msg(e, ...)                                                  \
  do {                                                                         \
    if (!(e))                                                                  \
      mc_fail(__VA_ARGS__);                                                    \
  } while (0)
#define ck_abort_msg(...) mc_fail(__VA_ARGS__)
#define mc_cmp(T, fmt, a, op, b)                                               \
  do {                                                                         \
    T mc_a = (a);                                                              \
    T mc_b = (b);                                                              \
    if (!(mc_a op mc_b))                                                       \
      mc_fail("'%s %s %s' failed: " fmt " vs " fmt, #a, #op, #b, mc_a, mc_b);  \
  } while (0)
#define ck_assert_int_eq(a, b) mc_cmp(intmax_t, "%jd", a, ==, b)
#define ck_assert_int_ne(a, b) mc_cmp(intmax_t, "%jd", a, !=, b)
#define ck_assert_int_lt(a, b) mc_cmp(intmax_t, "%jd", a, <, b)
#define ck_assert_int_le(a, b) mc_cmp(intmax_t, "%jd", a, <=, b)
#define ck_assert_int_gt(a, b) mc_cmp(intmax_t, "%jd", a, >, b)
#define ck_assert_int_ge(a, b) mc_cmp(intmax_t, "%jd", a, >=, b)
#define ck_assert_uint_eq(a, b) mc_cmp(uintmax_t, "%ju", a, ==, b)
#define ck_assert_uint_ne(a, b) mc_cmp(uintmax_t, "%ju", a, !=, b)
#define ck_assert_uint_lt(a, b) mc_cmp(uintmax_t, "%ju", a, <, b)
#define ck_assert_uint_le(a, b) mc_cmp(uintmax_t, "%ju", a, <=, b)
#define ck_assert_uint_gt(a, b) mc_cmp(uintmax_t, "%ju", a, >, b)
#define ck_assert_uint_ge(a, b) mc_cmp(uintmax_t, "%ju", a, >=, b)
#define ck_assert_double_le(a, b) mc_cmp(double, "%g", a, <=, b)
#define ck_assert_ptr_eq(a, b) mc_cmp(const void *, "%p", a, ==, b)
#define ck_assert_ptr_ne(a, b) mc_cmp(const void *, "%p", a, !=, b)
#define ck_assert_ptr_null(a) ck_assert_ptr_eq(a, NULL)
#define ck_assert_ptr_nonnull(a) ck_assert_ptr_ne(a, NULL)
#define ck_assert_str_eq(a, b) ck_assert(strcmp((a), (b)) == 0)

#endif
