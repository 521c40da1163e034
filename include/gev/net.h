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
 *   > 0  seconds. For recv, recvfrom, send, sendto, sendmsg, accept and
 *        the buffered reader's reads it bounds each wait for readiness;
 *        for connect, sendall, sendall_iov and sendfile it is an overall
 *        deadline for the whole call. Expiry fails the call with ETIMEDOUT
 *        ("nothing arrived / could be sent in time": the socket is still
 *        usable, as gevent's socket.timeout).
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
 *   - Binding before connecting (gev_socket_bind, then gev_socket_connect)
 *     chooses the source address; gev_create_connection_from does it for
 *     a name.
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
#include <sys/uio.h>

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
 * The end of a pipe or FIFO may be wrapped too: recv/recvfrom then read(2)
 * and send/sendto/sendall write(2) (flags: only MSG_DONTWAIT, else
 * EOPNOTSUPP), a write to a pipe without reader fails with EPIPE without
 * raising SIGPIPE, and the socket-only calls fail with ENOTSOCK.
 * Errors: EBADF (fd < 0 or not open), ENOTSOCK (neither a socket nor a
 * pipe), ENOMEM. On error the fd is left open and still belongs to the
 * caller. */
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

/* sendmsg(2) with MSG_NOSIGNAL, parking until some of the message could be
 * written (a gather write: msg->msg_iov, msg_iovlen; msg_name for an
 * unconnected datagram socket; ancillary data such as SCM_RIGHTS). Returns
 * the byte count (possibly less than the total), or -1 with the errors of
 * send, EINVAL also for msg NULL. On a pipe end it is a writev(2) of the
 * buffers (EOPNOTSUPP for an address or ancillary data). gev_socket_writev
 * (s, iov, n) is gev_socket_sendmsg with just those iovecs and no flags. */
GEV_EXTERN ssize_t gev_socket_sendmsg(gev_socket *s, const struct msghdr *msg,
                                      int flags);
GEV_EXTERN ssize_t gev_socket_writev(gev_socket *s, const struct iovec *iov,
                                     int iovcnt);

/* Sends every byte of the iovcnt buffers of iov, in order, as one stream
 * (a sendall of their concatenation without copying them together),
 * parking and resuming after partial writes as often as needed; the
 * socket's timeout is an overall deadline. iov is not modified. Returns 0,
 * or -1 with the errors of send, EINVAL also for iov NULL with iovcnt > 0
 * or iovcnt < 0; on error an unknown prefix has been sent. Any number of
 * buffers may be given (more than IOV_MAX go out in several calls). */
GEV_EXTERN int gev_socket_sendall_iov(gev_socket *s, const struct iovec *iov,
                                      int iovcnt, int flags);

/* Sends count bytes of the regular file in_fd (count 0: up to its end),
 * starting at *offset, with sendfile(2) (the kernel copies; nothing passes
 * through user memory), parking while the socket is full; the socket's
 * timeout is an overall deadline (gevent's socket.sendfile). *offset is
 * advanced by what was sent, also on error, and the file's own position
 * is left alone; with offset NULL the file's position is used and
 * advanced instead. Returns the bytes sent (less than count only when the
 * file ended first), or -1: the errors of send, EINVAL (offset < 0, in_fd
 * not a file sendfile can read, such as a pipe or a directory), EBADF
 * (in_fd not open for reading), EIO, EOPNOTSUPP (s is a pipe end: there
 * a reader gone would raise SIGPIPE). Where sendfile(2) cannot read in_fd
 * gevent falls back to read and send; gev reports EINVAL instead, so a
 * caller knows no zero-copy send happened and can copy by itself. Reading
 * the file may block on disk, as any read of a regular file does (a
 * page-cache miss). */
GEV_EXTERN ssize_t gev_socket_sendfile(gev_socket *s, int in_fd, off_t *offset,
                                       size_t count);

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

/* A waitable (gev/hub.h) for gev_wait / gev_iwait: ready when the socket
 * is readable (GEV_WAIT_READ) or writable (GEV_WAIT_WRITE), or either with
 * both, or once it is closed (its next call then fails with EBADF). The
 * socket must stay valid during a gev_wait; an iterator holds a reference. */
GEV_EXTERN gev_waitable gev_waitable_socket(gev_socket *s, int events);

/* ---- Buffered reading (gevent's makefile('rb')) ----------------------- */

/*
 * A reader reads a socket through a buffer, for line-based protocols:
 * readline returns one line at a time however the bytes arrived, and
 * whatever it read past the line stays in the buffer for the next call.
 * Once a socket has a reader, read it only through the reader (a direct
 * recv would skip what the buffer holds). Waits use the socket's timeout
 * (per wait for data, as recv), so ETIMEDOUT means "no data in time";
 * what was read before the timeout stays buffered, and a later call
 * picks it up: no byte is lost by a timeout, a kill or EINTR.
 */
typedef struct gev_reader gev_reader;

/* A reader of s with a buffer of bufsize bytes (0: 8192), holding a
 * reference of s (the caller still closes s). Errors: EINVAL (s NULL),
 * EBADF (closed), EXDEV, ENOMEM. */
GEV_EXTERN gev_reader *gev_reader_new(gev_socket *s, size_t bufsize);
/* Frees the reader and drops its reference; bytes still buffered are
 * lost. NULL does nothing. */
GEV_EXTERN void gev_reader_free(gev_reader *r);

/* Reads one line, up to and including its '\n', into buf (size bytes,
 * >= 2), NUL-terminated. Returns the line's length (counting the '\n'),
 * or:
 *   - a line longer than size - 1 bytes comes back in pieces of size - 1
 *     bytes without '\n' (Python's readline(limit)): test for the '\n'
 *     to tell a piece from a whole line, and refuse or go on reading;
 *   - at end of stream, the last bytes without a '\n' (a final line
 *     without one), then 0 on every later call (empty string: EOF);
 *   - -1 with errno: EINVAL (r or buf NULL, size < 2), EBADF, EXDEV, EAGAIN
 *     (timeout 0 and no whole line yet), ETIMEDOUT, EBUSY, the hub's
 *     blocking-call errors and recv(2)'s (ECONNRESET ...). Nothing read
 *     is lost: the partial line stays buffered for the next call. */
GEV_EXTERN ssize_t gev_reader_readline(gev_reader *r, char *buf, size_t size);
/* Reads up to len bytes: what the buffer holds, else one recv. Returns the
 * byte count, 0 at end of stream, or -1 with the errors of readline. */
GEV_EXTERN ssize_t gev_reader_read(gev_reader *r, void *buf, size_t len);
/* Reads exactly len bytes, parking as often as needed. Returns len, or
 * fewer at end of stream (the bytes before it), or -1 with the errors of
 * readline; after an error the bytes read so far stay buffered. */
GEV_EXTERN ssize_t gev_reader_read_exactly(gev_reader *r, void *buf,
                                           size_t len);
/* Bytes held in the buffer (read from the socket, not yet returned), or
 * -1 (EINVAL). */
GEV_EXTERN ssize_t gev_reader_buffered(const gev_reader *r);

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

/* As gev_create_connection, binding each socket to a source address
 * first (gevent's create_connection(address, timeout, source_address)):
 * source_host a numeric address (NULL, "" or "*": the wildcard of the
 * destination's family) and source_port (0: any). Destination addresses
 * of another family than a numeric source_host are skipped. Errors: those
 * of gev_create_connection, EINVAL (bad source_port), EAFNOSUPPORT
 * (source_host not numeric, or of a family no destination address has),
 * bind(2)'s (EADDRINUSE, EADDRNOTAVAIL ...). */
GEV_EXTERN gev_socket *gev_create_connection_from(const char *host, int port,
                                                  double timeout,
                                                  const char *source_host,
                                                  int source_port);

#ifdef __cplusplus
}
#endif
#endif
