/* examples/httpd --workers as a black box: the master prints "listening
 * on" once its workers accept, the workers are its direct children, every
 * request succeeds while workers retire at --max-requests, no keep-alive
 * request is lost under load while workers retire, are replaced (HUP) and
 * come and go (TTIN/TTOU), and a TERM with an idle keep-alive connection
 * and a request in flight ends everything with status 0 well before the
 * graceful timeout. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pftest.h"
#include "testutil.h"

static int fds_before;
static void setup(void) {
  signal(SIGPIPE, SIG_IGN);
  fds_before = gev_test_fd_count();
}
static void teardown(void) { gev_test_all_clean(fds_before); }

typedef struct httpd_proc {
  pid_t pid;
  int port;
  int out_fd, err_fd;
  int err_file; /* err_fd is a file the master writes, not a pipe */
  char out[4096], err[32768];
  size_t out_len, err_len;
} httpd_proc;

static void slurp(int fd, char *buf, size_t cap, size_t *len) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  while (*len + 1 < cap && poll(&p, 1, 0) == 1) {
    ssize_t n = read(fd, buf + *len, cap - 1 - *len);
    if (n <= 0)
      break;
    *len += (size_t)n;
  }
  buf[*len] = 0;
}

/* Starts httpd --workers 2 with --max-requests and --timeout (seconds) as
 * given, and a graceful timeout of 8 s; waits for "listening on". With
 * err_file the master's log goes to a file (see httpd_proc). */
static void start_httpd(httpd_proc *h, const char *max_requests,
                        const char *timeout, int err_file) {
  const char *const args[] = {"--port",
                              "0",
                              "--workers",
                              "2",
                              "--max-requests",
                              max_requests,
                              "--timeout",
                              timeout,
                              "--graceful-timeout",
                              "8",
                              NULL};
  int out[2], err[2];
  const char *dir = getenv("GEV_EXAMPLES_BUILD");
  char path[512];
  ck_assert_ptr_nonnull(dir);
  snprintf(path, sizeof path, "%s/httpd", dir);
  memset(h, 0, sizeof *h);
  h->err_file = err_file;
  ck_assert_int_eq(pipe(out), 0);
  if (h->err_file) {
    /* A master under load logs faster than a test reads a pipe; a file
     * never makes it wait. */
    char name[] = "/tmp/gev-httpd-err-XXXXXX";
    err[0] = mkstemp(name);
    ck_assert_int_ge(err[0], 0);
    err[1] = open(name, O_WRONLY | O_APPEND);
    unlink(name);
  } else {
    ck_assert_int_eq(pipe(err), 0);
  }
  h->pid = fork();
  ck_assert_int_ge(h->pid, 0);
  if (h->pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]), close(out[1]), close(err[0]), close(err[1]);
    const char *argv[24] = {"httpd"};
    for (int i = 0; args[i] && i < 22; i++)
      argv[i + 1] = args[i];
    execv(path, (char *const *)argv);
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  h->out_fd = out[0];
  h->err_fd = err[0];
  double end = pf_now() + 10;
  char *line;
  while (!(line = strstr(h->out, "listening on 127.0.0.1:")) ||
         !strchr(line, '\n')) {
    ck_assert_msg(pf_now() < end, "httpd did not start: %s", h->err);
    usleep(10000);
    slurp(h->out_fd, h->out, sizeof h->out, &h->out_len);
    slurp(h->err_fd, h->err, sizeof h->err, &h->err_len);
  }
  h->port = atoi(strrchr(line, ':') + 1);
}

static int connect_port(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct timeval tv = {.tv_sec = 10};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Sends one request on fd and reads one full "Hello, World!" response;
 * 0 on success. */
static int get(int fd, int keep_alive) {
  char req[128], buf[1024];
  size_t n = 0;
  int len = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: t\r\n%s\r\n",
                     keep_alive ? "" : "Connection: close\r\n");
  if (send(fd, req, (size_t)len, 0) != len)
    return -1;
  while (n + 1 < sizeof buf) {
    ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
    if (r <= 0)
      break;
    n += (size_t)r;
    buf[n] = 0;
    if (strstr(buf, "Hello, World!"))
      return strncmp(buf, "HTTP/1.1 200", 12) == 0 ? 0 : -1;
  }
  return -1;
}

