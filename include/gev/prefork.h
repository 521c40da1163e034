/*
 * gev/prefork.h — fork support and a gunicorn-style prefork master.
 *
 * ---- Fork ------------------------------------------------------------
 *
 * A forked child holds a copy of the parent's hub: its libev loop (whose
 * epoll and eventfd descriptors are shared with the parent until the loop
 * is re-initialised), its greenlets, the c-ares resolver (whose sockets are
 * shared too). The child chooses one of two ways on:
 *
 *   KEEP     the child goes on with the same hub and greenlets, as gevent
 *            does after os.fork(): the loop is re-initialised (ev_loop_fork:
 *            new epoll set and wake-up pipe, watchers re-armed), and the
 *            resolver's channel is closed so the next lookup opens sockets
 *            of the child's own. Greenlets of the parent run on in both
 *            processes, on shared fds: the program decides who uses what.
 *            The parent's gev_process objects (gev/process.h) stop
 *            watching in the child and report ECHILD: those children are
 *            not the child's.
 *   DISCARD  the child drops the parent's hub without running anything of
 *            it: greenlets are freed without being resumed (their stacks
 *            released), gev signal handlers stopped, the loop destroyed.
 *            The next gev call creates a fresh hub. Every gev handle
 *            inherited from the parent (greenlets, sockets, events, signal
 *            handles, servers) is invalid in the child; fds stay open (the
 *            child closes those it does not want). Libev watchers that the
 *            program started itself on the hub's loop are forgotten with
 *            it; stop raw ev_signal watchers first (a signal arriving later
 *            would otherwise reach them).
 *
 * Both are for a fork made from the thread's main coroutine of the main
 * thread (DISCARD requires the main coroutine: the child cannot give up
 * the stack it runs on). Fork only single-threaded programs, as always.
 */
#ifndef GEV_PREFORK_H
#define GEV_PREFORK_H

#include <sys/socket.h>
#include <sys/types.h>

#include "gev/hub.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gev_fork_mode {
  GEV_FORK_KEEP = 1,    /* child keeps the hub, re-initialised */
  GEV_FORK_DISCARD = 2, /* child starts without the parent's hub */
} gev_fork_mode;

/* fork(2) followed, in the child, by gev_fork_reinit() (KEEP) or
 * gev_fork_discard() (DISCARD). Returns the child's pid in the parent, 0
 * in the child, -1 with errno: EINVAL (bad mode), EPERM (DISCARD asked
 * from a coroutine other than the main one, or KEEP from the hub; nothing
 * forked), or fork's
 * errors (EAGAIN, ENOMEM). If the child's step fails the child exits with
 * status 127 after printing why. */
GEV_EXTERN pid_t gev_fork(gev_fork_mode mode);

/* In a child after a plain fork(): keep the hub (KEEP above). Safe to call
 * when there is no hub (does nothing); called without a fork it only
 * rebuilds the loop's kernel state and fails the lookups in flight.
 * Returns 0, or -1: EPERM (called from the hub). */
GEV_EXTERN int gev_fork_reinit(void);

/* In a child after a plain fork(): drop the parent's hub (DISCARD above).
 * Does nothing when there is no hub. gev cannot tell a child from its
 * parent: called without a fork, it throws away the process's own hub the
 * same way (its greenlets never run again). Returns 0, or -1: EPERM (not
 * the thread's main coroutine). */
GEV_EXTERN int gev_fork_discard(void);

