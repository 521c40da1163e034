/*
 * A connection that is a plain socket or a TLS stream over one, for the
 * example programs: the calls that move bytes go to the TLS stream when
 * there is one (gev/tls.h), else to the socket (gev/net.h). Everything
 * else (timeouts, shutting down the read side, the peer's address) is the
 * socket's in both cases.
 */
#ifndef GEV_EXAMPLES_STREAM_IO_H
#define GEV_EXAMPLES_STREAM_IO_H

#include "gev/net.h"
#if GEV_HAVE_TLS
#include "gev/tls.h"
#endif

struct gev_tls_stream;

/* Non-zero when a TLS stream holds input received but not yet returned
 * (recv may then go on without the socket becoming readable). */
static inline int io_buffered(struct gev_tls_stream *tls) {
#if GEV_HAVE_TLS
  return tls && gev_tls_buffered(tls);
#else
  return 0;
#endif
}

static inline int io_wait_read(gev_socket *sock, struct gev_tls_stream *tls,
                               double timeout) {
#if GEV_HAVE_TLS
  if (tls)
    return gev_tls_wait_read(tls, timeout);
#endif
  return gev_socket_wait_read(sock, timeout);
}

static inline ssize_t io_recv(gev_socket *sock, struct gev_tls_stream *tls,
                              void *buf, size_t len) {
#if GEV_HAVE_TLS
  if (tls)
    return gev_tls_recv(tls, buf, len);
#endif
  return gev_socket_recv(sock, buf, len, 0);
}

static inline int io_sendall(gev_socket *sock, struct gev_tls_stream *tls,
                             const void *buf, size_t len) {
#if GEV_HAVE_TLS
  if (tls)
    return gev_tls_sendall(tls, buf, len);
#endif
  return gev_socket_sendall(sock, buf, len, 0);
}

/* Ends our side of the conversation: close_notify, or a TCP FIN. */
static inline int io_shutdown_write(gev_socket *sock,
                                    struct gev_tls_stream *tls) {
#if GEV_HAVE_TLS
  if (tls)
    return gev_tls_shutdown(tls);
#endif
  return gev_socket_shutdown(sock, SHUT_WR);
}

/* Closes the connection (a TLS stream closes its socket too). */
static inline int io_close(gev_socket *sock, struct gev_tls_stream *tls) {
#if GEV_HAVE_TLS
  if (tls)
    return gev_tls_close(tls);
#endif
  return gev_socket_close(sock);
}

#endif
