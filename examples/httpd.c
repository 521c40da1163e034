/*
 * httpd — a keep-alive HTTP/1.1 "Hello, World!" server on gev.
 *
 *   httpd [--host ADDR] [--port PORT] [--idle-timeout SECONDS]
 *         [--max-body BYTES] [--graceful-timeout SECONDS]
 *         [--threads N | --workers N [--max-requests N] [--timeout SECONDS]]
 *         [--tls-cert FILE --tls-key FILE [--tls-handshake-timeout SECONDS]
 *          [--tls-session-cache N]]
 *
 * Defaults: 127.0.0.1, port 8080 (0 picks a free port), idle timeout 60 s,
 * bodies up to 1 MiB, graceful timeout 30 s. Prints "listening on
 * ADDR:PORT" once it accepts connections and exits 0 on SIGINT or SIGTERM
 * after closing its listener and letting open requests finish (within the
 * graceful timeout).
 *
 * With --threads N it serves from N threads of this one process, each
 * with a hub and an SO_REUSEPORT listener of its own (gev_server_opts
 * .threads, gev/server.h); SIGINT or SIGTERM stops them all the same way.
 *
 * With --workers N it is a prefork server (gev/prefork.h): the process
 * becomes a master that opens the listener, prints "listening on" once its
 * N worker processes (its direct children) accept, and supervises them as
 * gunicorn does (TERM graceful stop, INT/QUIT quick stop, HUP new workers,
 * TTIN/TTOU one more/fewer). Each worker runs the server below in its own
 * hub, restarts after --max-requests requests (with 10 % jitter), is killed
 * and replaced when its hub stops beating for --timeout seconds, and on a
 * graceful stop finishes the requests in flight within --graceful-timeout
 * seconds.
 *
 * Each connection is one greenlet running straight-line code: wait for a
 * request, read its head, read (and drop) its Content-Length body, answer,
 * repeat. Pipelined requests are answered in order from the buffer.
 *
 * No request is lost when the server stops (a worker retiring at
 * --max-requests, after HUP or TTOU, or any graceful stop): the request is
 * counted before its response is built, every response sent while the
 * server is stopping says "Connection: close", and idle connections are
 * given up only between requests, after the server's quiet period
 * (gev_server_wait_request in gev/server.h).
 *
 * Errors: a malformed head gets 400 (also an HTTP/1.1 request without
 * exactly one valid Host field), an oversized one 431, Transfer-Encoding
 * 501, a body over --max-body 413, an Expect other than 100-continue (or a
 * 100-continue for a body over --max-body) 417; the connection is then
 * closed. "Expect: 100-continue" gets "100 Continue" before the body is
 * read.
 *
 * Time limits: the idle timeout is a deadline for receiving each complete
 * request (body included), counted from when the server starts waiting
 * for it, so a client that trickles a byte now and then (slowloris) is
 * closed as surely as one that sends nothing; sending a response has the
 * same limit. After an error response the server reads and drops what the
 * client still sends for at most 2 s (or the idle timeout, if shorter)
 * before it closes, so every connection ends within the idle timeout of
 * its last step, whatever state it is in.
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

#include <ev.h>

#include "gev/hub.h"
#include "gev/log.h"
#include "gev/monitor.h"
#include "gev/net.h"
#include "gev/prefork.h"
#include "gev/server.h"
#include "http_parser.h"
#include "stream_io.h"

#define MAX_HEAD 8192
#define BUF_SIZE 16384
#define LINGER_MAX 2.0          /* s: reading after a final response */
#define LINGER_BYTES (1u << 20) /* and at most this much */
#define MAX_BODY_DEFAULT (1 << 20)

typedef struct config {
  const char *host;
  int port;
  double idle_timeout;
  unsigned long long max_body;
  int workers; /* 0: one process, no master */
  int threads; /* hubs (threads) of the one process; 0: one */
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
  gev_server *srv;
  gev_socket *sock;
  struct gev_tls_stream *tls; /* over sock, or NULL for plain HTTP */
  const config *cfg;
  double deadline; /* of the step in progress */
  size_t len;      /* bytes buffered */
  size_t scanned;  /* how far http_head_end has looked */
  char buf[BUF_SIZE];
} conn;

