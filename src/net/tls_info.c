/*
 * What a TLS stream can tell about itself (see gev/tls.h): the session's
 * parameters, the peer's certificate and its verification, SNI and ALPN,
 * and switching a server stream's context from the SNI callback. All of it
 * reads OpenSSL's state; nothing here parks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/x509.h>

#include "net/tls_internal.h"

gev_socket *gev_tls_socket(gev_tls_stream *t) { return t ? t->sock : NULL; }

int gev_tls_handshake_done(const gev_tls_stream *t) {
  return t && t->hs == GEV__TLS_HS_DONE;
}

size_t gev_tls_pending(const gev_tls_stream *t) {
  int n = t ? SSL_pending(t->ssl) : 0;
  return n > 0 ? (size_t)n : 0;
}

int gev_tls_buffered(const gev_tls_stream *t) {
  return t && (t->ended || SSL_has_pending(t->ssl) ||
               (SSL_get_shutdown(t->ssl) & SSL_RECEIVED_SHUTDOWN));
}

const char *gev_tls_version(const gev_tls_stream *t) {
  return gev_tls_handshake_done(t) ? SSL_get_version(t->ssl) : NULL;
}

const char *gev_tls_cipher(const gev_tls_stream *t) {
  return gev_tls_handshake_done(t) ? SSL_get_cipher_name(t->ssl) : NULL;
}

const char *gev_tls_alpn(gev_tls_stream *t) {
  const unsigned char *data;
  unsigned int len;
  if (!gev_tls_handshake_done(t))
    return NULL;
  if (!t->alpn) { /* the choice is final once the handshake is done */
    SSL_get0_alpn_selected(t->ssl, &data, &len);
    if (len == 0 || !(t->alpn = malloc(len + 1)))
      return NULL;
    memcpy(t->alpn, data, len);
    t->alpn[len] = '\0';
  }
  return t->alpn;
}

const char *gev_tls_server_name(const gev_tls_stream *t) {
  return t ? SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

struct x509_st *gev_tls_peer_certificate(const gev_tls_stream *t) {
  return t ? SSL_get0_peer_certificate(t->ssl) : NULL;
}

int gev_tls_peer_subject(const gev_tls_stream *t, char *buf, size_t size) {
  X509 *cert = gev_tls_peer_certificate(t);
  if (!t || !buf || size == 0)
    return gev__tls_fail(EINVAL, "bad arguments");
  if (!cert)
    return gev__tls_fail(ENOENT, "no peer certificate");
  BIO *mem = BIO_new(BIO_s_mem());
  if (!mem)
    return gev__tls_fail_errno(ENOMEM);
  X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0,
                     XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char *text;
  long len = BIO_get_mem_data(mem, &text);
  size_t n = len > 0 ? (size_t)len : 0;
  size_t copy = n < size ? n : size - 1;
  memcpy(buf, text, copy);
  buf[copy] = '\0';
  BIO_free(mem);
  if (copy < n)
    return gev__tls_fail(ENOSPC, "subject truncated");
  return (int)n;
}

long gev_tls_verify_result(const gev_tls_stream *t) {
  return t ? SSL_get_verify_result(t->ssl) : -1;
}

const char *gev_tls_verify_message(const gev_tls_stream *t) {
  return t ? X509_verify_cert_error_string(SSL_get_verify_result(t->ssl))
           : NULL;
}

int gev_tls_session_reused(const gev_tls_stream *t) {
  return t && SSL_session_reused(t->ssl);
}

int gev_tls_close_notified(const gev_tls_stream *t) { return t && t->notified; }

int gev_tls_set_ctx(gev_tls_stream *t, gev_tls_ctx *ctx) {
  if (!t || !ctx || !t->in_sni || ctx->role != GEV_TLS_SERVER)
    return gev__tls_fail(EINVAL, "a server context, from the SNI callback");
  if (gev__tls_ctx_freeze(ctx) < 0)
    return -1;
  if (!SSL_set_SSL_CTX(t->ssl, ctx->ssl_ctx))
    return gev__tls_fail_openssl(ENOMEM, NULL);
  gev_tls_ctx *old = t->sni_ctx;
  t->sni_ctx = gev_tls_ctx_ref(ctx);
  gev_tls_ctx_free(old);
  return 0;
}

struct ssl_st *gev_tls_openssl(gev_tls_stream *t) {
  return t ? t->ssl : NULL;
}
