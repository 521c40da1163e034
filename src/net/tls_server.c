/*
 * TLS servers (gev_tls_server_new in gev/tls.h): a stream server whose
 * handler wraps each connection, runs the handshake under its own time
 * limit, hands the stream to the program's handler, and ends the session.
 *
 * The handshake runs in the connection's handler greenlet, not in the
 * accepting hub, so a slow or hostile client costs one parked greenlet
 * and never delays other connections; its time limit is the socket's
 * timeout for that call (an overall deadline, see gev/tls.h), then the
 * socket goes back to no timeout for the program's handler.
 *
 * The layer's state is shared by the server and every connection still
 * running, so it is reference counted: a server freed while handlers
 * unwind leaves them their state.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "net/server_internal.h"
#include "net/tls_internal.h"

#define DEFAULT_HANDSHAKE_TIMEOUT 10.0

typedef struct tls_server {
  unsigned refs; /* the server's, plus one per running connection */
  gev_tls_ctx *ctx;
  double handshake_timeout;
  gev_tls_handler_fn handler;
  void *arg;
} tls_server;

static void tls_server_release(void *arg) {
  tls_server *ts = arg;
  if (--ts->refs > 0)
    return;
  gev_tls_ctx_free(ts->ctx);
  free(ts);
}

/* Ends a session: close_notify if the stream is healthy, sent only if the
 * socket has room now (a client that stopped reading cannot hold the
 * handler), then close. */
static void finish(gev_tls_stream *t) {
  gev_socket *s = gev_tls_socket(t);
  if (gev_tls_handshake_done(t) && !gev_socket_closed(s)) {
    gev_socket_settimeout(s, 0);
    gev_tls_shutdown(t);
  }
  gev_tls_close(t);
}

static void serve(gev_server *srv, gev_socket *client,
                  const struct sockaddr *peer, socklen_t peerlen, void *arg) {
  tls_server *ts = arg;
  ts->refs++;
  gev_tls_stream *t = gev_tls_wrap(ts->ctx, client, NULL);
  if (t) {
    gev_socket_settimeout(client, ts->handshake_timeout);
    int ok = gev_tls_handshake(t) == 0;
    gev_socket_settimeout(client, -1);
    if (ok)
      ts->handler(srv, t, peer, peerlen, ts->arg);
    finish(t);
  }
  tls_server_release(ts);
}

gev_server *gev_tls_server_new(const gev_server_opts *opts, gev_tls_ctx *ctx,
                               double handshake_timeout,
                               gev_tls_handler_fn handler, void *arg) {
  if (!ctx || ctx->role != GEV_TLS_SERVER || !handler ||
      isnan(handshake_timeout)) {
    gev__tls_fail(EINVAL, "a TLS server needs a server context and handler");
    return NULL;
  }
  if (opts && opts->threads > 1) {
    gev__tls_fail(EINVAL, "a TLS server runs in one thread (threads <= 1)");
    return NULL;
  }
  tls_server *ts = calloc(1, sizeof *ts);
  if (!ts) {
    gev__tls_fail_errno(ENOMEM);
    return NULL;
  }
  *ts = (tls_server){.refs = 1,
                     .ctx = gev_tls_ctx_ref(ctx),
                     .handshake_timeout = handshake_timeout > 0
                                              ? handshake_timeout
                                              : DEFAULT_HANDSHAKE_TIMEOUT,
                     .handler = handler,
                     .arg = arg};
  gev_server *srv = gev_stream_server_new(opts, serve, ts);
  if (!srv) {
    int err = errno;
    tls_server_release(ts);
    errno = err;
    return NULL;
  }
  gev__server_on_free(srv, tls_server_release, ts);
  return srv;
}