/* read_head's and settle_body's result when the connection should just be
 * closed (parse errors are small negative numbers, head lengths > 0). */
#define HEAD_GONE (-100)

/* ---- Reading ------------------------------------------------------------- */

/* Receives more bytes into the buffer before the step's deadline. Returns
 * the count, 0 at EOF, or -1 (timeout, error, buffer full). */
static ssize_t fill(conn *c) {
  double left = c->deadline - gev_monotonic();
  if (left <= 0 || c->len == sizeof c->buf)
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

/* Waits for the next request to begin: between requests the connection is
 * idle, and a stopping server may give it up (gev/server.h). Bytes already
 * buffered (pipelining; over TLS also in the TLS stream) are the next
 * request. 0, or -1 to close. */
static int await_request(conn *c) {
  c->deadline = gev_monotonic() + c->cfg->idle_timeout;
  if (c->len > 0 || io_buffered(c->tls))
    return 0;
  return gev_server_wait_request(c->srv, c->sock, c->cfg->idle_timeout);
}

/* Waits for a complete head in the buffer. Returns the parse result, or
 * HEAD_GONE when the connection should just be closed. */
static int read_head(conn *c, http_request *req) {
  for (;;) {
    skip_blank_lines(c);
    if (c->len > 0 && http_head_end(c->buf, c->len, &c->scanned) > 0) {
      int rc = http_parse_request(c->buf, c->len, MAX_HEAD, req);
      if (rc != HTTP_PARSE_INCOMPLETE)
        return rc;
    }
    if (c->len > MAX_HEAD)
      return HTTP_PARSE_TOO_LARGE;
    if (fill(c) <= 0)
      return HEAD_GONE; /* closed, too slow, or failed: just hang up */
  }
}

/* ---- Writing and closing ---------------------------------------------------
 */

static int send_bytes(conn *c, const char *data, size_t len) {
  gev_socket_settimeout(c->sock, c->cfg->idle_timeout);
  return io_sendall(c->sock, c->tls, data, len);
}

/* Closes gracefully after a final response while the client may still be
 * sending: closing with unread input would make the kernel reset the
 * connection, and the client might lose the response. So the write side
 * is shut first and what the client still sends is read and dropped for a
 * bounded time (a "lingering close"); the server then closes. */
static void linger_close(conn *c) {
  double limit =
      c->cfg->idle_timeout < LINGER_MAX ? c->cfg->idle_timeout : LINGER_MAX;
  double end = gev_monotonic() + limit;
  size_t drained = 0;
  if (io_shutdown_write(c->sock, c->tls) < 0)
    return;
  while (drained < LINGER_BYTES) {
    double left = end - gev_monotonic();
    if (left <= 0)
      return;
    gev_socket_settimeout(c->sock, left);
    ssize_t n = io_recv(c->sock, c->tls, c->buf, sizeof c->buf);
    if (n <= 0)
      return;
    drained += (size_t)n;
  }
}

/* After the last response of a connection: lingers only when the client
 * sent more than was answered (the common case closes at once). */
static void close_after_last(conn *c) {
  if (c->len > 0 || io_buffered(c->tls) ||
      gev_socket_wait_read(c->sock, 0) == 0)
    linger_close(c);
}

/* Sends an error response (always "Connection: close") and closes. */
static void send_error(conn *c, int error) {
  size_t len;
  const char *r = http_error_response(error, &len);
  if (send_bytes(c, r, len) == 0)
    linger_close(c);
}

/* ---- Requests --------------------------------------------------------------
 */

/* Settles what the request's head says about its body before the head is
 * consumed: refuses a body over the limit (413, or 417 when the client
 * waits for our go-ahead) and an unknown expectation (417), and sends
 * "100 Continue" when the client waits for it. 0 to go on, or the error
 * to answer. */
static int settle_body(conn *c, const http_request *req) {
  int expect = http_expectation(req);
  int too_large = req->content_length > c->cfg->max_body;
  if (expect == HTTP_EXPECT_UNKNOWN)
    return HTTP_EXPECTATION_FAILED;
  if (too_large)
    return expect == HTTP_EXPECT_CONTINUE ? HTTP_EXPECTATION_FAILED
                                          : HTTP_CONTENT_TOO_LARGE;
  /* A client that sent (part of) the body already has not waited. */
  if (expect == HTTP_EXPECT_CONTINUE && req->content_length > 0 &&
      c->len == req->head_len)
    return send_bytes(c, http_continue_response,
                      strlen(http_continue_response)) == 0
               ? 0
               : HEAD_GONE;
  return 0;
}

/* Counts the request (a worker may retire at max_requests) and tells
 * whether its response is the connection's last. Counting first makes
 * the response that reaches the limit say "Connection: close" itself. */
static int last_response(conn *c, const http_request *req) {
  if (c->cfg->worker)
    gev_worker_request_done(c->cfg->worker);
  return !req->keep_alive || gev_server_stopping(c->srv);
}

/* Serves requests until the client leaves or a request ends the
 * connection. */
static void serve_connection(conn *c, http_request *req) {
  for (;;) {
    if (await_request(c) < 0)
      return;
    int rc = read_head(c, req);
    if (rc == HEAD_GONE)
      return;
    if (rc > 0)
      rc = settle_body(c, req);
    if (rc == HEAD_GONE)
      return;
    if (rc < 0) {
      send_error(c, rc);
      return;
    }
    consume(c, req->head_len);
    if (req->has_body && skip_body(c, req->content_length) < 0)
      return;
    int last = last_response(c, req);
    if (last)
      req->keep_alive = 0;
    char out[256];
    size_t n = http_hello_response(req, out, sizeof out);
    if (send_bytes(c, out, n) < 0)
      return;
    if (last) {
      close_after_last(c);
      return;
    }
  }
}

static void serve_client(gev_server *srv, gev_socket *client,
                         struct gev_tls_stream *tls, const config *cfg) {
  conn *c = malloc(sizeof *c);
  http_request *req = malloc(sizeof *req);
  if (c && req) {
    c->srv = srv;
    c->sock = client;
    c->tls = tls;
    c->cfg = cfg;
    c->len = 0;
    c->scanned = 0;
    serve_connection(c, req);
  }
  free(req);
  free(c);
}

static void handle(gev_server *srv, gev_socket *client,
                   const struct sockaddr *peer, socklen_t peerlen, void *arg) {
  serve_client(srv, client, NULL, arg);
}

/* ---- TLS ------------------------------------------------------------------
 */

#if GEV_HAVE_TLS
static void handle_tls(gev_server *srv, gev_tls_stream *client,
                       const struct sockaddr *peer, socklen_t peerlen,
                       void *arg) {
  serve_client(srv, gev_tls_socket(client), client, arg);
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

/* ---- Process --------------------------------------------------------------
 */

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents) {
  gev_server_close(w->data);
}

static void usage(const char *prog) {
  fprintf(stderr,
          "usage: %s [--host ADDR] [--port PORT] [--idle-timeout SECONDS]\n"
          "       [--max-body BYTES] [--graceful-timeout SECONDS]\n"
          "       [--threads N |"
          " --workers N [--max-requests N] [--timeout SECONDS]]\n"
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
  if (*end || end == text || !(v > 0))
    usage(prog);
  return v;
}

/* Parses a whole number in [0, max] or exits with the usage. */
static unsigned long long count_arg(const char *prog, const char *text,
                                    unsigned long long max) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (*end || end == text || text[0] == '-' || errno || v > max)
    usage(prog);
  return v;
}

static void parse_args(int argc, char **argv, config *cfg) {
  const char *prog = argv[0];
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (i + 1 >= argc)
      usage(prog);
    const char *v = argv[++i];
    if (strcmp(arg, "--host") == 0)
      cfg->host = v;
    else if (strcmp(arg, "--port") == 0)
      cfg->port = (int)count_arg(prog, v, 65535);
    else if (strcmp(arg, "--idle-timeout") == 0)
      cfg->idle_timeout = seconds_arg(prog, v);
    else if (strcmp(arg, "--max-body") == 0)
      cfg->max_body = count_arg(prog, v, 1ull << 62);
    else if (strcmp(arg, "--workers") == 0)
      cfg->workers = (int)count_arg(prog, v, 1024);
    else if (strcmp(arg, "--threads") == 0)
      cfg->threads = (int)count_arg(prog, v, 1024);
    else if (strcmp(arg, "--max-requests") == 0)
      cfg->max_requests = (unsigned long)count_arg(prog, v, 1ul << 31);
    else if (strcmp(arg, "--timeout") == 0)
      cfg->timeout = seconds_arg(prog, v);
    else if (strcmp(arg, "--graceful-timeout") == 0)
      cfg->graceful_timeout = seconds_arg(prog, v);
    else if (strcmp(arg, "--tls-cert") == 0)
      cfg->tls_cert = v;
    else if (strcmp(arg, "--tls-key") == 0)
      cfg->tls_key = v;
    else if (strcmp(arg, "--tls-handshake-timeout") == 0)
      cfg->tls_handshake_timeout = seconds_arg(prog, v);
    else if (strcmp(arg, "--tls-session-cache") == 0)
      cfg->tls_session_cache = (long)count_arg(prog, v, 1ul << 31);
    else
      usage(prog);
  }
  if (!cfg->tls_cert != !cfg->tls_key || (cfg->threads && cfg->workers))
    usage(prog);
}

