/* TLS contexts: verification modes both ways, hostname checks, ALPN, SNI
 * with a context switch, session resumption, and the errors of bad
 * configuration. Client and server run in one process over loopback. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "nettest.h"
#include "tlstest.h"

/* The outcome of one handshake between two contexts. */
typedef struct outcome {
  int client_rc, client_err, server_rc, server_err;
  char client_reason[256], server_reason[256];
} outcome;

/* Handshakes client against server (name as the client's server name).
 * When only the server failed, the client learns it from its first read
 * (TLS 1.3 ends the client's handshake first), so that read is part of the
 * attempt. The streams are handed back when both succeeded and cp/sp are
 * given, else closed. */
static outcome attempt(gev_tls_ctx *sctx, gev_tls_ctx *cctx, const char *name,
                       gev_tls_stream **cp, gev_tls_stream **sp) {
  outcome o = {0};
  gev_tls_stream *c, *s;
  tt_pair(sctx, cctx, name, &c, &s);
  tt_async *a = tt_start(TT_HANDSHAKE, s, NULL, 0);
  o.client_rc = gev_tls_handshake(c);
  o.client_err = errno;
  snprintf(o.client_reason, sizeof o.client_reason, "%s", gev_tls_last_error());
  o.server_rc =
      (int)tt_join(a, &o.server_err, o.server_reason, sizeof o.server_reason);
  if (o.client_rc == 0 && o.server_rc < 0) {
    char byte;
    gev_socket_settimeout(gev_tls_socket(c), 5);
    o.client_rc = gev_tls_recv(c, &byte, 1) < 0 ? -1 : 0;
    o.client_err = errno;
    snprintf(o.client_reason, sizeof o.client_reason, "%s",
             gev_tls_last_error());
  }
  if (cp && sp && o.client_rc == 0 && o.server_rc == 0) {
    *cp = c, *sp = s;
    return o;
  }
  gev_tls_close(c);
  gev_tls_close(s);
  return o;
}

static int starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- Verification --------------------------------------------------------
 */

