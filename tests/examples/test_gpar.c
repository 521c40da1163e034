/* examples/gpar as a black box, run with gev_process_run: placeholders
 * and arguments never seen by a shell, --shell quoting, statuses, stderr
 * prefixes, timeouts, missing programs, usage errors, completion order
 * and --keep-order, and 1000 jobs 50 at a time. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gev/process.h"
#include "testutil.h"

static int fds_before;
static void setup(void) { fds_before = gev_test_fd_count(); }
static void teardown(void) { gev_test_all_clean(fds_before); }

typedef struct result {
  int code; /* gpar's exit status */
  gev_bytes out, err;
} result;

/* Runs gpar with args (NULL-terminated) and input on its stdin. */
static result gpar(const char *input, const char *const *args) {
  const char *dir = getenv("GEV_EXAMPLES_BUILD");
  char path[1024];
  const char *argv[32] = {path};
  result r;
  ck_assert_ptr_nonnull(dir);
  snprintf(path, sizeof path, "%s/gpar", dir);
  for (int i = 0; args[i] && i < 30; i++)
    argv[i + 1] = args[i];
  gev_bytes in = {(char *)input, strlen(input)};
  int status = gev_process_run(argv, &in, &r.out, &r.err, 60);
  ck_assert_msg(status >= 0, "gpar: %s", strerror(errno));
  ck_assert(WIFEXITED(status));
  r.code = WEXITSTATUS(status);
  return r;
}

static void result_free(result *r) {
  free(r->out.data);
  free(r->err.data);
}

START_TEST(test_placeholders_and_order) {
  const char *args[] = {"-j", "3", "--keep-order", "echo", "<{}>", NULL};
  result r = gpar("a\nb c\n$(touch x); 'q\"\n", args);
  ck_assert_int_eq(r.code, 0);
  ck_assert_str_eq(r.out.data, "a 0\n<a>\n"
                               "b c 0\n<b c>\n"
                               "$(touch x); 'q\" 0\n<$(touch x); 'q\">\n");
  result_free(&r);
  const char *append[] = {"echo", "in:", NULL}; /* no {}: appended */
  r = gpar("z\n", append);
  ck_assert_str_eq(r.out.data, "z 0\nin: z\n");
  result_free(&r);
}
END_TEST

START_TEST(test_shell_status_and_stderr) {
  const char *args[] = {"--shell", "echo {}; echo e1 >&2; echo e2 >&2; exit 3",
                        NULL};
  result r = gpar("it's\n", args);
  ck_assert_int_eq(r.code, 1);
  ck_assert_str_eq(r.out.data, "it's 3\nit's\nstderr: e1\nstderr: e2\n");
  result_free(&r);
  const char *killed[] = {"--shell", "kill -9 $$", NULL};
  r = gpar("k\n", killed);
  ck_assert_int_eq(r.code, 1);
  ck_assert_str_eq(r.out.data, "k 137\n");
  result_free(&r);
}
END_TEST

START_TEST(test_timeout_and_missing_program) {
  const char *args[] = {"--timeout", "0.2", "sleep", NULL};
  double t0 = gev_monotonic();
  result r = gpar("10\n0\n", args);
  ck_assert(gev_monotonic() - t0 < 9); /* the sleep 10 was stopped */
  ck_assert_int_eq(r.code, 1);
  ck_assert_ptr_nonnull(strstr(r.out.data, "10 TIMEOUT\n"));
  ck_assert_ptr_nonnull(strstr(r.out.data, "0 0\n"));
  result_free(&r);
  const char *missing[] = {"gev-no-such-program", NULL};
  r = gpar("x\n", missing);
  ck_assert_int_eq(r.code, 1);
  ck_assert_str_eq(r.out.data, "x 127\nstderr: gpar: cannot run: No such "
                               "file or directory\n");
  result_free(&r);
}
END_TEST

START_TEST(test_usage_errors) {
  const char *none[] = {NULL};
  const char *zero[] = {"-j", "0", "true", NULL};
  const char *unknown[] = {"--frobnicate", "true", NULL};
  const char *badtime[] = {"--timeout", "-3", "true", NULL};
  const char *const *cases[] = {none, zero, unknown, badtime};
  for (int i = 0; i < 4; i++) {
    result r = gpar("x\n", cases[i]);
    ck_assert_int_eq(r.code, 2);
    ck_assert_ptr_nonnull(strstr(r.err.data, "usage: gpar"));
    result_free(&r);
  }
}
END_TEST

/* "first" ends only once gpar has reaped "second" (second's pid is gone;
 * gpar reports a job in the same hub turn that reaps it): in completion
 * order, second comes first; with --keep-order, input order. */
START_TEST(test_completion_order) {
  char dir[] = "/tmp/gev-gpar-XXXXXX", script[4096], pidfile[64];
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(pidfile, sizeof pidfile, "%s/pid", dir);
  snprintf(script, sizeof script,
           "if [ {} = first ]; then"
           " while [ ! -s %s ]; do sleep 0.01; done;"
           " while kill -0 $(cat %s) 2>/dev/null; do sleep 0.01; done;"
           " else echo $$ >%s.new && mv %s.new %s; fi",
           pidfile, pidfile, pidfile, pidfile, pidfile);
  const char *args[] = {"-j", "2", "--shell", script, NULL};
  result r = gpar("first\nsecond\n", args);
  ck_assert_str_eq(r.out.data, "second 0\nfirst 0\n");
  result_free(&r);
  unlink(pidfile);
  const char *kept[] = {"-j", "2", "--keep-order", "--shell", script, NULL};
  r = gpar("first\nsecond\n", kept);
  ck_assert_str_eq(r.out.data, "first 0\nsecond 0\n");
  result_free(&r);
  unlink(pidfile);
  rmdir(dir);
}
END_TEST

START_TEST(test_1000_jobs) {
  char *input = malloc(1000 * 8), *p = input;
  for (int i = 0; i < 1000; i++)
    p += sprintf(p, "%d\n", i);
  const char *args[] = {"-j", "50", "--keep-order", "true", NULL};
  result r = gpar(input, args);
  ck_assert_int_eq(r.code, 0);
  p = r.out.data;
  for (int i = 0; i < 1000; i++) {
    char want[16];
    int n = snprintf(want, sizeof want, "%d 0\n", i);
    ck_assert_int_eq(strncmp(p, want, (size_t)n), 0);
    p += n;
  }
  ck_assert_str_eq(p, "");
  result_free(&r);
  free(input);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("gpar");
  TCase *tc = tcase_create("gpar");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 50);
  tcase_add_test(tc, test_placeholders_and_order);
  tcase_add_test(tc, test_shell_status_and_stderr);
  tcase_add_test(tc, test_timeout_and_missing_program);
  tcase_add_test(tc, test_usage_errors);
  tcase_add_test(tc, test_completion_order);
  tcase_add_test(tc, test_1000_jobs);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(suite)
