/*
 * gev/net.h — cooperative sockets (gevent.socket).
 *
 * A gev_socket is a heap object wrapping a non-blocking fd, with its own
 * read and write watchers and a timeout. Calls look like their POSIX
 * namesakes and return -1 with errno on failure, but where the syscall
 * would block (EAGAIN, EINPROGRESS) the calling greenlet parks in the hub
 * until the fd is ready, and other greenlets run meanwhile.
 *
 * Timeout (gev_socket_settimeout), as gevent:
 *   < 0  block as long as needed (the default);
 *   0    never park: calls that would block fail with EAGAIN;
 *   > 0  seconds. For recv, recvfrom, send, sendto and accept it bounds
 *        each wait for readiness; for connect and sendall it is an overall
 *        deadline for the whole call. Expiry fails the call with ETIMEDOUT.
 *
 * Every call that can park also fails with the hub's blocking-call errors
 * (see gev/hub.h): ECANCELED (the greenlet was killed), ETIMEDOUT (an
 * expired gev_timeout scope), EPERM (called from the hub; a socket with
 * timeout 0 may be used from the hub, since it never parks), EDEADLK. A
 * killed greenlet's calls fail with ECANCELED even when the fd is ready.
 *
 * Rules, as gevent's:
 *   - Closing a socket wakes every greenlet parked on it with EBADF, and
 *     every later call on it fails with EBADF. No watcher stays active.
 *     (Between waits an open socket's watcher may stay active, idle: it
 *     costs nothing and never keeps the hub from running out of work.)
 *   - One reader and one writer at a time: a second greenlet that would
 *     park to read (or write) while another is parked for the same
 *     direction fails with EBUSY ("concurrent object use"). Readers and
 *     writers do not exclude each other.
 *   - SIGPIPE never kills the process: sends use MSG_NOSIGNAL, so writing
 *     to a closed peer fails with EPIPE. EINTR is retried internally.
 *   - A socket belongs to the thread that made it; calls from another
 *     thread fail with EXDEV.
 *
 * Ownership. A socket is reference counted. The creator (gev_socket_new,
 * _wrap, _accept, _listen_tcp, _create_connection) holds the "open"
 * reference, which gev_socket_close (or _detach) releases, together with
 * the fd. Another greenlet that keeps using a socket which may be closed
 * under it takes its own reference with gev_socket_ref and drops it with
 * gev_socket_unref; on a closed socket its calls fail with EBADF. A call in
 * progress holds a reference of its own, so closing a socket while others
 * are parked on it is safe. Memory is freed when the last reference goes.
 * After the creator's close, a pointer without a reference must not be
 * used (as a closed fd number must not); gev aborts when it sees one (see
 * gev_socket_close).
 *
 * Failing calls set errno and return -1 (or NULL); they never abort on bad
 * input: a NULL socket fails with EINVAL, a closed one with EBADF. Only a
 * pointer to a freed socket aborts, since it is no input at all.
 */
#ifndef GEV_NET_H
#define GEV_NET_H

#include <sys/socket.h>
#include <sys/types.h>

#include "gev/hub.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gev_socket gev_socket;

/* ---- Creating and releasing ------------------------------------------ */

/* Creates a socket like socket(2) (AF_INET, AF_INET6, AF_UNIX; SOCK_STREAM
 * or SOCK_DGRAM), non-blocking and close-on-exec, timeout -1.
 * Errors: those of socket(2) (EAFNOSUPPORT, EINVAL, EMFILE, ENFILE,
 * ENOBUFS, EPROTONOSUPPORT, EACCES), ENOMEM. */
GEV_EXTERN gev_socket *gev_socket_new(int domain, int type, int protocol);

/* Wraps an existing socket fd, which the new object then owns (closed by
 * gev_socket_close). The fd is made non-blocking. Timeout -1.
 * Errors: EBADF (fd < 0 or not open), ENOTSOCK, ENOMEM. On error the fd is
 * left open and still belongs to the caller. */
GEV_EXTERN gev_socket *gev_socket_wrap(int fd);

/* Closes the fd, wakes every greenlet parked on the socket with EBADF,
 * and releases the open reference, freeing the socket if no other
 * reference remains. Returns 0, or -1: EINVAL (NULL), EXDEV. The fd is
 * closed even if close(2) reports an error, which is then returned.
 * Closing again is harmless while someone still holds a reference (then
 * the socket is merely closed already). Once the last reference is gone
 * the pointer is dangling like a freed one: a second close through it is
 * a bug, which gev reports by aborting with "gev: socket closed twice, or
 * used after its last reference" (always under AddressSanitizer; without
 * it, as long as the memory has not been reused). */
