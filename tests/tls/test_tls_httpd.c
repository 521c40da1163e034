/* examples/httpd --tls-cert/--tls-key as a black box: curl (GET, connection
 * reuse), openssl s_client (pipelining), and plain OpenSSL clients written
 * here for keep-alive, pipelining, a client stalling mid-handshake (closed
 * after the handshake timeout), garbage instead of a ClientHello, a client
 * leaving mid-record; 1,000 concurrent TLS connections from gev clients in
 * a child process; and the prefork mode (--workers). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "gev/sync.h"
#include "tlstest.h"

#define HELLO "Hello, World!"

/* ---- The server ---------------------------------------------------------- */

/* Starts httpd over TLS with a 1 s handshake timeout (or hs_timeout
 * when given); workers > 0 makes it a prefork master. */
static void start_httpd_ex(tt_proc *p, int workers, const char *hs_timeout) {
  char nworkers[16];
  snprintf(nworkers, sizeof nworkers, "%d", workers);
  const char *argv[] = {tt_example("httpd"),
                        "--port",
                        "0",
                        "--idle-timeout",
                        "5",
                        "--tls-cert",
                        tt.server,
                        "--tls-key",
                        tt.server_key,
                        "--tls-handshake-timeout",
                        hs_timeout ? hs_timeout : "1",
                        workers ? "--workers" : NULL,
                        nworkers,
                        NULL};
  tt_spawn(p, argv, "listening on");
}

static void start_httpd(tt_proc *p, int workers) {
  start_httpd_ex(p, workers, NULL);
}

static void stop_httpd(tt_proc *p) {
  int status = tt_stop(p, SIGTERM);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "httpd exit status %d", status);
}

/* ---- A plain blocking OpenSSL client -------------------------------------
 */

typedef struct raw_tls {
  int fd;
  SSL_CTX *ctx;
  SSL *ssl;
} raw_tls;

/* A blocking TCP connection to 127.0.0.1:port whose reads give up after
 * 5 s. */
static int tcp_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static void raw_connect(raw_tls *r, int port) {
  r->ctx = SSL_CTX_new(TLS_client_method());
  ck_assert_int_eq(SSL_CTX_load_verify_locations(r->ctx, tt.ca, NULL), 1);
  SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
  r->fd = tcp_connect(port);
  r->ssl = SSL_new(r->ctx);
  SSL_set_fd(r->ssl, r->fd);
  SSL_set_tlsext_host_name(r->ssl, "localhost");
  SSL_set1_host(r->ssl, "localhost");
  ck_assert_int_eq(SSL_connect(r->ssl), 1);
}

static void raw_send(raw_tls *r, const char *text) {
  ck_assert_int_eq(SSL_write(r->ssl, text, (int)strlen(text)),
                   (int)strlen(text));
}

/* Reads until want hello responses arrived or the stream ended (*eof). */
static size_t raw_read(raw_tls *r, char *buf, size_t size, int want, int *eof) {
  size_t len = 0;
  *eof = 0;
  buf[0] = '\0';
  while (len < size - 1) {
    int count = 0;
    for (const char *q = buf; (q = strstr(q, HELLO)); q++)
      count++;
    if (count >= want)
      break;
    int n = SSL_read(r->ssl, buf + len, (int)(size - 1 - len));
    if (n <= 0) {
      *eof = SSL_get_error(r->ssl, n) == SSL_ERROR_ZERO_RETURN;
      break;
    }
    len += (size_t)n;
    buf[len] = '\0';
  }
  return len;
}

static void raw_close(raw_tls *r) {
  SSL_free(r->ssl);
  SSL_CTX_free(r->ctx);
  close(r->fd);
}

static int count(const char *haystack, const char *needle) {
  int n = 0;
  for (const char *p = haystack; (p = strstr(p, needle)); p++)
    n++;
  return n;
}

/* Waits for the server to close fd (EOF or reset after whatever it sent)
 * and returns how long that took. */
static double closed_after(int fd, double t0) {
  char buf[256];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
    ; /* an alert, perhaps */
  ck_assert_msg(n == 0 || errno == ECONNRESET, "not closed: %s",
                strerror(errno));
  return tt_now() - t0;
}

