/* StreamServer and DatagramServer: echo, stop with in-flight handlers,
 * handler caps (own and Pool), serve_forever, draining keep-alive
 * connections, lifetimes (free while handlers run, a server outliving its
 * hub), option checks, EMFILE backoff in a forked child, and 10,000
 * concurrent connections held by one server. */
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gev/hub.h"
#include "gev/server.h"
#include "gev/sync.h"
#include "nettest.h"

/* ---- Handlers --------------------------------------------------------------
 */

static int echo_served; /* connections the echo handler finished */

static void echo_handler(gev_server *srv, gev_socket *client,
                         const struct sockaddr *peer, socklen_t peerlen,
                         void *arg) {
  char buf[1024];
  ssize_t n;
  while ((n = gev_socket_recv(client, buf, sizeof buf, 0)) > 0)
    if (gev_socket_sendall(client, buf, (size_t)n, 0) < 0)
      break;
  echo_served++;
}

/* Sends the handler greenlet's own name to the client. */
static void name_handler(gev_server *srv, gev_socket *client,
                         const struct sockaddr *peer, socklen_t peerlen,
                         void *arg) {
  const char *name = gev_greenlet_name(gev_getcurrent());
  gev_socket_sendall(client, name, strlen(name), 0);
}

static void dgram_handler_noop(gev_server *srv, const void *data, size_t len,
                               const struct sockaddr *peer, socklen_t peerlen,
                               void *arg) {}

/* Frees srv from another thread (with a hub of its own); returns errno. */
static void *free_in_other_thread(void *srv) {
  intptr_t err = gev_server_free(srv) < 0 ? errno : 0;
  gev_hub_destroy();
  return (void *)err;
}

/* State shared by the slow handlers of one test (heap-allocated). */
typedef struct slow_state {
  double delay;    /* how long each handler sleeps */
  int finished;    /* handlers whose sleep completed */
  int cancelled;   /* handlers whose sleep was interrupted by a kill */
  int running;     /* currently inside the handler */
  int max_running; /* most seen at once */
} slow_state;

static void slow_handler(gev_server *srv, gev_socket *client,
                         const struct sockaddr *peer, socklen_t peerlen,
                         void *arg) {
  slow_state *st = arg;
  if (++st->running > st->max_running)
    st->max_running = st->running;
  if (gev_sleep(st->delay) == 0)
    st->finished++;
  else if (errno == ECANCELED)
    st->cancelled++;
  st->running--;
  gev_socket_sendall(client, "done", 4, 0);
}

static gev_server *start_server(gev_server_opts *o, gev_stream_handler_fn fn,
                                void *arg) {
  if (!o->host)
    o->host = "127.0.0.1";
  gev_server *srv = gev_stream_server_new(o, fn, arg);
  ck_assert_msg(srv != NULL, "server: %s", strerror(errno));
  ck_assert_int_eq(gev_server_start(srv), 0);
  ck_assert_int_eq(gev_server_start(srv), -1);
  ck_assert_int_eq(errno, EALREADY);
  return srv;
}

static gev_socket *connect_to(gev_server *srv) {
  gev_socket *c = gev_create_connection("127.0.0.1", gev_server_port(srv), 5);
  ck_assert_msg(c != NULL, "connect: %s", strerror(errno));
  return c;
}

/* ---- Tests -----------------------------------------------------------------
 */

START_TEST(stream_echo) {
  int fds = gev_test_fd_count();
  /* One accept per loop turn still serves everyone. */
  gev_server_opts o = {.port = 0, .max_accept = 1};
  gev_server *srv = start_server(&o, echo_handler, NULL);
  ck_assert_int_gt(gev_server_port(srv), 0);
  gev_socket *clients[5];
  for (int i = 0; i < 5; i++)
    clients[i] = connect_to(srv);
  for (int i = 0; i < 5; i++) {
    char msg[16], back[16];
    int n = snprintf(msg, sizeof msg, "client %d", i);
    ck_assert_int_eq(gev_socket_sendall(clients[i], msg, (size_t)n, 0), 0);
    nt_recv_all(clients[i], back, (size_t)n);
    ck_assert_int_eq(memcmp(msg, back, (size_t)n), 0);
  }
  ck_assert_uint_eq(gev_server_handlers(srv), 5);
  for (int i = 0; i < 5; i++)
    gev_socket_close(clients[i]);
  ck_assert_int_eq(gev_server_stop(srv, 5), 0);
  ck_assert_uint_eq(gev_server_handlers(srv), 0);
  ck_assert(!gev_server_started(srv));
  gev_server_free(srv);
  gev_test_all_clean(fds);
}
END_TEST

/* Connects n clients and waits until n slow handlers run. */
static void connect_many(gev_server *srv, slow_state *st, gev_socket **c,
                         int n) {
  for (int i = 0; i < n; i++)
    c[i] = connect_to(srv);
  for (int i = 0; i < 500 && st->running < n; i++)
    gev_sleep(0.01);
}

