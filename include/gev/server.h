/*
 * gev/server.h — StreamServer and DatagramServer (gevent.server).
 *
 * A stream server accepts connections on a listening socket and runs a
 * handler greenlet per connection; a datagram server runs a handler greenlet
 * per datagram received on a bound UDP socket. Accepting happens in the hub,
 * from the listener's io watcher: each time the listener is readable the
 * server accepts up to max_accept connections (so one busy listener cannot
 * starve the rest of the loop) and spawns their handlers, which start in
 * the next callback pass in accept order.
 *
 * Concurrency cap (gevent's Pool): with max_handlers > 0 the server stops
 * accepting while that many handlers run, and resumes as soon as one
 * finishes. With a pool, handlers are spawned into it and accepting pauses
 * while it is full (a pool shared with other greenlets is rechecked every
 * 10 ms while full). Connections wait in the kernel's backlog meanwhile.
 *
 * Accept errors: EMFILE, ENFILE, ENOBUFS and ENOMEM pause accepting for a
 * delay that starts at 10 ms and doubles up to 1 s while the error
 * persists; a successful accept resets it. Other accept errors (a client
 * that reset before it was accepted) are skipped.
 *
 * Stopping: gev_server_stop(timeout) stops accepting and closes the
 * listener at once, lets running handlers finish for up to timeout seconds,
 * then kills the rest (they see ECANCELED from their blocking calls).
 * gev_server_close() is its non-blocking half, callable from anywhere
 * including the hub and signal watchers; a greenlet in serve_forever then
 * wakes and finishes the stop with the server's stop_timeout.
 *
 * Draining persistent connections. From the moment a server is closed
 * (gev_server_close, _stop, _free, or the end of serve_forever) it is
 * "stopping" (gev_server_stopping) while its handlers finish. A handler of
 * a protocol with persistent connections (HTTP keep-alive) keeps two rules
 * so that no client loses a request:
 *   - every response it sends once the server is stopping tells the client
 *     the connection ends after it (HTTP: "Connection: close"), and it
 *     closes the connection after that response;
 *   - between two requests it waits with gev_server_wait_request, never a
 *     plain read. When the server stops, a connection that has been idle
 *     for drain_quiet seconds with nothing to read is given up; one whose
 *     client sends first is answered (with the closing response above).
 * A connection is thus never closed under a request the client may already
 * have sent after being promised the connection stays open. (The one race
 * HTTP/1.1 cannot avoid is a client that sends on a connection that was
 * idle longer than drain_quiet just as it is closed; RFC 9112 section 9.3.1
 * lets clients retry such requests.) gevent's StreamServer has no such
 * state; this is what Go's http.Server.Shutdown and nginx's graceful stop
 * do for keep-alive connections, with the quiet period added.
 *
 * Lifetime. Handlers receive srv and may use it (gev_server_port,
 * gev_server_sendto, gev_server_stopping ...) until they return, even
 * after gev_server_free: the memory is released only once the last
 * handler has returned (as libuv keeps a closing handle until its close
 * callback). A server still alive when its hub is destroyed
 * (gev_hub_destroy) is detached from it: its handlers have been unwound,
 * its listener is closed, every call on it but gev_server_free and the
 * accessors fails with EBADF, and gev_server_free releases it.
 *
 * Threads (opts.threads = N > 1). The server serves from N hubs: the
 * caller's, and N - 1 threads that gev_server_start starts, each with a
 * listener of its own bound to the same address with SO_REUSEPORT (the
 * kernel spreads new connections over them), or, when opts.listener is
 * given, a dup of it that each thread's loop watches. Each thread runs a
 * server made from the same options, whose handler runs in the thread
 * that accepted, with that thread's server as srv (gev_server_stopping,
 * _wait_request and the rest work as usual); arg is shared by every
 * thread, so what it points to must be safe to use from several threads
 * at once. The threads block signals, which go to the program's own.
 * Closing the server (gev_server_close, also from a signal watcher)
 * closes every thread's; gev_server_stop, and the end of serve_forever,
 * wait (parked) until every thread has stopped its own, with the same
 * timeout, and ended. gev_server_free waits for them too where it can
 * park (else they end on their own). gev_server_handlers and the other
 * accessors speak of the calling thread's server only. A thread that
 * cannot serve (its listener cannot be bound) logs why; the others serve
 * on. A TLS server runs in one thread.
 *
 * Threads or prefork (gev/prefork.h)? Both give one hub per core. Threads
 * share one process: memory and caches, objects that may cross threads
 * (the thread-safe sync objects, the threadpool), one fd table and one
 * place for signals, and they start in microseconds; but a handler that
 * crashes or corrupts memory takes every thread down, and handler code
 * must be thread-safe wherever it shares state (C libraries with global
 * state often are not). Prefork workers are isolated processes: the
 * master replaces one that crashes, leaks or stops beating, retires them
 * after max_requests, and reloads them gracefully (HUP, TTIN/TTOU);
 * handlers need not be thread-safe. Pick threads for handlers that share
 * in-memory state or when processes cost too much; prefork for robustness
 * and for code that is not thread-safe.
 *
 * Client sockets: the handler borrows client; the server closes it when the
 * handler returns (or when the handler is killed before it ran). The handler
 * may close it earlier with gev_socket_close, and may keep it past its
 * return by taking a reference (gev_socket_ref) — the server still closes
 * the fd, so to keep the connection open detach the fd instead.
 */
