/*
 * The machinery of tls_internal.h: gev's BIO, the out buffer, the waits
 * and the one loop that drives every OpenSSL call of a stream.
 *
 * Why a BIO of our own rather than SSL_set_fd: the bytes then go through
 * gev_socket_recv/_send, so the socket layer stays the one place that
 * touches the fd (its close, thread and cancellation checks apply), and
 * the write side can take everything, which frees TLS from OpenSSL's
 * "retry SSL_write with the same arguments" rule (see the header).
 *
 * Errors the socket reports that only mean "not now" — would block, or
 * the caller was killed or timed out between being woken and running —
 * are not the connection's fault: the BIO turns them into retry-read (the
 * loop then parks, and the park reports the kill or timeout) or into
 * buffered output. Anything else is recorded in t->io_err and ends the
 * OpenSSL call with SSL_ERROR_SYSCALL.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>

#include "net/tls_internal.h"

/* Not the connection's fault: try again after parking (whose own checks
 * then report a kill or a timeout). */
static int transient(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == ECANCELED ||
         err == ETIMEDOUT || err == EPERM;
}

/* ---- The out buffer ------------------------------------------------------ */

static size_t out_pending(const gev_tls_stream *t) {
  return t->out_len - t->out_off;
}

static int out_append(gev_tls_stream *t, const char *data, size_t len) {
  if (t->out_off > 0 && t->out_off == t->out_len)
    t->out_off = t->out_len = 0;
  if (t->out_len + len > t->out_cap) {
    size_t cap = t->out_cap ? t->out_cap : 4096;
    while (cap < t->out_len + len)
      cap *= 2;
    char *p = realloc(t->out, cap);
    if (!p)
      return -1;
    t->out = p;
    t->out_cap = cap;
  }
  memcpy(t->out + t->out_len, data, len);
  t->out_len += len;
  return 0;
}

void gev__tls_drop_out(gev_tls_stream *t) {
  free(t->out);
  t->out = NULL;
  t->out_len = t->out_off = t->out_cap = 0;
}

/* One non-blocking send of what is pending. Returns 1 when all is sent, 0
 * when the kernel is full (or the send was refused for now), -1 on a
 * connection error (errno). */
static int out_send(gev_tls_stream *t) {
  while (out_pending(t) > 0) {
    ssize_t n = gev_socket_send(t->sock, t->out + t->out_off, out_pending(t),
                                MSG_DONTWAIT);
    if (n < 0)
      return transient(errno) ? 0 : -1;
    t->out_off += (size_t)n;
  }
  gev__tls_drop_out(t); /* idle streams keep no buffer */
  return 1;
}

/* ---- The BIO ------------------------------------------------------------- */

static int bio_write(BIO *b, const char *data, size_t len, size_t *written) {
  gev_tls_stream *t = BIO_get_data(b);
  size_t sent = 0;
  BIO_clear_retry_flags(b);
  /* Handshake flights are gathered and sent when OpenSSL waits for the
   * peer; other output goes out at once unless older output waits. */
  if (out_pending(t) == 0 && t->hs != GEV__TLS_HS_RUNNING) {
    ssize_t n = gev_socket_send(t->sock, data, len, MSG_DONTWAIT);
    if (n < 0 && !transient(errno)) {
      t->io_err = errno;
      return 0;
    }
    sent = n > 0 ? (size_t)n : 0;
  }
  if (sent < len && out_append(t, data + sent, len - sent) < 0) {
    t->io_err = ENOMEM;
    return 0;
  }
  *written = len;
  return 1;
}

static int bio_read(BIO *b, char *buf, size_t len, size_t *readbytes) {
  gev_tls_stream *t = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  ssize_t n = gev_socket_recv(t->sock, buf, len, MSG_DONTWAIT);
  if (n > 0) {
    *readbytes = (size_t)n;
    return 1;
  }
  if (n == 0)
    t->eof = 1;
  else if (transient(errno))
    BIO_set_retry_read(b);
  else
    t->io_err = errno;
  return 0;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  gev_tls_stream *t = BIO_get_data(b);
  switch (cmd) {
  case BIO_CTRL_FLUSH: /* gev flushes before it parks */
    return 1;
  case BIO_CTRL_EOF: /* OpenSSL asks after a read of 0 */
    return t->eof;
  case BIO_CTRL_WPENDING:
    return (long)out_pending(t);
  default:
    return 0;
  }
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_method_once = PTHREAD_ONCE_INIT;

static void make_bio_method(void) {
  BIO_METHOD *m =
      BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "gev socket");
  if (!m)
    return; /* LCOV_EXCL_LINE: out of memory at first use */
  BIO_meth_set_write_ex(m, bio_write);
  BIO_meth_set_read_ex(m, bio_read);
  BIO_meth_set_ctrl(m, bio_ctrl);
  BIO_meth_set_create(m, bio_create);
  bio_method = m;
}

