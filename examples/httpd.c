/*
 * httpd — a keep-alive HTTP/1.1 "Hello, World!" server on gev.
 *
 *   httpd [--host ADDR] [--port PORT] [--idle-timeout SECONDS]
 *         [--workers N [--max-requests N] [--timeout SECONDS]
 *          [--graceful-timeout SECONDS]]
 *         [--tls-cert FILE --tls-key FILE [--tls-handshake-timeout SECONDS]
 *          [--tls-session-cache N]]
 *
 * Defaults: 127.0.0.1, port 8080 (0 picks a free port), idle timeout 60 s.
 * Prints "listening on ADDR:PORT" once it accepts connections and exits 0
 * on SIGINT or SIGTERM after closing its listener and letting open
 * requests finish.
 *
 * With --workers N it is a prefork server (gev/prefork.h): the process
 * becomes a master that opens the listener, prints "listening on" once its
 * N worker processes (its direct children) accept, and supervises them as
 * gunicorn does (TERM graceful stop, INT/QUIT quick stop, HUP new workers,
 * TTIN/TTOU one more/fewer). Each worker runs the server below in its own
 * hub, restarts after --max-requests requests (with 10 % jitter), is killed
 * and replaced when its hub stops beating for --timeout seconds, and on a
 * graceful stop finishes the requests in flight within --graceful-timeout
 * seconds and closes idle keep-alive connections.
 *
 * Each connection is one greenlet running straight-line code: read until a
 * request head is complete, read (and drop) its Content-Length body, answer,
 * repeat. Pipelined requests are answered in order from the buffer. A
 * malformed head gets 400, an oversized one 431, Transfer-Encoding 501, and
 * the connection is closed. The idle timeout is a deadline for receiving
 * each complete request, counted from when the server starts waiting for
 * it, so a client that trickles a byte now and then (slowloris) is closed
 * as surely as one that sends nothing.
 *
 * With --tls-cert and --tls-key (PEM certificate chain and key) it serves
 * HTTPS instead (gev/tls.h): each connection's greenlet first completes
 * the TLS handshake within --tls-handshake-timeout seconds (default 10),
 * then runs the same code over the TLS stream, and ends with close_notify.
 * --tls-session-cache N keeps N sessions for resumption (0 turns
 * resumption off, session tickets included; default: OpenSSL's cache).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "gev/hub.h"
#include "gev/net.h"
#include "gev/prefork.h"
#include "gev/server.h"
#include "http_parser.h"
#include "stream_io.h"

#define MAX_HEAD 8192
#define BUF_SIZE 16384

typedef struct config {
  const char *host;
  int port;
  double idle_timeout;
  int workers; /* 0: one process, no master */
  unsigned long max_requests;
  double timeout, graceful_timeout;
  gev_worker *worker; /* in a worker process */
  const char *tls_cert, *tls_key;
  double tls_handshake_timeout;
  long tls_session_cache;  /* < 0: the default */
  struct gev_tls_ctx *tls; /* NULL: plain HTTP */
} config;

/* One connection's state, on the heap (see the shared-stack rule). */
typedef struct conn {
  struct conn *prev, *next; /* on the conns list */
  int idle;                 /* waiting for the first byte of a request */
  gev_socket *sock;
  struct gev_tls_stream *tls; /* over sock, or NULL for plain HTTP */
  double idle_timeout;
  const struct config *cfg;
  double deadline; /* for the request being received */
  size_t len;      /* bytes buffered */
  size_t scanned;  /* how far http_head_end has looked */
  char buf[BUF_SIZE];
} conn;

/* Every open connection, so a stopping worker can close the idle ones. */
static conn *conns;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Receives more bytes into the buffer before the request's deadline.
 * Returns the count, 0 at EOF, or -1 (timeout, error, buffer full). */
static ssize_t fill(conn *c) {
  double left = c->deadline - now();
  if (left <= 0 || c->len == sizeof c->buf)
    return -1;
  /* Between requests the client has most likely not sent the next one
   * yet: wait for it rather than try a recv that fails with EAGAIN. */
  if (c->len == 0 && io_wait_read(c->sock, c->tls, left) < 0)
    return -1;
  gev_socket_settimeout(c->sock, left);
  ssize_t n = io_recv(c->sock, c->tls, c->buf + c->len, sizeof c->buf - c->len);
  if (n > 0)
    c->len += (size_t)n;
  return n;
}