static int get_once(int port) {
  int fd = connect_port(port);
  if (fd < 0)
    return -1;
  int rc = get(fd, 0);
  close(fd);
  return rc;
}

START_TEST(test_workers_serve_and_retire_without_failures) {
  httpd_proc h;
  pid_t kids[16];
  start_httpd(&h, "10", "2", 0);
  ck_assert_int_eq(pf_children(h.pid, kids, 16), 2);
  for (int i = 0; i < 80; i++)
    ck_assert_msg(get_once(h.port) == 0, "request %d failed", i);
  slurp(h.err_fd, h.err, sizeof h.err, &h.err_len);
  ck_assert_msg(strstr(h.err, "served its max_requests"), "%s", h.err);
  kill(h.pid, SIGTERM);
  ck_assert_int_eq(pf_wait_pid(h.pid, 10), 0);
  slurp(h.out_fd, h.out, sizeof h.out, &h.out_len);
  /* "listening on" once, from the master. */
  ck_assert_ptr_null(strstr(strstr(h.out, "listening on") + 1, "listening on"));
  close(h.out_fd);
  close(h.err_fd);
}
END_TEST

START_TEST(test_term_finishes_in_flight_and_closes_idle) {
  httpd_proc h;
  pid_t kids[16];
  start_httpd(&h, "0", "2", 0);
  ck_assert_int_eq(pf_children(h.pid, kids, 16), 2);
  /* An idle keep-alive connection after one request... */
  int idle = connect_port(h.port);
  ck_assert_int_eq(get(idle, 1), 0);
  /* ...and one in the middle of a request (head not complete yet). */
  int busy = connect_port(h.port);
  ck_assert_int_eq(send(busy, "GET / HTTP/1.1\r\n", 16, 0), 16);
  usleep(100000);
  double t0 = pf_now();
  kill(h.pid, SIGTERM);
  usleep(200000);
  ck_assert_int_eq(send(busy, "Host: t\r\n\r\n", 11, 0), 11);
  char buf[512];
  ssize_t n = recv(busy, buf, sizeof buf - 1, 0);
  ck_assert_int_gt(n, 0);
  buf[n] = 0;
  ck_assert(strncmp(buf, "HTTP/1.1 200", 12) == 0);
  ck_assert_int_eq(recv(idle, buf, sizeof buf, 0), 0); /* closed */
  ck_assert_int_eq(pf_wait_pid(h.pid, 10), 0);
  ck_assert(pf_now() - t0 < 4); /* graceful timeout is 8 s */
  for (int i = 0; i < 2; i++)
    ck_assert(!pf_alive(kids[i]));
  close(idle);
  close(busy);
  close(h.out_fd);
  close(h.err_fd);
}
END_TEST

/* ---- No request lost ------------------------------------------------------
 */

/* bench/prefork_lost as a child: a keep-alive load of `connections`
 * connections for `seconds`, counting requests the server dropped. */
typedef struct load {
  pid_t pid;
  int out;
} load;

