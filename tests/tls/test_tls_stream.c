/* TLS streams in one process, over loopback: handshake and echo, full
 * duplex bulk transfer, close_notify and truncation, kill, Timeout scopes
 * and socket timeouts during the handshake and reads (and that the stream
 * resumes afterwards), close from another greenlet, concurrent use,
 * non-blocking streams, refused renegotiation. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "nettest.h"
#include "tlstest.h"

typedef struct contexts {
  gev_tls_ctx *server, *client;
} contexts;

static contexts make_contexts(void) {
  return (contexts){tt_server_ctx(tt.server, tt.server_key), tt_client_ctx(1)};
}

static void free_contexts(contexts c) {
  gev_tls_ctx_free(c.server);
  gev_tls_ctx_free(c.client);
}

/* What most tests start from: contexts and a client/server pair over
 * loopback (handshaken if asked), and what they end with: the streams
 * closed (those not NULL), the contexts freed, nothing left. */
typedef struct fixture {
  int fds;
  contexts cx;
} fixture;

static fixture begin(gev_tls_stream **c, gev_tls_stream **s, int handshake) {
  fixture f = {gev_test_fd_count(), make_contexts()};
  tt_pair(f.cx.server, f.cx.client, "localhost", c, s);
  if (handshake)
    tt_handshake_both(*c, *s);
  return f;
}

static void end(fixture f, gev_tls_stream *c, gev_tls_stream *s) {
  if (c)
    gev_tls_close(c);
  if (s)
    gev_tls_close(s);
  free_contexts(f.cx);
  gev_test_all_clean(f.fds);
}

/* ---- Handshake and data ------------------------------------------------ */

START_TEST(handshake_and_echo) {
  gev_tls_stream *c, *s;
  fixture f = begin(&c, &s, 0);
  ck_assert(!gev_tls_handshake_done(c));
  ck_assert_ptr_null(gev_tls_version(c));
  tt_handshake_both(c, s);
  ck_assert(gev_tls_handshake_done(c) && gev_tls_handshake_done(s));
  ck_assert_str_eq(gev_tls_version(c), "TLSv1.3");
  ck_assert_str_eq(gev_tls_cipher(c), gev_tls_cipher(s));
  ck_assert_str_eq(gev_tls_server_name(s), "localhost");
  ck_assert_str_eq(gev_tls_server_name(c), "localhost");
  ck_assert_int_eq(gev_tls_verify_result(c), X509_V_OK);
  ck_assert_str_eq(gev_tls_verify_message(c), "ok");
  char subject[128];
  ck_assert_int_gt(gev_tls_peer_subject(c, subject, sizeof subject), 0);
  ck_assert_str_eq(subject, "CN=localhost");
  ck_assert_ptr_null(gev_tls_peer_certificate(s)); /* none asked for */
  ck_assert_int_eq(gev_tls_peer_subject(s, subject, sizeof subject), -1);
  ck_assert_int_eq(errno, ENOENT);
  ck_assert_int_eq(gev_tls_peer_subject(c, subject, 4), -1);
  ck_assert_int_eq(errno, ENOSPC);
  ck_assert_str_eq(subject, "CN=");

  char buf[64];
  ck_assert_int_eq(gev_tls_sendall(c, "hello", 5), 0);
  tt_async *a = tt_start(TT_RECV_ALL, s, buf, 5);
  ck_assert_int_eq(tt_join(a, NULL, NULL, 0), 5);
  ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
  ck_assert_int_eq(gev_tls_send(s, "world!", 6), 6);
  ck_assert_int_eq(gev_tls_recv(c, buf, sizeof buf), 6);
  ck_assert_int_eq(memcmp(buf, "world!", 6), 0);
  ck_assert_int_eq(gev_tls_send(s, buf, 0), 0);
  ck_assert_int_eq(gev_tls_recv(c, buf, 0), 0);
  ck_assert_ptr_nonnull(gev_tls_socket(c));
  gev_tls_ref(c); /* a holder of a reference may close again */
  ck_assert_int_eq(gev_tls_close(c), 0);
  ck_assert_int_eq(gev_tls_close(c), 0);
  gev_tls_unref(c);
  ck_assert_int_eq(gev_tls_close(s), 0);
  end(f, NULL, NULL);
}
END_TEST