START_TEST(client_verification) {
  int fds = gev_test_fd_count();
  gev_tls_ctx *srv = tt_server_ctx(tt.server, tt.server_key);
  gev_tls_ctx *self = tt_server_ctx(tt.self, tt.self_key);
  /* The system store does not know the test CA. */
  gev_tls_ctx *sys = tt_client_ctx(0);
  outcome o = attempt(srv, sys, "localhost", NULL, NULL);
  ck_assert_int_eq(o.client_rc, -1);
  ck_assert_int_eq(o.client_err, EPROTO);
  ck_assert_msg(starts_with(o.client_reason, "certificate verify failed: "),
                "%s", o.client_reason);
  ck_assert_int_eq(o.server_rc, -1);
  ck_assert_int_eq(o.server_err, EPROTO); /* the client's alert */
  /* The test CA verifies; a self-signed certificate does not. */
  gev_tls_ctx *ca = tt_client_ctx(1);
  o = attempt(srv, ca, "localhost", NULL, NULL);
  ck_assert_msg(o.client_rc == 0 && o.server_rc == 0, "%s / %s",
                o.client_reason, o.server_reason);
  o = attempt(self, ca, "localhost", NULL, NULL);
  ck_assert_int_eq(o.client_rc, -1);
  ck_assert_str_eq(o.client_reason,
                   "certificate verify failed: self-signed certificate");
  /* VERIFY_NONE accepts it, and still tells what verification found. */
  gev_tls_ctx *none = tt_client_ctx(0);
  ck_assert_int_eq(gev_tls_ctx_set_verify(none, GEV_TLS_VERIFY_NONE), 0);
  gev_tls_stream *c, *s;
  o = attempt(self, none, "localhost", &c, &s);
  ck_assert_int_eq(o.client_rc, 0);
  ck_assert_int_eq(gev_tls_verify_result(c),
                   X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
  ck_assert_str_eq(gev_tls_verify_message(c), "self-signed certificate");
  gev_tls_close(c), gev_tls_close(s);
  gev_tls_ctx_free(srv), gev_tls_ctx_free(self), gev_tls_ctx_free(sys);
  gev_tls_ctx_free(ca), gev_tls_ctx_free(none);
  gev_test_all_clean(fds);
}
END_TEST

/* A server asking for client certificates from the test CA. */
static gev_tls_ctx *verifying_server(gev_tls_verify mode) {
  gev_tls_ctx *ctx = tt_server_ctx(tt.server, tt.server_key);
  ck_assert_int_eq(gev_tls_ctx_load_verify(ctx, tt.ca, NULL), 0);
  ck_assert_int_eq(gev_tls_ctx_set_verify(ctx, mode), 0);
  return ctx;
}

START_TEST(client_certificates) {
  int fds = gev_test_fd_count();
  gev_tls_ctx *required = verifying_server(GEV_TLS_VERIFY_REQUIRED);
  gev_tls_ctx *optional = verifying_server(GEV_TLS_VERIFY_OPTIONAL);
  gev_tls_ctx *anon = tt_client_ctx(1);
  gev_tls_ctx *with_cert = tt_client_ctx(1);
  ck_assert_int_eq(
      gev_tls_ctx_use_certificate(with_cert, tt.client, tt.client_key), 0);
  /* Required and missing: the server refuses (in TLS 1.3 the client
   * learns it from its first read). */
  outcome o = attempt(required, anon, "localhost", NULL, NULL);
  ck_assert_int_eq(o.server_rc, -1);
  ck_assert_int_eq(o.server_err, EPROTO);
  ck_assert_msg(strstr(o.server_reason, "certificate") != NULL, "%s",
                o.server_reason);
  ck_assert_int_eq(o.client_rc, -1);
  ck_assert_int_eq(o.client_err, EPROTO);
  /* Required and given. */
  gev_tls_stream *c, *s;
  o = attempt(required, with_cert, "localhost", &c, &s);
  ck_assert_msg(o.server_rc == 0, "%s", o.server_reason);
  char subject[128];
  ck_assert_int_gt(gev_tls_peer_subject(s, subject, sizeof subject), 0);
  ck_assert_str_eq(subject, "CN=gev test client");
  ck_assert_int_eq(gev_tls_verify_result(s), X509_V_OK);
  gev_tls_close(c), gev_tls_close(s);
  /* Optional: fine without one. */
  o = attempt(optional, anon, "localhost", &c, &s);
  ck_assert_int_eq(o.server_rc, 0);
  ck_assert_ptr_null(gev_tls_peer_certificate(s));
  gev_tls_close(c), gev_tls_close(s);
  gev_tls_ctx_free(required), gev_tls_ctx_free(optional);
  gev_tls_ctx_free(anon), gev_tls_ctx_free(with_cert);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(hostname_checks) {
  int fds = gev_test_fd_count();
  gev_tls_ctx *srv = tt_server_ctx(tt.server, tt.server_key);
  gev_tls_ctx *cli = tt_client_ctx(1);
  outcome o = attempt(srv, cli, "wrong.example", NULL, NULL);
  ck_assert_int_eq(o.client_rc, -1);
  ck_assert_int_eq(o.client_err, EPROTO);
  ck_assert_str_eq(o.client_reason,
                   "certificate verify failed: hostname mismatch");
  /* An IP literal is checked against the IP addresses, and not sent. */
  gev_tls_stream *c, *s;
  o = attempt(srv, cli, "127.0.0.1", &c, &s);
  ck_assert_msg(o.client_rc == 0, "%s", o.client_reason);
  ck_assert_ptr_null(gev_tls_server_name(s));
  gev_tls_close(c), gev_tls_close(s);
  o = attempt(srv, cli, "127.0.0.2", NULL, NULL);
  ck_assert_str_eq(o.client_reason,
                   "certificate verify failed: IP address mismatch");
  /* No name: refused at wrap while hostnames are checked. */
  gev_socket *cs, *ss;
  nt_pair("127.0.0.1", &cs, &ss);
  ck_assert_ptr_null(gev_tls_wrap(cli, cs, NULL));
  ck_assert_int_eq(errno, EINVAL);
  gev_socket_close(cs), gev_socket_close(ss);
  gev_tls_ctx *unchecked = tt_client_ctx(1);
  ck_assert_int_eq(gev_tls_ctx_set_check_hostname(unchecked, 0), 0);
  o = attempt(srv, unchecked, NULL, NULL, NULL);
  ck_assert_int_eq(o.client_rc, 0);
  o = attempt(srv, unchecked, "wrong.example", NULL, NULL);
  ck_assert_int_eq(o.client_rc, 0);
  gev_tls_ctx_free(srv), gev_tls_ctx_free(cli), gev_tls_ctx_free(unchecked);
  gev_test_all_clean(fds);
}
END_TEST

/* ---- ALPN and SNI ---------------------------------------------------------
 */

static const char *alpn_of(gev_tls_ctx *sctx, gev_tls_ctx *cctx,
                           char *server_side) {
  gev_tls_stream *c, *s;
  static char chosen[32];
  outcome o = attempt(sctx, cctx, "localhost", &c, &s);
  ck_assert_int_eq(o.client_rc, 0);
  const char *p = gev_tls_alpn(c), *q = gev_tls_alpn(s);
  snprintf(chosen, sizeof chosen, "%s", p ? p : "(none)");
  snprintf(server_side, 32, "%s", q ? q : "(none)");
  gev_tls_close(c), gev_tls_close(s);
  return chosen;
}

START_TEST(alpn) {
  int fds = gev_test_fd_count();
  const char *server_prefs[] = {"http/1.1", "h2"};
  const char *client_offer[] = {"h2", "http/1.1"};
  const char *other[] = {"spdy/1"};
  gev_tls_ctx *srv = tt_server_ctx(tt.server, tt.server_key);
  ck_assert_int_eq(gev_tls_ctx_set_alpn(srv, server_prefs, 2), 0);
  gev_tls_ctx *srv_other = tt_server_ctx(tt.server, tt.server_key);
  ck_assert_int_eq(gev_tls_ctx_set_alpn(srv_other, other, 1), 0);
  gev_tls_ctx *cli = tt_client_ctx(1);
  ck_assert_int_eq(gev_tls_ctx_set_alpn(cli, client_offer, 2), 0);
  gev_tls_ctx *plain = tt_client_ctx(1);
  char server_side[32];
  /* The server's preference wins. */
  ck_assert_str_eq(alpn_of(srv, cli, server_side), "http/1.1");
  ck_assert_str_eq(server_side, "http/1.1");
  /* No overlap, or no offer: no ALPN, the handshake goes on. */
  ck_assert_str_eq(alpn_of(srv_other, cli, server_side), "(none)");
  ck_assert_str_eq(server_side, "(none)");
  ck_assert_str_eq(alpn_of(srv, plain, server_side), "(none)");
  gev_tls_ctx_free(srv), gev_tls_ctx_free(srv_other);
  gev_tls_ctx_free(cli), gev_tls_ctx_free(plain);
  gev_test_all_clean(fds);
}
END_TEST

typedef struct sni_state {
  gev_tls_ctx *other; /* for other.example */
  char seen[64];
  int calls;
} sni_state;

static int pick_certificate(gev_tls_stream *t, const char *name, void *arg) {
  sni_state *st = arg;
  st->calls++;
  snprintf(st->seen, sizeof st->seen, "%s", name ? name : "(none)");
  if (name && strcmp(name, "bad.example") == 0)
    return -1;
  if (name && strcmp(name, "other.example") == 0)
    return gev_tls_set_ctx(t, st->other);
  return 0;
}

START_TEST(sni_switches_certificate) {
  int fds = gev_test_fd_count();
  sni_state *st = calloc(1, sizeof *st);
  st->other = tt_server_ctx(tt.other, tt.other_key);
  gev_tls_ctx *srv = tt_server_ctx(tt.server, tt.server_key);
  ck_assert_int_eq(gev_tls_ctx_set_sni_callback(srv, pick_certificate, st), 0);
  gev_tls_ctx *cli = tt_client_ctx(1);
  gev_tls_stream *c, *s;
  char subject[64];
  outcome o = attempt(srv, cli, "other.example", &c, &s);
  ck_assert_msg(o.client_rc == 0, "%s", o.client_reason);
  ck_assert_str_eq(st->seen, "other.example");
  ck_assert_str_eq(gev_tls_server_name(s), "other.example");
  gev_tls_peer_subject(c, subject, sizeof subject);
  ck_assert_str_eq(subject, "CN=other.example");
  /* Outside the callback there is nothing to switch. */
  ck_assert_int_eq(gev_tls_set_ctx(s, st->other), -1);
  ck_assert_int_eq(errno, EINVAL);
  gev_tls_close(c), gev_tls_close(s);
  o = attempt(srv, cli, "localhost", &c, &s);
  ck_assert_int_eq(o.client_rc, 0);
  gev_tls_peer_subject(c, subject, sizeof subject);
  ck_assert_str_eq(subject, "CN=localhost");
  gev_tls_close(c), gev_tls_close(s);
  o = attempt(srv, cli, "127.0.0.1", NULL, NULL);
  ck_assert_str_eq(st->seen, "(none)");
  /* Refused by the callback. */
  gev_tls_ctx *lax = tt_client_ctx(1);
  ck_assert_int_eq(gev_tls_ctx_set_check_hostname(lax, 0), 0);
  o = attempt(srv, lax, "bad.example", NULL, NULL);
  ck_assert_int_eq(o.client_rc, -1);
  ck_assert_int_eq(o.client_err, EPROTO);
  ck_assert_msg(strstr(o.client_reason, "unrecognized name") != NULL, "%s",
                o.client_reason);
  ck_assert_int_eq(st->calls, 4);
  gev_tls_ctx_free(srv), gev_tls_ctx_free(cli), gev_tls_ctx_free(lax);
  gev_tls_ctx_free(st->other);
  free(st);
  gev_test_all_clean(fds);
}
END_TEST

/* ---- Sessions ------------------------------------------------------------ */

/* Connects, reads one byte (which brings TLS 1.3's session ticket), and
 * says whether the session was resumed. */
static int resumed(gev_tls_ctx *sctx, gev_tls_ctx *cctx) {
  gev_tls_stream *c, *s;
  char byte;
  tt_pair(sctx, cctx, "localhost", &c, &s);
  tt_handshake_both(c, s);
  ck_assert_int_eq(gev_tls_sendall(s, "x", 1), 0);
  ck_assert_int_eq(gev_tls_recv(c, &byte, 1), 1);
  int reused = gev_tls_session_reused(c);
  ck_assert_int_eq(reused, gev_tls_session_reused(s));
  gev_tls_close(c), gev_tls_close(s);
  return reused;
}

START_TEST(session_resumption) {
  int fds = gev_test_fd_count();
  gev_tls_ctx *srv = tt_server_ctx(tt.server, tt.server_key);
  gev_tls_ctx *cli = tt_client_ctx(1);
  /* Each pair has a new port, so resume across "servers" with one name:
   * the cache key holds the address, so this is a fresh session... */
  ck_assert(!resumed(srv, cli));
  ck_assert(!resumed(srv, cli));
  /* ...while one listener gives the same address twice. */
  int port;
  gev_socket *l = nt_listen("127.0.0.1", &port);
  int reused[2];
  for (int i = 0; i < 2; i++) {
    gev_socket *cs = gev_create_connection("127.0.0.1", port, 5);
    gev_socket *ss = gev_socket_accept(l, NULL, NULL);
    gev_tls_stream *c = gev_tls_wrap(cli, cs, "localhost");
    gev_tls_stream *s = gev_tls_wrap(srv, ss, NULL);
    char byte;
    tt_handshake_both(c, s);
    ck_assert_int_eq(gev_tls_sendall(s, "x", 1), 0);
    ck_assert_int_eq(gev_tls_recv(c, &byte, 1), 1);
    reused[i] = gev_tls_session_reused(c);
    gev_tls_close(c), gev_tls_close(s);
  }
  ck_assert(!reused[0] && reused[1]);
  /* A client without a cache, or a server without resumption. */
  gev_tls_ctx *nocache = tt_client_ctx(1);
  ck_assert_int_eq(gev_tls_ctx_set_session_cache(nocache, 0, 0), 0);
  gev_tls_ctx *noresume = tt_server_ctx(tt.server, tt.server_key);
  ck_assert_int_eq(gev_tls_ctx_set_session_cache(noresume, 0, 0), 0);
  for (int i = 0; i < 2; i++) {
    gev_socket *cs = gev_create_connection("127.0.0.1", port, 5);
    gev_socket *ss = gev_socket_accept(l, NULL, NULL);
    gev_tls_stream *c = gev_tls_wrap(i ? cli : nocache, cs, "localhost");
    gev_tls_stream *s = gev_tls_wrap(i ? noresume : srv, ss, NULL);
    char byte;
    tt_handshake_both(c, s);
    ck_assert_int_eq(gev_tls_sendall(s, "x", 1), 0);
    ck_assert_int_eq(gev_tls_recv(c, &byte, 1), 1);
    ck_assert(!gev_tls_session_reused(c));
    gev_tls_close(c), gev_tls_close(s);
  }
  gev_socket_close(l);
  gev_tls_ctx_free(srv), gev_tls_ctx_free(cli);
  gev_tls_ctx_free(nocache), gev_tls_ctx_free(noresume);
  gev_test_all_clean(fds);
}
END_TEST

/* ---- Bad input -------------------------------------------------------- */

START_TEST(configuration_errors) {
  int fds = gev_test_fd_count();
  ck_assert_ptr_null(gev_tls_ctx_new(7));
  ck_assert_int_eq(errno, EINVAL);
  gev_tls_ctx *ctx = gev_tls_ctx_new(GEV_TLS_SERVER);
  ck_assert_int_eq(gev_tls_ctx_use_certificate(NULL, tt.server, NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_tls_ctx_use_certificate(ctx, "/nonexistent.pem", NULL),
                   -1);
  ck_assert_int_eq(errno, ENOENT);
  ck_assert_str_eq(gev_tls_last_error(),
                   "/nonexistent.pem: No such file or directory");
  ck_assert_int_eq(gev_tls_ctx_use_certificate(ctx, tt.garbage, tt.garbage),
                   -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_str_eq(gev_tls_last_error(), "no start line");
  ck_assert_int_eq(gev_tls_ctx_use_certificate(ctx, tt.server, tt.other_key),
                   -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_str_eq(gev_tls_last_error(), "key values mismatch");
  ck_assert_int_eq(gev_tls_ctx_load_verify(ctx, NULL, NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_tls_ctx_load_verify(ctx, tt.garbage, NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_tls_ctx_set_verify(ctx, 9), -1);
  ck_assert_int_eq(gev_tls_ctx_set_versions(ctx, GEV_TLS_1_3, GEV_TLS_1_2), -1);
  ck_assert_int_eq(gev_tls_ctx_set_versions(ctx, 0x0301, 0), -1);
  const char *empty[] = {""};
  ck_assert_int_eq(gev_tls_ctx_set_alpn(ctx, empty, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_tls_ctx_set_alpn(ctx, NULL, 1), -1);
  ck_assert_int_eq(gev_tls_ctx_set_ciphers(ctx, "NOTHING-REAL", NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_tls_ctx_set_ciphers(ctx, NULL, "TLS_FAKE"), -1);
  ck_assert_int_eq(gev_tls_ctx_set_session_cache(ctx, 10, -1), -1);
  gev_tls_ctx *client = gev_tls_ctx_new(GEV_TLS_CLIENT);
  ck_assert_int_eq(gev_tls_ctx_set_sni_callback(client, NULL, NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  /* Wrapping: bad sockets and role mismatches. */
  ck_assert_ptr_null(gev_tls_wrap(NULL, NULL, NULL));
  ck_assert_int_eq(errno, EINVAL);
  gev_socket *udp = gev_socket_new(AF_INET, SOCK_DGRAM, 0);
  ck_assert_ptr_null(gev_tls_wrap(client, udp, "localhost"));
  ck_assert_int_eq(errno, EINVAL);
  gev_socket_close(udp);
  int pfd[2];
  ck_assert_int_eq(pipe(pfd), 0);
  gev_socket *pipe_end = gev_socket_wrap(pfd[0]);
  ck_assert_ptr_nonnull(pipe_end);
  ck_assert_ptr_null(gev_tls_wrap(client, pipe_end, "localhost"));
  ck_assert_int_eq(errno, ENOTSOCK);
  gev_socket_close(pipe_end);
  close(pfd[1]);
  gev_socket *cs, *ss;
  nt_pair("127.0.0.1", &cs, &ss);
  ck_assert_ptr_null(gev_tls_wrap(ctx, ss, "localhost"));
  ck_assert_int_eq(errno, EINVAL);
  /* Once in use, a context is read-only. */
  gev_tls_stream *t = gev_tls_wrap(client, cs, "localhost");
  ck_assert_ptr_nonnull(t);
  ck_assert_int_eq(gev_tls_ctx_set_verify(client, GEV_TLS_VERIFY_NONE), -1);
  ck_assert_int_eq(errno, EBUSY);
  ck_assert_int_eq(gev_tls_ctx_load_verify(client, tt.ca, NULL), -1);
  ck_assert_int_eq(errno, EBUSY);
  /* Freed by its creator while a stream uses it: lives on. */
  gev_tls_ctx_free(client);
  ck_assert_int_eq(gev_tls_close(t), 0);
  gev_socket_ref(ss);
  gev_socket_close(ss);
  ck_assert_ptr_null(gev_tls_wrap(ctx, ss, NULL)); /* closed socket */
  ck_assert_int_eq(errno, EBADF);
  gev_socket_unref(ss);
  ck_assert_int_eq(gev_tls_close(NULL), -1);
  ck_assert_int_eq(gev_tls_recv(NULL, NULL, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_tls_wait_read(NULL, 1), -1);
  ck_assert_int_eq(gev_tls_handshake(NULL), -1);
  ck_assert_ptr_null(gev_tls_version(NULL));
  ck_assert_int_eq(gev_tls_verify_result(NULL), -1);
  gev_tls_unref(NULL);
  gev_tls_ctx_free(NULL);
  gev_tls_ctx_free(ctx);
  gev_test_all_clean(fds);
}
END_TEST

/* The convenience connection, against a server stream in a greenlet. */
static void *accept_and_echo(void *arg) {
  gev_socket *l = arg;
  gev_tls_ctx *srv = tt_server_ctx(tt.server, tt.server_key);
  gev_socket *s = gev_socket_accept(l, NULL, NULL);
  gev_tls_stream *t = gev_tls_wrap(srv, s, NULL);
  char buf[16];
  ssize_t n = gev_tls_recv(t, buf, sizeof buf);
  if (n > 0)
    gev_tls_sendall(t, buf, (size_t)n);
  gev_tls_shutdown(t);
  gev_tls_close(t);
  gev_tls_ctx_free(srv);
  return NULL;
}

START_TEST(create_connection) {
  int fds = gev_test_fd_count();
  int port;
  gev_socket *l = nt_listen("127.0.0.1", &port);
  gev_greenlet *g = gev_spawn(accept_and_echo, l);
  gev_tls_ctx *cli = tt_client_ctx(1);
  gev_tls_stream *t = gev_tls_create_connection(cli, "localhost", port, 5);
  ck_assert_msg(t != NULL, "%s", gev_tls_last_error());
  ck_assert(gev_tls_handshake_done(t));
  ck_assert_double_eq(gev_socket_gettimeout(gev_tls_socket(t)), 5);
  char buf[16];
  ck_assert_int_eq(gev_tls_sendall(t, "ping", 4), 0);
  ck_assert_int_eq(gev_tls_recv(t, buf, sizeof buf), 4);
  ck_assert_int_eq(gev_tls_recv(t, buf, sizeof buf), 0);
  ck_assert(gev_tls_close_notified(t));
  gev_tls_close(t);
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  gev_greenlet_unref(g);
  /* Nobody listening. */
  gev_socket_close(l);
  ck_assert_ptr_null(gev_tls_create_connection(cli, "127.0.0.1", port, 5));
  ck_assert_int_eq(errno, ECONNREFUSED);
  gev_tls_ctx_free(cli);
  gev_test_all_clean(fds);
}
END_TEST

static Suite *tls_ctx_suite(void) {
  Suite *s = suite_create("tls_ctx");
  TCase *tc = tcase_create("ctx");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, client_verification);
  tcase_add_test(tc, client_certificates);
  tcase_add_test(tc, hostname_checks);
  tcase_add_test(tc, alpn);
  tcase_add_test(tc, sni_switches_certificate);
  tcase_add_test(tc, session_resumption);
  tcase_add_test(tc, configuration_errors);
  tcase_add_test(tc, create_connection);
  suite_add_tcase(s, tc);
  return s;
}

TT_MAIN(tls_ctx_suite)