GEV_EXTERN int gev_socket_close(gev_socket *s);

/* As gev_socket_close, but returns the fd, open and still non-blocking,
 * to the caller instead of closing it. -1: EINVAL, EXDEV, EBADF (already
 * closed or detached). */
GEV_EXTERN int gev_socket_detach(gev_socket *s);

/* Takes and drops an extra reference (see Ownership above). gev_socket_ref
 * returns s (NULL for NULL). gev_socket_unref never closes the fd by
 * itself unless it drops the last reference of a socket that is still
 * open, in which case the fd is closed too. */
GEV_EXTERN gev_socket *gev_socket_ref(gev_socket *s);
GEV_EXTERN void gev_socket_unref(gev_socket *s);

/* The fd, or -1: EINVAL (NULL), EBADF (closed). The socket still owns it. */
GEV_EXTERN int gev_socket_fileno(const gev_socket *s);

/* Non-zero once the socket is closed or detached (also for NULL). */
GEV_EXTERN int gev_socket_closed(const gev_socket *s);

/* Timeout in seconds (see above). settimeout: 0 or -1 (EINVAL for NULL
 * or NaN). gettimeout returns -1 for NULL. */
GEV_EXTERN int gev_socket_settimeout(gev_socket *s, double timeout);
GEV_EXTERN double gev_socket_gettimeout(const gev_socket *s);

/* ---- Addresses -------------------------------------------------------- */

/* Fills *out with the numeric address host (IPv4 or IPv6 literal; NULL,
 * "" or "*" for the IPv4 wildcard, "::" for IPv6's) and port (0..65535).
 * Returns 0, or -1: EINVAL (NULL out/len, bad port), EAFNOSUPPORT (host
 * is not a numeric address). */
GEV_EXTERN int gev_sockaddr_parse(const char *host, int port,
                                  struct sockaddr_storage *out, socklen_t *len);

/* Formats addr as "1.2.3.4:80" or "[::1]:80" (or the path of an AF_UNIX
 * address) into buf. Returns buf, or NULL: EINVAL, EAFNOSUPPORT, ENOSPC. */
GEV_EXTERN char *gev_sockaddr_format(const struct sockaddr *addr, socklen_t len,
                                     char *buf, size_t size);

/* ---- Plain socket calls ----------------------------------------------- */

/* bind(2), listen(2), shutdown(2), getsockname(2), getpeername(2),
 * getsockopt(2), setsockopt(2) on the socket's fd; they never park.
 * Errors: EINVAL (NULL socket), EBADF (closed), EXDEV, and the syscall's
 * own errors. */
GEV_EXTERN int gev_socket_bind(gev_socket *s, const struct sockaddr *addr,
                               socklen_t len);
GEV_EXTERN int gev_socket_listen(gev_socket *s, int backlog);
GEV_EXTERN int gev_socket_shutdown(gev_socket *s, int how);
GEV_EXTERN int gev_socket_getsockname(gev_socket *s, struct sockaddr *addr,
                                      socklen_t *len);
GEV_EXTERN int gev_socket_getpeername(gev_socket *s, struct sockaddr *addr,
                                      socklen_t *len);
GEV_EXTERN int gev_socket_getsockopt(gev_socket *s, int level, int name,
                                     void *value, socklen_t *len);
GEV_EXTERN int gev_socket_setsockopt(gev_socket *s, int level, int name,
                                     const void *value, socklen_t len);

/* ---- Blocking (parking) calls ------------------------------------------ */

/* Accepts a connection, parking until one arrives. Returns a new socket
 * (non-blocking, close-on-exec, timeout -1) owned by the caller; addr/len
 * may be NULL. Errors: EINVAL, EBADF, EXDEV, EAGAIN (timeout 0),
 * ETIMEDOUT, EBUSY (another greenlet is parked accepting), the hub's
 * blocking-call errors, accept4(2)'s errors (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM, ECONNABORTED, EPROTO, EINVAL when not listening ...). */
GEV_EXTERN gev_socket *gev_socket_accept(gev_socket *s, struct sockaddr *addr,
                                         socklen_t *len);

/* Connects, parking until the connection is established or fails; the
 * timeout is an overall deadline. Returns 0, or -1: EINVAL, EBADF, EXDEV,
 * EAGAIN (timeout 0 and the connection is still in progress), ETIMEDOUT,
 * EBUSY, the hub's blocking-call errors, and connect(2)'s errors
 * (ECONNREFUSED, ENETUNREACH, EADDRNOTAVAIL, EISCONN, ENOENT for a missing
 * Unix path ...). After ETIMEDOUT or a kill the connect attempt is not
 * undone; close the socket. */
