/*
 * TLS streams (see gev/tls.h): lifetime, the handshake, and the calls that
 * move data. Every call has the same shape:
 *
 *     enter(t, side)          checks, claims the reader or writer slot,
 *                             takes the call's reference
 *     ensure_handshake(t)     runs it, or waits for the greenlet that does
 *     gev__tls_drive(op)      the OpenSSL call, parking as it needs
 *     leave(t, side, rc)      releases slot and reference, keeps errno
 *
 * so that a stream closed while a call is parked stays valid until that
 * call has unwound (tls_internal.h has the rest of the contract).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "net/tls_internal.h"

enum side { SIDE_NONE, SIDE_READ, SIDE_WRITE };

/* Holds a slot for a caller without a task: the hub, using a stream whose
 * socket has timeout 0 (such calls never park). */
static gev__task *const hub_caller = (gev__task *)&hub_caller;

/* ---- Lifetime ------------------------------------------------------------ */

/* Closes the socket and wakes everyone parked in the stream with EBADF. */
static int close_stream(gev_tls_stream *t) {
  t->closed = 1;
  gev__tls_drop_out(t);
  int rc = gev_socket_close(t->sock); /* wakes its own waiters */
  int err = errno;
  gev__waitq_wake_all(&t->turn[GEV__TLS_READ], NULL, EBADF);
  gev__waitq_wake_all(&t->turn[GEV__TLS_WRITE], NULL, EBADF);
  gev__waitq_wake_all(&t->handshakers, NULL, EBADF);
  errno = err;
  return rc;
}

static void release(gev_tls_stream *t) {
  if (--t->refs > 0)
    return;
  int saved = errno;
  if (!t->closed)
    close_stream(t);
  /* OpenSSL drops the session of a connection freed without close_notify
   * sent, fearing truncation; a healthy session stays resumable (a failed
   * one was dropped when it failed). */
  if (t->hs == GEV__TLS_HS_DONE && !t->failed)
    SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_get_shutdown(t->ssl));
  SSL_free(t->ssl); /* and the BIO */
  gev_socket_unref(t->sock);
  gev_tls_ctx_free(t->sni_ctx);
  gev_tls_ctx_free(t->ctx);
  free(t->failed_reason);
  free(t->server_name);
  free(t->session_key);
  free(t->alpn);
  free(t);
  errno = saved;
}

static int wrong_thread(const gev_tls_stream *t) {
  return t->hub_id != gev__hub_current_id(); /* its hub may be gone */
}

/* Claims the reader or writer slot for the caller (EBUSY if taken). */
static int claim(gev__task **slot) {
  if (*slot)
    return gev__tls_fail(EBUSY, "concurrent use of a TLS stream");
  gev__task *self = gev_in_hub() ? hub_caller : gev__task_current();
  if (!self)
    return gev__tls_fail_errno(errno);
  *slot = self;
  return 0;
}

static gev__task **slot_of(gev_tls_stream *t, enum side side) {
  return side == SIDE_READ    ? &t->reader
         : side == SIDE_WRITE ? &t->writer
                              : NULL;
}

/* Starts a call (see the file comment). may_park: the call can wait, so a
 * killed or timed-out caller is refused at once (unless the socket is
 * non-blocking, as for sockets). */
static int enter(gev_tls_stream *t, enum side side, int may_park) {
  if (!t)
    return gev__tls_fail(EINVAL, "NULL TLS stream");
  if (wrong_thread(t))
    return gev__tls_fail_errno(EXDEV);
  if (t->closed || gev_socket_closed(t->sock))
    return gev__tls_fail_errno(EBADF);
  if (t->failed)
    return gev__tls_fail(t->failed, t->failed_reason);
  if (may_park && gev_socket_gettimeout(t->sock) != 0 && gev__may_block() < 0)
    return gev__tls_fail_errno(errno);
  gev__task **slot = slot_of(t, side);
  if (slot && claim(slot) < 0)
    return -1;
  t->refs++;
  return 0;
}

static ssize_t leave(gev_tls_stream *t, enum side side, ssize_t rc) {
  int saved = errno;
  gev__task **slot = slot_of(t, side);
  if (slot)
    *slot = NULL;
  release(t);
  errno = saved;
  return rc;
}

int gev_tls_close(gev_tls_stream *t) {
  if (!t)
    return gev__tls_fail(EINVAL, "NULL TLS stream");
  if (wrong_thread(t))
    return gev__tls_fail_errno(EXDEV);
  int rc = t->closed ? 0 : close_stream(t);
  int err = errno;
  if (t->open) {
    t->open = 0;
    release(t);
  }
  if (rc < 0)
    gev__tls_fail_errno(err);
  return rc;
}

