/*
 * StreamServer and DatagramServer (see gev/server.h).
 *
 * The accept side runs in the hub: an ev_io watcher on the listener whose
 * callback accepts (or receives) up to max_accept times and spawns one
 * handler greenlet each. It never parks, so it needs no greenlet of its own
 * and costs no switch per connection. Two things pause the watcher: the
 * handler cap (resumed when a handler finishes) and the accept-error
 * backoff (resumed by a one-shot timer).
 *
 * Each handler is a "conn" record on the server's list, holding the
 * greenlet handle and the client. Cleanup runs from the greenlet's link
 * callback, which fires exactly once whether the handler returned, failed,
 * or was killed before it started, so no client socket or record leaks.
 * Stream conns are also indexed by their fd (slots), so that a handler's
 * gev_server_wait_request finds its record without a search.
 *
 * Draining. A handler waiting for a keep-alive client's next request
 * (gev_server_wait_request) records its task in its conn while parked on
 * the client's read readiness. Closing the server wakes those tasks with
 * ESHUTDOWN; each then waits out the rest of the quiet period on its own
 * and gives the connection up only if the client stayed silent.
 *
 * Lifetime. Handlers are handed srv and may use it until they return, so
 * the server's memory outlives them: gev_server_free kills the handlers
 * and, when it may park, waits for them; otherwise the last handler's
 * link callback releases the memory. An ev_cleanup watcher on the hub's
 * loop detaches a server that is still alive when the hub is destroyed
 * (its handlers have been unwound by then): the listener is closed, the
 * server is marked orphaned, and a later gev_server_free only releases
 * memory. After a fork that discarded the hub, the child's copy is
 * orphaned the same way but keeps its fds open (see gev/prefork.h).
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "gev/log.h"
#include "gev/server.h"
#include "gev/sync.h"
#include "hub/park.h"
#include "net/listener.h"
#include "net/server_internal.h"
#include "net/socket_internal.h"

#define BACKOFF_MIN 0.01
#define BACKOFF_MAX 1.0
#define KILL_GRACE 1.0
#define DRAIN_QUIET 0.5

enum server_state { STATE_READY, STATE_SERVING, STATE_CLOSED };

typedef struct conn {
  struct conn *prev, *next; /* on srv->conns */
  gev_server *srv;          /* ro: valid until the record is freed */
  gev_greenlet *g;          /* the handle this record owns */
  gev_socket *client;       /* stream: the server's reference */
  int fd;                   /* stream: client's fd when accepted */
  gev__task *idle;          /* parked in gev_server_wait_request */
  void *data;               /* datagram: a copy of the payload */
  size_t len;
  struct sockaddr_storage peer;
  socklen_t peerlen;
} conn;

struct gev_server {
  int datagram;                    /* ro: which kind */
  enum server_state state;         /* rw */
  gev_server_opts opts;            /* ro: normalised copy, own strings */
  gev_stream_handler_fn on_stream; /* ro */
  gev_datagram_handler_fn on_datagram;
  void *arg;
  gev_socket *listener;   /* rw: NULL once closed */
  gev__hub *hub;          /* ro: NULL once orphaned */
  struct ev_loop *loop;   /* ro */
  pid_t pid;              /* ro: the process that created it */
  ev_io accept_io;        /* private: listener readiness */
  ev_timer backoff_timer; /* private: accept-error pause */
  ev_cleanup cleanup;     /* private: the hub's loop is destroyed */
  double backoff;         /* rw: the next pause; 0 when none */
  int paused_full;        /* rw: stopped at max_handlers */
  int freeing;            /* rw: freed; the last handler releases it */
  int orphaned;           /* rw: its hub is gone */
  conn *conns;            /* rw: running handlers */
  size_t nconns;
  conn **slots; /* rw: stream conns by fd (nslots entries) */
  size_t nslots;
  gev__waitq forever;           /* parked in serve_forever */
  struct sockaddr_storage addr; /* ro: listening address */
  socklen_t addrlen;
  void *dgram_buf;            /* datagram receive buffer */
  void (*on_free)(void *arg); /* gev__server_on_free: a layer's cleanup */
  void *on_free_arg;
  /* ro: gev__hub_id(hub), for identity checks (a new hub may reuse the
   * address of one that is gone) */
  unsigned long long hub_id;
  gev__server_group *group; /* ro: the other threads' servers, or NULL */
};