/* ---- Prefork master --------------------------------------------------
 *
 * gev_prefork_run() opens a listening TCP socket once, forks N worker
 * processes and supervises them until it is told to stop; each worker
 * runs the user's worker function in a hub of its own, handed the
 * listening socket. It is gunicorn's arbiter.
 *
 * The master is a plain poll(2) loop, not a gev hub: it forks from the
 * thread's main coroutine, so its workers start clean (a hub the calling
 * process had is discarded in each worker, as gev_fork_discard). It
 * installs its own handlers for the signals below and restores the
 * previous ones when it returns; while it runs, the calling thread's hub
 * (if any) does not run.
 *
 * Signals to the master (as gunicorn):
 *   TERM        graceful stop: workers are sent TERM, stop accepting,
 *               finish in-flight work within graceful_timeout and exit;
 *               those still alive then are killed (SIGKILL). Then
 *               gev_prefork_run returns 0.
 *   INT, QUIT   quick stop: workers are sent QUIT and exit at once (those
 *               that do not within graceful_timeout are killed).
 *   HUP         replace the workers: N new ones are started; once they are
 *               ready the old ones are retired gracefully (TERM).
 *   TTIN, TTOU  one worker more / one fewer (the oldest is retired
 *               gracefully; never fewer than one).
 *   CHLD        exited workers are reaped and replaced. A worker that dies
 *               before it became ready counts as a boot failure; repeated
 *               boot failures delay the next start (0.1 s doubling up to
 *               5 s) instead of spinning.
 *
 * Signals in a worker: TERM asks it to stop gracefully (see
 * gev_worker_wait_stop), INT and QUIT end it at once (_exit(0)), HUP, TTIN
 * and TTOU are ignored (they are the master's); the rest keep their
 * default action.
 *
 * Watchdog. Each worker's hub runs a heartbeat timer (every timeout/4, at
 * most every second) that sends a datagram to the master over a socket
 * pair of its own; the master SIGKILLs a worker silent for longer than
 * timeout (its hub is stuck: CPU-bound code that never yields) and starts
 * a replacement. The same timer checks getppid(): when the master is gone
 * the worker stops gracefully (GEV_WORKER_STOP_ORPHANED) and exits within
 * graceful_timeout. A worker is "ready" once its first heartbeat arrives,
 * which is sent from the hub's first turn, i.e. once the worker function
 * first blocks: start listening before that (gev_server_start does).
 *
 * max_requests: a worker that counted max_requests (plus a random 0 ..
 * max_requests_jitter, drawn per worker) requests with
 * gev_worker_request_done() stops gracefully (GEV_WORKER_STOP_MAX_REQUESTS)
 * and tells the master, which starts its replacement at once.
 *
 * Status: the master logs (through opts.log, or to stderr as
 * "gev prefork[PID]: ...") each worker start, exit (with its status or
 * signal and the cause when the master killed it), kill and retirement,
 * and its own stop.
 *
 * Listening socket: opened once by the master (SO_REUSEADDR, backlog) and
 * shared by all workers, which compete for accepts. With reuseport, each
 * worker binds a socket of its own with SO_REUSEPORT, and the kernel
 * spreads connections over them; the master keeps a bound, not listening,
 * socket to hold the port. Caveat: connections still in a retiring
 * worker's own backlog are reset when it closes its socket (Linux only
 * migrates them with net.ipv4.tcp_migrate_req), so the shared socket is
 * the one for restarts without failed requests.
 */

typedef struct gev_worker gev_worker;

/* A worker's body. It runs in the worker process's main coroutine with a
 * fresh hub; its return value is the worker process's exit status (0 for
 * a normal stop). The usual shape:
 *
 *     gev_socket *ls = gev_socket_wrap(gev_worker_listen_fd(w));
 *     gev_server_opts so = {.listener = ls};
 *     gev_server *srv = gev_stream_server_new(&so, handler, w);
 *     int rc = gev_worker_serve(w, srv);
 *     gev_server_free(srv);
 *     return rc == 0 ? 0 : 1;
 *
 * No request is lost when a worker goes (max_requests, HUP, TTOU, TERM):
 * the worker stops accepting at once, so new connections go to the other
 * workers (the shared listener) or the next generation, and its handlers
 * finish the requests they have. For persistent connections (HTTP
 * keep-alive) the handler keeps the server's draining rules (gev/server.h):
 * it counts each request with gev_worker_request_done before answering,
 * answers with "Connection: close" once gev_server_stopping(srv) is set,
 * and waits for the next request with gev_server_wait_request.
 *
 * The worker process ends with _exit() once the function has returned and
 * the hub has been destroyed: atexit handlers of the program do not run in
 * workers. */
typedef int (*gev_worker_fn)(gev_worker *w, void *arg);

typedef struct gev_prefork_opts {
  /* Where to listen: host (numeric or a name libc resolves; NULL:
   * 127.0.0.1) and port (0 picks a free one); or, with use_listen_fd, an
   * already listening socket listen_fd, which the master borrows (it is
   * not closed, but is made non-blocking). */
  const char *host;
  int port;
  int use_listen_fd;
  int listen_fd;
  int backlog;   /* listen backlog; <= 0: 1024 */
  int reuseport; /* one SO_REUSEPORT socket per worker (see above) */

  int workers;                /* worker processes; <= 0: 1 */
  double timeout;             /* heartbeat timeout, s; 0: 30; < 0: none */
  double graceful_timeout;    /* s; 0: 30 */
  unsigned long max_requests; /* per worker; 0: unlimited */
  unsigned long max_requests_jitter; /* random extra, 0 .. this */

  gev_worker_fn worker; /* required */
  void *arg;            /* for worker, on_ready and log */

  /* Called in the master (not a signal context) once the first N workers
   * are all ready, with the listening address. May be NULL. */
  void (*on_ready)(const struct sockaddr *addr, socklen_t len, void *arg);
  /* Receives each status line (no trailing newline). NULL: stderr. */
  void (*log)(const char *line, void *arg);
} gev_prefork_opts;

