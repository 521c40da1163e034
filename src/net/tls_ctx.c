/*
 * TLS contexts (see gev/tls.h): an SSL_CTX with gev's defaults, the
 * settings gev wraps, and the client session cache.
 *
 * A context is configured by one thread before its first stream and is
 * read-only afterwards, which is what lets threads share it: OpenSSL's
 * SSL_CTX is safe to make connections from concurrently, not to change
 * meanwhile. The first stream freezes it (gev__tls_ctx_freeze) and the
 * setters then fail with EBUSY. The reference count is atomic because the
 * last reference may be dropped by a stream of any thread; the client
 * session list, written from handshakes of any thread, has a mutex.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "net/tls_internal.h"

#define CLIENT_CACHE_DEFAULT 100
#define SESSION_ID_CONTEXT "gev"

/* ---- Callbacks OpenSSL makes -------------------------------------------- */

static int app_data_index = -1;
static pthread_once_t app_data_once = PTHREAD_ONCE_INIT;

static void make_app_data_index(void) {
  app_data_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

gev_tls_ctx *gev__tls_ctx_of(SSL_CTX *ssl_ctx) {
  return SSL_CTX_get_ex_data(ssl_ctx, app_data_index);
}

gev_tls_stream *gev__tls_stream_of(const SSL *ssl) {
  return SSL_get_app_data(ssl);
}

/* A passphrase-protected key would make OpenSSL prompt on the terminal,
 * blocking the thread: refuse instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg) {
  return 0;
}

/* Server ALPN: the first protocol of the server's list that the client
 * offers (SSL_select_next_proto walks the server's list in order). */
static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
  gev_tls_ctx *ctx = arg;
  unsigned char *chosen;
  if (SSL_select_next_proto(&chosen, outlen, ctx->alpn,
                            (unsigned int)ctx->alpn_len, in,
                            inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK; /* go on without ALPN */
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

static int sni_select(SSL *ssl, int *alert, void *arg) {
  gev_tls_ctx *ctx = arg;
  gev_tls_stream *t = gev__tls_stream_of(ssl);
  if (!t || !ctx->sni_fn)
    return SSL_TLSEXT_ERR_OK;
  t->in_sni = 1;
  int rc = ctx->sni_fn(t, SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name),
                       ctx->sni_arg);
  t->in_sni = 0;
  if (rc < 0) {
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

/* ---- The client session cache ------------------------------------------- */

static void session_drop(gev__tls_session *s) {
  free(s->key);
  SSL_SESSION_free(s->session);
}

static gev__tls_session *session_find(gev_tls_ctx *ctx, const char *key) {
  for (size_t i = 0; i < ctx->ncache; i++)
    if (strcmp(ctx->cache[i].key, key) == 0)
      return &ctx->cache[i];
  return NULL;
}

/* Removes entry i, keeping the rest oldest first. */
static void session_remove(gev_tls_ctx *ctx, size_t i) {
  session_drop(&ctx->cache[i]);
  memmove(&ctx->cache[i], &ctx->cache[i + 1],
          (ctx->ncache - i - 1) * sizeof *ctx->cache);
  ctx->ncache--;
}

/* OpenSSL hands over each new client session (in TLS 1.3 after the
 * handshake, from a later read); returning 1 keeps its reference. */
static int session_new(SSL *ssl, SSL_SESSION *session) {
  gev_tls_stream *t = gev__tls_stream_of(ssl);
  gev_tls_ctx *ctx = t ? t->ctx : NULL;
  char *key;
  if (!ctx || !ctx->cache_size || !t->session_key ||
      !(key = strdup(t->session_key)))
    return 0;
  pthread_mutex_lock(&ctx->lock);
  gev__tls_session *old = session_find(ctx, key);
  if (old)
    session_remove(ctx, (size_t)(old - ctx->cache));
  if (ctx->ncache == ctx->cache_size)
    session_remove(ctx, 0);
  ctx->cache[ctx->ncache++] = (gev__tls_session){key, session};
  pthread_mutex_unlock(&ctx->lock);
  return 1;
}

void gev__tls_session_resume(gev_tls_ctx *ctx, SSL *ssl, const char *key) {
  pthread_mutex_lock(&ctx->lock);
  gev__tls_session *s = session_find(ctx, key);
  if (s && SSL_SESSION_is_resumable(s->session))
    SSL_set_session(ssl, s->session); /* takes its own reference */
  pthread_mutex_unlock(&ctx->lock);
}

static void session_clear(gev_tls_ctx *ctx) {
  while (ctx->ncache > 0)
    session_remove(ctx, ctx->ncache - 1);
}

/* Resizes the client cache to size entries (0: off), dropping the oldest. */
static int session_resize(gev_tls_ctx *ctx, size_t size) {
  while (ctx->ncache > size)
    session_remove(ctx, 0);
  if (size == 0) {
    free(ctx->cache);
    ctx->cache = NULL;
  } else {
    gev__tls_session *c = realloc(ctx->cache, size * sizeof *c);
    if (!c)
      return gev__tls_fail_errno(ENOMEM);
    ctx->cache = c;
  }
  ctx->cache_size = size;
  return 0;
}

/* ---- Creating and releasing ----------------------------------------------
 */

static void set_defaults(gev_tls_ctx *ctx) {
  SSL_CTX *c = ctx->ssl_ctx;
  SSL_CTX_set_ex_data(c, app_data_index, ctx);
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  /* No renegotiation; a peer closing without close_notify is reported by
   * gev itself (gev_tls_close_notified), not as a fatal error. */
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                             SSL_OP_IGNORE_UNEXPECTED_EOF);
  /* Partial writes: SSL_write returns after each record. Release buffers:
   * an idle connection holds no 16 KiB record buffers (nginx does so too).
   * Read-ahead: one recv takes what the kernel has, not a header first and
   * then the body. */
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE |
                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_read_ahead(c, 1);
  SSL_CTX_set_default_passwd_cb(c, no_passphrase);
  SSL_CTX_set_tlsext_servername_callback(c, sni_select);
  SSL_CTX_set_tlsext_servername_arg(c, ctx);
  if (ctx->role == GEV_TLS_SERVER) {
    ctx->verify = GEV_TLS_VERIFY_NONE;
    SSL_CTX_set_session_id_context(c, (const unsigned char *)SESSION_ID_CONTEXT,
                                   sizeof SESSION_ID_CONTEXT - 1);
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
  } else {
    ctx->verify = GEV_TLS_VERIFY_REQUIRED;
    ctx->check_hostname = 1;
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT |
                                          SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c, session_new);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
  }
}

gev_tls_ctx *gev_tls_ctx_new(gev_tls_role role) {
  if (role != GEV_TLS_CLIENT && role != GEV_TLS_SERVER) {
    gev__tls_fail(EINVAL, "unknown TLS role");
    return NULL;
  }
  pthread_once(&app_data_once, make_app_data_index);
  gev_tls_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx)
    goto out_nomem;
  ctx->role = role;
  atomic_init(&ctx->refs, 1);
  atomic_init(&ctx->frozen, 0);
  ctx->ssl_ctx = SSL_CTX_new(role == GEV_TLS_SERVER ? TLS_server_method()
                                                    : TLS_client_method());
  if (app_data_index < 0 || !ctx->ssl_ctx)
    goto out_free_ctx;
  if (role == GEV_TLS_CLIENT && session_resize(ctx, CLIENT_CACHE_DEFAULT) < 0)
    goto out_free_ssl_ctx;
  pthread_mutex_init(&ctx->lock, NULL);
  set_defaults(ctx);
  return ctx;
out_free_ssl_ctx:
  SSL_CTX_free(ctx->ssl_ctx);
out_free_ctx:
  free(ctx);
out_nomem:
  gev__tls_fail_openssl(ENOMEM, NULL);
  return NULL;
}

gev_tls_ctx *gev_tls_ctx_ref(gev_tls_ctx *ctx) {
  if (ctx)
    atomic_fetch_add(&ctx->refs, 1);
  return ctx;
}

void gev_tls_ctx_free(gev_tls_ctx *ctx) {
  if (!ctx || atomic_fetch_sub(&ctx->refs, 1) != 1)
    return;
  session_clear(ctx);
  free(ctx->cache);
  free(ctx->alpn);
  SSL_CTX_free(ctx->ssl_ctx);
  pthread_mutex_destroy(&ctx->lock);
  free(ctx);
}

int gev__tls_ctx_freeze(gev_tls_ctx *ctx) {
  int rc = 0;
  pthread_mutex_lock(&ctx->lock);
  if (!atomic_load(&ctx->frozen)) {
    if (ctx->role == GEV_TLS_CLIENT && ctx->verify != GEV_TLS_VERIFY_NONE &&
        !ctx->ca_loaded && !SSL_CTX_set_default_verify_paths(ctx->ssl_ctx))
      rc = gev__tls_fail_openssl(EINVAL, "cannot use the system CA store");
    atomic_store(&ctx->frozen, 1);
  }
  pthread_mutex_unlock(&ctx->lock);
  return rc;
}

/* ---- Setters ------------------------------------------------------------ */

/* Whether ctx may still be changed: 0, or -1 with EINVAL / EBUSY. */
static int configurable(gev_tls_ctx *ctx) {
  if (!ctx)
    return gev__tls_fail(EINVAL, "NULL TLS context");
  if (atomic_load(&ctx->frozen))
    return gev__tls_fail(EBUSY, "TLS context already in use");
  return 0;
}

/* Checks that path can be read, so a missing file is ENOENT, not a
 * parse error. */
static int readable(const char *path) {
  if (access(path, R_OK) == 0)
    return 0;
  int err = errno;
  char text[256];
  snprintf(text, sizeof text, "%s: %s", path, strerror(err));
  return gev__tls_fail(err, text);
}

int gev_tls_ctx_use_certificate(gev_tls_ctx *ctx, const char *chain_file,
                                const char *key_file) {
  if (configurable(ctx) < 0)
    return -1;
  if (!chain_file)
    return gev__tls_fail(EINVAL, "no certificate file");
  if (!key_file)
    key_file = chain_file;
  if (readable(chain_file) < 0 || readable(key_file) < 0)
    return -1;
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx->ssl_ctx, chain_file) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx->ssl_ctx, key_file, SSL_FILETYPE_PEM) !=
          1 ||
      SSL_CTX_check_private_key(ctx->ssl_ctx) != 1)
    return gev__tls_fail_openssl(EINVAL, "bad certificate or key");
  return 0;
}