START_TEST(stop_lets_handler_finish) {
  int fds = gev_test_fd_count();
  slow_state *st = calloc(1, sizeof *st);
  st->delay = 0.1;
  gev_server_opts o = {.port = 0};
  gev_server *srv = start_server(&o, slow_handler, st);
  gev_socket *c;
  connect_many(srv, st, &c, 1);
  ck_assert_int_eq(st->running, 1);
  ck_assert_int_eq(gev_server_stop(srv, 5), 0);
  ck_assert_int_eq(st->finished, 1);
  ck_assert_int_eq(st->cancelled, 0);
  /* The handler's reply went out before the server closed the client. */
  char buf[8];
  nt_recv_all(c, buf, 4);
  /* No longer accepting: a new connection is refused. */
  ck_assert_ptr_null(
      gev_create_connection("127.0.0.1", gev_server_port(srv), 5));
  gev_socket_close(c);
  gev_server_free(srv);
  free(st);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(stop_kills_handler_past_timeout) {
  int fds = gev_test_fd_count();
  slow_state *st = calloc(1, sizeof *st);
  st->delay = 30;
  gev_server_opts o = {.port = 0};
  gev_server *srv = start_server(&o, slow_handler, st);
  gev_socket *c[2];
  connect_many(srv, st, c, 2);
  ck_assert_int_eq(st->running, 2);
  double t0 = nt_now();
  ck_assert_int_eq(gev_server_stop(srv, 0.1), 0);
  ck_assert(nt_now() - t0 >= 0.09);
  ck_assert_int_eq(st->cancelled, 2);
  ck_assert_int_eq(st->finished, 0);
  ck_assert_uint_eq(gev_server_handlers(srv), 0);
  for (int i = 0; i < 2; i++)
    gev_socket_close(c[i]);
  gev_server_free(srv);
  free(st);
  gev_test_all_clean(fds);
}
END_TEST

static void check_cap(gev_server_opts *o, size_t cap) {
  slow_state *st = calloc(1, sizeof *st);
  st->delay = 0.05;
  gev_server *srv = start_server(o, slow_handler, st);
  gev_socket *c[6];
  for (int i = 0; i < 6; i++)
    c[i] = connect_to(srv);
  /* Every client is served in the end, never more than cap at once. */
  for (int i = 0; i < 6; i++) {
    char buf[4];
    nt_recv_all(c[i], buf, 4);
  }
  ck_assert_int_eq(st->finished, 6);
  /* Never more than cap at once (without the cap all six overlap). How
   * many overlapped below the cap depends on the machine's speed. */
  ck_assert_int_le(st->max_running, (int)cap);
  ck_assert_int_ge(st->max_running, 1);
  for (int i = 0; i < 6; i++)
    gev_socket_close(c[i]);
  ck_assert_int_eq(gev_server_stop(srv, 5), 0);
  gev_server_free(srv);
  free(st);
}

START_TEST(max_handlers_caps_concurrency) {
  int fds = gev_test_fd_count();
  gev_server_opts o = {.port = 0, .max_handlers = 2};
  check_cap(&o, 2);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(pool_caps_concurrency) {
  int fds = gev_test_fd_count();
  gev_pool *pool = gev_pool_new(3);
  ck_assert_ptr_nonnull(pool);
  gev_server_opts o = {.port = 0, .pool = pool};
  check_cap(&o, 3);
  ck_assert_int_eq(gev_pool_count(pool), 0);
  gev_pool_free(pool);
  gev_test_all_clean(fds);
}
END_TEST

static void close_server_cb(void *arg) { gev_server_close(arg); }

static void *serve(void *arg) {
  if (gev_server_serve_forever(arg) < 0)
    return gev_fail(errno, "serve_forever");
  return NULL;
}

START_TEST(serve_forever_until_closed_from_hub) {
  int fds = gev_test_fd_count();
  gev_server_opts o = {.host = "::1", .port = 0};
  gev_server *srv = gev_stream_server_new(&o, echo_handler, NULL);
  ck_assert_ptr_nonnull(srv);
  gev_greenlet *g = gev_spawn(serve, srv);
  gev_socket *c = gev_create_connection("::1", gev_server_port(srv), 5);
  ck_assert_ptr_nonnull(c);
  char buf[4];
  ck_assert_int_eq(gev_socket_sendall(c, "abc", 3, 0), 0);
  nt_recv_all(c, buf, 3);
  ck_assert_int_eq(gev_socket_close(c), 0);
  /* As a signal watcher would: close from a hub callback. */
  ck_assert_int_eq(gev_run_callback(close_server_cb, srv), 0);
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  ck_assert(gev_greenlet_successful(g));
  ck_assert_int_eq(gev_server_serve_forever(srv), -1);
  ck_assert_int_eq(errno, EBADF);
  gev_greenlet_unref(g);
  gev_server_free(srv);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(killed_serve_forever_closes_and_kills_handlers) {
  int fds = gev_test_fd_count();
  slow_state *st = calloc(1, sizeof *st);
  st->delay = 30;
  gev_server_opts o = {.host = "127.0.0.1", .port = 0};
  gev_server *srv = gev_stream_server_new(&o, slow_handler, st);
  ck_assert_ptr_nonnull(srv);
  gev_greenlet *g = gev_spawn(serve, srv);
  gev_socket *c;
  connect_many(srv, st, &c, 1);
  ck_assert_int_eq(st->running, 1);
  ck_assert_int_eq(gev_greenlet_kill(g, 1, 5), 0);
  ck_assert(!gev_server_started(srv));
  /* The handler was killed without waiting for its 30 s sleep. */
  for (int i = 0; i < 500 && gev_server_handlers(srv) > 0; i++)
    gev_sleep(0.01);
  ck_assert_uint_eq(gev_server_handlers(srv), 0);
  ck_assert_int_eq(st->cancelled, 1);
  gev_socket_close(c);
  gev_greenlet_unref(g);
  gev_server_free(srv);
  free(st);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(unix_listener_given) {
  int fds = gev_test_fd_count();
  char dir[] = "/tmp/gev-srv-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  snprintf(sun.sun_path, sizeof sun.sun_path, "%s/sock", dir);
  gev_socket *l = gev_socket_new(AF_UNIX, SOCK_STREAM, 0);
  ck_assert_int_eq(gev_socket_bind(l, (struct sockaddr *)&sun, sizeof sun), 0);
  ck_assert_int_eq(gev_socket_listen(l, 8), 0);
  gev_server_opts o = {.listener = l};
  gev_server *srv = gev_stream_server_new(&o, echo_handler, NULL);
  ck_assert_ptr_nonnull(srv);
  ck_assert_int_eq(gev_server_port(srv), -1); /* not an IP address */
  ck_assert_int_eq(gev_server_start(srv), 0);
  gev_socket *c = gev_socket_new(AF_UNIX, SOCK_STREAM, 0);
  ck_assert_int_eq(gev_socket_connect(c, (struct sockaddr *)&sun, sizeof sun),
                   0);
  char buf[8];
  ck_assert_int_eq(gev_socket_sendall(c, "unix", 4, 0), 0);
  nt_recv_all(c, buf, 4);
  ck_assert_int_eq(memcmp(buf, "unix", 4), 0);
  gev_socket_close(c);
  ck_assert_int_eq(gev_server_stop(srv, 5), 0);
  gev_server_free(srv); /* the listener went with the server */
  unlink(sun.sun_path);
  rmdir(dir);
  gev_test_all_clean(fds);
}
END_TEST

static void dgram_handler(gev_server *srv, const void *data, size_t len,
                          const struct sockaddr *peer, socklen_t peerlen,
                          void *arg) {
  gev_server_sendto(srv, data, len, peer, peerlen);
}

START_TEST(datagram_echo) {
  int fds = gev_test_fd_count();
  gev_server_opts o = {.host = "127.0.0.1", .port = 0};
  gev_server *srv = gev_datagram_server_new(&o, dgram_handler, NULL);
  ck_assert_ptr_nonnull(srv);
  ck_assert_int_eq(gev_server_start(srv), 0);
  struct sockaddr_storage addr;
  socklen_t len = sizeof addr;
  ck_assert_int_eq(gev_server_address(srv, (struct sockaddr *)&addr, &len), 0);
  gev_socket *c = gev_socket_new(AF_INET, SOCK_DGRAM, 0);
  for (int i = 0; i < 10; i++) {
    char msg[16], back[16];
    int n = snprintf(msg, sizeof msg, "dgram %d", i);
    ck_assert_int_eq(
        gev_socket_sendto(c, msg, (size_t)n, 0, (struct sockaddr *)&addr, len),
        n);
    ck_assert_int_eq(gev_socket_recv(c, back, sizeof back, 0), n);
    ck_assert_int_eq(memcmp(msg, back, (size_t)n), 0);
  }
  gev_socket_close(c);
  ck_assert_int_eq(gev_server_stop(srv, 5), 0);
  gev_server_free(srv);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(bad_input) {
  int fds = gev_test_fd_count();
  gev_server_opts o = {.port = 0};
  ck_assert_ptr_null(gev_stream_server_new(NULL, echo_handler, NULL));
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_ptr_null(gev_stream_server_new(&o, NULL, NULL));
  ck_assert_int_eq(errno, EINVAL);
  o.host = "nonsense";
  ck_assert_ptr_null(gev_stream_server_new(&o, echo_handler, NULL));
  ck_assert_int_eq(errno, EAFNOSUPPORT);
  ck_assert_int_eq(gev_server_start(NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_server_stop(NULL, 0), -1);
  ck_assert_int_eq(gev_server_port(NULL), -1);
  gev_server_free(NULL);
  gev_test_all_clean(fds);
}
END_TEST

/* ---- Draining keep-alive connections --------------------------------------
 */

/* A line protocol with persistent connections, as HTTP keep-alive: each
 * line gets "ok\n" while the server runs and "bye\n" (then the connection
 * ends) once it is stopping. Between lines the handler waits with
 * gev_server_wait_request. */
typedef struct line_state {
  int answered;   /* lines answered */
  int byes;       /* closing answers */
  int gave_up;    /* connections given up idle (ESHUTDOWN) */
  int timed_out;  /* wait_request ETIMEDOUT */
  double timeout; /* for wait_request */
} line_state;

static void line_handler(gev_server *srv, gev_socket *client,
                         const struct sockaddr *peer, socklen_t peerlen,
                         void *arg) {
  line_state *st = arg;
  char buf[64];
  for (;;) {
    if (gev_server_wait_request(srv, client, st->timeout) < 0) {
      if (errno == ESHUTDOWN)
        st->gave_up++;
      else if (errno == ETIMEDOUT)
        st->timed_out++;
      return;
    }
    if (gev_socket_recv(client, buf, sizeof buf, 0) <= 0)
      return;
    int last = gev_server_stopping(srv);
    st->answered++;
    st->byes += last;
    if (gev_socket_sendall(client, last ? "bye\n" : "ok\n", last ? 4 : 3, 0) <
            0 ||
        last)
      return;
  }
}

/* Sends a line and reads the answer ("ok\n" or "bye\n") into buf. */
static void line_request(gev_socket *c, char *buf, size_t n) {
  ck_assert_int_eq(gev_socket_sendall(c, "x\n", 2, 0), 0);
  nt_recv_all(c, buf, n);
}

static void *close_later(void *arg) {
  gev_sleep(0.05);
  gev_server_close(arg);
  return NULL;
}

START_TEST(stopping_server_answers_with_close_and_gives_up_idle) {
  int fds = gev_test_fd_count();
  line_state *st = calloc(1, sizeof *st);
  st->timeout = -1;
  gev_server_opts o = {.port = 0, .drain_quiet = 0.3};
  gev_server *srv = start_server(&o, line_handler, st);
  gev_socket *idle = connect_to(srv), *busy = connect_to(srv);
  gev_socket *fresh = connect_to(srv); /* never sends anything */
  char buf[8];
  double t0 = nt_now(); /* idle's quiet period starts after this */
  line_request(idle, buf, 3);
  ck_assert_int_eq(memcmp(buf, "ok\n", 3), 0);
  line_request(busy, buf, 3);
  ck_assert(!gev_server_stopping(srv));
  gev_greenlet *closer = gev_spawn(close_later, srv);
  /* busy sends again while the server is stopping, within the quiet
   * period: it is answered, with the closing answer, then closed. */
  gev_sleep(0.1);
  ck_assert(gev_server_stopping(srv));
  ck_assert(!gev_server_started(srv));
  line_request(busy, buf, 4);
  ck_assert_int_eq(memcmp(buf, "bye\n", 4), 0);
  ck_assert_int_eq(gev_socket_recv(busy, buf, sizeof buf, 0), 0);
  /* idle and fresh stay silent: given up once quiet for 0.3 s. */
  ck_assert_int_eq(gev_socket_recv(idle, buf, sizeof buf, 0), 0);
  ck_assert_int_eq(gev_socket_recv(fresh, buf, sizeof buf, 0), 0);
  ck_assert(nt_now() - t0 >= 0.3); /* not before its quiet period */
  ck_assert_int_eq(gev_server_stop(srv, 5), 0);
  ck_assert_int_eq(st->answered, 3);
  ck_assert_int_eq(st->byes, 1);
  ck_assert_int_eq(st->gave_up, 2);
  gev_socket_close(idle);
  gev_socket_close(busy);
  gev_socket_close(fresh);
  gev_greenlet_unref(closer);
  ck_assert_int_eq(gev_server_free(srv), 0);
  free(st);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(quiet_period_counts_from_when_idle) {
  int fds = gev_test_fd_count();
  line_state *st = calloc(1, sizeof *st);
  st->timeout = -1;
  gev_server_opts o = {.port = 0, .drain_quiet = 1};
  gev_server *srv = start_server(&o, line_handler, st);
  gev_socket *c = connect_to(srv);
  char buf[8];
  line_request(c, buf, 3);
  gev_sleep(1.05); /* idle longer than the quiet period already */
  double t0 = nt_now();
  ck_assert_int_eq(gev_server_stop(srv, 5), 0);
  /* Given up at once (in about a millisecond), not after another quiet
   * period of 1 s. */
  ck_assert(nt_now() - t0 < 0.9);
  ck_assert_int_eq(st->gave_up, 1);
  ck_assert_int_eq(gev_socket_recv(c, buf, sizeof buf, 0), 0);
  gev_socket_close(c);
  gev_server_free(srv);
  free(st);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(wait_request_timeout_and_bad_input) {
  int fds = gev_test_fd_count();
  line_state *st = calloc(1, sizeof *st);
  st->timeout = 0.1;
  gev_server_opts o = {.port = 0};
  gev_server *srv = start_server(&o, line_handler, st);
  gev_socket *c = connect_to(srv);
  char buf[8];
  double t0 = nt_now();
  /* The handler's wait times out as a plain read would, and it returns. */
  ck_assert_int_eq(gev_socket_recv(c, buf, sizeof buf, 0), 0);
  ck_assert(nt_now() - t0 >= 0.1);
  ck_assert_int_eq(st->timed_out, 1);
  /* Not a connection of srv, NULL, NaN. */
  ck_assert_int_eq(gev_server_wait_request(srv, c, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_server_wait_request(NULL, c, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_server_wait_request(srv, NULL, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(gev_server_wait_request(srv, c, NAN), -1);
  ck_assert_int_eq(errno, EINVAL);
  gev_socket_close(c);
  ck_assert_int_eq(gev_server_stop(srv, 5), 0);
  gev_server_free(srv);
  /* A datagram server has no connections. */
  gev_server_opts d = {.host = "127.0.0.1"};
  gev_server *ds = gev_datagram_server_new(&d, dgram_handler_noop, NULL);
  ck_assert_ptr_nonnull(ds);
  gev_socket *u = gev_socket_new(AF_INET, SOCK_DGRAM, 0);
  ck_assert_int_eq(gev_server_wait_request(ds, u, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  gev_socket_close(u);
  gev_server_free(ds);
  ck_assert(!gev_server_stopping(NULL));
  free(st);
  gev_test_all_clean(fds);
}
END_TEST

/* ---- Lifetimes -------------------------------------------------------------
 */

/* A datagram handler that parks until killed, then keeps using srv as a
 * handler may: the documented reply path and an accessor. */
typedef struct after_kill {
  int port_seen;   /* gev_server_port(srv) after the kill */
  int sendto_errs; /* errno of gev_server_sendto after the kill */
  int returned;
  int free_self; /* the handler frees its own server */
} after_kill;

static void dgram_use_after_kill(gev_server *srv, const void *data, size_t len,
                                 const struct sockaddr *peer, socklen_t peerlen,
                                 void *arg) {
  after_kill *st = arg;
  if (st->free_self)
    ck_assert_int_eq(gev_server_free(srv), 0);
  gev_sleep(30);
  st->port_seen = gev_server_port(srv);
  if (gev_server_sendto(srv, data, len, peer, peerlen) < 0)
    st->sendto_errs = errno;
  st->returned = 1;
}

/* A datagram server with one handler parked in it (NULL when the handler
 * frees the server itself). */
static gev_server *parked_dgram_server(after_kill *st, gev_socket **client,
                                       int *port) {
  gev_server_opts o = {.host = "127.0.0.1", .name = "dgram"};
  gev_server *srv = gev_datagram_server_new(&o, dgram_use_after_kill, st);
  ck_assert_ptr_nonnull(srv);
  ck_assert_int_eq(gev_server_start(srv), 0);
  *port = gev_server_port(srv);
  struct sockaddr_storage a;
  socklen_t len = sizeof a;
  gev_server_address(srv, (struct sockaddr *)&a, &len);
  *client = gev_socket_new(AF_INET, SOCK_DGRAM, 0);
  ck_assert_int_eq(
      gev_socket_sendto(*client, "hi", 2, 0, (struct sockaddr *)&a, len), 2);
  if (st->free_self)
    return NULL; /* srv is the handler's to free: do not touch it */
  for (int i = 0; i < 500 && gev_server_handlers(srv) == 0; i++)
    gev_sleep(0.01);
  ck_assert_uint_eq(gev_server_handlers(srv), 1);
  return srv;
}

START_TEST(free_waits_for_handlers_using_srv) {
  int fds = gev_test_fd_count();
  after_kill *st = calloc(1, sizeof *st);
  gev_socket *c;
  int port;
  gev_server *srv = parked_dgram_server(st, &c, &port);
  ck_assert_int_eq(gev_server_free(srv), 0);
  /* From the main coroutine free waits: the handler has already returned,
   * having used srv after its kill (ASan would flag freed memory). */
  ck_assert_int_eq(st->returned, 1);
  ck_assert_int_eq(st->port_seen, port);
  ck_assert_int_eq(st->sendto_errs, EBADF);
  gev_socket_close(c);
  free(st);
  gev_test_all_clean(fds);
}
END_TEST

static void free_cb(void *srv) { gev_server_free(srv); }

START_TEST(free_from_hub_releases_after_last_handler) {
  int fds = gev_test_fd_count();
  after_kill *st = calloc(1, sizeof *st);
  gev_socket *c;
  int port;
  gev_server *srv = parked_dgram_server(st, &c, &port);
  /* From the hub free cannot wait: the handler is killed and srv released
   * when it returns. */
  ck_assert_int_eq(gev_run_callback(free_cb, srv), 0);
  for (int i = 0; i < 500 && !st->returned; i++)
    gev_sleep(0.01);
  ck_assert_int_eq(st->returned, 1);
  ck_assert_int_eq(st->port_seen, port);
  ck_assert_int_eq(st->sendto_errs, EBADF);
  gev_socket_close(c);
  free(st);
  gev_test_all_clean(fds); /* LeakSanitizer: srv was released */
}
END_TEST

START_TEST(handler_frees_its_own_server) {
  int fds = gev_test_fd_count();
  after_kill *st = calloc(1, sizeof *st);
  st->free_self = 1;
  gev_socket *c;
  int port;
  parked_dgram_server(st, &c, &port);
  /* It killed itself with the others: its sleep ends at once. */
  for (int i = 0; i < 500 && !st->returned; i++)
    gev_sleep(0.01);
  ck_assert_int_eq(st->returned, 1);
  ck_assert_int_eq(st->port_seen, port);
  gev_socket_close(c);
  free(st);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(server_outliving_its_hub) {
  int fds = gev_test_fd_count();
  after_kill *st = calloc(1, sizeof *st);
  gev_socket *c;
  int port;
  gev_server *srv = parked_dgram_server(st, &c, &port);
  gev_socket_close(c);
  /* Destroying the hub unwinds the handler and detaches the server... */
  ck_assert_int_eq(gev_hub_destroy(), 0);
  ck_assert_int_eq(st->returned, 1);
  ck_assert_int_eq(gev_test_fd_count(), fds); /* listener closed */
  /* ...which then refuses what needs a hub, and is freed for good. */
  ck_assert(!gev_server_started(srv));
  ck_assert_int_eq(gev_server_start(srv), -1);
  ck_assert_int_eq(errno, EBADF);
  ck_assert_int_eq(gev_server_close(srv), -1);
  ck_assert_int_eq(errno, EBADF);
  ck_assert_int_eq(gev_server_port(srv), port);
  ck_assert_int_eq(gev_server_free(srv), 0);
  free(st);
  gev_test_all_clean(fds);
}
END_TEST

static void *free_in_greenlet(void *srv) {
  return (void *)(intptr_t)gev_server_free(srv);
}

START_TEST(free_from_another_thread_is_refused) {
  /* A server of this thread's hub, freed from a hub of its own on another
   * thread: refused, nothing done. */
  int fds = gev_test_fd_count();
  gev_server_opts o = {.port = 0};
  gev_server *srv = start_server(&o, echo_handler, NULL);
  pthread_t t;
  void *rc;
  ck_assert_int_eq(pthread_create(&t, NULL, free_in_other_thread, srv), 0);
  ck_assert_int_eq(pthread_join(t, &rc), 0);
  ck_assert_int_eq((int)(intptr_t)rc, EXDEV);
  ck_assert(gev_server_started(srv));
  /* And a greenlet of the right thread may free it. */
  gev_greenlet *g = gev_spawn(free_in_greenlet, srv);
  ck_assert_int_eq(gev_greenlet_join(g, 5), 0);
  ck_assert_ptr_null(gev_greenlet_value(g));
  gev_greenlet_unref(g);
  gev_test_all_clean(fds);
}
END_TEST

START_TEST(listener_options_refused_and_strings_copied) {
  int fds = gev_test_fd_count();
  gev_socket *l = gev_socket_listen_tcp("127.0.0.1", 0, 8, 0);
  ck_assert_ptr_nonnull(l);
  gev_server_opts bad[] = {{.listener = l, .backlog = 16},
                           {.listener = l, .reuseport = 1},
                           {.listener = l, .port = 80},
                           {.listener = l, .host = "127.0.0.1"},
                           {.host = "127.0.0.1", .stop_timeout = NAN},
                           {.host = "127.0.0.1", .drain_quiet = NAN}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_msg(gev_stream_server_new(&bad[i], echo_handler, NULL) == NULL,
                  "case %zu", i);
    ck_assert_int_eq(errno, EINVAL);
  }
  /* A listener of the wrong kind, or one that does not listen: refused,
   * and still the caller's. */
  gev_socket *udp = gev_socket_new(AF_INET, SOCK_DGRAM, 0);
  gev_socket *unlistened = gev_socket_new(AF_INET, SOCK_STREAM, 0);
  gev_server_opts wrong[] = {{.listener = udp}, {.listener = unlistened}};
  for (size_t i = 0; i < 2; i++) {
    ck_assert_ptr_null(gev_stream_server_new(&wrong[i], echo_handler, NULL));
    ck_assert_int_eq(errno, EINVAL);
  }
  ck_assert_ptr_null(gev_datagram_server_new(&(gev_server_opts){.listener = l},
                                             dgram_handler_noop, NULL));
  ck_assert_int_eq(errno, EINVAL);
  gev_socket_close(udp);
  gev_socket_close(unlistened);
  /* The name is copied: the caller's buffer may change at once. */
  char *name = strdup("copied-name");
  gev_server_opts o = {.listener = l, .name = name};
  gev_server *srv = gev_stream_server_new(&o, name_handler, NULL);
  ck_assert_ptr_nonnull(srv);
  memset(name, 'x', strlen(name));
  free(name);
  ck_assert_int_eq(gev_server_start(srv), 0);
  gev_socket *c = connect_to(srv);
  char buf[32] = "";
  ssize_t n = gev_socket_recv(c, buf, sizeof buf - 1, 0);
  ck_assert_int_gt(n, 0);
  ck_assert_str_eq(buf, "copied-name");
  gev_socket_close(c);
  ck_assert_int_eq(gev_server_stop(srv, 5), 0);
  gev_server_free(srv);
  gev_test_all_clean(fds);
}
END_TEST

/* ---- EMFILE backoff in a forked child -------------------------------------
 */

/* Child side: serve with every spare fd taken, until told to free them. */
static void *hog_until_told(void *arg) {
  int *p = arg; /* p[0]: control pipe, p[1..]: hogged fds, -1 ended */
  if (gev_wait_read(p[0], 10) < 0)
    return NULL;
  for (int i = 1; p[i] >= 0; i++)
    close(p[i]);
  return NULL;
}

static int emfile_child(int ctl_read, int port_write) {
  struct rlimit rl;
  echo_served = 0; /* earlier tests may have counted (CK_FORK=no) */
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = (rlim_t)gev_test_fd_count() + 16;
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
    return 10;
  gev_server_opts o = {.host = "127.0.0.1", .port = 0};
  gev_server *srv = gev_stream_server_new(&o, echo_handler, NULL);
  if (!srv || gev_server_start(srv) < 0)
    return 11;
  int *hog = calloc(64, sizeof *hog);
  int n = 1;
  hog[0] = ctl_read;
  while (n < 63 && (hog[n] = dup(0)) >= 0)
    n++;
  hog[n] = -1;
  if (errno != EMFILE)
    return 12;
  int port = gev_server_port(srv);
  if (write(port_write, &port, sizeof port) != sizeof port)
    return 13;
  gev_greenlet *g = gev_spawn(hog_until_told, hog);
  gev_greenlet_join(g, 10);
  gev_greenlet_unref(g);
  /* Serve until the parent's client is done. */
  for (int i = 0; i < 1000 && echo_served == 0; i++)
    gev_sleep(0.01);
  if (echo_served != 1)
    return 15;
  if (gev_server_stop(srv, 5) < 0)
    return 14;
  gev_server_free(srv);
  return 0;
}

/* Plain blocking helpers for the parent, which does not use gev. */
static int wait_readable(int fd, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, ms);
}

START_TEST(emfile_backoff_then_resume) {
  int fds = gev_test_fd_count();
  if (gev_test_under_valgrind())
    return; /* Valgrind's own descriptor limit hides EMFILE from the server */
  int ctl[2], portp[2];
  ck_assert_int_eq(pipe(ctl), 0);
  ck_assert_int_eq(pipe(portp), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(ctl[1]);
    close(portp[0]);
    _exit(emfile_child(ctl[0], portp[1]));
  }
  close(ctl[0]);
  close(portp[1]);
  int port = 0;
  ck_assert_int_eq(wait_readable(portp[0], 10000), 1);
  ck_assert_int_eq(read(portp[0], &port, sizeof port), sizeof port);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_storage addr;
  socklen_t len;
  gev_sockaddr_parse("127.0.0.1", port, &addr, &len);
  /* The handshake completes in the kernel; the server cannot accept. */
  ck_assert_int_eq(connect(c, (struct sockaddr *)&addr, len), 0);
  ck_assert_int_eq(write(c, "ping", 4), 4);
  ck_assert_int_eq(wait_readable(c, 300), 0);  /* no echo while starved */
  ck_assert_int_eq(write(ctl[1], "go", 2), 2); /* free the fds */
  ck_assert_int_eq(wait_readable(c, 5000), 1); /* backoff ends: served */
  char buf[8];
  ck_assert_int_eq(read(c, buf, sizeof buf), 4);
  ck_assert_int_eq(memcmp(buf, "ping", 4), 0);
  close(c);
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 0);
  close(ctl[1]);
  close(portp[0]);
  gev_test_all_clean(fds);
}
END_TEST

/* ---- 10,000 concurrent connections -----------------------------------------
 */

#define MANY 10000

/* Client process: open MANY connections, report, echo one byte on each. */
static int many_clients(int port, int ready_w, int go_r) {
  int *fd = calloc(MANY, sizeof *fd);
  struct sockaddr_storage addr;
  socklen_t len;
  gev_sockaddr_parse("127.0.0.1", port, &addr, &len);
  for (int i = 0; i < MANY; i++) {
    fd[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (fd[i] < 0 || connect(fd[i], (struct sockaddr *)&addr, len) < 0)
      return 20;
  }
  char go;
  if (write(ready_w, "r", 1) != 1 || read(go_r, &go, 1) != 1)
    return 21;
  for (int i = 0; i < MANY; i++) {
    unsigned char b = (unsigned char)i, back;
    if (write(fd[i], &b, 1) != 1 || read(fd[i], &back, 1) != 1 || back != b)
      return 22;
  }
  for (int i = 0; i < MANY; i++)
    close(fd[i]);
  free(fd);
  return 0;
}

/* The parent's hub (libev's default loop) reaps children itself, so the
 * client reports its exit code through a pipe instead of waitpid. */
static int many_clients_report(int port, int ready_w, int go_r) {
  unsigned char rc = (unsigned char)many_clients(port, ready_w, go_r);
  return write(ready_w, &rc, 1) == 1 ? rc : 30;
}

START_TEST(ten_thousand_connections) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_max < MANY + 200) {
    fprintf(stderr, "skipping: hard fd limit %lu\n",
            (unsigned long)rl.rlim_max);
    return;
  }
  rl.rlim_cur = MANY + 200;
  ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
  int fds = gev_test_fd_count();
  int ready[2], go[2];
  ck_assert_int_eq(pipe(ready), 0);
  ck_assert_int_eq(pipe(go), 0);
  /* The listener's backlog is set here: a server given a listener
   * refuses one of its own. */
  gev_server_opts o = {.port = 0};
  /* The client child uses plain sockets only, never the inherited hub. */
  gev_socket *l = gev_socket_listen_tcp("127.0.0.1", 0, 4096, 0);
  ck_assert_ptr_nonnull(l);
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  gev_socket_getsockname(l, (struct sockaddr *)&sin, &len);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(gev_socket_fileno(l));
    _exit(many_clients_report(ntohs(sin.sin_port), ready[1], go[0]));
  }
  o.listener = l;
  gev_server *srv = gev_stream_server_new(&o, echo_handler, NULL);
  ck_assert_ptr_nonnull(srv);
  ck_assert_int_eq(gev_server_start(srv), 0);
  char r;
  ck_assert_int_eq(gev_wait_read(ready[0], 30), 0);
  ck_assert_int_eq(read(ready[0], &r, 1), 1);
  ck_assert_msg(r == 'r', "client failed early: %d", r);
  /* All connections are open on the client side; wait until the server
   * holds every one of them in a parked handler. */
  for (int i = 0; i < 3000 && gev_server_handlers(srv) < MANY; i++)
    gev_sleep(0.01);
  ck_assert_uint_eq(gev_server_handlers(srv), MANY);
  ck_assert_int_eq(write(go[1], "g", 1), 1);
  for (int i = 0; i < 3000 && gev_server_handlers(srv) > 0; i++)
    gev_sleep(0.01);
  ck_assert_uint_eq(gev_server_handlers(srv), 0);
  ck_assert_int_eq(gev_wait_read(ready[0], 30), 0);
  ck_assert_int_eq(read(ready[0], &r, 1), 1);
  ck_assert_int_eq(r, 0);
  waitpid(pid, NULL, 0); /* may already be reaped by the hub */
  ck_assert_int_eq(gev_server_stop(srv, 5), 0);
  gev_server_free(srv);
  close(ready[0]);
  close(ready[1]);
  close(go[0]);
  close(go[1]);
  gev_test_all_clean(fds);
}
END_TEST

static Suite *server_suite(void) {
  Suite *s = suite_create("server");
  TCase *tc = tcase_create("server");
  tcase_set_timeout(tc, 40);
  tcase_add_test(tc, stream_echo);
  tcase_add_test(tc, stop_lets_handler_finish);
  tcase_add_test(tc, stop_kills_handler_past_timeout);
  tcase_add_test(tc, max_handlers_caps_concurrency);
  tcase_add_test(tc, pool_caps_concurrency);
  tcase_add_test(tc, serve_forever_until_closed_from_hub);
  tcase_add_test(tc, killed_serve_forever_closes_and_kills_handlers);
  tcase_add_test(tc, unix_listener_given);
  tcase_add_test(tc, datagram_echo);
  tcase_add_test(tc, bad_input);
  tcase_add_test(tc, stopping_server_answers_with_close_and_gives_up_idle);
  tcase_add_test(tc, quiet_period_counts_from_when_idle);
  tcase_add_test(tc, wait_request_timeout_and_bad_input);
  tcase_add_test(tc, free_waits_for_handlers_using_srv);
  tcase_add_test(tc, free_from_hub_releases_after_last_handler);
  tcase_add_test(tc, handler_frees_its_own_server);
  tcase_add_test(tc, server_outliving_its_hub);
  tcase_add_test(tc, free_from_another_thread_is_refused);
  tcase_add_test(tc, listener_options_refused_and_strings_copied);
  tcase_add_test(tc, emfile_backoff_then_resume);
  tcase_add_test(tc, ten_thousand_connections);
  suite_add_tcase(s, tc);
  return s;
}

GEV_TEST_MAIN(server_suite)
