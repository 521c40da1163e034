/* examples/crawler --fetch over HTTPS against openssl s_server (started
 * and stopped here, on 127.0.0.1, an ephemeral port): it fetches with the
 * test CA, fails verification without it, fails on a hostname mismatch
 * and a self-signed certificate, and fetches anything with --insecure. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "tlstest.h"

/* openssl s_server -www with cert/key: answers GET with a status page. */
static void start_s_server(tt_proc *p, const char *cert, const char *key) {
  const char *argv[] = {"openssl", "s_server", "-accept", "127.0.0.1:0",
                        "-cert",   cert,       "-key",    key,
                        "-www",    NULL};
  tt_spawn(p, argv, "ACCEPT");
}

/* Runs the crawler on one URL with extra options; its output line in
 * line, its exit status returned. */
static int crawl(char *line, size_t size, const char *opts, int port) {
  int st = tt_capture(line, size,
                      "%s --timeout 5 --fetch %s"
                      " https://localhost:%d/ 2>/dev/null",
                      tt_example("crawler"), opts, port);
  line[strcspn(line, "\n")] = '\0';
  return st;
}

static int ends_with(const char *s, const char *tail) {
  size_t a = strlen(s), b = strlen(tail);
  return a >= b && strcmp(s + a - b, tail) == 0;
}

START_TEST(fetch_and_verify) {
  int fds = gev_test_fd_count();
  tt_proc srv;
  char line[512], opts[256];
  start_s_server(&srv, tt.server, tt.server_key);
  snprintf(opts, sizeof opts, "--cafile %s", tt.ca);
  ck_assert_int_eq(crawl(line, sizeof line, opts, srv.port), 0);
  ck_assert_msg(strstr(line, " 200 ") != NULL, "%s", line);
  /* The system store does not know the test CA. */
  ck_assert_int_eq(crawl(line, sizeof line, "", srv.port), 1);
  ck_assert_msg(ends_with(line, " ERROR certificate verify failed: unable to"
                                " get local issuer certificate"),
                "%s", line);
  ck_assert_int_eq(crawl(line, sizeof line, "--insecure", srv.port), 0);
  ck_assert_msg(strstr(line, " 200 ") != NULL, "%s", line);
  tt_stop(&srv, SIGTERM);
  gev_test_all_clean(fds);
}
END_TEST

/* With the test CA, a server with cert/key fails verification with
 * "ERROR certificate verify failed: <why>". */
static void expect_refused(const char *cert, const char *key, const char *why) {
  int fds = gev_test_fd_count();
  tt_proc srv;
  char line[512], opts[256], tail[256];
  start_s_server(&srv, cert, key);
  snprintf(opts, sizeof opts, "--cafile %s", tt.ca);
  ck_assert_int_eq(crawl(line, sizeof line, opts, srv.port), 1);
  snprintf(tail, sizeof tail, " ERROR certificate verify failed: %s", why);
  ck_assert_msg(ends_with(line, tail), "%s", line);
  tt_stop(&srv, SIGTERM);
  gev_test_all_clean(fds);
}

START_TEST(hostname_mismatch) {
  expect_refused(tt.other, tt.other_key, "hostname mismatch");
}
END_TEST

START_TEST(self_signed) {
  expect_refused(tt.self, tt.self_key, "self-signed certificate");
}
END_TEST

START_TEST(bad_cafile) {
  int fds = gev_test_fd_count();
  char out[512];
  int st = tt_capture(out, sizeof out,
                      "%s --fetch --cafile /nonexistent https://localhost/"
                      " 2>&1",
                      tt_example("crawler"));
  ck_assert_int_eq(st, 2);
  ck_assert_msg(strstr(out, "/nonexistent: No such file") != NULL, "%s", out);
  gev_test_all_clean(fds);
}
END_TEST

static Suite *tls_crawler_suite(void) {
  Suite *s = suite_create("tls_crawler");
  TCase *tc = tcase_create("crawler");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, fetch_and_verify);
  tcase_add_test(tc, hostname_mismatch);
  tcase_add_test(tc, self_signed);
  tcase_add_test(tc, bad_cafile);
  suite_add_tcase(s, tc);
  return s;
}

TT_MAIN(tls_crawler_suite)