/* ---- Watchers ----------------------------------------------------------- */

static void start_io(gev_server *srv) {
  if (!ev_is_active(&srv->accept_io)) {
    ev_io_start(srv->loop, &srv->accept_io);
    gev__watcher_started();
  }
}

static void stop_io(gev_server *srv) {
  if (ev_is_active(&srv->accept_io)) {
    ev_io_stop(srv->loop, &srv->accept_io);
    gev__watcher_stopped();
  }
}

static void stop_backoff(gev_server *srv) {
  if (ev_is_active(&srv->backoff_timer)) {
    ev_timer_stop(srv->loop, &srv->backoff_timer);
    gev__watcher_stopped();
  }
}

static int at_capacity(const gev_server *srv) {
  if (srv->opts.max_handlers && srv->nconns >= srv->opts.max_handlers)
    return 1;
  return srv->opts.pool && gev_pool_free_count(srv->opts.pool) <= 0;
}

/* Stops accepting while the handler cap or the pool is full. The server
 * hears about its own handlers finishing; a pool shared with other
 * greenlets can also free up behind its back, so then it rechecks on a
 * short timer. */
static void pause_full(gev_server *srv) {
  srv->paused_full = 1;
  stop_io(srv);
  if (srv->opts.pool && !ev_is_active(&srv->backoff_timer)) {
    ev_timer_set(&srv->backoff_timer, BACKOFF_MIN, 0);
    ev_timer_start(srv->loop, &srv->backoff_timer);
    gev__watcher_started();
  }
}

/* Accepting resumes only when serving, not backing off and not full. */
static void maybe_resume(gev_server *srv) {
  if (srv->state != STATE_SERVING || ev_is_active(&srv->backoff_timer))
    return;
  if (at_capacity(srv)) {
    pause_full(srv);
    return;
  }
  srv->paused_full = 0;
  start_io(srv);
}

static void backoff_done(struct ev_loop *loop, ev_timer *w, int revents) {
  gev_server *srv = w->data;
  gev__watcher_stopped(); /* libev stopped the one-shot timer already */
  maybe_resume(srv);
}

/* Pauses accepting after a resource error, doubling the pause each time
 * the error repeats (10 ms .. 1 s). */
static void start_backoff(gev_server *srv) {
  srv->backoff = srv->backoff == 0 ? BACKOFF_MIN : srv->backoff * 2;
  if (srv->backoff > BACKOFF_MAX)
    srv->backoff = BACKOFF_MAX;
  stop_io(srv);
  ev_timer_set(&srv->backoff_timer, srv->backoff, 0);
  ev_timer_start(srv->loop, &srv->backoff_timer);
  gev__watcher_started();
}

/* ---- Connections by fd --------------------------------------------------- */

/* Makes room for fd in the slot table. 0, or -1 with ENOMEM. */
static int slot_reserve(gev_server *srv, int fd) {
  size_t want = (size_t)fd + 1;
  if (want <= srv->nslots)
    return 0;
  size_t n = srv->nslots ? srv->nslots : 64;
  while (n < want)
    n *= 2;
  conn **slots = realloc(srv->slots, n * sizeof *slots);
  if (!slots) {
    errno = ENOMEM;
    return -1;
  }
  memset(slots + srv->nslots, 0, (n - srv->nslots) * sizeof *slots);
  srv->slots = slots;
  srv->nslots = n;
  return 0;
}

/* The conn whose client is client, or NULL. A handler that closed its
 * client early frees the fd for a later accept, so the slot is only
 * trusted when it names the same socket. */
