/* The log hook and the monotonic clock of gev/log.h. */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coro/log_internal.h"
#include "gev/coro.h"
#include "testutil.h"

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) {
  gev_set_log_fn(NULL, NULL);
  gev_test_coro_clean();
  ck_assert_int_eq(gev_test_fd_count(), fds_before);
}

typedef struct captured {
  int n;
  gev_log_level level;
  char msg[256];
} captured;

static void capture(gev_log_level level, const char *msg, void *arg) {
  captured *c = arg;
  c->n++;
  c->level = level;
  strncpy(c->msg, msg, sizeof c->msg - 1);
  errno = EIO; /* a hook's errno must not leak into gev's callers */
}

/* Keeps switching back to main, even when thrown the kill error. */
static void *stubborn(void *arg) {
  (void)arg;
  for (;;)
    gev_coro_switch(gev_coro_main(), NULL, NULL);
  return NULL;
}

START_TEST(test_hook_receives_gev_messages) {
  captured cap = {0};
  gev_coro_opts o = {.name = "mule"};
  gev_coro *c = gev_coro_new(stubborn, NULL, &o);
  ck_assert_int_eq(gev_coro_switch(c, NULL, NULL), 0);
  gev_set_log_fn(capture, &cap);
  errno = 0;
  ck_assert_int_eq(gev_coro_free(c), 0);
  ck_assert_int_ne(errno, EIO); /* the hook's errno stayed in the hook */
  ck_assert_int_eq(cap.n, 1);
  ck_assert_int_eq(cap.level, GEV_LOG_WARNING);
  ck_assert_msg(strstr(cap.msg, "gev: coroutine mule ignored the kill") != NULL,
                "got: %s", cap.msg);
  ck_assert(strchr(cap.msg, '\n') == NULL);
}
END_TEST

START_TEST(test_default_hook_writes_stderr_and_null_restores_it) {
  captured cap = {0};
  int p[2], saved = dup(2);
  char buf[128] = {0};
  ck_assert_int_eq(pipe(p), 0);
  gev_set_log_fn(capture, &cap);
  gev_set_log_fn(NULL, NULL); /* back to stderr */
  dup2(p[1], 2);
  gev__log(GEV_LOG_INFO, "gev: hello %d", 42);
  gev__log_parts(GEV_LOG_INFO, "gev: ", NULL, "parts");
  dup2(saved, 2);
  close(saved);
  close(p[1]);
  ck_assert_int_gt(read(p[0], buf, sizeof buf - 1), 0);
  close(p[0]);
  ck_assert_str_eq(buf, "gev: hello 42\ngev: parts\n");
  ck_assert_int_eq(cap.n, 0);
}
END_TEST

START_TEST(test_long_messages_are_truncated_not_overrun) {
  captured cap = {0};
  char big[4096];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  gev_set_log_fn(capture, &cap);
  gev__log(GEV_LOG_ERROR, "gev: %s", big);
  ck_assert_int_eq(cap.n, 1);
  ck_assert_int_eq(cap.level, GEV_LOG_ERROR);
  ck_assert_int_eq(strncmp(cap.msg, "gev: xxx", 8), 0);
}
END_TEST

START_TEST(test_monotonic_clock_is_clock_monotonic) {
  struct timespec ts;
  double a = gev_monotonic(), b;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  b = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
  ck_assert(a <= b);
  ck_assert(b - a < 1.0);
  ck_assert(gev_monotonic() >= b);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("log");
  TCase *tc = tcase_create("log");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_hook_receives_gev_messages);
  tcase_add_test(tc, test_default_hook_writes_stderr_and_null_restores_it);
  tcase_add_test(tc, test_long_messages_are_truncated_not_overrun);
  tcase_add_test(tc, test_monotonic_clock_is_clock_monotonic);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(make_suite)
