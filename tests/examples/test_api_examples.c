/* The short per-header examples as black boxes: sync_pipeline,
 * timeout_scope, signals, udp_echo and chat_server. Each is started as a
 * child process, its output checked, and (servers) stopped by a signal;
 * loopback only, every wait bounded. */
#include "example_proc.h"

/* Runs build/examples/<name> with args to its end (at most 10 s) and
 * returns its stdout (static); requires exit status 0. */
static const char *run_to_end(const char *name, const char *const *args) {
  static char out[4096];
  example_proc p;
  const char *dir = getenv("GEV_EXAMPLES_BUILD");
  ck_assert_ptr_nonnull(dir);
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int pipefd[2];
  ck_assert_int_eq(pipe(pipefd), 0);
  p.pid = fork();
  ck_assert_int_ge(p.pid, 0);
  if (p.pid == 0) {
    const char *argv[8] = {path};
    for (int i = 0; args && args[i] && i < 6; i++)
      argv[i + 1] = args[i];
    dup2(pipefd[1], 1);
    close(pipefd[0]);
    close(pipefd[1]);
    execv(path, (char *const *)argv);
    _exit(127);
  }
  close(pipefd[1]);
  size_t len = 0;
  ssize_t n = 1;
  while (n > 0 && len < sizeof out - 1 && ex_readable(pipefd[0], 10000))
    len += (size_t)((n = read(pipefd[0], out + len, sizeof out - 1 - len)) > 0
                        ? n
                        : 0);
  out[len] = '\0';
  close(pipefd[0]);
  int status;
  ck_assert_int_eq(waitpid(p.pid, &status, 0), p.pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "%s exit status %d: %s", name, status, out);
  return out;
}

START_TEST(sync_pipeline_consumes_everything) {
  int fds = gev_test_fd_count();
  const char *const args[] = {"50", NULL};
  const char *out = run_to_end("sync_pipeline", args);
  /* 0..49 and 1000..1049: 1225 + 51225 */
  ck_assert_str_eq(out,
                   "consumed 100 items, total 52450, 5 greenlets finished\n");
  ck_assert_int_eq(gev_test_fd_count(), fds);
}
END_TEST

START_TEST(timeout_scope_cuts_the_steps) {
  const char *out = run_to_end("timeout_scope", NULL);
  ck_assert_msg(strstr(out, "sleep 0.1              ok"), "%s", out);
  ck_assert_msg(strstr(out, "get from empty queue   Connection timed out"),
                "%s", out);
  ck_assert_msg(strstr(out, "sleep 0.1 again        Connection timed out"),
                "%s", out);
  ck_assert_msg(strstr(out, "scope expired: yes"), "%s", out);
  ck_assert_msg(strstr(out, "sleep 0.1 after cancel ok"), "%s", out);
}
END_TEST

/* Reads from fd until buf holds needle (at most 5 s). */
static void expect(int fd, char *buf, size_t size, const char *needle) {
  size_t len = strlen(buf);
  while (!strstr(buf, needle)) {
    ck_assert_msg(len < size - 1 && ex_readable(fd, 5000),
                  "waited for \"%s\", got \"%s\"", needle, buf);
    ssize_t n = read(fd, buf + len, size - 1 - len);
    ck_assert_msg(n > 0, "EOF while waiting for \"%s\": \"%s\"", needle, buf);
    len += (size_t)n;
    buf[len] = '\0';
  }
}

