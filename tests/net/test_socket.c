/* Cooperative sockets over real loopback sockets: echo in every family,
 * bulk transfer, timeouts, close/kill/Timeout interruption, concurrent-use
 * refusal, peer errors, bad input. */
#define _GNU_SOURCE /* pipe2 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dnsmasq_run.h"
#include "gev/dns.h"
#include "gev/hub.h"
#include "nettest.h"

/* ---- Echo in every family ------------------------------------------------ */

/* Echoes everything until EOF; returns the byte count. */
static void *echo_stream(void *arg) {
  gev_socket *s = arg;
  char buf[4096];
  ssize_t n;
  uintptr_t total = 0;
  while ((n = gev_socket_recv(s, buf, sizeof buf, 0)) > 0) {
    if (gev_socket_sendall(s, buf, (size_t)n, 0) < 0)
      return gev_fail(errno, "sendall");
    total += (uintptr_t)n;
  }
  if (n < 0)
    return gev_fail(errno, "recv");
  return (void *)total;
}

/* Sends a few messages over client and checks each comes back. */
static void check_echo(gev_socket *client, gev_socket *server) {
  gev_greenlet *g = gev_spawn(echo_stream, server);
  ck_assert_ptr_nonnull(g);
  for (int i = 0; i < 20; i++) {
    char msg[64], back[64];
    int len = snprintf(msg, sizeof msg, "message %d", i);
    ck_assert_int_eq(gev_socket_sendall(client, msg, (size_t)len, 0), 0);
    nt_recv_all(client, back, (size_t)len);
    ck_assert_int_eq(memcmp(msg, back, (size_t)len), 0);
  }
  ck_assert_int_eq(gev_socket_shutdown(client, SHUT_WR), 0);
  void *total;
  ck_assert_int_eq(gev_greenlet_get(g, 5, &total), 0);
  ck_assert_uint_gt((uintptr_t)total, 0);
  ck_assert_int_eq(gev_socket_shutdown(server, SHUT_WR), 0);
  char c;
  ck_assert_int_eq(gev_socket_recv(client, &c, 1, 0), 0); /* EOF */
  gev_greenlet_unref(g);
}

static void tcp_echo(const char *host) {
  int fds = gev_test_fd_count();
  gev_socket *client, *server;
  nt_pair(host, &client, &server);
  check_echo(client, server);
  ck_assert_int_eq(gev_socket_close(client), 0);
  ck_assert_int_eq(gev_socket_close(server), 0);
  gev_test_all_clean(fds);
}

START_TEST(tcp_echo_ipv4) { tcp_echo("127.0.0.1"); }
END_TEST

START_TEST(tcp_echo_ipv6) { tcp_echo("::1"); }
END_TEST

START_TEST(unix_echo) {
  int fds = gev_test_fd_count();
  char dir[] = "/tmp/gev-net-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  snprintf(sun.sun_path, sizeof sun.sun_path, "%s/sock", dir);
  gev_socket *l = gev_socket_new(AF_UNIX, SOCK_STREAM, 0);
  ck_assert_ptr_nonnull(l);
  ck_assert_int_eq(gev_socket_bind(l, (struct sockaddr *)&sun, sizeof sun), 0);
  ck_assert_int_eq(gev_socket_listen(l, 8), 0);
  gev_socket *client = gev_socket_new(AF_UNIX, SOCK_STREAM, 0);
  ck_assert_ptr_nonnull(client);
  ck_assert_int_eq(
      gev_socket_connect(client, (struct sockaddr *)&sun, sizeof sun), 0);
  gev_socket *server = gev_socket_accept(l, NULL, NULL);
  ck_assert_ptr_nonnull(server);
  check_echo(client, server);
  gev_socket_close(client);
  gev_socket_close(server);
  gev_socket_close(l);
  unlink(sun.sun_path);
  rmdir(dir);
  gev_test_all_clean(fds);
}
END_TEST

/* Echoes n datagrams back to their senders. */
static void *echo_datagrams(void *arg) {
  gev_socket *s = arg;
  for (int i = 0; i < 10; i++) {
    char buf[512];
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof from;
    ssize_t n = gev_socket_recvfrom(s, buf, sizeof buf, 0,
                                    (struct sockaddr *)&from, &fromlen);
    if (n < 0 || gev_socket_sendto(s, buf, (size_t)n, 0,
                                   (struct sockaddr *)&from, fromlen) != n)
      return gev_fail(errno, "udp echo");
  }
  return NULL;
}