static void consume(conn *c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
  c->scanned = 0;
}

/* Reads and drops a body of n bytes, part of which may be buffered. */
static int skip_body(conn *c, uint64_t n) {
  while (n > 0) {
    if (c->len == 0 && fill(c) <= 0)
      return -1;
    size_t take = c->len < n ? c->len : (size_t)n;
    consume(c, take);
    n -= take;
  }
  return 0;
}

/* Drops empty lines before a request (RFC 9112 section 2.2). */
static void skip_blank_lines(conn *c) {
  size_t i = 0;
  for (;;) {
    if (i < c->len && c->buf[i] == '\n')
      i += 1;
    else if (i + 1 < c->len && c->buf[i] == '\r' && c->buf[i + 1] == '\n')
      i += 2;
    else
      break;
  }
  if (i)
    consume(c, i);
}

/* Waits for a complete head in the buffer. Returns the parse result, or 1
 * when the connection should just be closed. */
static int read_head(conn *c, http_request *req) {
  for (;;) {
    skip_blank_lines(c);
    c->idle = c->len == 0;
    if (c->len > 0 && http_head_end(c->buf, c->len, &c->scanned) > 0) {
      int rc = http_parse_request(c->buf, c->len, MAX_HEAD, req);
      if (rc != HTTP_PARSE_INCOMPLETE)
        return rc;
    }
    if (c->len > MAX_HEAD)
      return HTTP_PARSE_TOO_LARGE;
    if (fill(c) <= 0)
      return 1; /* closed, idle too long, or failed: just hang up */
  }
}

/* Sends an error response and closes gracefully: closing with unread
 * input would make the kernel reset the connection, and the client might
 * lose the response. So the write side is shut first and what the client
 * still sends is drained for a moment (a "lingering close"). */
static void send_error(conn *c, int parse_error) {
  size_t len;
  const char *r = http_error_response(parse_error, &len);
  gev_socket_settimeout(c->sock, c->idle_timeout);
  if (io_sendall(c->sock, c->tls, r, len) < 0 ||
      io_shutdown_write(c->sock, c->tls) < 0)
    return;
  gev_socket_settimeout(c->sock, 1.0);
  size_t drained = 0;
  ssize_t n;
  while (drained < (1u << 20) &&
         (n = io_recv(c->sock, c->tls, c->buf, sizeof c->buf)) > 0)
    drained += (size_t)n;
}

/* In a worker: counts the request; non-zero when the worker is stopping
 * and the connection should close now. */
static int worker_done(conn *c) {
  if (!c->cfg->worker)
    return 0;
  gev_worker_request_done(c->cfg->worker);
  return gev_worker_stopping(c->cfg->worker) != GEV_WORKER_RUNNING;
}

/* Serves requests until the client leaves or a request ends the
 * connection. */
static void serve_connection(conn *c) {
  http_request *req = malloc(sizeof *req);
  if (!req)
    return;
  for (;;) {
    c->deadline = now() + c->idle_timeout;
    int rc = read_head(c, req);
    if (rc == 1)
      break;
    if (rc < 0) {
      send_error(c, rc);
      break;
    }
    consume(c, req->head_len);
    if (req->has_body && skip_body(c, req->content_length) < 0)
      break;
    char out[256];
    size_t n = http_hello_response(req, out, sizeof out);
    gev_socket_settimeout(c->sock, c->idle_timeout);
    if (io_sendall(c->sock, c->tls, out, n) < 0)
      break;
    if (worker_done(c) || !req->keep_alive)
      break;
  }
  free(req);
}

static void serve_client(const config *cfg, gev_socket *client,
                         struct gev_tls_stream *tls) {
  conn *c = malloc(sizeof *c);
  if (!c)
    return;
  c->sock = client;
  c->tls = tls;
  c->cfg = cfg;
  c->idle_timeout = cfg->idle_timeout;
  c->len = 0;
  c->scanned = 0;
  c->idle = 1;
  c->prev = NULL;
  c->next = conns;
  if (conns)
    conns->prev = c;
  conns = c;
  serve_connection(c);
  if (c->prev)
    c->prev->next = c->next;
  else
    conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  free(c);
}

static void handle(gev_server *srv, gev_socket *client,
                   const struct sockaddr *peer, socklen_t peerlen, void *arg) {
  serve_client(arg, client, NULL);
}

/* ---- TLS ------------------------------------------------------------------
 */

