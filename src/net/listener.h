/*
 * Internal: listening sockets as plain fds, the one place gev opens and
 * checks them. gev_server wraps the fd in a gev_socket afterwards; the
 * prefork master uses the fd as it is, since it runs without a hub (it
 * forks, and its workers must not inherit one).
 *
 *   gev__listener_open   a socket bound to an address, with the options a
 *                        server wants, optionally listening;
 *   gev__listener_check  a socket the program opened itself: right type,
 *                        its bound address, made non-blocking.
 */
#ifndef GEV_SRC_NET_LISTENER_H
#define GEV_SRC_NET_LISTENER_H

#include <sys/socket.h>

#define GEV__LISTEN_REUSEADDR 1 /* SO_REUSEADDR */
#define GEV__LISTEN_REUSEPORT 2 /* SO_REUSEPORT */
#define GEV__LISTEN_V6ONLY 4    /* IPV6_V6ONLY, for an IPv6 address */

/* A non-blocking, close-on-exec socket of type (SOCK_STREAM or SOCK_DGRAM)
 * bound to addr with the GEV__LISTEN_* flags, listening with backlog when
 * backlog > 0 (a stream socket). Returns the fd, or -1 with the errors of
 * socket(2), setsockopt(2), bind(2) (EADDRINUSE, EACCES ...) and
 * listen(2). */
int gev__listener_open(const struct sockaddr *addr, socklen_t len, int type,
                       int flags, int backlog);

/* Checks that fd is a socket of type (for SOCK_STREAM, a listening one),
 * stores its bound address in *addr (*len: its size on entry, the
 * address's length on return) and makes it non-blocking. 0, or -1: EINVAL
 * (not a socket, another type of socket, or a stream socket not
 * listening), EBADF, and the errors of getsockname(2) and fcntl(2). */
int gev__listener_check(int fd, int type, struct sockaddr_storage *addr,
                        socklen_t *len);

#endif