gev_tls_stream *gev_tls_ref(gev_tls_stream *t) {
  if (t)
    t->refs++;
  return t;
}

void gev_tls_unref(gev_tls_stream *t) {
  if (t && !wrong_thread(t))
    release(t);
}

/* ---- Wrapping ------------------------------------------------------------ */

static int is_ip_literal(const char *name) {
  unsigned char addr[16];
  return inet_pton(AF_INET, name, addr) == 1 ||
         inet_pton(AF_INET6, name, addr) == 1;
}

/* The server name: SNI (names only) and, when verifying, the identity the
 * certificate must carry. */
static int client_name(gev_tls_stream *t, const char *name) {
  int ip = is_ip_literal(name);
  if (!(t->server_name = strdup(name)))
    return gev__tls_fail_errno(ENOMEM);
  if (!ip && !SSL_set_tlsext_host_name(t->ssl, name))
    return gev__tls_fail_openssl(EINVAL, "bad server name");
  if (t->ctx->verify == GEV_TLS_VERIFY_NONE || !t->ctx->check_hostname)
    return 0;
  X509_VERIFY_PARAM *param = SSL_get0_param(t->ssl);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (!(ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name)
           : X509_VERIFY_PARAM_set1_host(param, name, 0)))
    return gev__tls_fail_openssl(EINVAL, "bad server name");
  return 0;
}

/* Offers the session kept for this server (name and address), if any. */
static void client_resume(gev_tls_stream *t) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char addr[128], key[512];
  if (!t->ctx->cache_size ||
      gev_socket_getpeername(t->sock, (struct sockaddr *)&ss, &len) < 0 ||
      !gev_sockaddr_format((struct sockaddr *)&ss, len, addr, sizeof addr))
    return; /* no resumption, nothing lost */
  snprintf(key, sizeof key, "%s|%s", t->server_name ? t->server_name : "",
           addr);
  if ((t->session_key = strdup(key)))
    gev__tls_session_resume(t->ctx, t->ssl, key);
}