static void udp_echo(const char *host) {
  int fds = gev_test_fd_count();
  struct sockaddr_storage addr;
  socklen_t len;
  ck_assert_int_eq(gev_sockaddr_parse(host, 0, &addr, &len), 0);
  gev_socket *srv = gev_socket_new(addr.ss_family, SOCK_DGRAM, 0);
  gev_socket *cli = gev_socket_new(addr.ss_family, SOCK_DGRAM, 0);
  ck_assert(srv && cli);
  ck_assert_int_eq(gev_socket_bind(srv, (struct sockaddr *)&addr, len), 0);
  ck_assert_int_eq(gev_socket_getsockname(srv, (struct sockaddr *)&addr, &len),
                   0);
  gev_greenlet *g = gev_spawn(echo_datagrams, srv);
  for (int i = 0; i < 10; i++) {
    char msg[32], back[64];
    int n = snprintf(msg, sizeof msg, "datagram %d", i);
    ck_assert_int_eq(gev_socket_sendto(cli, msg, (size_t)n, 0,
                                       (struct sockaddr *)&addr, len),
                     n);
    ck_assert_int_eq(gev_socket_recvfrom(cli, back, sizeof back, 0, NULL, NULL),
                     n);
    ck_assert_int_eq(memcmp(msg, back, (size_t)n), 0);
  }
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  ck_assert(gev_greenlet_successful(g));
  gev_greenlet_unref(g);
  gev_socket_close(srv);
  gev_socket_close(cli);
  gev_test_all_clean(fds);
}

START_TEST(udp_echo_ipv4) { udp_echo("127.0.0.1"); }
END_TEST

START_TEST(udp_echo_ipv6) { udp_echo("::1"); }
END_TEST

/* ---- Bulk transfer ------------------------------------------------------- */

#define BULK_BYTES (64u << 20)

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

typedef struct bulk_result {
  uint64_t hash;
  size_t bytes;
} bulk_result;

static void *bulk_reader(void *arg) {
  gev_socket *s = arg;
  bulk_result *r = calloc(1, sizeof *r);
  unsigned char *buf = malloc(65536);
  r->hash = 1469598103934665603ull;
  ssize_t n;
  while ((n = gev_socket_recv(s, buf, 65536, 0)) > 0) {
    r->hash = fnv1a(r->hash, buf, (size_t)n);
    r->bytes += (size_t)n;
  }
  free(buf);
  return r;
}

START_TEST(sendall_64mib_checksum) {
  int fds = gev_test_fd_count();
  gev_socket *client, *server;
  nt_pair("127.0.0.1", &client, &server);
  unsigned char *data = malloc(BULK_BYTES);
  uint32_t x = 12345;
  for (size_t i = 0; i < BULK_BYTES; i++) {
    x = x * 1103515245u + 12345u;
    data[i] = (unsigned char)(x >> 16);
  }
  gev_greenlet *g = gev_spawn(bulk_reader, server);
  ck_assert_int_eq(gev_socket_sendall(client, data, BULK_BYTES, 0), 0);
  ck_assert_int_eq(gev_socket_shutdown(client, SHUT_WR), 0);
  void *v;
  ck_assert_int_eq(gev_greenlet_get(g, 30, &v), 0);
  bulk_result *r = v;
  ck_assert_uint_eq(r->bytes, BULK_BYTES);
  ck_assert(r->hash == fnv1a(1469598103934665603ull, data, BULK_BYTES));
  free(r);
  free(data);
  gev_greenlet_unref(g);
  gev_socket_close(client);
  gev_socket_close(server);
  gev_test_all_clean(fds);
}
END_TEST

/* ---- Timeouts ------------------------------------------------------------ */