int gev_tls_ctx_load_verify(gev_tls_ctx *ctx, const char *cafile,
                            const char *capath) {
  if (configurable(ctx) < 0)
    return -1;
  if (!cafile && !capath)
    return gev__tls_fail(EINVAL, "no CA file or directory");
  if ((cafile && readable(cafile) < 0) || (capath && readable(capath) < 0))
    return -1;
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(ctx->ssl_ctx, cafile, capath) != 1)
    return gev__tls_fail_openssl(EINVAL, "no CA certificates loaded");
  ctx->ca_loaded = 1;
  return 0;
}

int gev_tls_ctx_load_system_store(gev_tls_ctx *ctx) {
  if (configurable(ctx) < 0)
    return -1;
  ERR_clear_error();
  if (SSL_CTX_set_default_verify_paths(ctx->ssl_ctx) != 1)
    return gev__tls_fail_openssl(EINVAL, "cannot use the system CA store");
  ctx->ca_loaded = 1;
  return 0;
}

int gev_tls_ctx_set_verify(gev_tls_ctx *ctx, gev_tls_verify mode) {
  static const int server_modes[] = {
      [GEV_TLS_VERIFY_NONE] = SSL_VERIFY_NONE,
      [GEV_TLS_VERIFY_OPTIONAL] = SSL_VERIFY_PEER,
      [GEV_TLS_VERIFY_REQUIRED] =
          SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT};
  if (configurable(ctx) < 0)
    return -1;
  if (mode != GEV_TLS_VERIFY_NONE && mode != GEV_TLS_VERIFY_OPTIONAL &&
      mode != GEV_TLS_VERIFY_REQUIRED)
    return gev__tls_fail(EINVAL, "unknown verify mode");
  /* A client always fails a server certificate that does not verify. */
  int flags =
      ctx->role == GEV_TLS_SERVER
          ? server_modes[mode]
          : (mode == GEV_TLS_VERIFY_NONE ? SSL_VERIFY_NONE : SSL_VERIFY_PEER);
  SSL_CTX_set_verify(ctx->ssl_ctx, flags, NULL);
  ctx->verify = mode;
  return 0;
}