#ifndef GEV_SERVER_H
#define GEV_SERVER_H

#include "gev/net.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gev_server gev_server;

/* A connection's handler, run in its own greenlet. peer is the client's
 * address (valid during the call). */
typedef void (*gev_stream_handler_fn)(gev_server *srv, gev_socket *client,
                                      const struct sockaddr *peer,
                                      socklen_t peerlen, void *arg);

/* A datagram's handler, run in its own greenlet. data (len bytes) and peer
 * are valid during the call. Reply with gev_server_sendto. */
typedef void (*gev_datagram_handler_fn)(gev_server *srv, const void *data,
                                        size_t len, const struct sockaddr *peer,
                                        socklen_t peerlen, void *arg);

typedef struct gev_server_opts {
  /* Where to listen: host (numeric, as gev_sockaddr_parse; NULL for all
   * IPv4 interfaces) and port (0 picks a free one), or, instead, an
   * existing socket, bound (and for a stream server listening). The
   * server takes over the caller's open reference of listener and closes
   * it when stopped. With a listener, host, port, backlog and reuseport
   * must be left 0: they apply to a socket the server opens itself. */
  const char *host;
  int port;
  gev_socket *listener;
  int backlog;           /* listen backlog for host/port; <= 0: 256 */
  int reuseport;         /* set SO_REUSEPORT on a socket it creates */
  int max_accept;        /* accepts (or datagrams) per loop turn; <= 0: 100 */
  size_t max_handlers;   /* cap on concurrent handlers; 0 = none */
  struct gev_pool *pool; /* spawn handlers into this pool (gev/sync.h);
                            borrowed, must outlive the server; NULL: none */
  double stop_timeout;   /* grace period used by serve_forever; < 0: 1 s */
  double drain_quiet;    /* seconds a connection waiting in
                            gev_server_wait_request must have been idle
                            before a stopping server gives it up; <= 0:
                            0.5 s */
  size_t max_datagram;   /* datagram buffer size; 0 = 65536 */
  const char *name;      /* handler greenlets' name (not with a pool, whose
                            spawn names them); NULL: "Greenlet-N" */
  int threads;           /* hubs serving (see "Threads"); <= 1: only the
                            caller's */
} gev_server_opts;

/* Creates a stream (TCP or Unix) server; nothing is accepted before
 * gev_server_start or gev_server_serve_forever. opts is copied, strings
 * included (name); host is only used here. With host/port the listening
 * socket is created and bound here, so gev_server_address works at once.
 * Errors: EINVAL (NULL opts or handler; a listener together with host,
 * port, backlog or reuseport; a listener that is not a stream socket, or
 * not listening; NaN stop_timeout or drain_quiet), ENOMEM, and those of
 * gev_socket_listen_tcp, and EINVAL for threads < 0 or > 4096. On error
 * the caller still owns opts->listener. */
GEV_EXTERN gev_server *gev_stream_server_new(const gev_server_opts *opts,
                                             gev_stream_handler_fn handler,
                                             void *arg);

/* Creates a datagram (UDP) server, binding host:port unless a bound
 * listener is given (EINVAL if it is not a datagram socket). Errors as
 * gev_stream_server_new, plus those of bind(2). */
GEV_EXTERN gev_server *gev_datagram_server_new(const gev_server_opts *opts,
                                               gev_datagram_handler_fn handler,
                                               void *arg);

/* Starts accepting (from the hub; it returns at once), and starts the
 * other threads of a server with opts.threads > 1 (see "Threads"). 0, or
 * -1: EINVAL (NULL), EXDEV, EALREADY (already started), EBADF (already
 * stopped, or its hub was destroyed). The calls below fail with EBADF too
 * on a server whose hub was destroyed. */
GEV_EXTERN int gev_server_start(gev_server *srv);