static conn *conn_of(const gev_server *srv, gev_socket *client) {
  int fd = gev_socket_fileno(client);
  if (fd < 0 || (size_t)fd >= srv->nslots)
    return NULL;
  conn *c = srv->slots[fd];
  return c && c->client == client ? c : NULL;
}

/* ---- Handlers ----------------------------------------------------------- */

static void conn_link(gev_server *srv, conn *c) {
  c->srv = srv;
  c->prev = NULL;
  c->next = srv->conns;
  if (srv->conns)
    srv->conns->prev = c;
  srv->conns = c;
  srv->nconns++;
  if (c->client)
    srv->slots[c->fd] = c; /* reserved by conn_spawn */
}

static void conn_unlink(conn *c) {
  gev_server *srv = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  srv->nconns--;
  if (c->client && srv->slots[c->fd] == c)
    srv->slots[c->fd] = NULL;
}

static void conn_free(conn *c) {
  if (c->client) {
    gev_socket_close(c->client);
    gev_socket_unref(c->client);
  }
  free(c->data);
  free(c);
}

static void server_release(gev_server *srv);

/* The handler greenlet finished (or was killed before it ran). */
static void conn_done(gev_greenlet *g, void *arg) {
  conn *c = arg;
  gev_server *srv = c->srv;
  conn_unlink(c);
  gev_greenlet_unref(c->g);
  conn_free(c);
  if (srv->freeing) {
    if (srv->nconns == 0)
      server_release(srv);
  } else if (srv->paused_full) {
    maybe_resume(srv);
  }
}

static void *conn_run(void *arg) {
  conn *c = arg;
  gev_server *srv = c->srv;
  const struct sockaddr *peer = (const struct sockaddr *)&c->peer;
  if (srv->datagram)
    srv->on_datagram(srv, c->data, c->len, peer, c->peerlen, srv->arg);
  else
    srv->on_stream(srv, c->client, peer, c->peerlen, srv->arg);
  return NULL;
}

/* Spawns a handler for c. On failure c is freed (closing its client). */
static int conn_spawn(gev_server *srv, conn *c) {
  gev_spawn_opts so = {.name = srv->opts.name};
  c->srv = srv;
  if (c->client && slot_reserve(srv, c->fd) < 0)
    goto out_free_conn;
  if (srv->opts.pool) /* a free slot was checked: this does not park */
    c->g = gev_pool_spawn(srv->opts.pool, conn_run, c, 0);
  else
    c->g = gev_spawn_ex(&so, conn_run, c);
  if (!c->g)
    goto out_free_conn;
  if (gev__greenlet_link_quiet(c->g, conn_done, c) < 0)
    goto out_kill;
  conn_link(srv, c);
  return 0;
out_kill:
  /* Not started yet, so it never runs and never touches c. */
  gev_greenlet_kill(c->g, 0, 0);
  gev_greenlet_unref(c->g);
out_free_conn:
  conn_free(c);
  return -1;
}