/* ---- Prefork mode ---------------------------------------------------------
 */

/* A worker process: the same server on the master's listener, until the
 * master (or max_requests, or the master's death) stops it. */
static int http_worker(gev_worker *w, void *arg) {
  config *cfg = arg; /* this process's copy */
  cfg->worker = w;
  signal(SIGPIPE, SIG_IGN);
  gev_dump_on_signal(SIGUSR2); /* a worker's greenlets, on kill -USR2 */
  gev_server_opts opts = {.listener = gev_socket_wrap(gev_worker_listen_fd(w)),
                          .name = "http"};
  gev_server *srv = opts.listener ? http_server(&opts, cfg) : NULL;
  if (!srv) {
    fprintf(stderr, "httpd: worker cannot serve: %s\n", strerror(errno));
    return 1;
  }
  int rc = gev_worker_serve(w, srv);
  if (rc < 0)
    fprintf(stderr, "httpd: worker: %s\n", strerror(errno));
  gev_server_free(srv);
  return rc < 0 ? 1 : 0;
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

/* ---- One process ----------------------------------------------------------
 */

static int run_single(config *cfg) {
  gev_server_opts opts = {.host = cfg->host,
                          .port = cfg->port,
                          .backlog = 1024,
                          .stop_timeout = cfg->graceful_timeout,
                          .name = "http",
                          .threads = cfg->threads};
  gev_server *srv = http_server(&opts, cfg);
  if (!srv) {
    fprintf(stderr, "httpd: listen on %s:%d: %s\n", cfg->host, cfg->port,
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
  /* kill -USR2 <pid> logs every greenlet with its backtrace. */
  gev_dump_on_signal(SIGUSR2);

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
  return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  config cfg = {.host = "127.0.0.1",
                .port = 8080,
                .idle_timeout = 60,
                .max_body = MAX_BODY_DEFAULT,
                .graceful_timeout = 30,
                .tls_session_cache = -1};
  parse_args(argc, argv, &cfg);
  if (setup_tls(&cfg) < 0)
    return 1;
  int status = cfg.workers > 0 ? run_prefork(&cfg) : run_single(&cfg);
  teardown_tls(&cfg);
  return status;
}