/* Both ends send 4 MiB at once while reading the other's: partial writes,
 * the out buffer, and a reader and a writer on one stream. The writers
 * start first and fill the sockets both ways, so the readers that come
 * later must read without waiting for their own side's writer. */
START_TEST(full_duplex_bulk) {
  gev_tls_stream *c, *s;
  fixture f = begin(&c, &s, 0);
  int buffer = 128 << 10; /* above the loopback MSS, so windows reopen */
  for (int i = 0; i < 2; i++) {
    gev_socket *sock = gev_tls_socket(i ? s : c);
    gev_socket_setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    gev_socket_setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  }
  size_t size = 4u << 20;
  char *out_c = malloc(size), *out_s = malloc(size);
  char *in_c = malloc(size), *in_s = malloc(size);
  for (size_t i = 0; i < size; i++) {
    out_c[i] = (char)(i * 7);
    out_s[i] = (char)(i * 13 + 1);
  }
  tt_async *jobs[4];
  jobs[0] = tt_start(TT_SENDALL, c, out_c, size);
  jobs[1] = tt_start(TT_SENDALL, s, out_s, size);
  ck_assert_int_eq(gev_sleep(0.2), 0); /* both writers stuck */
  jobs[2] = tt_start(TT_RECV_ALL, c, in_c, size);
  jobs[3] = tt_start(TT_RECV_ALL, s, in_s, size);
  ck_assert_int_eq(tt_join(jobs[0], NULL, NULL, 0), 0);
  ck_assert_int_eq(tt_join(jobs[1], NULL, NULL, 0), 0);
  ck_assert_int_eq(tt_join(jobs[2], NULL, NULL, 0), (ssize_t)size);
  ck_assert_int_eq(tt_join(jobs[3], NULL, NULL, 0), (ssize_t)size);
  ck_assert_int_eq(memcmp(in_c, out_s, size), 0);
  ck_assert_int_eq(memcmp(in_s, out_c, size), 0);
  free(out_c), free(out_s), free(in_c), free(in_s);
  end(f, c, s);
}
END_TEST

/* ---- Ending a session ---------------------------------------------------- */

START_TEST(close_notify_and_truncation) {
  gev_tls_stream *c, *s;
  char buf[16];
  fixture f = begin(&c, &s, 0);
  ck_assert_int_eq(gev_tls_shutdown(c), -1); /* no session yet */
  ck_assert_int_eq(errno, ENOTCONN);
  tt_handshake_both(c, s);
  /* An orderly end: recv 0, and close_notify seen. */
  ck_assert_int_eq(gev_tls_shutdown(c), 0);
  ck_assert_int_eq(gev_tls_shutdown(c), 0);
  ck_assert_int_eq(gev_tls_recv(s, buf, sizeof buf), 0);
  ck_assert(gev_tls_close_notified(s));
  ck_assert_int_eq(gev_tls_recv(s, buf, sizeof buf), 0);
  ck_assert_int_eq(gev_tls_wait_read(s, 0), 0);
  /* Half closed: the other direction still carries data. */
  ck_assert_int_eq(gev_tls_sendall(s, "bye", 3), 0);
  ck_assert_int_eq(gev_tls_recv(c, buf, sizeof buf), 3);
  ck_assert(!gev_tls_close_notified(c));
  /* A peer that just closes: recv 0, not close_notify (truncation). */
  ck_assert_int_eq(gev_tls_close(s), 0);
  ck_assert_int_eq(gev_tls_recv(c, buf, sizeof buf), 0);
  ck_assert(!gev_tls_close_notified(c));
  end(f, c, NULL);
}
END_TEST

/* ---- Kill, Timeout scopes, socket timeouts --------------------------------
 */

/* A client handshake against a silent peer: a plain socket that reads
 * nothing. */
static void silent_pair(gev_tls_ctx *cctx, gev_tls_stream **c,
                        gev_socket **peer) {
  gev_socket *cs;
  nt_pair("127.0.0.1", &cs, peer);
  *c = gev_tls_wrap(cctx, cs, "localhost");
  ck_assert_ptr_nonnull(*c);
}

