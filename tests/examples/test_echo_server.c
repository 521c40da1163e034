/* examples/echo_server as a black box: echoes on several connections at
 * once and exits cleanly on SIGINT and SIGTERM. */
#include "example_proc.h"

static const char *const any_port[] = {"--port", "0", NULL};

static void echo_round_trips(int port) {
  int fd[3];
  for (int i = 0; i < 3; i++)
    fd[i] = ex_connect(port);
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < 3; i++) {
      char msg[32], back[64];
      int n = snprintf(msg, sizeof msg, "conn %d round %d", i, round);
      ex_send(fd[i], msg, (size_t)n);
      size_t got = 0;
      while (got < (size_t)n) {
        ck_assert(ex_readable(fd[i], 5000));
        ssize_t r = recv(fd[i], back + got, sizeof back - got, 0);
        ck_assert_int_gt(r, 0);
        got += (size_t)r;
      }
      ck_assert_int_eq(memcmp(msg, back, (size_t)n), 0);
    }
  }
  for (int i = 0; i < 3; i++)
    close(fd[i]);
}

START_TEST(echo_then_sigint) {
  int fds = gev_test_fd_count();
  example_proc p;
  ex_start(&p, "echo_server", any_port);
  echo_round_trips(p.port);
  ex_stop(&p, SIGINT);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(sigterm_with_open_connection) {
  int fds = gev_test_fd_count();
  example_proc p;
  ex_start(&p, "echo_server", any_port);
  int fd = ex_connect(p.port);
  ex_send(fd, "x", 1);
  ck_assert(ex_readable(fd, 5000));
  /* The open connection's handler is stopped within the grace period. */
  ex_stop(&p, SIGTERM);
  /* The listener is closed: nothing accepts any more. */
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(p.port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(connect(s, (struct sockaddr *)&sin, sizeof sin), -1);
  ck_assert_int_eq(errno, ECONNREFUSED);
  close(s);
  close(fd);
  gev_test_all_clean(fds);
}
END_TEST

static Suite *echo_suite(void) {
  Suite *s = suite_create("echo_server");
  TCase *tc = tcase_create("echo_server");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, echo_then_sigint);
  tcase_add_test(tc, sigterm_with_open_connection);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(echo_suite)