/* Starts the server if needed and parks until gev_server_close or
 * gev_server_stop is called, then stops it with opts.stop_timeout and
 * returns 0. Returns -1: EINVAL, EXDEV, EBADF (already stopped), EBUSY
 * (another greenlet is already in serve_forever), or a blocking-call
 * error (ECANCELED when killed: the server is then closed and its handlers
 * killed without waiting). */
GEV_EXTERN int gev_server_serve_forever(gev_server *srv);

/* Stops accepting, closes the listener, waits up to timeout seconds (< 0:
 * forever) for running handlers, then kills the rest and waits (up to 1 s)
 * for them to unwind. Handlers waiting in gev_server_wait_request return
 * once their connection has been quiet for drain_quiet seconds. Returns 0
 * once no handler runs, or -1: EINVAL (also a NaN timeout),
 * EXDEV, EPERM (from the hub: use gev_server_close), ECANCELED (the caller
 * was killed: the handlers are killed without waiting), ETIMEDOUT (killed
 * handlers did not finish within 1 s). Stopping a stopped server returns 0
 * after waiting for its handlers. */
GEV_EXTERN int gev_server_stop(gev_server *srv, double timeout);

/* Stops accepting and closes the listener now, without waiting; handlers
 * keep running and the server is stopping (see Draining above). Wakes
 * serve_forever and the handlers in gev_server_wait_request. Callable from
 * the hub. 0, or -1: EINVAL, EXDEV, EBADF (its hub was destroyed). */
GEV_EXTERN int gev_server_close(gev_server *srv);

/* Frees the server. If it still runs it is closed first. Handlers still
 * running are killed; called from a greenlet or the main coroutine (not
 * from one of srv's own handlers), it waits up to 1 s for them to return,
 * so that nothing of the server runs after it. The handlers may use srv
 * until they return: when free cannot wait for all of them (from the hub,
 * from a handler of srv, or after that second), the memory is released
 * when the last one returns. srv must not be used by the caller
 * afterwards. Returns 0 (also for NULL and for a server whose hub was
 * destroyed), or -1: EXDEV (another thread's server: nothing is done). */
GEV_EXTERN int gev_server_free(gev_server *srv);

/* Non-zero once the server is stopping: it was closed (or stopped, or
 * freed) and no longer accepts, while its handlers finish. A handler of a
 * persistent-connection protocol reads it before each response and ends
 * the connection after that response when it is set. 0 for NULL. */
GEV_EXTERN int gev_server_stopping(const gev_server *srv);

/* Waits, in a handler of stream server srv, for client (the connection it
 * was handed) to send its next request: until the socket is readable
 * (bytes, end of stream or an error), or timeout seconds (< 0: forever).
 * While the server runs this is gev_socket_wait_read. Once the server is
 * stopping, the wait ends when the connection has been quiet for
 * drain_quiet seconds, counted from the call: if nothing arrived by then,
 * the call fails with ESHUTDOWN and the handler should return (the server
 * closes the connection); bytes that arrive first are a request to serve,
 * with a closing response. Call it before each request, the first one
 * included: a connection whose client has not sent anything yet is idle
 * too. Returns 0 when there is something to read, or -1: EINVAL (NULL,
 * NaN timeout, a datagram server, or client is not a connection of srv),
 * EXDEV, EBADF (client closed, or srv's hub destroyed), ESHUTDOWN,
 * ETIMEDOUT, EBUSY (another greenlet waits on client), and the hub's
 * blocking-call errors. */
GEV_EXTERN int gev_server_wait_request(gev_server *srv, gev_socket *client,
                                       double timeout);

/* The listening address (valid after creation, also after stop). 0, or
 * -1: EINVAL, ENOSPC (*len too small). */
GEV_EXTERN int gev_server_address(const gev_server *srv, struct sockaddr *addr,
                                  socklen_t *len);
/* The listening port (host order), or -1 (EINVAL, or not IP). */
GEV_EXTERN int gev_server_port(const gev_server *srv);

/* Handlers currently running (spawned and not finished). */
GEV_EXTERN size_t gev_server_handlers(const gev_server *srv);
/* Non-zero while the server accepts (started, not stopped). */
GEV_EXTERN int gev_server_started(const gev_server *srv);

/* The listening socket (borrowed; NULL once stopped), e.g. to reply from a
 * datagram handler. */
GEV_EXTERN gev_socket *gev_server_socket(const gev_server *srv);

/* Sends a datagram from a datagram server's socket (gev_socket_sendto).
 * Errors: EINVAL (NULL, or a stream server), EBADF (stopped), and those of
 * gev_socket_sendto. */
GEV_EXTERN ssize_t gev_server_sendto(gev_server *srv, const void *data,
                                     size_t len, const struct sockaddr *peer,
                                     socklen_t peerlen);

#ifdef __cplusplus
}
#endif
#endif