GEV_EXTERN int gev_socket_connect(gev_socket *s, const struct sockaddr *addr,
                                  socklen_t len);

/* recv(2) / recvfrom(2), parking until data (or EOF) is available. Returns
 * the byte count (0 at end of stream), or -1: EINVAL (NULL socket, or buf
 * NULL with len > 0), EBADF, EXDEV, EAGAIN (timeout 0), ETIMEDOUT, EBUSY,
 * the hub's blocking-call errors, and the syscall's (ECONNRESET,
 * ENOTCONN ...). MSG_DONTWAIT in flags makes this one call non-blocking. */
GEV_EXTERN ssize_t gev_socket_recv(gev_socket *s, void *buf, size_t len,
                                   int flags);
GEV_EXTERN ssize_t gev_socket_recvfrom(gev_socket *s, void *buf, size_t len,
                                       int flags, struct sockaddr *addr,
                                       socklen_t *addrlen);

/* send(2) / sendto(2) with MSG_NOSIGNAL, parking until some of buf could
 * be written. Returns the byte count (possibly less than len), or -1 with
 * the errors of recv above, plus EPIPE and ECONNRESET for a closed peer,
 * EMSGSIZE, EDESTADDRREQ, ECONNREFUSED (UDP) ... */
GEV_EXTERN ssize_t gev_socket_send(gev_socket *s, const void *buf, size_t len,
                                   int flags);
GEV_EXTERN ssize_t gev_socket_sendto(gev_socket *s, const void *buf, size_t len,
                                     int flags, const struct sockaddr *addr,
                                     socklen_t addrlen);

/* Sends all of buf, parking as often as needed; the timeout is an overall
 * deadline. Returns 0, or -1 with the errors of send. On error an unknown
 * prefix of buf has been sent. */
GEV_EXTERN int gev_socket_sendall(gev_socket *s, const void *buf, size_t len,
                                  int flags);

/* Parks until the socket is readable (data, end of stream or an error
 * pending) or writable, without reading or writing anything, using the
 * socket's own watcher (so close, kill and Timeout scopes interrupt it as
 * any other call). timeout is explicit here, not the socket's: < 0
 * forever, 0 checks readiness without parking, > 0 bounds the wait.
 * Useful before a recv that would most likely find nothing, e.g. a server
 * waiting for a keep-alive client's next request, where trying the recv
 * first would cost a syscall that fails with EAGAIN. Returns 0 when ready,
 * or -1: EINVAL (NULL, NaN), EBADF, EXDEV, ETIMEDOUT (also timeout 0 and
 * not ready), EBUSY (another greenlet waits in that direction), the hub's
 * blocking-call errors. */
GEV_EXTERN int gev_socket_wait_read(gev_socket *s, double timeout);
GEV_EXTERN int gev_socket_wait_write(gev_socket *s, double timeout);

/* ---- Helpers ------------------------------------------------------------ */

#define GEV_LISTEN_REUSEPORT 1 /* also set SO_REUSEPORT */

/* A listening TCP socket on host:port (numeric host as gev_sockaddr_parse;
 * port 0 picks a free port, see gev_socket_getsockname), with SO_REUSEADDR,
 * SO_REUSEPORT with GEV_LISTEN_REUSEPORT, IPV6_V6ONLY for IPv6 hosts, and
 * backlog (<= 0 means SOMAXCONN). Errors: those of gev_sockaddr_parse,
 * gev_socket_new, bind(2) (EADDRINUSE, EACCES, EADDRNOTAVAIL), listen(2),
 * EINVAL for unknown flags. */
GEV_EXTERN gev_socket *gev_socket_listen_tcp(const char *host, int port,
                                             int backlog, int flags);

/* Connects a TCP socket to host:port and returns it (timeout -1 afterwards,
 * as gevent leaves it to the caller). host is an IPv4/IPv6 literal or a
 * name, resolved with gev_getaddrinfo (gev/dns.h: /etc/hosts, then DNS);
 * each address it stands for is tried in turn, in resolver order, until
 * one connects; the last error is reported. timeout (< 0 none) bounds the
 * whole call, lookup included. Errors: EINVAL (NULL host, bad port), a
 * failed lookup as gev/dns.h maps it to errno (ENOENT: the name does not
 * exist or has no address; EAGAIN: the DNS server failed temporarily;
 * EIO: the server refused the query; ENOMEM; and the resolver's EAI_SYSTEM
 * errors: ETIMEDOUT, ECANCELED, ECONNREFUSED, EBADMSG ...), and those of
 * gev_socket_new and gev_socket_connect. */
GEV_EXTERN gev_socket *gev_create_connection(const char *host, int port,
                                             double timeout);

#ifdef __cplusplus
}
#endif
#endif