/* Runs the master until a TERM, INT or QUIT stop has finished (every
 * worker reaped), then closes what it opened and returns 0. In worker
 * processes it never returns (see gev_worker_fn). Must be called from the
 * thread's main coroutine; it blocks the thread.
 * Errors (nothing was started): EINVAL (opts or worker NULL, negative
 * graceful_timeout, listen_fd not a listening stream socket, port out of
 * range),
 * EPERM (from the hub, a greenlet or any coroutine but the thread's main
 * one), EBUSY (a master already runs in this process), ENOENT (host did
 * not resolve), the errors of socket(2), bind(2) (EADDRINUSE, EACCES ...),
 * listen(2) and pipe(2), ENOMEM. */
GEV_EXTERN int gev_prefork_run(const gev_prefork_opts *opts);

/* ---- Inside a worker --------------------------------------------------- */

typedef enum gev_worker_stop {
  GEV_WORKER_RUNNING = 0,       /* not asked to stop */
  GEV_WORKER_STOP_TERM,         /* SIGTERM: stop, HUP, TTOU of the master */
  GEV_WORKER_STOP_MAX_REQUESTS, /* it served its max_requests */
  GEV_WORKER_STOP_ORPHANED,     /* the master is gone */
} gev_worker_stop;

struct gev_server;

/* Serves srv (gev/server.h; started here if it was not) until the worker
 * is asked to stop, then stops it gracefully: gev_server_stop with the
 * master's graceful_timeout. The stop request closes srv at once, in the
 * same hub turn (the TERM signal's handler, or the gev_worker_request_done
 * call that reached max_requests), so the handlers see
 * gev_server_stopping(srv) from the response they are building on. Returns
 * 0, or -1: EINVAL (NULL), EBUSY (already serving a server), the errors of
 * gev_server_start and gev_server_stop, and the blocking-call errors of
 * gev_worker_wait_stop (the server is then closed, not stopped). */
GEV_EXTERN int gev_worker_serve(gev_worker *w, struct gev_server *srv);

/* The listening socket (non-blocking), or -1 (EINVAL for NULL). The
 * worker owns this descriptor: closing it (e.g. through a server that took
 * it over) only stops this worker accepting. */
GEV_EXTERN int gev_worker_listen_fd(const gev_worker *w);

/* Parks until the worker is asked to stop, or for timeout seconds (< 0:
 * forever). Returns the reason (> 0; at once if already asked), or -1:
 * EINVAL (NULL), or a blocking-call error (ETIMEDOUT ...). */
GEV_EXTERN int gev_worker_wait_stop(gev_worker *w, double timeout);

/* Why the worker is stopping, GEV_WORKER_RUNNING while it is not (also for
 * NULL). Handlers of a server run with gev_worker_serve read
 * gev_server_stopping instead, which is set at the same moment. */
GEV_EXTERN gev_worker_stop gev_worker_stopping(const gev_worker *w);

/* Counts one request. Call it when the request has been read and before
 * its response is built: when this reaches the worker's limit, the worker
 * is asked to stop (GEV_WORKER_STOP_MAX_REQUESTS; a server run with
 * gev_worker_serve is stopping from now on, so this very response can say
 * the connection closes) and 1 is returned; otherwise 0. Callable from
 * greenlets and the hub. -1 EINVAL for NULL. */
GEV_EXTERN int gev_worker_request_done(gev_worker *w);

/* Requests counted so far (0 for NULL). */
GEV_EXTERN unsigned long gev_worker_requests(const gev_worker *w);

/* The master's graceful_timeout, for stopping servers (0 for NULL). */
GEV_EXTERN double gev_worker_graceful_timeout(const gev_worker *w);

/* The worker's serial number: 1 for the first worker the master started,
 * then 2, 3 ... (0 for NULL). */
GEV_EXTERN unsigned gev_worker_serial(const gev_worker *w);

#ifdef __cplusplus
}
#endif
#endif