int gev__tls_attach_bio(gev_tls_stream *t) {
  pthread_once(&bio_method_once, make_bio_method);
  BIO *b = bio_method ? BIO_new(bio_method) : NULL;
  if (!b) {
    ERR_clear_error();
    return gev__tls_fail_errno(ENOMEM);
  }
  BIO_set_data(b, t);
  SSL_set_bio(t->ssl, b, b); /* one reference, for both directions */
  return 0;
}

/* ---- Limits and waits ------------------------------------------------- */

gev__tls_limit gev__tls_limit_for(const gev_tls_stream *t, int overall) {
  double timeout = gev_socket_gettimeout(t->sock);
  gev__tls_limit lim = {.timeout = timeout, .deadline = -1};
  if (overall && timeout > 0)
    lim.deadline = gev_monotonic() + timeout;
  return lim;
}

/* The time the next wait may take (< 0 forever), or -1/ETIMEDOUT once an
 * overall deadline has passed. */
static int time_left(const gev__tls_limit *lim, double *left) {
  if (lim->deadline < 0) {
    *left = lim->timeout;
    return 0;
  }
  *left = lim->deadline - gev_monotonic();
  if (*left <= 0)
    return gev__tls_fail_errno(ETIMEDOUT);
  return 0;
}

int gev__tls_wait(gev_tls_stream *t, int dir, const gev__tls_limit *lim) {
  double left;
  if (time_left(lim, &left) < 0)
    return -1;
  if (left == 0)
    return gev__tls_fail_errno(EAGAIN); /* a non-blocking socket */
  if (t->closed)
    return gev__tls_fail_errno(EBADF);
  gev__task *self = gev__task_current();
  if (!self)
    return gev__tls_fail_errno(errno);
  if (t->waiting[dir]) {
    /* The stream's other greenlet waits for the same readiness: wait for
     * its wait to end, then the caller retries. */
    if (gev__waitq_wait(&t->turn[dir], left, "TLS stream", NULL) < 0)
      return gev__tls_fail_errno(errno);
    return 0;
  }
  t->waiting[dir] = self;
  int rc = dir == GEV__TLS_READ ? gev_socket_wait_read(t->sock, left)
                                : gev_socket_wait_write(t->sock, left);
  int err = errno;
  t->waiting[dir] = NULL;
  gev__waitq_wake_all(&t->turn[dir], NULL, 0);
  return rc < 0 ? gev__tls_fail_errno(err) : 0;
}

/* A failed send of the out buffer: the connection is gone (the stream is
 * dead), or the socket was closed. */
static int fail_send(gev_tls_stream *t, int err) {
  if (err == EBADF)
    return gev__tls_fail_errno(EBADF);
  t->io_err = err;
  return gev__tls_fail_stream(t, SSL_ERROR_SYSCALL);
}

int gev__tls_flush(gev_tls_stream *t, const gev__tls_limit *lim) {
  for (;;) {
    int rc = out_send(t);
    if (rc > 0)
      return 0;
    if (rc < 0)
      return fail_send(t, errno);
    if (gev__tls_wait(t, GEV__TLS_WRITE, lim) < 0)
      return -1;
  }
}

void gev__tls_flush_nowait(gev_tls_stream *t) {
  int saved = errno;
  if (!t->closed)
    out_send(t);
  errno = saved;
}

int gev__tls_flush_to_read(gev_tls_stream *t, const gev__tls_limit *lim) {
  if (t->waiting[GEV__TLS_WRITE]) {
    gev__tls_flush_nowait(t);
    return 0;
  }
  return gev__tls_flush(t, lim);
}

/* ---- The driving loop ------------------------------------------------- */

int gev__tls_drive(gev_tls_stream *t, gev__tls_op op, void *arg,
                   const gev__tls_limit *lim) {
  for (;;) {
    if (t->closed || gev_socket_closed(t->sock))
      return gev__tls_fail_errno(EBADF);
    ERR_clear_error();
    t->io_err = 0;
    int rc = op(t, arg);
    if (rc > 0)
      return rc;
    int e = SSL_get_error(t->ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ:
      if (gev__tls_flush_to_read(t, lim) < 0 ||
          gev__tls_wait(t, GEV__TLS_READ, lim) < 0)
        return -1;
      break;
    case SSL_ERROR_WANT_WRITE: /* not from gev's BIO; handled anyway */
      if (gev__tls_flush(t, lim) < 0 ||
          gev__tls_wait(t, GEV__TLS_WRITE, lim) < 0)
        return -1;
      break;
    case SSL_ERROR_ZERO_RETURN:
      return 0;
    default:
      gev__tls_flush_nowait(t); /* let the peer see our alert, if any */
      return gev__tls_fail_stream(t, e);
    }
  }
}
