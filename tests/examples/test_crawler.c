/* examples/crawler end to end: a real dnsmasq (with one domain forwarded
 * to a server that never answers), a tiny HTTP server, and the crawler
 * binary run as a child process. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dnsmasq_run.h"
#include "testutil.h"

static dnsmasq_run dns;
static int blackhole = -1; /* a DNS "server" that never answers */
static pid_t http_pid;
static int http_port, closed_port;
static char dns_arg[64];

static int bind_loopback(int type, int *port) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) < 0)
    abort();
  *port = ntohs(a.sin_port);
  return fd;
}

/* Answers every request with a 200 and a 5-byte body. */
static void http_serve(int lfd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  for (;;) {
    int c = accept(lfd, NULL, NULL);
    char buf[2048];
    size_t got = 0;
    if (c < 0)
      continue;
    while (got < sizeof buf - 1) {
      ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
      if (n <= 0)
        break;
      got += (size_t)n;
      buf[got] = '\0';
      if (strstr(buf, "\r\n\r\n"))
        break;
    }
    static const char resp[] = "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n"
                               "Content-Type: text/plain\r\n\r\nhello";
    if (write(c, resp, sizeof resp - 1) < 0)
      perror("http_serve");
    close(c);
  }
}

static void start_all(void) {
  char fwd[96], hosts[] = "127.0.0.5 alpha.test\n"
                          "10.0.0.3 beta.test\n"
                          "127.0.0.1 web.test\n";
  int port, lfd, cfd;
  blackhole = bind_loopback(SOCK_DGRAM, &port);
  snprintf(fwd, sizeof fwd, "--server=/slow.test/127.0.0.1#%d", port);
  const char *const extra[] = {fwd, NULL};
  if (dnsmasq_start(&dns, hosts, extra) < 0)
    abort();
  dnsmasq_server(&dns, dns_arg, sizeof dns_arg);
  lfd = bind_loopback(SOCK_STREAM, &http_port);
  listen(lfd, 64);
  cfd = bind_loopback(SOCK_STREAM, &closed_port); /* bound, not listening */
  fflush(NULL);
  if ((http_pid = fork()) == 0)
    http_serve(lfd);
  close(lfd);
  close(cfd);
}

static void stop_all(void) {
  kill(http_pid, SIGKILL);
  waitpid(http_pid, NULL, 0);
  dnsmasq_stop(&dns);
  close(blackhole);
}

/* ---- Running the crawler ----------------------------------------------- */

typedef struct run {
  int status;     /* exit status */
  char out[8192]; /* stdout */
  char err[4096]; /* stderr */
} run;

static void drain(int fd, char *buf, size_t cap, size_t *len) {
  ssize_t n = read(fd, buf + *len, cap - 1 - *len);
  if (n > 0)
    *len += (size_t)n;
  buf[*len] = '\0';
}

/* Runs the crawler with args (NULL-terminated), feeding it len bytes of
 * input on stdin (NULL: empty). */