/* Checks the arguments of wrap against the context's role. */
static int check_wrap(gev_tls_ctx *ctx, gev_socket *sock, const char *name) {
  int type;
  socklen_t len = sizeof type;
  if (!ctx || !sock)
    return gev__tls_fail(EINVAL, "NULL TLS context or socket");
  if (gev_socket_getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
    return gev__tls_fail_errno(errno); /* EBADF, EXDEV */
  if (type != SOCK_STREAM)
    return gev__tls_fail(EINVAL, "TLS needs a stream socket");
  if (ctx->role == GEV_TLS_SERVER && name)
    return gev__tls_fail(EINVAL, "a server stream takes no server name");
  if (ctx->role == GEV_TLS_CLIENT && !name && ctx->check_hostname &&
      ctx->verify != GEV_TLS_VERIFY_NONE)
    return gev__tls_fail(EINVAL, "checking the hostname needs a server name");
  return 0;
}

static int setup(gev_tls_stream *t, const char *name) {
  if (gev__tls_attach_bio(t) < 0)
    return -1;
  SSL_set_app_data(t->ssl, t);
  if (t->ctx->role == GEV_TLS_SERVER) {
    SSL_set_accept_state(t->ssl);
    return 0;
  }
  SSL_set_connect_state(t->ssl);
  if (name && client_name(t, name) < 0)
    return -1;
  client_resume(t);
  return 0;
}

gev_tls_stream *gev_tls_wrap(gev_tls_ctx *ctx, gev_socket *sock,
                             const char *server_hostname) {
  if (check_wrap(ctx, sock, server_hostname) < 0 ||
      gev__tls_ctx_freeze(ctx) < 0)
    return NULL;
  gev_tls_stream *t = calloc(1, sizeof *t);
  if (!t) {
    gev__tls_fail_errno(ENOMEM);
    return NULL;
  }
  t->hub = gev__hub_peek(); /* the socket's: getsockopt checked the thread */
  t->hub_id = gev__hub_current_id();
  t->sock = gev_socket_ref(sock);
  t->ctx = gev_tls_ctx_ref(ctx);
  t->refs = 1;
  t->open = 1;
  if (!(t->ssl = SSL_new(ctx->ssl_ctx))) {
    gev__tls_fail_openssl(ENOMEM, NULL);
    goto out_release;
  }
  if (setup(t, server_hostname) < 0)
    goto out_release;
  return t;
out_release:
  t->closed = 1; /* the caller keeps its socket open */
  release(t);
  return NULL;
}

/* ---- The handshake ------------------------------------------------------- */

static int op_handshake(gev_tls_stream *t, void *arg) {
  return SSL_do_handshake(t->ssl);
}

/* Drives the handshake in this greenlet. A handshake interrupted by a
 * timeout or kill can be resumed by a later call; a failed one kills the
 * stream. Each flight was gathered in the out buffer; the last one is sent
 * before returning, since the peer may wait for it. */
static int run_handshake(gev_tls_stream *t, const gev__tls_limit *lim) {
  t->hs = GEV__TLS_HS_RUNNING;
  int rc = gev__tls_drive(t, op_handshake, NULL, lim);
  t->hs = rc > 0 ? GEV__TLS_HS_DONE : GEV__TLS_HS_NONE;
  gev__waitq_wake_all(&t->handshakers, NULL, 0);
  if (rc == 0)
    return gev__tls_fail_dead(t, ECONNRESET,
                              "connection closed during the TLS handshake");
  return rc < 0 ? -1 : gev__tls_flush(t, lim);
}

/* Waits for the greenlet doing the handshake, within lim. */
static int await_handshake(gev_tls_stream *t, const gev__tls_limit *lim) {
  double left = lim->timeout;
  if (lim->deadline >= 0 && (left = lim->deadline - gev_monotonic()) <= 0)
    return gev__tls_fail_errno(ETIMEDOUT);
  if (left == 0)
    return gev__tls_fail_errno(EAGAIN);
  if (gev__waitq_wait(&t->handshakers, left, "TLS handshake", NULL) < 0)
    return gev__tls_fail_errno(errno);
  if (t->failed)
    return gev__tls_fail(t->failed, t->failed_reason);
  return 0;
}

/* Makes sure the handshake is done before data moves; lim bounds it. */
static int ensure_handshake(gev_tls_stream *t, const gev__tls_limit *lim) {
  while (t->hs != GEV__TLS_HS_DONE) {
    if (t->hs == GEV__TLS_HS_NONE)
      return run_handshake(t, lim);
    if (await_handshake(t, lim) < 0)
      return -1;
  }
  return 0;
}

int gev_tls_handshake(gev_tls_stream *t) {
  if (enter(t, SIDE_NONE, 1) < 0)
    return -1;
  gev__tls_limit lim = gev__tls_limit_for(t, 1);
  return (int)leave(t, SIDE_NONE, ensure_handshake(t, &lim));
}

gev_tls_stream *gev_tls_create_connection(gev_tls_ctx *ctx, const char *host,
                                          int port, double timeout) {
  double deadline = timeout >= 0 ? gev_monotonic() + timeout : -1;
  gev_socket *s = gev_create_connection(host, port, timeout);
  if (!s) {
    gev__tls_fail_errno(errno);
    return NULL;
  }
  gev_tls_stream *t = gev_tls_wrap(ctx, s, host);
  if (!t) {
    int err = errno;
    gev_socket_close(s);
    errno = err;
    return NULL;
  }
  double left = deadline < 0 ? -1 : deadline - gev_monotonic();
  if (deadline >= 0 && left <= 0) {
    gev__tls_fail_errno(ETIMEDOUT);
    goto out_close;
  }
  gev_socket_settimeout(s, left);
  if (gev_tls_handshake(t) < 0)
    goto out_close;
  gev_socket_settimeout(s, timeout < 0 ? -1 : timeout);
  return t;
out_close:;
  int err = errno;
  gev_tls_close(t);
  errno = err;
  return NULL;
}

/* ---- Moving data --------------------------------------------------------- */

typedef struct rw {
  void *buf;
  size_t len;
  size_t done;
} rw;

static int op_read(gev_tls_stream *t, void *arg) {
  rw *a = arg;
  return SSL_read_ex(t->ssl, a->buf, a->len, &a->done);
}

static int op_write(gev_tls_stream *t, void *arg) {
  rw *a = arg;
  return SSL_write_ex(t->ssl, a->buf, a->len, &a->done);
}

static int op_shutdown(gev_tls_stream *t, void *arg) {
  int rc = SSL_shutdown(t->ssl);
  return rc < 0 ? rc : 1; /* 0 too: ours is sent, the peer's not awaited */
}

static ssize_t read_some(gev_tls_stream *t, void *buf, size_t len) {
  if (len == 0 || t->ended)
    return 0;
  gev__tls_limit lim = gev__tls_limit_for(t, 0);
  rw a = {buf, len, 0};
  int rc = gev__tls_drive(t, op_read, &a, &lim);
  if (rc == 0) {
    t->ended = 1;
    t->notified = !t->eof; /* the alert came before the socket's end */
  }
  return rc > 0 ? (ssize_t)a.done : rc;
}

ssize_t gev_tls_recv(gev_tls_stream *t, void *buf, size_t len) {
  if (!buf && len)
    return gev__tls_fail(EINVAL, "NULL buffer");
  if (enter(t, SIDE_READ, 1) < 0)
    return -1;
  gev__tls_limit hs = gev__tls_limit_for(t, 1);
  ssize_t n = ensure_handshake(t, &hs) < 0 ? -1 : read_some(t, buf, len);
  return leave(t, SIDE_READ, n);
}

/* Encrypts up to one record of buf, after older output has left. */
static ssize_t write_some(gev_tls_stream *t, const void *buf, size_t len,
                          const gev__tls_limit *lim) {
  if (gev__tls_flush(t, lim) < 0)
    return -1;
  rw a = {(void *)buf, len, 0};
  int rc = gev__tls_drive(t, op_write, &a, lim);
  if (rc == 0)
    return gev__tls_fail_dead(t, EPIPE, "TLS connection closed");
  return rc < 0 ? -1 : (ssize_t)a.done;
}

ssize_t gev_tls_send(gev_tls_stream *t, const void *buf, size_t len) {
  if (!buf && len)
    return gev__tls_fail(EINVAL, "NULL buffer");
  if (enter(t, SIDE_WRITE, 1) < 0)
    return -1;
  gev__tls_limit hs = gev__tls_limit_for(t, 1);
  gev__tls_limit lim = gev__tls_limit_for(t, 0);
  ssize_t n = ensure_handshake(t, &hs) < 0 ? -1 : 0;
  if (n == 0 && len > 0)
    n = write_some(t, buf, len, &lim);
  /* Accepted bytes stay queued through a timeout or kill; only a dead
   * connection loses them. */
  if (n > 0 && gev__tls_flush(t, &lim) < 0 && t->failed)
    n = -1;
  return leave(t, SIDE_WRITE, n);
}

int gev_tls_sendall(gev_tls_stream *t, const void *buf, size_t len) {
  if (!buf && len)
    return gev__tls_fail(EINVAL, "NULL buffer");
  if (enter(t, SIDE_WRITE, 1) < 0)
    return -1;
  gev__tls_limit lim = gev__tls_limit_for(t, 1);
  const char *p = buf;
  int rc = ensure_handshake(t, &lim);
  while (rc == 0 && len > 0) {
    ssize_t n = write_some(t, p, len, &lim);
    if (n < 0)
      rc = -1;
    else
      p += n, len -= (size_t)n;
  }
  if (rc == 0)
    rc = gev__tls_flush(t, &lim);
  return (int)leave(t, SIDE_WRITE, rc);
}

static int wait_readable(gev_tls_stream *t, double timeout) {
  gev__tls_limit lim = {.timeout = timeout < 0 ? -1 : timeout,
                        .deadline =
                            timeout > 0 ? gev_monotonic() + timeout : -1};
  if (timeout != 0 && ensure_handshake(t, &lim) < 0)
    return -1;
  if (gev_tls_buffered(t))
    return 0;
  if (timeout == 0) {
    gev__tls_flush_nowait(t);
    return gev_socket_wait_read(t->sock, 0) < 0 ? gev__tls_fail_errno(errno)
                                                : 0;
  }
  if (gev__tls_flush_to_read(t, &lim) < 0)
    return -1;
  return gev__tls_wait(t, GEV__TLS_READ, &lim);
}

int gev_tls_wait_read(gev_tls_stream *t, double timeout) {
  if (isnan(timeout))
    return gev__tls_fail(EINVAL, "NaN timeout");
  if (enter(t, SIDE_READ, timeout != 0) < 0)
    return -1;
  return (int)leave(t, SIDE_READ, wait_readable(t, timeout));
}

int gev_tls_shutdown(gev_tls_stream *t) {
  if (enter(t, SIDE_WRITE, 1) < 0)
    return -1;
  gev__tls_limit lim = gev__tls_limit_for(t, 1);
  int rc = 0;
  if (t->hs != GEV__TLS_HS_DONE)
    rc = gev__tls_fail(ENOTCONN, "the TLS handshake has not completed");
  else if (!(SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN) &&
           gev__tls_drive(t, op_shutdown, NULL, &lim) < 0)
    rc = -1;
  if (rc == 0)
    rc = gev__tls_flush(t, &lim);
  return (int)leave(t, SIDE_WRITE, rc);
}