START_TEST(kill_during_handshake_then_resume) {
  gev_tls_stream *c, *s;
  fixture f = begin(&c, &s, 0);
  tt_async *a = tt_start(TT_HANDSHAKE, c, NULL, 0);
  ck_assert_int_eq(gev_sleep(0.05), 0); /* the ClientHello is out */
  ck_assert_int_eq(gev_greenlet_kill(a->g, 1, 5), 0);
  int err;
  ck_assert_int_eq(tt_join(a, &err, NULL, 0), -1);
  ck_assert_int_eq(err, ECANCELED);
  ck_assert(!gev_tls_handshake_done(c));
  /* The interrupted handshake resumes where it stopped. */
  tt_handshake_both(c, s);
  ck_assert_int_eq(gev_tls_sendall(c, "ok", 2), 0);
  char buf[4];
  ck_assert_int_eq(gev_tls_recv(s, buf, sizeof buf), 2);
  end(f, c, s);
}
END_TEST

START_TEST(timeouts_during_handshake) {
  int fds = gev_test_fd_count();
  contexts cx = make_contexts();
  gev_tls_stream *c;
  gev_socket *peer;
  silent_pair(cx.client, &c, &peer);
  /* A Timeout scope. */
  double t0 = tt_now();
  gev_timeout *scope = gev_timeout_start(0.2);
  ck_assert_int_eq(gev_tls_handshake(c), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_double_ge(tt_now() - t0, 0.2);
  gev_timeout_cancel(scope);
  /* The socket's timeout, an overall deadline for the handshake. */
  gev_socket_settimeout(gev_tls_socket(c), 0.2);
  t0 = tt_now();
  ck_assert_int_eq(gev_tls_handshake(c), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_double_ge(tt_now() - t0, 0.2);
  ck_assert_double_lt(tt_now() - t0, 2.0);
  /* Timeout 0: never parks. */
  gev_socket_settimeout(gev_tls_socket(c), 0);
  ck_assert_int_eq(gev_tls_handshake(c), -1);
  ck_assert_int_eq(errno, EAGAIN);
  gev_tls_close(c);
  gev_socket_close(peer);
  free_contexts(cx);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(kill_and_timeouts_during_read) {
  gev_tls_stream *c, *s;
  char buf[16];
  int err;
  fixture f = begin(&c, &s, 1);
  /* Killed while parked in recv. */
  tt_async *a = tt_start(TT_RECV, c, buf, sizeof buf);
  ck_assert_int_eq(gev_sleep(0.05), 0);
  ck_assert_int_eq(gev_greenlet_kill(a->g, 1, 5), 0);
  ck_assert_int_eq(tt_join(a, &err, NULL, 0), -1);
  ck_assert_int_eq(err, ECANCELED);
  /* A Timeout scope, then the socket's per-wait timeout. */
  gev_timeout *scope = gev_timeout_start(0.1);
  double t0 = tt_now();
  ck_assert_int_eq(gev_tls_recv(c, buf, sizeof buf), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_double_ge(tt_now() - t0, 0.1);
  gev_timeout_cancel(scope);
  gev_socket_settimeout(gev_tls_socket(c), 0.1);
  t0 = tt_now();
  ck_assert_int_eq(gev_tls_recv(c, buf, sizeof buf), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_double_ge(tt_now() - t0, 0.1);
  ck_assert_int_eq(gev_tls_wait_read(c, 0.1), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  ck_assert_int_eq(gev_tls_wait_read(c, 0), -1);
  ck_assert_int_eq(errno, ETIMEDOUT);
  /* Non-blocking: EAGAIN at once. */
  gev_socket_settimeout(gev_tls_socket(c), 0);
  ck_assert_int_eq(gev_tls_recv(c, buf, sizeof buf), -1);
  ck_assert_int_eq(errno, EAGAIN);
  /* None of that hurt the stream. */
  gev_socket_settimeout(gev_tls_socket(c), 5);
  ck_assert_int_eq(gev_tls_sendall(s, "still", 5), 0);
  ck_assert_int_eq(gev_tls_wait_read(c, 5), 0);
  ck_assert_int_eq(gev_tls_recv(c, buf, sizeof buf), 5);
  end(f, c, s);
}
END_TEST

/* ---- Closing under a parked greenlet ------------------------------------ */

START_TEST(close_from_another_greenlet) {
  gev_tls_stream *c, *s, *h;
  gev_socket *peer;
  char buf[16];
  int err;
  fixture f = begin(&c, &s, 1);
  /* A reader and a writer parked (the writer behind a full socket). */
  gev_tls_ref(c);
  tt_async *r = tt_start(TT_RECV, c, buf, sizeof buf);
  size_t big = 8u << 20;
  char *data = calloc(1, big);
  tt_async *w = tt_start(TT_SENDALL, c, data, big);
  ck_assert_int_eq(gev_sleep(0.05), 0);
  ck_assert_int_eq(gev_tls_close(c), 0);
  ck_assert_int_eq(tt_join(r, &err, NULL, 0), -1);
  ck_assert_int_eq(err, EBADF);
  ck_assert_int_eq(tt_join(w, &err, NULL, 0), -1);
  ck_assert_int_eq(err, EBADF);
  ck_assert_int_eq(gev_tls_recv(c, buf, sizeof buf), -1);
  ck_assert_int_eq(errno, EBADF);
  gev_tls_unref(c); /* the last reference frees it */
  free(data);
  /* Mid-handshake, by closing the socket under the stream. */
  silent_pair(f.cx.client, &h, &peer);
  gev_tls_ref(h);
  tt_async *a = tt_start(TT_HANDSHAKE, h, NULL, 0);
  ck_assert_int_eq(gev_sleep(0.05), 0);
  ck_assert_int_eq(gev_socket_close(gev_tls_socket(h)), 0);
  ck_assert_int_eq(tt_join(a, &err, NULL, 0), -1);
  ck_assert_int_eq(err, EBADF);
  ck_assert_int_eq(gev_tls_handshake(h), -1);
  ck_assert_int_eq(errno, EBADF);
  ck_assert_int_eq(gev_tls_close(h), 0);
  gev_tls_unref(h);
  gev_socket_close(peer);
  end(f, NULL, s);
}
END_TEST

/* ---- Concurrent use ------------------------------------------------------ */

START_TEST(concurrent_use) {
  gev_tls_stream *c, *s;
  char buf[16], buf2[16];
  int err;
  fixture f = begin(&c, &s, 0);
  /* Two greenlets need the handshake: one does it, the other waits. */
  tt_async *h1 = tt_start(TT_HANDSHAKE, c, NULL, 0);
  tt_async *h2 = tt_start(TT_SENDALL, c, "early", 5);
  ck_assert_int_eq(gev_tls_recv(s, buf, 5), 5);
  ck_assert_int_eq(tt_join(h1, NULL, NULL, 0), 0);
  ck_assert_int_eq(tt_join(h2, NULL, NULL, 0), 0);
  /* A second reader is refused while the first one waits. */
  tt_async *r = tt_start(TT_RECV, c, buf, sizeof buf);
  ck_assert_int_eq(gev_sleep(0.02), 0);
  ck_assert_int_eq(gev_tls_recv(c, buf2, sizeof buf2), -1);
  ck_assert_int_eq(errno, EBUSY);
  ck_assert_str_eq(gev_tls_last_error(), "concurrent use of a TLS stream");
  ck_assert_int_eq(gev_tls_wait_read(c, 1), -1);
  ck_assert_int_eq(errno, EBUSY);
  ck_assert_int_eq(gev_tls_sendall(s, "x", 1), 0);
  ck_assert_int_eq(tt_join(r, &err, NULL, 0), 1);
  end(f, c, s);
}
END_TEST

/* Both ends with timeout 0: the caller retries on EAGAIN. */
START_TEST(non_blocking_streams) {
  gev_tls_stream *c, *s;
  fixture f = begin(&c, &s, 0);
  gev_socket_settimeout(gev_tls_socket(c), 0);
  gev_socket_settimeout(gev_tls_socket(s), 0);
  int done_c = 0, done_s = 0, rounds = 0;
  while ((!done_c || !done_s) && rounds++ < 1000) {
    if (!done_c)
      done_c = gev_tls_handshake(c) == 0;
    ck_assert(done_c || errno == EAGAIN);
    if (!done_s)
      done_s = gev_tls_handshake(s) == 0;
    ck_assert(done_s || errno == EAGAIN);
    gev_sleep(0.001);
  }
  ck_assert(done_c && done_s);
  char buf[8];
  ck_assert_int_eq(gev_tls_send(c, "abc", 3), 3);
  ssize_t n;
  while ((n = gev_tls_recv(s, buf, sizeof buf)) < 0 && errno == EAGAIN)
    gev_sleep(0.001);
  ck_assert_int_eq(n, 3);
  end(f, c, s);
}
END_TEST

/* ---- Renegotiation ------------------------------------------------------- */

/* A TLS 1.2 client allowed (through the OpenSSL escape hatch) to ask for
 * renegotiation is refused by a gev server. */
START_TEST(renegotiation_refused) {
  int fds = gev_test_fd_count();
  contexts cx = make_contexts();
  SSL_CTX_clear_options(gev_tls_ctx_openssl(cx.client),
                        SSL_OP_NO_RENEGOTIATION);
  ck_assert_int_eq(gev_tls_ctx_set_versions(cx.client, 0, GEV_TLS_1_2), 0);
  gev_tls_stream *c, *s;
  char buf[16];
  int err;
  tt_pair(cx.server, cx.client, "localhost", &c, &s);
  tt_handshake_both(c, s);
  ck_assert_str_eq(gev_tls_version(c), "TLSv1.2");
  tt_async *r = tt_start(TT_RECV, s, buf, sizeof buf);
  ck_assert_int_eq(SSL_renegotiate(gev_tls_openssl(c)), 1);
  ck_assert_int_eq(gev_tls_send(c, "x", 1), -1);
  ck_assert_int_eq(errno, EPROTO);
  ck_assert_str_eq(gev_tls_last_error(), "no renegotiation");
  gev_tls_close(c);
  ck_assert_int_le(tt_join(r, &err, NULL, 0), 0);
  gev_tls_close(s);
  /* gev's own client context refuses to renegotiate at all. */
  gev_tls_ctx *plain = tt_client_ctx(1);
  tt_pair(cx.server, plain, "localhost", &c, &s);
  ck_assert_int_eq(SSL_get_options(gev_tls_openssl(c)) &
                       SSL_OP_NO_RENEGOTIATION,
                   SSL_OP_NO_RENEGOTIATION);
  gev_tls_close(c);
  gev_tls_close(s);
  gev_tls_ctx_free(plain);
  free_contexts(cx);
  gev_test_all_clean(fds);
}
END_TEST

/* ---- Wrong thread -------------------------------------------------------- */

static void *other_thread(void *arg) {
  char buf[4];
  intptr_t rc = gev_tls_recv(arg, buf, sizeof buf) == -1 && errno == EXDEV;
  rc = rc && gev_tls_close(arg) == -1 && errno == EXDEV;
  return (void *)rc;
}

START_TEST(wrong_thread) {
  gev_tls_stream *c, *s;
  fixture f = begin(&c, &s, 0);
  pthread_t th;
  void *ok;
  ck_assert_int_eq(pthread_create(&th, NULL, other_thread, c), 0);
  ck_assert_int_eq(pthread_join(th, &ok), 0);
  ck_assert(ok);
  end(f, c, s);
}
END_TEST

static Suite *tls_stream_suite(void) {
  Suite *s = suite_create("tls_stream");
  TCase *tc = tcase_create("stream");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, handshake_and_echo);
  tcase_add_test(tc, full_duplex_bulk);
  tcase_add_test(tc, close_notify_and_truncation);
  tcase_add_test(tc, kill_during_handshake_then_resume);
  tcase_add_test(tc, timeouts_during_handshake);
  tcase_add_test(tc, kill_and_timeouts_during_read);
  tcase_add_test(tc, close_from_another_greenlet);
  tcase_add_test(tc, concurrent_use);
  tcase_add_test(tc, non_blocking_streams);
  tcase_add_test(tc, renegotiation_refused);
  tcase_add_test(tc, wrong_thread);
  suite_add_tcase(s, tc);
  return s;
}

TT_MAIN(tls_stream_suite)