START_TEST(signals_counted_then_term) {
  const char *dir = getenv("GEV_EXAMPLES_BUILD");
  char path[1024], out[1024] = "";
  snprintf(path, sizeof path, "%s/signals", dir);
  int pipefd[2];
  ck_assert_int_eq(pipe(pipefd), 0);
  example_proc p = {.pid = fork()};
  if (p.pid == 0) {
    dup2(pipefd[1], 1);
    close(pipefd[0]);
    close(pipefd[1]);
    execl(path, path, (char *)NULL);
    _exit(127);
  }
  close(pipefd[1]);
  p.out = pipefd[0];
  expect(p.out, out, sizeof out, "ready");
  /* One at a time: arrivals within one turn of the hub coalesce. */
  for (int i = 1; i <= 3; i++) {
    char want[16];
    snprintf(want, sizeof want, "usr1 %d\n", i);
    ck_assert_int_eq(kill(p.pid, SIGUSR1), 0);
    expect(p.out, out, sizeof out, want);
  }
  ck_assert_int_eq(kill(p.pid, SIGTERM), 0);
  expect(p.out, out, sizeof out, "stopped after 3 SIGUSR1\n");
  int status;
  ck_assert_int_eq(waitpid(p.pid, &status, 0), p.pid);
  ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(p.out);
}
END_TEST

START_TEST(udp_echo_round_trips) {
  int fds = gev_test_fd_count();
  example_proc p;
  const char *const args[] = {"--port", "0", NULL};
  ex_start(&p, "udp_echo", args);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(p.port)};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(connect(s, (struct sockaddr *)&to, sizeof to), 0);
  for (int i = 0; i < 5; i++) {
    char msg[32], back[64];
    int n = snprintf(msg, sizeof msg, "datagram %d", i);
    ck_assert_int_eq(send(s, msg, (size_t)n, 0), n);
    ck_assert(ex_readable(s, 5000));
    ck_assert_int_eq(recv(s, back, sizeof back, 0), n);
    ck_assert_int_eq(memcmp(msg, back, (size_t)n), 0);
  }
  close(s);
  ex_stop(&p, SIGTERM);
  ck_assert_int_eq(gev_test_fd_count(), fds);
}
END_TEST

START_TEST(chat_with_three_clients) {
  int fds = gev_test_fd_count();
  example_proc p;
  const char *const args[] = {"--port", "0", NULL};
  ex_start(&p, "chat_server", args);
  int c[3];
  char in[3][1024] = {"", "", ""};
  for (int i = 0; i < 3; i++) {
    char want[64];
    c[i] = ex_connect(p.port);
    snprintf(want, sizeof want, "welcome, you are guest%d\n", i + 1);
    expect(c[i], in[i], sizeof in[i], want);
  }
  ex_send(c[0], "hello\n", 6);
  expect(c[1], in[1], sizeof in[1], "guest1: hello\n");
  expect(c[2], in[2], sizeof in[2], "guest1: hello\n");
  ex_send(c[2], "hi all\n", 7);
  expect(c[0], in[0], sizeof in[0], "guest3: hi all\n");
  expect(c[1], in[1], sizeof in[1], "guest3: hi all\n");
  /* guest2 leaves; the others go on. */
  close(c[1]);
  ex_send(c[0], "bye\n", 4);
  expect(c[2], in[2], sizeof in[2], "guest1: bye\n");
  /* Nobody hears their own lines. */
  ck_assert_ptr_null(strstr(in[0], "guest1:"));
  ck_assert_ptr_null(strstr(in[2], "guest3:"));
  /* Stops cleanly with clients still connected, closing them. */
  ex_stop(&p, SIGTERM);
  int eof;
  char rest[64];
  ex_read(c[0], rest, sizeof rest, 5000, &eof);
  ck_assert(eof);
  close(c[0]);
  close(c[2]);
  ck_assert_int_eq(gev_test_fd_count(), fds);
}
END_TEST

static Suite *api_examples_suite(void) {
  Suite *s = suite_create("api_examples");
  TCase *tc = tcase_create("api_examples");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, sync_pipeline_consumes_everything);
  tcase_add_test(tc, timeout_scope_cuts_the_steps);
  tcase_add_test(tc, signals_counted_then_term);
  tcase_add_test(tc, udp_echo_round_trips);
  tcase_add_test(tc, chat_with_three_clients);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(api_examples_suite)