#if GEV_HAVE_TLS
static void handle_tls(gev_server *srv, gev_tls_stream *client,
                       const struct sockaddr *peer, socklen_t peerlen,
                       void *arg) {
  serve_client(arg, gev_tls_socket(client), client);
}

/* The server context from --tls-cert/--tls-key, made once (before any
 * fork, so workers share it). 0, or -1 after printing why. */
static int setup_tls(config *cfg) {
  if (!cfg->tls_cert)
    return 0;
  cfg->tls = gev_tls_ctx_new(GEV_TLS_SERVER);
  if (!cfg->tls ||
      gev_tls_ctx_use_certificate(cfg->tls, cfg->tls_cert, cfg->tls_key) < 0 ||
      (cfg->tls_session_cache >= 0 &&
       gev_tls_ctx_set_session_cache(cfg->tls, (size_t)cfg->tls_session_cache,
                                     0) < 0)) {
    fprintf(stderr, "httpd: TLS: %s\n", gev_tls_last_error());
    return -1;
  }
  return 0;
}

static void teardown_tls(config *cfg) { gev_tls_ctx_free(cfg->tls); }
#else
static int setup_tls(config *cfg) {
  if (!cfg->tls_cert)
    return 0;
  fprintf(stderr, "httpd: built without TLS\n");
  return -1;
}

static void teardown_tls(config *cfg) {}
#endif

/* A stream server for HTTP, or HTTPS when the config has a context. */
static gev_server *http_server(gev_server_opts *opts, config *cfg) {
#if GEV_HAVE_TLS
  if (cfg->tls)
    return gev_tls_server_new(opts, cfg->tls, cfg->tls_handshake_timeout,
                              handle_tls, cfg);
#endif
  return gev_stream_server_new(opts, handle, cfg);
}

/* Ends the connections waiting for a next request: their handlers see
 * end of file and return. Those in the middle of a request go on. */
static void close_idle_connections(void) {
  for (conn *c = conns; c; c = c->next)
    if (c->idle)
      gev_socket_shutdown(c->sock, SHUT_RD);
}

/* ---- Process --------------------------------------------------------------
 */

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents) {
  gev_server_close(w->data);
}

static void usage(const char *prog) {
  fprintf(stderr,
          "usage: %s [--host ADDR] [--port PORT] [--idle-timeout SECONDS]\n"
          "       [--workers N [--max-requests N] [--timeout SECONDS]\n"
          "        [--graceful-timeout SECONDS]]\n"
          "       [--tls-cert FILE --tls-key FILE"
          " [--tls-handshake-timeout SECONDS]\n"
          "        [--tls-session-cache N]]\n",
          prog);
  exit(2);
}

/* Parses a number of seconds (> 0) or exits with the usage. */
static double seconds_arg(const char *prog, const char *text) {
  char *end;
  double v = strtod(text, &end);
  if (*end || !(v > 0))
    usage(prog);
  return v;
}

static void parse_args(int argc, char **argv, config *cfg) {
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (i + 1 >= argc)
      usage(argv[0]);
    char *end;
    if (strcmp(arg, "--host") == 0) {
      cfg->host = argv[++i];
    } else if (strcmp(arg, "--port") == 0) {
      long p = strtol(argv[++i], &end, 10);
      if (*end || p < 0 || p > 65535)
        usage(argv[0]);
      cfg->port = (int)p;
    } else if (strcmp(arg, "--idle-timeout") == 0) {
      cfg->idle_timeout = strtod(argv[++i], &end);
      if (*end || !(cfg->idle_timeout > 0))
        usage(argv[0]);
    } else if (strcmp(arg, "--workers") == 0) {
      long n = strtol(argv[++i], &end, 10);
      if (*end || n < 0 || n > 1024)
        usage(argv[0]);
      cfg->workers = (int)n;
    } else if (strcmp(arg, "--max-requests") == 0) {
      long n = strtol(argv[++i], &end, 10);
      if (*end || n < 0)
        usage(argv[0]);
      cfg->max_requests = (unsigned long)n;
    } else if (strcmp(arg, "--timeout") == 0) {
      cfg->timeout = seconds_arg(argv[0], argv[++i]);
    } else if (strcmp(arg, "--graceful-timeout") == 0) {
      cfg->graceful_timeout = seconds_arg(argv[0], argv[++i]);
    } else if (strcmp(arg, "--tls-cert") == 0) {
      cfg->tls_cert = argv[++i];
    } else if (strcmp(arg, "--tls-key") == 0) {
      cfg->tls_key = argv[++i];
    } else if (strcmp(arg, "--tls-handshake-timeout") == 0) {
      cfg->tls_handshake_timeout = seconds_arg(argv[0], argv[++i]);
    } else if (strcmp(arg, "--tls-session-cache") == 0) {
      cfg->tls_session_cache = strtol(argv[++i], &end, 10);
      if (*end || cfg->tls_session_cache < 0)
        usage(argv[0]);
    } else {
      usage(argv[0]);
    }
  }
  if (!cfg->tls_cert != !cfg->tls_key)
    usage(argv[0]);
}