/* A GET on a new connection is answered. */
static void expect_served(int port) {
  raw_tls r;
  char buf[1024];
  int eof;
  raw_connect(&r, port);
  raw_send(&r, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  raw_read(&r, buf, sizeof buf, 1, &eof);
  ck_assert_int_eq(count(buf, HELLO), 1);
  raw_close(&r);
}

/* Connects, sends len bytes of data (none: len 0), and returns how long
 * until the server closed the connection. */
static double closed_after_sending(int port, const void *data, size_t len) {
  double t0 = tt_now();
  int fd = tcp_connect(port);
  if (len)
    ck_assert_int_eq(send(fd, data, len, 0), (ssize_t)len);
  double waited = closed_after(fd, t0);
  close(fd);
  return waited;
}

/* ---- Tests --------------------------------------------------------------- */

START_TEST(curl_get_and_reuse) {
  int fds = gev_test_fd_count();
  tt_proc p;
  start_httpd(&p, 0);
  char out[1024];
  int st = tt_capture(out, sizeof out,
                      "curl -sS --cacert %s -w '%%{num_connects}\\n'"
                      " https://localhost:%d/ https://localhost:%d/again",
                      tt.ca, p.port, p.port);
  ck_assert_int_eq(st, 0);
  /* Two answers; the second on the first one's connection. */
  ck_assert_str_eq(out, HELLO "1\n" HELLO "0\n");
  stop_httpd(&p);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(s_client_pipelined) {
  int fds = gev_test_fd_count();
  tt_proc p;
  start_httpd(&p, 0);
  char out[4096];
  int st = tt_capture(
      out, sizeof out,
      "printf 'GET /1 HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n"
      "GET /2 HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n"
      "GET /3 HTTP/1.1\\r\\nHost: t\\r\\nConnection: close\\r\\n\\r\\n' |"
      " openssl s_client -connect 127.0.0.1:%d -servername localhost"
      " -CAfile %s -verify_return_error -quiet 2>/dev/null",
      p.port, tt.ca);
  ck_assert_int_eq(st, 0);
  ck_assert_int_eq(count(out, "HTTP/1.1 200 OK"), 3);
  ck_assert_int_eq(count(out, HELLO), 3);
  ck_assert_int_eq(count(out, "Connection: close"), 1);
  stop_httpd(&p);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(keep_alive_and_pipelining) {
  int fds = gev_test_fd_count();
  tt_proc p;
  start_httpd(&p, 0);
  raw_tls r;
  char buf[8192];
  int eof;
  raw_connect(&r, p.port);
  for (int i = 0; i < 3; i++) {
    raw_send(&r, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    raw_read(&r, buf, sizeof buf, 1, &eof);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", buf);
    ck_assert(!eof);
  }
  /* Three requests in one record, the last one closing. */
  raw_send(&r, "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
               "GET /b HTTP/1.1\r\nHost: t\r\n\r\n"
               "GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  raw_read(&r, buf, sizeof buf, 4, &eof);
  ck_assert_int_eq(count(buf, HELLO), 3);
  raw_read(&r, buf, sizeof buf, 1, &eof);
  ck_assert(eof); /* closed with close_notify */
  raw_close(&r);
  /* Two requests in two records sent together: the second has already
   * left the socket for the TLS stream's buffer when the first is
   * answered, and is answered at once (not after the idle timeout). */
  raw_connect(&r, p.port);
  int on = 1, off = 0; /* corked: both records leave in one segment */
  setsockopt(r.fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
  raw_send(&r, "GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
  raw_send(&r, "GET /y HTTP/1.1\r\nHost: t\r\n\r\n");
  setsockopt(r.fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
  double t0 = tt_now();
  raw_read(&r, buf, sizeof buf, 2, &eof);
  ck_assert_int_eq(count(buf, HELLO), 2);
  ck_assert_double_lt(tt_now() - t0, 2.5); /* the idle timeout is 5 s */
  raw_close(&r);
  stop_httpd(&p);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(stalled_handshake_is_closed) {
  int fds = gev_test_fd_count();
  tt_proc p;
  start_httpd(&p, 0);
  /* Nothing at all, and half a ClientHello: closed after 1 s. */
  const unsigned char partial[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00};
  for (size_t len = 0; len <= sizeof partial; len += sizeof partial) {
    double waited = closed_after_sending(p.port, partial, len);
    ck_assert_double_ge(waited, 1.0);
    ck_assert_double_lt(waited, 8);
  }
  expect_served(p.port); /* the server goes on */
  stop_httpd(&p);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(garbage_instead_of_client_hello) {
  int fds = gev_test_fd_count();
  tt_proc p;
  start_httpd(&p, 0);
  /* Plain HTTP, a ClientHello whose body is one byte, binary noise. */
  static const struct {
    const char *data;
    size_t len;
  } junk[] = {{"GET / HTTP/1.1\r\nHost: t\r\n\r\n", 27},
              {"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", 10},
              {"\x80\x80\x80\x80 binary garbage \xff\xfe", 22}};
  for (int i = 0; i < 3; i++) /* closed at once */
    ck_assert_double_lt(closed_after_sending(p.port, junk[i].data, junk[i].len),
                        1.0);
  expect_served(p.port);
  stop_httpd(&p);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(client_disconnects_mid_record) {
  int fds = gev_test_fd_count();
  tt_proc p;
  start_httpd(&p, 0);
  for (int i = 0; i < 3; i++) {
    raw_tls r;
    char buf[1024];
    int eof;
    raw_connect(&r, p.port);
    raw_send(&r, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    raw_read(&r, buf, sizeof buf, 1, &eof);
    /* The header of a 200-byte record and 20 of its bytes, then gone. */
    unsigned char part[25] = {0x17, 0x03, 0x03, 0x00, 0xc8};
    ck_assert_int_eq(send(r.fd, part, sizeof part, 0), sizeof part);
    raw_close(&r);
  }
  expect_served(p.port);
  stop_httpd(&p);
  gev_test_all_clean(fds);
}
END_TEST

/* ---- 1,000 at once --------------------------------------------------------
 */

#define MANY 1000

typedef struct many {
  gev_tls_ctx *ctx;
  int port;
  int open; /* connections that got their first answer */
  int ok;   /* connections that got both answers */
  int failed;
  gev_event *all_open;
} many;

/* Reads until text appears or the stream ends. 1 if it appeared. */
static int read_until(gev_tls_stream *t, const char *text) {
  char buf[1024];
  size_t len = 0;
  ssize_t n;
  while (len < sizeof buf - 1 &&
         (n = gev_tls_recv(t, buf + len, sizeof buf - 1 - len)) > 0) {
    len += (size_t)n;
    buf[len] = '\0';
    if (strstr(buf, text))
      return 1;
  }
  return 0;
}

/* One client: connects and asks once, waits until all are connected (so
 * MANY connections are open at once), asks again and closes. */
static void *one_client(void *arg) {
  many *m = arg;
  gev_tls_stream *t =
      gev_tls_create_connection(m->ctx, "localhost", m->port, 60);
  if (!t) {
    if (!m->failed++)
      fprintf(stderr, "many: connect: %s (%s)\n", strerror(errno),
              gev_tls_last_error());
    return NULL;
  }
  static const char again[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
  static const char last[] =
      "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  if (gev_tls_sendall(t, again, sizeof again - 1) == 0 &&
      read_until(t, HELLO)) {
    if (++m->open == MANY)
      gev_event_set(m->all_open);
    if (gev_event_wait(m->all_open, 60) == 0 &&
        gev_tls_sendall(t, last, sizeof last - 1) == 0 && read_until(t, HELLO))
      m->ok++;
  }
  gev_tls_close(t);
  return NULL;
}

/* The child process: MANY gev TLS clients. Exit status 0 when all of them
 * were served twice. */
static int many_clients(int port) {
  many *m = calloc(1, sizeof *m);
  m->port = port;
  m->ctx = gev_tls_ctx_new(GEV_TLS_CLIENT);
  m->all_open = gev_event_new();
  if (!m->ctx || gev_tls_ctx_load_verify(m->ctx, tt.ca, NULL) < 0)
    return 10;
  gev_greenlet **gs = calloc(MANY, sizeof *gs);
  for (int i = 0; i < MANY; i++)
    gs[i] = gev_spawn(one_client, m);
  int done = gev_joinall(gs, MANY, 120, 0, 0);
  for (int i = 0; i < MANY; i++)
    gev_greenlet_unref(gs[i]);
  fprintf(stderr, "many: %d finished, %d opened, %d served\n", done, m->open,
          m->ok);
  return m->ok == MANY ? 0 : 1;
}

START_TEST(thousand_concurrent_connections) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 4096 && rl.rlim_max >= 4096) {
    rl.rlim_cur = 4096;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
  }
  ck_assert_msg(rl.rlim_cur >= 2 * MANY + 64, "RLIMIT_NOFILE too low");
  int fds = gev_test_fd_count();
  tt_proc p;
  start_httpd_ex(&p, 0, "60"); /* handshakes queue behind each other */
  pid_t child = fork();
  ck_assert_int_ge(child, 0);
  if (child == 0)
    _exit(many_clients(p.port));
  int status;
  ck_assert_int_eq(waitpid(child, &status, 0), child);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "clients: status %d", status);
  stop_httpd(&p);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(prefork_workers) {
  int fds = gev_test_fd_count();
  tt_proc p;
  start_httpd(&p, 2);
  for (int i = 0; i < 4; i++) {
    char out[256];
    int st =
        tt_capture(out, sizeof out,
                   "curl -sS --cacert %s https://localhost:%d/", tt.ca, p.port);
    ck_assert_int_eq(st, 0);
    ck_assert_str_eq(out, HELLO);
  }
  stop_httpd(&p);
  gev_test_all_clean(fds);
}
END_TEST

static Suite *tls_httpd_suite(void) {
  Suite *s = suite_create("tls_httpd");
  TCase *tc = tcase_create("httpd");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, curl_get_and_reuse);
  tcase_add_test(tc, s_client_pipelined);
  tcase_add_test(tc, keep_alive_and_pipelining);
  tcase_add_test(tc, stalled_handshake_is_closed);
  tcase_add_test(tc, garbage_instead_of_client_hello);
  tcase_add_test(tc, client_disconnects_mid_record);
  tcase_add_test(tc, thousand_concurrent_connections);
  tcase_add_test(tc, prefork_workers);
  suite_add_tcase(s, tc);
  return s;
}

TT_MAIN(tls_httpd_suite)