int gev_tls_ctx_set_check_hostname(gev_tls_ctx *ctx, int on) {
  if (configurable(ctx) < 0)
    return -1;
  ctx->check_hostname = on != 0;
  return 0;
}

/* The ALPN wire format: each protocol prefixed by its length. */
static unsigned char *alpn_encode(const char *const *protocols, size_t n,
                                  size_t *len) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    size_t l = protocols[i] ? strlen(protocols[i]) : 0;
    if (l == 0 || l > 255) {
      gev__tls_fail(EINVAL, "ALPN protocol names are 1 to 255 bytes");
      return NULL;
    }
    total += 1 + l;
  }
  unsigned char *wire = malloc(total), *p = wire;
  if (!wire) {
    gev__tls_fail_errno(ENOMEM);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    size_t l = strlen(protocols[i]);
    *p++ = (unsigned char)l;
    memcpy(p, protocols[i], l);
    p += l;
  }
  *len = total;
  return wire;
}

int gev_tls_ctx_set_alpn(gev_tls_ctx *ctx, const char *const *protocols,
                         size_t n) {
  if (configurable(ctx) < 0)
    return -1;
  if (n > 0 && !protocols)
    return gev__tls_fail(EINVAL, "no ALPN protocols");
  unsigned char *wire = NULL;
  size_t len = 0;
  if (n > 0 && !(wire = alpn_encode(protocols, n, &len)))
    return -1;
  free(ctx->alpn);
  ctx->alpn = wire;
  ctx->alpn_len = len;
  if (ctx->role == GEV_TLS_SERVER) {
    SSL_CTX_set_alpn_select_cb(ctx->ssl_ctx, wire ? alpn_select : NULL, ctx);
  } else if (SSL_CTX_set_alpn_protos(ctx->ssl_ctx, wire, (unsigned int)len) !=
             0) {
    return gev__tls_fail_openssl(ENOMEM, NULL);
  }
  return 0;
}

