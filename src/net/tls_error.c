/*
 * TLS errors: errno for the program, a sentence for the person.
 *
 * OpenSSL reports failures on a per-thread queue of packed codes. Every
 * failing gev_tls call turns the queue's oldest entry (the root cause: the
 * later ones are the callers that passed it on) into the thread's last
 * error text, adds the certificate check's own message when verification
 * failed, clears the queue, and sets errno. The text is thread-local and
 * lives until the next failure, like errno; greenlets of one thread share
 * it, so read it before the next call that can park.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "net/tls_internal.h"

#define LAST_ERROR_MAX 256

/* The thread's text lives in its slot of the hub layer's thread block
 * (park.h; libgev's one thread-local variable is the coroutine layer's
 * root): a buffer made at the first failure, freed when the thread exits.
 * NULL only if that buffer cannot be had. */
static char *last_error(void) {
  void **slot = gev__thread_slot(GEV__SLOT_TLS_ERROR);
  if (!slot)
    return NULL;
  if (!*slot && (*slot = calloc(1, LAST_ERROR_MAX)))
    gev__thread_slot_on_exit(GEV__SLOT_TLS_ERROR, free);
  return *slot;
}

const char *gev_tls_last_error(void) {
  const char *text = gev__thread_slot_peek(GEV__SLOT_TLS_ERROR);
  return text ? text : "";
}

int gev__tls_fail(int err, const char *text) {
  char *buf = last_error();
  if (buf)
    snprintf(buf, LAST_ERROR_MAX, "%s", text ? text : strerror(err));
  errno = err;
  return -1;
}

int gev__tls_fail_errno(int err) { return gev__tls_fail(err, strerror(err)); }

/* The reason of packed error e, without OpenSSL's "error:0A000086:..."
 * prefix when it has a plain one. */
static void reason_of(unsigned long e, char *buf, size_t size) {
  const char *reason = ERR_reason_error_string(e);
  if (reason)
    snprintf(buf, size, "%s", reason);
  else
    ERR_error_string_n(e, buf, size);
}

int gev__tls_fail_openssl(int err, const char *fallback) {
  unsigned long e = ERR_get_error();
  char text[LAST_ERROR_MAX];
  if (e)
    reason_of(e, text, sizeof text);
  else
    snprintf(text, sizeof text, "%s", fallback ? fallback : strerror(err));
  ERR_clear_error();
  return gev__tls_fail(err, text);
}

int gev__tls_unexpected_eof(void) {
  unsigned long e = ERR_peek_error();
  return e && ERR_GET_LIB(e) == ERR_LIB_SSL &&
         ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

/* A TLS-level failure (SSL_ERROR_SSL): EPROTO with OpenSSL's reason, plus
 * the certificate check's message when that is what failed. */
static int fail_protocol(gev_tls_stream *t) {
  unsigned long e = ERR_peek_error();
  long verify = SSL_get_verify_result(t->ssl);
  if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
      ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
      verify != X509_V_OK) {
    char text[LAST_ERROR_MAX], reason[128];
    reason_of(e, reason, sizeof reason);
    snprintf(text, sizeof text, "%s: %s", reason,
             X509_verify_cert_error_string(verify));
    ERR_clear_error();
    return gev__tls_fail(EPROTO, text);
  }
  return gev__tls_fail_openssl(EPROTO, "TLS protocol error");
}

/* A failure below TLS (SSL_ERROR_SYSCALL): the BIO's errno; without one
 * the connection ended where TLS did not expect it. */
static int fail_transport(gev_tls_stream *t) {
  if (t->io_err) {
    ERR_clear_error();
    return gev__tls_fail_errno(t->io_err);
  }
  return gev__tls_fail_openssl(ECONNRESET, "connection closed by the peer");
}

/* Remembers the error just reported (errno, last_error) as the stream's
 * end: later calls repeat it. */
static int mark_failed(gev_tls_stream *t) {
  int err = errno;
  if (!t->failed) {
    t->failed = err;
    t->failed_reason = strdup(gev_tls_last_error()); /* NULL: strerror later */
  }
  errno = err;
  return -1;
}

int gev__tls_fail_stream(gev_tls_stream *t, int ssl_error) {
  if (ssl_error == SSL_ERROR_SYSCALL)
    fail_transport(t);
  else if (gev__tls_unexpected_eof())
    gev__tls_fail_openssl(ECONNRESET, NULL);
  else
    fail_protocol(t);
  return mark_failed(t);
}

int gev__tls_fail_dead(gev_tls_stream *t, int err, const char *text) {
  gev__tls_fail(err, text);
  return mark_failed(t);
}