static int resource_error(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/* Accepts one connection and spawns its handler. 1 to go on, 0 when
 * nothing is pending, -1 after a resource error (backoff started). */
static int accept_one(gev_server *srv) {
  conn *c = calloc(1, sizeof *c);
  if (!c) {
    start_backoff(srv);
    return -1;
  }
  c->peerlen = sizeof c->peer;
  int fd =
      accept4(gev_socket_fileno(srv->listener), (struct sockaddr *)&c->peer,
              &c->peerlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    free(c);
    if (err == EINTR || err == ECONNABORTED || err == EPROTO)
      return 1;
    if (resource_error(err)) {
      start_backoff(srv);
      return -1;
    }
    return 0; /* EAGAIN, or an error the next readiness will repeat */
  }
  srv->backoff = 0;
  c->fd = fd;
  c->client = gev__socket_adopt(fd); /* accept4 made it non-blocking */
  if (!c->client) {
    close(fd);
    free(c);
    start_backoff(srv);
    return -1;
  }
  gev_socket_ref(c->client);
  if (conn_spawn(srv, c) < 0) {
    start_backoff(srv); /* out of memory: the client was closed */
    return -1;
  }
  return 1;
}

/* Receives one datagram and spawns its handler; returns as accept_one. */
static int receive_one(gev_server *srv) {
  conn *c = calloc(1, sizeof *c);
  if (!c) {
    start_backoff(srv);
    return -1;
  }
  c->peerlen = sizeof c->peer;
  ssize_t n = recvfrom(gev_socket_fileno(srv->listener), srv->dgram_buf,
                       srv->opts.max_datagram, 0, (struct sockaddr *)&c->peer,
                       &c->peerlen);
  if (n < 0) {
    int err = errno;
    free(c);
    if (err == EINTR || err == ECONNREFUSED)
      return 1;
    return 0;
  }
  c->data = malloc(n ? (size_t)n : 1);
  if (!c->data) {
    free(c);
    start_backoff(srv);
    return -1;
  }
  memcpy(c->data, srv->dgram_buf, (size_t)n);
  c->len = (size_t)n;
  conn_spawn(srv, c);
  return 1;
}

static void listener_ready(struct ev_loop *loop, ev_io *w, int revents) {
  gev_server *srv = w->data;
  for (int i = 0; i < srv->opts.max_accept; i++) {
    if (at_capacity(srv)) {
      pause_full(srv);
      return;
    }
    int rc = srv->datagram ? receive_one(srv) : accept_one(srv);
    if (rc <= 0)
      return;
  }
}

/* ---- Creation ----------------------------------------------------------- */

/* Options that only apply to a listener the server opens itself are
 * refused next to a given one rather than ignored (gevent refuses a
 * backlog with a socket too). */
static int check_opts(const gev_server_opts *opts) {
  if (!opts)
    return -1;
  if (opts->listener &&
      (opts->host || opts->port || opts->backlog > 0 || opts->reuseport))
    return -1;
  if (opts->threads < 0 || opts->threads > 4096)
    return -1;
  return isnan(opts->stop_timeout) || isnan(opts->drain_quiet) ? -1 : 0;
}

static int normalise_opts(gev_server *srv, const gev_server_opts *opts) {
  if (check_opts(opts) < 0) {
    errno = EINVAL;
    return -1;
  }
  srv->opts = *opts;
  srv->opts.host = NULL; /* only used while opening the listener */
  srv->opts.name = NULL;
  if (opts->name && !(srv->opts.name = strdup(opts->name))) {
    errno = ENOMEM;
    return -1;
  }
  if (srv->opts.backlog <= 0)
    srv->opts.backlog = 256;
  if (srv->opts.max_accept <= 0)
    srv->opts.max_accept = 100;
  if (srv->opts.stop_timeout < 0)
    srv->opts.stop_timeout = 1.0;
  if (srv->opts.drain_quiet <= 0)
    srv->opts.drain_quiet = DRAIN_QUIET;
  if (srv->opts.max_datagram == 0)
    srv->opts.max_datagram = 65536;
  return 0;
}

/* The caller's listener, checked (the server's kind of socket, a stream
 * one listening) and its address stored; or a new socket on the caller's
 * host:port (the normalised copy no longer holds host). */
static gev_socket *open_listener(gev_server *srv, const gev_server_opts *o) {
  int type = srv->datagram ? SOCK_DGRAM : SOCK_STREAM;
  struct sockaddr_storage ss;
  socklen_t len;
  srv->addrlen = sizeof srv->addr;
  if (o->listener)
    return gev__listener_check(gev_socket_fileno(o->listener), type, &srv->addr,
                               &srv->addrlen) < 0
               ? NULL
               : o->listener;
  if (gev_sockaddr_parse(o->host, o->port, &ss, &len) < 0)
    return NULL;
  /* As gev_socket_listen_tcp for streams; a datagram socket only binds. */
  int flags = (o->reuseport || o->threads > 1 ? GEV__LISTEN_REUSEPORT : 0) |
              (srv->datagram ? 0 : GEV__LISTEN_REUSEADDR | GEV__LISTEN_V6ONLY);
  int fd = gev__listener_open((struct sockaddr *)&ss, len, type, flags,
                              srv->datagram ? 0 : srv->opts.backlog);
  gev_socket *s = fd < 0 ? NULL : gev_socket_wrap(fd);
  if (s && getsockname(fd, (struct sockaddr *)&srv->addr, &srv->addrlen) == 0)
    return s;
  int saved = errno;
  if (s)
    gev_socket_close(s);
  else if (fd >= 0)
    close(fd);
  errno = saved;
  return NULL;
}

static void hub_gone(struct ev_loop *loop, ev_cleanup *w, int revents);

static void init_watchers(gev_server *srv) {
  ev_io_init(&srv->accept_io, listener_ready, gev_socket_fileno(srv->listener),
             EV_READ);
  srv->accept_io.data = srv;
  ev_timer_init(&srv->backoff_timer, backoff_done, 0, 0);
  srv->backoff_timer.data = srv;
  ev_cleanup_init(&srv->cleanup, hub_gone);
  srv->cleanup.data = srv;
  /* Cleanup watchers hold no reference on the loop and are not one of
   * gev's counted watchers, so it never keeps the hub busy. */
  ev_cleanup_start(srv->loop, &srv->cleanup);
}

static gev_server *server_new(int datagram, const gev_server_opts *opts,
                              void *arg) {
  gev_server *srv = calloc(1, sizeof *srv);
  if (!srv) {
    errno = ENOMEM;
    return NULL;
  }
  srv->datagram = datagram;
  srv->arg = arg;
  srv->pid = getpid();
  if (normalise_opts(srv, opts) < 0)
    goto out_free_srv;
  if (datagram && !(srv->dgram_buf = malloc(srv->opts.max_datagram))) {
    errno = ENOMEM;
    goto out_free_srv;
  }
  srv->hub = gev__hub_get();
  if (!srv->hub)
    goto out_free_srv;
  srv->hub_id = gev__hub_id(srv->hub);
  srv->loop = gev__hub_evloop(srv->hub);
  srv->listener = open_listener(srv, opts);
  if (!srv->listener)
    goto out_free_srv;
  srv->opts.listener = NULL;
  init_watchers(srv);
  return srv;
out_free_srv:
  free(srv->dgram_buf);
  free((char *)srv->opts.name);
  free(srv);
  return NULL;
}

/* With opts.threads > 1, the group of the other threads' servers, made
 * from srv's settings (server_threads.c). 0, or -1 with errno. */
static int make_group(gev_server *srv, const gev_server_opts *opts) {
  gev__server_spec spec = {
      .datagram = srv->datagram,
      .opts = srv->opts,
      .on_stream = srv->on_stream,
      .on_datagram = srv->on_datagram,
      .arg = srv->arg,
      .addr = srv->addr,
      .addrlen = srv->addrlen,
      .shared_fd = opts->listener ? gev_socket_fileno(srv->listener) : -1};
  if (opts->threads <= 1)
    return 0;
  return (srv->group = gev__server_group_new(&spec)) ? 0 : -1;
}

static gev_server *server_made(gev_server *srv, const gev_server_opts *opts) {
  if (srv && make_group(srv, opts) < 0) {
    int err = errno;
    gev_server_free(srv);
    errno = err;
    return NULL;
  }
  return srv;
}

gev_server *gev_stream_server_new(const gev_server_opts *opts,
                                  gev_stream_handler_fn handler, void *arg) {
  if (!handler) {
    errno = EINVAL;
    return NULL;
  }
  gev_server *srv = server_new(0, opts, arg);
  if (srv)
    srv->on_stream = handler;
  return server_made(srv, opts);
}

gev_server *gev_datagram_server_new(const gev_server_opts *opts,
                                    gev_datagram_handler_fn handler,
                                    void *arg) {
  if (!handler) {
    errno = EINVAL;
    return NULL;
  }
  gev_server *srv = server_new(1, opts, arg);
  if (srv)
    srv->on_datagram = handler;
  return server_made(srv, opts);
}

/* ---- Running and stopping ------------------------------------------------ */

static int check(const gev_server *srv) {
  if (!srv) {
    errno = EINVAL;
    return -1;
  }
  if (srv->orphaned) {
    errno = EBADF; /* its hub was destroyed */
    return -1;
  }
  if (srv->hub_id != gev__hub_current_id()) {
    errno = EXDEV;
    return -1;
  }
  return 0;
}

int gev_server_start(gev_server *srv) {
  if (check(srv) < 0)
    return -1;
  if (srv->state != STATE_READY) {
    errno = srv->state == STATE_SERVING ? EALREADY : EBADF;
    return -1;
  }
  srv->state = STATE_SERVING;
  start_io(srv);
  if (srv->group)
    gev__server_group_start(srv->group);
  return 0;
}

/* Wakes the handlers parked between requests: the server is stopping, so
 * each waits out its quiet period (see gev_server_wait_request). */
static void wake_idle(gev_server *srv) {
  for (conn *c = srv->conns; c; c = c->next)
    if (c->idle)
      gev__wake(c->idle, NULL, ESHUTDOWN);
}

int gev_server_close(gev_server *srv) {
  if (check(srv) < 0)
    return -1;
  if (srv->state == STATE_CLOSED)
    return 0;
  srv->state = STATE_CLOSED;
  stop_io(srv);
  stop_backoff(srv);
  gev_socket_close(srv->listener);
  srv->listener = NULL;
  gev__waitq_wake_all(&srv->forever, NULL, 0);
  wake_idle(srv);
  if (srv->group)
    gev__server_group_close(srv->group);
  return 0;
}

/* Kills every running handler without waiting. */
static void kill_handlers(gev_server *srv) {
  for (conn *c = srv->conns; c; c = c->next)
    gev_greenlet_kill(c->g, 0, 0);
}

/* References to the running handlers' greenlets, for joining them while
 * they remove themselves from the list. */
static gev_greenlet **snapshot_handlers(gev_server *srv, size_t *n) {
  *n = srv->nconns;
  gev_greenlet **gs = calloc(*n ? *n : 1, sizeof *gs);
  if (!gs)
    return NULL;
  size_t i = 0;
  for (conn *c = srv->conns; c; c = c->next)
    gs[i++] = gev_greenlet_ref(c->g);
  return gs;
}

/* Joins the handlers for timeout, then kills the rest and waits for them
 * up to KILL_GRACE. */
static int drain_handlers(gev_server *srv, double timeout) {
  size_t n;
  if (srv->nconns == 0)
    return 0;
  gev_greenlet **gs = snapshot_handlers(srv, &n);
  if (!gs) {
    kill_handlers(srv);
    errno = ENOMEM;
    return -1;
  }
  int rc = 0;
  int joined = timeout == 0 ? 0 : gev_joinall(gs, n, timeout, 0, 0);
  if (joined < 0) {
    /* We were killed or our own scope expired: do not wait any more. */
    int err = errno;
    kill_handlers(srv);
    errno = err;
    rc = -1;
  } else if ((size_t)joined < n) {
    rc = gev_killall(gs, n, 1, KILL_GRACE);
  }
  int saved = errno;
  for (size_t i = 0; i < n; i++)
    gev_greenlet_unref(gs[i]);
  free(gs);
  errno = saved;
  return rc;
}

int gev_server_stop(gev_server *srv, double timeout) {
  if (check(srv) < 0)
    return -1;
  if (gev_in_hub()) {
    errno = EPERM;
    return -1;
  }
  if (isnan(timeout)) {
    errno = EINVAL;
    return -1;
  }
  gev_server_close(srv);
  int rc = drain_handlers(srv, timeout), err = errno;
  /* The other threads stop with the same timeout, each on its own. */
  if (srv->group && gev__server_group_join(srv->group) < 0 && rc == 0) {
    rc = -1;
    err = errno;
  }
  errno = err;
  return rc;
}

int gev_server_serve_forever(gev_server *srv) {
  if (check(srv) < 0)
    return -1;
  if (srv->forever.len > 0) {
    errno = EBUSY;
    return -1;
  }
  if (srv->state == STATE_READY && gev_server_start(srv) < 0)
    return -1;
  if (srv->state == STATE_CLOSED) {
    errno = EBADF;
    return -1;
  }
  while (srv->state == STATE_SERVING) {
    if (gev__waitq_wait(&srv->forever, -1, "serve_forever", NULL) < 0) {
      int err = errno;
      gev_server_close(srv);
      kill_handlers(srv);
      errno = err;
      return -1;
    }
  }
  return gev_server_stop(srv, srv->opts.stop_timeout);
}

/* ---- Draining --------------------------------------------------------------
 */

int gev_server_stopping(const gev_server *srv) {
  return srv && srv->state == STATE_CLOSED;
}

/* Waits for the client's next bytes while the server runs. Returns as
 * gev_socket_wait_read, or -1 with ESHUTDOWN when the server stopped. */
static int idle_wait(conn *c, double timeout) {
  if (c->idle) {
    errno = EBUSY; /* another greenlet waits on this connection */
    return -1;
  }
  if (!(c->idle = gev__task_current()))
    return -1;
  int rc = gev_socket_wait_read(c->client, timeout);
  c->idle = NULL;
  return rc;
}

/* The server is stopping: waits until the connection has been quiet for
 * drain_quiet seconds since start (or until the caller's own timeout, if
 * that comes first), then gives it up unless bytes arrived. */
static int quiet_wait(gev_server *srv, conn *c, double start, double timeout) {
  double quiet_end = start + srv->opts.drain_quiet;
  int timed = timeout >= 0 && start + timeout < quiet_end;
  double end = timed ? start + timeout : quiet_end;
  double left = end - gev_monotonic();
  if (left > 0) {
    if (gev_socket_wait_read(c->client, left) == 0)
      return 0;
    if (errno != ETIMEDOUT || gev_monotonic() < end)
      return -1; /* closed, killed, or an expired Timeout scope */
  }
  if (gev_socket_wait_read(c->client, 0) == 0)
    return 0; /* arrived together with the deadline */
  errno = timed ? ETIMEDOUT : ESHUTDOWN;
  return -1;
}

int gev_server_wait_request(gev_server *srv, gev_socket *client,
                            double timeout) {
  conn *c;
  if (check(srv) < 0)
    return -1;
  if (srv->datagram || !client || isnan(timeout)) {
    errno = EINVAL;
    return -1;
  }
  if (gev_socket_closed(client)) {
    errno = EBADF;
    return -1;
  }
  if (!(c = conn_of(srv, client))) {
    errno = EINVAL;
    return -1;
  }
  double start = gev_monotonic();
  if (srv->state != STATE_CLOSED) {
    int rc = idle_wait(c, timeout);
    if (rc == 0 || errno != ESHUTDOWN)
      return rc;
  }
  return quiet_wait(srv, c, start, timeout);
}

/* ---- Lifetime -------------------------------------------------------------
 */

static void server_release(gev_server *srv) {
  if (!srv->orphaned)
    ev_cleanup_stop(srv->loop, &srv->cleanup);
  if (srv->group)
    gev__server_group_free(srv->group, 0);
  free(srv->slots);
  free((char *)srv->opts.name);
  free(srv->dgram_buf);
  if (srv->on_free)
    srv->on_free(srv->on_free_arg);
  free(srv);
}

void gev__server_on_free(gev_server *srv, void (*fn)(void *arg), void *arg) {
  srv->on_free = fn;
  srv->on_free_arg = arg;
}

/* Non-zero when the caller may park until the handlers have returned: not
 * the hub, and not one of the handlers (which would wait for itself). */
static int can_wait_for_handlers(gev_server *srv) {
  gev_greenlet *self = gev_getcurrent();
  if (gev_in_hub())
    return 0;
  for (conn *c = srv->conns; c; c = c->next)
    if (c->g == self)
      return 0;
  return 1;
}

/* The hub's loop is being destroyed, and with it everything this server
 * needs to run. Its handlers have been unwound already (the hub kills
 * every greenlet first), so normally no conn is left; one that is (a
 * handler the hub could not unwind, or a child that discarded its hub
 * after fork, whose greenlets never ran again) is dropped with its greenlet
 * handle, which is gone or detached. In a forked child the fds are left
 * open, as for every handle the child inherited. */
static void hub_gone(struct ev_loop *loop, ev_cleanup *w, int revents) {
  gev_server *srv = w->data;
  int own = getpid() == srv->pid;
  (void)revents;
  ev_cleanup_stop(loop, w); /* server_release may free it below */
  stop_io(srv);
  stop_backoff(srv);
  if (own && srv->listener)
    gev_socket_close(srv->listener);
  srv->listener = NULL;
  srv->state = STATE_CLOSED;
  if (own && srv->group)
    gev__server_group_close(srv->group);
  while (srv->conns) {
    conn *c = srv->conns;
    conn_unlink(c);
    if (own)
      conn_free(c);
  }
  srv->orphaned = 1;
  srv->hub = NULL;
  if (srv->freeing)
    server_release(srv);
}

int gev_server_free(gev_server *srv) {
  if (!srv)
    return 0;
  if (srv->orphaned) {
    server_release(srv);
    return 0;
  }
  if (check(srv) < 0)
    return -1;
  gev_server_close(srv);
  kill_handlers(srv);
  if (srv->nconns > 0 && can_wait_for_handlers(srv))
    drain_handlers(srv, 0); /* killed already: they unwind at once */
  if (srv->group && can_wait_for_handlers(srv))
    gev__server_group_join(srv->group);
  if (srv->nconns > 0) {
    srv->freeing = 1; /* the last conn_done releases it */
    return 0;
  }
  server_release(srv);
  return 0;
}

/* ---- Accessors ---------------------------------------------------------- */

int gev_server_address(const gev_server *srv, struct sockaddr *addr,
                       socklen_t *len) {
  if (!srv || !addr || !len) {
    errno = EINVAL;
    return -1;
  }
  if (*len < srv->addrlen) {
    errno = ENOSPC;
    return -1;
  }
  memcpy(addr, &srv->addr, srv->addrlen);
  *len = srv->addrlen;
  return 0;
}

int gev_server_port(const gev_server *srv) {
  if (!srv) {
    errno = EINVAL;
    return -1;
  }
  if (srv->addr.ss_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)&srv->addr)->sin_port);
  if (srv->addr.ss_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)&srv->addr)->sin6_port);
  errno = EINVAL;
  return -1;
}

size_t gev_server_handlers(const gev_server *srv) {
  return srv ? srv->nconns : 0;
}

int gev_server_started(const gev_server *srv) {
  return srv && srv->state == STATE_SERVING;
}

gev_socket *gev_server_socket(const gev_server *srv) {
  return srv ? srv->listener : NULL;
}

ssize_t gev_server_sendto(gev_server *srv, const void *data, size_t len,
                          const struct sockaddr *peer, socklen_t peerlen) {
  if (!srv || !srv->datagram) {
    errno = EINVAL;
    return -1;
  }
  if (!srv->listener) {
    errno = EBADF;
    return -1;
  }
  return gev_socket_sendto(srv->listener, data, len, 0, peer, peerlen);
}