START_TEST(connect_timeout_full_backlog) {
  int fds = gev_test_fd_count();
  /* A listener that never accepts, with the smallest backlog: once its
   * queue is full the kernel drops further SYNs, so connect hangs. */
  gev_socket *l = gev_socket_listen_tcp("127.0.0.1", 0, 1, 0);
  ck_assert_ptr_nonnull(l);
  ck_assert_int_eq(gev_socket_listen(l, 0), 0);
  struct sockaddr_storage addr;
  socklen_t len = sizeof addr;
  gev_socket_getsockname(l, (struct sockaddr *)&addr, &len);
  gev_socket *conns[16];
  int n = 0, timed_out = 0;
  while (n < 16 && !timed_out) {
    gev_socket *c = gev_socket_new(AF_INET, SOCK_STREAM, 0);
    ck_assert_ptr_nonnull(c);
    gev_socket_settimeout(c, 0.2);
    double t0 = nt_now();
    if (gev_socket_connect(c, (struct sockaddr *)&addr, len) < 0) {
      ck_assert_int_eq(errno, ETIMEDOUT);
      ck_assert(nt_now() - t0 >= 0.19);
      timed_out = 1;
    }
    conns[n++] = c;
  }
  ck_assert_msg(timed_out, "no connect timed out against a full backlog");
  for (int i = 0; i < n; i++)
    gev_socket_close(conns[i]);
  gev_socket_close(l);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(recv_timeout) {
  int fds = gev_test_fd_count();
  gev_socket *client, *server;
  nt_pair("127.0.0.1", &client, &server);
  gev_socket_settimeout(client, 0.1);
  ck_assert(gev_socket_gettimeout(client) == 0.1);
  char buf[8];
  double t0 = nt_now();
  ck_assert_int_eq(gev_socket_recv(client, buf, sizeof buf, 0), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert(nt_now() - t0 >= 0.09);
  /* Non-blocking mode fails at once with EAGAIN. */
  gev_socket_settimeout(client, 0);
  ck_assert_int_eq(gev_socket_recv(client, buf, sizeof buf, 0), -1);
  ck_assert_int_eq(errno, EAGAIN);
  /* And the socket still works afterwards. */
  gev_socket_settimeout(client, -1);
  ck_assert_int_eq(gev_socket_send(server, "x", 1, 0), 1);
  ck_assert_int_eq(gev_socket_recv(client, buf, sizeof buf, 0), 1);
  gev_socket_close(client);
  gev_socket_close(server);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(wait_read_and_write) {
  int fds = gev_test_fd_count();
  gev_socket *client, *server;
  nt_pair("127.0.0.1", &client, &server);
  /* Nothing to read: timeout 0 polls, > 0 waits and times out. */
  ck_assert_int_eq(gev_socket_wait_read(client, 0), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_socket_wait_read(client, 0.05), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_socket_wait_write(client, 0), 0);
  ck_assert_int_eq(gev_socket_wait_write(client, -1), 0);
  /* Data makes it readable; nothing is consumed by waiting. */
  ck_assert_int_eq(gev_socket_send(server, "ab", 2, 0), 2);
  ck_assert_int_eq(gev_socket_wait_read(client, 5), 0);
  ck_assert_int_eq(gev_socket_wait_read(client, 0), 0);
  char buf[4];
  ck_assert_int_eq(gev_socket_recv(client, buf, sizeof buf, 0), 2);
  ck_assert_int_eq(gev_socket_wait_read(NULL, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  gev_socket_close(client);
  gev_socket_close(server);
  gev_test_all_clean(fds);
}
END_TEST

/* ---- Interruption -------------------------------------------------------- */

typedef struct blocked_recv {
  gev_socket *s;
  ssize_t rc;
  int err;
  int use_scope;  /* run the recv inside a 50 ms Timeout scope */
  int wait_first; /* park in gev_socket_wait_read before the recv */
} blocked_recv;

static void *recv_blocked(void *arg) {
  blocked_recv *b = arg;
  char buf[16];
  gev_timeout *t = b->use_scope ? gev_timeout_start(0.05) : NULL;
  if (b->wait_first && gev_socket_wait_read(b->s, -1) < 0)
    b->rc = -1;
  else
    b->rc = gev_socket_recv(b->s, buf, sizeof buf, 0);
  b->err = errno;
  gev_timeout_cancel(t);
  return NULL;
}

START_TEST(close_wakes_waiters_with_ebadf) {
  int fds = gev_test_fd_count();
  gev_socket *client, *server;
  nt_pair("127.0.0.1", &client, &server);
  blocked_recv *b = calloc(1, sizeof *b);
  b->s = client;
  b->wait_first = _i; /* loop test: recv, then gev_socket_wait_read */
  gev_greenlet *g = gev_spawn(recv_blocked, b);
  ck_assert_int_eq(gev_sleep(0.02), 0); /* let it park */
  gev_hub_stats st;
  gev_hub_get_stats(&st);
  ck_assert_uint_eq(st.watchers, 1);
  ck_assert_int_eq(gev_socket_close(client), 0);
  gev_hub_get_stats(&st);
  ck_assert_uint_eq(st.watchers, 0); /* none left active after close */
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  ck_assert_int_eq(b->rc, -1);
  ck_assert_int_eq(b->err, EBADF);
  free(b);
  gev_greenlet_unref(g);
  gev_socket_close(server);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(second_reader_gets_ebusy) {
  int fds = gev_test_fd_count();
  gev_socket *client, *server;
  nt_pair("127.0.0.1", &client, &server);
  blocked_recv *first = calloc(1, sizeof *first);
  blocked_recv *second = calloc(1, sizeof *second);
  first->s = second->s = client;
  gev_greenlet *g1 = gev_spawn(recv_blocked, first);
  gev_greenlet *g2 = gev_spawn(recv_blocked, second);
  ck_assert_int_eq(gev_greenlet_join(g2, 5), 0);
  ck_assert_int_eq(second->rc, -1);
  ck_assert_int_eq(second->err, EBUSY);
  /* The first reader is unaffected and gets the data. */
  ck_assert_int_eq(gev_socket_send(server, "hello", 5, 0), 5);
  ck_assert_int_eq(gev_greenlet_join(g1, 5), 0);
  ck_assert_int_eq(first->rc, 5);
  free(first);
  free(second);
  gev_greenlet_unref(g1);
  gev_greenlet_unref(g2);
  gev_socket_close(client);
  gev_socket_close(server);
  gev_test_all_clean(fds);
}
END_TEST

typedef struct blocked_send {
  gev_socket *s;
  size_t len;
  int rc, err;
} blocked_send;

static void *send_blocked(void *arg) {
  blocked_send *b = arg;
  char *buf = calloc(1, b->len);
  b->rc = gev_socket_sendall(b->s, buf, b->len, 0);
  b->err = errno;
  free(buf);
  return NULL;
}

START_TEST(second_writer_gets_ebusy) {
  int fds = gev_test_fd_count();
  gev_socket *client, *server;
  nt_pair("127.0.0.1", &client, &server);
  /* 16 MiB cannot fit in the socket buffers: the first writer parks. */
  blocked_send *first = calloc(1, sizeof *first);
  blocked_send *second = calloc(1, sizeof *second);
  first->s = second->s = client;
  first->len = 16u << 20;
  second->len = 4u << 20; /* must park too, at the latest after a part */
  gev_greenlet *g1 = gev_spawn(send_blocked, first);
  ck_assert_int_eq(gev_sleep(0.05), 0);
  gev_greenlet *g2 = gev_spawn(send_blocked, second);
  ck_assert_int_eq(gev_greenlet_join(g2, 5), 0);
  /* The second writer has to wait for room while the first is parked:
   * refused rather than queued behind it. */
  ck_assert_int_eq(second->rc, -1);
  ck_assert_int_eq(second->err, EBUSY);
  /* Drain: the first writer completes. */
  char *buf = malloc(65536);
  size_t got = 0;
  gev_socket_settimeout(server, 0.5);
  /* Read until the writer is done and nothing more arrives. */
  for (int i = 0; i < 10000; i++) {
    ssize_t n = gev_socket_recv(server, buf, 65536, 0);
    ck_assert_msg(n > 0 || errno == ETIMEDOUT, "recv: %s", strerror(errno));
    if (n < 0 && gev_greenlet_ready(g1))
      break;
    got += n > 0 ? (size_t)n : 0;
  }
  ck_assert_uint_ge(got, first->len); /* plus any part of the second's */
  ck_assert_int_eq(gev_greenlet_join(g1, 5), 0);
  ck_assert_int_eq(first->rc, 0);
  free(buf);
  free(first);
  free(second);
  gev_greenlet_unref(g1);
  gev_greenlet_unref(g2);
  gev_socket_close(client);
  gev_socket_close(server);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(kill_interrupts_recv) {
  int fds = gev_test_fd_count();
  gev_socket *client, *server;
  nt_pair("127.0.0.1", &client, &server);
  blocked_recv *b = calloc(1, sizeof *b);
  b->s = client;
  gev_greenlet *g = gev_spawn(recv_blocked, b);
  ck_assert_int_eq(gev_sleep(0.01), 0);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 5), 0);
  ck_assert_int_eq(b->rc, -1);
  ck_assert_int_eq(b->err, ECANCELED);
  /* The socket stays usable by others. */
  ck_assert_int_eq(gev_socket_send(server, "x", 1, 0), 1);
  char c;
  ck_assert_int_eq(gev_socket_recv(client, &c, 1, 0), 1);
  free(b);
  gev_greenlet_unref(g);
  gev_socket_close(client);
  gev_socket_close(server);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(timeout_scope_interrupts_recv) {
  int fds = gev_test_fd_count();
  gev_socket *client, *server;
  nt_pair("127.0.0.1", &client, &server);
  blocked_recv *b = calloc(1, sizeof *b);
  b->s = client;
  b->use_scope = 1;
  gev_greenlet *g = gev_spawn(recv_blocked, b);
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  ck_assert_int_eq(b->rc, -1);
  ck_assert_int_eq(b->err, ETIMEDOUT);
  free(b);
  gev_greenlet_unref(g);
  gev_socket_close(client);
  gev_socket_close(server);
  gev_test_all_clean(fds);
}
END_TEST

/* ---- Peer errors ----------------------------------------------------------
 */

START_TEST(peer_reset_gives_econnreset) {
  int fds = gev_test_fd_count();
  gev_socket *client, *server;
  nt_pair("127.0.0.1", &client, &server);
  struct linger lin = {.l_onoff = 1, .l_linger = 0};
  ck_assert_int_eq(
      gev_socket_setsockopt(server, SOL_SOCKET, SO_LINGER, &lin, sizeof lin),
      0);
  ck_assert_int_eq(gev_socket_close(server), 0);
  char buf[8];
  ck_assert_int_eq(gev_socket_recv(client, buf, sizeof buf, 0), -1);
  ck_assert_int_eq(errno, ECONNRESET);
  gev_socket_close(client);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(write_to_closed_peer_no_sigpipe) {
  int fds = gev_test_fd_count();
  signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill this test */
  gev_socket *client, *server;
  nt_pair("127.0.0.1", &client, &server);
  gev_socket_close(server);
  char buf[4096] = {0};
  int rc = 0;
  for (int i = 0; i < 100 && rc == 0; i++)
    rc = gev_socket_sendall(client, buf, sizeof buf, 0);
  ck_assert_int_eq(rc, -1);
  ck_assert_msg(errno == EPIPE || errno == ECONNRESET, "errno %d", errno);
  gev_socket_close(client);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(connect_refused) {
  int fds = gev_test_fd_count();
  int port;
  gev_socket *l = nt_listen("127.0.0.1", &port);
  gev_socket_close(l); /* nothing listens there now */
  ck_assert_ptr_null(gev_create_connection("127.0.0.1", port, 5));
  ck_assert_int_eq(errno, ECONNREFUSED);
  gev_test_all_clean(fds);
}
END_TEST

/* A name with two addresses, served by a real dnsmasq: whichever family
 * the resolver lists first, create_connection reaches a listener that
 * exists on only one of them by trying each address in turn. */
START_TEST(create_connection_tries_each_address) {
  dnsmasq_run d;
  ck_assert_int_eq(
      dnsmasq_start(&d, "127.0.0.1 dual.test\n::1 dual.test\n", NULL), 0);
  int fds = gev_test_fd_count();
  char server[64];
  dnsmasq_server(&d, server, sizeof server);
  ck_assert_int_eq(gev_dns_set_servers(server), 0);
  static const char *const hosts[] = {"127.0.0.1", "::1"};
  for (int i = 0; i < 2; i++) {
    int port;
    gev_socket *l = nt_listen(hosts[i], &port);
    gev_socket *c = gev_create_connection("dual.test", port, 5);
    ck_assert_msg(c != NULL, "via %s: %s", hosts[i], strerror(errno));
    gev_socket *a = gev_socket_accept(l, NULL, NULL);
    ck_assert_ptr_nonnull(a);
    gev_socket_close(a);
    gev_socket_close(c);
    gev_socket_close(l);
  }
  ck_assert_ptr_null(gev_create_connection("missing.test", 80, 5));
  ck_assert_int_eq(errno, ENOENT); /* gev/dns.h: "As errno" */
  gev_dns_set_servers(NULL);
  gev_test_all_clean(fds);
  dnsmasq_stop(&d);
}
END_TEST

/* ---- Bad input and ownership ----------------------------------------------
 */

static void *recv_from_hub_cb_result;
static void recv_in_hub(void *arg) {
  char c;
  ssize_t n = gev_socket_recv(arg, &c, 1, 0);
  recv_from_hub_cb_result = (void *)(intptr_t)(n < 0 ? errno : 0);
}

START_TEST(bad_input) {
  int fds = gev_test_fd_count();
  char buf[4];
  ck_assert_int_eq(gev_socket_recv(NULL, buf, 1, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_socket_close(NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_ptr_null(gev_socket_wrap(-1));
  ck_assert_int_eq(errno, EBADF);
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  ck_assert_int_ge(devnull, 0);
  ck_assert_ptr_null(gev_socket_wrap(devnull)); /* neither socket nor pipe */
  ck_assert_int_eq(errno, ENOTSOCK);
  close(devnull);
  ck_assert_ptr_null(gev_socket_listen_tcp("not-an-ip", 0, 1, 0));
  ck_assert_int_eq(errno, EAFNOSUPPORT);
  ck_assert_ptr_null(gev_socket_listen_tcp("127.0.0.1", 70000, 1, 0));
  ck_assert_int_eq(errno, EINVAL);

  gev_socket *client, *server;
  nt_pair("127.0.0.1", &client, &server);
  ck_assert_int_eq(gev_socket_recv(client, NULL, 4, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  /* A blocking call from the hub is refused, not run. */
  ck_assert_int_eq(gev_run_callback(recv_in_hub, client), 0);
  ck_assert_int_eq(gev_sleep(0), 0);
  ck_assert_int_eq((intptr_t)recv_from_hub_cb_result, EPERM);
  /* Calls on a closed socket fail with EBADF while a reference lives. */
  gev_socket_ref(client);
  gev_socket_close(client);
  ck_assert(gev_socket_closed(client));
  ck_assert_int_eq(gev_socket_recv(client, buf, 1, 0), -1);
  ck_assert_int_eq(errno, EBADF);
  ck_assert_int_eq(gev_socket_fileno(client), -1);
  ck_assert_int_eq(gev_socket_close(client), 0); /* idempotent */
  gev_socket_unref(client);
  /* Detach hands the fd back. */
  int fd = gev_socket_detach(server);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(close(fd), 0);
  gev_test_all_clean(fds);
}
END_TEST

/* Pipes wrap too: read/write instead of recv/send, parking both ways, and
 * a write to a pipe whose reader is gone fails with EPIPE instead of
 * killing the process with SIGPIPE (which stays at its default action
 * here). */
static void *drain_pipe(void *arg) {
  char buf[65536];
  uintptr_t total = 0;
  ssize_t n;
  while ((n = gev_socket_recv(arg, buf, sizeof buf, 0)) > 0)
    total += (uintptr_t)n;
  return n < 0 ? gev_fail(errno, "read") : (void *)total;
}

START_TEST(pipe_ends_wrap) {
  int fds = gev_test_fd_count(), p[2];
  static char big[1 << 20];
  void *v = NULL;
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  gev_socket *r = gev_socket_wrap(p[0]), *w = gev_socket_wrap(p[1]);
  ck_assert_ptr_nonnull(r);
  ck_assert_ptr_nonnull(w);
  gev_greenlet *g = gev_spawn(drain_pipe, r);
  ck_assert_int_eq(gev_socket_sendall(w, big, sizeof big, 0), 0);
  ck_assert_int_eq(gev_socket_send(w, "x", 1, MSG_OOB), -1);
  ck_assert_int_eq(errno, EOPNOTSUPP);
  ck_assert_int_eq(gev_socket_shutdown(w, SHUT_WR), -1);
  ck_assert_int_eq(errno, ENOTSOCK);
  gev_socket_close(w);
  ck_assert_int_eq(gev_greenlet_get(g, 5, &v), 0);
  ck_assert_uint_eq((uintptr_t)v, sizeof big);
  gev_greenlet_unref(g);
  /* Reader gone: EPIPE, and no SIGPIPE left pending or delivered. */
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  gev_socket_close(r);
  int gone = dup(p[0]);
  close(gone);
  ck_assert_ptr_null(gev_socket_wrap(gone)); /* not open: EBADF, not ENOTSOCK */
  ck_assert_int_eq(errno, EBADF);
  r = gev_socket_wrap(p[0]);
  w = gev_socket_wrap(p[1]);
  gev_socket_close(r);
  ck_assert_int_eq(gev_socket_send(w, "x", 1, 0), -1);
  ck_assert_int_eq(errno, EPIPE);
  sigset_t pending;
  ck_assert_int_eq(sigpending(&pending), 0);
  ck_assert(!sigismember(&pending, SIGPIPE));
  gev_socket_close(w);
  gev_test_all_clean(fds);
}
END_TEST

static void *recv_from_other_thread(void *arg) {
  char c;
  intptr_t err = gev_socket_recv(arg, &c, 1, 0) < 0 ? errno : 0;
  return (void *)err;
}

START_TEST(other_thread_refused) {
  int fds = gev_test_fd_count();
  gev_socket *client, *server;
  nt_pair("127.0.0.1", &client, &server);
  pthread_t t;
  void *err;
  ck_assert_int_eq(pthread_create(&t, NULL, recv_from_other_thread, client), 0);
  ck_assert_int_eq(pthread_join(t, &err), 0);
  ck_assert_int_eq((intptr_t)err, EXDEV);
  gev_socket_close(client);
  gev_socket_close(server);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(wrap_existing_fd_and_format) {
  int fds = gev_test_fd_count();
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  gev_socket *a = gev_socket_wrap(sv[0]);
  gev_socket *b = gev_socket_wrap(sv[1]);
  ck_assert(a && b);
  ck_assert_int_eq(gev_socket_fileno(a), sv[0]);
  ck_assert_int_eq(gev_socket_send(a, "ping", 4, 0), 4);
  char buf[8];
  ck_assert_int_eq(gev_socket_recv(b, buf, sizeof buf, 0), 4);
  gev_socket_close(a);
  gev_socket_close(b);

  struct sockaddr_storage ss;
  socklen_t len;
  char text[64];
  ck_assert_int_eq(gev_sockaddr_parse("[::1]", 8080, &ss, &len), 0);
  ck_assert_str_eq(
      gev_sockaddr_format((struct sockaddr *)&ss, len, text, sizeof text),
      "[::1]:8080");
  ck_assert_int_eq(gev_sockaddr_parse(NULL, 80, &ss, &len), 0);
  ck_assert_str_eq(
      gev_sockaddr_format((struct sockaddr *)&ss, len, text, sizeof text),
      "0.0.0.0:80");
  ck_assert_ptr_null(gev_sockaddr_format((struct sockaddr *)&ss, len, text, 4));
  ck_assert_int_eq(errno, ENOSPC);
  gev_test_all_clean(fds);
}
END_TEST

/* Closing a socket whose last reference the first close released is a
 * bug gev reports by aborting, never a silent use of freed memory. */
static void close_twice(void) {
  gev_socket *s = gev_socket_new(AF_INET, SOCK_STREAM, 0);
  gev_socket_close(s);
  gev_socket_close(s); /* the bug */
}

START_TEST(close_twice_aborts_loudly) {
  const char *out = gev_test_child_aborts(close_twice);
  ck_assert_msg(strstr(out, "gev: socket closed twice"), "%s", out);
}
END_TEST

static Suite *socket_suite(void) {
  Suite *s = suite_create("socket");
  TCase *tc = tcase_create("socket");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, tcp_echo_ipv4);
  tcase_add_test(tc, tcp_echo_ipv6);
  tcase_add_test(tc, unix_echo);
  tcase_add_test(tc, udp_echo_ipv4);
  tcase_add_test(tc, udp_echo_ipv6);
  tcase_add_test(tc, sendall_64mib_checksum);
  tcase_add_test(tc, connect_timeout_full_backlog);
  tcase_add_test(tc, recv_timeout);
  tcase_add_loop_test(tc, close_wakes_waiters_with_ebadf, 0, 2);
  tcase_add_test(tc, wait_read_and_write);
  tcase_add_test(tc, second_reader_gets_ebusy);
  tcase_add_test(tc, second_writer_gets_ebusy);
  tcase_add_test(tc, kill_interrupts_recv);
  tcase_add_test(tc, timeout_scope_interrupts_recv);
  tcase_add_test(tc, peer_reset_gives_econnreset);
  tcase_add_test(tc, write_to_closed_peer_no_sigpipe);
  tcase_add_test(tc, connect_refused);
  tcase_add_test(tc, create_connection_tries_each_address);
  tcase_add_test(tc, bad_input);
  tcase_add_test(tc, pipe_ends_wrap);
  tcase_add_test(tc, close_twice_aborts_loudly);
  tcase_add_test(tc, other_thread_refused);
  tcase_add_test(tc, wrap_existing_fd_and_format);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(socket_suite)
