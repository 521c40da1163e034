/* TLS servers (gev_tls_server_new): echo with close_notify at the end, a
 * client stalling mid-handshake closed after the handshake timeout without
 * a handler slot held, garbage instead of a ClientHello, a client leaving
 * mid-record, stopping with handlers parked in TLS reads, and freeing the
 * server while a handler still runs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gev/server.h"
#include "nettest.h"
#include "tlstest.h"

typedef struct served {
  int handlers; /* handler calls */
  int finished; /* handlers that returned normally */
  int cancelled;
} served;

static void echo(gev_server *srv, gev_tls_stream *t,
                 const struct sockaddr *peer, socklen_t peerlen, void *arg) {
  served *st = arg;
  char buf[4096];
  ssize_t n;
  st->handlers++;
  ck_assert_int_eq(gev_socket_gettimeout(gev_tls_socket(t)), -1);
  while ((n = gev_tls_recv(t, buf, sizeof buf)) > 0)
    if (gev_tls_sendall(t, buf, (size_t)n) < 0)
      break;
  if (n < 0 && errno == ECANCELED)
    st->cancelled++;
  else
    st->finished++;
}

/* A fresh client's message is echoed. */
static void expect_echo(gev_tls_ctx *cctx, gev_server *srv) {
  gev_tls_stream *c =
      gev_tls_create_connection(cctx, "localhost", gev_server_port(srv), 5);
  ck_assert_msg(c != NULL, "%s", gev_tls_last_error());
  ck_assert_int_eq(gev_tls_sendall(c, "hi", 2), 0);
  char buf[8];
  ck_assert_int_eq(gev_tls_recv(c, buf, sizeof buf), 2);
  gev_tls_close(c);
}

/* Stops and frees everything a test made, then the leak check. */
static void finish(gev_server *srv, gev_tls_ctx *sctx, gev_tls_ctx *cctx,
                   served *st, int fds) {
  if (srv) {
    ck_assert_int_eq(gev_server_stop(srv, 5), 0);
    gev_server_free(srv);
  }
  gev_tls_ctx_free(sctx);
  gev_tls_ctx_free(cctx);
  free(st);
  gev_test_all_clean(fds);
}

static gev_server *start(gev_tls_ctx *ctx, double hs_timeout, served *st) {
  gev_server_opts o = {.host = "127.0.0.1", .port = 0};
  gev_server *srv = gev_tls_server_new(&o, ctx, hs_timeout, echo, st);
  ck_assert_msg(srv != NULL, "%s", strerror(errno));
  ck_assert_int_eq(gev_server_start(srv), 0);
  return srv;
}

START_TEST(echo_and_close_notify) {
  int fds = gev_test_fd_count();
  served *st = calloc(1, sizeof *st);
  gev_tls_ctx *sctx = tt_server_ctx(tt.server, tt.server_key);
  gev_tls_ctx *cctx = tt_client_ctx(1);
  gev_server *srv = start(sctx, 5, st);
  gev_tls_ctx_free(sctx); /* the server holds its own reference */
  gev_tls_stream *c[3];
  char buf[32];
  for (int i = 0; i < 3; i++) {
    c[i] =
        gev_tls_create_connection(cctx, "localhost", gev_server_port(srv), 5);
    ck_assert_msg(c[i] != NULL, "%s", gev_tls_last_error());
  }
  for (int i = 0; i < 3; i++) {
    int n = snprintf(buf, sizeof buf, "client %d", i);
    ck_assert_int_eq(gev_tls_sendall(c[i], buf, (size_t)n), 0);
    char back[32] = "";
    ck_assert_int_eq(gev_tls_recv(c[i], back, sizeof back), n);
    ck_assert_int_eq(memcmp(back, buf, (size_t)n), 0);
  }
  /* The client ends cleanly; the server answers with close_notify. */
  ck_assert_int_eq(gev_tls_shutdown(c[0]), 0);
  ck_assert_int_eq(gev_tls_recv(c[0], buf, sizeof buf), 0);
  ck_assert(gev_tls_close_notified(c[0]));
  for (int i = 0; i < 3; i++)
    gev_tls_close(c[i]);
  ck_assert_int_eq(gev_server_stop(srv, 5), 0);
  ck_assert_int_eq(st->handlers, 3);
  ck_assert_int_eq(st->finished, 3);
  gev_server_free(srv);
  gev_tls_ctx_free(cctx);
  free(st);
  gev_test_all_clean(fds);
}
END_TEST