static void load_start(load *l, int port, const char *seconds) {
  const char *dir = getenv("GEV_BENCH_BUILD");
  char path[512], port_s[16];
  int out[2];
  ck_assert_ptr_nonnull(dir);
  snprintf(path, sizeof path, "%s/bench_prefork_lost", dir);
  snprintf(port_s, sizeof port_s, "%d", port);
  ck_assert_int_eq(pipe(out), 0);
  l->pid = fork();
  ck_assert_int_ge(l->pid, 0);
  if (l->pid == 0) {
    dup2(out[1], 1);
    close(out[0]), close(out[1]);
    execl(path, "bench_prefork_lost", "--port", port_s, "--connections", "20",
          "--duration", seconds, (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  l->out = out[0];
}

/* Waits for the load to end and returns the value of counter `name`. */
static unsigned long load_counter(const char *out, const char *name) {
  char key[32];
  snprintf(key, sizeof key, "\n%s ", name);
  const char *p = strstr(out, key);
  ck_assert_msg(p != NULL, "no %s in: %s", name, out);
  return strtoul(p + strlen(key), NULL, 10);
}

static void load_finish(load *l, char *out, size_t size) {
  size_t len = 1;
  out[0] = '\n'; /* so every counter follows a newline */
  int status = pf_wait_pid(l->pid, 30);
  ck_assert_msg(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) <= 1,
                "load client status %d", status);
  slurp(l->out, out, size, &len);
  close(l->out);
}

/* Sends sig to the master every `every` seconds, n times. */
static void signal_during_load(pid_t master, const int *sigs, int n,
                               double every) {
  for (int i = 0; i < n; i++) {
    usleep((useconds_t)(every * 1e6));
    kill(master, sigs[i]);
  }
}

/* Runs httpd --workers 2 (with max_requests, "0" for none) under a
 * keep-alive load for `seconds`, sending the master sigs[i] every `every`
 * seconds meanwhile, and requires that no request was lost and that the
 * master's log shows each of must_log (NULL-terminated). */
static void lost_scenario(const char *max_requests, const int *sigs, int nsigs,
                          double every, const char *seconds,
                          const char *const *must_log) {
  httpd_proc h;
  load l;
  char out[1024];
  start_httpd(&h, max_requests, "5", 1);
  load_start(&l, h.port, seconds);
  signal_during_load(h.pid, sigs, nsigs, every);
  load_finish(&l, out, sizeof out);
  unsigned long ok = load_counter(out, "ok");
  ck_assert_msg(load_counter(out, "lost") == 0, "lost requests: %s", out);
  ck_assert_msg(load_counter(out, "failed") == 0, "failed requests: %s", out);
  ck_assert_msg(load_counter(out, "errors") == 0, "%s", out);
  ck_assert_msg(load_counter(out, "timeouts") == 0, "%s", out);
  ck_assert_uint_eq(load_counter(out, "requests"), ok);
  ck_assert_msg(ok > 200, "only %lu requests: %s", ok, out);
  kill(h.pid, SIGTERM);
  ck_assert_int_eq(pf_wait_pid(h.pid, 20), 0);
  /* The load did exercise what the scenario is about. */
  off_t size = lseek(h.err_fd, 0, SEEK_END);
  char *log = malloc((size_t)size + 1);
  ck_assert_ptr_nonnull(log);
  ck_assert_int_eq(pread(h.err_fd, log, (size_t)size, 0), size);
  log[size] = '\0';
  for (int i = 0; must_log[i]; i++)
    ck_assert_msg(strstr(log, must_log[i]), "no \"%s\" in the log",
                  must_log[i]);
  free(log);
  close(h.out_fd);
  close(h.err_fd);
}

START_TEST(test_no_request_lost_when_workers_retire) {
  /* Workers retire every ~50 requests: hundreds of retirements. */
  const char *const must_log[] = {"served its max_requests", NULL};
  lost_scenario("50", NULL, 0, 0, "2", must_log);
}
END_TEST

START_TEST(test_no_request_lost_on_hup_ttin_ttou) {
  const int sigs[] = {SIGHUP, SIGTTIN, SIGTTOU, SIGHUP};
  const char *const must_log[] = {"replaced after HUP",
                                  "one worker fewer (TTOU)", NULL};
  lost_scenario("0", sigs, 4, 0.5, "3", must_log);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("httpd_workers");
  TCase *tc = tcase_create("httpd_workers");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_workers_serve_and_retire_without_failures);
  tcase_add_test(tc, test_term_finishes_in_flight_and_closes_idle);
  tcase_add_test(tc, test_no_request_lost_when_workers_retire);
  tcase_add_test(tc, test_no_request_lost_on_hup_ttin_ttou);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(suite)