static void crawl_bytes(run *r, const char *input, size_t len,
                        const char *const *args) {
  const char *bin = getenv("GEV_CRAWLER");
  const char *argv[32] = {bin};
  int in[2], out[2], err[2], n = 1;
  size_t olen = 0, elen = 0;
  ck_assert_ptr_nonnull(bin);
  for (int i = 0; args[i] && n < 31; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
  ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
  ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (input && write(in[1], input, len) < 0)
    ck_abort_msg("writing the crawler's stdin: %s", strerror(errno));
  close(in[1]);
  struct pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  while (p[0].fd >= 0 || p[1].fd >= 0) {
    ck_assert_int_ge(poll(p, 2, 20000), 1);
    if (p[0].revents) {
      size_t before = olen;
      drain(out[0], r->out, sizeof r->out, &olen);
      if (olen == before)
        p[0].fd = -1;
    }
    if (p[1].revents) {
      size_t before = elen;
      drain(err[0], r->err, sizeof r->err, &elen);
      if (elen == before)
        p[1].fd = -1;
    }
  }
  close(out[0]);
  close(err[0]);
  ck_assert_int_eq(waitpid(pid, &r->status, 0), pid);
  ck_assert(WIFEXITED(r->status));
  r->status = WEXITSTATUS(r->status);
}

static void crawl(run *r, const char *input, const char *const *args) {
  crawl_bytes(r, input, input ? strlen(input) : 0, args);
}

START_TEST(names_in_order_with_errors_and_timeout) {
  run *r = calloc(1, sizeof *r);
  const char *const args[] = {
      "--dns",       dns_arg,       "--timeout", "1",         "alpha.test",
      "nosuch.test", "x.slow.test", "beta.test", "127.0.0.9", NULL};
  crawl(r, NULL, args);
  ck_assert_str_eq(r->out, "alpha.test 127.0.0.5\n"
                           "nosuch.test ERROR not found\n"
                           "x.slow.test TIMEOUT\n"
                           "beta.test 10.0.0.3\n"
                           "127.0.0.9 127.0.0.9\n");
  ck_assert_int_eq(r->status, 1);
  ck_assert_ptr_nonnull(
      strstr(r->err, "5 inputs: 3 ok, 1 failed, 1 timed out"));
  free(r);
}
END_TEST

START_TEST(all_resolved_exits_zero) {
  run *r = calloc(1, sizeof *r);
  const char *const args[] = {
      "--dns", dns_arg, "--concurrency", "1", "beta.test", "alpha.test", NULL};
  crawl(r, NULL, args);
  ck_assert_str_eq(r->out, "beta.test 10.0.0.3\nalpha.test 127.0.0.5\n");
  ck_assert_int_eq(r->status, 0);
  free(r);
}
END_TEST

START_TEST(inputs_from_stdin) {
  run *r = calloc(1, sizeof *r);
  const char *const args[] = {"--dns", dns_arg, NULL};
  crawl(r, "alpha.test\n\nbeta.test\r\nnosuch.test\n", args);
  ck_assert_str_eq(r->out, "alpha.test 127.0.0.5\n"
                           "beta.test 10.0.0.3\n"
                           "nosuch.test ERROR not found\n");
  ck_assert_int_eq(r->status, 1);
  free(r);
}
END_TEST

START_TEST(usage_errors_exit_two) {
  static const char *const bad[][4] = {
      {"--concurrency", "0", "a.test", NULL},
      {"--timeout", "soon", "a.test", NULL},
      {"--timeout", NULL},
      {"--bogus", "a.test", NULL},
      {"--dns", "not-an-address", "a.test", NULL},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    run *r = calloc(1, sizeof *r);
    crawl(r, NULL, bad[i]);
    ck_assert_msg(r->status == 2, "case %zu: exit %d", i, r->status);
    ck_assert_str_eq(r->out, "");
    ck_assert_ptr_nonnull(strstr(r->err, "usage:"));
    free(r);
  }
}
END_TEST

START_TEST(help_exits_zero) {
  run *r = calloc(1, sizeof *r);
  const char *const args[] = {"--help", NULL};
  crawl(r, NULL, args);
  ck_assert_int_eq(r->status, 0);
  ck_assert_ptr_nonnull(strstr(r->out, "usage: crawler"));
  /* Every option is described on a line of its own, and so are the
   * output and the exit status. */
  static const char *const described[] = {
      "\n  --dns ",  "\n  --timeout ", "\n  --concurrency ", "\n  --fetch ",
      "\n  --help ", "TIMEOUT",        "Exit status"};
  for (size_t i = 0; i < sizeof described / sizeof described[0]; i++)
    ck_assert_msg(strstr(r->out, described[i]), "no \"%s\" in:\n%s",
                  described[i], r->out);
  ck_assert_str_eq(r->err, "");
  free(r);
}
END_TEST

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

START_TEST(whitespace_trimmed_and_empty_inputs_skipped) {
  run *r = calloc(1, sizeof *r);
  const char *const args[] = {"--dns", dns_arg, NULL};
  crawl(r, "  alpha.test \t\n\n \t \r\n\tbeta.test\r\n\n", args);
  ck_assert_str_eq(r->out, "alpha.test 127.0.0.5\nbeta.test 10.0.0.3\n");
  ck_assert_int_eq(r->status, 0);
  ck_assert_ptr_nonnull(strstr(r->err, "2 inputs: 2 ok"));
  free(r);
  r = calloc(1, sizeof *r);
  const char *const argv_inputs[] = {"--dns", dns_arg, " alpha.test ",
                                     "",      "   ",   NULL};
  crawl(r, NULL, argv_inputs);
  ck_assert_str_eq(r->out, "alpha.test 127.0.0.5\n");
  ck_assert_int_eq(r->status, 0);
  free(r);
}
END_TEST

/* Inputs are untrusted bytes: CR, LF, NUL and other control bytes never
 * reach a request line or a query, and every input is one output line. */
START_TEST(hostile_inputs_refused_one_line_each) {
  run *r = calloc(1, sizeof *r);
  char inject[96], want[1024];
  snprintf(inject, sizeof inject, "http://web.test:%d/a\r\nX-Injected: 1\r\n",
           http_port);
  const char *const args[] = {"--dns",
                              dns_arg,
                              "--fetch",
                              inject,
                              "http://web.test:80/\x01",
                              "http://we b.test/",
                              "http://web.test:/",
                              "http://[::1]/",
                              NULL};
  crawl(r, NULL, args);
  snprintf(want, sizeof want,
           "http://web.test:%d/a\\x0d\\x0aX-Injected:\\x201 ERROR invalid "
           "URL\n"
           "http://web.test:80/\\x01 ERROR invalid URL\n"
           "http://we\\x20b.test/ ERROR invalid URL\n"
           "http://web.test:/ ERROR invalid URL\n"
           "http://[::1]/ ERROR invalid URL\n",
           http_port);
  ck_assert_str_eq(r->out, want);
  ck_assert_int_eq(r->status, 1);
  free(r);
  /* From stdin, NUL and the backslash included; names too. */
  r = calloc(1, sizeof *r);
  const char *const names[] = {"--dns", dns_arg, NULL};
  static const char in[] = "alpha.test\nal\0pha.test\nbe\rta\x7f\\x\n"
                           "\xc3\xa9.test\nbeta.test\n";
  crawl_bytes(r, in, sizeof in - 1, names);
  ck_assert_str_eq(r->out, "alpha.test 127.0.0.5\n"
                           "al\\x00pha.test ERROR invalid name\n"
                           "be\\x0dta\\x7f\\x5cx ERROR invalid name\n"
                           "\\xc3\\xa9.test ERROR invalid name\n"
                           "beta.test 10.0.0.3\n");
  ck_assert_int_eq(count_lines(r->out), 5);
  free(r);
}
END_TEST

START_TEST(fetch_urls) {
  run *r = calloc(1, sizeof *r);
  char ok[64], refused[64], want[512];
  snprintf(ok, sizeof ok, "http://web.test:%d/index.html", http_port);
  snprintf(refused, sizeof refused, "http://web.test:%d/", closed_port);
  const char *const args[] = {
      "--dns", dns_arg,    "--fetch", ok, "http://nosuch.test/",
      refused, "ftp://x/", NULL};
  crawl(r, NULL, args);
  snprintf(want, sizeof want,
           "%s 200 5\n"
           "http://nosuch.test/ ERROR not found\n"
           "%s ERROR connection refused\n"
           "ftp://x/ ERROR invalid URL\n",
           ok, refused);
  ck_assert_str_eq(r->out, want);
  ck_assert_int_eq(r->status, 1);
  free(r);
}
END_TEST

static Suite *crawler_suite(void) {
  Suite *s = suite_create("crawler");
  TCase *tc = tcase_create("crawler");
  tcase_add_unchecked_fixture(tc, start_all, stop_all);
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, names_in_order_with_errors_and_timeout);
  tcase_add_test(tc, all_resolved_exits_zero);
  tcase_add_test(tc, inputs_from_stdin);
  tcase_add_test(tc, usage_errors_exit_two);
  tcase_add_test(tc, help_exits_zero);
  tcase_add_test(tc, fetch_urls);
  tcase_add_test(tc, whitespace_trimmed_and_empty_inputs_skipped);
  tcase_add_test(tc, hostile_inputs_refused_one_line_each);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(crawler_suite)