int gev_tls_ctx_set_sni_callback(gev_tls_ctx *ctx, gev_tls_sni_fn fn,
                                 void *arg) {
  if (configurable(ctx) < 0)
    return -1;
  if (ctx->role != GEV_TLS_SERVER)
    return gev__tls_fail(EINVAL, "SNI callbacks are for servers");
  ctx->sni_fn = fn;
  ctx->sni_arg = arg;
  return 0;
}

static int known_version(int v) {
  return v == 0 || v == GEV_TLS_1_2 || v == GEV_TLS_1_3;
}

int gev_tls_ctx_set_versions(gev_tls_ctx *ctx, int min, int max) {
  if (configurable(ctx) < 0)
    return -1;
  if (!known_version(min) || !known_version(max) || (max && min > max))
    return gev__tls_fail(EINVAL, "TLS versions are 1.2 or 1.3");
  SSL_CTX_set_min_proto_version(ctx->ssl_ctx, min ? min : TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx->ssl_ctx, max);
  return 0;
}

int gev_tls_ctx_set_ciphers(gev_tls_ctx *ctx, const char *tls12,
                            const char *tls13) {
  if (configurable(ctx) < 0)
    return -1;
  ERR_clear_error();
  if ((tls12 && SSL_CTX_set_cipher_list(ctx->ssl_ctx, tls12) != 1) ||
      (tls13 && SSL_CTX_set_ciphersuites(ctx->ssl_ctx, tls13) != 1))
    return gev__tls_fail_openssl(EINVAL, "no usable cipher");
  return 0;
}

int gev_tls_ctx_set_session_cache(gev_tls_ctx *ctx, size_t size,
                                  double timeout) {
  if (configurable(ctx) < 0)
    return -1;
  if (!(timeout >= 0) || timeout > LONG_MAX || size > LONG_MAX / 2)
    return gev__tls_fail(EINVAL, "bad session cache size or timeout");
  SSL_CTX *c = ctx->ssl_ctx;
  SSL_CTX_set_timeout(c, timeout > 0 ? (long)ceil(timeout) : 300);
  if (ctx->role == GEV_TLS_CLIENT)
    return session_resize(ctx, size);
  if (size == 0) {
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(c, 0);
  } else {
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
    SSL_CTX_clear_options(c, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(c, 2);
    SSL_CTX_sess_set_cache_size(c, (long)size);
  }
  return 0;
}

struct ssl_ctx_st *gev_tls_ctx_openssl(gev_tls_ctx *ctx) {
  return ctx ? ctx->ssl_ctx : NULL;
}