/* ---- Prefork mode ---------------------------------------------------------
 */

/* A worker process: the same server on the master's listener, until the
 * master (or max_requests, or the master's death) stops it. */
static int http_worker(gev_worker *w, void *arg) {
  config *cfg = arg; /* this process's copy */
  cfg->worker = w;
  signal(SIGPIPE, SIG_IGN);
  gev_server_opts opts = {.listener = gev_socket_wrap(gev_worker_listen_fd(w)),
                          .name = "http"};
  gev_server *srv = opts.listener ? http_server(&opts, cfg) : NULL;
  if (!srv || gev_server_start(srv) < 0) {
    fprintf(stderr, "httpd: worker cannot serve: %s\n", strerror(errno));
    return 1;
  }
  gev_worker_wait_stop(w, -1);
  gev_server_close(srv);
  close_idle_connections();
  gev_server_stop(srv, gev_worker_graceful_timeout(w));
  gev_server_free(srv);
  return 0;
}

static void on_ready(const struct sockaddr *addr, socklen_t len, void *arg) {
  char text[96];
  printf("listening on %s\n",
         gev_sockaddr_format(addr, len, text, sizeof text));
  fflush(stdout);
}

static int run_prefork(config *cfg) {
  gev_prefork_opts po = {.host = cfg->host,
                         .port = cfg->port,
                         .backlog = 1024,
                         .workers = cfg->workers,
                         .timeout = cfg->timeout,
                         .graceful_timeout = cfg->graceful_timeout,
                         .max_requests = cfg->max_requests,
                         .max_requests_jitter = cfg->max_requests / 10,
                         .worker = http_worker,
                         .arg = cfg,
                         .on_ready = on_ready};
  if (gev_prefork_run(&po) < 0) {
    fprintf(stderr, "httpd: listen on %s:%d: %s\n", cfg->host, cfg->port,
            strerror(errno));
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  config cfg = {.host = "127.0.0.1",
                .port = 8080,
                .idle_timeout = 60,
                .tls_session_cache = -1};
  parse_args(argc, argv, &cfg);
  if (setup_tls(&cfg) < 0)
    return 1;
  if (cfg.workers > 0) {
    int status = run_prefork(&cfg);
    teardown_tls(&cfg);
    return status;
  }
  gev_server_opts opts = {
      .host = cfg.host, .port = cfg.port, .backlog = 1024, .name = "http"};
  gev_server *srv = http_server(&opts, &cfg);
  if (!srv) {
    fprintf(stderr, "httpd: listen on %s:%d: %s\n", cfg.host, cfg.port,
            strerror(errno));
    return 1;
  }
  struct ev_loop *loop = gev_hub_loop();
  ev_signal sigint, sigterm;
  ev_signal_init(&sigint, on_signal, SIGINT);
  ev_signal_init(&sigterm, on_signal, SIGTERM);
  sigint.data = sigterm.data = srv;
  ev_signal_start(loop, &sigint);
  ev_signal_start(loop, &sigterm);
  signal(SIGPIPE, SIG_IGN);

  struct sockaddr_storage addr;
  socklen_t len = sizeof addr;
  char text[96];
  gev_server_address(srv, (struct sockaddr *)&addr, &len);
  if (gev_server_start(srv) < 0) {
    perror("httpd: start");
    return 1;
  }
  printf("listening on %s\n",
         gev_sockaddr_format((struct sockaddr *)&addr, len, text, sizeof text));
  fflush(stdout);
  int rc = gev_server_serve_forever(srv);
  ev_signal_stop(loop, &sigint);
  ev_signal_stop(loop, &sigterm);
  gev_server_free(srv);
  gev_hub_destroy();
  teardown_tls(&cfg);
  return rc == 0 ? 0 : 1;
}