/* A plain TCP client: what the server does with bytes that are not a
 * (complete) TLS handshake. Returns how long until the server closed. */
static double closed_after(gev_server *srv, const void *data, size_t len) {
  double t0 = tt_now(); /* the server may start its clock on accept */
  gev_socket *raw = gev_create_connection("127.0.0.1", gev_server_port(srv), 5);
  ck_assert_ptr_nonnull(raw);
  if (len)
    ck_assert_int_eq(gev_socket_sendall(raw, data, len, 0), 0);
  gev_socket_settimeout(raw, 10);
  char buf[512];
  ssize_t n;
  while ((n = gev_socket_recv(raw, buf, sizeof buf, 0)) > 0)
    ; /* an alert, perhaps */
  ck_assert_msg(n == 0 || errno == ECONNRESET, "recv: %s", strerror(errno));
  gev_socket_close(raw);
  return tt_now() - t0;
}

START_TEST(stalled_and_garbage_handshakes) {
  int fds = gev_test_fd_count();
  served *st = calloc(1, sizeof *st);
  gev_tls_ctx *sctx = tt_server_ctx(tt.server, tt.server_key);
  gev_server_opts o = {.host = "127.0.0.1", .port = 0, .max_handlers = 1};
  gev_server *srv = gev_tls_server_new(&o, sctx, 1.0, echo, st);
  ck_assert_int_eq(gev_server_start(srv), 0);
  /* Nothing at all, then half a ClientHello: closed after the timeout. */
  double waited = closed_after(srv, NULL, 0);
  ck_assert_double_ge(waited, 1.0);
  ck_assert_double_lt(waited, 8);
  const unsigned char partial[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
  waited = closed_after(srv, partial, sizeof partial);
  ck_assert_double_ge(waited, 1.0);
  /* Garbage, and plain HTTP: closed at once, never reaching the handler. */
  waited = closed_after(srv, "\x01garbage garbage garbage\r\n\r\n", 28);
  ck_assert_double_lt(waited, 1.0);
  waited = closed_after(srv, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
  ck_assert_double_lt(waited, 1.0);
  ck_assert_int_eq(st->handlers, 0);
  /* With the only slot free again, a real client is served. */
  gev_tls_ctx *cctx = tt_client_ctx(1);
  expect_echo(cctx, srv);
  finish(srv, sctx, cctx, st, fds);
}
END_TEST

/* A client that sends the start of a record and disconnects: the handler
 * sees the end (or a reset) and the server goes on. */
START_TEST(client_leaves_mid_record) {
  int fds = gev_test_fd_count();
  served *st = calloc(1, sizeof *st);
  gev_tls_ctx *sctx = tt_server_ctx(tt.server, tt.server_key);
  gev_tls_ctx *cctx = tt_client_ctx(1);
  gev_server *srv = start(sctx, 5, st);
  gev_tls_stream *c =
      gev_tls_create_connection(cctx, "localhost", gev_server_port(srv), 5);
  ck_assert_ptr_nonnull(c);
  /* A record header announcing 100 bytes, then 10 of them, raw. */
  const unsigned char part[15] = {0x17, 0x03, 0x03, 0x00, 0x64};
  ck_assert_int_eq(gev_socket_sendall(gev_tls_socket(c), part, sizeof part, 0),
                   0);
  gev_sleep(0.05);
  gev_tls_close(c);
  for (int i = 0; i < 500 && st->finished < 1; i++)
    gev_sleep(0.01);
  ck_assert_int_eq(st->finished, 1);
  expect_echo(cctx, srv);
  finish(srv, sctx, cctx, st, fds);
}
END_TEST

/* Handlers parked in TLS reads are killed by stop; freeing a server whose
 * handler still runs leaves that handler its state. */
START_TEST(stop_and_free_with_handlers) {
  int fds = gev_test_fd_count();
  served *st = calloc(1, sizeof *st);
  gev_tls_ctx *sctx = tt_server_ctx(tt.server, tt.server_key);
  gev_tls_ctx *cctx = tt_client_ctx(1);
  gev_server *srv = start(sctx, 5, st);
  gev_tls_stream *c[2];
  char buf[8];
  for (int i = 0; i < 2; i++) {
    c[i] =
        gev_tls_create_connection(cctx, "localhost", gev_server_port(srv), 5);
    ck_assert_ptr_nonnull(c[i]);
    ck_assert_int_eq(gev_tls_sendall(c[i], "x", 1), 0);
    ck_assert_int_eq(gev_tls_recv(c[i], buf, sizeof buf), 1); /* in echo */
  }
  ck_assert_msg(gev_server_stop(srv, 0) == 0, "stop: %s", strerror(errno));
  ck_assert_int_eq(st->cancelled, 2);
  /* Each killed handler still sent close_notify on its way out. */
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(gev_tls_recv(c[i], buf, sizeof buf), 0);
    ck_assert(gev_tls_close_notified(c[i]));
    gev_tls_close(c[i]);
  }
  gev_server_free(srv);
  /* Freed while a handler runs. */
  srv = start(sctx, 5, st);
  c[0] = gev_tls_create_connection(cctx, "localhost", gev_server_port(srv), 5);
  ck_assert_int_eq(gev_tls_sendall(c[0], "x", 1), 0);
  ck_assert_int_eq(gev_tls_recv(c[0], buf, sizeof buf), 1); /* in echo */
  gev_server_free(srv);
  ck_assert_msg(gev_tls_recv(c[0], buf, sizeof buf) == 0, "%s",
                gev_tls_last_error());
  gev_tls_close(c[0]);
  finish(NULL, sctx, cctx, st, fds);
}
END_TEST

START_TEST(bad_arguments) {
  int fds = gev_test_fd_count();
  gev_server_opts o = {.host = "127.0.0.1", .port = 0};
  gev_tls_ctx *cctx = tt_client_ctx(1);
  ck_assert_ptr_null(gev_tls_server_new(&o, NULL, 1, echo, NULL));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_ptr_null(gev_tls_server_new(&o, cctx, 1, echo, NULL));
  ck_assert_int_eq(errno, EINVAL);
  gev_tls_ctx *sctx = tt_server_ctx(tt.server, tt.server_key);
  ck_assert_ptr_null(gev_tls_server_new(&o, sctx, 1, NULL, NULL));
  ck_assert_int_eq(errno, EINVAL);
  gev_server_opts both = {.host = "127.0.0.1", .listener = (gev_socket *)1};
  ck_assert_ptr_null(gev_tls_server_new(&both, sctx, 1, echo, NULL));
  ck_assert_int_eq(errno, EINVAL);
  finish(NULL, sctx, cctx, NULL, fds);
}
END_TEST

static Suite *tls_server_suite(void) {
  Suite *s = suite_create("tls_server");
  TCase *tc = tcase_create("server");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, echo_and_close_notify);
  tcase_add_test(tc, stalled_and_garbage_handshakes);
  tcase_add_test(tc, client_leaves_mid_record);
  tcase_add_test(tc, stop_and_free_with_handlers);
  tcase_add_test(tc, bad_arguments);
  suite_add_tcase(s, tc);
  return s;
}

TT_MAIN(tls_server_suite)
