/*
 * Internal: what the socket layer offers the rest of src/net beyond
 * gev/net.h.
 */
#ifndef GEV_SRC_NET_SOCKET_INTERNAL_H
#define GEV_SRC_NET_SOCKET_INTERNAL_H

#include "gev/net.h"

/* As gev_socket_wrap, for an fd known to be a socket that is already
 * non-blocking and close-on-exec (one from accept4 with SOCK_NONBLOCK |
 * SOCK_CLOEXEC): skips the getsockopt and fcntl calls that check and
 * arrange that. NULL with ENOMEM; the fd then still belongs to the
 * caller. */
gev_socket *gev__socket_adopt(int fd);

#endif
